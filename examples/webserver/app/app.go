// Package app is the web server of examples/webserver: a login page (CIBA and ONES QR login
// through weblogin), an application session that keeps the tokens on the server, and an API
// behind RequireToken that the server calls for the browser (backend for frontend).
package app

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ones-now/onesoidc"
	"github.com/ones-now/onesoidc/weblogin"
)

//go:embed static
var static embed.FS

// Options configure New.
type Options struct {
	// Client talks to the provider (required).
	Client *onesoidc.OpenIDConnectClient
	// Store and SealKey are weblogin's (default: in memory).
	Store   weblogin.Store
	SealKey weblogin.SealKey
	// Origin is the origin browsers see (default: each request's; required behind TLS proxies).
	Origin string
	// APIAudience, when set, is the audience the API requires of JWT access tokens
	// (onesoidc.ExpectAudience); default: RequireToken's.
	APIAudience string
	// Logger receives diagnostics (default: discard).
	Logger *slog.Logger
}

// App is the example's server. It is safe for concurrent use.
type App struct {
	client   *onesoidc.OpenIDConnectClient
	login    *weblogin.Handler
	api      http.Handler
	mux      *http.ServeMux
	log      *slog.Logger
	origin   string // Options.Origin, "" for each request's own
	mu       sync.Mutex
	sessions map[string]*session
}

// session is the application's own session: the tokens stay here, on the server.
type session struct {
	result  *onesoidc.LoginResult
	expires time.Time
	// refresh is held while the session's tokens are refreshed, so that concurrent requests of
	// one session redeem its refresh token once: a provider that sees a rotated refresh token
	// again revokes the whole grant (RFC 9700 §4.14.2).
	refresh sync.Mutex
}

const (
	appCookie  = "app_session"
	sessionTTL = 8 * time.Hour
)

// New builds the App.
func New(o Options) (*App, error) {
	if o.Client == nil {
		return nil, errors.New("app: Options.Client is required")
	}
	a := &App{client: o.Client, log: o.Logger, sessions: map[string]*session{}, origin: browserOrigin(o.Origin)}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	h, err := weblogin.New(weblogin.Config{
		Client: o.Client, OnLogin: a.onLogin, Store: o.Store, SealKey: o.SealKey, Origin: o.Origin,
		LongPoll: 20 * time.Second, Logger: a.log,
	})
	if err != nil {
		return nil, err
	}
	a.login = h
	var verify []onesoidc.VerifyOption
	if o.APIAudience != "" {
		verify = append(verify, onesoidc.ExpectAudience(o.APIAudience))
	}
	// The API: a resource server that accepts bearer access tokens only.
	a.api = o.Client.RequireToken(http.HandlerFunc(a.hello), verify...)

	sub, _ := fs.Sub(static, "static")
	a.mux = http.NewServeMux()
	a.mux.Handle("/auth/", h)
	a.mux.Handle("POST /ciba/notify", h.NotificationHandler())
	a.mux.Handle("GET /api/hello", a.api)
	a.mux.HandleFunc("GET /app/me", a.me)
	a.mux.HandleFunc("POST /app/logout", a.logout)
	files := http.FileServerFS(sub)
	a.mux.Handle("GET /{$}", files)
	a.mux.Handle("GET /{file}", files)
	return a, nil
}

// ServeHTTP serves the page, the login endpoints, the API and the application's routes.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	a.mux.ServeHTTP(w, r)
}

// onLogin is weblogin's OnLogin: it starts the application's session.
func (a *App) onLogin(w http.ResponseWriter, r *http.Request, res *onesoidc.LoginResult) error {
	var b [32]byte
	_, _ = rand.Read(b[:])
	id := base64.RawURLEncoding.EncodeToString(b[:])
	a.mu.Lock()
	now := time.Now()
	for k, s := range a.sessions {
		if now.After(s.expires) {
			delete(a.sessions, k)
		}
	}
	a.sessions[id] = &session{result: res, expires: now.Add(sessionTTL)}
	a.mu.Unlock()
	name, secure := a.cookieName(r)
	http.SetCookie(w, &http.Cookie{Name: name, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: secure, MaxAge: int(sessionTTL / time.Second)})
	return nil
}

// browserOrigin is origin as browsers send it in Origin: lower case, without a trailing slash or
// the scheme's default port (RFC 6454 §6.1). weblogin.New has checked its form.
func browserOrigin(origin string) string {
	o := strings.TrimSuffix(strings.ToLower(origin), "/")
	if s, ok := strings.CutSuffix(o, ":443"); ok && strings.HasPrefix(o, "https://") {
		return s
	}
	if s, ok := strings.CutSuffix(o, ":80"); ok && strings.HasPrefix(o, "http://") {
		return s
	}
	return o
}

