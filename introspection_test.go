package onesoidc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ones-now/onesoidc/internal/cache"
	"github.com/ones-now/onesoidc/internal/jose"
	"github.com/ones-now/onesoidc/onesoidctest"
)

// opaqueClient returns a client of an in-memory IdP that issues opaque access tokens.
func opaqueClient(t *testing.T, opts ...Option) (*OpenIDConnectClient, *onesoidctest.Server) {
	t.Helper()
	idp := onesoidctest.NewInMemory(onesoidctest.WithOpaqueAccessTokens())
	return newTestClient(t, idp, testKey(t, "EdDSA"), opts...), idp
}

// TestValidateTokenIntrospectsOpaqueDeviceTokens: an opaque device token is validated by
// introspection into the same AuthenticationResult as a JWT: an access token of a device whose
// subject is its client id.
func TestValidateTokenIntrospectsOpaqueDeviceTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, idp := opaqueClient(t, WithDeviceTokenScope("device", "read"))
		tok, err := c.RequestDeviceAccessToken(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if isJWT(tok.AccessToken) {
			t.Fatalf("the mock issued a JWT")
		}
		for name, validate := range map[string]func() (*AuthenticationResult, error){
			"ValidateToken":     func() (*AuthenticationResult, error) { return c.ValidateToken(t.Context(), tok.AccessToken) },
			"VerifyAccessToken": func() (*AuthenticationResult, error) { return c.VerifyAccessToken(t.Context(), tok.AccessToken) },
		} {
			res, err := validate()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			e := res.Entity
			if res.Kind != KindAccessToken || e.Kind != EntityDevice || e.Subject != testClientID || e.ClientID != testClientID ||
				e.Issuer != idp.Issuer || e.Scope != "device read" || !e.Expiry.Equal(tok.Expiry.Truncate(time.Second)) || res.Algorithm != "" {
				t.Errorf("%s: result %+v %+v", name, res, e)
			}
			var raw struct {
				Active bool `json:"active"`
			}
			if err := res.Claims(&raw); err != nil || !raw.Active {
				t.Errorf("%s: Claims: %v %+v", name, err, raw)
			}
		}
		if n := idp.Count(onesoidctest.EndpointIntrospection); n != 1 {
			t.Errorf("%d introspections for two validations, want 1 (cached)", n)
		}
		reqs := idp.Requests(onesoidctest.EndpointIntrospection)
		if f := reqs[0].Form; f.Get("token") != tok.AccessToken || f.Get("token_type_hint") != "access_token" || f.Get("client_assertion") == "" {
			t.Errorf("introspection form = %v", f)
		}
	})
}

// TestValidateTokenIntrospectsOpaqueUserTokens: a CIBA login's opaque access token speaks for the
// user.
func TestValidateTokenIntrospectsOpaqueUserTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, _ := opaqueClient(t)
		ack, err := c.MakeCIBARequest(t.Context(), CIBARequest{Hint: LoginHint{Kind: HintLogin, Value: "alice"}, Scope: []string{"openid", "profile"}})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := c.WaitForCIBA(t.Context(), ack)
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.ValidateToken(t.Context(), tok.Token.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if res.Entity.Kind != EntityUser || res.Entity.Subject != "alice" || res.Entity.ClientID != testClientID {
			t.Errorf("entity %+v", res.Entity)
		}
	})
}

// TestIntrospectionCacheIsKeyedByTokenHash: the cache holds the SHA-256 of the token, never the
// token.
func TestIntrospectionCacheIsKeyedByTokenHash(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, _ := opaqueClient(t)
		tok, err := c.DeviceAccessToken(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.ValidateToken(t.Context(), tok.AccessToken); err != nil {
			t.Fatal(err)
		}
		in := c.val.intro
		e, ok := in.introCache.Get(in.introCache.Key(tok.AccessToken))
		if in.len() != 1 || !ok {
			t.Fatalf("entries %d, entry under the token hash %v", in.len(), e)
		}
		if s := fmt.Sprintf("%+v %+v", e, jose.PackedAt(e.text)); strings.Contains(s, tok.AccessToken) {
			t.Error("the cache entry holds the token")
		}
	})
}

