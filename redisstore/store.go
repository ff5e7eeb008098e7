// Package redisstore keeps the login state of weblogin on Redis, so that several replicas of an
// application serve the same logins: a login started on one replica is polled by whichever
// replica gets the poll lease and collected on whichever the browser reaches, and a ping
// delivered to any replica wakes the status requests waiting on every other.
//
//	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
//	store, err := redisstore.New(rdb)
//	defer store.Close()
//	h, err := weblogin.New(weblogin.Config{Client: client, OnLogin: setSession, Store: store, SealKey: key})
//
// # Keys
//
// Every key starts with the prefix (WithPrefix; default DefaultPrefix). The prefix is a Redis
// Cluster hash tag, so that all keys of one application live in one slot and the scripts that
// touch several keys stay atomic on a cluster too. Records of a login expire when the login may
// be dropped (weblogin's Login.KeepUntil); the poll lease is a SET NX PX key; ping flags expire
// with the login; wake-ups go through one pub/sub channel.
//
//	{prefix}login:<session>:<id>     the login record (JSON, no token)
//	{prefix}result:<session>:<id>    the sealed result of an approved login (AES-256-GCM, sealed by weblogin)
//	{prefix}spending:<session>       the session's pending logins (sorted by expiry)
//	{prefix}pending                  all pending logins (sorted by expiry), for the global limit
//	{prefix}poll:<pollkey>           <session>:<id> of a provider request (pollkey: SHA-256 of its auth_req_id)
//	{prefix}lease:<pollkey>          the one-poller lease
//	{prefix}ping:<pollkey>           a ping came: "1", or "0" once a poll took it
//	{prefix}wake                     the pub/sub channel of wake-ups (messages: pollkeys)
//
// Redis 6.2 or later is required (GETDEL).
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ones-now/onesoidc/weblogin"
)

// DefaultPrefix is the default key prefix: a Redis Cluster hash tag.
const DefaultPrefix = "{onesoidc-weblogin}:"

// Store is a weblogin.Store on Redis. It is safe for concurrent use; Close ends its pub/sub
// subscription.
type Store struct {
	rdb    redis.UniversalClient
	prefix string

	mu     sync.Mutex
	pubsub *redis.PubSub
	wake   weblogin.Wakeups
	done   chan struct{}
	closed bool
}

var _ weblogin.Store = (*Store)(nil)

// Option configures New.
type Option func(*Store) error

// WithPrefix sets the prefix of every key and of the pub/sub channel (default DefaultPrefix).
// Applications sharing one Redis need different prefixes.
func WithPrefix(p string) Option {
	return func(s *Store) error {
		if p == "" || strings.ContainsAny(p, " \t\r\n") {
			return errors.New("redisstore: WithPrefix: empty, or holds white space")
		}
		s.prefix = p
		return nil
	}
}

// New returns a Store on rdb (a *redis.Client, *redis.ClusterClient or *redis.Ring with one
// shard). It sends nothing until the first call.
func New(rdb redis.UniversalClient, opts ...Option) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("redisstore: nil Redis client")
	}
	s := &Store{rdb: rdb, prefix: DefaultPrefix}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Store) key(parts ...string) string { return s.prefix + strings.Join(parts, ":") }

// ttl is how long records of l live: until l.KeepUntil, at least one second.
func ttl(l *weblogin.Login, now time.Time) time.Duration {
	return max(l.KeepUntil.Sub(now), time.Second)
}

