package redisstore

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ones-now/onesoidc"
	"github.com/ones-now/onesoidc/onesoidctest"
	"github.com/ones-now/onesoidc/weblogin"
)

const (
	testClientID = "8a3b1a6e-3c4f-4e1b-9d55-7f2f8f0a1c11"
	testDeviceID = "f1e2d3c4-b5a6-4789-8abc-def012345678"
)

// fakeClock is the clock of the handlers and the IdP: real time when the test starts, moved
// on by the test.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// replica is one process of the application: its own onesoidc client (same device key), its own
// weblogin handler and its own Store value on the shared Redis.
type replica struct {
	h      *weblogin.Handler
	store  weblogin.Store
	logs   *syncBuffer
	mu     sync.Mutex
	logins []*onesoidc.LoginResult
}

func (r *replica) onLogin(w http.ResponseWriter, _ *http.Request, res *onesoidc.LoginResult) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logins = append(r.logins, res)
	http.SetCookie(w, &http.Cookie{Name: "app", Value: "x", Path: "/"})
	return nil
}

func (r *replica) delivered() []*onesoidc.LoginResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*onesoidc.LoginResult(nil), r.logins...)
}

type cluster struct {
	idp      *onesoidctest.Server
	clock    *fakeClock
	replicas []*replica
}

// newCluster starts n replicas against one in-memory IdP and the Redis rdb; wrap, when set,
// wraps the store of each replica.
func newCluster(t *testing.T, n int, rs *redisServer, edit func(*weblogin.Config), wrap func(int, *Store) weblogin.Store, opts ...onesoidc.Option) *cluster {
	t.Helper()
	clk := &fakeClock{t: time.Now()}
	idp := onesoidctest.NewInMemory(onesoidctest.WithClock(clk.Now))
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dk, err := onesoidc.NewDeviceKey(k)
	if err != nil {
		t.Fatal(err)
	}
	idp.RegisterClient(testClientID, dk.Public(), dk.Algorithm())
	sealKey := make([]byte, weblogin.SealKeySize)
	_, _ = rand.Read(sealKey)
	prefix := uniquePrefix(t)
	c := &cluster{idp: idp, clock: clk}
	for i := range n {
		cfg := &onesoidc.DeviceConfig{ID: testDeviceID, ClientID: testClientID, Host: idp.URL, KeySecurity: "default"}
		client, err := onesoidc.NewClient(t.Context(), cfg, dk, append([]onesoidc.Option{onesoidc.WithHTTPClient(idp.HTTPClient()),
			onesoidc.WithStandardCIBA()}, opts...)...) // the mock speaks the standard CIBA shapes (no onesoidctest.WithONES)
		if err != nil {
			t.Fatal(err)
		}
		var st weblogin.Store = newStore(t, rs.client(), prefix)
		if wrap != nil {
			st = wrap(i, st.(*Store))
		}
		r := &replica{store: st, logs: &syncBuffer{}}
		wc := weblogin.Config{Client: client, OnLogin: r.onLogin, Store: st, SealKey: sealKey, Now: clk.Now,
			Logger: slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
		if edit != nil {
			edit(&wc)
		}
		if r.h, err = weblogin.New(wc); err != nil {
			t.Fatal(err)
		}
		c.replicas = append(c.replicas, r)
	}
	return c
}

// browser keeps one browser's cookies; the load balancer sends each request where the test says.
type browser struct {
	t       testing.TB
	mu      sync.Mutex
	cookies map[string]*http.Cookie
	loginID string // of the last start, sent by status requests with a nil body
}

func newBrowser(t testing.TB) *browser { return &browser{t: t, cookies: map[string]*http.Cookie{}} }

func (b *browser) post(h http.Handler, path string, body any) *httptest.ResponseRecorder {
	if body == nil {
		b.mu.Lock()
		body = map[string]string{"loginId": b.loginID}
		b.mu.Unlock()
	}
	var buf bytes.Buffer
	if body != nil {
		_ = json.NewEncoder(&buf).Encode(body)
	}
	r := httptest.NewRequestWithContext(context.Background(), http.MethodPost, "http://localhost"+path, &buf)
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Origin", "http://localhost")
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
	if strings.HasSuffix(path, "/start") && json.Unmarshal(w.Body.Bytes(), &ans) == nil && ans.LoginID != "" {
		b.loginID = ans.LoginID
	}
	return w
}

func want(t testing.TB, w *httptest.ResponseRecorder, code int) map[string]any {
	t.Helper()
	if w.Code != code {
		t.Fatalf("status %d, want %d: %s", w.Code, code, w.Body.String())
	}
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("not JSON: %q", w.Body.String())
	}
	return m
}

