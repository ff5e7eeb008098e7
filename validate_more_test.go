package onesoidc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ones-now/onesoidc/internal/jose"
	"github.com/ones-now/onesoidc/onesoidctest"
	"go.uber.org/goleak"
)

// atClaims are RFC 9068 §2.2 claims of a device's client_credentials token for aud.
func atClaims(idp *onesoidctest.Server, aud any) func(map[string]any) {
	return func(m map[string]any) {
		m["sub"] = testClientID
		m["client_id"] = testClientID
		m["aud"] = aud
		m["scope"] = "read write"
		m["jti"] = "j-1"
	}
}

func TestVerifyAccessToken(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	c := newValidationClient(t, idp)
	at := map[string]any{"typ": "at+jwt"}
	tok := mint(t, idp, at, atClaims(idp, "https://api.example"))
	res := wantAccept(t)(c.VerifyAccessToken(t.Context(), tok, ExpectAudience("https://api.example")))
	e := res.Entity
	if res.Kind != KindAccessToken || e.Kind != EntityDevice || e.ClientID != testClientID || !e.HasScope("write") {
		t.Errorf("result %+v %+v", res, e)
	}
	// Default audience: the client id.
	res, err := c.VerifyAccessToken(t.Context(), tok)
	wantReject(t, res, err, ErrInvalidAudience, tok)
	wantAccept(t)(c.VerifyAccessToken(t.Context(), mint(t, idp, at, atClaims(idp, []string{"x", testClientID}))))
	// application/at+jwt is the same type; an ID token (typ JWT) is no access token.
	wantAccept(t)(c.VerifyAccessToken(t.Context(), mint(t, idp, map[string]any{"typ": "application/at+jwt"}, atClaims(idp, testClientID))))
	idTok := mint(t, idp, nil, nil)
	res, err = c.VerifyAccessToken(t.Context(), idTok)
	wantReject(t, res, err, ErrInvalidTokenType, idTok)
	wantAccept(t)(c.ValidateToken(t.Context(), idTok)) // cached as ID token now
	res, err = c.VerifyAccessToken(t.Context(), idTok)
	wantReject(t, res, err, ErrInvalidTokenType, idTok)
	// exp and iat are required (RFC 9068 §2.2; TestRFC9068RequiredClaims has the others).
	for _, claim := range []string{"exp", "iat"} {
		tok := mint(t, idp, at, func(m map[string]any) { atClaims(idp, testClientID)(m); delete(m, claim) })
		res, err = c.VerifyAccessToken(t.Context(), tok)
		wantReject(t, res, err, ErrInvalidClaim, tok)
	}
}

// TestRFC9068RequiredClaims: a JWT access token must have iss, exp, aud, sub, client_id, iat and
// jti (RFC 9068 §2.2), whether VerifyAccessToken or ValidateToken checks it; an ID token needs
// no client_id or jti.
func TestRFC9068RequiredClaims(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	c := newValidationClient(t, idp)
	at := map[string]any{"typ": "at+jwt"}
	edit := func(e func(map[string]any)) func(map[string]any) {
		return func(m map[string]any) { atClaims(idp, testClientID)(m); e(m) }
	}
	cases := map[string]func(map[string]any){
		"no iat":              del("iat"),
		"no jti":              del("jti"),
		"no client_id":        del("client_id"),
		"empty jti":           set("jti", ""),
		"empty client_id":     set("client_id", ""),
		"jti not a string":    set("jti", 1),
		"client_id an array":  set("client_id", []string{testClientID}),
		"no sub":              del("sub"),
		"no exp":              del("exp"),
		"client_id, only azp": func(m map[string]any) { delete(m, "client_id"); m["azp"] = testClientID },
	}
	for name, e := range cases {
		tok := mint(t, idp, at, edit(e))
		res, err := c.VerifyAccessToken(t.Context(), tok)
		wantReject(t, res, err, ErrInvalidClaim, tok)
		res, err = c.ValidateToken(t.Context(), tok)
		if err == nil {
			t.Fatalf("%s: accepted by ValidateToken", name)
		}
		wantReject(t, res, err, ErrInvalidClaim, tok)
	}
	wantAccept(t)(c.ValidateToken(t.Context(), mint(t, idp, at, edit(func(map[string]any) {}))))
	wantAccept(t)(c.ValidateToken(t.Context(), mint(t, idp, nil, nil))) // ID token: no jti, no client_id
}

