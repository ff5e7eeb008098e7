package weblogin

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/oauth2"

	"github.com/ones-now/onesoidc"
	"github.com/ones-now/onesoidc/onesoidctest"
)

// sweep collects what a run prints, logs and returns as errors, and the secrets of the run, and
// checks that none of them shows a secret in any encoding.
type sweep struct {
	t       *testing.T
	logs    syncBuffer
	records atomic.Int64
	log     *slog.Logger

	mu      sync.Mutex
	outputs []string
	secrets []secretForms
}

// secretForms is a secret and every encoding it could be shown in.
type secretForms struct {
	name  string
	forms []string
}

func newSweep(t *testing.T) *sweep {
	s := &sweep{t: t}
	opts := &slog.HandlerOptions{Level: slog.LevelDebug}
	s.log = slog.New(&teeHandler{n: &s.records, hs: []slog.Handler{
		slog.NewTextHandler(&s.logs, opts), slog.NewJSONHandler(&s.logs, opts)}})
	return s
}

// teeHandler renders every record with each of hs (text and JSON) and counts the records.
type teeHandler struct {
	n  *atomic.Int64
	hs []slog.Handler
}

func (h *teeHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *teeHandler) Handle(ctx context.Context, r slog.Record) error {
	h.n.Add(1)
	for _, x := range h.hs {
		if err := x.Handle(ctx, r.Clone()); err != nil {
			return err
		}
	}
	return nil
}

func (h *teeHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := &teeHandler{n: h.n}
	for _, x := range h.hs {
		out.hs = append(out.hs, x.WithAttrs(attrs))
	}
	return out
}

func (h *teeHandler) WithGroup(name string) slog.Handler {
	out := &teeHandler{n: h.n}
	for _, x := range h.hs {
		out.hs = append(out.hs, x.WithGroup(name))
	}
	return out
}

// secret records a secret string: as it is, in hexadecimal and in base64.
func (s *sweep) secret(name, v string) {
	s.t.Helper()
	if len(v) < 12 {
		s.t.Fatalf("secret %s of %d bytes is too short to look for", name, len(v))
	}
	b := []byte(v)
	s.add(name, v, hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b)),
		base64.StdEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b))
}

// secretBytes records secret bytes: raw, quoted as Go and as the text handler prints bytes, in
// hexadecimal, base64 (standard and URL, padded or not), and as fmt prints a []byte.
func (s *sweep) secretBytes(name string, b []byte) {
	s.t.Helper()
	if len(b) < 16 {
		s.t.Fatalf("secret %s of %d bytes is too short to look for", name, len(b))
	}
	q := strconv.Quote(string(b))
	s.add(name, string(b), q[1:len(q)-1], hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b)),
		base64.StdEncoding.EncodeToString(b), base64.RawStdEncoding.EncodeToString(b),
		base64.URLEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b),
		strings.Trim(fmt.Sprint(b), "[]"), strings.Trim(fmt.Sprintf("%#v", b), "[]byte{}"))
}

// privateKey records an ECDSA private key: its scalar in every byte encoding (a JWK "d" is its
// base64url) and in decimal, and its PKCS#8 DER as PEM (each full line) and in every encoding.
func (s *sweep) privateKey(name string, k crypto.Signer) {
	s.t.Helper()
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		s.t.Fatalf("%s: %T, want an ECDSA key", name, k)
	}
	d, err := ec.Bytes()
	if err != nil {
		s.t.Fatal(err)
	}
	s.secretBytes(name+" scalar", d)
	s.add(name+" scalar in decimal", new(big.Int).SetBytes(d).String())
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		s.t.Fatal(err)
	}
	s.secretBytes(name+" PKCS#8", der)
	lines := strings.Split(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), "\n")
	for _, l := range lines {
		if len(l) == 64 {
			s.add(name+" PEM line", l)
		}
	}
}

func (s *sweep) add(name string, forms ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets = append(s.secrets, secretForms{name, forms})
}

func (s *sweep) output(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outputs = append(s.outputs, v)
}

// fail records the error of a call that must fail, as errors are printed, wrapped and logged.
func (s *sweep) fail(what string, err error) {
	s.t.Helper()
	if err == nil {
		s.t.Fatalf("%s: no error", what)
	}
	s.errOutputs(what, err)
}