var alice = map[string]any{"userIdentifier": "alice"}

// TestLoginStartedOnACollectedOnB: a login started on replica A is polled and collected on
// replica B, B's OnLogin gets the validated result, and the store only ever saw it sealed.
func TestLoginStartedOnACollectedOnB(t *testing.T) {
	rs := startRedis(t, false)
	var sealed [][]byte
	var mu sync.Mutex
	c := newCluster(t, 2, rs, nil, func(_ int, s *Store) weblogin.Store {
		return &recordingStore{Store: s, finish: func(b []byte) { mu.Lock(); sealed = append(sealed, b); mu.Unlock() }}
	})
	c.idp.ScriptCIBA("alice", onesoidctest.CIBAScript{IDTokenClaims: map[string]any{"preferred_username": "Alice"}})
	a, b := c.replicas[0], c.replicas[1]
	br := newBrowser(t)
	want(t, br.post(a.h, "/auth/ciba/start", alice), http.StatusOK)
	want(t, br.post(b.h, "/auth/ciba/status", nil), http.StatusAccepted)
	c.clock.Advance(5 * time.Second)
	got := want(t, br.post(b.h, "/auth/ciba/status", nil), http.StatusOK)
	if got["status"] != "approved" || got["name"] != "Alice" {
		t.Fatalf("answer %v", got)
	}
	res := b.delivered()
	if len(res) != 1 || len(a.delivered()) != 0 || res[0].Auth.Entity.Subject != "alice" {
		t.Fatalf("delivered on A %d, on B %d", len(a.delivered()), len(res))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sealed) != 1 {
		t.Fatalf("%d results stored", len(sealed))
	}
	for _, secret := range []string{res[0].Token.AccessToken, res[0].Token.RefreshToken, res[0].IDToken} {
		if bytes.Contains(sealed[0], []byte(secret)) {
			t.Fatal("a token reached Redis in clear")
		}
	}
	// A's status now says approved, without a second OnLogin.
	want(t, br.post(a.h, "/auth/ciba/status", nil), http.StatusOK)
	if len(a.delivered()) != 0 {
		t.Fatal("collected twice")
	}
}

type recordingStore struct {
	*Store
	finish func([]byte)
}

func (s *recordingStore) FinishLogin(ctx context.Context, l *weblogin.Login, sealed []byte, now time.Time) error {
	s.finish(bytes.Clone(sealed))
	return s.Store.FinishLogin(ctx, l, sealed, now)
}

// waiterWatch wraps the Store of the replica whose status request waits, and tells the test
// what that request does: whether it subscribed, what it published, the wake-ups it took and
// what TakePinged answered it. Each change is signalled on changed, so that the test waits for
// events, not for time.
//
// The replica's own Publish calls are counted but kept from Redis: they are for waiters on
// other replicas, of which the test has none, and would otherwise come back to this replica's
// waiter as wake-ups of its own. So the only wake-up the waiter can get is the one another
// replica publishes.
type waiterWatch struct {
	*Store
	changed chan struct{} // receives after any change below
	fwd     sync.WaitGroup

	mu         sync.Mutex
	subscribed bool
	published  int    // Publish calls of this replica
	delivered  int    // wake-ups the waiting request took from its channel
	pinged     []bool // TakePinged answers, in order
	idleChecks int    // TakePinged answers of false after the first Publish
}