// TestIntrospectionPositiveEntryEndsAtExpOrMaxAge: an active answer is reused until the earlier
// of the token's exp and the max age; then the provider is asked again, and a token revoked
// meanwhile fails with ErrTokenInactive.
func TestIntrospectionPositiveEntryEndsAtExpOrMaxAge(t *testing.T) {
	t.Run("max age", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			idp := onesoidctest.NewInMemory(onesoidctest.WithOpaqueAccessTokens(), onesoidctest.WithTokenLifetime(time.Hour))
			c := newTestClient(t, idp, testKey(t, "EdDSA"), WithIntrospectionMaxAge(10*time.Second))
			tok, _ := c.DeviceAccessToken(t.Context())
			if _, err := c.ValidateToken(t.Context(), tok.AccessToken); err != nil {
				t.Fatal(err)
			}
			if err := c.RevokeToken(t.Context(), tok.AccessToken, ""); err != nil {
				t.Fatal(err)
			}
			time.Sleep(9 * time.Second)
			if _, err := c.ValidateToken(t.Context(), tok.AccessToken); err != nil {
				t.Fatalf("within the max age: %v", err)
			}
			time.Sleep(2 * time.Second)
			if _, err := c.ValidateToken(t.Context(), tok.AccessToken); !errors.Is(err, ErrTokenInactive) {
				t.Fatalf("past the max age after revocation: %v, want ErrTokenInactive", err)
			}
			if n := idp.Count(onesoidctest.EndpointIntrospection); n != 2 {
				t.Errorf("%d introspections, want 2", n)
			}
		})
	})
	t.Run("exp", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			idp := onesoidctest.NewInMemory(onesoidctest.WithOpaqueAccessTokens(), onesoidctest.WithTokenLifetime(60*time.Second))
			c := newTestClient(t, idp, testKey(t, "EdDSA"))
			tok, _ := c.DeviceAccessToken(t.Context())
			if _, err := c.ValidateToken(t.Context(), tok.AccessToken); err != nil {
				t.Fatal(err)
			}
			time.Sleep(61 * time.Second)
			if _, err := c.ValidateToken(t.Context(), tok.AccessToken); !errors.Is(err, ErrTokenInactive) {
				t.Fatalf("past exp: %v, want ErrTokenInactive from a new introspection", err)
			}
			if n := idp.Count(onesoidctest.EndpointIntrospection); n != 2 {
				t.Errorf("%d introspections, want 2", n)
			}
		})
	})
}

// TestIntrospectionInactiveIsCachedBriefly: an inactive answer is a typed error matching
// ErrTokenInactive, reused for introspectionNegativeTTL, then asked again.
func TestIntrospectionInactiveIsCachedBriefly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, idp := opaqueClient(t)
		const unknown = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCd"
		for range 3 {
			res, err := c.ValidateToken(t.Context(), unknown)
			var ve *ValidationError
			if res != nil || !errors.Is(err, ErrTokenInactive) || !errors.As(err, &ve) || ve.reason != reasonInactive {
				t.Fatalf("err = %v, want ErrTokenInactive", err)
			}
			if strings.Contains(err.Error(), unknown) {
				t.Fatal("the error holds the token")
			}
		}
		if n := idp.Count(onesoidctest.EndpointIntrospection); n != 1 {
			t.Errorf("%d introspections, want 1", n)
		}
		time.Sleep(introspectionNegativeTTL)
		_, _ = c.ValidateToken(t.Context(), unknown)
		if n := idp.Count(onesoidctest.EndpointIntrospection); n != 2 {
			t.Errorf("%d introspections after the negative TTL, want 2", n)
		}
	})
}