// createScript stores a pending login unless a limit is reached.
// KEYS: pending, spending, login. ARGV: now ms, per session, total, member, id, json,
// ttl ms, expiry ms.
var createScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 2 end
redis.call('ZADD', KEYS[1], ARGV[8], ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[8], ARGV[5])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[7]) then redis.call('PEXPIRE', KEYS[2], ARGV[7]) end
redis.call('SET', KEYS[3], ARGV[6], 'PX', ARGV[7])
return 0
`)

// CreateLogin implements weblogin.Store.
func (s *Store) CreateLogin(ctx context.Context, l *weblogin.Login, now time.Time, lim weblogin.Limits) error {
	data, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("redisstore: %w", err)
	}
	member := l.Session + ":" + l.ID
	res, err := createScript.Run(ctx, s.rdb,
		[]string{s.key("pending"), s.key("spending", l.Session), s.key("login", l.Session, l.ID)},
		now.UnixMilli(), lim.PerSession, lim.Total, member, l.ID, data, ttl(l, now).Milliseconds(), l.Expiry.UnixMilli()).Int()
	if err != nil {
		return fmt.Errorf("redisstore: create login: %w", err)
	}
	switch res {
	case 1:
		return weblogin.ErrSessionFull
	case 2:
		return weblogin.ErrStoreFull
	}
	return nil
}

// updateScript replaces an existing login record (and stores a sealed result with it).
// KEYS: login, pending, spending, poll index, result. ARGV: json, ttl ms, pending ("1"/"0"),
// member, id, expiry ms, index ("1"/"0"), sealed ("" for none), result ("1"/"0").
var updateScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 1 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if ARGV[3] == '1' then
  redis.call('ZADD', KEYS[2], ARGV[6], ARGV[4])
  redis.call('ZADD', KEYS[3], ARGV[6], ARGV[5])
else
  redis.call('ZREM', KEYS[2], ARGV[4])
  redis.call('ZREM', KEYS[3], ARGV[5])
end
if ARGV[7] == '1' then redis.call('SET', KEYS[4], ARGV[4], 'PX', ARGV[2]) end
if ARGV[9] == '1' then redis.call('SET', KEYS[5], ARGV[8], 'PX', ARGV[2]) end
return 0
`)

func (s *Store) update(ctx context.Context, l *weblogin.Login, sealed []byte, withResult bool, now time.Time) error {
	data, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("redisstore: %w", err)
	}
	flag := func(b bool) string {
		if b {
			return "1"
		}
		return "0"
	}
	pollIndex := s.key("poll", "-")
	if l.PollKey != "" {
		pollIndex = s.key("poll", l.PollKey)
	}
	res, err := updateScript.Run(ctx, s.rdb,
		[]string{s.key("login", l.Session, l.ID), s.key("pending"), s.key("spending", l.Session), pollIndex, s.key("result", l.Session, l.ID)},
		data, ttl(l, now).Milliseconds(), flag(l.State == weblogin.StatePending), l.Session+":"+l.ID, l.ID, l.Expiry.UnixMilli(),
		flag(l.PollKey != ""), sealed, flag(withResult)).Int()
	if err != nil {
		return fmt.Errorf("redisstore: update login: %w", err)
	}
	if res == 1 {
		return weblogin.ErrNotFound
	}
	return nil
}

// UpdateLogin implements weblogin.Store.
func (s *Store) UpdateLogin(ctx context.Context, l *weblogin.Login, now time.Time) error {
	return s.update(ctx, l, nil, false, now)
}

// FinishLogin implements weblogin.Store: the record and the sealed result in one script.
func (s *Store) FinishLogin(ctx context.Context, l *weblogin.Login, sealed []byte, now time.Time) error {
	return s.update(ctx, l, sealed, true, now)
}

func (s *Store) get(ctx context.Context, key string) (*weblogin.Login, error) {
	data, err := s.rdb.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, weblogin.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("redisstore: get login: %w", err)
	}
	var l weblogin.Login
	if err := json.Unmarshal(data, &l); err != nil {
		return nil, fmt.Errorf("redisstore: login record: %w", err)
	}
	return &l, nil
}

// GetLogin implements weblogin.Store.
func (s *Store) GetLogin(ctx context.Context, session, id string) (*weblogin.Login, error) {
	return s.get(ctx, s.key("login", session, id))
}

// LoginByPollKey implements weblogin.Store.
func (s *Store) LoginByPollKey(ctx context.Context, pollKey string) (*weblogin.Login, error) {
	member, err := s.rdb.Get(ctx, s.key("poll", pollKey)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, weblogin.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("redisstore: poll index: %w", err)
	}
	session, id, ok := strings.Cut(member, ":")
	if !ok {
		return nil, weblogin.ErrNotFound
	}
	return s.GetLogin(ctx, session, id)
}

