package weblogin

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ones-now/onesoidc/onesoidctest"
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

// TestLongPollFloodOfOneLoginHoldsAtMostTwoWaiters: with LongPoll, every status request of a
// pending login was held for up to LongPoll (a goroutine, a subscription and a timer each), so
// that one browser could pin any number of them with one login. At most
// maxWaitersPerLogin requests of one login wait on a replica; the others answer pending at once.
func TestLongPollFloodOfOneLoginHoldsAtMostTwoWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, func(c *Config) { c.LongPoll = 20 * time.Second })
		e.idp.ScriptCIBA("alice", onesoidctest.CIBAScript{PendingPolls: 100})
		b := newBrowser(t)
		wantStatus(t, b.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "alice"}), http.StatusOK)
		const flood = 10
		var answered atomic.Int32
		var wg sync.WaitGroup
		for range flood {
			wg.Go(func() {
				if w := b.post(e.h, "/auth/ciba/status", nil); w.Code == http.StatusAccepted {
					answered.Add(1)
				}
			})
		}
		synctest.Wait()
		if n := answered.Load(); n != flood-maxWaitersPerLogin {
			t.Errorf("%d of %d status requests answered at once, want %d (at most %d held)", n, flood, flood-maxWaitersPerLogin, maxWaitersPerLogin)
		}
		wg.Wait()
		if n := answered.Load(); n != flood {
			t.Errorf("%d of %d answered pending in the end", n, flood)
		}
		// The slots are given back: the next request waits again.
		t0 := time.Now()
		wantStatus(t, b.post(e.h, "/auth/ciba/status", nil), http.StatusAccepted)
		if d := time.Since(t0); d != 20*time.Second {
			t.Errorf("a status request after the flood answered after %v, want the 20 s long poll", d)
		}
	})
}