// TestIntrospectionFailuresAreNotCached: a provider that cannot answer gives
// ErrIntrospectionUnavailable (RequireToken: 503), and the next call asks again.
func TestIntrospectionFailuresAreNotCached(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, idp := opaqueClient(t)
		tok, _ := c.DeviceAccessToken(t.Context())
		idp.Inject(onesoidctest.EndpointIntrospection, onesoidctest.Fault{Times: 1, Status: 502, ContentType: "text/html", Body: []byte("<html>")})
		idp.Inject(onesoidctest.EndpointIntrospection, onesoidctest.Fault{Times: 1, Status: 401, ContentType: "application/json",
			Body: []byte(`{"error":"invalid_client"}`)})
		idp.Inject(onesoidctest.EndpointIntrospection, onesoidctest.Fault{Times: 1, Status: 200, ContentType: "application/json",
			Body: []byte(`{"active":"yes"}`)})
		for i := range 3 {
			if _, err := c.ValidateToken(t.Context(), tok.AccessToken); !errors.Is(err, ErrIntrospectionUnavailable) {
				t.Fatalf("failure %d: err = %v, want ErrIntrospectionUnavailable", i, err)
			}
		}
		if _, err := c.ValidateToken(t.Context(), tok.AccessToken); err != nil {
			t.Fatalf("after the provider recovered: %v", err)
		}
		if n := idp.Count(onesoidctest.EndpointIntrospection); n != 4 {
			t.Errorf("%d introspections, want 4", n)
		}
	})
}

// TestIntrospectionOneRequestForConcurrentCallers: 1000 concurrent validations of one new
// opaque token cost exactly one introspection.
func TestIntrospectionOneRequestForConcurrentCallers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, idp := opaqueClient(t)
		tok, _ := c.DeviceAccessToken(t.Context())
		idp.Inject(onesoidctest.EndpointIntrospection, onesoidctest.Fault{Times: 1, Delay: 100 * time.Millisecond})
		var wg sync.WaitGroup
		errs := make([]error, 1000)
		for i := range errs {
			wg.Go(func() { _, errs[i] = c.ValidateToken(t.Context(), tok.AccessToken) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("caller %d: %v", i, err)
			}
		}
		if n := idp.Count(onesoidctest.EndpointIntrospection); n != 1 {
			t.Errorf("%d introspections for 1000 concurrent callers, want exactly 1", n)
		}
	})
}

// TestIntrospectionCallerGivingUpDoesNotFailOthers: a caller whose context ends stops waiting
// at once; the introspection goes on for the others and is cached.
func TestIntrospectionCallerGivingUpDoesNotFailOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, idp := opaqueClient(t)
		tok, _ := c.DeviceAccessToken(t.Context())
		idp.Inject(onesoidctest.EndpointIntrospection, onesoidctest.Fault{Times: 1, Delay: time.Second})
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		var other error
		done := make(chan struct{})
		go func() { _, other = c.ValidateToken(t.Context(), tok.AccessToken); close(done) }()
		if _, err := c.ValidateToken(ctx, tok.AccessToken); !errors.Is(err, ErrIntrospectionUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("impatient caller: %v", err)
		}
		<-done
		if other != nil {
			t.Errorf("patient caller: %v", other)
		}
		if n := idp.Count(onesoidctest.EndpointIntrospection); n != 1 {
			t.Errorf("%d introspections, want 1", n)
		}
	})
}