func newWaiterWatch(s *Store) *waiterWatch {
	return &waiterWatch{Store: s, changed: make(chan struct{}, 1)}
}

func (w *waiterWatch) update(f func()) {
	w.mu.Lock()
	f()
	w.mu.Unlock()
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

func (w *waiterWatch) Publish(context.Context, string) error {
	w.update(func() { w.published++ })
	return nil
}

func (w *waiterWatch) TakePinged(ctx context.Context, pollKey string) (bool, error) {
	got, err := w.Store.TakePinged(ctx, pollKey)
	w.update(func() {
		w.pinged = append(w.pinged, got)
		if !got && w.published > 0 {
			w.idleChecks++
		}
	})
	return got, err
}

// Subscribe hands the waiting request a channel of its own, fed from the Store's: a wake-up
// counts as delivered once the request took it (the channel is unbuffered). The count is final
// once the subscription ended and fwd.Wait returned.
func (w *waiterWatch) Subscribe(ctx context.Context, pollKey string) (<-chan struct{}, func(), error) {
	in, stop, err := w.Store.Subscribe(ctx, pollKey)
	if err != nil {
		return nil, nil, err
	}
	out, quit := make(chan struct{}), make(chan struct{})
	w.fwd.Go(func() {
		for {
			select {
			case <-in:
			case <-quit:
				return
			}
			select {
			case out <- struct{}{}:
				w.update(func() { w.delivered++ })
			case <-quit:
				return
			}
		}
	})
	w.update(func() { w.subscribed = true })
	var once sync.Once
	return out, func() { once.Do(func() { close(quit); stop() }) }, nil
}

// waitFor waits until cond holds, re-checking it at each change; it fails the test after
// timeout (a bound for a broken build only: the events take milliseconds), or when done
// receives first.
func (w *waiterWatch) waitFor(t *testing.T, what string, timeout time.Duration, done <-chan *httptest.ResponseRecorder, cond func(w *waiterWatch) bool) {
	t.Helper()
	bound := time.NewTimer(timeout)
	defer bound.Stop()
	for {
		w.mu.Lock()
		ok := cond(w)
		w.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-w.changed:
		case r := <-done:
			t.Fatalf("the status request answered %d %s before %s", r.Code, r.Body, what)
		case <-bound.C:
			w.mu.Lock()
			defer w.mu.Unlock()
			t.Fatalf("no %s within %v: subscribed %v, %d wake-ups published, %d taken, TakePinged said %v",
				what, timeout, w.subscribed, w.published, w.delivered, w.pinged)
		}
	}
}

