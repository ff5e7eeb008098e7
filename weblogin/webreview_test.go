package weblogin

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ones-now/onesoidc"
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

// TestReplayedPingCausesNoSecondPoll (CB-22): every valid ping set the ping flag again, so
// that each repeated or replayed notification of a pending login made its next status request
// poll the provider at once, whatever the interval (and a provider answers slow_down to that).
// A login is pinged once: later notifications are answered 204 and cause no further poll, as
// onesoidc's CIBANotificationHandler does.
func TestReplayedPingCausesNoSecondPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, nil, onesoidc.WithCIBAPing())
		e.idp.SetCIBANotificationEndpoint(testClientID, "http://localhost/ciba/notify")
		e.idp.ScriptCIBA("alice", onesoidctest.CIBAScript{Outcome: onesoidctest.AwaitDecision})
		b := newBrowser(t)
		wantStatus(t, b.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "alice"}), http.StatusOK)
		id := e.idp.CIBARequests()[0].AuthReqID
		notify := onesoidctest.HandlerClient(e.h.NotificationHandler())
		for i := range 3 {
			if code, err := e.idp.Ping(t.Context(), notify, id); err != nil || code != http.StatusNoContent {
				t.Fatalf("ping %d: %d %v", i, code, err)
			}
			wantStatus(t, b.post(e.h, "/auth/ciba/status", nil), http.StatusAccepted)
		}
		if n := e.idp.Count(onesoidctest.EndpointToken); n != 1 {
			t.Fatalf("%d polls within the interval for one ping and two replays, want 1", n)
		}
		// The interval still paces the polls, and the decision is collected.
		time.Sleep(5 * time.Second)
		if err := e.idp.Decide(id, onesoidctest.Approve); err != nil {
			t.Fatal(err)
		}
		wantStatus(t, b.post(e.h, "/auth/ciba/status", nil), http.StatusOK)
		if n := e.idp.Count(onesoidctest.EndpointToken); n != 2 {
			t.Fatalf("%d polls", n)
		}
	})
}

// TestMemoryStorePingedOnce (CB-22): a ping flag is taken once; a repeated ping while it is
// recorded, taken or not, sets nothing; once expired, a new ping counts again.
func TestMemoryStorePingedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewMemoryStore()
		ctx := t.Context()
		take := func() bool {
			got, err := s.TakePinged(ctx, "pk")
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		_ = s.SetPinged(ctx, "pk", time.Minute)
		_ = s.SetPinged(ctx, "pk", time.Minute)
		if !take() || take() {
			t.Fatal("a ping is not taken exactly once")
		}
		_ = s.SetPinged(ctx, "pk", time.Minute)
		if take() {
			t.Fatal("a replayed ping was taken")
		}
		time.Sleep(time.Minute)
		_ = s.SetPinged(ctx, "pk", time.Minute)
		if !take() {
			t.Fatal("a ping after the flag expired was not taken")
		}
	})
}

// TestProviderEchoOfTheDeviceTokenInAQRStatusNeverReachesTheBrowser: a QR status other than
// "approved" was carried as the provider sent it (printable, cut to 64 bytes) into the error, the
// log and, cut to 40, the page. A provider echoing the bearer credential of the status request,
// the device's own access token, in "status" handed it to the browser. The echo is redacted as
// in the provider's OAuth error text.
func TestProviderEchoOfTheDeviceTokenInAQRStatusNeverReachesTheBrowser(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, nil)
		e.idp.SetDeviceID(testClientID, testDeviceID)
		e.idp.ScriptQR(onesoidctest.QRScript{PendingPolls: 5})
		b := newBrowser(t)
		wantStatus(t, b.post(e.h, "/auth/qr/start", map[string]any{}), http.StatusOK)
		dev, err := e.client.DeviceAccessToken(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		tok := dev.AccessToken
		e.idp.Inject(onesoidctest.EndpointQRStatus, onesoidctest.Fault{Times: 1, Status: 200, ContentType: "application/json",
			Body: []byte(`{"status":"` + tok + `","deviceId":"` + testDeviceID + `"}`)})
		time.Sleep(5 * time.Second)
		w := b.post(e.h, "/auth/qr/status", nil)
		if w.Code == http.StatusOK || w.Code == http.StatusAccepted {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		for _, part := range []string{tok, tok[:16], tok[len(tok)-16:]} {
			if strings.Contains(w.Body.String(), part) {
				t.Fatalf("the browser got (part of) the device access token: %s", w.Body)
			}
			if strings.Contains(e.logs.String(), part) {
				t.Fatal("the log holds (part of) the device access token")
			}
		}
	})
}

