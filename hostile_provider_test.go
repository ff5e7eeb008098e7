package onesoidc

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/oauth2"

	"github.com/ones-now/onesoidc/internal/jose"
	"github.com/ones-now/onesoidc/onesoidctest"
)

// The hostile-provider matrix: every network call of the public API against every class of bad
// answer a provider (or a remote signer) can give. Each cell runs in its own testing/synctest
// bubble, where a real http.Transport talks to a real http.Server over in-memory pipes (so that
// Content-Encoding, Content-Length, redirects and cut connections behave as on a socket while
// time is fake), in front of the in-memory mock IdP. The bad answer replaces or mutates the
// mock's answer on the call's endpoint for as long as the call runs; every other endpoint
// answers well. Each cell asserts:
//
//   - the call returns, within its context deadline, and does not panic;
//   - a refusal is a typed error of this package (errors.As), whose text starts "onesoidc:", names
//     the exchange (Op) and the endpoint (URL) when it is an *HTTPError or *OAuthError, holds no
//     control character, is at most maxHostileErrorText bytes, and holds no secret the client
//     sent (assertion, bearer token, auth_req_id, device_code, refresh token, introspected token,
//     notification token) — neither do the logs;
//   - an answer that cannot be used is refused (the few that may be accepted say why);
//   - nothing reached a host the answer redirected to;
//   - with the provider answering well again, the same call works (after the retry delay the
//     package documents, for the JWKS): no half-built state;
//   - no goroutine of the call outlives the request timeout (goleak, in the bubble).
//
// The cases of the security catalogue it covers for every call at once: HF-03, HF-04 (hangs and
// drips), HF-05, HF-06, HF-07, HF-08, HF-09 (status, content type, truncation, types, error
// answers), HF-11, HF-12 (redirects), HF-14 (size caps, gzip), HF-19 (no secret in errors or
// logs), DS-07, DS-10, DS-11, DS-12, CB-01, CB-02, CB-05 (slow_down storm), CB-12, QR-03.
//
// The test is not parallel, so that goleak sees only its own goroutines.

// maxHostileErrorText bounds the text of any error a hostile answer causes.
const maxHostileErrorText = 2048

// Deadlines of the calls: a single exchange (discovery included, with its retries) and a wait.
const (
	hostileCallDeadline = 25 * time.Second
	hostileWaitDeadline = 120 * time.Second
)

// pipeNet is an in-memory network for a synctest bubble: DialContext hands one end of a net.Pipe
// to the listener (any address reaches the one server behind it).
type pipeNet struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeNet() *pipeNet { return &pipeNet{conns: make(chan net.Conn), done: make(chan struct{})} }

func (p *pipeNet) Accept() (net.Conn, error) {
	select {
	case c := <-p.conns:
		return c, nil
	case <-p.done:
		return nil, net.ErrClosed
	}
}

func (p *pipeNet) Close() error { p.once.Do(func() { close(p.done) }); return nil }

func (p *pipeNet) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80} }

func (p *pipeNet) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case p.conns <- server:
		return client, nil
	case <-p.done:
		return nil, &net.OpError{Op: "dial", Net: "pipe", Err: errors.New("connection refused")}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// hostileServer is the provider as the client sees it: the mock IdP (and a remote signer at
// /sign), with a bad answer on one path while armed. It records every credential the client
// sends, the times the target was asked, and requests for other hosts.
type hostileServer struct {
	next   http.Handler
	target string // exact path, or a prefix when it ends in "/"
	class  *hostileClass

	mu      sync.Mutex
	armed   bool
	hits    []time.Time
	secrets map[string]bool
	foreign []string
}

func (h *hostileServer) arm(on bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.armed = on
}

// secretList returns the credentials seen, longest first.
func (h *hostileServer) secretList() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for s := range h.secrets {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// hostileSecretParams are the form parameters whose values must never come back in an error.
var hostileSecretParams = append(slices.Clone(secretParams[:]), "client_notification_token")

func (h *hostileServer) collect(r *http.Request, body []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.secrets == nil {
		h.secrets = map[string]bool{}
	}
	add := func(v string) {
		if len(v) >= 16 { // shorter values (scope, hints) are no credentials
			h.secrets[v] = true
		}
	}
	if _, cred, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok {
		add(cred)
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		form, _ := url.ParseQuery(string(body))
		for _, k := range hostileSecretParams {
			for _, v := range form[k] {
				add(v)
			}
		}
	}
}

func (h *hostileServer) isTarget(path string) bool {
	if strings.HasSuffix(h.target, "/") {
		return strings.HasPrefix(path, h.target) && len(path) > len(h.target)
	}
	return path == h.target
}

func (h *hostileServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.collect(r, body)
	h.mu.Lock()
	if r.Host != "localhost" {
		h.foreign = append(h.foreign, r.Host+r.URL.Path)
		h.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
		return
	}
	hostile := h.armed && h.isTarget(r.URL.Path)
	if hostile {
		h.hits = append(h.hits, time.Now())
	}
	h.mu.Unlock()
	serve := func(w http.ResponseWriter) {
		r2 := r.Clone(r.Context())
		r2.Body = io.NopCloser(bytes.NewReader(body))
		h.next.ServeHTTP(w, r2)
	}
	if !hostile {
		serve(w)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body)) // for requestSecrets
	h.class.answer(w, r, func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		serve(rec)
		return rec
	})
}

// fakeSigner is a remote signing service (px-device-identity-service) for the remote sign call.
type fakeSigner struct{ key *DeviceKey }

