package weblogin

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"

	"github.com/ones-now/onesoidc"
	"github.com/ones-now/onesoidc/onesoidctest"
)

const (
	testClientID = "8a3b1a6e-3c4f-4e1b-9d55-7f2f8f0a1c11"
	testDeviceID = "f1e2d3c4-b5a6-4789-8abc-def012345678"
	testOrigin   = "http://localhost"
)

// newClient registers a fresh ES256 device key with idp and returns a client of it.
func newClient(t testing.TB, idp *onesoidctest.Server, opts ...onesoidc.Option) *onesoidc.OpenIDConnectClient {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dk, err := onesoidc.NewDeviceKey(k)
	if err != nil {
		t.Fatal(err)
	}
	idp.RegisterClient(testClientID, dk.Public(), dk.Algorithm())
	cfg := &onesoidc.DeviceConfig{ID: testDeviceID, ClientID: testClientID, Host: idp.URL, KeySecurity: "default"}
	c, err := onesoidc.NewClient(t.Context(), cfg, dk, append([]onesoidc.Option{onesoidc.WithHTTPClient(idp.HTTPClient()),
		onesoidc.WithStandardCIBA()}, opts...)...) // the mock speaks the standard CIBA shapes (no onesoidctest.WithONES)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// app records what OnLogin received.
type app struct {
	mu      sync.Mutex
	results []*onesoidc.LoginResult
	fail    error
}

func (a *app) onLogin(w http.ResponseWriter, _ *http.Request, res *onesoidc.LoginResult) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		return a.fail
	}
	a.results = append(a.results, res)
	http.SetCookie(w, &http.Cookie{Name: "app-session", Value: "s-" + res.Auth.Entity.Subject, Path: "/", HttpOnly: true})
	return nil
}

func (a *app) logins() []*onesoidc.LoginResult {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*onesoidc.LoginResult(nil), a.results...)
}

// env is one replica: a client of the IdP, a Handler and the application behind it.
type env struct {
	idp    *onesoidctest.Server
	client *onesoidc.OpenIDConnectClient
	h      *Handler
	app    *app
	logs   *syncBuffer
}

// newEnv builds a replica on idp (a new in-memory IdP when nil); edit changes the Config.
func newEnv(t testing.TB, idp *onesoidctest.Server, edit func(*Config), opts ...onesoidc.Option) *env {
	t.Helper()
	if idp == nil {
		idp = onesoidctest.NewInMemory()
	}
	e := &env{idp: idp, client: newClient(t, idp, opts...), app: &app{}, logs: &syncBuffer{}}
	cfg := Config{Client: e.client, OnLogin: e.app.onLogin,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if edit != nil {
		edit(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.h = h
	return e
}

// browser is a browser with its own cookies, talking to a handler from an origin.
type browser struct {
	t       testing.TB
	origin  string
	mu      sync.Mutex
	cookies map[string]*http.Cookie
	logins  map[string]string // flow ("ciba", "qr") -> the loginId of its last start
}

func newBrowser(t testing.TB) *browser {
	return &browser{t: t, origin: testOrigin, cookies: map[string]*http.Cookie{}, logins: map[string]string{}}
}

// post sends a JSON POST to path on h, as a same-origin fetch does. A nil body to a status or
// cancel endpoint sends the loginId of the flow's last start, as the page does.
func (b *browser) post(h http.Handler, path string, body any) *httptest.ResponseRecorder {
	b.t.Helper()
	flow, action, _ := strings.Cut(strings.TrimPrefix(path, "/auth/"), "/")
	if body == nil && (action == "status" || action == "cancel") {
		b.mu.Lock()
		body = map[string]any{"loginId": b.logins[flow]}
		b.mu.Unlock()
	}
	var buf bytes.Buffer
	if s, ok := body.(string); ok {
		buf.WriteString(s)
	} else if body != nil {
		_ = json.NewEncoder(&buf).Encode(body)
	}
	r := httptest.NewRequestWithContext(context.Background(), http.MethodPost, "http://localhost"+path, &buf)
	r.Header.Set("Content-Type", "application/json")
	if b.origin != "" {
		r.Header.Set("Origin", b.origin)
	}
	b.mu.Lock()
	for _, c := range b.cookies {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	b.mu.Unlock()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range w.Result().Cookies() {
		b.cookies[c.Name] = c
	}
	var ans struct {
		LoginID string `json:"loginId"`
	}
	if action == "start" && json.Unmarshal(w.Body.Bytes(), &ans) == nil && ans.LoginID != "" {
		b.logins[flow] = ans.LoginID
	}
	return w
}

// decode decodes a JSON answer into a map.
func decode(t testing.TB, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("answer %d is not JSON: %q", w.Code, w.Body.String())
	}
	return m
}

// wantStatus fails unless w has status code.
func wantStatus(t testing.TB, w *httptest.ResponseRecorder, code int) map[string]any {
	t.Helper()
	if w.Code != code {
		t.Fatalf("status %d, want %d: %s", w.Code, code, w.Body.String())
	}
	return decode(t, w)
}

// assertNoTokens fails when an answer holds a token, a token field or the auth_req_id.
func assertNoTokens(t testing.TB, body string, secrets ...string) {
	t.Helper()
	for _, f := range []string{"access_token", "refresh_token", "id_token", "eyJ", "rt-"} {
		if strings.Contains(body, f) {
			t.Fatalf("answer holds %q: %s", f, body)
		}
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(body, s) {
			t.Fatalf("answer holds a secret: %s", body)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var _ = io.Discard

func tokenWithRefresh(rt string) *oauth2.Token { return &oauth2.Token{RefreshToken: rt} }

// login returns the stored record of b's last login of flow.
func (b *browser) login(e *env, flow string) *Login {
	b.t.Helper()
	b.mu.Lock()
	id := b.logins[flow]
	b.mu.Unlock()
	r := httptest.NewRequest(http.MethodPost, "http://localhost/auth/x", nil)
	for _, c := range b.cookies {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	l, err := e.h.store.GetLogin(context.Background(), e.h.session(r), id)
	if err != nil {
		b.t.Fatalf("login of %s: %v", flow, err)
	}
	return l
}