// TestEveryAnswerIsNoStoreNosniffJSON: every answer of the login endpoints and of the ping
// endpoint, success or error, says Cache-Control: no-store (RFC 9111 §5.2.2.5: login state is
// never kept by a cache, as RFC 6749 §5.1 asks of token answers) and X-Content-Type-Options:
// nosniff with a JSON Content-Type, whatever went wrong; a
// 405 names POST in Allow, a 401 of the ping endpoint carries a Bearer challenge. (Survived:
// pinned.)
func TestEveryAnswerIsNoStoreNosniffJSON(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, func(c *Config) { c.MaxPending = 1 })
		b := newBrowser(t)
		wantStatus(t, b.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "alice"}), http.StatusOK)
		req := func(method, path, origin, ctype, body string) *http.Request {
			r := httptest.NewRequest(method, "http://localhost"+path, strings.NewReader(body))
			if origin != "" {
				r.Header.Set("Origin", origin)
			}
			if ctype != "" {
				r.Header.Set("Content-Type", ctype)
			}
			for _, c := range b.cookies {
				r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
			}
			return r
		}
		const js = "application/json"
		id := `{"loginId":"` + b.logins["ciba"] + `"}`
		for _, tc := range []struct {
			name   string
			r      *http.Request
			h      http.Handler
			status int
		}{
			{"pending", req("POST", "/auth/ciba/status", testOrigin, js, id), e.h, 202},
			{"unknown endpoint", req("POST", "/auth/nope", testOrigin, js, "{}"), e.h, 404},
			{"outside the prefix", req("GET", "/elsewhere", "", "", ""), e.h, 404},
			{"GET", req("GET", "/auth/ciba/status", testOrigin, "", ""), e.h, 405},
			{"cross-origin", req("POST", "/auth/ciba/status", "https://evil.example", js, id), e.h, 403},
			{"form", req("POST", "/auth/ciba/status", testOrigin, "application/x-www-form-urlencoded", "loginId=x"), e.h, 415},
			{"huge", req("POST", "/auth/ciba/status", testOrigin, js, `{"loginId":"`+strings.Repeat("a", 9000)+`"}`), e.h, 413},
			{"malformed", req("POST", "/auth/ciba/status", testOrigin, js, "{"), e.h, 400},
			{"other session", req("POST", "/auth/qr/status", testOrigin, js, id), e.h, 404},
			{"full", req("POST", "/auth/qr/start", testOrigin, js, "{}"), e.h, 503},
			{"ping GET", req("GET", "/ciba/notify", "", "", ""), e.h.NotificationHandler(), 405},
			{"ping without token", req("POST", "/ciba/notify", "", js, `{"auth_req_id":"x"}`), e.h.NotificationHandler(), 401},
		} {
			w := httptest.NewRecorder()
			tc.h.ServeHTTP(w, tc.r)
			hd := w.Header()
			if w.Code != tc.status || hd.Get("Cache-Control") != "no-store" || hd.Get("X-Content-Type-Options") != "nosniff" ||
				hd.Get("Content-Type") != "application/json" {
				t.Errorf("%s: %d, headers %v; want %d, no-store, nosniff, JSON", tc.name, w.Code, hd, tc.status)
				continue
			}
			decode(t, w)
			if tc.status == 405 && hd.Get("Allow") != "POST" {
				t.Errorf("%s: Allow %q", tc.name, hd.Get("Allow"))
			}
			if tc.status == 401 && !strings.HasPrefix(hd.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s: WWW-Authenticate %q", tc.name, hd.Get("WWW-Authenticate"))
			}
		}
	})
}

// TestConfigOriginWithDefaultPortMatchesTheBrowsersOrigin: browsers leave the default port out of
// Origin (RFC 6454 §6.1), so Config.Origin "https://app.example:443" refused every request of
// the application's own page as cross-origin. The default port is dropped from Config.Origin; a
// page on another port is still refused.
func TestConfigOriginWithDefaultPortMatchesTheBrowsersOrigin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, tc := range []struct{ config, browser string }{
			{"https://app.example:443", "https://app.example"},
			{"http://localhost:80", "http://localhost"},
		} {
			e := newEnv(t, nil, func(c *Config) { c.Origin = tc.config })
			b := newBrowser(t)
			b.origin = tc.browser
			wantStatus(t, b.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "alice"}), http.StatusOK)
			b.origin = tc.browser + ":8443"
			wantStatus(t, b.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "alice"}), http.StatusForbidden)
		}
	})
}