// errOutputs records an error as errors are printed, wrapped and logged.
func (s *sweep) errOutputs(what string, err error) {
	wrapped := fmt.Errorf("%s: %w", what, err)
	for _, v := range []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err),
		fmt.Sprintf("%s", err), fmt.Sprintf("%q", err), fmt.Sprintf("%x", err), wrapped.Error(),
		errors.Join(err, errors.New("and")).Error()} {
		s.output(v)
	}
	for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
		s.output(fmt.Sprintf("%#v", e))
	}
	s.log.Error(what, "error", err, slog.Group("g", "error", wrapped))
}

// must fails the test on err (whose text is checked too).
func (s *sweep) must(what string, err error) {
	s.t.Helper()
	if err != nil {
		s.errOutputs(what, err)
		s.t.Fatalf("%s: %v", what, err)
	}
}

// verbs are the fmt verbs every secret-holding value is printed with.
var verbs = []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "% x"}

// print records v as fmt prints it with every verb, alone and nested, and logs it with slog
// as an attribute, inside groups and through With.
func (s *sweep) print(name string, v any) {
	for _, form := range []any{v, []any{v}, struct{ V any }{v}} {
		for _, verb := range verbs {
			s.output(fmt.Sprintf(verb, form))
		}
	}
	s.output(fmt.Errorf("%s: %v", name, v).Error())
	s.log.Debug(name, "value", v, slog.Group("g", "value", v, slog.Group("inner", "value", v)))
	s.log.With("value", v).WithGroup("g").Info(name, "value", v)
}

// has reports whether a secret of that name was recorded.
func (s *sweep) has(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sec := range s.secrets {
		if sec.name == name {
			return true
		}
	}
	return false
}

// check fails for every output and log line that shows a secret.
func (s *sweep) check() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	outputs := append(strings.Split(s.logs.String(), "\n"), s.outputs...)
	found := 0
	for _, out := range outputs {
		for _, sec := range s.secrets {
			for _, f := range sec.forms {
				if f != "" && strings.Contains(out, f) {
					found++
					if found <= 20 {
						s.t.Errorf("shows the %s: %.600s", sec.name, out)
					}
					break
				}
			}
		}
	}
	if found > 20 {
		s.t.Errorf("and %d more", found-20)
	}
}

