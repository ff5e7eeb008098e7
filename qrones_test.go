package onesoidc

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ones-now/onesoidc/onesoidctest"
)

// onesQRSetup returns an in-memory IdP that knows the test device's id and a client of it that
// speaks the ONES QR login (the default); call it inside a synctest bubble.
func onesQRSetup(t *testing.T, opts ...Option) (*onesoidctest.Server, *OpenIDConnectClient) {
	t.Helper()
	idp, c := cibaSetup(t, opts...)
	idp.SetDeviceID(testClientID, testDeviceID)
	return idp, c
}

// onesQRSession is onesQRSetup with the sessions scripted by script, and one started.
func onesQRSession(t *testing.T, script onesoidctest.QRScript) (*onesoidctest.Server, *OpenIDConnectClient, *QRSession) {
	t.Helper()
	idp, c := onesQRSetup(t)
	idp.ScriptQR(script)
	s, err := c.StartQRLogin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return idp, c, s
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestONESQRLoginApprovedWireAndIdentity(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		idp, c, s := onesQRSession(t, onesoidctest.QRScript{PendingPolls: 2, Subject: "bob", Scope: "openid contact profile"})
		id := s.ID()
		if !uuidPattern.MatchString(id) || !s.Expiry().Equal(start.Add(300*time.Second)) || s.Interval != defaultPollInterval {
			t.Errorf("session = %v, id %q", s, id)
		}
		if want := `{"auth_req_id":"` + id + `","deviceId":"` + testDeviceID + `"}`; s.QR.Payload() != want || s.QR.URL() != "" {
			t.Errorf("QR payload %q, URL %q; want %q and no URL", s.QR.Payload(), s.QR.URL(), want)
		}
		res, err := c.WaitForQRLogin(t.Context(), s)
		if err != nil {
			t.Fatal(err)
		}
		rec := idp.QRSessions()[0]
		e := res.Auth.Entity
		if res.Token.AccessToken != rec.AccessToken || res.Token.TokenType != "Bearer" || res.AuthReqID != id ||
			res.IDToken != "" || res.Scope != "openid contact profile" || res.Auth.Kind != KindAccessToken {
			t.Errorf("result = %+v", res)
		}
		if e.Kind != EntityUser || e.Subject != "bob" || e.Issuer != idp.Issuer || e.ClientID != testClientID ||
			!e.Expiry.Equal(res.Token.Expiry) || !e.Expiry.Equal(start.Add(15*time.Second+600*time.Second)) {
			t.Errorf("identity = %+v", e)
		}
		if got := since(start, rec.PollTimes); len(got) != 3 || got[0] != 5*time.Second || got[1] != 10*time.Second || got[2] != 15*time.Second {
			t.Errorf("polls at %v, want 5s, 10s, 15s", got)
		}

		// Byte for byte: GET, the paths below the host (not the issuer), the device's bearer token.
		dev, err := c.DeviceAccessToken(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		starts, polls := idp.Requests(onesoidctest.EndpointQRStart), idp.Requests(onesoidctest.EndpointQRStatus)
		if len(starts) != 1 || len(polls) != 3 {
			t.Fatalf("%d starts, %d polls", len(starts), len(polls))
		}
		for _, r := range append(starts, polls...) {
			want := "/auth/qr"
			if r.Endpoint == onesoidctest.EndpointQRStatus {
				want += "/" + id
			}
			if r.Method != http.MethodGet || r.Path != want || r.Header.Values("Authorization")[0] != "Bearer "+dev.AccessToken ||
				len(r.Header.Values("Authorization")) != 1 {
				t.Errorf("request %s %s, Authorization %d values; want GET %s with the device token", r.Method, r.Path,
					len(r.Header.Values("Authorization")), want)
			}
		}
		// The user's token was validated by introspection, once.
		intro := idp.Requests(onesoidctest.EndpointIntrospection)
		if len(intro) != 1 || intro[0].Form.Get("token") != rec.AccessToken || intro[0].Form.Get("token_type_hint") != "access_token" {
			t.Errorf("introspection requests: %d", len(intro))
		}
	})
}

func TestONESQRStatusErrorsCarryTheStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		script   onesoidctest.QRScript
		status   string
		sentinel error
	}{
		{"denied", onesoidctest.QRScript{Outcome: onesoidctest.Deny}, "denied", ErrAccessDenied},
		{"expired", onesoidctest.QRScript{Outcome: onesoidctest.Expire}, "expired", ErrLoginExpired},
		{"failed", onesoidctest.QRScript{Outcome: onesoidctest.TransactionFailed}, "failed", nil},
		{"unknown status", onesoidctest.QRScript{Outcome: onesoidctest.FailWithCode, Status: "cancelled_by_user"}, "cancelled_by_user", nil},
		{"control characters stripped", onesoidctest.QRScript{Outcome: onesoidctest.FailWithCode, Status: "bad\x1b[31m"}, "bad[31m", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				tc.script.PendingPolls = 1
				idp, c, s := onesQRSession(t, tc.script)
				_, err := c.WaitForQRLogin(t.Context(), s)
				var se *QRStatusError
				if !errors.As(err, &se) || se.Status != tc.status || (tc.sentinel != nil && !errors.Is(err, tc.sentinel)) ||
					errors.Is(err, ErrAuthorizationPending) {
					t.Fatalf("err = %v, want a QRStatusError %q", err, tc.status)
				}
				// The session ended: no further request, for a wait or a single check.
				if _, err := c.CheckQRStatus(t.Context(), s.ID()); !errors.Is(err, ErrLoginFinished) || !errors.As(err, &se) {
					t.Errorf("CheckQRStatus after the end: %v", err)
				}
				if _, err := c.WaitForQRLogin(t.Context(), s); !errors.Is(err, ErrLoginFinished) {
					t.Errorf("WaitForQRLogin after the end: %v", err)
				}
				if n := idp.QRSessions()[0].Polls; n != 2 {
					t.Errorf("%d polls, want 2", n)
				}
			})
		})
	}
}

func TestONESQRCheckStatusPendingMatchesErrAuthorizationPending(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c, s := onesQRSession(t, onesoidctest.QRScript{PendingPolls: 1})
		if _, err := c.CheckQRStatus(t.Context(), s.ID()); !errors.Is(err, ErrAuthorizationPending) {
			t.Fatalf("first check: %v, want pending", err)
		}
		res, err := c.CheckQRStatus(t.Context(), s.ID())
		if err != nil || res.Auth.Entity.Subject != "alice" {
			t.Fatalf("second check: %v, %v", res, err)
		}
		if _, err := c.CheckQRStatus(t.Context(), s.ID()); !errors.Is(err, ErrLoginFinished) {
			t.Errorf("third check: %v, want ErrLoginFinished", err)
		}
		if n := idp.Count(onesoidctest.EndpointQRStatus); n != 2 {
			t.Errorf("%d status requests, want 2", n)
		}
	})
}

func TestQR02ONESCheckAfterExpirySendsNothing(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c, s := onesQRSession(t, onesoidctest.QRScript{Outcome: onesoidctest.AwaitDecision, ExpiresIn: 30})
		time.Sleep(30 * time.Second)
		if _, err := c.CheckQRStatus(t.Context(), s.ID()); !errors.As(err, new(*LoginExpiredError)) {
			t.Errorf("check at expiry: %v, want an LoginExpiredError", err)
		}
		if n := idp.Count(onesoidctest.EndpointQRStatus); n != 0 {
			t.Errorf("%d status requests, want none", n)
		}
	})
}

func TestONESQRInactiveTokenIsRefused(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c, s := onesQRSession(t, onesoidctest.QRScript{InactiveToken: true})
		res, err := c.WaitForQRLogin(t.Context(), s)
		var te *LoginTokenError
		if res != nil || !errors.As(err, &te) || !strings.Contains(err.Error(), "not active") {
			t.Fatalf("WaitForQRLogin = %v, %v; want a LoginTokenError", res, err)
		}
		if tok := idp.QRSessions()[0].AccessToken; strings.Contains(err.Error(), tok) {
			t.Error("the error holds the token")
		}
		if _, err := c.CheckQRStatus(t.Context(), s.ID()); !errors.Is(err, ErrLoginFinished) || !errors.As(err, &te) {
			t.Errorf("check after refusal: %v", err)
		}
	})
}

