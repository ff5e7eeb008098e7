package app

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestAppLoginAndAPI logs in over HTTP as the page does (start, long-polled status), then the
// server calls the protected API for the session; the page never gets a token.
func TestAppLoginAndAPI(t *testing.T) {
	idp, client, err := StartFakeIdP(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Close()
	a, err := New(Options{Client: client, APIAudience: client.Metadata().Issuer})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	defer srv.Close()
	jar := map[string]string{}
	post := func(path, body string) (int, string) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", srv.URL)
		for k, v := range jar {
			req.AddCookie(&http.Cookie{Name: k, Value: v})
		}
		resp, err := http.DefaultClient.Do(req)
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
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := post("/auth/ciba/status", `{"loginId":"`+start.LoginID+`"}`)
		if code == 200 {
			break
		}
		if code != 202 || time.Now().After(deadline) {
			t.Fatalf("status: %d %s", code, body)
		}
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/app/me", nil)
	req.AddCookie(&http.Cookie{Name: appCookie, Value: jar[appCookie]})
	resp, err := http.DefaultClient.Do(req)
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
	r2, _ := http.Get(srv.URL + "/api/hello")
	r2.Body.Close()
	if r2.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/api/hello without a token: %d", r2.StatusCode)
	}
	// Logging out from another origin is refused.
	req, _ = http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/app/logout", strings.NewReader("{}"))
	req.Header.Set("Origin", "https://evil.example")
	r3, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r3.Body.Close()
	if r3.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin logout: %d", r3.StatusCode)
	}
}