// TestIntrospectionAnswerChecks: answers of another issuer, a refresh token, a token past exp,
// and an answer naming nobody are refused; every problem is typed and no answer claims are
// returned.
func TestIntrospectionAnswerChecks(t *testing.T) {
	far := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	cases := []struct {
		name string
		body string
		want error
	}{
		{"other issuer", fmt.Sprintf(`{"active":true,"iss":"https://evil.example/oidc","client_id":"x","exp":%d}`, far), ErrInvalidIssuer},
		{"refresh token", fmt.Sprintf(`{"active":true,"client_id":"x","token_type":"refresh_token","exp":%d}`, far), ErrInvalidTokenType},
		{"past exp", `{"active":true,"token_type":"Bearer","client_id":"x","exp":1000}`, ErrTokenExpired},
		{"future nbf", fmt.Sprintf(`{"active":true,"token_type":"Bearer","client_id":"x","nbf":%d}`, far), ErrTokenNotYetValid},
		{"nobody", fmt.Sprintf(`{"active":true,"token_type":"Bearer","exp":%d}`, far), ErrInvalidClaim},
		{"no token_type", // how oidc-provider answers for a refresh token
			fmt.Sprintf(`{"active":true,"sub":"alice","client_id":"x","exp":%d}`, far), ErrInvalidTokenType},
		{"DPoP token", fmt.Sprintf(`{"active":true,"token_type":"DPoP","client_id":"x","exp":%d}`, far), ErrInvalidTokenType},
		{"exp after 9999", `{"active":true,"client_id":"x","exp":253402300800}`, ErrIntrospectionUnavailable},
		{"inactive", `{"active":false}`, ErrTokenInactive},
		{"no active", `{"sub":"x"}`, ErrTokenInactive},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			idp := onesoidctest.NewInMemory(onesoidctest.WithOpaqueAccessTokens())
			c := newTestClient(t, idp, testKey(t, "EdDSA"))
			idp.Inject(onesoidctest.EndpointIntrospection, onesoidctest.Fault{Status: 200, ContentType: "application/json", Body: []byte(tc.body)})
			res, err := c.ValidateToken(t.Context(), "opaque-token-"+strings.ReplaceAll(tc.name, " ", "-"))
			if res != nil || !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("matching issuer", func(t *testing.T) {
		t.Parallel()
		idp := onesoidctest.NewInMemory(onesoidctest.WithOpaqueAccessTokens())
		c := newTestClient(t, idp, testKey(t, "EdDSA"))
		idp.Inject(onesoidctest.EndpointIntrospection, onesoidctest.Fault{Status: 200, ContentType: "application/json",
			Body: fmt.Appendf(nil, `{"active":true,"token_type":"Bearer","iss":%q,"sub":"alice","username":"alice","client_id":"app","exp":%d,"role":"admin"}`, idp.Issuer, far)})
		res, err := c.ValidateToken(t.Context(), "opaque")
		if err != nil || res.Entity.Kind != EntityUser || res.Entity.Username != "alice" || res.Entity.Role != "admin" {
			t.Errorf("res %+v, err %v", res, err)
		}
	})
}

// TestIntrospectionExpectOptions: ExpectAudience checks "aud" when the answer has one and
// fails when it has none; ExpectSubject and ExpectScope apply; options that fit ID tokens only,
// and VerifyIDToken, refuse an opaque token without asking the provider.
func TestIntrospectionExpectOptions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := onesoidctest.NewInMemory(onesoidctest.WithOpaqueAccessTokens())
		key := testKey(t, "EdDSA")
		c := newTestClient(t, idp, key, WithDeviceTokenScope("read"))
		plain, _ := c.RequestDeviceAccessToken(t.Context())
		c2 := newTestClient(t, idp, key, WithDeviceTokenResource("https://api.example"))
		withAud, _ := c2.RequestDeviceAccessToken(t.Context())
		ok := func(tok string, opts ...VerifyOption) {
			t.Helper()
			if _, err := c.ValidateToken(t.Context(), tok, opts...); err != nil {
				t.Errorf("refused: %v", err)
			}
		}
		fails := func(want error, tok string, opts ...VerifyOption) {
			t.Helper()
			if _, err := c.ValidateToken(t.Context(), tok, opts...); !errors.Is(err, want) {
				t.Errorf("err = %v, want %v", err, want)
			}
		}
		ok(plain.AccessToken)
		ok(plain.AccessToken, ExpectScope("read"), ExpectSubject(testClientID))
		fails(ErrInsufficientScope, plain.AccessToken, ExpectScope("write"))
		fails(ErrInvalidClaim, plain.AccessToken, ExpectSubject("alice"))
		fails(ErrInvalidAudience, plain.AccessToken, ExpectAudience("https://api.example"))
		ok(withAud.AccessToken, ExpectAudience("https://api.example"))
		fails(ErrInvalidAudience, withAud.AccessToken, ExpectAudience("https://other.example"))
		fails(ErrInvalidAudience, withAud.AccessToken) // default audience: the client id

		before := idp.Count(onesoidctest.EndpointIntrospection)
		fails(ErrInvalidTokenType, "fresh-opaque-token", ExpectNonce("n"))
		if _, err := c.VerifyIDToken(t.Context(), "fresh-opaque-token"); !errors.Is(err, ErrInvalidTokenType) {
			t.Errorf("VerifyIDToken: %v", err)
		}
		fails(ErrMalformedToken, "not a token")
		if n := idp.Count(onesoidctest.EndpointIntrospection); n != before {
			t.Errorf("%d introspections for tokens refused locally", n-before)
		}
	})
}