// TestHF19KF09NoSecretReachesLogsErrorsOrPrints runs the SDK's flows against the in-memory IdP —
// device tokens with private_key_jwt, CIBA in ping mode, refresh, ONES and RFC 8628 QR login,
// JWT and opaque token validation, introspection, revocation, and browser logins through the
// Handler — with a Debug logger that renders every record as text and as JSON; it prints every
// secret-holding value with every verb and logs it with slog; it forces failures (refused tokens,
// a denied login, a provider that echoes a refresh token, a failing poll, a failing OnLogin).
// No log line, error text or printed form shows any secret of the run: tokens, assertions,
// auth_req_ids, the device code, the notification token, session cookies, sealed results, seal
// keys or private keys, in any encoding (SECURITY-CASES HF-19, KF-09; RFC 6750 §5.3).
func TestHF19KF09NoSecretReachesLogsErrorsOrPrints(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSweep(t)
		ctx := t.Context()
		idp := onesoidctest.NewInMemory()
		ones := onesoidctest.NewInMemory(onesoidctest.WithONES())
		deviceOf := func(idp *onesoidctest.Server, opts ...onesoidc.Option) (*onesoidctest.Device, *onesoidc.DeviceKey, *onesoidc.OpenIDConnectClient) {
			t.Helper()
			dev, err := idp.RegisterDevice()
			s.must("register device", err)
			s.privateKey("device key", dev.Key)
			dk, err := onesoidc.NewDeviceKey(dev.Key)
			s.must("device key", err)
			cfg := &onesoidc.DeviceConfig{ID: dev.ID, ClientID: dev.ClientID, Host: idp.URL, KeySecurity: "default"}
			c, err := onesoidc.NewClient(ctx, cfg, dk, append([]onesoidc.Option{onesoidc.WithHTTPClient(idp.HTTPClient()),
				onesoidc.WithLogger(s.log)}, opts...)...)
			s.must("client", err)
			return dev, dk, c
		}
		newDevice := func(opts ...onesoidc.Option) (*onesoidctest.Device, *onesoidc.DeviceKey, *onesoidc.OpenIDConnectClient) {
			t.Helper()
			return deviceOf(idp, append([]onesoidc.Option{onesoidc.WithStandardCIBA()}, opts...)...)
		}

		// Device token (RFC 7523 private_key_jwt), validation, introspection, revocation.
		dev, dk, c := newDevice(onesoidc.WithCIBAPing())
		idp.SetCIBANotificationEndpoint(dev.ClientID, "http://localhost/ciba/notify")
		tok, err := c.DeviceAccessToken(ctx)
		s.must("device token", err)
		s.secret("device access token", tok.AccessToken)
		_, sig, _ := strings.Cut(tok.AccessToken[strings.IndexByte(tok.AccessToken, '.')+1:], ".")
		s.secret("device access token signature", sig)
		if _, err := c.ValidateToken(ctx, tok.AccessToken); err != nil {
			s.errOutputs("validate the device token", err) // its audience is not the client
		}
		jwtAT, err := idp.MintAccessToken(dev.ClientID, "alice", "openid")
		s.must("mint access token", err)
		s.secret("JWT access token", jwtAT)
		res, err := c.ValidateToken(ctx, jwtAT)
		s.must("validate", err)
		s.print("AuthenticationResult", res)
		_, err = c.IntrospectToken(ctx, tok.AccessToken, "access_token")
		s.must("introspect", err)
		_, err = c.ValidateToken(ctx, jwtAT[:len(jwtAT)-4]+"AAAA")
		s.fail("tampered token", err)
		_, err = c.VerifyIDToken(ctx, jwtAT)
		s.fail("access token as ID token", err)
		opaque := idp.MintOpaqueToken(dev.ClientID, "alice", "openid")
		s.secret("opaque token", opaque)
		_, err = c.ValidateToken(ctx, opaque)
		s.must("validate opaque", err)
		s.must("revoke", c.RevokeToken(ctx, opaque, "access_token"))
		_, err = c.ValidateToken(ctx, "x"+opaque)
		s.fail("unknown opaque token", err)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://localhost/api", nil)
		req.Header.Set("Authorization", "Bearer "+opaque+"x")
		w := httptest.NewRecorder()
		c.RequireToken(http.NotFoundHandler()).ServeHTTP(w, req)
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("RequireToken answered %d to an unknown token", w.Code)
		}

		// CIBA in ping mode: a refused ping, a real one, the result, a second poll of the spent
		// auth_req_id, refresh (also answered by a provider that echoes the refresh token), a
		// request with an id_token_hint, a denied request.
		idp.ScriptCIBA("alice", onesoidctest.CIBAScript{PendingPolls: 1, IDTokenClaims: map[string]any{"preferred_username": "Alice"}})
		cibaReq := onesoidc.CIBARequest{Hint: onesoidc.LoginHint{Kind: onesoidc.HintLogin, Value: "alice"}, Scope: []string{"openid", "profile"}, BindingMessage: "SWEEP-1"}
		ack, err := c.MakeCIBARequest(ctx, cibaReq)
		s.must("CIBA request", err)
		s.secret("auth_req_id", ack.AuthReqID)
		s.secret("client_notification_token", ack.NotificationToken())
		s.print("CIBAResponse", ack)
		s.print("CIBARequest", cibaReq)
		bad := httptest.NewRequestWithContext(ctx, http.MethodPost, "/ciba/notify", strings.NewReader(`{"auth_req_id":"`+ack.AuthReqID+`"}`))
		bad.Header.Set("Content-Type", "application/json")
		bad.Header.Set("Authorization", "Bearer wrong-"+ack.NotificationToken())
		c.CIBANotificationHandler().ServeHTTP(httptest.NewRecorder(), bad)
		if code, err := idp.Ping(ctx, onesoidctest.HandlerClient(c.CIBANotificationHandler()), ack.AuthReqID); err != nil || code != http.StatusNoContent {
			t.Fatalf("ping: %d %v", code, err)
		}
		login, err := c.WaitForCIBA(ctx, ack)
		s.must("wait for CIBA", err)
		s.loginSecrets("CIBA", login)
		s.print("LoginResult", login)
		s.print("LoginResult value", *login)
		_, err = c.CheckCIBAStatus(ctx, ack.AuthReqID)
		s.fail("spent auth_req_id", err)
		refreshed, err := c.RefreshToken(ctx, login.Token)
		s.must("refresh", err)
		s.tokenSecrets("refreshed", refreshed)
		rt := login.Token.RefreshToken
		idp.Inject(onesoidctest.EndpointToken, onesoidctest.Fault{Times: 1, Status: http.StatusBadRequest, ContentType: "application/json",
			Body: []byte(`{"error":"invalid_grant","error_description":"refresh token ` + rt[:len(rt)/2] + `\u0001` + rt[len(rt)/2:] + ` was revoked","error_uri":"https://idp.example/e?t=` + rt + `"}`)})
		_, err = c.RefreshToken(ctx, login.Token)
		s.fail("refresh answered with an echo", err)
		hinted := onesoidc.CIBARequest{Hint: onesoidc.LoginHint{Kind: onesoidc.HintIDToken, Value: login.IDToken}, Scope: []string{"openid"}, UserCode: "user-code-0042"}
		s.secret("user_code", hinted.UserCode)
		s.print("CIBARequest with id_token_hint", hinted)
		s.print("LoginHint", hinted.Hint)
		if ack2, err := c.MakeCIBARequest(ctx, hinted); err != nil {
			s.errOutputs("CIBA with id_token_hint", err)
		} else {
			s.secret("auth_req_id of the id_token_hint request", ack2.AuthReqID)
		}
		idp.ScriptCIBA("bob", onesoidctest.CIBAScript{Outcome: onesoidctest.Deny})
		ack3, err := c.MakeCIBARequest(ctx, onesoidc.CIBARequest{Hint: onesoidc.LoginHint{Kind: onesoidc.HintLogin, Value: "bob"}, Scope: []string{"openid"}})
		s.must("CIBA request for bob", err)
		s.secret("denied auth_req_id", ack3.AuthReqID)
		s.secret("denied client_notification_token", ack3.NotificationToken())
		_, err = c.WaitForCIBA(ctx, ack3)
		s.fail("denied CIBA", err)

		// ONES QR login: the session id is shown in the QR code, so it is no secret; the
		// user's access token is.
		idp.SetDeviceID(dev.ClientID, dev.ID)
		idp.ScriptQR(onesoidctest.QRScript{PendingPolls: 1})
		qr, err := c.StartQRLogin(ctx)
		s.must("ONES QR start", err)
		s.print("ONES QRSession", qr)
		qrLogin, err := c.WaitForQRLogin(ctx, qr)
		s.must("ONES QR login", err)
		s.loginSecrets("ONES QR", qrLogin)
		s.print("ONES QR LoginResult", qrLogin)

		// RFC 8628 QR login: the device code is the polling secret.
		dev2, _, c2 := newDevice(onesoidc.WithDeviceAuthorizationQR())
		qr2, err := c2.StartQRLogin(ctx)
		s.must("RFC 8628 QR start", err)
		for _, r := range idp.CIBARequests() {
			if r.ClientID == dev2.ClientID {
				s.secret("device_code", r.AuthReqID)
			}
		}
		s.print("RFC 8628 QRSession", qr2)
		s.print("RFC 8628 QRSession value", *qr2)
		qr2Login, err := c2.WaitForQRLogin(ctx, qr2)
		s.must("RFC 8628 QR login", err)
		s.loginSecrets("RFC 8628 QR", qr2Login)
		_, err = c2.CheckQRStatus(ctx, "not-a-session-id-of-this-client-0000")
		if err != nil {
			s.errOutputs("unknown QR session", err)
		}

		// The ONES wire shapes: a CIBA request object signed by the device key (a credential
		// too), opaque access tokens.
		_, _, oc := deviceOf(ones)
		ones.ScriptCIBA("alice", onesoidctest.CIBAScript{})
		onesAck, err := oc.MakeCIBARequest(ctx, onesoidc.CIBARequest{Hint: onesoidc.LoginHint{Kind: onesoidc.HintLoginToken, Value: "alice"}, BindingMessage: "SWEEP-2"})
		s.must("ONES CIBA request", err)
		s.secret("ONES auth_req_id", onesAck.AuthReqID)
		onesLogin, err := oc.WaitForCIBA(ctx, onesAck)
		s.must("ONES CIBA login", err)
		s.loginSecrets("ONES CIBA", onesLogin)
		_, err = oc.ValidateToken(ctx, onesLogin.Token.AccessToken)
		s.must("ONES opaque token", err)

		// Browser logins through the Handler: CIBA approved, QR approved, CIBA denied, a
		// poll that fails, an OnLogin that fails; the seal keys, cookies and sealed results
		// are secrets too.
		_, _, wc := newDevice()
		sealKey, oldKey := randomBytes(t, SealKeySize), randomBytes(t, SealKeySize)
		s.secretBytes("seal key", sealKey)
		s.secretBytes("previous seal key", oldKey)
		store := &sealRecorder{MemoryStore: NewMemoryStore()}
		a := &app{}
		cfg := Config{Client: wc, OnLogin: a.onLogin, Store: store, SealKey: sealKey, PreviousSealKeys: [][]byte{oldKey},
			Logger: s.log}
		h, err := New(cfg)
		s.must("weblogin.New", err)
		b := newBrowser(t)
		idp.ScriptCIBA("alice", onesoidctest.CIBAScript{IDTokenClaims: map[string]any{"preferred_username": "Alice"}})
		wantStatus(t, b.post(h, "/auth/ciba/start", map[string]any{"userIdentifier": "alice"}), http.StatusOK)
		time.Sleep(5 * time.Second)
		wantStatus(t, b.post(h, "/auth/ciba/status", nil), http.StatusOK)
		idp.ScriptQR(onesoidctest.QRScript{})
		wantStatus(t, b.post(h, "/auth/qr/start", map[string]any{}), http.StatusOK)
		time.Sleep(5 * time.Second)
		wantStatus(t, b.post(h, "/auth/qr/status", nil), http.StatusOK)
		idp.ScriptCIBA("bob", onesoidctest.CIBAScript{Outcome: onesoidctest.Deny})
		b2 := newBrowser(t)
		wantStatus(t, b2.post(h, "/auth/ciba/start", map[string]any{"userIdentifier": "bob"}), http.StatusOK)
		time.Sleep(5 * time.Second)
		wantStatus(t, b2.post(h, "/auth/ciba/status", nil), http.StatusForbidden)
		idp.ScriptCIBA("carol", onesoidctest.CIBAScript{})
		b3 := newBrowser(t)
		wantStatus(t, b3.post(h, "/auth/ciba/start", map[string]any{"userIdentifier": "carol"}), http.StatusOK)
		idp.Inject(onesoidctest.EndpointToken, onesoidctest.Fault{Times: 1, Status: http.StatusBadGateway, ContentType: "text/html", Body: []byte("<html>bad gateway</html>")})
		time.Sleep(5 * time.Second)
		if w := b3.post(h, "/auth/ciba/status", nil); w.Code < 500 && w.Code != http.StatusAccepted {
			t.Fatalf("failing poll answered %d", w.Code)
		}
		a.mu.Lock()
		a.fail = errors.New("the application's session store is down")
		a.mu.Unlock()
		time.Sleep(10 * time.Second)
		if w := b3.post(h, "/auth/ciba/status", nil); w.Code != http.StatusInternalServerError {
			t.Fatalf("failing OnLogin answered %d: %s", w.Code, w.Body.String())
		}
		_, err = h.Refresh(ctx, tokenWithRefresh("rt-not-issued-by-the-provider-0001"))
		s.fail("refresh of an unknown token", err)
		for _, br := range []*browser{b, b2, b3} {
			for _, ck := range br.cookies {
				if strings.HasSuffix(ck.Name, defaultCookieBaseName) { // not the test application's own
					s.secret("session cookie", ck.Value)
				}
			}
		}
		for _, l := range a.logins() {
			s.loginSecrets("browser", l)
			s.print("browser LoginResult", l)
		}
		for i, sealed := range store.sealedResults() {
			s.secretBytes("sealed result "+strconv.Itoa(i), sealed)
		}
		for _, l := range store.finished() {
			s.print("Login", l)
			s.print("Login value", *l)
		}

		// Every secret the IdP saw: assertions, tokens and codes of every request, and the
		// auth_req_ids and notification tokens of every CIBA request.
		for _, srv := range []*onesoidctest.Server{idp, ones} {
			s.idpSecrets(srv)
		}

		// The printed forms of every other secret-holding value.
		s.print("weblogin.Config", cfg)
		s.print("*weblogin.Config", &cfg)
		s.print("*weblogin.Handler", h)
		s.print("SealKey", cfg.SealKey)
		s.print("SealKeys", cfg.PreviousSealKeys)
		s.print("*MemoryStore", store.MemoryStore)
		s.print("*DeviceKey", dk)
		s.print("DeviceKey", *dk)
		s.print("*OpenIDConnectClient", c)
		s.print("onesoidctest.Device", dev)
		s.print("onesoidctest.Device value", *dev)
		s.print("*onesoidctest.Server", idp)
		s.print("*onesoidctest.Server ONES", ones)

		s.check()
		for _, name := range []string{"device key scalar", "device key PEM line", "client assertion", "request object signature",
			"device access token", "JWT access token", "opaque token", "auth_req_id", "client_notification_token", "CIBA refresh token",
			"CIBA ID token", "device_code", "ONES QR access token", "seal key", "previous seal key", "sealed result 0",
			"session cookie", "browser access token", "ONES CIBA access token"} {
			if !s.has(name) {
				t.Errorf("the run has no %s to look for", name)
			}
		}
		if n := s.records.Load(); n < 50 || !strings.Contains(s.logs.String(), "onesoidc: request") ||
			!strings.Contains(s.logs.String(), "weblogin: poll failed") || !strings.Contains(s.logs.String(), "weblogin: OnLogin failed") {
			t.Errorf("%d log records, without the SDK's and the handler's own: the capture does not work", n)
		}
	})
}