func TestONESQRStatusOfAnotherDeviceIsRefused(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c, s := onesQRSession(t, onesoidctest.QRScript{DeviceID: "b2dfd845-74eb-4674-8545-4da597e487ad"})
		if res, err := c.WaitForQRLogin(t.Context(), s); res != nil || !errors.As(err, new(*HTTPError)) {
			t.Fatalf("WaitForQRLogin = %v, %v; want an HTTPError", res, err)
		}
		if n := idp.Count(onesoidctest.EndpointIntrospection); n != 0 {
			t.Errorf("%d introspections of a token meant for another device", n)
		}
	})
}

// TestONESQRDeviceTokenOnlyOverHTTPS: the device access token goes only to an https host (or
// http on loopback); nothing is sent to a plain-http host.
func TestONESQRDeviceTokenOnlyOverHTTPS(t *testing.T) {
	t.Parallel()
	cfg := &DeviceConfig{ID: testDeviceID, ClientID: testClientID, Host: "http://identity.ones-now.com"}
	meta := &ProviderMetadata{Issuer: cfg.IssuerURL(), TokenEndpoint: "https://identity.ones-now.com/oidc/token",
		JWKSURI: "https://identity.ones-now.com/oidc/jwks"}
	var calls int
	hc := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		calls++
		return nil, errors.New("no network in this test")
	})}
	c, err := NewClientFromMetadata(cfg, testKey(t, "EdDSA"), meta, WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.StartQRLogin(t.Context()); !errors.As(err, new(*ConfigError)) || !strings.Contains(err.Error(), "https") {
		t.Errorf("StartQRLogin on http host: %v, want a ConfigError about https", err)
	}
	if _, err := c.CheckQRStatus(t.Context(), "4b3c2d1e-0000-4000-8000-000000000000"); !errors.As(err, new(*ConfigError)) {
		t.Errorf("CheckQRStatus on http host: %v, want a ConfigError", err)
	}
	if calls != 0 {
		t.Errorf("%d requests sent", calls)
	}
}

func TestONESQRSessionIDsOutsideTheSafeSetAreRefused(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := onesQRSetup(t)
		for _, id := range []string{"", "..", ".", "../../oidc/token", "a/b", "a b", "a%2Fb", "a?b", "a#b", `a"b`, "ä",
			"a\x00b", strings.Repeat("a", 257)} {
			if _, err := c.CheckQRStatus(t.Context(), id); !errors.As(err, new(*RequestError)) {
				t.Errorf("CheckQRStatus(%q): %v, want a RequestError", id, err)
			}
		}
		if n := idp.Count(onesoidctest.EndpointQRStatus) + idp.Count(onesoidctest.EndpointToken); n != 0 {
			t.Errorf("%d requests sent", n)
		}
	})
}

func TestONESQRStartAnswerIsChecked(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"no auth_req_id":             `{"exp":300}`,
		"auth_req_id not a string":   `{"auth_req_id":12,"exp":300}`,
		"auth_req_id with a slash":   `{"auth_req_id":"../oidc/token","exp":300}`,
		"auth_req_id with a quote":   `{"auth_req_id":"a\",\"deviceId\":\"x","exp":300}`,
		"auth_req_id over 256 bytes": `{"auth_req_id":"` + strings.Repeat("a", 257) + `","exp":300}`,
		"no exp":                     `{"auth_req_id":"abc"}`,
		"exp zero":                   `{"auth_req_id":"abc","exp":0}`,
		"exp an absolute time":       `{"auth_req_id":"abc","exp":1767225600}`,
		"exp a string":               `{"auth_req_id":"abc","exp":"300"}`,
		"not JSON object":            `[]`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				idp, c := onesQRSetup(t)
				idp.Inject(onesoidctest.EndpointQRStart, onesoidctest.Fault{Status: 200, ContentType: "application/json", Body: []byte(body)})
				if s, err := c.StartQRLogin(t.Context()); s != nil || !errors.As(err, new(*HTTPError)) {
					t.Fatalf("StartQRLogin = %v, %v; want an HTTPError", s, err)
				}
			})
		})
	}
}