func (s fakeSigner) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Message string `json:"message"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	sig, err := s.key.SignJWS(r.Context(), []byte(in.Message))
	if err != nil {
		http.Error(w, "cannot sign", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = fmt.Fprintf(w, `{"signature":%q}`, jose.EncodeBase64URL(sig))
}

// hostileEnv is one cell's world.
type hostileEnv struct {
	t      *testing.T
	idp    *onesoidctest.Server
	srv    *hostileServer
	hc     *http.Client
	logs   *syncBuffer
	logger *slog.Logger
	key    *DeviceKey
	opts   []Option
	c      *OpenIDConnectClient
	signer *RemoteSigner

	// State a call prepares while the provider answers well.
	ciba    *CIBAResponse
	qr      *QRSession
	token   string
	refresh *oauth2.Token
}

// newClient discovers the provider with the cell's options.
func (e *hostileEnv) newClient(ctx context.Context) (*OpenIDConnectClient, error) {
	opts := append([]Option{WithHTTPClient(e.hc), WithLogger(e.logger), WithStandardCIBA()}, e.opts...)
	return NewClient(ctx, testConfig(e.idp), e.key, opts...)
}

// hostileCall is one network call of the public API.
type hostileCall struct {
	name string
	// path is what the bad answer replaces (a prefix when it ends in "/").
	path string
	// wait marks WaitForCIBA and WaitForQRLogin: the slow_down storm applies.
	wait bool
	// opts are the client options of the call's flow.
	opts []Option
	// prepare runs while the provider answers well (the client exists unless noClient).
	prepare  func(ctx context.Context, e *hostileEnv) error
	noClient bool
	// call is the call under test; again is the same call once the provider answers well,
	// given the first call's error.
	call  func(ctx context.Context, e *hostileEnv) error
	again func(ctx context.Context, e *hostileEnv, first error) error
	// noBody marks a call whose successful answer has no body to read (RFC 7009 revocation).
	noBody bool
	// accepts says which changed members of a good answer the call may accept (member name,
	// memberVariant name or echoVariant), because they are optional, unread or still valid.
	accepts func(member, variant string) bool
	// recoveryWait is how long after a failure the package may refuse to ask again (the JWKS
	// retry delay).
	recoveryWait time.Duration
}

func hostileStartCIBA(ctx context.Context, e *hostileEnv) error {
	var err error
	e.ciba, err = e.c.MakeCIBARequest(ctx, aliceRequest())
	return err
}

func hostileStartPinged(ctx context.Context, e *hostileEnv) error {
	e.idp.SetCIBANotificationEndpoint(testClientID, notifyURL)
	if err := hostileStartCIBA(ctx, e); err != nil {
		return err
	}
	// The user decided before the wait starts: the wait polls at once.
	status, err := e.idp.Ping(ctx, onesoidctest.HandlerClient(e.c.CIBANotificationHandler()), e.ciba.AuthReqID)
	if err == nil && status != http.StatusNoContent {
		err = fmt.Errorf("ping answered %d", status)
	}
	return err
}

func hostileStartQR(ctx context.Context, e *hostileEnv) error {
	var err error
	e.qr, err = e.c.StartQRLogin(ctx)
	return err
}

// againLogin repeats a poll or wait of a login request: on the same request when the first
// error left it open, else (ErrLoginFinished, without a request) on a new one.
func againLogin(start func(context.Context, *hostileEnv) error, poll func(context.Context, *hostileEnv) error) func(context.Context, *hostileEnv, error) error {
	return func(ctx context.Context, e *hostileEnv, first error) error {
		err := poll(ctx, e)
		if !errors.Is(err, ErrLoginFinished) {
			return err
		}
		// A poll answered 200 has redeemed the request at the provider, also when the caller's
		// context ended while its body was read (the wait then returns ctx.Err()).
		cancelled := errors.Is(first, context.DeadlineExceeded) && endsRequest(err)
		if !endsRequest(first) && !cancelled {
			return fmt.Errorf("the request was ended by %v, which should leave it open: %w", first, err)
		}
		if err := start(ctx, e); err != nil {
			return fmt.Errorf("new request: %w", err)
		}
		return poll(ctx, e)
	}
}

func hostileCalls() []hostileCall {
	waitCIBA := func(ctx context.Context, e *hostileEnv) error {
		_, err := e.c.WaitForCIBA(ctx, e.ciba)
		return err
	}
	pollCIBA := func(ctx context.Context, e *hostileEnv) error {
		_, err := e.c.CheckCIBAStatus(ctx, e.ciba.AuthReqID)
		return err
	}
	waitQR := func(ctx context.Context, e *hostileEnv) error {
		_, err := e.c.WaitForQRLogin(ctx, e.qr)
		return err
	}
	pollQR := func(ctx context.Context, e *hostileEnv) error {
		_, err := e.c.CheckQRStatus(ctx, e.qr.ID())
		return err
	}
	calls := []hostileCall{
		{
			name: "discovery", path: "/oidc/.well-known/openid-configuration", noClient: true,
			// Every member but issuer, token_endpoint and jwks_uri is optional (OpenID Connect
			// Discovery 1.0 §3; a missing feature fails when it is used); discovery sends no
			// secret, so an echo is empty; subject_types_supported is not read;
			// ones_applications_uri is checked when Applications uses it.
			accepts: func(member, variant string) bool {
				switch member {
				case "issuer", "token_endpoint", "jwks_uri":
					return false
				case "subject_types_supported":
					return true
				case "ones_applications_uri":
					return absent(variant) || variant == echoVariant || variant == "escapes" || variant == longEscapes
				}
				return absent(variant) || variant == echoVariant
			},
			call: func(ctx context.Context, e *hostileEnv) error {
				c, err := e.newClient(ctx)
				if err == nil {
					e.c = c
				}
				return err
			},
		},
		{
			name: "jwks", path: "/oidc/jwks", recoveryWait: defaultJWKSCooldown + time.Second,
			prepare: func(ctx context.Context, e *hostileEnv) error {
				var err error
				e.token, err = e.idp.MintIDToken(testClientID, "alice", nil)
				return err
			},
			call: func(ctx context.Context, e *hostileEnv) error {
				_, err := e.c.VerifyIDToken(ctx, e.token)
				return err
			},
		},
		{
			name: "refresh keys", path: "/oidc/jwks",
			call: func(ctx context.Context, e *hostileEnv) error { return e.c.RefreshKeys(ctx) },
		},
		{
			name: "device token", path: "/oidc/token", accepts: tokenResponseAccepts,
			call: func(ctx context.Context, e *hostileEnv) error {
				_, err := e.c.RequestDeviceAccessToken(ctx)
				return err
			},
		},
		{
			name: "cached device token", path: "/oidc/token", accepts: tokenResponseAccepts,
			call: func(ctx context.Context, e *hostileEnv) error {
				_, err := e.c.DeviceAccessToken(ctx)
				return err
			},
		},
		{
			// DeviceHTTPClient gets the device token on its first request: net/http wraps the
			// error in a *url.Error.
			name: "device HTTP client", path: "/oidc/token", accepts: tokenResponseAccepts,
			call: func(ctx context.Context, e *hostileEnv) error {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://localhost/resource", nil)
				if err != nil {
					return err
				}
				resp, err := e.c.DeviceHTTPClient(e.hc).Do(req)
				if err != nil {
					return err
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("resource answered %d", resp.StatusCode)
				}
				return nil
			},
		},
		{
			name: "CIBA request", path: "/oidc/backchannel",
			// interval is optional, 0 meaning the default (CIBA Core §7.3); the auth_req_id is
			// the provider's to choose, sent back only to it and never shown, whatever it holds.
			accepts: func(member, variant string) bool {
				return (member == "interval" && (absent(variant) || variant == "zero")) ||
					(member == "auth_req_id" && variant == echoVariant) || (member == "expires_in" && variant == "two hours")
			},
			call: hostileStartCIBA,
		},
		{
			name: "CIBA poll", path: "/oidc/token", prepare: hostileStartCIBA, accepts: tokenResponseAccepts,
			call: pollCIBA, again: againLogin(hostileStartCIBA, pollCIBA),
		},
		{
			// The ID token of an approved poll needs the provider's keys: the login's tokens
			// are then revoked.
			name: "CIBA poll, keys for its ID token", path: "/oidc/jwks", prepare: hostileStartCIBA,
			recoveryWait: defaultJWKSCooldown + time.Second,
			call:         pollCIBA, again: againLogin(hostileStartCIBA, pollCIBA),
		},
		{
			name: "CIBA wait (poll mode)", path: "/oidc/token", wait: true, prepare: hostileStartCIBA, accepts: tokenResponseAccepts,
			call: waitCIBA, again: againLogin(hostileStartCIBA, waitCIBA),
		},
		{
			name: "CIBA wait (ping mode)", path: "/oidc/token", wait: true, opts: []Option{WithCIBAPing()}, accepts: tokenResponseAccepts,
			prepare: hostileStartPinged,
			call:    waitCIBA, again: againLogin(hostileStartPinged, waitCIBA),
		},
		{
			name: "RFC 8628 device authorization", path: "/oidc/device/auth", opts: []Option{WithDeviceAuthorizationQR()},
			// verification_uri_complete and interval are optional (RFC 8628 §3.2), an interval
			// of 0 is the default; the device_code is the provider's to choose (as the CIBA
			// auth_req_id).
			accepts: func(member, variant string) bool {
				switch member {
				case "device_code":
					return variant == echoVariant
				case "verification_uri_complete":
					return absent(variant)
				case "interval":
					return absent(variant) || variant == "zero"
				case "expires_in":
					return variant == "two hours"
				}
				return false
			},
			call: hostileStartQR,
		},
		{
			name: "RFC 8628 wait", path: "/oidc/token", wait: true, opts: []Option{WithDeviceAuthorizationQR()}, accepts: tokenResponseAccepts,
			prepare: hostileStartQR, call: waitQR, again: againLogin(hostileStartQR, waitQR),
		},
		{
			name: "ONES QR start", path: "/auth/qr",
			// A session may live up to 24 hours.
			accepts: func(member, variant string) bool { return member == "exp" && variant == "two hours" },
			call:    hostileStartQR,
		},
		{
			name: "ONES QR poll", path: "/auth/qr/", prepare: hostileStartQR, accepts: qrStatusAccepts,
			call: pollQR, again: againLogin(hostileStartQR, pollQR),
		},
		{
			name: "ONES QR wait", path: "/auth/qr/", wait: true, prepare: hostileStartQR, accepts: qrStatusAccepts,
			call: waitQR, again: againLogin(hostileStartQR, waitQR),
		},
		{
			name: "applications", path: "/api/applications",
			call: func(ctx context.Context, e *hostileEnv) error {
				_, err := e.c.Applications(ctx)
				return err
			},
		},
		{
			name: "introspection", path: "/oidc/token/introspection",
			// IntrospectToken returns the answer as data (RFC 7662 §2.2: every member but active
			// is optional, an absent active is false); dates are checked for their range only.
			accepts: func(member, variant string) bool {
				switch {
				case absent(variant), variant == "escapes", variant == longEscapes, variant == echoVariant:
					return true
				case member == "exp" || member == "iat" || member == "nbf":
					return variant == "zero" || variant == "fraction" || variant == "two hours" || variant == "a week"
				}
				return false
			},
			prepare: func(ctx context.Context, e *hostileEnv) error {
				e.token = e.idp.MintOpaqueToken(testClientID, "alice", "openid profile")
				return nil
			},
			call: func(ctx context.Context, e *hostileEnv) error {
				_, err := e.c.IntrospectToken(ctx, e.token, "access_token")
				return err
			},
		},
		{
			name: "opaque token validation", path: "/oidc/token/introspection",
			// A refused token is remembered for introspectionNegativeTTL.
			recoveryWait: introspectionNegativeTTL + time.Second,
			// sub, client_id and scope are the provider's data (as in a JWT); iss, exp and iat
			// are optional (RFC 7662 §2.2), an iat of 0 is none.
			accepts: func(member, variant string) bool {
				switch member {
				case "sub", "client_id", "scope": // a sub over 255 characters is refused
					return absent(variant) || variant == "escapes" || variant == echoVariant || (variant == longEscapes && member != "sub")
				case "iss", "exp", "iat":
					return absent(variant) || (member == "iat" && variant == "zero")
				}
				return false
			},
			prepare: func(ctx context.Context, e *hostileEnv) error {
				e.token = e.idp.MintOpaqueToken(testClientID, "alice", "openid profile")
				return nil
			},
			call: func(ctx context.Context, e *hostileEnv) error {
				_, err := e.c.ValidateToken(ctx, e.token)
				return err
			},
		},
		{
			name: "refresh", path: "/oidc/token",
			// A refresh answer need not hold an ID token (OpenID Connect Core §12.2).
			accepts: func(member, variant string) bool {
				return tokenResponseAccepts(member, variant) || (member == "id_token" && absent(variant))
			},
			prepare: func(ctx context.Context, e *hostileEnv) error {
				e.refresh = &oauth2.Token{RefreshToken: e.idp.MintRefreshToken(testClientID, "alice", "openid profile")}
				return nil
			},
			call: func(ctx context.Context, e *hostileEnv) error {
				_, err := e.c.RefreshToken(ctx, e.refresh)
				return err
			},
		},
		{
			name: "revocation", path: "/oidc/token/revocation", noBody: true,
			prepare: func(ctx context.Context, e *hostileEnv) error {
				e.token = e.idp.MintOpaqueToken(testClientID, "alice", "openid")
				return nil
			},
			call: func(ctx context.Context, e *hostileEnv) error {
				return e.c.RevokeToken(ctx, e.token, "access_token")
			},
		},
		{
			name: "remote sign", path: "/sign", noClient: true,
			prepare: func(ctx context.Context, e *hostileEnv) error {
				var err error
				e.signer, err = NewRemoteSigner(testDeviceID, "ES256", WithSignerURL("http://localhost/sign"),
					WithHTTPClient(e.hc), WithLogger(e.logger), WithSignerPublicKey(e.key.Public()))
				return err
			},
			call: func(ctx context.Context, e *hostileEnv) error {
				_, err := e.signer.SignJWS(ctx, []byte("eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJ4In0"))
				return err
			},
		},
	}
	for i := range calls {
		if calls[i].again == nil {
			call := calls[i].call
			calls[i].again = func(ctx context.Context, e *hostileEnv, _ error) error { return call(ctx, e) }
		}
	}
	return calls
}

// hostileClass is one kind of bad answer.
type hostileClass struct {
	name string
	// answer writes the bad answer; good returns what the mock IdP would have answered.
	answer func(w http.ResponseWriter, r *http.Request, good func() *httptest.ResponseRecorder)
	// accept says whether call may accept the answer, and why; nil: it must be refused.
	accept func(call *hostileCall) bool
	// hang marks answers that never complete: the call must end with context.DeadlineExceeded.
	hang bool
	// deadline, when set, is the call's context deadline instead of the default.
	deadline time.Duration
	// waitOnly limits the class to waits; check asserts more after the call.
	waitOnly bool
	check    func(t *testing.T, e *hostileEnv, call *hostileCall, err error)
}

// writeAnswer writes status, content type and body; ctype "-" sends no Content-Type at all.
func writeAnswer(w http.ResponseWriter, status int, ctype string, body []byte) {
	if ctype == "-" {
		w.Header()["Content-Type"] = nil // no sniffing either
	} else if ctype != "" {
		w.Header().Set("Content-Type", ctype)
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// replay writes the good answer with body instead of its own.
func replay(w http.ResponseWriter, rec *httptest.ResponseRecorder, body []byte) {
	for k, v := range rec.Header() {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(body)
}

// fixed answers status, content type and body whatever the request.
func fixed(status int, ctype, body string) func(http.ResponseWriter, *http.Request, func() *httptest.ResponseRecorder) {
	return func(w http.ResponseWriter, _ *http.Request, _ func() *httptest.ResponseRecorder) {
		writeAnswer(w, status, ctype, []byte(body))
	}
}

// mutate answers the good answer with its body changed by f.
func mutate(f func(body []byte) []byte) func(http.ResponseWriter, *http.Request, func() *httptest.ResponseRecorder) {
	return func(w http.ResponseWriter, _ *http.Request, good func() *httptest.ResponseRecorder) {
		rec := good()
		replay(w, rec, f(rec.Body.Bytes()))
	}
}

// requestSecrets returns the credentials r carries (its Authorization header and form), the
// client assertion last: an echo cut short then still shows the others.
func requestSecrets(r *http.Request) []string {
	var out []string
	if _, cred, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok {
		out = append(out, cred)
	}
	if err := r.ParseForm(); err == nil {
		for _, k := range hostileSecretParams {
			if k != "client_assertion" {
				out = append(out, r.PostForm[k]...)
			}
		}
		out = append(out, r.PostForm["client_assertion"]...)
	}
	return out
}

// splitSecrets returns the secrets of r with a control character in the middle of each.
func splitSecrets(r *http.Request) string {
	var parts []string
	for _, s := range requestSecrets(r) {
		parts = append(parts, s[:len(s)/2]+"\x01"+s[len(s)/2:])
	}
	return strings.Join(parts, " ")
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// hijack takes the connection of w, writes raw to it and closes it.
func hijack(w http.ResponseWriter, raw string) {
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	_, _ = buf.WriteString(raw)
	_ = buf.Flush()
	_ = conn.Close()
}

// hostileEscapes is provider text with control characters and ANSI escapes.
const hostileEscapes = "\x1b[31mred\x1b[0m\x1b]0;title\x07\r\nforged: line\x00\x7f\u202e"

func anyCall(*hostileCall) bool      { return true }
func noBodyCall(c *hostileCall) bool { return c.noBody }

// hostileClasses are the answers that replace or change the whole answer; memberClasses (below)
// change one member of a JSON answer.
func hostileClasses() []*hostileClass {
	hugeJSON := `{"pad":"` + strings.Repeat("A", 2<<20) + `"}`
	hugeError := `{"error":"invalid_request","error_description":"` + strings.Repeat("B", 1<<20) + `"}`
	bomb := gzipped([]byte(hugeJSON))
	return []*hostileClass{
		{name: "HTML with 200", answer: fixed(200, "text/html; charset=utf-8", "<!doctype html><html><body>Sign in</body></html>"), accept: noBodyCall},
		{name: "HTML with 500", answer: fixed(500, "text/html", "<html><body>Internal Server Error</body></html>")},
		{name: "HTML with 502 and no Content-Type", answer: fixed(502, "-", "<html>Bad Gateway</html>")},
		{name: "empty body 200", answer: fixed(200, "application/json", ""), accept: noBodyCall},
		{name: "empty body 500", answer: fixed(500, "application/json", "")},
		{name: "204 No Content", answer: fixed(204, "", ""), accept: noBodyCall},
		{name: "JSON null", answer: fixed(200, "application/json", "null"), accept: noBodyCall},
		{name: "JSON array", answer: fixed(200, "application/json", "[]"), accept: func(c *hostileCall) bool {
			return c.noBody || c.name == "applications" // the ONES application list is an array; empty is a list
		}},
		{name: "JSON string", answer: fixed(200, "application/json", `"ok"`), accept: noBodyCall},
		{name: "JSON number", answer: fixed(200, "application/json", `1e400`), accept: noBodyCall},
		{name: "body cut mid-JSON", answer: mutate(func(b []byte) []byte { return b[:len(b)/2] }), accept: noBodyCall},
		{name: "trailing garbage", answer: mutate(func(b []byte) []byte { return append(b, "garbage"...) }), accept: noBodyCall},
		{name: "a second JSON value", answer: mutate(func(b []byte) []byte { return append(b, ` {"access_token":"x"}`...) }), accept: noBodyCall},
		{name: "trailing NUL", answer: mutate(func(b []byte) []byte { return append(b, 0) }), accept: noBodyCall},
		{name: "UTF-8 BOM", answer: mutate(func(b []byte) []byte { return append([]byte("\ufeff"), b...) }), accept: noBodyCall},
		{name: "nested 20000 deep", answer: fixed(200, "application/json", strings.Repeat("[", 20000)+strings.Repeat("]", 20000)), accept: noBodyCall},
		{name: "huge body", answer: fixed(200, "application/json", hugeJSON), accept: noBodyCall},
		// net/http bounds response headers (Transport.MaxResponseHeaderBytes, 10 MB by default).
		{name: "huge header", accept: anyCall, answer: func(w http.ResponseWriter, r *http.Request, good func() *httptest.ResponseRecorder) {
			w.Header().Set("X-Pad", strings.Repeat("p", 2<<20))
			rec := good()
			replay(w, rec, rec.Body.Bytes())
		}},
		{name: "huge error body", answer: fixed(400, "application/json", hugeError)},
		{name: "gzip bomb", answer: func(w http.ResponseWriter, _ *http.Request, _ func() *httptest.ResponseRecorder) {
			w.Header().Set("Content-Encoding", "gzip")
			writeAnswer(w, 200, "application/json", bomb)
		}, accept: noBodyCall},
		{name: "gzip header on a plain body", answer: func(w http.ResponseWriter, r *http.Request, good func() *httptest.ResponseRecorder) {
			w.Header().Set("Content-Encoding", "gzip")
			rec := good()
			replay(w, rec, rec.Body.Bytes())
		}, accept: noBodyCall},
		{name: "gzip cut short", answer: func(w http.ResponseWriter, r *http.Request, good func() *httptest.ResponseRecorder) {
			w.Header().Set("Content-Encoding", "gzip")
			rec := good()
			z := gzipped(rec.Body.Bytes())
			replay(w, rec, z[:len(z)-8])
		}, accept: noBodyCall},
		{name: "gzip done right", answer: func(w http.ResponseWriter, r *http.Request, good func() *httptest.ResponseRecorder) {
			w.Header().Set("Content-Encoding", "gzip")
			rec := good()
			replay(w, rec, gzipped(rec.Body.Bytes()))
		}, accept: anyCall}, // positive control: decompressed by net/http, within the cap
		{name: "gzip of an error with escapes", answer: func(w http.ResponseWriter, r *http.Request, _ func() *httptest.ResponseRecorder) {
			w.Header().Set("Content-Encoding", "gzip")
			b, _ := json.Marshal(map[string]string{"error": "invalid_grant", "error_description": hostileEscapes})
			writeAnswer(w, 400, "application/json", gzipped(b))
		}},
		{name: "text/plain Content-Type", answer: func(w http.ResponseWriter, r *http.Request, good func() *httptest.ResponseRecorder) {
			rec := good()
			rec.Header().Set("Content-Type", "text/plain; charset=utf-8")
			replay(w, rec, rec.Body.Bytes())
		}, accept: noBodyCall},
		{name: "no Content-Type", answer: func(w http.ResponseWriter, r *http.Request, good func() *httptest.ResponseRecorder) {
			rec := good()
			rec.Header()["Content-Type"] = nil
			w.Header()["Content-Type"] = nil
			replay(w, rec, rec.Body.Bytes())
		}, accept: noBodyCall},
		{name: "application/jsonx Content-Type", answer: func(w http.ResponseWriter, r *http.Request, good func() *httptest.ResponseRecorder) {
			rec := good()
			rec.Header().Set("Content-Type", "application/jsonx")
			replay(w, rec, rec.Body.Bytes())
		}, accept: noBodyCall},
		{name: "Content-Type echoing secrets", answer: func(w http.ResponseWriter, r *http.Request, _ func() *httptest.ResponseRecorder) {
			w.Header().Set("Content-Type", "text/html; x="+strings.Join(requestSecrets(r), ";"))
			writeAnswer(w, 500, "", []byte("<html>down</html>"))
		}},
		{name: "Content-Type echoing secrets and escapes", answer: func(w http.ResponseWriter, r *http.Request, _ func() *httptest.ResponseRecorder) {
			w.Header().Set("Content-Type", "text/html; x="+strings.Join(requestSecrets(r), ";")+"; e=\x1b[2J")
			writeAnswer(w, 500, "", []byte("<html>down</html>"))
		}},
		{name: "Content-Type with a bidi override on a bad body", answer: fixed(200, "application/json; x=\u202e\u2066", `{"keys":"x","access_token":7}`), accept: noBodyCall},
		{name: "token_type other than Bearer", answer: mutate(func(b []byte) []byte { return setMember(b, "token_type", `"DPoP"`) }),
			accept: func(c *hostileCall) bool { return c.noBody || !tokenResponseCall(c) }},
		{name: "RFC 6749 error with escapes", answer: fixed(400, "application/json",
			string(mustJSON(map[string]string{"error": "invalid_request", "error_description": hostileEscapes, "error_uri": "https://idp.example/\x1b[1mdoc"})))},
		{name: "RFC 6749 error with escapes in the code", answer: fixed(400, "application/json",
			string(mustJSON(map[string]string{"error": "\x1b[2Jinvalid_grant\r\n", "error_description": "x"})))},
		{name: "RFC 6749 error of 1 MB", answer: fixed(400, "application/json", hugeError)},
		{name: "RFC 6749 error just under the cap", answer: fixed(400, "application/json",
			string(mustJSON(map[string]string{"error": "invalid_request", "error_description": strings.Repeat("\x1b[7m", maxErrorBody/12)})))},
		{name: "RFC 6749 error echoing our secrets", answer: func(w http.ResponseWriter, r *http.Request, _ func() *httptest.ResponseRecorder) {
			s := strings.Join(requestSecrets(r), " and ")
			writeAnswer(w, 400, "application/json", mustJSON(map[string]string{"error": "invalid_grant",
				"error_description": "refused " + s, "error_uri": "https://idp.example/?q=" + url.QueryEscape(s)}))
		}},
		{name: "RFC 6749 error echoing our secrets split by control characters", answer: func(w http.ResponseWriter, r *http.Request, _ func() *httptest.ResponseRecorder) {
			writeAnswer(w, 400, "application/json", mustJSON(map[string]string{"error": "invalid_grant", "error_description": splitSecrets(r)}))
		}},
		{name: "RFC 6749 error code echoing our secrets", answer: func(w http.ResponseWriter, r *http.Request, _ func() *httptest.ResponseRecorder) {
			writeAnswer(w, 400, "application/json", mustJSON(map[string]string{"error": strings.Join(requestSecrets(r), " ")}))
		}},
		{name: "RFC 6749 error with a number for error", answer: fixed(400, "application/json", `{"error":42,"error_description":"x"}`)},
		{name: "401 with WWW-Authenticate", answer: func(w http.ResponseWriter, r *http.Request, _ func() *httptest.ResponseRecorder) {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="`+strings.Join(requestSecrets(r), " ")+"\x1b[31m\"")
			writeAnswer(w, 401, "application/json", []byte(`{"error":"invalid_client","error_description":"client authentication failed"}`))
		}},
		{name: "401 with WWW-Authenticate and no body", answer: func(w http.ResponseWriter, r *http.Request, _ func() *httptest.ResponseRecorder) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ones"`)
			writeAnswer(w, 401, "-", nil)
		}},
		{name: "503 with an error and Retry-After", answer: func(w http.ResponseWriter, r *http.Request, _ func() *httptest.ResponseRecorder) {
			w.Header().Set("Retry-After", "3")
			writeAnswer(w, 503, "application/json", []byte(`{"error":"temporarily_unavailable","error_description":"\u001b[5mbusy"}`))
		}},
		{name: "redirect to another host", answer: func(w http.ResponseWriter, r *http.Request, _ func() *httptest.ResponseRecorder) {
			w.Header().Set("Location", "http://evil.example/steal?s="+url.QueryEscape(strings.Join(requestSecrets(r), ","))+"#"+strings.Join(requestSecrets(r), ""))
			writeAnswer(w, http.StatusFound, "", nil)
		}},
		{name: "308 to another host", answer: func(w http.ResponseWriter, r *http.Request, _ func() *httptest.ResponseRecorder) {
			w.Header().Set("Location", "http://evil.example"+r.URL.Path)
			writeAnswer(w, http.StatusPermanentRedirect, "", nil)
		}},
		{name: "307 to another host", answer: func(w http.ResponseWriter, r *http.Request, _ func() *httptest.ResponseRecorder) {
			w.Header().Set("Location", "http://evil.example"+r.URL.Path)
			writeAnswer(w, http.StatusTemporaryRedirect, "", nil)
		}},
		{name: "redirect to a path with secrets", answer: func(w http.ResponseWriter, r *http.Request, _ func() *httptest.ResponseRecorder) {
			w.Header().Set("Location", "/elsewhere/"+url.PathEscape(strings.Join(requestSecrets(r), "/"))+"\x1b[31m")
			writeAnswer(w, http.StatusMovedPermanently, "", nil)
		}},
		{name: "redirect loop", answer: func(w http.ResponseWriter, r *http.Request, _ func() *httptest.ResponseRecorder) {
			w.Header().Set("Location", r.URL.String())
			writeAnswer(w, http.StatusFound, "", nil)
		}},
		{name: "connection reset before the answer", answer: func(w http.ResponseWriter, _ *http.Request, _ func() *httptest.ResponseRecorder) {
			hijack(w, "")
		}},
		{name: "connection cut mid-body", answer: func(w http.ResponseWriter, _ *http.Request, _ func() *httptest.ResponseRecorder) {
			hijack(w, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"access_token\":\"abc")
		}},
		{name: "garbage instead of HTTP", answer: func(w http.ResponseWriter, _ *http.Request, _ func() *httptest.ResponseRecorder) {
			hijack(w, "\x1b[31mSSH-2.0-OpenSSH\r\n\r\n")
		}},
		{name: "slow-drip body", hang: true, answer: dripAnswer},
		{name: "never answers", hang: true, answer: neverAnswer},
		// The caller's deadline comes before the request timeout (10 s): the call ends at it, also
		// when it waits for a fetch shared with other callers.
		{name: "never answers, 3 s context", hang: true, deadline: 3 * time.Second, answer: neverAnswer},
		{name: "slow-drip body, 3 s context", hang: true, deadline: 3 * time.Second, answer: dripAnswer},
		{name: "slow_down storm", waitOnly: true, answer: fixed(400, "application/json", `{"error":"slow_down"}`), check: checkSlowDownStorm},
	}
}