// TestAuthReqIDBinding: CIBA Core §10.1.1 (SECURITY-CASES CB-18).
func TestAuthReqIDBinding(t *testing.T) {
	t.Parallel()
	runClaimCases(t, verifyIDToken(ExpectAuthReqID("req-1")), []claimCase{
		{"absent", nil, nil},
		{"equal", set(authReqIDClaim, "req-1"), nil},
		{"different", set(authReqIDClaim, "req-2"), ErrInvalidClaim},
		{"not a string", set(authReqIDClaim, 1), ErrInvalidClaim},
		{"with a nonce, ignored", func(m map[string]any) { m[authReqIDClaim] = "req-1"; m["nonce"] = "n" }, nil},
	})
}

func TestEntityKindAndRole(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	c := newValidationClient(t, idp)
	cases := []struct {
		name string
		edit func(map[string]any)
		kind EntityKind
		role string
	}{
		{"user", set("role", "admin"), EntityUser, "admin"},
		{"idp_role", set("idp_role", "operator"), EntityUser, "operator"},
		{"role wins", func(m map[string]any) { m["role"] = "a"; m["idp_role"] = "b" }, EntityUser, "a"},
		{"role not a string", set("role", []string{"admin"}), EntityUser, ""},
		{"device by client_id", func(m map[string]any) { m["sub"] = testClientID; m["client_id"] = testClientID }, EntityDevice, ""},
		{"device by azp", func(m map[string]any) { m["sub"] = testClientID; m["azp"] = testClientID }, EntityDevice, ""},
		{"sub = client, with username", func(m map[string]any) {
			m["sub"] = testClientID
			m["client_id"] = testClientID
			m["preferred_username"] = "bob"
		}, EntityUser, ""},
	}
	for _, tc := range cases {
		res := wantAccept(t)(c.ValidateToken(t.Context(), mint(t, idp, nil, tc.edit)))
		if res.Entity.Kind != tc.kind || res.Entity.Role != tc.role {
			t.Errorf("%s: kind %v role %q, want %v %q", tc.name, res.Entity.Kind, res.Entity.Role, tc.kind, tc.role)
		}
	}
}

