package onesoidc

import (
	"errors"
	"math"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ones-now/onesoidc/internal/mockidp"
)

// TestTV37NumericDatesOutOfRangeRefused: exp, nbf, iat and auth_time outside 0 … 253402300799
// (milliseconds by mistake, 1e300, 2^63, negative, min-int64) are refused as an invalid claim
// naming it, never clamped to a false date (RFC 7519 §2).
func TestTV37NumericDatesOutOfRangeRefused(t *testing.T) {
	t.Parallel()
	idp := mockidp.NewInMemory()
	c := newValidationClient(t, idp)
	now := time.Now()
	for _, name := range []string{"exp", "nbf", "iat", "auth_time"} {
		for _, v := range []any{float64(now.Add(time.Hour).UnixMilli()), 1e300, math.Pow(2, 63), int64(math.MinInt64), -1, 253402300800} {
			tok := mint(t, idp, nil, func(m map[string]any) { m[name] = v })
			res, err := c.ValidateToken(t.Context(), tok)
			wantReject(t, res, err, ErrInvalidClaim, tok)
			var ve *ValidationError
			if errors.As(err, &ve) && ve.Claim != name {
				t.Errorf("%s = %v: claim %q, want %q (%v)", name, v, ve.Claim, name, err)
			}
			if err != nil && strings.Contains(err.Error(), "2562047h") {
				t.Errorf("%s = %v: overflowing text %q", name, v, err)
			}
		}
	}
}

// TestTV37FractionalNumericDatesAccepted: NumericDates may have fractions (RFC 7519 §2), and the
// result reports the token's own values.
func TestTV37FractionalNumericDatesAccepted(t *testing.T) {
	t.Parallel()
	idp := mockidp.NewInMemory()
	c := newValidationClient(t, idp)
	iat := float64(time.Now().Unix()) - 0.25
	exp := iat + 600.5
	res := wantAccept(t)(c.ValidateToken(t.Context(), mint(t, idp, nil, func(m map[string]any) {
		m["iat"], m["exp"], m["auth_time"] = iat, exp, 0.5
	})))
	e := res.Entity
	if !e.Expiry.Equal(time.UnixMilli(int64(exp*1000))) || !e.IssuedAt.Equal(time.UnixMilli(int64(iat*1000))) ||
		!e.AuthTime.Equal(time.UnixMilli(500)) {
		t.Errorf("expiry %v, issued %v, auth_time %v; want the token's own values", e.Expiry, e.IssuedAt, e.AuthTime)
	}
}

// TestTokenLifetimeBeyondMaxTokenLifetimeRefused: exp - iat may be at most maxTokenLifetime
// (366 days); one second more is an invalid exp.
func TestTokenLifetimeBeyondMaxTokenLifetimeRefused(t *testing.T) {
	t.Parallel()
	idp := mockidp.NewInMemory()
	c := newValidationClient(t, idp)
	iat := time.Now().Unix()
	life := int64(maxTokenLifetime / time.Second)
	wantAccept(t)(c.ValidateToken(t.Context(), mint(t, idp, nil, func(m map[string]any) { m["iat"], m["exp"] = iat, iat+life })))
	for _, exp := range []int64{iat + life + 1, 253402300799} {
		tok := mint(t, idp, nil, func(m map[string]any) { m["iat"], m["exp"] = iat, exp })
		res, err := c.ValidateToken(t.Context(), tok)
		wantReject(t, res, err, ErrInvalidClaim, tok)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Claim != "exp" || !strings.Contains(err.Error(), "lifetime") {
			t.Errorf("exp = iat + %ds: %v, want an invalid exp naming the lifetime", exp-iat, err)
		}
	}
}

