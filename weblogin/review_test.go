package weblogin

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ones-now/onesoidc/onesoidctest"
)

// TestProviderEchoOfTheAuthReqIDNeverReachesTheBrowser: a provider whose poll error echoes the
// auth_req_id in error_description (an unknown error code, answered to the page with the
// provider's description) must not hand the browser the polling secret, nor the log.
func TestProviderEchoOfTheAuthReqIDNeverReachesTheBrowser(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, nil)
		b := newBrowser(t)
		wantStatus(t, b.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "alice"}), http.StatusOK)
		id := e.idp.CIBARequests()[0].AuthReqID
		e.idp.Inject(onesoidctest.EndpointToken, onesoidctest.Fault{Times: 1, Status: 400, ContentType: "application/json",
			Body: []byte(`{"error":"invalid_request","error_description":"auth_req_id ` + id + ` is unknown"}`)})
		time.Sleep(6 * time.Second) // past the interval
		w := b.post(e.h, "/auth/ciba/status", nil)
		if w.Code == http.StatusOK || w.Code == http.StatusAccepted {
			t.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
		if strings.Contains(w.Body.String(), id) {
			t.Errorf("the browser got the auth_req_id: %s", w.Body.String())
		}
		if strings.Contains(e.logs.String(), id) {
			t.Errorf("the log holds the auth_req_id")
		}
	})
}

// TestMalformedOrForgedSessionCookies: a session cookie that is not 32 bytes of unpadded
// base64url (short, padded, 4 KiB, other alphabet) is ignored and a fresh session cookie is
// set; a well-formed cookie the server never issued finds no login; a second cookie of the same
// name (cookie tossing) does not reach the first one's login.
func TestMalformedOrForgedSessionCookies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, nil)
		victim := newBrowser(t)
		start := wantStatus(t, victim.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "alice"}), http.StatusOK)
		name := "onesoidc-login"
		for label, value := range map[string]string{
			"short":          randomString(31),
			"padded":         randomString(32) + "=",
			"4 KiB":          strings.Repeat("A", 4096),
			"std alphabet":   strings.Repeat("+/", 21) + "A",
			"never issued":   randomString(32),
			"empty":          "",
			"quoted garbage": `"a b"`,
		} {
			r := httptest.NewRequest(http.MethodPost, "http://localhost/auth/ciba/status",
				strings.NewReader(`{"loginId":"`+start["loginId"].(string)+`"}`))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Origin", testOrigin)
			r.Header.Add("Cookie", name+"="+value)
			if label == "never issued" {
				r.Header.Add("Cookie", name+"="+victim.cookies[name].Value) // tossed behind the forged one
			}
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, r)
			if w.Code != http.StatusNotFound {
				t.Errorf("%s: status %d, want 404: %s", label, w.Code, w.Body)
			}
		}
		// A start with a malformed cookie gets a fresh, well-formed one.
		bad := newBrowser(t)
		bad.cookies[name] = &http.Cookie{Name: name, Value: strings.Repeat("A", 4096)}
		w := bad.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "bob"})
		wantStatus(t, w, http.StatusOK)
		if c := bad.cookies[name]; c == nil || len(c.Value) != 43 {
			t.Errorf("no fresh session cookie: %+v", c)
		}
		if n := e.idp.Count(onesoidctest.EndpointToken); n != 0 {
			t.Errorf("%d polls for requests that found no login", n)
		}
	})
}