// dripAnswer sends 200 with JSON headers, then a byte a second until the client gives up.
func dripAnswer(w http.ResponseWriter, r *http.Request, _ func() *httptest.ResponseRecorder) {
	writeAnswer(w, 200, "application/json", []byte("{"))
	for {
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			return
		case <-time.After(time.Second):
		}
		_, _ = w.Write([]byte(" "))
	}
}

// neverAnswer answers nothing until the client gives up.
func neverAnswer(_ http.ResponseWriter, r *http.Request, _ func() *httptest.ResponseRecorder) {
	<-r.Context().Done()
}

// tokenResponseCall reports the calls whose answer is an RFC 6749 §5.1 token response.
func tokenResponseCall(c *hostileCall) bool {
	return c.path == "/oidc/token"
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// setMember returns the JSON object body with member name set to the raw value (added when
// absent); a body that is not an object is returned as it is.
func setMember(body []byte, name, raw string) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil || m == nil {
		return body
	}
	m[name] = json.RawMessage(raw)
	out, err := json.Marshal(m)
	if err != nil {
		// raw is not valid JSON (a deliberately broken value): splice it in by hand.
		delete(m, name)
		if len(m) == 0 {
			return []byte(`{"` + name + `":` + raw + `}`)
		}
		rest, _ := json.Marshal(m)
		return append([]byte(`{"`+name+`":`+raw+`,`), rest[1:]...)
	}
	return out
}