// TestSwappedOrTruncatedSealedResultsDoNotOpen: whoever can write to the store swaps the sealed
// results of two approved logins, or cuts one short: each opens only for its own login (the
// additional data binds session, loginId and request), so that neither browser is logged in as
// the other, OnLogin is never called, the browser gets 500 without a token, and the login ends.
// (Survived: pinned at the handler.)
func TestSwappedOrTruncatedSealedResultsDoNotOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, nil)
		store := e.h.store.(*MemoryStore)
		start := func(user string) *browser {
			b := newBrowser(t)
			wantStatus(t, b.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": user}), http.StatusOK)
			return b
		}
		alice, mallory, third := start("alice"), start("mallory"), start("carol")
		time.Sleep(5 * time.Second)
		entry := func(b *browser) *memEntry {
			l := b.login(e, "ciba")
			if _, err := e.h.pollOnce(t.Context(), l); err != nil {
				t.Fatal(err)
			}
			store.mu.Lock()
			defer store.mu.Unlock()
			en := store.logins[memKey{l.Session, l.ID}]
			if en == nil || en.sealed == nil {
				t.Fatal("no sealed result")
			}
			return en
		}
		a, m, c := entry(alice), entry(mallory), entry(third)
		store.mu.Lock()
		a.sealed, m.sealed = m.sealed, a.sealed
		c.sealed = c.sealed[:len(c.sealed)-1]
		store.mu.Unlock()
		for _, b := range []*browser{alice, mallory, third} {
			w := b.post(e.h, "/auth/ciba/status", nil)
			got := wantStatus(t, w, http.StatusInternalServerError)
			assertNoTokens(t, w.Body.String())
			if got["error"] != "server_error" {
				t.Errorf("answer %v", got)
			}
			wantStatus(t, b.post(e.h, "/auth/ciba/status", nil), http.StatusInternalServerError) // ended
		}
		if n := len(e.app.logins()); n != 0 {
			t.Fatalf("OnLogin called %d times with results moved between logins", n)
		}
	})
}

// TestQRCodeReaderCannotCollectTheLogin (QR-06): the session id in a QR code is public (anyone
// who sees the screen reads it); another browser that sends it as loginId or authRequestId, with
// or without a session of its own, finds nothing and causes no poll, and the approval reaches
// only the browser that showed the code. (Survived: pinned.)
func TestQRCodeReaderCannotCollectTheLogin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, nil)
		e.idp.SetDeviceID(testClientID, testDeviceID)
		e.idp.ScriptQR(onesoidctest.QRScript{})
		victim, reader := newBrowser(t), newBrowser(t)
		wantStatus(t, victim.post(e.h, "/auth/qr/start", map[string]any{}), http.StatusOK)
		qrID := e.idp.QRSessions()[0].AuthReqID
		time.Sleep(5 * time.Second)
		try := func() {
			for _, body := range []map[string]any{{"loginId": qrID}, {"authRequestId": qrID}} {
				w := reader.post(e.h, "/auth/qr/status", body)
				wantStatus(t, w, http.StatusNotFound)
				assertNoTokens(t, w.Body.String())
			}
		}
		try()
		wantStatus(t, reader.post(e.h, "/auth/qr/start", map[string]any{}), http.StatusOK) // a session of its own
		try()
		if n := e.idp.QRSessions()[0].Polls; n != 0 {
			t.Fatalf("the reader caused %d polls", n)
		}
		wantStatus(t, victim.post(e.h, "/auth/qr/status", nil), http.StatusOK)
		if res := e.app.logins(); len(res) != 1 {
			t.Fatalf("%d logins delivered", len(res))
		}
	})
}