// TestPingOnBWakesWaiterOnA: the provider's ping reaches replica B; a status request waiting
// on replica A is woken through Redis, polls at once and answers. The clock of the handlers and
// the IdP stands still meanwhile, so no timer of A (next poll, long-poll end) can be what
// ended the wait: only the wake-up B published, which the test sees A take, and the ping A
// then consumed.
func TestPingOnBWakesWaiterOnA(t *testing.T) {
	const bound = 30 * time.Second // failure bound only; each wait below ends in milliseconds
	rs := startRedis(t, false)
	var watch *waiterWatch
	c := newCluster(t, 2, rs, func(cfg *weblogin.Config) { cfg.LongPoll = 30 * time.Second },
		func(i int, s *Store) weblogin.Store {
			if i == 0 {
				watch = newWaiterWatch(s)
				return watch
			}
			return s
		}, onesoidc.WithCIBAPing())
	c.idp.SetCIBANotificationEndpoint(testClientID, "http://localhost/ciba/notify")
	c.idp.ScriptCIBA("alice", onesoidctest.CIBAScript{Outcome: onesoidctest.AwaitDecision})
	a, b := c.replicas[0], c.replicas[1]
	br := newBrowser(t)
	want(t, br.post(a.h, "/auth/ciba/start", alice), http.StatusOK)
	id := c.idp.CIBARequests()[0].AuthReqID
	c.clock.Advance(6 * time.Second) // the first poll is due: the waiter polls (pending), then waits

	done := make(chan *httptest.ResponseRecorder, 1)
	go func() { done <- br.post(a.h, "/auth/ciba/status", nil) }()
	defer func() {
		if t.Failed() {
			t.Logf("A's log:\n%s", a.logs)
		}
	}()
	// A subscribed, polled (pending), published the new poll time, then found no ping and no
	// poll due: it waits for a wake-up, and none can come but B's.
	watch.waitFor(t, "wait on A after its first poll", bound, done, func(w *waiterWatch) bool {
		return w.subscribed && w.idleChecks > 0
	})
	if n := c.idp.Count(onesoidctest.EndpointToken); n != 1 {
		t.Fatalf("%d polls before the ping, want 1", n)
	}
	watch.mu.Lock()
	checksBefore := len(watch.pinged)
	watch.mu.Unlock()

	if err := c.idp.Decide(id, onesoidctest.Approve); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, err := c.idp.Ping(t.Context(), onesoidctest.HandlerClient(b.h.NotificationHandler()), id)
	if err != nil || code != http.StatusNoContent {
		t.Fatalf("ping to B: %d %v", code, err)
	}
	select {
	case w := <-done:
		want(t, w, http.StatusOK)
		t.Logf("waiter on A answered %v after the ping to B", time.Since(start))
	case <-time.After(bound):
		t.Fatalf("the waiter on A was not woken within %v", bound)
	}
	watch.fwd.Wait() // the request unsubscribed before it answered
	watch.mu.Lock()
	woken, checks := watch.delivered, watch.pinged[checksBefore:]
	watch.mu.Unlock()
	if woken != 1 || !slices.Contains(checks, true) {
		t.Fatalf("A took %d wake-ups and TakePinged said %v after the ping; want B's wake-up and the ping", woken, checks)
	}
	if n := c.idp.Count(onesoidctest.EndpointToken); n != 2 {
		t.Fatalf("%d polls, want 2 (one due, one after the ping)", n)
	}
	if len(a.delivered()) != 1 {
		t.Fatal("not delivered on A")
	}
}

// TestTwoReplicasConcurrentStatusOnePollPerInterval: 100 concurrent status requests, half on
// each replica, cost exactly one token-endpoint poll per interval.
func TestTwoReplicasConcurrentStatusOnePollPerInterval(t *testing.T) {
	rs := startRedis(t, false)
	c := newCluster(t, 2, rs, nil, nil)
	c.idp.ScriptCIBA("alice", onesoidctest.CIBAScript{PendingPolls: 3})
	br := newBrowser(t)
	want(t, br.post(c.replicas[0].h, "/auth/ciba/start", alice), http.StatusOK)
	for round := range 4 {
		c.clock.Advance(5 * time.Second)
		var wg sync.WaitGroup
		for i := range 100 {
			wg.Go(func() {
				w := br.post(c.replicas[i%2].h, "/auth/ciba/status", nil)
				if w.Code != http.StatusOK && w.Code != http.StatusAccepted {
					t.Errorf("status %d: %s", w.Code, w.Body)
				}
			})
		}
		wg.Wait()
		if n := c.idp.Count(onesoidctest.EndpointToken); n != round+1 {
			t.Fatalf("interval %d: %d token-endpoint polls, want %d", round+1, n, round+1)
		}
	}
	if n := len(c.replicas[0].delivered()) + len(c.replicas[1].delivered()); n != 1 {
		t.Fatalf("delivered %d times", n)
	}
}