// checkSlowDownStorm: a provider that answers every poll with slow_down gets polls ever further
// apart, 5 s more each time (CIBA Core §11, RFC 8628 §3.5), and the wait still ends by its
// deadline.
func checkSlowDownStorm(t *testing.T, e *hostileEnv, call *hostileCall, err error) {
	e.srv.mu.Lock()
	hits := slices.Clone(e.srv.hits)
	e.srv.mu.Unlock()
	if len(hits) < 2 {
		t.Errorf("%d polls during the storm, want several", len(hits))
		return
	}
	for i := 2; i < len(hits); i++ {
		if prev, gap := hits[i-1].Sub(hits[i-2]), hits[i].Sub(hits[i-1]); gap < prev+slowDownStep {
			t.Errorf("poll gaps %v then %v: slow_down must add 5 s every time", prev, gap)
		}
	}
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrLoginExpired) {
		t.Errorf("storm ended with %v, want the deadline or the expiry", err)
	}
}

// memberVariant changes one member of a JSON object answer.
type memberVariant struct {
	name string
	raw  func(value json.RawMessage) string // the member's new raw value
	// numeric applies to number members only, text to string members only.
	numeric, text bool
}

var memberVariants = []memberVariant{
	{name: "wrong type", raw: func(v json.RawMessage) string {
		switch {
		case len(v) == 0:
			return "1"
		case v[0] == '"':
			return "12345"
		case v[0] == '[' || v[0] == '{':
			return `"` + strings.Repeat("x", 8) + `"`
		case string(v) == "null":
			return "1"
		}
		return `"` + string(v) + `"`
	}},
	{name: "null", raw: func(json.RawMessage) string { return "null" }},
	{name: "array", raw: func(v json.RawMessage) string {
		if len(v) > 0 && v[0] == '[' {
			return `{"0":` + string(v) + `}`
		}
		return "[" + string(v) + "]"
	}},
	{name: "object", raw: func(v json.RawMessage) string { return `{"value":` + string(v) + `}` }},
	{name: "nested 20000 deep", raw: func(json.RawMessage) string { return strings.Repeat("[", 20000) + strings.Repeat("]", 20000) }},
	{name: "missing"},
	{name: "negative", numeric: true, raw: func(json.RawMessage) string { return "-1" }},
	{name: "zero", numeric: true, raw: func(json.RawMessage) string { return "0" }},
	{name: "fraction", numeric: true, raw: func(json.RawMessage) string { return "0.5" }},
	{name: "two hours", numeric: true, raw: func(json.RawMessage) string { return "7200" }},
	{name: "a week", numeric: true, raw: func(json.RawMessage) string { return "604800" }},
	{name: "1e308", numeric: true, raw: func(json.RawMessage) string { return "1e308" }},
	{name: "over int64", numeric: true, raw: func(json.RawMessage) string { return "9223372036854775808" }},
	{name: "1e400", numeric: true, raw: func(json.RawMessage) string { return "1e400" }},
	{name: "20000 digits", numeric: true, raw: func(json.RawMessage) string { return "1" + strings.Repeat("0", 20000) }},
	{name: "escapes", text: true, raw: func(json.RawMessage) string { return string(mustJSON(hostileEscapes)) }},
	{name: longEscapes, text: true, raw: func(json.RawMessage) string {
		return string(mustJSON("https://idp.example/" + strings.Repeat("a", 10<<10) + "\x1b[0m"))
	}},
}

