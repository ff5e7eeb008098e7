package onesoidctest_test

// This file is a user's test, written as a user outside the SDK writes it: a small net/http
// server with a CIBA login (weblogin), an API protected by RequireToken and a device token, and
// its test against onesoidctest, with no IdP code of its own. It uses only exported API.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ones-now/onesoidc"
	"github.com/ones-now/onesoidc/onesoidctest"
	"github.com/ones-now/onesoidc/weblogin"
)

// userApp is the server under test: /auth/ logs users in by CIBA, /me answers who the session
// belongs to, /api/hello is an API for other devices and services (a bearer access token).
type userApp struct {
	mux      *http.ServeMux
	mu       sync.Mutex
	sessions map[string]string // app session cookie -> user
	next     int
}

func newUserApp(client *onesoidc.OpenIDConnectClient) (*userApp, error) {
	a := &userApp{mux: http.NewServeMux(), sessions: map[string]string{}}
	login, err := weblogin.New(weblogin.Config{Client: client, OnLogin: a.onLogin})
	if err != nil {
		return nil, err
	}
	a.mux.Handle("/auth/", login)
	a.mux.HandleFunc("GET /me", a.me)
	a.mux.Handle("GET /api/hello", client.RequireToken(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, _ := onesoidc.AuthenticationFromContext(r.Context())
		fmt.Fprintf(w, "hello %s %s", res.Entity.Kind, res.Entity.Subject)
	})))
	return a, nil
}

func (a *userApp) onLogin(w http.ResponseWriter, _ *http.Request, res *onesoidc.LoginResult) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.next++
	id := fmt.Sprintf("s%d", a.next)
	a.sessions[id] = res.Auth.Entity.Subject
	http.SetCookie(w, &http.Cookie{Name: "app", Value: id, Path: "/", HttpOnly: true})
	return nil
}

func (a *userApp) me(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie("app")
	a.mu.Lock()
	user := ""
	if err == nil {
		user = a.sessions[c.Value]
	}
	a.mu.Unlock()
	if user == "" {
		http.Error(w, "log in first", http.StatusUnauthorized)
		return
	}
	fmt.Fprintf(w, "you are %s", user)
}

// browser posts JSON to the app as its page does, keeping cookies.
type browser struct {
	t  *testing.T
	hc *http.Client
}

func (b *browser) post(path string, body any) (int, map[string]any) {
	b.t.Helper()
	data, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(b.t.Context(), http.MethodPost, "http://localhost"+path, bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "http://localhost")
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		b.t.Fatalf("POST %s: %d, not JSON: %v", path, resp.StatusCode, err)
	}
	return resp.StatusCode, ans
}

