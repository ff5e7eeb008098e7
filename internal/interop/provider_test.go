//go:build interop

package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ones-now/onesoidc"
)

// readyTimeout bounds the wait for the provider's READY line.
const readyTimeout = 30 * time.Second

// Config is the JSON config file of provider/server.js.
type Config struct {
	// Port to listen on (127.0.0.1); 0 picks a free port. Restart reuses the port it got.
	Port int `json:"port"`
	// Clients are registered statically.
	Clients []Client `json:"clients"`
	// ProviderJWKS are the provider's private signing keys; empty means newProviderKeys.
	ProviderJWKS jose.JSONWebKeySet `json:"providerJwks"`
	// Accounts are the end-users (sub = preferred_username = the id, role "user"); empty means
	// alice and bob. login_hint must name one.
	Accounts []string `json:"accounts"`
	// SlowDown turns on the emulated slow_down answer for CIBA polls that come sooner than the
	// interval after the previous poll of the same auth_req_id (oidc-provider never sends it).
	SlowDown bool `json:"slowDown"`
	// CIBAInterval, when positive, is added as "interval" to backchannel authentication responses
	// (an emulation; oidc-provider sends none) and is the base interval of SlowDown (default 5 s).
	CIBAInterval int `json:"cibaInterval,omitempty"`
	// PingCA is the PEM certificate the provider trusts for https ping delivery.
	PingCA string `json:"pingCA,omitempty"`
	// UserCode is the user_code accepted from clients with BackchannelUserCodeParameter (default
	// "1234").
	UserCode string `json:"userCode,omitempty"`
	// Scopes are extra OpenID scopes besides openid, offline_access and profile.
	Scopes []string `json:"scopes,omitempty"`
	// TTL overrides lifetimes in seconds by oidc-provider artifact name: "ClientCredentials"
	// (default 600), "AccessToken" (3600), "IdToken" (3600), "RefreshToken" (14 days),
	// "BackchannelAuthenticationRequest" (600, also the cap of requested_expiry), "Grant".
	// A resource server's own lifetime (3600) wins for JWT access tokens.
	TTL map[string]int `json:"ttl,omitempty"`

	// ExitOnStdinEnd makes the provider exit when its stdin ends; the harness always sets it and
	// holds a pipe on stdin, so no provider outlives a crashed test binary.
	ExitOnStdinEnd bool `json:"exitOnStdinEnd"`
}

// Client is the registered metadata of a client (OpenID Connect Dynamic Client Registration §2,
// CIBA Core §4). server.js defaults: token_endpoint_auth_method private_key_jwt, grant_types
// [client_credentials], no redirect URIs or response types.
type Client struct {
	ID                                         string             `json:"client_id"`
	JWKS                                       jose.JSONWebKeySet `json:"jwks"`
	TokenEndpointAuthMethod                    string             `json:"token_endpoint_auth_method,omitempty"`
	TokenEndpointAuthSigningAlg                string             `json:"token_endpoint_auth_signing_alg,omitempty"`
	GrantTypes                                 []string           `json:"grant_types,omitempty"`
	Scope                                      string             `json:"scope,omitempty"`
	IDTokenSignedResponseAlg                   string             `json:"id_token_signed_response_alg,omitempty"`
	BackchannelTokenDeliveryMode               string             `json:"backchannel_token_delivery_mode,omitempty"`
	BackchannelClientNotificationEndpoint      string             `json:"backchannel_client_notification_endpoint,omitempty"`
	BackchannelUserCodeParameter               bool               `json:"backchannel_user_code_parameter,omitempty"`
	BackchannelAuthenticationRequestSigningAlg string             `json:"backchannel_authentication_request_signing_alg,omitempty"`
}

// Grant types of the clients.
const (
	grantClientCredentials = "client_credentials"
	grantCIBA              = "urn:openid:params:grant-type:ciba"
	grantRefreshToken      = "refresh_token"
)

// deviceClient returns a client_credentials client authenticating with keys.
func deviceClient(id string, keys ...*Key) Client {
	return Client{ID: id, JWKS: publicJWKS(keys...), GrantTypes: []string{grantClientCredentials}}
}

// cibaClient returns a poll-mode CIBA client (also allowed client_credentials and refresh_token)
// authenticating with keys.
func cibaClient(id string, keys ...*Key) Client {
	return Client{
		ID:                           id,
		JWKS:                         publicJWKS(keys...),
		GrantTypes:                   []string{grantCIBA, grantClientCredentials, grantRefreshToken},
		BackchannelTokenDeliveryMode: "poll",
	}
}