// TakeResult implements weblogin.Store with GETDEL: one caller gets the result.
func (s *Store) TakeResult(ctx context.Context, session, id string) ([]byte, error) {
	data, err := s.rdb.GetDel(ctx, s.key("result", session, id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("redisstore: take result: %w", err)
	}
	return data, nil
}

// deleteScript removes a login. KEYS: login, result, pending, spending. ARGV: member, id.
var deleteScript = redis.NewScript(`
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[2])
return 0
`)

// DeleteLogin implements weblogin.Store.
func (s *Store) DeleteLogin(ctx context.Context, session, id string) error {
	err := deleteScript.Run(ctx, s.rdb,
		[]string{s.key("login", session, id), s.key("result", session, id), s.key("pending"), s.key("spending", session)},
		session+":"+id, id).Err()
	if err != nil {
		return fmt.Errorf("redisstore: delete login: %w", err)
	}
	return nil
}

// AcquireLease implements weblogin.Store with SET NX PX: one owner across every replica, until
// it releases the lease or ttl passes (a replica that died while polling blocks nobody longer).
func (s *Store) AcquireLease(ctx context.Context, pollKey, owner string, ttl time.Duration) (bool, error) {
	ok, err := s.rdb.SetNX(ctx, s.key("lease", pollKey), owner, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("redisstore: acquire lease: %w", err)
	}
	return ok, nil
}

// releaseScript deletes the lease only if owner still holds it.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// ReleaseLease implements weblogin.Store.
func (s *Store) ReleaseLease(ctx context.Context, pollKey, owner string) error {
	if err := releaseScript.Run(ctx, s.rdb, []string{s.key("lease", pollKey)}, owner).Err(); err != nil {
		return fmt.Errorf("redisstore: release lease: %w", err)
	}
	return nil
}

// SetPinged implements weblogin.Store with SET NX, so that a login is pinged once (CIBA Core
// §10.2): a flag already recorded, taken or not, stays as it is. It expires after ttl, or 1 s
// when ttl is shorter.
func (s *Store) SetPinged(ctx context.Context, pollKey string, ttl time.Duration) error {
	if err := s.rdb.SetNX(ctx, s.key("ping", pollKey), "1", max(ttl, time.Second)).Err(); err != nil {
		return fmt.Errorf("redisstore: set ping: %w", err)
	}
	return nil
}

// takePingScript turns a ping flag that was not taken ("1") into a taken one ("0"), keeping its
// expiry, and reports whether it did. KEYS: ping.
var takePingScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == '1' then
  redis.call('SET', KEYS[1], '0', 'KEEPTTL')
  return 1
end
return 0
`)

// TakePinged implements weblogin.Store: one caller takes a flag, which stays recorded (taken)
// until it expires.
func (s *Store) TakePinged(ctx context.Context, pollKey string) (bool, error) {
	n, err := takePingScript.Run(ctx, s.rdb, []string{s.key("ping", pollKey)}).Int()
	if err != nil {
		return false, fmt.Errorf("redisstore: take ping: %w", err)
	}
	return n == 1, nil
}

// Publish implements weblogin.Store: PUBLISH on the wake channel.
func (s *Store) Publish(ctx context.Context, pollKey string) error {
	if err := s.rdb.Publish(ctx, s.key("wake"), pollKey).Err(); err != nil {
		return fmt.Errorf("redisstore: publish: %w", err)
	}
	return nil
}

// Subscribe implements weblogin.Store. The first call subscribes this Store to the wake
// channel (one connection per Store, whatever the number of waiters) and waits for Redis to
// confirm, so that no later Publish is missed; wake-ups are then handed out locally by pollkey.
// go-redis resubscribes after a lost connection; wake-ups published meanwhile are lost, and
// weblogin's waiters look again at the next poll time in any case.
func (s *Store) Subscribe(ctx context.Context, pollKey string) (<-chan struct{}, func(), error) {
	if err := s.ensureSubscribed(ctx); err != nil {
		return nil, nil, err
	}
	ch, stop := s.wake.Subscribe(pollKey)
	return ch, stop, nil
}

func (s *Store) ensureSubscribed(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("redisstore: store closed")
	}
	if s.pubsub != nil {
		return nil
	}
	ps := s.rdb.Subscribe(ctx, s.key("wake"))
	if _, err := ps.Receive(ctx); err != nil { // the subscription confirmation
		_ = ps.Close()
		return fmt.Errorf("redisstore: subscribe: %w", err)
	}
	s.pubsub = ps
	s.done = make(chan struct{})
	go s.dispatch(ps.Channel(), s.done)
	return nil
}

func (s *Store) dispatch(msgs <-chan *redis.Message, done chan struct{}) {
	defer close(done)
	for m := range msgs {
		s.wake.Wake(m.Payload)
	}
}

// Close ends the pub/sub subscription and waits for its goroutine. It does not close the
// Redis client, which the caller owns.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	ps, done := s.pubsub, s.done
	s.pubsub = nil
	s.mu.Unlock()
	if ps == nil {
		return nil
	}
	err := ps.Close()
	<-done
	return err
}