// TestOpaqueTokenWithoutIntrospectionEndpointIsMalformed: without an introspection endpoint an
// opaque token cannot be validated.
func TestOpaqueTokenWithoutIntrospectionEndpointIsMalformed(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	idp.EditMetadata(func(doc map[string]any) { delete(doc, "introspection_endpoint") })
	c := newTestClient(t, idp, testKey(t, "EdDSA"))
	if _, err := c.ValidateToken(t.Context(), "opaque"); !errors.Is(err, ErrMalformedToken) {
		t.Errorf("err = %v, want ErrMalformedToken", err)
	}
}

// TestIntrospectionCacheIsBounded: the cache never holds more than its bound, here a budget of
// 8 entries.
func TestIntrospectionCacheIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, idp := opaqueClient(t)
		body := []byte(`{"active":true,"token_type":"Bearer","client_id":"x","exp":4102444800}`)
		in := c.val.intro
		budget := 8 * uint64(introEntryCost(in.entry(mustParseIntrospection(t, body))))
		in.introCache = cache.New(budget, introEntryCost)
		idp.Inject(onesoidctest.EndpointIntrospection, onesoidctest.Fault{Status: 200, ContentType: "application/json", Body: body})
		for i := range 100 {
			if _, err := c.ValidateToken(t.Context(), fmt.Sprintf("token-%d", i)); err != nil {
				t.Fatal(err)
			}
			if n, cost := in.len(), in.introCache.Cost(); n > 8 || cost > budget {
				t.Fatalf("%d entries of %d bytes, bound 8 (%d bytes)", n, cost, budget)
			}
		}
	})
}

// TestRequireTokenAcceptsOpaqueAccessTokens: RequireToken validates an opaque bearer token by
// introspection, answers 403 insufficient_scope for a missing scope and 503 when the provider
// cannot be asked.
func TestRequireTokenAcceptsOpaqueAccessTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, idp := opaqueClient(t, WithDeviceTokenScope("read"))
		tok, _ := c.RequestDeviceAccessToken(t.Context())
		var seen *AuthenticationResult
		next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen, _ = AuthenticationFromContext(r.Context()) })
		serve := serveBearer
		if rec := serve(c.RequireToken(next), tok.AccessToken); rec.Code != 200 || seen == nil || seen.Entity.Kind != EntityDevice {
			t.Errorf("status %d, result %+v", rec.Code, seen)
		}
		rec := serve(c.RequireToken(next, ExpectScope("admin")), tok.AccessToken)
		if rec.Code != 403 || rec.Header().Get("WWW-Authenticate") != `Bearer error="insufficient_scope", error_description="the token lacks a required scope"` {
			t.Errorf("missing scope: %d %q", rec.Code, rec.Header().Get("WWW-Authenticate"))
		}
		idp.Inject(onesoidctest.EndpointIntrospection, onesoidctest.Fault{Status: 503})
		if rec := serve(c.RequireToken(next), "another-opaque-token"); rec.Code != 503 {
			t.Errorf("provider down: %d, want 503", rec.Code)
		}
	})
}