// TestVerifiedTokenCache: repeat validations are answered from memory, with the time checks
// run again, results that callers may change, and bounded size.
func TestVerifiedTokenCache(t *testing.T) {
	t.Parallel()
	t.Run("expiry checked on hits", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			idp := onesoidctest.NewInMemory()
			c := newValidationClient(t, idp)
			tok := mint(t, idp, nil, set("exp", time.Now().Add(2*time.Minute).Unix()))
			wantAccept(t)(c.ValidateToken(t.Context(), tok))
			time.Sleep(3*time.Minute + time.Second) // past exp + leeway
			res, err := c.ValidateToken(t.Context(), tok)
			wantReject(t, res, err, ErrTokenExpired, tok)
			if n := c.val.cache.len(); n != 0 {
				t.Errorf("%d entries, want the expired one dropped", n)
			}
			if n := idp.Count(onesoidctest.EndpointJWKS); n != 1 {
				t.Errorf("%d JWKS requests", n)
			}
		})
	})
	t.Run("per-call options checked on hits", func(t *testing.T) {
		idp := onesoidctest.NewInMemory()
		c := newValidationClient(t, idp)
		cached := func(tok string) {
			t.Helper()
			if c.val.cache.get(tok) == nil {
				t.Fatal("token not cached")
			}
		}
		alg := jose.ParseAlg(idp.SigningKey().Algorithm)
		tok := mint(t, idp, nil, func(m map[string]any) {
			m["nonce"], m[authReqIDClaim], m["at_hash"] = "n1", "r1", jose.AtHash(alg, "AT1")
			m["iat"] = time.Now().Add(-10 * time.Minute).Unix()
		})
		wantAccept(t)(c.VerifyIDToken(t.Context(), tok, ExpectNonce("n1"), ExpectAuthReqID("r1"),
			ExpectAtHashOf("AT1"), MaxTokenAge(time.Hour)))
		for name, opt := range map[string]VerifyOption{
			"nonce":         ExpectNonce("n2"),
			"subject":       ExpectSubject("someone else"),
			"auth_req_id":   ExpectAuthReqID("r2"),
			"at_hash":       ExpectAtHashOf("AT2"),
			"max token age": MaxTokenAge(time.Minute),
		} {
			cached(tok)
			res, err := c.ValidateToken(t.Context(), tok, opt)
			if err == nil {
				t.Fatalf("%s: accepted on a hit", name)
			}
			wantReject(t, res, err, ErrInvalidClaim, tok)
		}
		cached(tok)
		res, err := c.VerifyIDToken(t.Context(), tok) // defaultMaxTokenAge, 5 minutes
		wantReject(t, res, err, ErrInvalidClaim, tok)
		cached(tok)
		wantAccept(t)(c.ValidateToken(t.Context(), tok, ExpectAuthReqID("r1"), ExpectAtHashOf("AT1")))

		const api = "https://api.example"
		at := mint(t, idp, map[string]any{"typ": "at+jwt"}, atClaims(idp, api))
		wantAccept(t)(c.ValidateToken(t.Context(), at, ExpectAudience(api)))
		for _, aud := range []string{"https://other.example", testClientID} {
			cached(at)
			res, err := c.ValidateToken(t.Context(), at, ExpectAudience(aud))
			wantReject(t, res, err, ErrInvalidAudience, at)
		}
		cached(at)
		res, err = c.ValidateToken(t.Context(), at) // default audience: the client id
		wantReject(t, res, err, ErrInvalidAudience, at)
	})
	t.Run("results are copies", func(t *testing.T) {
		idp := onesoidctest.NewInMemory()
		c := newValidationClient(t, idp)
		tok := mint(t, idp, nil, set("amr", []string{"pwd"}))
		res := wantAccept(t)(c.ValidateToken(t.Context(), tok))
		res.Entity.Audience[0] = "tampered"
		res.Entity.AuthMethods[0] = "tampered"
		res.Entity.Subject = "tampered"
		// The cached entry shares no slice with the first result either.
		e := c.val.cache.get(tok)
		if slices.Contains(e.claims().Aud(nil), "tampered") || slices.Contains(e.claims().Amr(), "tampered") {
			t.Errorf("cached entry shares memory with the first result: %q", e.claims().Payload())
		}
		again := wantAccept(t)(c.ValidateToken(t.Context(), tok))
		again.Entity.Audience[0] = "tampered too"
		res = wantAccept(t)(c.ValidateToken(t.Context(), tok))
		if res.Entity.Audience[0] != testClientID || res.Entity.AuthMethods[0] != "pwd" || res.Entity.Subject != testSubject {
			t.Errorf("cache changed by a caller: %+v", res.Entity)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		idp := onesoidctest.NewInMemory()
		idp.UseKey(onesoidctest.NewKey("EdDSA"))
		c := newValidationClient(t, idp)
		wantAccept(t)(c.ValidateToken(t.Context(), mint(t, idp, nil, set("jti", "one"))))
		one := c.val.cache.bytes() // the memory of one entry
		if one == 0 || one > 600 {
			t.Fatalf("one entry holds %d bytes, want at most 600", one)
		}
		c.val.cache = newTokenCache(10 * one)
		for i := range 50 { // jti of the length of "one": entries of one size
			wantAccept(t)(c.ValidateToken(t.Context(), mint(t, idp, nil, set("jti", fmt.Sprintf("%03d", i)))))
			if n, b := c.val.cache.len(), c.val.cache.bytes(); n > 10 || b > 10*one {
				t.Fatalf("%d entries of %d bytes, want at most 10 of %d", n, b, 10*one)
			}
		}
		c.val.cache = newTokenCache(3000) // a few tokens
		for i := range 20 {
			wantAccept(t)(c.ValidateToken(t.Context(), mint(t, idp, nil, set("jti", fmt.Sprint(i)))))
		}
		if c.val.cache.bytes() > 3000 || c.val.cache.len() > 3000/300 {
			t.Errorf("%d bytes in %d entries", c.val.cache.bytes(), c.val.cache.len())
		}
	})
}

