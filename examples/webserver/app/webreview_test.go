package app

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ones-now/onesoidc/onesoidctest"
)

// newTestApp is the example on the in-memory fake IdP, with origin as Options.Origin.
func newTestApp(t *testing.T, origin string) *App {
	t.Helper()
	a, _ := newTestAppIdP(t, origin)
	return a
}

// newTestAppIdP is newTestApp that also returns the fake IdP.
func newTestAppIdP(t *testing.T, origin string) (*App, *onesoidctest.Server) {
	t.Helper()
	idp, client, err := setUpFakeIdP(t.Context(), onesoidctest.NewInMemory())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	a, err := New(Options{Client: client, APIAudience: client.Metadata().Issuer, Origin: origin})
	if err != nil {
		t.Fatal(err)
	}
	return a, idp
}

// call sends a request to a as a browser at origin does, with the cookies of jar, to url (its
// scheme says whether it came over TLS: behind a TLS proxy it is http), and keeps the cookies set.
func call(t *testing.T, a *App, jar map[string]*http.Cookie, method, url, origin, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, url, strings.NewReader(body))
	if !strings.HasPrefix(url, "https://") {
		r.TLS = nil
	} else if r.TLS == nil {
		r.TLS = &tls.ConnectionState{}
	}
	if method == http.MethodPost {
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Origin", origin)
	}
	for _, c := range jar {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	w := httptest.NewRecorder()
	a.ServeHTTP(w, r)
	for _, c := range w.Result().Cookies() {
		jar[c.Name] = c
	}
	return w
}

// login logs bob in through the CIBA endpoints at base and returns the application's session
// cookie that the status request set.
func login(t *testing.T, a *App, jar map[string]*http.Cookie, base, origin string) *http.Cookie {
	t.Helper()
	w := call(t, a, jar, http.MethodPost, base+"/auth/ciba/start", origin, `{"userIdentifier":"bob"}`)
	var start struct {
		LoginID string `json:"loginId"`
	}
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &start) != nil {
		t.Fatalf("start: %d %s", w.Code, w.Body)
	}
	w = call(t, a, jar, http.MethodPost, base+"/auth/ciba/status", origin, `{"loginId":"`+start.LoginID+`"}`)
	if w.Code != http.StatusOK {
		t.Fatalf("status: %d %s", w.Code, w.Body)
	}
	for _, c := range w.Result().Cookies() {
		if strings.HasSuffix(c.Name, appCookie) {
			return c
		}
	}
	t.Fatalf("no application session cookie: %v", w.Result().Cookies())
	return nil
}

// TestAppSessionCookieBehindTLSProxyIsSecure: behind a proxy that ends TLS (Options.Origin
// https, the request itself plain http), the application's session cookie, which reaches the
// tokens, was set without Secure, so that the browser sent it over any plain http request to
// the host. It is Secure whenever the origin is https, and __Host- prefixed (RFC 6265bis
// §4.1.3.2).
func TestAppSessionCookieBehindTLSProxyIsSecure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const origin = "https://app.example"
		a := newTestApp(t, origin)
		jar := map[string]*http.Cookie{}
		c := login(t, a, jar, "http://app.internal:8080", origin)
		if !c.Secure || !c.HttpOnly || c.Name != "__Host-"+appCookie || c.Path != "/" || c.Domain != "" {
			t.Fatalf("session cookie %+v, want __Host-%s, Secure, HttpOnly, Path=/", c, appCookie)
		}
		if w := call(t, a, jar, http.MethodGet, "http://app.internal:8080/app/me", "", ""); w.Code != http.StatusOK {
			t.Fatalf("/app/me with the session: %d %s", w.Code, w.Body)
		}
	})
}

