package app

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ones-now/onesoidc/onesoidctest"
)

// TestAppLoginAndAPI logs in over HTTP as the page does (start, long-polled status), then the
// server calls the protected API for the session; the page never gets a token. It runs in a
// testing/synctest bubble against the in-memory fake IdP: the login's 5 s poll interval passes
// on the bubble's clock, not for real.
func TestAppLoginAndAPI(t *testing.T) {
	synctest.Test(t, testAppLoginAndAPI)
}

func testAppLoginAndAPI(t *testing.T) {
	idp, client, err := setUpFakeIdP(t.Context(), onesoidctest.NewInMemory())
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Close()
	a, err := New(Options{Client: client, APIAudience: client.Metadata().Issuer})
	if err != nil {
		t.Fatal(err)
	}
	const origin = "http://localhost" // the app's origin; the in-memory client reaches it
	hc := onesoidctest.HandlerClient(a)
	jar := map[string]string{}
	post := func(path, body string) (int, string) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, origin+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", origin)
		for k, v := range jar {
			req.AddCookie(&http.Cookie{Name: k, Value: v})
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		for _, c := range resp.Cookies() {
			jar[c.Name] = c.Value
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	code, body := post("/auth/ciba/start", `{"userIdentifier":"bob"}`)
	var start struct {
		LoginID string `json:"loginId"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &start) != nil {
		t.Fatalf("start: %d %s", code, body)
	}
	// bob is approved at the first poll, after the default interval of 5 s; the status request
	// waits for it (long poll) on the bubble's clock.
	t0 := time.Now()
	code, body = post("/auth/ciba/status", `{"loginId":"`+start.LoginID+`"}`)
	if code != 200 {
		t.Fatalf("status: %d %s", code, body)
	}
	if took := time.Since(t0); took != 5*time.Second {
		t.Errorf("the long-polled status answered after %v, want the first poll at 5 s", took)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, origin+"/app/me", nil)
	req.AddCookie(&http.Cookie{Name: appCookie, Value: jar[appCookie]})
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var me struct {
		Subject string `json:"subject"`
		API     struct {
			Status int               `json:"status"`
			Body   map[string]string `json:"body"`
		} `json:"api"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&me); err != nil || me.Subject != "bob" || me.API.Status != 200 || me.API.Body["hello"] != "bob" {
		t.Fatalf("/app/me: %+v %v", me, err)
	}
	// The API itself wants a bearer token, which the browser does not have.
	r2, err := hc.Get(origin + "/api/hello")
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/api/hello without a token: %d", r2.StatusCode)
	}
	// Logging out from another origin is refused.
	req, _ = http.NewRequestWithContext(t.Context(), http.MethodPost, origin+"/app/logout", strings.NewReader("{}"))
	req.Header.Set("Origin", "https://evil.example")
	r3, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r3.Body.Close()
	if r3.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin logout: %d", r3.StatusCode)
	}
}