// loginSecrets records the tokens of a login and its auth_req_id.
func (s *sweep) loginSecrets(name string, l *onesoidc.LoginResult) {
	s.t.Helper()
	s.tokenSecrets(name, l.Token)
	if l.IDToken != "" {
		s.secret(name+" ID token", l.IDToken)
		s.secret(name+" ID token signature", l.IDToken[strings.LastIndexByte(l.IDToken, '.')+1:])
	}
	if l.AuthReqID != "" && l.Auth != nil && l.Auth.Kind == onesoidc.KindIDToken {
		s.secret(name+" auth_req_id", l.AuthReqID) // a ONES QR session id is shown in the QR code
	}
	s.print(name+" AuthenticationResult", l.Auth)
}

// tokenSecrets records the access and refresh tokens of tok.
func (s *sweep) tokenSecrets(name string, tok *oauth2.Token) {
	s.t.Helper()
	s.secret(name+" access token", tok.AccessToken)
	if tok.RefreshToken != "" {
		s.secret(name+" refresh token", tok.RefreshToken)
	}
}

// sealRecorder is a MemoryStore that keeps every sealed result and finished login it stores.
type sealRecorder struct {
	*MemoryStore
	mu     sync.Mutex
	sealed [][]byte
	logins []*Login
}

func (r *sealRecorder) FinishLogin(ctx context.Context, l *Login, sealed []byte, now time.Time) error {
	r.mu.Lock()
	r.sealed = append(r.sealed, append([]byte(nil), sealed...))
	cp := *l
	r.logins = append(r.logins, &cp)
	r.mu.Unlock()
	return r.MemoryStore.FinishLogin(ctx, l, sealed, now)
}

