package weblogin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ones-now/onesoidc"
	"github.com/ones-now/onesoidc/onesoidctest"
)

func aliceScript() onesoidctest.CIBAScript {
	return onesoidctest.CIBAScript{IDTokenClaims: map[string]any{"preferred_username": "Alice"}}
}

// TestCIBALoginApproved: the whole login; the browser gets the binding code, the status and
// the display name, the application's OnLogin gets the validated tokens, no answer holds a token
// or the auth_req_id.
func TestCIBALoginApproved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, nil)
		e.idp.ScriptCIBA("alice", aliceScript())
		b := newBrowser(t)
		w := b.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "alice", "loginHintKind": "login_hint", "scope": "openid profile", "resource": "idp"})
		start := wantStatus(t, w, http.StatusOK)
		recs := e.idp.CIBARequests()
		if len(recs) != 1 {
			t.Fatalf("%d CIBA requests", len(recs))
		}
		authReqID := recs[0].AuthReqID
		assertNoTokens(t, w.Body.String(), authReqID)
		if start["bindingCode"] != recs[0].Params["binding_message"] {
			t.Fatalf("page shows %v, phone shows %q", start["bindingCode"], recs[0].Params["binding_message"])
		}
		if _, ok := recs[0].Params["resource"]; ok {
			t.Fatal(`"resource": "idp" sent a resource indicator`)
		}
		// Before the interval: pending, without a poll.
		w = b.post(e.h, "/auth/ciba/status", map[string]any{"loginId": start["loginId"]})
		wantStatus(t, w, http.StatusAccepted)
		if n := e.idp.Count(onesoidctest.EndpointToken); n != 0 {
			t.Fatalf("%d polls before the interval", n)
		}
		time.Sleep(5 * time.Second)
		w = b.post(e.h, "/auth/ciba/status", map[string]any{"authRequestId": start["loginId"]})
		got := wantStatus(t, w, http.StatusOK)
		if got["status"] != "approved" || got["name"] != "Alice" {
			t.Fatalf("answer %v", got)
		}
		assertNoTokens(t, w.Body.String(), authReqID)
		if c := w.Result().Cookies(); len(c) != 1 || c[0].Name != "app-session" {
			t.Fatalf("OnLogin's cookie not set: %v", c)
		}
		res := e.app.logins()
		if len(res) != 1 || res[0].Auth.Entity.Subject != "alice" || res[0].Token.AccessToken == "" ||
			res[0].Token.RefreshToken == "" || res[0].AuthReqID != authReqID {
			t.Fatalf("OnLogin got %+v", res)
		}
		// Collected once: a later status says approved without a second OnLogin.
		w = b.post(e.h, "/auth/ciba/status", nil)
		wantStatus(t, w, http.StatusOK)
		if len(e.app.logins()) != 1 || e.idp.Count(onesoidctest.EndpointToken) != 1 {
			t.Fatalf("collected %d times, %d polls", len(e.app.logins()), e.idp.Count(onesoidctest.EndpointToken))
		}
	})
}

// TestSessionCookie: 256-bit value, HttpOnly, SameSite=Lax, Path=/, __Host- and Secure unless
// the origin is plain http on loopback; the store keeps only its hash.
func TestSessionCookie(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, tc := range []struct {
			origin string
			secure bool
			name   string
		}{{"", false, "onesoidc-login"}, {"https://app.example", true, "__Host-onesoidc-login"}} {
			e := newEnv(t, nil, func(c *Config) { c.Origin = tc.origin })
			b := newBrowser(t)
			if tc.origin != "" {
				b.origin = tc.origin
			}
			w := b.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "alice"})
			wantStatus(t, w, http.StatusOK)
			cs := w.Result().Cookies()
			if len(cs) != 1 {
				t.Fatalf("%d cookies", len(cs))
			}
			c := cs[0]
			if c.Name != tc.name || !c.HttpOnly || c.Secure != tc.secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || len(c.Value) != 43 {
				t.Fatalf("cookie %+v", c)
			}
			l, err := e.h.store.GetLogin(t.Context(), hashHex(c.Value), b.logins["ciba"])
			if err != nil {
				t.Fatalf("store does not key the login by the cookie's hash: %v", err)
			}
			if l.Session == c.Value || len(b.logins["ciba"]) != 22 {
				t.Fatalf("store holds the cookie itself, or the loginId %q is not 128 bits", b.logins["ciba"])
			}
		}
	})
}