// memberAccept returns the accept rule of a member class of call.
func memberAccept(call *hostileCall, member, variant string) func(*hostileCall) bool {
	if call.accepts == nil || !call.accepts(member, variant) {
		return nil
	}
	return anyCall
}

// absent reports the variants that leave an optional member out: null is absent (RFC 8259 gives
// it no other meaning in these answers).
func absent(variant string) bool { return variant == "null" || variant == "missing" }

// tokenResponseAccepts: RFC 6749 §5.1 makes expires_in, refresh_token and scope optional (a
// week is a valid lifetime); the values of access_token, refresh_token and scope are the
// provider's data, our credentials included (a provider that sends one back gains nothing).
func tokenResponseAccepts(member, variant string) bool {
	switch member {
	case "expires_in":
		return absent(variant) || variant == "two hours" || variant == "a week"
	case "refresh_token", "scope":
		return absent(variant) || variant == echoVariant
	case "access_token":
		return variant == echoVariant
	}
	return false
}

// qrStatusAccepts: an ONES status answer need not name the device, and issue_time is not read.
func qrStatusAccepts(member, variant string) bool {
	return member == "issue_time" || (member == "deviceId" && absent(variant))
}

// longEscapes is the variant of a long string with an escape.
const longEscapes = "10 KB with an escape"