// Provider is a running oidc-provider process. Its methods are safe for concurrent use; the
// ones taking a *testing.T call t.Fatal and belong on the test goroutine (use Decide elsewhere).
type Provider struct {
	dir    string // provider/ with server.js and node_modules
	node   string
	cfg    Config
	tmp    string
	http   *http.Client
	logger *stderrLog

	mu     sync.Mutex
	base   string // http://127.0.0.1:PORT
	cmd    *exec.Cmd
	cancel context.CancelFunc
	done   chan struct{}  // closed when cmd has exited
	stdin  io.WriteCloser // held open: the provider exits when it ends
	meta   *onesoidc.ProviderMetadata
	gen    int // process generation, for config file names
}

// startProvider starts provider/server.js with cfg (defaults filled in: provider keys, accounts
// alice and bob) and stops it in t.Cleanup. It fails the test when node or node_modules is
// missing, or when the provider does not print READY within 30 s. When the test fails, the
// provider's whole stderr is logged.
func startProvider(t testing.TB, cfg Config) *Provider {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("interop: node is not on PATH (%v); install Node >= 20.18 to run the interop suite", err)
	}
	dir, err := filepath.Abs("provider")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider", "package.json")); err != nil {
		t.Fatalf("interop: %s/node_modules/oidc-provider is missing; run `npm ci` in internal/interop/provider (or .ci/interop.sh)", dir)
	}
	if len(cfg.ProviderJWKS.Keys) == 0 {
		cfg.ProviderJWKS = privateJWKS(newProviderKeys(t)...)
	}
	if len(cfg.Accounts) == 0 {
		cfg.Accounts = []string{"alice", "bob"}
	}
	p := &Provider{
		dir:    dir,
		node:   node,
		cfg:    cfg,
		tmp:    t.TempDir(),
		http:   &http.Client{Timeout: 70 * time.Second},
		logger: newStderrLog(),
	}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("provider stderr:\n%s", p.logger.since(0))
		}
	})
	if err := p.start(); err != nil {
		t.Fatalf("interop: %v\nprovider stderr:\n%s", err, p.logger.since(0))
	}
	return p
}

// start runs a new process with p.cfg and waits for its READY line.
func (p *Provider) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen++
	p.cfg.ExitOnStdinEnd = true
	data, err := json.MarshalIndent(p.cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("marshal config: %w", err)
	}
	path := filepath.Join(p.tmp, fmt.Sprintf("provider-%d.json", p.gen))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, p.node, filepath.Join(p.dir, "server.js"), path)
	cmd.Dir = p.dir
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		cancel()
		return err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		return err
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return fmt.Errorf("start node: %w", err)
	}
	done := make(chan struct{})
	ready := make(chan string, 1)
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		p.logger.consume(stderr, "")
	}()
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if base, ok := strings.CutPrefix(line, "READY "); ok {
				select {
				case ready <- base:
				default:
				}
				continue
			}
			p.logger.add("[stdout] " + line)
		}
	}()
	go func() {
		readers.Wait()
		_ = cmd.Wait()
		close(done)
	}()

	timer := time.NewTimer(readyTimeout)
	defer timer.Stop()
	select {
	case base := <-ready:
		p.base, p.cmd, p.cancel, p.done, p.stdin, p.meta = base, cmd, cancel, done, stdin, nil
		return nil
	case <-done:
		cancel()
		return fmt.Errorf("provider exited before READY: %v", cmd.ProcessState)
	case <-timer.C:
		cancel()
		<-done
		return fmt.Errorf("provider not READY within %v", readyTimeout)
	}
}

// stop kills the process and waits for it.
func (p *Provider) stop() {
	p.mu.Lock()
	cancel, done, stdin := p.cancel, p.done, p.stdin
	p.cancel, p.done, p.stdin = nil, nil, nil
	p.mu.Unlock()
	if cancel != nil {
		_ = stdin.Close()
		cancel()
		<-done
	}
}

// Restart stops the provider and starts a new process on the same port, so the issuer stays the
// same, with the same clients and accounts and the new provider signing keys jwks (a key rotation
// as clients see it). Every token, grant and pending CIBA request of the old process is gone.
func (p *Provider) Restart(t testing.TB, jwks jose.JSONWebKeySet) {
	t.Helper()
	p.stop()
	p.mu.Lock()
	u, err := url.Parse(p.base)
	if err == nil {
		p.cfg.Port, err = strconv.Atoi(u.Port())
	}
	p.cfg.ProviderJWKS = jwks
	p.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.start(); err != nil {
		t.Fatalf("interop: restart: %v\nprovider stderr:\n%s", err, p.logger.since(0))
	}
}