func (b *browser) get(path, bearer string) (int, string) {
	b.t.Helper()
	req, _ := http.NewRequestWithContext(b.t.Context(), http.MethodGet, "http://localhost"+path, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// userTestEnv is what a user's test sets up: a fake ONES IdP in memory, a registered device whose
// files the app loads, the app, and a browser that talks to it.
type userTestEnv struct {
	idp    *onesoidctest.Server
	dev    *onesoidctest.Device
	client *onesoidc.OpenIDConnectClient
	b      *browser
}

func newUserTestEnv(t *testing.T) *userTestEnv {
	t.Helper()
	idp := onesoidctest.NewInMemory(onesoidctest.WithONES())
	dev, err := idp.RegisterDevice()
	if err != nil {
		t.Fatal(err)
	}
	files, err := dev.WriteFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	client, err := onesoidc.NewClientFromDevice(t.Context(), onesoidc.DevicePaths{Config: files.Config, Key: files.Key},
		onesoidc.WithHTTPClient(idp.HTTPClient()))
	if err != nil {
		t.Fatal(err)
	}
	app, err := newUserApp(client)
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	hc := onesoidctest.HandlerClient(app.mux)
	hc.Jar = jar
	return &userTestEnv{idp: idp, dev: dev, client: client, b: &browser{t: t, hc: hc}}
}

// loginThroughTheApp is one whole user test: a CIBA login through the app's endpoints (the user
// approves on the third poll, 5 s apart), the app session, the protected API with and without
// the device's token.
func loginThroughTheApp(t *testing.T) {
	ctx := t.Context()
	e := newUserTestEnv(t)
	idp, dev, client, b := e.idp, e.dev, e.client, e.b
	idp.ScriptCIBA("alice", onesoidctest.CIBAScript{PendingPolls: 2})

	code, start := b.post("/auth/ciba/start", map[string]any{"userIdentifier": "alice"})
	if code != http.StatusOK || start["bindingCode"] == "" {
		t.Fatalf("start: %d %v", code, start)
	}
	var status map[string]any
	for code = http.StatusAccepted; code == http.StatusAccepted; {
		time.Sleep(time.Second) // the page polls every second: fake time in the bubble
		code, status = b.post("/auth/ciba/status", map[string]any{"loginId": start["loginId"]})
	}
	if code != http.StatusOK || status["status"] != "approved" {
		t.Fatalf("status: %d %v", code, status)
	}
	if recs := idp.CIBARequests(); len(recs) != 1 || recs[0].Polls != 3 || recs[0].Params["binding_message"] != start["bindingCode"] {
		t.Fatalf("the IdP saw %+v", recs)
	}
	if code, body := b.get("/me", ""); code != http.StatusOK || body != "you are alice" {
		t.Fatalf("/me: %d %q", code, body)
	}

	if code, _ := b.get("/api/hello", ""); code != http.StatusUnauthorized {
		t.Fatalf("/api/hello without a token: %d", code)
	}
	tok, err := client.DeviceAccessToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := b.get("/api/hello", tok.AccessToken); code != http.StatusOK || body != "hello device "+dev.ClientID {
		t.Fatalf("/api/hello with the device token: %d %q", code, body)
	}
	bob := idp.MintOpaqueToken(dev.ClientID, "bob", "openid profile")
	if code, body := b.get("/api/hello", bob); code != http.StatusOK || body != "hello user bob" {
		t.Fatalf("/api/hello with bob's token: %d %q", code, body)
	}
	if code, _ := b.get("/api/hello", strings.Repeat("A", len(bob))); code != http.StatusUnauthorized {
		t.Fatalf("/api/hello with a token the IdP never issued: %d", code)
	}
}

// TestUserServerCIBALoginUnderASecond: a user's test of a CIBA-login server costs well under a
// second of wall time per login, though the login itself takes 15 s of the provider's poll
// intervals: testing/synctest runs them on a fake clock, and onesoidctest needs no sockets.
// The fastest of three logins must be under a second (each takes about 25 ms with -race): a
// real wait in the login would slow every one of them, while a loaded machine's stall slows one.
func TestUserServerCIBALoginUnderASecond(t *testing.T) {
	onesoidctest.NewInMemory().Close() // the shared RSA key is made once per process: not part of a login
	const logins = 3
	best := time.Duration(1<<63 - 1)
	for i := range logins {
		var virtual time.Duration
		start := time.Now()
		ok := t.Run(fmt.Sprintf("login%d", i), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				t0 := time.Now()
				loginThroughTheApp(t)
				virtual = time.Since(t0)
			})
		})
		wall := time.Since(start)
		if !ok {
			return
		}
		best = min(best, wall)
		t.Logf("login %d: %v wall time, %v on the bubble's clock", i, wall.Round(time.Millisecond), virtual)
		if virtual < 10*time.Second {
			t.Errorf("the login took only %v of fake time: the poll intervals were not exercised", virtual)
		}
	}
	if best >= time.Second {
		t.Fatalf("fastest of %d logins took %v of wall time, want under 1 s", logins, best)
	}
}

// TestSynctestExample runs the test that Example_synctest shows.
func TestSynctestExample(t *testing.T) { testCIBALogin(t) }

// TestUserServerDeniedLogin: a user who denies on the phone gets no session; the page learns it
// from the status endpoint (403 access_denied) after the first poll, 5 s of bubble time.
func TestUserServerDeniedLogin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newUserTestEnv(t)
		e.idp.ScriptCIBA("mallory", onesoidctest.CIBAScript{Outcome: onesoidctest.Deny})
		code, start := e.b.post("/auth/ciba/start", map[string]any{"userIdentifier": "mallory"})
		if code != http.StatusOK {
			t.Fatalf("start: %d %v", code, start)
		}
		t0 := time.Now()
		var status map[string]any
		for code = http.StatusAccepted; code == http.StatusAccepted; {
			time.Sleep(time.Second)
			code, status = e.b.post("/auth/ciba/status", map[string]any{"loginId": start["loginId"]})
		}
		if code != http.StatusForbidden || status["error"] != "access_denied" {
			t.Fatalf("status: %d %v", code, status)
		}
		if took := time.Since(t0); took != 5*time.Second {
			t.Errorf("the denial was seen after %v, want the first poll at 5 s", took)
		}
		if code, _ := e.b.get("/me", ""); code != http.StatusUnauthorized {
			t.Fatalf("/me after a denied login: %d", code)
		}
	})
}