// TestLogoutBehindTLSProxy: logout compared the Origin with the Host the proxy forwarded, so
// that behind a TLS proxy every logout was refused (403) and the session stayed. It checks the
// Origin against Options.Origin, as weblogin does.
func TestLogoutBehindTLSProxy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const origin = "https://app.example"
		// Options.Origin with the default port names the same origin (RFC 6454 §6.1).
		for _, configured := range []string{origin, origin + ":443"} {
			a := newTestApp(t, configured)
			jar := map[string]*http.Cookie{}
			login(t, a, jar, "http://app.internal:8080", origin)
			if w := call(t, a, jar, http.MethodPost, "http://app.internal:8080/app/logout", origin, "{}"); w.Code != http.StatusOK {
				t.Fatalf("Origin %s: logout: %d %s", configured, w.Code, w.Body)
			}
			if w := call(t, a, jar, http.MethodGet, "http://app.internal:8080/app/me", "", ""); w.Code != http.StatusUnauthorized {
				t.Fatalf("Origin %s: /app/me after logout: %d %s", configured, w.Code, w.Body)
			}
		}
	})
}

// TestLogoutFromPlainHTTPOriginOfTheSameHostIsRefused: logout compared only the host of the
// Origin, so a page at http://app.example (which a network attacker can write) could log out
// the user of https://app.example. The scheme and port count too (an origin is all three), as
// everywhere else, and so do Origin "null" and a missing Origin without Sec-Fetch-Site.
func TestLogoutFromPlainHTTPOriginOfTheSameHostIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newTestApp(t, "")
		jar := map[string]*http.Cookie{}
		login(t, a, jar, "https://app.example", "https://app.example")
		for _, bad := range []string{"http://app.example", "https://app.example:8443", "null", "https://evil.example", ""} {
			if w := call(t, a, jar, http.MethodPost, "https://app.example/app/logout", bad, "{}"); w.Code != http.StatusForbidden {
				t.Errorf("logout from %q: %d, want 403", bad, w.Code)
			}
		}
		if w := call(t, a, jar, http.MethodGet, "https://app.example/app/me", "", ""); w.Code != http.StatusOK {
			t.Fatalf("the session ended: /app/me %d", w.Code)
		}
		if w := call(t, a, jar, http.MethodPost, "https://app.example/app/logout", "https://app.example", "{}"); w.Code != http.StatusOK {
			t.Fatalf("logout from the application's own origin: %d %s", w.Code, w.Body)
		}
	})
}

// TestConcurrentRequestsOfOneSessionRefreshOnce: /app/me refreshed an expired access token
// without holding anything, so that two requests of one session at once (the page asks /app/me
// as it loads and when the API button is pressed) both redeemed the refresh token. With
// rotation the second redemption is refused, and a provider that sees a rotated refresh token
// again revokes the whole grant (RFC 9700 §4.14.2): the session died. One refresh per session at
// a time; the other requests use its result.
func TestConcurrentRequestsOfOneSessionRefreshOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, idp := newTestAppIdP(t, "")
		idp.ScriptRefresh(onesoidctest.RefreshScript{Rotate: true})
		jar := map[string]*http.Cookie{}
		login(t, a, jar, "http://localhost", "http://localhost")
		before := idp.Count(onesoidctest.EndpointToken)
		time.Sleep(11 * time.Minute) // the access token (10 minutes at the fake) expired
		const n = 4
		codes := make(chan int, n)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				codes <- call(t, a, jar, http.MethodGet, "http://localhost/app/me", "", "").Code
			})
		}
		wg.Wait()
		close(codes)
		for c := range codes {
			if c != http.StatusOK {
				t.Errorf("a concurrent /app/me answered %d", c)
			}
		}
		if got := idp.Count(onesoidctest.EndpointToken) - before; got != 1 {
			t.Errorf("%d refresh requests for one session, want 1", got)
		}
	})
}

// TestPageCannotBeFramed: the login page, which shows the QR code and the binding code, is
// served with frame-ancestors 'none' (no clickjacking of the QR code or of the consent), nosniff
// and no Referer; so is every other answer of the application. (Survived: pinned.)
func TestPageCannotBeFramed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newTestApp(t, "")
		for _, path := range []string{"/", "/app.js", "/app/me", "/nope"} {
			w := call(t, a, map[string]*http.Cookie{}, http.MethodGet, "http://localhost"+path, "", "")
			h := w.Header()
			if !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
				h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
				t.Errorf("%s: %d, headers %v", path, w.Code, h)
			}
		}
		if w := call(t, a, map[string]*http.Cookie{}, http.MethodGet, "http://localhost/", "", ""); w.Code != http.StatusOK ||
			!strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
			t.Errorf("page: %d %q", w.Code, w.Header().Get("Content-Type"))
		}
	})
}