// BaseURL is the server's origin, http://127.0.0.1:PORT.
func (p *Provider) BaseURL() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.base
}

// Issuer is the issuer identifier, BaseURL() + "/oidc" as on ONES (no trailing slash).
func (p *Provider) Issuer() string { return p.BaseURL() + "/oidc" }

// Host is what a ONES device.yml holds in "host": the issuer without "/oidc".
func (p *Provider) Host() string { return p.BaseURL() }

// Metadata returns the provider's discovery document, fetched once with onesoidc.Discover per
// process.
func (p *Provider) Metadata(t testing.TB) *onesoidc.ProviderMetadata {
	t.Helper()
	p.mu.Lock()
	meta := p.meta
	p.mu.Unlock()
	if meta != nil {
		return meta
	}
	meta, err := onesoidc.Discover(t.Context(), p.Issuer())
	if err != nil {
		t.Fatalf("interop: discovery: %v\nprovider stderr:\n%s", err, p.StderrSince(0))
	}
	p.mu.Lock()
	p.meta = meta
	p.mu.Unlock()
	return meta
}

// JWKS fetches the provider's public keys from jwks_uri.
func (p *Provider) JWKS(t testing.TB) jose.JSONWebKeySet {
	t.Helper()
	resp := p.get(t, p.Metadata(t).JWKSURI)
	var set jose.JSONWebKeySet
	if resp.Status != http.StatusOK {
		t.Fatalf("interop: GET jwks_uri: HTTP %d: %s", resp.Status, resp.Body)
	}
	if err := json.Unmarshal(resp.Body, &set); err != nil {
		t.Fatalf("interop: jwks: %v", err)
	}
	return set
}

// Mark returns the current position in the provider's stderr, for StderrSince.
func (p *Provider) Mark() int { return p.logger.mark() }

// Stderr returns everything the provider wrote to stderr (and stray stdout lines), one line per
// event. Lines written before this call are included: it first waits until the provider has
// echoed a sync line (bounded by 5 s).
func (p *Provider) Stderr() string { return p.StderrSince(0) }

// StderrSince returns the provider's stderr lines after mark (see Mark), after the same sync as
// Stderr.
func (p *Provider) StderrSince(mark int) string {
	p.sync()
	return p.logger.since(mark)
}

// sync asks the provider to write a marker line to stderr and waits until the reader has seen
// it, so that lines the provider wrote while answering earlier requests are in the buffer.
func (p *Provider) sync() {
	id := randomID()
	seen := p.logger.waitFor("[sync] " + id)
	defer p.logger.cancelWait(id)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	body, _ := json.Marshal(map[string]string{"id": id})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.BaseURL()+"/admin/sync", bytes.NewReader(body))
	if err != nil {
		return
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return
	}
	_ = resp.Body.Close()
	select {
	case <-seen:
	case <-ctx.Done():
	}
}

// PendingRequest is a CIBA request waiting for the end-user's decision, as the admin route
// lists it.
type PendingRequest struct {
	AuthReqID      string `json:"auth_req_id"`
	AccountID      string `json:"accountId"`
	BindingMessage string `json:"binding_message"`
	ClientID       string `json:"client_id"`
	Scope          string `json:"scope"`
	CreatedAt      string `json:"created_at"`
	Decision       string `json:"decision,omitempty"`
}

// Decision selects a pending CIBA request (by AuthReqID, else BindingMessage) and what the
// end-user answers.
type Decision struct {
	AuthReqID      string
	BindingMessage string
	// Approve grants the requested scopes; otherwise the request fails with Error.
	Approve bool
	// Error is the error code of a denial: "access_denied" (default), "transaction_failed" or
	// "expired_token".
	Error string
	// Wait bounds the wait for the request to appear (default 10 s), so an approval can race the
	// client's request.
	Wait time.Duration
}

// ErrNotPending is returned by Decide when no pending request matches.
var ErrNotPending = errors.New("interop: no matching pending CIBA request")