// TestFindingLoginForAnyUserWithoutBindingMessage: the old CIBALoginHandler sent the request
// without a binding message unless the application set one, so the user's phone showed nothing
// to compare with the page that started the login. Every CIBA login now carries one, shown on
// the page: a generated code that fits the oidc-provider rule, or the application's message.
func TestFindingLoginForAnyUserWithoutBindingMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rule := regexp.MustCompile(onesoidc.BindingMessagePatternOIDCProvider)
		e := newEnv(t, nil, nil)
		w := newBrowser(t).post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "victim"})
		start := wantStatus(t, w, http.StatusOK)
		msg := e.idp.CIBARequests()[0].Params["binding_message"]
		if msg == "" || !rule.MatchString(msg) || start["bindingCode"] != msg {
			t.Fatalf("binding message %q, page shows %v", msg, start["bindingCode"])
		}
		e2 := newEnv(t, nil, func(c *Config) {
			c.BindingMessage = func(*http.Request) string { return "Example.com-login?" }
		})
		w = newBrowser(t).post(e2.h, "/auth/ciba/start", map[string]any{"userIdentifier": "victim"})
		start = wantStatus(t, w, http.StatusOK)
		if got := e2.idp.CIBARequests()[0].Params["binding_message"]; got != "Example.com-login?" || start["bindingCode"] != got {
			t.Fatalf("application's message not used: %q, page %v", got, start["bindingCode"])
		}
	})
}

// TestNewBindingCode: 9 characters, two groups of four, within the oidc-provider rule, and
// different each time.
func TestNewBindingCode(t *testing.T) {
	rule := regexp.MustCompile(`^[A-Z2-9]{4}-[A-Z2-9]{4}$`)
	seen := map[string]bool{}
	for range 1000 {
		c := NewBindingCode()
		if !rule.MatchString(c) || !regexp.MustCompile(onesoidc.BindingMessagePatternOIDCProvider).MatchString(c) || strings.ContainsAny(c, "01IOL") {
			t.Fatalf("code %q", c)
		}
		seen[c] = true
	}
	if len(seen) < 999 {
		t.Fatalf("%d distinct codes of 1000", len(seen))
	}
}

// TestFindingStatusLeaksTokensByAuthReqID: the old CIBAStatusHandler gave the access, ID and
// refresh tokens to anyone who sent the auth_req_id. Now the auth_req_id never leaves the
// server, status answers only the browser session that started the login, and no answer holds a
// token.
func TestFindingStatusLeaksTokensByAuthReqID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, nil)
		victim, attacker := newBrowser(t), newBrowser(t)
		start := wantStatus(t, victim.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "victim"}), http.StatusOK)
		authReqID := e.idp.CIBARequests()[0].AuthReqID
		time.Sleep(5 * time.Second)
		// Without a cookie, with the auth_req_id or the victim's loginId: nothing.
		for _, body := range []map[string]any{{"authRequestId": authReqID}, {"loginId": start["loginId"]}, {}} {
			w := attacker.post(e.h, "/auth/ciba/status", body)
			wantStatus(t, w, http.StatusNotFound)
			assertNoTokens(t, w.Body.String(), authReqID)
		}
		// With a session of its own: still nothing of the victim's.
		wantStatus(t, attacker.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "attacker"}), http.StatusOK)
		for _, body := range []map[string]any{{"authRequestId": authReqID}, {"loginId": start["loginId"]}} {
			w := attacker.post(e.h, "/auth/ciba/status", body)
			wantStatus(t, w, http.StatusNotFound)
		}
		if n := e.idp.Count(onesoidctest.EndpointToken); n != 0 {
			t.Fatalf("attacker caused %d polls", n)
		}
		// Session fixation: the attacker planted its own cookie in the victim's browser before
		// the victim started; with that cookie, but without the loginId that only the victim's
		// page got, it cannot collect the victim's login.
		fixated := newBrowser(t)
		fixated.cookies = map[string]*http.Cookie{}
		for k, c := range attacker.cookies {
			fixated.cookies[k] = c
		}
		victim2 := &browser{t: t, origin: testOrigin, cookies: fixated.cookies, logins: map[string]string{}}
		wantStatus(t, victim2.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "victim"}), http.StatusOK)
		time.Sleep(5 * time.Second)
		for _, body := range []map[string]any{{}, {"authRequestId": e.idp.CIBARequests()[2].AuthReqID}} {
			w := fixated.post(e.h, "/auth/ciba/status", body)
			if w.Code != http.StatusBadRequest && w.Code != http.StatusNotFound {
				t.Fatalf("fixated session, body %v: %d %s", body, w.Code, w.Body)
			}
		}
		if n := e.idp.Count(onesoidctest.EndpointToken); n != 0 {
			t.Fatalf("attacker caused %d polls", n)
		}
		wantStatus(t, victim2.post(e.h, "/auth/ciba/status", nil), http.StatusOK)
		w := victim.post(e.h, "/auth/ciba/status", nil)
		wantStatus(t, w, http.StatusOK)
		assertNoTokens(t, w.Body.String(), authReqID)
		if len(e.app.logins()) != 2 || e.app.logins()[1].Auth.Entity.Subject != "victim" {
			t.Fatal("victim's login not delivered to the application")
		}
	})
}