// TestRequireTokenRefusesIDTokensUnlessInsecureAcceptIDTokens: a bearer credential is an
// access token; an ID token passes only with InsecureAcceptIDTokens (RFC 8725 §3.11).
func TestRequireTokenRefusesIDTokensUnlessInsecureAcceptIDTokens(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	c := newValidationClient(t, idp)
	id := mint(t, idp, nil, nil)
	serve := func(h http.Handler) int { return serveBearer(h, id).Code }
	next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	if code := serve(c.RequireToken(next)); code != http.StatusUnauthorized {
		t.Errorf("default: ID token answered %d, want 401", code)
	}
	if code := serve(c.RequireToken(next, InsecureAcceptIDTokens())); code != http.StatusOK {
		t.Errorf("InsecureAcceptIDTokens: ID token answered %d, want 200", code)
	}
}

// BenchmarkIntrospectionCacheHit measures ValidateToken of an opaque token whose introspection
// answer is cached (target: under 1 µs, at most 2 allocations).
func BenchmarkIntrospectionCacheHit(b *testing.B) {
	c, tok := cachedOpaqueToken(b)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.ValidateToken(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIntrospectionCacheHitParallel is BenchmarkIntrospectionCacheHit on every CPU at
// once (-cpu 1,2 shows how hits scale): one token, so every goroutine reads the same entry.
func BenchmarkIntrospectionCacheHitParallel(b *testing.B) {
	c, tok := cachedOpaqueToken(b)
	ctx := b.Context()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.ValidateToken(ctx, tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// cachedOpaqueToken returns a client and an opaque device token whose introspection answer the
// client has cached.
func cachedOpaqueToken(b *testing.B) (*OpenIDConnectClient, string) {
	idp := onesoidctest.NewInMemory(onesoidctest.WithOpaqueAccessTokens(), onesoidctest.WithTokenLifetime(time.Hour))
	c := newTestClient(b, idp, testKey(b, "EdDSA"))
	tok, err := c.DeviceAccessToken(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.ValidateToken(b.Context(), tok.AccessToken); err != nil {
		b.Fatal(err)
	}
	return c, tok.AccessToken
}

// serveBearer serves GET /api with "Authorization: Bearer token" through h.
func serveBearer(h http.Handler, token string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", "/api", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestExpectScopeOnJWTAccessTokens: ExpectScope applies to JWT access tokens too, and fixes the
// kind: an ID token is then refused.
func TestExpectScopeOnJWTAccessTokens(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	c := newValidationClient(t, idp)
	at := mint(t, idp, map[string]any{"typ": "at+jwt"}, atClaims(idp, testClientID)) // scope "read write"
	if _, err := c.ValidateToken(t.Context(), at, ExpectScope("read", "write")); err != nil {
		t.Errorf("both scopes: %v", err)
	}
	if _, err := c.ValidateToken(t.Context(), at, ExpectScope("admin")); !errors.Is(err, ErrInsufficientScope) {
		t.Errorf("missing scope: %v, want ErrInsufficientScope", err)
	}
	if _, err := c.ValidateToken(t.Context(), mint(t, idp, nil, nil), ExpectScope("read")); !errors.Is(err, ErrInvalidTokenType) {
		t.Errorf("ID token with ExpectScope: %v, want ErrInvalidTokenType", err)
	}
}

// TestOversizedOpaqueTokenNeverReachesTheProvider: a non-JWT string over maxOpaqueTokenSize, or
// outside the b64token syntax, is malformed without an introspection.
func TestOversizedOpaqueTokenNeverReachesTheProvider(t *testing.T) {
	t.Parallel()
	c, idp := opaqueClient(t)
	for _, tok := range []string{strings.Repeat("A", maxOpaqueTokenSize+1), strings.Repeat(".", 64<<10), "a b", "a\x00"} {
		if _, err := c.ValidateToken(t.Context(), tok); !errors.Is(err, ErrMalformedToken) {
			t.Errorf("%.10q…: err = %v, want ErrMalformedToken", tok, err)
		}
	}
	if n := idp.Count(onesoidctest.EndpointIntrospection); n != 0 {
		t.Errorf("%d introspections", n)
	}
}

// TestIntrospectionFloodIsBounded: with WithMaxIntrospections(2) and two introspections held at
// the provider, more validations of opaque tokens wait for one to end instead of asking: a
// second caller of a token in flight finds its answer cached afterwards and does not ask again,
// a third token is asked for once a slot is free, and a caller whose context ends while it waits
// fails with ErrIntrospectionUnavailable without a request.
func TestIntrospectionFloodIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, idp := opaqueClient(t, WithMaxIntrospections(2))
		a, b, third, late := strings.Repeat("a", 43), strings.Repeat("b", 43), strings.Repeat("c", 43), strings.Repeat("d", 43)
		idp.Inject(onesoidctest.EndpointIntrospection, onesoidctest.Fault{Times: 2, Delay: time.Second})
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i, tok := range []string{a, b, a, third} {
			wg.Go(func() { _, errs[i] = c.ValidateToken(t.Context(), tok) })
			synctest.Wait() // in order: a and b in flight, then the waiters
		}
		if n := idp.Count(onesoidctest.EndpointIntrospection); n != 2 {
			t.Fatalf("%d introspections in flight, want 2", n)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		if _, err := c.ValidateToken(ctx, late); !errors.Is(err, ErrIntrospectionUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("a caller whose context ends while it waits: %v, want ErrIntrospectionUnavailable and DeadlineExceeded", err)
		}
		if n := idp.Count(onesoidctest.EndpointIntrospection); n != 2 {
			t.Errorf("%d introspections while two were in flight, want 2", n)
		}
		wg.Wait()
		for i, err := range errs {
			if errors.Is(err, ErrIntrospectionUnavailable) {
				t.Errorf("caller %d: %v", i, err)
			}
		}
		if n := idp.Count(onesoidctest.EndpointIntrospection); n != 3 {
			t.Errorf("%d introspections in all, want 3 (a, b and the third token once each)", n)
		}
	})
}

// TestIntrospectionSlotWaitIsBounded: a validation that finds every slot taken waits at most
// slotWait (the request timeout), then fails with ErrIntrospectionUnavailable naming the bound,
// without asking; the refusal is not cached.
func TestIntrospectionSlotWaitIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hold := make(chan struct{})
		in, _ := unitIntrospector(t, 1<<20, func(string) []byte { return typicalIntrospection() })
		introspect, calls := in.introspect, new(atomic.Int64)
		in.introspect = func(ctx context.Context, tok string) (*IntrospectionResult, error) {
			calls.Add(1)
			if tok == strings.Repeat("a", 43) {
				<-hold
			}
			return introspect(ctx, tok)
		}
		in.inFlight, in.slotWait = make(chan struct{}, 1), 100*time.Millisecond
		const aud = "https://api.example" // typicalIntrospection's
		done := make(chan error)
		go func() { _, err := introValidate(t, in, strings.Repeat("a", 43), aud); done <- err }()
		synctest.Wait()
		start := time.Now()
		_, err := introValidate(t, in, strings.Repeat("b", 43), aud)
		if !errors.Is(err, ErrIntrospectionUnavailable) || !strings.Contains(err.Error(), "WithMaxIntrospections") {
			t.Errorf("with every slot taken: %v, want ErrIntrospectionUnavailable naming the bound", err)
		}
		if d := time.Since(start); d != 100*time.Millisecond {
			t.Errorf("waited %v, want the slot wait of 100ms", d)
		}
		if n := calls.Load(); n != 1 {
			t.Errorf("%d introspections, want 1", n)
		}
		close(hold)
		if err := <-done; err != nil {
			t.Errorf("the token in flight: %v", err)
		}
		if _, err := introValidate(t, in, strings.Repeat("b", 43), aud); err != nil {
			t.Errorf("the refused token once a slot is free: %v", err)
		}
	})
}