func TestONESQRStatusAnswerIsChecked(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		body string
		want any
	}{
		"no status":                 {`{"deviceId":"` + testDeviceID + `"}`, new(*HTTPError)},
		"status not a string":       {`{"status":1}`, new(*HTTPError)},
		"approved without token":    {`{"status":"approved"}`, new(*LoginTokenError)},
		"approved with empty token": {`{"status":"approved","access_token":""}`, new(*LoginTokenError)},
		"token with a space":        {`{"status":"approved","access_token":"a b"}`, new(*LoginTokenError)},
		"token not a string":        {`{"status":"approved","access_token":{}}`, new(*HTTPError)},
		"not JSON":                  {`pending`, new(*HTTPError)},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				idp, c, s := onesQRSession(t, onesoidctest.QRScript{})
				idp.Inject(onesoidctest.EndpointQRStatus, onesoidctest.Fault{Status: 200, ContentType: "application/json", Body: []byte(tc.body)})
				if res, err := c.CheckQRStatus(t.Context(), s.ID()); res != nil || !errors.As(err, tc.want) {
					t.Fatalf("CheckQRStatus = %v, %v; want %T", res, err, tc.want)
				}
				if n := idp.Count(onesoidctest.EndpointIntrospection); n != 0 {
					t.Errorf("%d introspections", n)
				}
			})
		})
	}
}

func TestONESQROnePollInFlightPerSession(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c, s := onesQRSession(t, onesoidctest.QRScript{})
		idp.Inject(onesoidctest.EndpointQRStatus, onesoidctest.Fault{Times: 1, Delay: time.Second})
		var wg sync.WaitGroup
		var first error
		wg.Go(func() { _, first = c.CheckQRStatus(t.Context(), s.ID()) })
		synctest.Wait() // the first poll waits at the IdP
		if _, err := c.CheckQRStatus(t.Context(), s.ID()); !errors.As(err, new(*RequestError)) {
			t.Errorf("concurrent check: %v, want a RequestError", err)
		}
		wg.Wait()
		if first != nil {
			t.Errorf("first check: %v", first)
		}
		if n := idp.Count(onesoidctest.EndpointQRStatus); n != 1 {
			t.Errorf("%d status requests, want 1", n)
		}
		// A second waiter on the same session is refused while the first waits.
		idp.ScriptQR(onesoidctest.QRScript{Outcome: onesoidctest.AwaitDecision})
		s2, err := c.StartQRLogin(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		wg.Go(func() { _, _ = c.WaitForQRLogin(ctx, s2) })
		synctest.Wait()
		if _, err := c.WaitForQRLogin(t.Context(), s2); !errors.As(err, new(*RequestError)) || !strings.Contains(err.Error(), "WaitForQRLogin") {
			t.Errorf("concurrent wait: %v, want a RequestError", err)
		}
		cancel()
		wg.Wait()
	})
}

func TestONESQRRetryAfterAndBackoff(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		idp, c, s := onesQRSession(t, onesoidctest.QRScript{PendingPolls: 1})
		idp.Inject(onesoidctest.EndpointQRStatus, onesoidctest.Fault{Times: 1, Status: 503, Header: http.Header{"Retry-After": {"40"}}})
		idp.Inject(onesoidctest.EndpointQRStatus, onesoidctest.Fault{Times: 1, Status: 502})
		if _, err := c.WaitForQRLogin(t.Context(), s); err != nil {
			t.Fatal(err)
		}
		// 5s: 503 (Retry-After 40 s beats the doubled 10 s) → 45s: 502 (doubled twice: 20 s) →
		// 65s: pending → 70s: approved.
		var got []time.Duration
		for _, r := range idp.Requests(onesoidctest.EndpointQRStatus) {
			got = append(got, r.Time.Sub(start))
		}
		want := []time.Duration{5 * time.Second, 45 * time.Second, 65 * time.Second, 70 * time.Second}
		if len(got) != len(want) {
			t.Fatalf("polls at %v, want %v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("polls at %v, want %v", got, want)
				break
			}
		}
	})
}