// TestFindingOpenRefreshOracle: the old RefreshHandler redeemed any refresh token anyone posted
// with the device's credentials. There is no refresh endpoint: refresh is Handler.Refresh, on
// the server.
func TestFindingOpenRefreshOracle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, nil)
		rt := e.idp.MintRefreshToken(testClientID, "victim", "openid")
		for _, path := range []string{"/auth/refresh", "/auth/ciba/refresh", "/auth/token"} {
			w := newBrowser(t).post(e.h, path, map[string]any{"grant_type": "refresh_token", "refresh_token": rt})
			wantStatus(t, w, http.StatusNotFound)
			assertNoTokens(t, w.Body.String())
		}
		if n := e.idp.Count(onesoidctest.EndpointToken); n != 0 {
			t.Fatalf("%d token requests", n)
		}
	})
}

// TestFindingAnonymousLoginsEvictPendingLogins: the old handlers' registry forgot the oldest
// pending request nobody waited for when full, so anonymous starts pushed out real users'
// logins. Now a full handler refuses new logins with 503 and Retry-After before asking the
// provider, and the pending ones go on.
func TestFindingAnonymousLoginsEvictPendingLogins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, func(c *Config) { c.MaxPending = 3 })
		user := newBrowser(t)
		wantStatus(t, user.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "alice"}), http.StatusOK)
		for i := range 2 {
			wantStatus(t, newBrowser(t).post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": fmt.Sprint("anon", i)}), http.StatusOK)
		}
		for range 5 {
			w := newBrowser(t).post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "anon"})
			wantStatus(t, w, http.StatusServiceUnavailable)
			if w.Header().Get("Retry-After") != "30" {
				t.Fatalf("Retry-After %q", w.Header().Get("Retry-After"))
			}
		}
		if n := len(e.idp.CIBARequests()); n != 3 {
			t.Fatalf("%d requests reached the provider", n)
		}
		time.Sleep(5 * time.Second)
		wantStatus(t, user.post(e.h, "/auth/ciba/status", nil), http.StatusOK)
		if len(e.app.logins()) != 1 {
			t.Fatal("the user's login was lost")
		}
		// The approved login no longer counts: a new one is accepted.
		wantStatus(t, newBrowser(t).post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "bob"}), http.StatusOK)
	})
}

// TestPerSessionLimit: one browser session has at most MaxPerSession pending logins; one more is
// refused with 503 and Retry-After without reaching the provider.
func TestPerSessionLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, nil)
		b := newBrowser(t)
		for range DefaultMaxPerSession {
			wantStatus(t, b.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "alice"}), http.StatusOK)
		}
		w := b.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "alice"})
		wantStatus(t, w, http.StatusServiceUnavailable)
		if w.Header().Get("Retry-After") == "" || len(e.idp.CIBARequests()) != DefaultMaxPerSession {
			t.Fatal("no Retry-After, or the provider was asked")
		}
		// Cancelling makes room.
		wantStatus(t, b.post(e.h, "/auth/ciba/cancel", nil), http.StatusOK)
		wantStatus(t, b.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "alice"}), http.StatusOK)
	})
}

// TestFinding500Instead502: a token response whose ID token fails validation, at login or at
// refresh, is the provider's fault: 502, not 500.
func TestFinding500Instead502(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, nil)
		e.idp.ScriptCIBA("alice", onesoidctest.CIBAScript{IDTokenClaims: map[string]any{"aud": "someone-else"}})
		b := newBrowser(t)
		wantStatus(t, b.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "alice"}), http.StatusOK)
		time.Sleep(5 * time.Second)
		got := wantStatus(t, b.post(e.h, "/auth/ciba/status", nil), http.StatusBadGateway)
		if got["error"] != "server_error" || len(e.app.logins()) != 0 {
			t.Fatalf("answer %v", got)
		}
		// The login ended: no second poll.
		time.Sleep(5 * time.Second)
		wantStatus(t, b.post(e.h, "/auth/ciba/status", nil), http.StatusBadGateway)
		if n := e.idp.Count(onesoidctest.EndpointToken); n != 1 {
			t.Fatalf("%d polls", n)
		}

		// Refresh: the refreshed ID token names another issuer.
		rt := e.idp.MintRefreshToken(testClientID, "alice", "openid")
		e.idp.ScriptRefresh(onesoidctest.RefreshScript{IDTokenIssuer: "https://evil.example/oidc"})
		tok, err := e.h.Refresh(t.Context(), tokenWithRefresh(rt))
		var we *Error
		if tok != nil || !errors.As(err, &we) || we.Status != http.StatusBadGateway {
			t.Fatalf("Refresh: %v", err)
		}
		rec := httptest.NewRecorder()
		WriteError(rec, err)
		if rec.Code != http.StatusBadGateway {
			t.Fatalf("WriteError: %d", rec.Code)
		}
		assertNoTokens(t, rec.Body.String(), rt)
	})
}