// TestRedeemedAuthReqIDNeverPolledAgain: once the tokens of an auth_req_id were issued, no
// replica polls it again, however often and wherever the browser asks.
func TestRedeemedAuthReqIDNeverPolledAgain(t *testing.T) {
	rs := startRedis(t, false)
	c := newCluster(t, 2, rs, nil, nil)
	br := newBrowser(t)
	want(t, br.post(c.replicas[0].h, "/auth/ciba/start", alice), http.StatusOK)
	c.clock.Advance(5 * time.Second)
	want(t, br.post(c.replicas[1].h, "/auth/ciba/status", nil), http.StatusOK)
	for range 5 {
		c.clock.Advance(10 * time.Second)
		for _, r := range c.replicas {
			want(t, br.post(r.h, "/auth/ciba/status", nil), http.StatusOK)
		}
	}
	rec := c.idp.CIBARequests()[0]
	if !rec.Redeemed || rec.Polls != 1 {
		t.Fatalf("redeemed %v, %d polls", rec.Redeemed, rec.Polls)
	}
}

// TestRedisStoppedMidLogin: with Redis down the status endpoint answers 503 with Retry-After;
// once Redis is back the login goes on and is delivered.
func TestRedisStoppedMidLogin(t *testing.T) {
	rs := startRedis(t, true)
	c := newCluster(t, 2, rs, nil, nil)
	br := newBrowser(t)
	want(t, br.post(c.replicas[0].h, "/auth/ciba/start", alice), http.StatusOK)
	rs.stop()
	c.clock.Advance(5 * time.Second)
	for _, r := range c.replicas {
		w := br.post(r.h, "/auth/ciba/status", nil)
		got := want(t, w, http.StatusServiceUnavailable)
		if got["error"] != "temporarily_unavailable" || w.Header().Get("Retry-After") == "" ||
			!strings.Contains(got["error_description"].(string), "store") {
			t.Fatalf("answer %v, Retry-After %q", got, w.Header().Get("Retry-After"))
		}
	}
	// A new login cannot start either, and says so.
	want(t, newBrowser(t).post(c.replicas[1].h, "/auth/ciba/start", alice), http.StatusServiceUnavailable)
	if n := c.idp.Count(onesoidctest.EndpointToken); n != 0 {
		t.Fatalf("%d polls while the lease could not be taken", n)
	}
	rs.restart()
	got := want(t, br.post(c.replicas[1].h, "/auth/ciba/status", nil), http.StatusOK)
	if got["status"] != "approved" || len(c.replicas[1].delivered()) != 1 {
		t.Fatalf("after restart: %v", got)
	}
}

// failFinish stops Redis right before the result of an approved login is stored.
type failFinish struct {
	*Store
	rs *redisServer
}

func (s *failFinish) FinishLogin(ctx context.Context, l *weblogin.Login, sealed []byte, now time.Time) error {
	s.rs.stop()
	return s.Store.FinishLogin(ctx, l, sealed, now)
}

// TestApprovedButNotStoredIsRevoked: Redis goes down between the provider's approval and the
// storing of the result: the tokens are revoked at the provider, the failure is logged and the
// browser gets 503 — the approved login is never silently lost.
func TestApprovedButNotStoredIsRevoked(t *testing.T) {
	rs := startRedis(t, true)
	c := newCluster(t, 1, rs, nil, func(_ int, s *Store) weblogin.Store { return &failFinish{Store: s, rs: rs} })
	br := newBrowser(t)
	want(t, br.post(c.replicas[0].h, "/auth/ciba/start", alice), http.StatusOK)
	c.clock.Advance(5 * time.Second)
	got := want(t, br.post(c.replicas[0].h, "/auth/ciba/status", nil), http.StatusServiceUnavailable)
	if !strings.Contains(got["error_description"].(string), "revoked") {
		t.Fatalf("answer %v", got)
	}
	revs := c.idp.Requests(onesoidctest.EndpointRevocation)
	if len(revs) != 2 || revs[0].Form.Get("token_type_hint") != "refresh_token" || revs[1].Form.Get("token_type_hint") != "access_token" {
		t.Fatalf("%d revocations", len(revs))
	}
	if logs := c.replicas[0].logs.String(); !strings.Contains(logs, "approved login could not be stored") || !strings.Contains(logs, "revoked=true") {
		t.Fatalf("not reported: %s", logs)
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