// echoVariant puts the credentials of the request into a string member.
const echoVariant = "echo of our secrets"

// memberClasses returns, for the good answer body of a call, a class per member and variant;
// call.accepts says which of them the call may accept.
func memberClasses(call *hostileCall, body []byte) []*hostileClass {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil || m == nil {
		return nil
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []*hostileClass
	for _, name := range names {
		value := m[name]
		isNum := len(value) > 0 && (value[0] == '-' || value[0] >= '0' && value[0] <= '9')
		isText := len(value) > 0 && value[0] == '"'
		for _, v := range memberVariants {
			if (v.numeric && !isNum) || (v.text && !isText) {
				continue
			}
			out = append(out, &hostileClass{name: name + " " + v.name, accept: memberAccept(call, name, v.name), answer: mutate(func(b []byte) []byte {
				var cur map[string]json.RawMessage
				if json.Unmarshal(b, &cur) != nil || cur == nil {
					return b
				}
				if v.raw == nil {
					delete(cur, name)
					nb, _ := json.Marshal(cur)
					return nb
				}
				return setMember(b, name, v.raw(cur[name]))
			})})
		}
		if isText {
			out = append(out, &hostileClass{name: name + " " + echoVariant, accept: memberAccept(call, name, echoVariant), answer: func(w http.ResponseWriter, r *http.Request, good func() *httptest.ResponseRecorder) {
				rec := good()
				replay(w, rec, setMember(rec.Body.Bytes(), name, string(mustJSON(strings.Join(requestSecrets(r), " ")))))
			}})
		}
	}
	return out
}

// TestHostileProviderMatrix runs every call against every bad answer; see the comment above.
func TestHostileProviderMatrix(t *testing.T) { // not parallel: goleak
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	key := testKey(t, "ES256")
	cells, accepted := 0, 0
	for _, call := range hostileCalls() {
		classes := hostileClasses()
		if body := goodAnswer(t, key, &call); body != nil {
			classes = append(classes, memberClasses(&call, body)...)
		}
		for _, class := range classes {
			if class.waitOnly && !call.wait {
				continue
			}
			cells++
			t.Run(call.name+"/"+class.name, func(t *testing.T) {
				if runHostileCell(t, key, &call, class) {
					accepted++
				}
			})
		}
	}
	t.Logf("%d cells, %d of them answers a call may accept", cells, accepted)
}

// goodAnswer returns the body the call's endpoint answers when all is well, for the member
// variants.
func goodAnswer(t *testing.T, key *DeviceKey, call *hostileCall) []byte {
	var body []byte
	capture := &hostileClass{name: "capture", answer: func(w http.ResponseWriter, r *http.Request, good func() *httptest.ResponseRecorder) {
		rec := good()
		body = rec.Body.Bytes()
		replay(w, rec, body)
	}}
	synctest.Test(t, func(t *testing.T) {
		e, stop := newHostileEnv(t, key, call, capture)
		defer stop()
		if err := prepareCall(t, e, call); err != nil {
			t.Fatalf("prepare: %v", err)
		}
		e.srv.arm(true)
		ctx, cancel := context.WithTimeout(t.Context(), hostileWaitDeadline)
		defer cancel()
		if err := call.call(ctx, e); err != nil {
			t.Fatalf("%s with good answers: %v", call.name, err)
		}
	})
	return body
}

// newHostileEnv starts the provider behind an in-memory network with class on call's path.
func newHostileEnv(t *testing.T, key *DeviceKey, call *hostileCall, class *hostileClass) (*hostileEnv, func()) {
	idp := onesoidctest.NewInMemory(onesoidctest.WithOpaqueAccessTokens())
	idp.RegisterClient(testClientID, key.Public(), key.Algorithm())
	idp.SetDeviceID(testClientID, testDeviceID)
	mux := http.NewServeMux()
	mux.Handle("/sign", fakeSigner{key})
	mux.HandleFunc("/resource", func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	mux.Handle("/", idp.Handler())
	hs := &hostileServer{next: mux, target: call.path, class: class}
	pn := newPipeNet()
	srv := &http.Server{Handler: hs, ErrorLog: log.New(io.Discard, "", 0)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(pn)
	}()
	tr := &http.Transport{DialContext: pn.DialContext, MaxIdleConnsPerHost: 4}
	logger, logs := logBuffer()
	e := &hostileEnv{t: t, idp: idp, srv: hs, hc: &http.Client{Transport: tr}, logs: logs, logger: logger, key: key, opts: call.opts}
	return e, func() {
		tr.CloseIdleConnections()
		_ = srv.Close()
		<-done
	}
}

func prepareCall(t *testing.T, e *hostileEnv, call *hostileCall) error {
	ctx := t.Context()
	if !call.noClient {
		c, err := e.newClient(ctx)
		if err != nil {
			return err
		}
		e.c = c
	}
	if call.prepare != nil {
		return call.prepare(ctx, e)
	}
	return nil
}

// runHostileCell runs one cell of the matrix and reports whether the call accepted the answer.
func runHostileCell(t *testing.T, key *DeviceKey, call *hostileCall, class *hostileClass) (accepted bool) {
	synctest.Test(t, func(t *testing.T) {
		before := goleak.IgnoreCurrent()
		e, stop := newHostileEnv(t, key, call, class)
		if err := prepareCall(t, e, call); err != nil {
			stop()
			t.Fatalf("prepare: %v", err)
		}
		deadline := hostileCallDeadline
		if call.wait {
			deadline = hostileWaitDeadline
		}
		if class.deadline > 0 {
			deadline = class.deadline
		}
		ctx, cancel := context.WithTimeout(t.Context(), deadline)
		e.srv.arm(true)
		start := time.Now()
		panicked, err := callSafely(ctx, e, call.call)
		elapsed := time.Since(start)
		e.srv.arm(false)
		cancel()
		if panicked != "" {
			t.Fatalf("panic: %s", panicked)
		}
		if elapsed > deadline {
			t.Errorf("returned after %v, past its %v deadline", elapsed, deadline)
		}
		checkHostileOutcome(t, e, call, class, err)
		accepted = err == nil
		if class.check != nil {
			class.check(t, e, call, err)
		}
		e.srv.mu.Lock()
		foreign := slices.Clone(e.srv.foreign)
		e.srv.mu.Unlock()
		if len(foreign) > 0 {
			t.Errorf("requests reached another host: %q", foreign)
		}

		// The provider answers well again: the same call works. A fetch shared by concurrent
		// callers (device token, JWKS, application list, introspection) that the call gave up
		// on still runs until the request timeout, and a call meanwhile joins it.
		time.Sleep(call.recoveryWait)
		if class.deadline > 0 {
			time.Sleep(defaultRequestTimeout)
		}
		ctx, cancel = context.WithTimeout(t.Context(), hostileWaitDeadline)
		panicked, again := callSafely(ctx, e, func(ctx context.Context, e *hostileEnv) error { return call.again(ctx, e, err) })
		cancel()
		if panicked != "" {
			t.Fatalf("panic on the second call: %s", panicked)
		}
		if again != nil {
			t.Errorf("second call with good answers failed: %v (first: %v)", again, err)
		}

		// Nothing the call started outlives the request timeout.
		stop()
		time.Sleep(defaultRequestTimeout + revokeTimeout + time.Second)
		if leak := goleak.Find(before); leak != nil {
			t.Errorf("goroutines outlive the call: %v", leak)
		}
	})
	return accepted
}

func callSafely(ctx context.Context, e *hostileEnv, f func(context.Context, *hostileEnv) error) (panicked string, err error) {
	defer func() {
		if p := recover(); p != nil {
			panicked = fmt.Sprintf("%v\n%s", p, debug.Stack())
		}
	}()
	return "", f(ctx, e)
}

// holdsSecret reports whether text holds secret, percent-encoded or not, or a telling part of
// it: the signature of a JWS (its header and claims are no credential: the assertion's header
// is the same for every device of a key type), else its first 24 characters.
func holdsSecret(text, secret string) bool {
	if strings.Contains(text, secret) || strings.Contains(text, url.QueryEscape(secret)) {
		return true
	}
	part := secret
	if i := strings.LastIndexByte(secret, '.'); i >= 0 {
		part = secret[i+1:]
	}
	if len(part) > 24 {
		part = part[:24]
	}
	return len(part) >= 16 && strings.Contains(text, part)
}

// checkHostileOutcome asserts what every refusal must be, or that the answer may be accepted.
func checkHostileOutcome(t *testing.T, e *hostileEnv, call *hostileCall, class *hostileClass, err error) {
	t.Helper()
	logs := e.logs.String()
	secrets := e.srv.secretList()
	for _, s := range secrets {
		if holdsSecret(logs, s) {
			t.Errorf("the logs hold a secret the client sent (%d bytes)", len(s))
		}
	}
	if strings.ContainsRune(logs, 0x1b) {
		t.Errorf("the logs hold an escape character")
	}
	if err == nil {
		if class.accept == nil || !class.accept(call) {
			t.Errorf("accepted")
		}
		return
	}
	msg, inner := err.Error(), err
	if ue, ok := err.(*url.Error); ok {
		// net/http's wrapping of what a RoundTripper (DeviceHTTPClient) returned
		msg, inner = ue.Err.Error(), ue.Err
	}
	var (
		he *HTTPError
		oe *OAuthError
		ce *ConfigError
		ve *ValidationError
		le *LoginExpiredError
		te *LoginTokenError
		ie *LoginIncompleteError
		qe *QRStatusError
		re *RequestError
	)
	typed := errors.As(err, &he) || errors.As(err, &oe) || errors.As(err, &ce) || errors.As(err, &ve) ||
		errors.As(err, &le) || errors.As(err, &te) || errors.As(err, &ie) || errors.As(err, &qe) || errors.As(err, &re)
	// A context that ends while nothing is in flight gives ctx.Err() as it is (WaitForCIBA,
	// WaitForQRLogin, DeviceAccessToken say so); a wait whose next poll would come after the
	// deadline says so with an error that matches context.DeadlineExceeded.
	bareCtx := inner == context.DeadlineExceeded || inner == context.Canceled
	typed = typed || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
	if !typed {
		t.Errorf("untyped error %T: %v", err, err)
	}
	if !bareCtx && !strings.HasPrefix(msg, "onesoidc: ") {
		t.Errorf("error does not start with onesoidc: %q", msg)
	}
	if errors.As(err, &he) && (he.Op == "" || he.URL == "") {
		t.Errorf("*HTTPError does not name the exchange and the endpoint: %+v", he)
	}
	if errors.As(err, &oe) && oe.Op == "" {
		t.Errorf("*OAuthError does not name the exchange: %+v", oe)
	}
	if class.hang && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a hanging answer ended with %v, want context.DeadlineExceeded", err)
	}
	if len(msg) > maxHostileErrorText {
		t.Errorf("error text of %d bytes, want at most %d: %.300q…", len(msg), maxHostileErrorText, msg)
	}
	for i := 0; i < len(msg); i++ {
		if c := msg[i]; c < 0x20 || c == 0x7f {
			t.Errorf("error text holds control character %#x: %q", c, msg)
			break
		}
	}
	if strings.Contains(msg, "\u202e") {
		t.Errorf("error text holds a bidi override: %q", msg)
	}
	for _, s := range secrets {
		if holdsSecret(msg, s) {
			t.Errorf("error text holds a secret the client sent (%d bytes): %q", len(s), msg)
		}
	}
	if oe != nil {
		for _, s := range secrets {
			if strings.Contains(oe.Description, s) || strings.Contains(oe.URI, s) || strings.Contains(oe.Code, s) {
				t.Errorf("*OAuthError holds a secret the client sent")
			}
		}
	}
}
