package onesoidc

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ones-now/onesoidc/onesoidctest"
)

// TestIntrospectionAnswerMembersAreReadByTheirExactNames: RFC 8259 member names are case
// sensitive, and an answer with a member twice is ambiguous. encoding/json fills a field from any
// member whose name equals its tag without regard to case, and from the last of duplicates, so
// that "Active":true overrode "active":false, a second "exp" a past one, and "userName" (a
// custom claim, as SCIM spells it) or "SUB" set the username or the subject. Such answers are
// refused, as ParseClaims refuses such JWT payloads.
func TestIntrospectionAnswerMembersAreReadByTheirExactNames(t *testing.T) {
	t.Parallel()
	const far = 4102444800 // 2100-01-01
	for name, body := range map[string]string{
		"Active overrides active": `{"active":false,"Active":true,"token_type":"Bearer","client_id":"x"}`,
		"ACTIVE alone":            `{"ACTIVE":true,"token_type":"Bearer","client_id":"x"}`,
		"second exp":              fmt.Sprintf(`{"active":true,"token_type":"Bearer","client_id":"x","exp":1000,"exp":%d}`, far),
		"EXP after exp":           fmt.Sprintf(`{"active":true,"token_type":"Bearer","client_id":"x","exp":1000,"EXP":%d}`, far),
		"userName":                fmt.Sprintf(`{"active":true,"token_type":"Bearer","sub":"alice","client_id":"x","username":"alice","userName":"admin","exp":%d}`, far),
		"SUB":                     fmt.Sprintf(`{"active":true,"token_type":"Bearer","SUB":"admin","client_id":"x","exp":%d}`, far),
		"Iss":                     fmt.Sprintf(`{"active":true,"token_type":"Bearer","sub":"alice","Iss":"https://evil.example","client_id":"x","exp":%d}`, far),
		"second sub":              fmt.Sprintf(`{"active":true,"token_type":"Bearer","sub":"alice","client_id":"x","sub":"admin","exp":%d}`, far),
		"Role":                    fmt.Sprintf(`{"active":true,"token_type":"Bearer","sub":"alice","client_id":"x","Role":"admin","exp":%d}`, far),
		"ſcope (long s)":          fmt.Sprintf(`{"active":true,"token_type":"Bearer","sub":"alice","client_id":"x","ſcope":"admin","exp":%d}`, far),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			idp := onesoidctest.NewInMemory(onesoidctest.WithOpaqueAccessTokens())
			c := newTestClient(t, idp, testKey(t, "EdDSA"))
			idp.Inject(onesoidctest.EndpointIntrospection, onesoidctest.Fault{Status: 200, ContentType: "application/json", Body: []byte(body)})
			res, err := c.ValidateToken(t.Context(), "opaque-token")
			if err == nil {
				t.Fatalf("accepted: %+v", res.Entity)
			}
			var he *HTTPError
			if res != nil || !errors.Is(err, ErrIntrospectionUnavailable) || !errors.As(err, &he) {
				t.Errorf("err = %v, want ErrIntrospectionUnavailable wrapping an *HTTPError", err)
			}
			if _, err := c.IntrospectToken(t.Context(), "opaque-token", ""); !errors.As(err, &he) {
				t.Errorf("IntrospectToken: %v, want an *HTTPError", err)
			}
		})
	}
}