func (r *sealRecorder) sealedResults() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sealed
}

func (r *sealRecorder) finished() []*Login {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.logins
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// idpSecrets records every secret m saw: the assertions, signed request objects, tokens and
// codes of every request, the auth_req_ids and notification tokens of every CIBA request, and
// the access tokens of QR sessions; and prints each record.
func (s *sweep) idpSecrets(m *onesoidctest.Server) {
	s.t.Helper()
	for _, ep := range []string{onesoidctest.EndpointToken, onesoidctest.EndpointBackchannel, onesoidctest.EndpointIntrospection,
		onesoidctest.EndpointRevocation, onesoidctest.EndpointDeviceAuthorization, onesoidctest.EndpointQRStart, onesoidctest.EndpointQRStatus} {
		for _, r := range m.Requests(ep) {
			if as := r.Form.Get("client_assertion"); as != "" {
				s.secret("client assertion", as)
				s.secret("client assertion signature", as[strings.LastIndexByte(as, '.')+1:])
			}
			for _, k := range []string{"refresh_token", "token", "auth_req_id", "device_code", "client_notification_token", "id_token_hint", "request", "login_hint_token"} {
				if v := r.Form.Get(k); len(v) >= 12 {
					s.secret("form "+k, v)
				}
			}
			if ro := r.Form.Get("request"); ro != "" {
				s.secret("request object signature", ro[strings.LastIndexByte(ro, '.')+1:])
			}
			if _, cred, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok {
				s.secret("Authorization credential", cred)
			}
			s.print("onesoidctest.Request", r)
		}
	}
	for _, r := range m.CIBARequests() {
		s.secret("recorded auth_req_id", r.AuthReqID)
		if v := r.Params["client_notification_token"]; v != "" {
			s.secret("recorded client_notification_token", v)
		}
		s.print("onesoidctest.CIBARecord", r)
	}
	for _, r := range m.QRSessions() {
		if r.AccessToken != "" {
			s.secret("QR access token", r.AccessToken)
		}
		s.print("onesoidctest.QRRecord", r)
	}
}
