package onesoidc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/oauth2"

	"github.com/ones-now/onesoidc/onesoidctest"
)

func TestCA01CA04CA06CA07CA08AssertionForEveryKeyKind(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			idp := startIdP(t)
			key := testKey(t, alg)
			c := newTestClient(t, idp, key, WithDeviceTokenScope("device", "profile"))
			tok, err := c.RequestDeviceAccessToken(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if tok.AccessToken == "" || tok.TokenType != "Bearer" || tok.Expiry.IsZero() || tok.Extra("scope") != "device profile" {
				t.Errorf("token = %+v", tok)
			}
			reqs := idp.Requests(onesoidctest.EndpointToken)
			if len(reqs) != 1 {
				t.Fatalf("%d token requests", len(reqs))
			}
			f := reqs[0].Form
			for k, want := range map[string]string{
				"grant_type":            "client_credentials",
				"client_id":             testClientID,
				"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
				"scope":                 "device profile",
			} {
				if got := f.Get(k); got != want {
					t.Errorf("form %s = %q, want %q", k, got, want)
				}
			}
			header, claims := decodeJWT(t, f.Get("client_assertion"))
			// No kid: the key has no registered one (the provider then tries every key that fits alg).
			if _, hasKID := header["kid"]; header["alg"] != alg || header["typ"] != "JWT" || hasKID || len(header) != 2 {
				t.Errorf("assertion header = %v", header)
			}
			if claims["iss"] != testClientID || claims["sub"] != testClientID || claims["aud"] != idp.URL+"/oidc/token" {
				t.Errorf("assertion claims = %v", claims)
			}
			if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat != 300 {
				t.Errorf("assertion lifetime %v, want 300", exp-iat)
			}
		})
	}
}

func TestCA03AssertionJTIIsFreshPerRequest(t *testing.T) {
	t.Parallel()
	idp := startIdP(t)
	c := newTestClient(t, idp, testKey(t, "ES256"))
	seen := map[string]bool{}
	for range 3 {
		if _, err := c.RequestDeviceAccessToken(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range idp.Requests(onesoidctest.EndpointToken) {
		_, claims := decodeJWT(t, r.Form.Get("client_assertion"))
		jti, _ := claims["jti"].(string)
		if len(jti) < 22 || seen[jti] { // 22 base64 or 26 base32 characters hold 128 bits
			t.Errorf("jti %q is short or reused", jti)
		}
		seen[jti] = true
	}
	if len(seen) != 3 {
		t.Errorf("%d distinct jti, want 3", len(seen))
	}
}

func TestCA02AssertionAudienceOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		client   Option
		idp      onesoidctest.Audience
		wantAud  func(idp *onesoidctest.Server) string
		endpoint string
	}{
		{"issuer", WithAssertionAudienceIssuer(), onesoidctest.AudienceIssuer, func(idp *onesoidctest.Server) string { return idp.Issuer }, onesoidctest.EndpointToken},
		{"token endpoint", nil, onesoidctest.AudienceTokenEndpoint, func(idp *onesoidctest.Server) string { return idp.URL + "/oidc/token" }, onesoidctest.EndpointIntrospection},
		{"called endpoint", WithAssertionAudienceEndpoint(), onesoidctest.AudienceCalledEndpoint, func(idp *onesoidctest.Server) string { return idp.URL + "/oidc/token/introspection" }, onesoidctest.EndpointIntrospection},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			idp := startIdP(t, onesoidctest.WithAudience(tc.idp))
			c := newTestClient(t, idp, testKey(t, "EdDSA"), tc.client)
			var err error
			if tc.endpoint == onesoidctest.EndpointToken {
				_, err = c.RequestDeviceAccessToken(t.Context())
			} else {
				_, err = c.IntrospectToken(t.Context(), "x", "")
			}
			if err != nil {
				t.Fatal(err)
			}
			_, claims := decodeJWT(t, idp.Requests(tc.endpoint)[0].Form.Get("client_assertion"))
			if claims["aud"] != tc.wantAud(idp) {
				t.Errorf("aud = %v, want %v", claims["aud"], tc.wantAud(idp))
			}
		})
	}
}