// TestIntrospectionExpZeroIsInThePast: an active answer whose exp is 0 says the token expired at
// 1970-01-01T00:00:00Z (RFC 7662 §2.2, RFC 7519 §2), as exp 1 does; it was read as an answer
// without exp and accepted for the whole max age. IntrospectToken reports that expiry.
func TestIntrospectionExpZeroIsInThePast(t *testing.T) {
	t.Parallel()
	for _, exp := range []string{"0", "0.0", "-0", "0e5"} {
		t.Run(exp, func(t *testing.T) {
			t.Parallel()
			idp := onesoidctest.NewInMemory(onesoidctest.WithOpaqueAccessTokens())
			c := newTestClient(t, idp, testKey(t, "EdDSA"))
			idp.Inject(onesoidctest.EndpointIntrospection, onesoidctest.Fault{Status: 200, ContentType: "application/json",
				Body: []byte(`{"active":true,"token_type":"Bearer","sub":"alice","client_id":"x","exp":` + exp + `}`)})
			res, err := c.ValidateToken(t.Context(), "opaque-token")
			if res != nil || !errors.Is(err, ErrTokenExpired) {
				t.Errorf("ValidateToken: %v, want ErrTokenExpired", err)
			}
			ir, err := c.IntrospectToken(t.Context(), "opaque-token", "")
			if err != nil || !ir.Expiry.Equal(time.Unix(0, 0)) {
				t.Errorf("IntrospectToken: %+v, %v; want Expiry 1970-01-01", ir, err)
			}
		})
	}
}

// TestIntrospectionUserWithoutSubjectIsRefused: an active answer that names a user (username or
// preferred_username) but no sub was an EntityUser with an empty Subject: every such user would
// be one account to an application that keys users by Subject. It is refused naming "sub"; a
// client's own token without sub stays a device (its client id as Subject).
func TestIntrospectionUserWithoutSubjectIsRefused(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		`{"active":true,"token_type":"Bearer","client_id":"x","username":"bob"}`,
		`{"active":true,"token_type":"Bearer","sub":"","client_id":"x","username":"bob"}`,
		`{"active":true,"token_type":"Bearer","client_id":"x","preferred_username":"bob"}`,
	} {
		idp := onesoidctest.NewInMemory(onesoidctest.WithOpaqueAccessTokens())
		c := newTestClient(t, idp, testKey(t, "EdDSA"))
		idp.Inject(onesoidctest.EndpointIntrospection, onesoidctest.Fault{Status: 200, ContentType: "application/json", Body: []byte(body)})
		res, err := c.ValidateToken(t.Context(), "opaque-token")
		var ve *ValidationError
		if res != nil || !errors.Is(err, ErrInvalidClaim) || !errors.As(err, &ve) || ve.Claim != "sub" {
			t.Errorf("%s: %v, %v; want ErrInvalidClaim naming sub", body, res, err)
		}
	}
	idp := onesoidctest.NewInMemory(onesoidctest.WithOpaqueAccessTokens())
	c := newTestClient(t, idp, testKey(t, "EdDSA"))
	idp.Inject(onesoidctest.EndpointIntrospection, onesoidctest.Fault{Status: 200, ContentType: "application/json",
		Body: []byte(`{"active":true,"token_type":"Bearer","client_id":"x"}`)})
	if res, err := c.ValidateToken(t.Context(), "opaque-token"); err != nil || res.Entity.Kind != EntityDevice || res.Entity.Subject != "x" {
		t.Errorf("device token: %v, %v", res, err)
	}
}

// TestIntrospectionAnswerErrorsQuoteNoProviderText: a refused answer's error quotes a member
// name only when it is one read here: a provider that uses the token as a member name (twice)
// does not get it into the error.
func TestIntrospectionAnswerErrorsQuoteNoProviderText(t *testing.T) {
	t.Parallel()
	const tok = "opaque-token-that-must-stay-secret-12345"
	idp := onesoidctest.NewInMemory(onesoidctest.WithOpaqueAccessTokens())
	c := newTestClient(t, idp, testKey(t, "EdDSA"))
	idp.Inject(onesoidctest.EndpointIntrospection, onesoidctest.Fault{Status: 200, ContentType: "application/json",
		Body: []byte(`{"active":true,"` + tok + `":1,"` + tok + `":2}`)})
	_, err := c.ValidateToken(t.Context(), tok)
	if err == nil || strings.Contains(err.Error(), tok[:20]) {
		t.Errorf("err = %v, want a refusal without the token", err)
	}
}