// TestRefreshOnServer: Refresh renews tokens for the application's session.
func TestRefreshOnServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, nil)
		rt := e.idp.MintRefreshToken(testClientID, "alice", "openid")
		tok, err := e.h.Refresh(t.Context(), tokenWithRefresh(rt))
		if err != nil || tok.AccessToken == "" {
			t.Fatalf("Refresh: %v", err)
		}
		e.idp.ScriptRefresh(onesoidctest.RefreshScript{Rotate: true})
		if _, err := e.h.Refresh(t.Context(), tokenWithRefresh(rt)); err != nil {
			t.Fatal(err)
		}
		_, err = e.h.Refresh(t.Context(), tokenWithRefresh(rt)) // rotated away
		var we *Error
		if !errors.As(err, &we) || we.Status != http.StatusGone || we.Code != "invalid_grant" {
			t.Fatalf("Refresh with a revoked refresh token: %v", err)
		}
	})
}

// TestOriginAndContentType: every endpoint refuses cross-origin requests, requests without
// Origin or Sec-Fetch-Site, other methods and other content types, before doing anything.
func TestOriginAndContentType(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, nil)
		body := `{"userIdentifier":"alice"}`
		for _, tc := range []struct {
			name   string
			edit   func(r *http.Request)
			status int
		}{
			{"other origin", func(r *http.Request) { r.Header.Set("Origin", "https://evil.example") }, 403},
			{"null origin", func(r *http.Request) { r.Header.Set("Origin", "null") }, 403},
			{"other port", func(r *http.Request) { r.Header.Set("Origin", "http://localhost:8080") }, 403},
			{"no origin, no fetch metadata", func(r *http.Request) { r.Header.Del("Origin") }, 403},
			{"no origin, cross-site", func(r *http.Request) { r.Header.Del("Origin"); r.Header.Set("Sec-Fetch-Site", "cross-site") }, 403},
			{"no origin, same-site", func(r *http.Request) { r.Header.Del("Origin"); r.Header.Set("Sec-Fetch-Site", "same-site") }, 403},
			{"form post", func(r *http.Request) { r.Header.Set("Content-Type", "application/x-www-form-urlencoded") }, 415},
			{"text/plain", func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, 415},
			{"GET", func(r *http.Request) { r.Method = http.MethodGet }, 405},
			{"not loopback over http", func(r *http.Request) { r.Host = "app.example"; r.Header.Set("Origin", "http://app.example") }, 403},
			{"same origin by fetch metadata", func(r *http.Request) { r.Header.Del("Origin"); r.Header.Set("Sec-Fetch-Site", "same-origin") }, 200},
		} {
			for _, path := range []string{"/auth/ciba/start", "/auth/ciba/status", "/auth/qr/cancel"} {
				r := httptest.NewRequest(http.MethodPost, "http://localhost"+path, strings.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				r.Header.Set("Origin", testOrigin)
				tc.edit(r)
				w := httptest.NewRecorder()
				e.h.ServeHTTP(w, r)
				want := tc.status
				if want == 200 && path != "/auth/ciba/start" {
					continue
				}
				if w.Code != want {
					t.Errorf("%s %s: %d, want %d: %s", tc.name, path, w.Code, want, w.Body)
				}
				if want != 200 {
					decode(t, w)
				}
			}
		}
		if n := len(e.idp.CIBARequests()); n != 1 {
			t.Fatalf("%d requests reached the provider", n)
		}
	})
}

