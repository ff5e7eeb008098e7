package weblogin

import (
	"context"
	"slices"
	"sync"
	"time"
)

// MemoryStore is the Store of one process: every replica that uses its own MemoryStore sees
// only its own logins. It is the default of Config.Store. It is safe for concurrent use.
type MemoryStore struct {
	mu      sync.Mutex
	logins  map[memKey]*memEntry
	byPoll  map[string]memKey
	leases  map[string]memLease
	pinged  map[string]memPing // poll key -> ping flag
	wake    Wakeups
	lastNow time.Time // the latest now a caller passed, for expiring leases and flags
}

type memKey struct{ session, id string }

type memEntry struct {
	login  Login
	sealed []byte
}

// memPing is a ping flag: until when it is kept, and whether a poll took it.
type memPing struct {
	until time.Time
	taken bool
}

type memLease struct {
	owner string
	until time.Time
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		logins: map[memKey]*memEntry{},
		byPoll: map[string]memKey{},
		leases: map[string]memLease{},
		pinged: map[string]memPing{},
	}
}

func (s *MemoryStore) tick(now time.Time) {
	if now.After(s.lastNow) {
		s.lastNow = now
	}
}

// CreateLogin implements Store. Records past their KeepUntil are dropped first.
func (s *MemoryStore) CreateLogin(_ context.Context, l *Login, now time.Time, lim Limits) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tick(now)
	total, session := 0, 0
	for k, e := range s.logins {
		if !e.login.KeepUntil.After(now) {
			s.dropLocked(k)
			continue
		}
		if e.login.State == StatePending && e.login.Expiry.After(now) {
			total++
			if k.session == l.Session {
				session++
			}
		}
	}
	if session >= lim.PerSession {
		return ErrSessionFull
	}
	if total >= lim.Total {
		return ErrStoreFull
	}
	k := memKey{l.Session, l.ID}
	s.logins[k] = &memEntry{login: *l}
	if l.PollKey != "" {
		s.byPoll[l.PollKey] = k
	}
	return nil
}

func (s *MemoryStore) dropLocked(k memKey) {
	if e := s.logins[k]; e != nil && e.login.PollKey != "" && s.byPoll[e.login.PollKey] == k {
		delete(s.byPoll, e.login.PollKey)
	}
	delete(s.logins, k)
}

// GetLogin implements Store.
func (s *MemoryStore) GetLogin(_ context.Context, session, id string) (*Login, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.logins[memKey{session, id}]
	if e == nil {
		return nil, ErrNotFound
	}
	l := e.login
	return &l, nil
}

// LoginByPollKey implements Store.
func (s *MemoryStore) LoginByPollKey(_ context.Context, pollKey string) (*Login, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.byPoll[pollKey]
	if !ok || s.logins[k] == nil {
		return nil, ErrNotFound
	}
	l := s.logins[k].login
	return &l, nil
}

// UpdateLogin implements Store.
func (s *MemoryStore) UpdateLogin(_ context.Context, l *Login, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tick(now)
	k := memKey{l.Session, l.ID}
	e := s.logins[k]
	if e == nil {
		return ErrNotFound
	}
	e.login = *l
	if l.PollKey != "" {
		s.byPoll[l.PollKey] = k
	}
	return nil
}

// FinishLogin implements Store.
func (s *MemoryStore) FinishLogin(_ context.Context, l *Login, sealed []byte, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tick(now)
	e := s.logins[memKey{l.Session, l.ID}]
	if e == nil {
		return ErrNotFound
	}
	e.login = *l
	e.sealed = slices.Clone(sealed)
	return nil
}

// TakeResult implements Store.
func (s *MemoryStore) TakeResult(_ context.Context, session, id string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.logins[memKey{session, id}]
	if e == nil {
		return nil, nil
	}
	out := e.sealed
	e.sealed = nil
	return out, nil
}

// DeleteLogin implements Store.
func (s *MemoryStore) DeleteLogin(_ context.Context, session, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropLocked(memKey{session, id})
	return nil
}

// AcquireLease implements Store. Leases expire on the clock of the callers' now (the latest
// seen by CreateLogin, UpdateLogin and FinishLogin) or the real clock, whichever is later.
func (s *MemoryStore) AcquireLease(_ context.Context, pollKey, owner string, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if l, ok := s.leases[pollKey]; ok && l.until.After(now) && l.owner != owner {
		return false, nil
	}
	s.leases[pollKey] = memLease{owner: owner, until: now.Add(ttl)}
	return true, nil
}

func (s *MemoryStore) now() time.Time {
	if n := time.Now(); n.After(s.lastNow) {
		return n
	}
	return s.lastNow
}

// ReleaseLease implements Store.
func (s *MemoryStore) ReleaseLease(_ context.Context, pollKey, owner string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.leases[pollKey]; ok && l.owner == owner {
		delete(s.leases, pollKey)
	}
	return nil
}

// SetPinged implements Store: a flag already recorded for pollKey, taken or not, stays as it is.
func (s *MemoryStore) SetPinged(_ context.Context, pollKey string, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if len(s.pinged) > 2*len(s.logins)+64 { // drop stale flags; the map stays bounded
		for k, p := range s.pinged {
			if !p.until.After(now) {
				delete(s.pinged, k)
			}
		}
	}
	if p, ok := s.pinged[pollKey]; ok && p.until.After(now) {
		return nil
	}
	s.pinged[pollKey] = memPing{until: now.Add(ttl)}
	return nil
}

// TakePinged implements Store: one caller takes a flag, which stays recorded (taken) until its
// ttl, so that a repeated ping finds it and is not recorded again.
func (s *MemoryStore) TakePinged(_ context.Context, pollKey string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pinged[pollKey]
	if !ok || p.taken || !p.until.After(s.now()) {
		return false, nil
	}
	p.taken = true
	s.pinged[pollKey] = p
	return true, nil
}

// Publish implements Store.
func (s *MemoryStore) Publish(_ context.Context, pollKey string) error {
	s.wake.Wake(pollKey)
	return nil
}

// Subscribe implements Store.
func (s *MemoryStore) Subscribe(_ context.Context, pollKey string) (<-chan struct{}, func(), error) {
	ch, stop := s.wake.Subscribe(pollKey)
	return ch, stop, nil
}