// TestTimeErrorsDoNotOverflow: spans too long for a time.Duration (an nbf or iat in year 9999, an
// exp in 1970) read as days, never as a negative duration; the expiry reported is the token's.
func TestTimeErrorsDoNotOverflow(t *testing.T) {
	t.Parallel()
	idp := mockidp.NewInMemory()
	c := newValidationClient(t, idp)
	for _, tc := range []struct {
		claims map[string]any
		target error
		want   string
	}{
		{map[string]any{"nbf": 253402300799}, ErrTokenNotYetValid, "days"},
		{map[string]any{"iat": 253402300799, "exp": 253402300799}, ErrTokenNotYetValid, "days"},
		{map[string]any{"iat": 0, "exp": 1}, ErrTokenExpired, "h"},
	} {
		tok := mint(t, idp, nil, func(m map[string]any) {
			for k, v := range tc.claims {
				m[k] = v
			}
		})
		res, err := c.ValidateToken(t.Context(), tok)
		wantReject(t, res, err, tc.target, tok)
		if err == nil || strings.Contains(err.Error(), " -") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v", tc.claims, err)
		}
	}
	tok := mint(t, idp, nil, func(m map[string]any) { m["iat"], m["exp"] = 0, 1.5 })
	_, err := c.ValidateToken(t.Context(), tok)
	var te *TokenExpiredError
	if !errors.As(err, &te) || !te.Expiry.Equal(time.UnixMilli(1500)) {
		t.Errorf("%v: want a TokenExpiredError at the token's exp, 1.5 s after the epoch", err)
	}
}

// TestIntrospectionNumericDatesOutOfRangeRefused: the NumericDates of an introspection answer
// (RFC 7662 §2.2) follow the same rule: within 0 … 253402300799, fractions allowed, else the
// answer is refused naming the member.
func TestIntrospectionNumericDatesOutOfRangeRefused(t *testing.T) {
	t.Parallel()
	idp := mockidp.NewInMemory()
	c := newValidationClient(t, idp)
	answer := func(member, value string) {
		idp.Inject(mockidp.EndpointIntrospection, mockidp.Fault{Times: 1, Status: 200, ContentType: "application/json",
			Body: []byte(`{"active":true,"sub":"alice","` + member + `":` + value + `}`)})
	}
	for _, member := range []string{"exp", "iat", "nbf"} {
		for _, v := range []string{"1.8e12", "1e300", "9223372036854775808", "-1", "-9223372036854775808", "253402300800",
			"1e400", `"1700000000"`, "true", "null", "{}"} {
			answer(member, v)
			res, err := c.IntrospectToken(t.Context(), "opaque-token", "")
			var he *HTTPError
			if res != nil || !errors.As(err, &he) || !strings.Contains(err.Error(), member) {
				t.Errorf("%s = %s: %+v, %v; want an *HTTPError naming %s", member, v, res, err, member)
			}
		}
	}
	answer("exp", "1700000000.5")
	res, err := c.IntrospectToken(t.Context(), "opaque-token", "")
	if err != nil || !res.Expiry.Equal(time.UnixMilli(1700000000500)) {
		t.Errorf("fractional exp: %+v, %v", res, err)
	}
}

// TestONESQRTokenLifetimeBeyondMaxRefused: an ONES QR login whose introspected access token
// claims a lifetime beyond maxTokenLifetime is refused (and revoked).
func TestONESQRTokenLifetimeBeyondMaxRefused(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c, s := onesQRSession(t, mockidp.QRScript{})
		now := time.Now().Unix()
		idp.Inject(mockidp.EndpointIntrospection, mockidp.Fault{Times: 1, Status: 200, ContentType: "application/json",
			Body: []byte(`{"active":true,"sub":"alice","iss":"` + idp.Issuer + `","iat":` + itoa(now) + `,"exp":` +
				itoa(now+int64(maxTokenLifetime/time.Second)+1) + `}`)})
		_, err := c.WaitForQRLogin(t.Context(), s)
		var te *LoginTokenError
		if !errors.As(err, &te) || !strings.Contains(err.Error(), "lifetime") {
			t.Errorf("err = %v, want a *LoginTokenError about the lifetime", err)
		}
	})
}