// TestBadBodies: malformed JSON, unknown fields, oversized bodies, a missing user, a scope
// beyond the configured one and an unknown resource are 4xx before the provider is asked.
func TestBadBodies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, nil)
		for _, tc := range []struct {
			name   string
			body   string
			status int
			code   string
		}{
			{"not JSON", `{`, 400, "invalid_request"},
			{"unknown field", `{"userIdentifier":"a","bindingMessage":"x"}`, 400, "invalid_request"},
			{"two values", `{"userIdentifier":"a"}{}`, 400, "invalid_request"},
			{"no user", `{}`, 400, "invalid_request"},
			{"bad hint kind", `{"userIdentifier":"a","loginHintKind":"email"}`, 400, "invalid_request"},
			{"scope beyond", `{"userIdentifier":"a","scope":["openid","admin"]}`, 400, "invalid_scope"},
			{"unknown resource", `{"userIdentifier":"a","resource":"https://evil.example"}`, 400, "invalid_target"},
			{"huge", `{"userIdentifier":"` + strings.Repeat("a", 9000) + `"}`, 413, "invalid_request"},
			{"control characters", `{"userIdentifier":"a\u0000b"}`, 400, "invalid_request"},
			{"member twice", `{"userIdentifier":"a","userIdentifier":"b"}`, 400, "invalid_request"},
			{"member and its case variant", `{"userIdentifier":"a","UserIdentifier":"b"}`, 400, "invalid_request"},
			{"case variant alone", `{"USERIDENTIFIER":"a"}`, 400, "invalid_request"},
		} {
			w := newBrowser(t).post(e.h, "/auth/ciba/start", tc.body)
			got := wantStatus(t, w, tc.status)
			if got["error"] != tc.code {
				t.Errorf("%s: error %v, want %s", tc.name, got["error"], tc.code)
			}
		}
		if n := len(e.idp.CIBARequests()); n != 0 {
			t.Fatalf("%d requests reached the provider", n)
		}
	})
}

// TestLoginOutcomes: denied 403, expired 410, provider errors at start.
func TestLoginOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script onesoidctest.CIBAScript
		start  int
		status int
		code   string
	}{
		{"denied", onesoidctest.CIBAScript{Outcome: onesoidctest.Deny}, 200, 403, "access_denied"},
		{"expired at provider", onesoidctest.CIBAScript{Outcome: onesoidctest.Expire}, 200, 410, "expired_token"},
		{"unknown user", onesoidctest.CIBAScript{Reject: "unknown_user_id"}, 400, 0, "unknown_user_id"},
		{"transaction failed", onesoidctest.CIBAScript{Outcome: onesoidctest.TransactionFailed}, 200, 400, "transaction_failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, nil, nil)
				e.idp.ScriptCIBA("alice", tc.script)
				b := newBrowser(t)
				got := wantStatus(t, b.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "alice"}), tc.start)
				if tc.status == 0 {
					if got["error"] != tc.code {
						t.Fatalf("start: %v", got)
					}
					if n := len(e.h.store.(*MemoryStore).logins); n != 0 {
						t.Fatal("a refused start left a reservation")
					}
					return
				}
				time.Sleep(5 * time.Second)
				got = wantStatus(t, b.post(e.h, "/auth/ciba/status", nil), tc.status)
				if got["error"] != tc.code {
					t.Fatalf("status: %v", got)
				}
				time.Sleep(10 * time.Second)
				wantStatus(t, b.post(e.h, "/auth/ciba/status", nil), tc.status)
				if n := e.idp.Count(onesoidctest.EndpointToken); n != 1 {
					t.Fatalf("%d polls of an ended login", n)
				}
			})
		})
	}
}

// TestExpiryOnLocalClock: at the request's expiry the status answers 410 without a poll.
func TestExpiryOnLocalClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, nil)
		e.idp.ScriptCIBA("alice", onesoidctest.CIBAScript{Outcome: onesoidctest.AwaitDecision, ExpiresIn: 30})
		b := newBrowser(t)
		wantStatus(t, b.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "alice"}), http.StatusOK)
		time.Sleep(30 * time.Second)
		got := wantStatus(t, b.post(e.h, "/auth/ciba/status", nil), http.StatusGone)
		if got["error"] != "expired_token" || e.idp.Count(onesoidctest.EndpointToken) != 0 {
			t.Fatalf("answer %v, %d polls", got, e.idp.Count(onesoidctest.EndpointToken))
		}
	})
}

// TestSlowDownPacing: slow_down adds 5 s to the interval for all later polls (CIBA Core §11),
// whatever the page does.
func TestSlowDownPacing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, nil)
		e.idp.ScriptCIBA("alice", onesoidctest.CIBAScript{SlowDownPolls: []int{1}, PendingPolls: 1})
		b := newBrowser(t)
		wantStatus(t, b.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "alice"}), http.StatusOK)
		t0 := time.Now()
		for range 40 { // the page polls every second
			time.Sleep(time.Second)
			if b.post(e.h, "/auth/ciba/status", nil).Code == http.StatusOK {
				break
			}
		}
		var at []time.Duration
		for _, r := range e.idp.Requests(onesoidctest.EndpointToken) {
			at = append(at, r.Time.Sub(t0).Round(time.Second))
		}
		if fmt.Sprint(at) != "[5s 15s 25s]" {
			t.Fatalf("polls at %v, want [5s 15s 25s]", at)
		}
	})
}

