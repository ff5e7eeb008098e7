package weblogin

import (
	"net/http"
	"testing"
	"testing/synctest"
)

// TestCookieTossedFromASiblingSubdomainCannotFillTheVictimsSession: a host of the same site
// (evil.example beside app.example) can set a __Secure- cookie with Domain=example for
// app.example too (cookie tossing); with its session full of pending logins, the victim's
// starts were refused with 503. The login cookie is __Host- on https (Secure, Path=/, no
// Domain: RFC 6265bis §4.1.3.2), which no other host can set, and a tossed __Secure- cookie of
// the old name is ignored.
func TestCookieTossedFromASiblingSubdomainCannotFillTheVictimsSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const origin = "https://app.example"
		e := newEnv(t, nil, func(c *Config) { c.Origin = origin })
		attacker := newBrowser(t)
		attacker.origin = origin
		for range DefaultMaxPerSession {
			wantStatus(t, attacker.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "mallory"}), http.StatusOK)
		}
		var planted string
		for _, c := range attacker.cookies {
			planted = c.Value
		}
		victim := newBrowser(t)
		victim.origin = origin
		victim.cookies["__Secure-onesoidc-login"] = &http.Cookie{Name: "__Secure-onesoidc-login", Value: planted}
		w := victim.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "alice"})
		wantStatus(t, w, http.StatusOK)
		cs := w.Result().Cookies()
		if len(cs) != 1 {
			t.Fatalf("%d cookies set", len(cs))
		}
		if c := cs[0]; c.Name != "__Host-onesoidc-login" || !c.Secure || c.Path != "/" || c.Domain != "" || !c.HttpOnly || c.Value == planted {
			t.Fatalf("login cookie %+v, want __Host-onesoidc-login, Secure, HttpOnly, Path=/, no Domain, a fresh value", c)
		}
		wantStatus(t, victim.post(e.h, "/auth/ciba/status", nil), http.StatusAccepted)
	})
}