// TestHF18ClockSkew: skew within the leeway is accepted, beyond it refused with a hint; the one
// leeway applies to exp, nbf and iat alike.
func TestHF18ClockSkew(t *testing.T) {
	t.Parallel()
	fresh := func(skew time.Duration) func(map[string]any) {
		return func(m map[string]any) {
			now := time.Now().Add(skew) // the provider's clock
			m["iat"], m["nbf"], m["exp"] = now.Unix(), now.Unix(), now.Add(time.Minute).Unix()
		}
	}
	runClaimCases(t, verifyIDToken(), []claimCase{
		{"provider 4 min ahead", fresh(4 * time.Minute), nil},
		{"provider 4 min behind", fresh(-4 * time.Minute), nil},
		{"provider 10 min ahead", fresh(10 * time.Minute), ErrTokenNotYetValid},
		{"provider 10 min behind", fresh(-10 * time.Minute), ErrTokenExpired},
	}, WithLeeway(5*time.Minute))
	idp := onesoidctest.NewInMemory()
	c := newValidationClient(t, idp)
	_, err := c.VerifyIDToken(t.Context(), mint(t, idp, nil, fresh(10*time.Minute)))
	if err == nil || !errorsIsAny(err, ErrTokenNotYetValid) || !containsAll(err.Error(), "clock skew?") {
		t.Errorf("err = %v, want not yet valid with a skew hint", err)
	}
}

// TestValidationNoGoroutineLeak: a caller that gives up on a slow JWKS fetch leaves nothing
// running once the fetch ends. The fetch is held by the test's transport until released, not
// delayed for real: the first caller gives up while it is surely in flight.
func TestValidationNoGoroutineLeak(t *testing.T) { // not parallel: goleak
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const bound = 30 * time.Second // failure bound only; each wait below ends in milliseconds
	idp := onesoidctest.NewServer()
	defer idp.Close()
	arrived, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	base := idp.HTTPClient().Transport
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if strings.HasSuffix(r.URL.Path, "/jwks") {
			once.Do(func() { close(arrived) })
			select {
			case <-release:
			case <-r.Context().Done():
				return nil, r.Context().Err()
			}
		}
		return base.RoundTrip(r)
	})}
	c := newValidationClient(t, idp, WithHTTPClient(hc))
	tok1, tok2 := mint(t, idp, nil, nil), mint(t, idp, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := make(chan error, 1)
	go func() {
		_, err := c.ValidateToken(ctx, tok1)
		first <- err
	}()
	select {
	case <-arrived:
	case err := <-first:
		t.Fatalf("ValidateToken returned %v without fetching the JWKS", err)
	case <-time.After(bound):
		t.Fatal("no JWKS fetch")
	}
	cancel() // the first caller gives up while the fetch is held
	select {
	case err := <-first:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(bound):
		t.Fatal("ValidateToken did not return after its context was cancelled")
	}
	// This call joins the fetch still in flight and returns when it is done.
	var res *AuthenticationResult
	var err error
	second := make(chan struct{})
	go func() {
		defer close(second)
		res, err = c.ValidateToken(context.Background(), tok2)
	}()
	close(release)
	<-second
	wantAccept(t)(res, err)
	if n := idp.Count(onesoidctest.EndpointJWKS); n != 1 {
		t.Errorf("%d JWKS requests, want 1", n)
	}
	c.http.client.CloseIdleConnections()
}

// TestKindSpecificOptionsFixTheKind: an option that only fits one kind of token makes
// ValidateToken accept only that kind (RFC 8725 §2.8, §3.11; RFC 9068 §4): ExpectAudience access
// tokens, ExpectNonce, ExpectAuthReqID, ExpectAtHashOf and MaxTokenAge ID tokens. On cache
// hits too.
func TestKindSpecificOptionsFixTheKind(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	c := newValidationClient(t, idp)
	const api = "https://api.example"
	at := mint(t, idp, map[string]any{"typ": "at+jwt"}, atClaims(idp, []string{api, testClientID}))
	id := mint(t, idp, nil, set("nonce", "n"))
	idOnly := map[string]VerifyOption{
		"ExpectNonce":     ExpectNonce("n"),
		"ExpectAuthReqID": ExpectAuthReqID("r"),
		"ExpectAtHashOf":  ExpectAtHashOf("x"),
		"MaxTokenAge":     MaxTokenAge(time.Hour),
	}
	for _, cached := range []bool{false, true} {
		if cached {
			wantAccept(t)(c.ValidateToken(t.Context(), at))
			wantAccept(t)(c.ValidateToken(t.Context(), id))
		}
		for name, opt := range idOnly {
			res, err := c.ValidateToken(t.Context(), at, opt)
			if err == nil {
				t.Fatalf("cached %v: access token accepted with %s", cached, name)
			}
			wantReject(t, res, err, ErrInvalidTokenType, at)
			wantAccept(t)(c.ValidateToken(t.Context(), id, opt))
		}
		// The ID token's aud is the client id: ExpectAudience(client id) still wants an access token.
		for _, aud := range []string{api, testClientID} {
			res, err := c.ValidateToken(t.Context(), id, ExpectAudience(aud))
			wantReject(t, res, err, ErrInvalidTokenType, id)
			wantAccept(t)(c.ValidateToken(t.Context(), at, ExpectAudience(aud)))
		}
	}
}