// TestConcurrentStatusOnePollPerInterval: 100 concurrent status requests of one login cost one
// poll per interval.
func TestConcurrentStatusOnePollPerInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, nil)
		e.idp.ScriptCIBA("alice", onesoidctest.CIBAScript{PendingPolls: 3})
		b := newBrowser(t)
		wantStatus(t, b.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "alice"}), http.StatusOK)
		approved := 0
		for round := range 4 {
			time.Sleep(5 * time.Second)
			var wg sync.WaitGroup
			var mu sync.Mutex
			for range 100 {
				wg.Go(func() {
					w := b.post(e.h, "/auth/ciba/status", nil)
					mu.Lock()
					defer mu.Unlock()
					if w.Code == http.StatusOK {
						approved++
					}
				})
			}
			wg.Wait()
			if n := e.idp.Count(onesoidctest.EndpointToken); n != round+1 {
				t.Fatalf("round %d: %d polls", round, n)
			}
		}
		if approved == 0 || len(e.app.logins()) != 1 {
			t.Fatalf("%d approved answers, %d OnLogin calls", approved, len(e.app.logins()))
		}
	})
}

// TestPingWakesWaiter: in ping mode a notification makes a waiting status request poll at once,
// and the notification endpoint refuses wrong tokens and unknown requests alike.
func TestPingWakesWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, func(c *Config) { c.LongPoll = 30 * time.Second }, onesoidc.WithCIBAPing())
		e.idp.SetCIBANotificationEndpoint(testClientID, "http://localhost/ciba/notify")
		e.idp.ScriptCIBA("alice", onesoidctest.CIBAScript{Outcome: onesoidctest.AwaitDecision})
		b := newBrowser(t)
		wantStatus(t, b.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "alice"}), http.StatusOK)
		id := e.idp.CIBARequests()[0].AuthReqID
		time.Sleep(6 * time.Second) // one poll due: pending
		done := make(chan *httptest.ResponseRecorder)
		go func() { done <- b.post(e.h, "/auth/ciba/status", nil) }()
		synctest.Wait()
		if n := e.idp.Count(onesoidctest.EndpointToken); n != 1 {
			t.Fatalf("%d polls", n)
		}
		time.Sleep(2 * time.Second)
		if err := e.idp.Decide(id, onesoidctest.Approve); err != nil {
			t.Fatal(err)
		}
		notify := onesoidctest.HandlerClient(e.h.NotificationHandler())
		t0 := time.Now()
		if code, err := e.idp.Ping(t.Context(), notify, id); err != nil || code != http.StatusNoContent {
			t.Fatalf("ping: %d %v", code, err)
		}
		w := <-done
		wantStatus(t, w, http.StatusOK)
		if d := time.Since(t0); d > 0 {
			t.Fatalf("waiter answered %v after the ping", d)
		}
		if len(e.app.logins()) != 1 {
			t.Fatal("not delivered")
		}
		// A ping for an ended request, a wrong token and an unknown id: 401 alike.
		for _, tc := range []struct{ id, token string }{{id, "x"}, {"unknown", "x"}} {
			r := httptest.NewRequest(http.MethodPost, "/ciba/notify", strings.NewReader(`{"auth_req_id":"`+tc.id+`"}`))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Authorization", "Bearer "+tc.token)
			rec := httptest.NewRecorder()
			e.h.NotificationHandler().ServeHTTP(rec, r)
			if rec.Code != http.StatusUnauthorized || rec.Header().Get("WWW-Authenticate") == "" {
				t.Fatalf("ping %v: %d", tc, rec.Code)
			}
		}
	})
}

// failingStore fails FinishLogin, as a store that went down right when the user approved.
type failingStore struct {
	*MemoryStore
	finishErr error
}

func (s *failingStore) FinishLogin(ctx context.Context, l *Login, sealed []byte, now time.Time) error {
	if s.finishErr != nil {
		return s.finishErr
	}
	return s.MemoryStore.FinishLogin(ctx, l, sealed, now)
}

