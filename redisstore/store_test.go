package redisstore

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ones-now/onesoidc/weblogin"
	"github.com/redis/go-redis/v9"
)

func pendingLogin(session, id string, now time.Time) *weblogin.Login {
	return &weblogin.Login{Session: session, ID: id, Kind: weblogin.KindCIBA, State: weblogin.StatePending, Created: now,
		Expiry: now.Add(10 * time.Minute), KeepUntil: now.Add(12 * time.Minute), NextPoll: now.Add(5 * time.Second), Interval: 5 * time.Second}
}

// TestStoreLimitsNeverEvict: the per-session and global limits refuse new logins and keep
// the pending ones; expired and ended logins stop counting.
func TestStoreLimitsNeverEvict(t *testing.T) {
	rs := startRedis(t, false)
	st := newStore(t, rs.client(), uniquePrefix(t))
	ctx, now := t.Context(), time.Now()
	lim := weblogin.Limits{PerSession: 2, Total: 3}
	for i, s := range []string{"a", "a", "b"} {
		if err := st.CreateLogin(ctx, pendingLogin(s, string(rune('1'+i)), now), now, lim); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CreateLogin(ctx, pendingLogin("a", "x", now), now, lim); !errors.Is(err, weblogin.ErrSessionFull) {
		t.Fatalf("third login of a session: %v", err)
	}
	if err := st.CreateLogin(ctx, pendingLogin("c", "x", now), now, lim); !errors.Is(err, weblogin.ErrStoreFull) {
		t.Fatalf("fourth login: %v", err)
	}
	for _, k := range [][2]string{{"a", "1"}, {"a", "2"}, {"b", "3"}} {
		if _, err := st.GetLogin(ctx, k[0], k[1]); err != nil {
			t.Fatalf("pending login %v evicted: %v", k, err)
		}
	}
	// An ended login stops counting.
	l, _ := st.GetLogin(ctx, "b", "3")
	l.State = weblogin.StateFailed
	if err := st.UpdateLogin(ctx, l, now); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateLogin(ctx, pendingLogin("c", "4", now), now, lim); err != nil {
		t.Fatalf("after one ended: %v", err)
	}
	// Expired logins stop counting.
	later := now.Add(11 * time.Minute)
	if err := st.CreateLogin(ctx, pendingLogin("d", "5", later), later, lim); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
}

// TestStoreRecords: update of a deleted login is ErrNotFound (a cancel is never undone), the
// result is taken once, the poll index finds the login, and every key has the prefix and a TTL.
func TestStoreRecords(t *testing.T) {
	rs := startRedis(t, false)
	rdb := rs.client()
	prefix := uniquePrefix(t)
	st := newStore(t, rdb, prefix)
	ctx, now := t.Context(), time.Now()
	lim := weblogin.Limits{PerSession: 5, Total: 5}
	l := pendingLogin("s", "1", now)
	if err := st.CreateLogin(ctx, l, now, lim); err != nil {
		t.Fatal(err)
	}
	l.PollKey, l.AuthReqID = "pk1", "req-1"
	if err := st.UpdateLogin(ctx, l, now); err != nil {
		t.Fatal(err)
	}
	if got, err := st.LoginByPollKey(ctx, "pk1"); err != nil || got.ID != "1" || got.AuthReqID != "req-1" {
		t.Fatalf("LoginByPollKey: %+v %v", got, err)
	}
	l.State = weblogin.StateApproved
	if err := st.FinishLogin(ctx, l, []byte("sealed"), now); err != nil {
		t.Fatal(err)
	}
	if err := st.SetPinged(ctx, "pk1", time.Minute); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.AcquireLease(ctx, "pk1", "me", time.Minute); !ok || err != nil {
		t.Fatalf("lease: %v %v", ok, err)
	}
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		n++
		if k == prefix+"pending" {
			continue // the global index: entries leave by score
		}
		if ttl, _ := rdb.PTTL(ctx, k).Result(); ttl <= 0 {
			t.Errorf("key %s has no expiry (%v)", k, ttl)
		}
	}
	if n < 5 { // login, result, poll, lease, ping (the pending indexes are empty once approved)
		t.Fatalf("%d keys with the prefix: %v", n, keys)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := 0
	for range 20 {
		wg.Go(func() {
			if b, err := st.TakeResult(ctx, "s", "1"); err == nil && string(b) == "sealed" {
				mu.Lock()
				got++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if got != 1 {
		t.Fatalf("result taken %d times", got)
	}
	if err := st.DeleteLogin(ctx, "s", "1"); err != nil {
		t.Fatal(err)
	}
	if err := st.UpdateLogin(ctx, l, now); !errors.Is(err, weblogin.ErrNotFound) {
		t.Fatalf("update after delete: %v", err)
	}
	if err := st.FinishLogin(ctx, l, []byte("x"), now); !errors.Is(err, weblogin.ErrNotFound) {
		t.Fatalf("finish after delete: %v", err)
	}
	if _, err := st.GetLogin(ctx, "s", "1"); !errors.Is(err, weblogin.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
}

// TestStoreLease: one owner at a time, across two stores (replicas); release only by the owner;
// a lease whose owner died expires, after the TTL its owner gave it.
func TestStoreLease(t *testing.T) {
	rs := startRedis(t, false)
	prefix := uniquePrefix(t)
	rdb := rs.client()
	a, b := newStore(t, rdb, prefix), newStore(t, rs.client(), prefix)
	ctx := t.Context()
	expired := expiredKeys(t, rdb)
	const leaseTTL = 200 * time.Millisecond
	if ok, _ := a.AcquireLease(ctx, "k", "a", leaseTTL); !ok {
		t.Fatal("a did not get the free lease")
	}
	if ttl, err := rdb.PTTL(ctx, a.key("lease", "k")).Result(); err != nil || ttl <= 0 || ttl > leaseTTL {
		t.Fatalf("lease TTL %v (%v), want in (0, %v]", ttl, err, leaseTTL)
	}
	if ok, _ := b.AcquireLease(ctx, "k", "b", time.Minute); ok {
		t.Fatal("b got a held lease")
	}
	_ = b.ReleaseLease(ctx, "k", "b") // not b's: nothing happens
	if ok, _ := b.AcquireLease(ctx, "k", "b", time.Minute); ok {
		t.Fatal("b released a's lease")
	}
	// Redis expires the key on its own clock and says so: wait for that event, not for time.
	const bound = 30 * time.Second // failure bound only; Redis expires it about 200 ms from now
	timeout := time.NewTimer(bound)
	defer timeout.Stop()
	for key := ""; key != a.key("lease", "k"); {
		select {
		case m := <-expired:
			key = m.Payload
		case <-timeout.C:
			t.Fatalf("Redis did not expire a dead owner's lease (TTL %v) within %v", leaseTTL, bound)
		}
	}
	if ok, _ := b.AcquireLease(ctx, "k", "b", time.Minute); !ok {
		t.Fatal("b did not get the lease once Redis expired it")
	}
	if err := b.ReleaseLease(ctx, "k", "b"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := a.AcquireLease(ctx, "k", "a", time.Minute); !ok {
		t.Fatal("released lease not free")
	}
}

// expiredKeys turns on Redis's keyspace events for expired keys (adding them to the server's
// notify-keyspace-events, which other tests sharing the server do not mind) and returns the
// names of the keys of rdb's database that Redis expires from now on.
func expiredKeys(t *testing.T, rdb *redis.Client) <-chan *redis.Message {
	t.Helper()
	ctx := t.Context()
	cur, err := rdb.ConfigGet(ctx, "notify-keyspace-events").Result()
	if err != nil {
		t.Fatalf("CONFIG GET notify-keyspace-events: %v", err)
	}
	if flags := cur["notify-keyspace-events"]; !strings.Contains(flags, "E") || !strings.ContainsAny(flags, "xA") {
		if err := rdb.ConfigSet(ctx, "notify-keyspace-events", flags+"Ex").Err(); err != nil {
			t.Fatalf("CONFIG SET notify-keyspace-events: %v", err)
		}
	}
	ps := rdb.Subscribe(ctx, fmt.Sprintf("__keyevent@%d__:expired", rdb.Options().DB))
	t.Cleanup(func() { _ = ps.Close() })
	if _, err := ps.Receive(ctx); err != nil { // the subscription confirmation
		t.Fatalf("subscribe to expired-key events: %v", err)
	}
	return ps.Channel()
}

// TestStorePubSubAcrossStores: a Publish on one store wakes Subscribe on another, only for its
// pollkey, typically within 100 ms (the median of rounds, so that a loaded machine's one slow
// round does not decide).
func TestStorePubSubAcrossStores(t *testing.T) {
	rs := startRedis(t, false)
	prefix := uniquePrefix(t)
	a, b := newStore(t, rs.client(), prefix), newStore(t, rs.client(), prefix)
	ctx := t.Context()
	ch, stop, err := a.Subscribe(ctx, "k1")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	other, stop2, _ := a.Subscribe(ctx, "k2")
	defer stop2()
	const rounds, bound = 15, 30 * time.Second // bound: a failure bound only
	var took []time.Duration
	for range rounds {
		start := time.Now()
		if err := b.Publish(ctx, "k1"); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
			took = append(took, time.Since(start))
		case <-time.After(bound):
			t.Fatalf("not woken within %v", bound)
		}
	}
	slices.Sort(took)
	t.Logf("woken after %v (median), %v (slowest)", took[rounds/2], took[rounds-1])
	if took[rounds/2] > 100*time.Millisecond {
		t.Fatalf("woken after %v (median of %d), want under 100 ms", took[rounds/2], rounds)
	}
	select {
	case <-other:
		t.Fatal("another pollkey woken")
	default:
	}
}

// TestStorePingedOnceAcrossStores (CB-22): a ping flag is taken by one poll on any replica; a
// repeated or replayed ping while it is recorded sets nothing, so it causes no further poll,
// and the taken flag keeps its expiry.
func TestStorePingedOnceAcrossStores(t *testing.T) {
	rs := startRedis(t, false)
	rdb := rs.client()
	prefix := uniquePrefix(t)
	a, b := newStore(t, rdb, prefix), newStore(t, rdb, prefix)
	ctx := t.Context()
	if got, err := b.TakePinged(ctx, "pk"); got || err != nil {
		t.Fatalf("TakePinged before any ping: %v %v", got, err)
	}
	if err := a.SetPinged(ctx, "pk", time.Minute); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var taken atomic.Int32
	for _, st := range []*Store{a, b, a, b, a, b} {
		wg.Go(func() {
			if got, err := st.TakePinged(ctx, "pk"); err != nil {
				t.Error(err)
			} else if got {
				taken.Add(1)
			}
		})
	}
	wg.Wait()
	if n := taken.Load(); n != 1 {
		t.Fatalf("one ping taken %d times", n)
	}
	for i := range 3 { // replays, on either replica
		if err := []*Store{a, b}[i%2].SetPinged(ctx, "pk", time.Minute); err != nil {
			t.Fatal(err)
		}
		if got, err := b.TakePinged(ctx, "pk"); got || err != nil {
			t.Fatalf("replay %d taken: %v %v", i, got, err)
		}
	}
	if ttl, err := rdb.PTTL(ctx, prefix+"ping:pk").Result(); err != nil || ttl <= 0 || ttl > time.Minute {
		t.Fatalf("taken flag's expiry %v %v", ttl, err)
	}
}