func TestCA13DeviceTokenConcurrentColdCacheOneRequest(t *testing.T) {
	t.Parallel()
	idp := startIdP(t)
	c := newTestClient(t, idp, testKey(t, "ES256"))
	var wg sync.WaitGroup
	tokens := make([]*oauth2.Token, 100)
	errs := make([]error, 100)
	for i := range 100 {
		wg.Go(func() { tokens[i], errs[i] = c.DeviceAccessToken(t.Context()) })
	}
	wg.Wait()
	for i := range 100 {
		if errs[i] != nil || tokens[i] != tokens[0] {
			t.Fatalf("caller %d: %v, token %p vs %p", i, errs[i], tokens[i], tokens[0])
		}
	}
	if n := idp.Count(onesoidctest.EndpointToken); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
}

func TestDeviceAccessTokenRenewedBeforeExpiry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		lifetime  time.Duration
		margin    time.Duration
		renewFrom time.Duration
	}{
		{"default margin 100s", 600 * time.Second, defaultTokenRefreshMargin, 500 * time.Second},
		{"margin bounded to half of a 60s token", 60 * time.Second, defaultTokenRefreshMargin, 30 * time.Second},
		{"custom margin", 600 * time.Second, 10 * time.Second, 590 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				idp := onesoidctest.NewInMemory(onesoidctest.WithTokenLifetime(tc.lifetime))
				c := newTestClient(t, idp, testKey(t, "EdDSA"), WithTokenRefreshMargin(tc.margin))
				first, err := c.DeviceAccessToken(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				time.Sleep(tc.renewFrom - time.Second)
				if tok, _ := c.DeviceAccessToken(t.Context()); tok != first {
					t.Errorf("token renewed %v before the margin", time.Second)
				}
				time.Sleep(time.Second)
				second, err := c.DeviceAccessToken(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if second == first || second.AccessToken == first.AccessToken {
					t.Errorf("token not renewed at expiry - margin")
				}
				if n := idp.Count(onesoidctest.EndpointToken); n != 2 {
					t.Errorf("%d token requests, want 2", n)
				}
			})
		})
	}
}

func TestDeviceAccessTokenMissingExpiresInGetsShortLifetime(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp := onesoidctest.NewInMemory()
		c := newTestClient(t, idp, testKey(t, "EdDSA"))
		idp.Inject(onesoidctest.EndpointToken, onesoidctest.Fault{Times: 1, Status: 200, ContentType: "application/json",
			Body: []byte(`{"access_token":"opaque-1","token_type":"bearer"}`)})
		tok, err := c.DeviceAccessToken(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if got := time.Until(tok.Expiry); got != defaultTokenLifetime {
			t.Errorf("lifetime %v, want %v", got, defaultTokenLifetime)
		}
		time.Sleep(defaultTokenLifetime / 2)
		if tok2, _ := c.DeviceAccessToken(t.Context()); tok2 == tok {
			t.Errorf("token without expires_in not renewed after half its default lifetime")
		}
	})
}

func TestCA11InvalidClientIsTyped(t *testing.T) {
	t.Parallel()
	idp := startIdP(t)
	logger, logs := logBuffer()
	c := newTestClient(t, idp, testKey(t, "ES256"), WithLogger(logger))
	idp.RegisterClient(testClientID, testKey(t, "ES256").Public(), "ES256") // another key
	_, err := c.DeviceAccessToken(t.Context())
	if !errors.Is(err, ErrInvalidClient) {
		t.Fatalf("err = %v, want ErrInvalidClient", err)
	}
	var oe *OAuthError
	if !errors.As(err, &oe) || oe.StatusCode != 401 || !strings.Contains(oe.Description, "signature") {
		t.Errorf("err = %#v, want status 401 with the IdP's description", err)
	}
	assertion := idp.Requests(onesoidctest.EndpointToken)[0].Form.Get("client_assertion")
	for _, s := range []string{err.Error(), logs.String()} {
		if strings.Contains(s, assertion) || strings.Contains(s, "eyJ") {
			t.Errorf("HF-19: assertion leaked: %s", s)
		}
	}
}

func TestDeviceAccessTokenResponseFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		fault onesoidctest.Fault
		check func(*testing.T, error)
	}{
		{"HF-08 missing access_token", onesoidctest.Fault{Status: 200, ContentType: "application/json", Body: []byte(`{"token_type":"Bearer","expires_in":60}`)}, wantHTTPError(200, "without access_token")},
		{"HF-08 missing token_type", onesoidctest.Fault{Status: 200, ContentType: "application/json", Body: []byte(`{"access_token":"a","expires_in":60}`)}, wantHTTPError(200, "token_type")},
		{"HF-08 expires_in string", onesoidctest.Fault{Status: 200, ContentType: "application/json", Body: []byte(`{"access_token":"a","token_type":"Bearer","expires_in":"60"}`)}, wantHTTPError(200, "invalid token response")},
		{"HF-08 null body", onesoidctest.Fault{Status: 200, ContentType: "application/json", Body: []byte(`null`)}, wantHTTPError(200, "without access_token")},
		{"negative expires_in", onesoidctest.Fault{Status: 200, ContentType: "application/json", Body: []byte(`{"access_token":"a","token_type":"Bearer","expires_in":-5}`)}, wantHTTPError(200, "out-of-range")},
		{"HF-05 HTML 502 is not an OAuth error", onesoidctest.Fault{Status: 502, ContentType: "text/html", Body: []byte("<html>bad gateway</html>")}, func(t *testing.T, err error) {
			wantHTTPError(502, "unexpected status")(t, err)
			if errors.As(err, new(*OAuthError)) {
				t.Errorf("HTML answer parsed as an OAuth error")
			}
		}},
		{"HF-09 400 with non-JSON body", onesoidctest.Fault{Status: 400, ContentType: "text/plain", Body: []byte("invalid_grant")}, wantHTTPError(400, "unexpected status")},
		{"HF-09 invalid_grant", onesoidctest.Fault{Status: 400, ContentType: "application/json", Body: []byte(`{"error":"invalid_grant","error_description":"no\u0007bell"}`)}, func(t *testing.T, err error) {
			var oe *OAuthError
			if !errors.Is(err, ErrInvalidGrant) || !errors.As(err, &oe) || oe.Description != "nobell" {
				t.Errorf("err = %v, want sanitized invalid_grant", err)
			}
		}},
		{"HF-11 CA-09 307 redirect not followed", onesoidctest.Fault{Status: 307, Redirect: "http://127.0.0.1:1/steal"}, wantHTTPError(307, "not followed")},
		{"HF-14 token response over 64 KiB", onesoidctest.Fault{Status: 200, ContentType: "application/json", Body: []byte(`{"access_token":"` + strings.Repeat("a", 70<<10) + `"}`)}, func(t *testing.T, err error) {
			if !errors.Is(err, errResponseTooLarge) {
				t.Errorf("err = %v, want errResponseTooLarge", err)
			}
		}},
		{"HF-14 error body over 8 KiB", onesoidctest.Fault{Status: 400, ContentType: "application/json", Body: []byte(`{"error":"invalid_request","error_description":"` + strings.Repeat("a", 9<<10) + `"}`)}, func(t *testing.T, err error) {
			if !errors.Is(err, errResponseTooLarge) {
				t.Errorf("err = %v, want errResponseTooLarge", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			idp := startIdP(t)
			c := newTestClient(t, idp, testKey(t, "EdDSA"))
			idp.Inject(onesoidctest.EndpointToken, tc.fault)
			tok, err := c.DeviceAccessToken(t.Context())
			if tok != nil || err == nil {
				t.Fatalf("got %v, %v; want an error", tok, err)
			}
			tc.check(t, err)
			if n := idp.Count(onesoidctest.EndpointToken); n != 1 {
				t.Errorf("%d token requests, want 1 (no retry of a token POST)", n)
			}
		})
	}
}

func TestDeviceAccessTokenHF16CancelledWaiterDoesNotSpoilFetch(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp := onesoidctest.NewInMemory()
		c := newTestClient(t, idp, testKey(t, "EdDSA"))
		idp.Inject(onesoidctest.EndpointToken, onesoidctest.Fault{Times: 1, Delay: 5 * time.Second})
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		var cancelledAt time.Duration
		var cancelledErr, otherErr error
		var other *oauth2.Token
		start := time.Now()
		wg.Go(func() {
			_, cancelledErr = c.DeviceAccessToken(ctx)
			cancelledAt = time.Since(start)
		})
		wg.Go(func() { other, otherErr = c.DeviceAccessToken(t.Context()) })
		time.Sleep(time.Second)
		cancel()
		wg.Wait()
		if !errors.Is(cancelledErr, context.Canceled) || cancelledAt != time.Second {
			t.Errorf("cancelled waiter: %v after %v, want context.Canceled after 1s", cancelledErr, cancelledAt)
		}
		if otherErr != nil || other == nil {
			t.Errorf("other waiter: %v", otherErr)
		}
		if n := idp.Count(onesoidctest.EndpointToken); n != 1 {
			t.Errorf("%d token requests, want 1", n)
		}
	})
}