// TestApprovedButNotStoredIsRevoked: an approved login whose result the store cannot keep is
// revoked at the provider (refresh and access token), logged, and answered 503: never lost
// silently.
func TestApprovedButNotStoredIsRevoked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &failingStore{MemoryStore: NewMemoryStore(), finishErr: errors.New("store down")}
		e := newEnv(t, nil, func(c *Config) { c.Store = store; c.SealKey = make([]byte, 32) })
		b := newBrowser(t)
		wantStatus(t, b.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "alice"}), http.StatusOK)
		time.Sleep(5 * time.Second)
		w := b.post(e.h, "/auth/ciba/status", nil)
		wantStatus(t, w, http.StatusServiceUnavailable)
		revs := e.idp.Requests(onesoidctest.EndpointRevocation)
		if len(revs) != 2 || !strings.HasPrefix(revs[0].Form.Get("token"), "rt-") || revs[1].Form.Get("token_type_hint") != "access_token" {
			t.Fatalf("revocations: %d", len(revs))
		}
		if !strings.Contains(e.logs.String(), "tokens were revoked") {
			t.Fatal("not reported in the log")
		}
		for _, r := range revs {
			if strings.Contains(e.logs.String(), r.Form.Get("token")) {
				t.Fatal("a token was logged")
			}
		}
		// The login ended; it is not polled again (the auth_req_id was redeemed).
		time.Sleep(10 * time.Second)
		wantStatus(t, b.post(e.h, "/auth/ciba/status", nil), http.StatusServiceUnavailable)
		if n := e.idp.Count(onesoidctest.EndpointToken); n != 1 {
			t.Fatalf("%d polls", n)
		}
	})
}

// TestOnLoginErrorRevokes: when the application cannot set its session, the tokens are revoked.
func TestOnLoginErrorRevokes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, nil)
		e.app.fail = errors.New("session store full")
		b := newBrowser(t)
		wantStatus(t, b.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "alice"}), http.StatusOK)
		time.Sleep(5 * time.Second)
		wantStatus(t, b.post(e.h, "/auth/ciba/status", nil), http.StatusInternalServerError)
		if n := e.idp.Count(onesoidctest.EndpointRevocation); n != 2 {
			t.Fatalf("%d revocations", n)
		}
	})
}

// TestCancel: a cancelled login answers 404 and is not polled; an approved, uncollected one is
// revoked.
func TestCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, nil)
		b := newBrowser(t)
		start := wantStatus(t, b.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "alice"}), http.StatusOK)
		wantStatus(t, b.post(e.h, "/auth/ciba/cancel", map[string]any{"loginId": start["loginId"]}), http.StatusOK)
		time.Sleep(5 * time.Second)
		wantStatus(t, b.post(e.h, "/auth/ciba/status", nil), http.StatusNotFound)
		if n := e.idp.Count(onesoidctest.EndpointToken); n != 0 {
			t.Fatalf("%d polls", n)
		}
		// Approved, not collected, then cancelled: revoked.
		wantStatus(t, b.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "alice"}), http.StatusOK)
		time.Sleep(5 * time.Second)
		if _, err := e.h.pollOnce(t.Context(), b.login(e, "ciba")); err != nil {
			t.Fatal(err)
		}
		wantStatus(t, b.post(e.h, "/auth/ciba/cancel", nil), http.StatusOK)
		if n := e.idp.Count(onesoidctest.EndpointRevocation); n != 2 {
			t.Fatalf("%d revocations", n)
		}
		if len(e.app.logins()) != 0 {
			t.Fatal("a cancelled login was delivered")
		}
	})
}

// TestSealing: a sealed result opens only with its key and for its login; a changed byte fails.
func TestSealing(t *testing.T) {
	s, err := newSealer(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	l := &Login{Session: "s", ID: "1", PollKey: "p"}
	sealed := s.seal([]byte("tokens"), l)
	if got, err := s.open(sealed, l); err != nil || string(got) != "tokens" {
		t.Fatalf("open: %q %v", got, err)
	}
	if strings.Contains(string(sealed), "tokens") {
		t.Fatal("sealed in clear")
	}
	other := &Login{Session: "s", ID: "2", PollKey: "p"}
	if _, err := s.open(sealed, other); err == nil {
		t.Fatal("opened for another login")
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := s.open(sealed, l); err == nil {
		t.Fatal("opened a changed result")
	}
	k2 := make([]byte, 32)
	k2[0] = 1
	s2, _ := newSealer(k2)
	if _, err := s2.open(s.seal([]byte("x"), l), l); err == nil {
		t.Fatal("opened with another key")
	}
	if _, err := newSealer(make([]byte, 16)); err == nil {
		t.Fatal("16-byte key accepted")
	}
}

// TestNewConfig: required fields and bad values fail in New.
func TestNewConfig(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newClient(t, onesoidctest.NewInMemory())
		on := func(http.ResponseWriter, *http.Request, *onesoidc.LoginResult) error { return nil }
		for _, tc := range []struct {
			name  string
			cfg   Config
			field string
		}{
			{"no client", Config{OnLogin: on}, "Client"},
			{"no OnLogin", Config{Client: c}, "OnLogin"},
			{"shared store without key", Config{Client: c, OnLogin: on, Store: NewMemoryStore()}, "SealKey"},
			{"short key", Config{Client: c, OnLogin: on, SealKey: make([]byte, 16)}, "SealKey"},
			{"http origin", Config{Client: c, OnLogin: on, Origin: "http://app.example"}, "Origin"},
			{"origin with path", Config{Client: c, OnLogin: on, Origin: "https://app.example/x"}, "Origin"},
			{"scope without openid", Config{Client: c, OnLogin: on, Scope: []string{"profile"}}, "Scope"},
			{"bad prefix", Config{Client: c, OnLogin: on, Prefix: "auth"}, "Prefix"},
			{"bad resource", Config{Client: c, OnLogin: on, ResourceIndicators: map[string][]string{"idp": {"rel"}}}, "ResourceIndicators"},
			{"long poll", Config{Client: c, OnLogin: on, LongPoll: time.Hour}, "LongPoll"},
		} {
			_, err := New(tc.cfg)
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != tc.field {
				t.Errorf("%s: %v", tc.name, err)
			}
		}
	})
}