// Decide applies d through the admin route: approval creates a Grant of the requested scopes for
// the account and calls provider.backchannelResult; in ping mode the provider then POSTs to the
// client's notification endpoint, and a failed delivery is an error here (the decision itself is
// saved). Safe to call from any goroutine.
func (p *Provider) Decide(ctx context.Context, d Decision) (*PendingRequest, error) {
	sel := map[string]any{}
	switch {
	case d.AuthReqID != "":
		sel["auth_req_id"] = d.AuthReqID
	case d.BindingMessage != "":
		sel["binding_message"] = d.BindingMessage
	default:
		return nil, errors.New("interop: Decision needs AuthReqID or BindingMessage")
	}
	wait := d.Wait
	if wait == 0 {
		wait = 10 * time.Second
	}
	sel["wait_ms"] = wait.Milliseconds()
	path := "/admin/deny"
	if d.Approve {
		path = "/admin/approve"
	} else if d.Error != "" {
		sel["error"] = d.Error
	}
	body, err := json.Marshal(sel)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.BaseURL()+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("interop: %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch resp.StatusCode {
	case http.StatusOK:
		var pr PendingRequest
		if err := json.Unmarshal(data, &pr); err != nil {
			return nil, fmt.Errorf("interop: %s: %w", path, err)
		}
		return &pr, nil
	case http.StatusNotFound:
		return nil, fmt.Errorf("%w: %s", ErrNotPending, data)
	default:
		return nil, fmt.Errorf("interop: %s: HTTP %d: %s", path, resp.StatusCode, data)
	}
}

// Approve approves the pending request with bindingMessage (waiting up to 10 s for it).
func (p *Provider) Approve(t testing.TB, bindingMessage string) *PendingRequest {
	t.Helper()
	return p.decide(t, Decision{BindingMessage: bindingMessage, Approve: true})
}

// ApproveID approves the pending request authReqID.
func (p *Provider) ApproveID(t testing.TB, authReqID string) *PendingRequest {
	t.Helper()
	return p.decide(t, Decision{AuthReqID: authReqID, Approve: true})
}

// Deny denies the pending request with bindingMessage with access_denied.
func (p *Provider) Deny(t testing.TB, bindingMessage string) *PendingRequest {
	t.Helper()
	return p.decide(t, Decision{BindingMessage: bindingMessage})
}

// DenyID fails the pending request authReqID with errorCode ("" means access_denied).
func (p *Provider) DenyID(t testing.TB, authReqID, errorCode string) *PendingRequest {
	t.Helper()
	return p.decide(t, Decision{AuthReqID: authReqID, Error: errorCode})
}

func (p *Provider) decide(t testing.TB, d Decision) *PendingRequest {
	t.Helper()
	mark := p.Mark()
	pr, err := p.Decide(t.Context(), d)
	if err != nil {
		t.Fatalf("%v\nprovider stderr:\n%s", err, p.StderrSince(mark))
	}
	return pr
}

// Pending lists the CIBA requests waiting for a decision, oldest first.
func (p *Provider) Pending(t testing.TB) []PendingRequest {
	t.Helper()
	resp := p.get(t, p.BaseURL()+"/admin/pending")
	if resp.Status != http.StatusOK {
		t.Fatalf("interop: /admin/pending: HTTP %d: %s", resp.Status, resp.Body)
	}
	var list []PendingRequest
	if err := json.Unmarshal(resp.Body, &list); err != nil {
		t.Fatalf("interop: /admin/pending: %v", err)
	}
	return list
}

func (p *Provider) get(t testing.TB, u string) *rawResponse {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p.do(t, req)
}

// stderrLog collects the provider's stderr lines across restarts.
type stderrLog struct {
	mu      sync.Mutex
	lines   []string
	waiters map[string]chan struct{}
}

func newStderrLog() *stderrLog { return &stderrLog{waiters: map[string]chan struct{}{}} }

func (l *stderrLog) consume(r io.Reader, prefix string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l.add(prefix + sc.Text())
	}
}

func (l *stderrLog) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if id, ok := strings.CutPrefix(line, "[sync] "); ok {
		if ch := l.waiters[id]; ch != nil {
			close(ch)
			delete(l.waiters, id)
		}
		return
	}
	l.lines = append(l.lines, line)
}

func (l *stderrLog) waitFor(marker string) <-chan struct{} {
	id := strings.TrimPrefix(marker, "[sync] ")
	ch := make(chan struct{})
	l.mu.Lock()
	l.waiters[id] = ch
	l.mu.Unlock()
	return ch
}

func (l *stderrLog) cancelWait(id string) {
	l.mu.Lock()
	delete(l.waiters, id)
	l.mu.Unlock()
}

func (l *stderrLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lines)
}

func (l *stderrLog) since(mark int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if mark < 0 || mark > len(l.lines) {
		mark = 0
	}
	return strings.Join(l.lines[mark:], "\n")
}