func TestDeviceAccessTokenFailedRenewalKeepsValidToken(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp := onesoidctest.NewInMemory()
		c := newTestClient(t, idp, testKey(t, "EdDSA"))
		first, err := c.DeviceAccessToken(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		idp.Inject(onesoidctest.EndpointToken, onesoidctest.Fault{Status: 503, ContentType: "text/html"})
		time.Sleep(510 * time.Second) // inside the margin, 90 s before expiry
		for range 3 {
			if tok, err := c.DeviceAccessToken(t.Context()); err != nil || tok != first {
				t.Fatalf("got %v, %v; want the still-valid token", tok, err)
			}
		}
		if n := idp.Count(onesoidctest.EndpointToken); n != 2 {
			t.Errorf("%d token requests, want 2 (one failed renewal, then a pause)", n)
		}
		time.Sleep(retryAfterFailedRefresh)
		_, _ = c.DeviceAccessToken(t.Context())
		if n := idp.Count(onesoidctest.EndpointToken); n != 3 {
			t.Errorf("%d token requests, want 3 (renewal retried after the pause)", n)
		}
		time.Sleep(100 * time.Second) // past expiry
		if _, err := c.DeviceAccessToken(t.Context()); err == nil {
			t.Errorf("expired token served while the IdP fails")
		}
	})
}

func TestInvalidateDeviceAccessToken(t *testing.T) {
	t.Parallel()
	idp := startIdP(t)
	c := newTestClient(t, idp, testKey(t, "EdDSA"))
	first, _ := c.DeviceAccessToken(t.Context())
	c.InvalidateDeviceAccessToken()
	second, err := c.DeviceAccessToken(t.Context())
	if err != nil || second == first {
		t.Fatalf("got %v, %v; want a new token", second, err)
	}
	if n := idp.Count(onesoidctest.EndpointToken); n != 2 {
		t.Errorf("%d token requests, want 2", n)
	}
}

func TestTokenSource(t *testing.T) {
	t.Parallel()
	idp := startIdP(t)
	c := newTestClient(t, idp, testKey(t, "EdDSA"))
	ts := c.TokenSource(t.Context())
	a, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := ts.Token()
	if a != b || idp.Count(onesoidctest.EndpointToken) != 1 {
		t.Errorf("TokenSource does not use the cache")
	}
}

func TestDeviceHTTPClientRetriesOnceAfter401(t *testing.T) {
	t.Parallel()
	idp := startIdP(t)
	c := newTestClient(t, idp, testKey(t, "EdDSA"))
	first, _ := c.DeviceAccessToken(t.Context())
	var mu sync.Mutex
	var seen []string
	var bodies []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, r.Header.Get("Authorization"))
		bodies = append(bodies, string(body))
		if r.Header.Get("Authorization") == "Bearer "+first.AccessToken {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(api.Close)
	hc := c.DeviceHTTPClient(nil)
	resp, err := hc.Post(api.URL, "text/plain", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || len(seen) != 2 || seen[1] == seen[0] || bodies[1] != "payload" {
		t.Errorf("status %d, authorizations %d, bodies %q", resp.StatusCode, len(seen), bodies)
	}
	if n := idp.Count(onesoidctest.EndpointToken); n != 2 {
		t.Errorf("%d token requests, want 2", n)
	}
}

func TestDeviceHTTPClientDoesNotFollowRedirectToOtherHost(t *testing.T) {
	t.Parallel()
	idp := startIdP(t)
	c := newTestClient(t, idp, testKey(t, "EdDSA"))
	var leaked atomic.Bool
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Store(r.Header.Get("Authorization") != "")
	}))
	t.Cleanup(other.Close)
	api := httptest.NewServer(http.RedirectHandler(strings.Replace(other.URL, "127.0.0.1", "localhost", 1), http.StatusFound))
	t.Cleanup(api.Close)
	resp, err := c.DeviceHTTPClient(nil).Get(api.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || leaked.Load() {
		t.Errorf("status %d, token sent to other host: %v", resp.StatusCode, leaked.Load())
	}
}