// TestNotificationHandlerRefusals: the ping endpoint takes only a POST of JSON with a bearer
// token; a request of a poll-mode login (no notification token) is refused like a wrong token.
func TestNotificationHandlerRefusals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, nil)
		b := newBrowser(t)
		wantStatus(t, b.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "alice"}), http.StatusOK)
		id := e.idp.CIBARequests()[0].AuthReqID
		body := `{"auth_req_id":"` + id + `"}`
		for _, tc := range []struct {
			name, method, ctype, auth, body string
			status                          int
		}{
			{"GET", http.MethodGet, "application/json", "Bearer x", body, 405},
			{"no token", http.MethodPost, "application/json", "", body, 401},
			{"basic auth", http.MethodPost, "application/json", "Basic eDp5", body, 401},
			{"text/plain", http.MethodPost, "text/plain", "Bearer x", body, 415},
			{"json prefix", http.MethodPost, "application/jsonx", "Bearer x", body, 415},
			{"huge", http.MethodPost, "application/json", "Bearer x", `{"auth_req_id":"` + strings.Repeat("a", 5000) + `"}`, 413},
			{"no id", http.MethodPost, "application/json", "Bearer x", `{}`, 400},
			{"poll-mode login", http.MethodPost, "application/json", "Bearer x", body, 401},
		} {
			r := httptest.NewRequest(tc.method, "/ciba/notify", strings.NewReader(tc.body))
			r.Header.Set("Content-Type", tc.ctype)
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			w := httptest.NewRecorder()
			e.h.NotificationHandler().ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Errorf("%s: %d, want %d", tc.name, w.Code, tc.status)
			}
		}
	})
}

// TestLongPollWaitsForTheNextPoll: with LongPoll, one status request waits for the poll that is
// due and answers its outcome; without news it answers pending at the end of LongPoll.
func TestLongPollWaitsForTheNextPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, func(c *Config) { c.LongPoll = 20 * time.Second })
		e.idp.ScriptCIBA("alice", onesoidctest.CIBAScript{PendingPolls: 4})
		b := newBrowser(t)
		wantStatus(t, b.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "alice"}), http.StatusOK)
		t0 := time.Now()
		wantStatus(t, b.post(e.h, "/auth/ciba/status", nil), http.StatusAccepted)
		if d := time.Since(t0); d != 20*time.Second || e.idp.Count(onesoidctest.EndpointToken) != 4 {
			t.Fatalf("answered after %v with %d polls", d, e.idp.Count(onesoidctest.EndpointToken))
		}
		wantStatus(t, b.post(e.h, "/auth/ciba/status", nil), http.StatusOK)
		if d := time.Since(t0); d != 25*time.Second {
			t.Fatalf("approved after %v", d)
		}
	})
}

// TestResourceIndicators: a mapped "resource" becomes RFC 8707 resource indicators.
func TestResourceIndicators(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, func(c *Config) {
			c.ResourceIndicators = map[string][]string{"device": {"https://device.example/"}}
		})
		wantStatus(t, newBrowser(t).post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "a", "resource": "device"}), http.StatusOK)
		if got := e.idp.CIBARequests()[0].Params["resource"]; got != "https://device.example/" {
			t.Fatalf("resource %q", got)
		}
		wantStatus(t, newBrowser(t).post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "a", "resource": "idp"}), http.StatusBadRequest)
	})
}