// TestLoginStartedUnderTheOldCookieNameIsStillFound: the release before named the login cookie
// __Secure-onesoidc-login. A login started under that name (on a replica not yet upgraded) is
// still found by its status and cancel requests, also when the browser has a __Host- cookie
// of a later start beside it; a start never adopts the old cookie.
func TestLoginStartedUnderTheOldCookieNameIsStillFound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const origin, legacy = "https://app.example", "__Secure-onesoidc-login"
		e := newEnv(t, nil, func(c *Config) { c.Origin = origin })
		b := newBrowser(t)
		b.origin = origin
		// A start on the release before: its login is stored under the old cookie's hash.
		old := randomString(sessionBytes)
		l, err := e.h.reserve(t.Context(), hashHex(old), KindCIBA)
		if err != nil {
			t.Fatal(err)
		}
		resp, cerr := e.client.MakeCIBARequest(t.Context(), onesoidc.CIBARequest{Hint: onesoidc.LoginHint{Kind: onesoidc.HintLogin, Value: "alice"},
			Scope: []string{"openid"}, BindingMessage: "K7QM-2XPA"})
		if cerr != nil {
			t.Fatal(cerr)
		}
		l.AuthReqID, l.PollKey, l.Expiry, l.KeepUntil = resp.AuthReqID, hashHex(resp.AuthReqID), time.Now().Add(resp.ExpiresIn), time.Now().Add(time.Hour)
		l.Interval, l.NextPoll = resp.Interval, time.Now().Add(resp.Interval)
		if err := e.h.store.UpdateLogin(t.Context(), l, time.Now()); err != nil {
			t.Fatal(err)
		}
		b.cookies[legacy] = &http.Cookie{Name: legacy, Value: old}
		b.logins["ciba"] = l.ID
		wantStatus(t, b.post(e.h, "/auth/ciba/status", nil), http.StatusAccepted)
		// A start on this release sets a __Host- cookie; the old login is still found.
		w := b.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "bob"})
		if c := w.Result().Cookies(); w.Code != http.StatusOK || len(c) != 1 || c[0].Name != "__Host-onesoidc-login" || c[0].Value == old {
			t.Fatalf("start: %d, cookies %v", w.Code, c)
		}
		time.Sleep(5 * time.Second)
		wantStatus(t, b.post(e.h, "/auth/ciba/status", map[string]any{"loginId": l.ID}), http.StatusOK)
		if len(e.app.logins()) != 1 {
			t.Fatal("the login started under the old cookie name was not delivered")
		}
	})
}

// TestPingWithAmbiguousAuthReqIDIsRefused: a ping whose auth_req_id appears twice, also under
// case folding, or only in another case, is refused with 400 and causes no poll, as the root
// package's CIBANotificationHandler refuses it; the same ping spelled exactly is taken.
func TestPingWithAmbiguousAuthReqIDIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, nil, onesoidc.WithCIBAPing())
		e.idp.SetCIBANotificationEndpoint(testClientID, "http://localhost/ciba/notify")
		e.idp.ScriptCIBA("alice", onesoidctest.CIBAScript{Outcome: onesoidctest.AwaitDecision})
		b := newBrowser(t)
		wantStatus(t, b.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "alice"}), http.StatusOK)
		rec := e.idp.CIBARequests()[0]
		id, token := rec.AuthReqID, rec.Params["client_notification_token"]
		if token == "" {
			t.Fatal("no client_notification_token in the request")
		}
		ping := func(body string) int {
			r := httptest.NewRequest(http.MethodPost, "/ciba/notify", strings.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Authorization", "Bearer "+token)
			w := httptest.NewRecorder()
			e.h.NotificationHandler().ServeHTTP(w, r)
			return w.Code
		}
		for _, body := range []string{
			`{"auth_req_id":"` + id + `","auth_req_id":"` + id + `"}`,
			`{"auth_req_id":"` + id + `","AUTH_REQ_ID":"` + id + `"}`,
			`{"Auth_Req_ID":"` + id + `"}`,
		} {
			if code := ping(body); code != http.StatusBadRequest {
				t.Errorf("ping %s: %d, want 400", body, code)
			}
		}
		wantStatus(t, b.post(e.h, "/auth/ciba/status", nil), http.StatusAccepted)
		if n := e.idp.Count(onesoidctest.EndpointToken); n != 0 {
			t.Errorf("%d polls after refused pings, want 0", n)
		}
		if code := ping(`{"auth_req_id":"` + id + `"}`); code != http.StatusNoContent {
			t.Errorf("the exact ping: %d, want 204", code)
		}
	})
}