// TestDeviceHTTPClientHF12NoDowngrade: an https API that redirects to http on the same host, and
// a plain-http URL on a remote host, never receive the device token.
func TestDeviceHTTPClientHF12NoDowngrade(t *testing.T) {
	t.Parallel()
	idp := startIdP(t)
	c := newTestClient(t, idp, testKey(t, "EdDSA"))
	var plainHits atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { plainHits.Add(1) }))
	t.Cleanup(plain.Close)
	tlsAPI := httptest.NewTLSServer(http.RedirectHandler(plain.URL+"/x", http.StatusFound))
	t.Cleanup(tlsAPI.Close)
	resp, err := c.DeviceHTTPClient(tlsAPI.Client()).Get(tlsAPI.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || plainHits.Load() != 0 {
		t.Errorf("status %d, %d requests to the http URL; want the redirect not followed", resp.StatusCode, plainHits.Load())
	}
	// A remote plain-http URL is refused before any request or token fetch.
	tokens := idp.Count(onesoidctest.EndpointToken)
	_, err = c.DeviceHTTPClient(&http.Client{Transport: failTransport{t}}).Get("http://api.example/resource")
	if !errors.As(err, new(*ConfigError)) || idp.Count(onesoidctest.EndpointToken) != tokens {
		t.Errorf("plain http: %v, want a ConfigError and no token request", err)
	}
}

// TestCA05AssertionTimesFollowTheClock: iat and exp come from the client's clock (here the fake
// clock of a synctest bubble, in the year 2000), never from the server.
func TestCA05AssertionTimesFollowTheClock(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp := onesoidctest.NewInMemory()
		c := newTestClient(t, idp, testKey(t, "EdDSA"))
		time.Sleep(42 * time.Second)
		if _, err := c.RequestDeviceAccessToken(t.Context()); err != nil {
			t.Fatal(err)
		}
		_, claims := decodeJWT(t, idp.Requests(onesoidctest.EndpointToken)[0].Form.Get("client_assertion"))
		if iat := int64(claims["iat"].(float64)); iat != time.Now().Unix() || time.Unix(iat, 0).Year() != 2000 {
			t.Errorf("iat %v, want the client clock %v", iat, time.Now().Unix())
		}
		if _, ok := claims["nbf"]; ok {
			t.Errorf("nbf sent: %v", claims["nbf"])
		}
	})
}

// TestDeviceHTTPClient401RenewsAtMostOncePerToken: 20 calls to a service that answers 401 to
// every token cost 2 token requests (the first token, and one renewal after the first 401); a
// 401 to the renewed token goes back to the caller. Once the token is renewed for its age, a 401
// may cause one renewal again.
func TestDeviceHTTPClient401RenewsAtMostOncePerToken(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp := onesoidctest.NewInMemory()
		c := newTestClient(t, idp, testKey(t, "ES256"))
		var calls atomic.Int32
		api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
		})
		hc := c.DeviceHTTPClient(onesoidctest.HandlerClient(api))
		for range 20 {
			resp, err := hc.Get("http://localhost/api")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want the 401", resp.StatusCode)
			}
		}
		if n := idp.Count(onesoidctest.EndpointToken); n != 2 {
			t.Errorf("%d token requests for 20 calls, want 2", n)
		}
		if n := calls.Load(); n != 21 {
			t.Errorf("%d service calls, want 21 (one retry, after the only renewal)", n)
		}
		// The renewed token reaches its refresh time: the next token may again be renewed once.
		time.Sleep(10 * time.Minute)
		for range 5 {
			resp, err := hc.Get("http://localhost/api")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		if n := idp.Count(onesoidctest.EndpointToken); n != 4 {
			t.Errorf("%d token requests after the age renewal, want 4", n)
		}
	})
}