// ownOrigin is the origin browsers see: Options.Origin (TLS may end at a proxy), else the
// request's own.
func (a *App) ownOrigin(r *http.Request) string {
	if a.origin != "" {
		return a.origin
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + strings.ToLower(r.Host)
}

// cookieName is the name of the session cookie and whether it is Secure: on an https origin
// __Host-app_session (Secure, Path=/, no Domain: RFC 6265bis §4.1.3.2), which no other host of
// the site can set, else app_session (loopback http while developing).
func (a *App) cookieName(r *http.Request) (string, bool) {
	if strings.HasPrefix(a.ownOrigin(r), "https://") {
		return "__Host-" + appCookie, true
	}
	return appCookie, false
}

func (a *App) session(r *http.Request) (string, *session) {
	name, _ := a.cookieName(r)
	c, err := r.Cookie(name)
	if err != nil {
		return "", nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.sessions[c.Value]
	if s == nil || time.Now().After(s.expires) {
		return "", nil
	}
	return c.Value, s
}

// me answers who is logged in, and what the API says when the server calls it with the
// session's access token (refreshing it first when it expired).
func (a *App) me(w http.ResponseWriter, r *http.Request) {
	id, s := a.session(r)
	if s == nil {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "not logged in"})
		return
	}
	res, accessToken, err := a.tokens(r.Context(), id, s)
	if err != nil {
		weblogin.WriteError(w, err)
		return
	}
	// Call the API as a backend would: the access token goes from this server to the API, never
	// through the browser.
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, "/api/hello", nil)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal"})
		return
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	rec := &capture{header: http.Header{}}
	a.api.ServeHTTP(rec, req)
	var api any
	_ = json.Unmarshal([]byte(rec.body.String()), &api)
	e := res.Auth.Entity
	writeJSON(w, http.StatusOK, map[string]any{
		"subject": e.Subject, "name": e.Username, "scope": res.Scope,
		"api": map[string]any{"status": rec.status, "body": api},
	})
}

// tokens returns the session's login and its access token, refreshed first when it expired.
// One refresh at a time per session: a request that waited here reads the tokens that the
// refresh before it stored.
func (a *App) tokens(ctx context.Context, id string, s *session) (*onesoidc.LoginResult, string, error) {
	s.refresh.Lock()
	defer s.refresh.Unlock()
	a.mu.Lock()
	res := s.result
	a.mu.Unlock()
	tok := res.Token
	if tok.Valid() || tok.RefreshToken == "" {
		return res, tok.AccessToken, nil
	}
	fresh, err := a.login.Refresh(ctx, tok)
	if err != nil {
		return nil, "", err
	}
	a.mu.Lock()
	if cur := a.sessions[id]; cur != nil {
		cur.result = &onesoidc.LoginResult{Token: fresh, IDToken: res.IDToken, Scope: res.Scope, Auth: res.Auth}
	}
	a.mu.Unlock()
	return res, fresh.AccessToken, nil
}

// hello is the protected API.
func (a *App) hello(w http.ResponseWriter, r *http.Request) {
	who, _ := onesoidc.AuthenticationFromContext(r.Context())
	writeJSON(w, http.StatusOK, map[string]string{
		"hello": who.Entity.Subject, "kind": who.Entity.Kind.String(), "scope": who.Entity.Scope,
	})
}

func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	// Same-origin requests only, as weblogin's endpoints: the whole origin (scheme, host and
	// port), so that a page at http://app.example cannot log out the user of https://app.example.
	if o := r.Header.Get("Origin"); (o == "" && r.Header.Get("Sec-Fetch-Site") != "same-origin") || (o != "" && !strings.EqualFold(o, a.ownOrigin(r))) {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "cross-origin"})
		return
	}
	if id, s := a.session(r); s != nil {
		a.mu.Lock()
		delete(a.sessions, id)
		a.mu.Unlock()
		if rt := s.result.Token.RefreshToken; rt != "" {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
			defer cancel()
			if err := a.client.RevokeToken(ctx, rt, "refresh_token"); err != nil {
				a.log.Warn("app: revocation at logout failed", "error", err)
			}
		}
	}
	name, secure := a.cookieName(r)
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode})
	writeJSON(w, http.StatusOK, map[string]string{"status": "logged out"})
}

// capture is a minimal in-process http.ResponseWriter for the API call.
type capture struct {
	header http.Header
	status int
	body   strings.Builder
}

func (c *capture) Header() http.Header { return c.header }
func (c *capture) WriteHeader(s int) {
	if c.status == 0 {
		c.status = s
	}
}
func (c *capture) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return c.body.Write(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