// TestONESQRRenewsARejectedDeviceToken: a 401 from the QR endpoint drops the cached device
// token; one retry with a fresh one follows.
func TestONESQRRenewsARejectedDeviceToken(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := onesQRSetup(t)
		idp.Inject(onesoidctest.EndpointQRStart, onesoidctest.Fault{Times: 1, Status: 401, ContentType: "application/json",
			Header: http.Header{"Www-Authenticate": {`Bearer error="invalid_token"`}}, Body: []byte(`{"error":"invalid_token"}`)})
		if _, err := c.StartQRLogin(t.Context()); err != nil {
			t.Fatal(err)
		}
		starts := idp.Requests(onesoidctest.EndpointQRStart)
		if len(starts) != 2 || idp.Count(onesoidctest.EndpointToken) != 2 ||
			starts[0].Header.Get("Authorization") == starts[1].Header.Get("Authorization") {
			t.Errorf("%d starts, %d token requests; want 2 and 2 with a new token", len(starts), idp.Count(onesoidctest.EndpointToken))
		}
		// Twice in a row is an error, not a loop.
		idp.Inject(onesoidctest.EndpointQRStart, onesoidctest.Fault{Times: 2, Status: 401, ContentType: "application/json", Body: []byte(`{"error":"invalid_token"}`)})
		if _, err := c.StartQRLogin(t.Context()); !errors.As(err, new(*OAuthError)) {
			t.Errorf("two 401s: %v, want an OAuthError", err)
		}
	})
}

// TestONESQRBearerNeverFollowsARedirect: a request that carries the device token is not
// redirected, not even on the same host.
func TestONESQRBearerNeverFollowsARedirect(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := onesQRSetup(t)
		idp.Inject(onesoidctest.EndpointQRStart, onesoidctest.Fault{Times: 1, Redirect: idp.URL + "/oidc/jwks"})
		if _, err := c.StartQRLogin(t.Context()); !errors.As(err, new(*HTTPError)) {
			t.Errorf("redirect: %v, want an HTTPError", err)
		}
		for _, r := range idp.Requests(onesoidctest.EndpointJWKS) {
			if r.Header.Get("Authorization") != "" {
				t.Error("the device token followed the redirect")
			}
		}
	})
}

func TestONESQRNeedsTheDeviceID(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp := onesoidctest.NewInMemory()
		key := testKey(t, "ES256")
		idp.RegisterClient(testClientID, key.Public(), key.Algorithm())
		cfg := testConfig(idp)
		cfg.ID = ""
		c, err := NewClient(t.Context(), cfg, key, WithHTTPClient(idp.HTTPClient()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.StartQRLogin(t.Context()); !errors.As(err, new(*ConfigError)) {
			t.Errorf("StartQRLogin without a device id: %v, want a ConfigError", err)
		}
		if n := idp.Count(onesoidctest.EndpointQRStart); n != 0 {
			t.Errorf("%d requests", n)
		}
	})
}

func TestQR04ONESQRCodeHoldsNoCredential(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		_, c, s := onesQRSession(t, onesoidctest.QRScript{})
		dev, err := c.DeviceAccessToken(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, shown := range []string{s.QR.Payload(), s.QR.SVG(), s.QR.Terminal(), s.description().String()} {
			if strings.Contains(shown, dev.AccessToken) {
				t.Errorf("device token visible in %.60q", shown)
			}
		}
	})
}

func TestQRProtocolIsExplicit(t *testing.T) {
	t.Parallel()
	c := qrTestClient(t, WithDeviceAuthorizationQR())
	if _, err := c.CheckQRStatus(t.Context(), "abc"); !errors.As(err, new(*ConfigError)) {
		t.Errorf("CheckQRStatus on an RFC 8628 client: %v, want a ConfigError", err)
	}
}