// TestKindSpecificOptionsConflict: options of both kinds, or of the other kind than the method,
// are a usage error (a *ConfigError matching errConflictingVerifyOptions), not a rejection of the
// token and not a panic.
func TestKindSpecificOptionsConflict(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	c := newValidationClient(t, idp)
	at := mint(t, idp, map[string]any{"typ": "at+jwt"}, atClaims(idp, testClientID))
	id := mint(t, idp, nil, set("nonce", "n"))
	cases := []struct {
		name string
		call func() (*AuthenticationResult, error)
	}{
		{"ValidateToken, both kinds", func() (*AuthenticationResult, error) {
			return c.ValidateToken(t.Context(), id, ExpectAudience(testClientID), ExpectNonce("n"))
		}},
		{"ValidateToken, both kinds, access token", func() (*AuthenticationResult, error) {
			return c.ValidateToken(t.Context(), at, MaxTokenAge(time.Hour), ExpectAudience(testClientID))
		}},
		{"VerifyIDToken with ExpectAudience", func() (*AuthenticationResult, error) {
			return c.VerifyIDToken(t.Context(), id, ExpectAudience(testClientID))
		}},
		{"VerifyAccessToken with ExpectNonce", func() (*AuthenticationResult, error) {
			return c.VerifyAccessToken(t.Context(), at, ExpectNonce("n"))
		}},
		{"VerifyAccessToken with MaxTokenAge", func() (*AuthenticationResult, error) {
			return c.VerifyAccessToken(t.Context(), at, MaxTokenAge(0))
		}},
	}
	for _, tc := range cases {
		res, err := tc.call()
		var ce *ConfigError
		if res != nil || !errors.As(err, &ce) || !errors.Is(err, errConflictingVerifyOptions) {
			t.Errorf("%s: %v, %v; want a *ConfigError matching errConflictingVerifyOptions", tc.name, res, err)
			continue
		}
		var ve *ValidationError
		if errors.As(err, &ve) {
			t.Errorf("%s: %v is a *ValidationError", tc.name, err)
		}
	}
	// Both kinds' options that fit the method are fine: ExpectSubject fits both.
	wantAccept(t)(c.VerifyAccessToken(t.Context(), at, ExpectAudience(testClientID), ExpectSubject(testClientID)))
	wantAccept(t)(c.VerifyIDToken(t.Context(), id, ExpectNonce("n"), ExpectSubject(testSubject)))
}

// TestAccessTokenForAnotherAudienceSaysHowToNameIt: an access token checked against the default
// audience (the client id) that names another says that ExpectAudience names the API's; with
// ExpectAudience given, the refusal names that value alone.
func TestAccessTokenForAnotherAudienceSaysHowToNameIt(t *testing.T) {
	t.Parallel()
	idp := startIdP(t)
	c := newTestClient(t, idp, testKey(t, "ES256"))
	tok, err := idp.MintAccessToken("3f9a6c21-0000-4b7f-a2c5-6e1d0b9f4a87", "alice", "read")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ValidateToken(t.Context(), tok)
	want := `aud does not contain "` + testClientID + `" (the client id, by default; ExpectAudience names the API's audience)`
	if !errors.Is(err, ErrInvalidAudience) || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want ErrInvalidAudience saying %s", err, want)
	}
	_, err = c.ValidateToken(t.Context(), tok, ExpectAudience("https://api.example"))
	if !errors.Is(err, ErrInvalidAudience) || !strings.HasSuffix(err.Error(), `aud does not contain "https://api.example"`) {
		t.Errorf("err = %v, want ErrInvalidAudience naming https://api.example alone", err)
	}
}