// TestMockIdPONESQREnforcesTheWire: the fake refuses what the ONES provider would not take, so
// that the byte-for-byte assertions above have teeth: only GET, no query, and only a live device
// access token (client_credentials) as bearer token; a user's token is refused.
func TestMockIdPONESQREnforcesTheWire(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := onesQRSetup(t)
		res, err := c.WaitForQRLogin(t.Context(), mustStartQR(t, c))
		if err != nil {
			t.Fatal(err)
		}
		dev, err := c.DeviceAccessToken(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		hc := idp.HTTPClient()
		for _, tc := range []struct {
			name, method, path, auth string
			want                     int
		}{
			{"device token", http.MethodGet, "/auth/qr", "Bearer " + dev.AccessToken, http.StatusOK},
			{"no token", http.MethodGet, "/auth/qr", "", http.StatusUnauthorized},
			{"user token", http.MethodGet, "/auth/qr", "Bearer " + res.Token.AccessToken, http.StatusUnauthorized},
			{"other scheme", http.MethodGet, "/auth/qr", "Basic " + dev.AccessToken, http.StatusUnauthorized},
			{"POST", http.MethodPost, "/auth/qr", "Bearer " + dev.AccessToken, http.StatusMethodNotAllowed},
			{"query", http.MethodGet, "/auth/qr?x=1", "Bearer " + dev.AccessToken, http.StatusBadRequest},
			{"trailing slash", http.MethodGet, "/auth/qr/", "Bearer " + dev.AccessToken, http.StatusNotFound},
			{"escaped id", http.MethodGet, "/auth/qr/" + strings.ReplaceAll(res.AuthReqID, "-", "%2D"), "Bearer " + dev.AccessToken, http.StatusNotFound},
		} {
			req, err := http.NewRequestWithContext(t.Context(), tc.method, idp.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%s: HTTP %d, want %d", tc.name, resp.StatusCode, tc.want)
			}
		}
		// A device token stops working when it is revoked.
		if err := c.RevokeToken(t.Context(), dev.AccessToken, "access_token"); err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, idp.URL+"/auth/qr", nil)
		req.Header.Set("Authorization", "Bearer "+dev.AccessToken)
		if resp, err := hc.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("revoked device token: %v, %v", resp, err)
		}
	})
}

func mustStartQR(t *testing.T, c *OpenIDConnectClient) *QRSession {
	t.Helper()
	s, err := c.StartQRLogin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestONESQRDeviceTokenFailureLeavesTheSessionOpen: when the device cannot get its access token
// (the token endpoint refuses it), the poll fails but the QR session is not ended by it.
func TestONESQRDeviceTokenFailureLeavesTheSessionOpen(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c, s := onesQRSession(t, onesoidctest.QRScript{})
		c.InvalidateDeviceAccessToken()
		idp.Inject(onesoidctest.EndpointToken, onesoidctest.Fault{Times: 1, Status: 401, ContentType: "application/json",
			Body: []byte(`{"error":"invalid_client"}`)})
		if _, err := c.CheckQRStatus(t.Context(), s.ID()); !errors.Is(err, ErrInvalidClient) || errors.Is(err, ErrLoginFinished) {
			t.Fatalf("check without a device token: %v, want invalid_client", err)
		}
		if res, err := c.CheckQRStatus(t.Context(), s.ID()); err != nil || res.Auth.Entity.Subject != "alice" {
			t.Errorf("check with a device token again: %v, %v", res, err)
		}
	})
}

// TestQR06ONESSessionIDAloneCannotPoll: the auth_req_id is in the QR code for anyone to read, but
// polling takes the device's own access token: another device that read the code gets nothing.
func TestQR06ONESSessionIDAloneCannotPoll(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, victim, s := onesQRSession(t, onesoidctest.QRScript{})
		const otherClient, otherDevice = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d", "6b7c8d9e-0f1a-4b2c-9d3e-4f5a6b7c8d9e"
		key := testKey(t, "ES256")
		idp.RegisterClient(otherClient, key.Public(), key.Algorithm())
		idp.SetDeviceID(otherClient, otherDevice)
		other, err := NewClient(t.Context(), &DeviceConfig{ID: otherDevice, ClientID: otherClient, Host: idp.URL}, key,
			WithHTTPClient(idp.HTTPClient()))
		if err != nil {
			t.Fatal(err)
		}
		if res, err := other.CheckQRStatus(t.Context(), s.ID()); res != nil || err == nil {
			t.Fatalf("another device polled the session: %v, %v", res, err)
		}
		if res, err := victim.CheckQRStatus(t.Context(), s.ID()); err != nil || res.Token.AccessToken == "" {
			t.Errorf("the device's own poll: %v, %v", res, err)
		}
	})
}
