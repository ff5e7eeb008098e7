package onesoidc

import (
	"strings"
	"sync"

	"github.com/ones-now/onesoidc/internal/jose"
)

// The verified-token cache: a token that passed every check once is answered from memory, so
// that a resource server seeing the same bearer token on every request pays for one signature
// verification. Entries are keyed by the exact token string, hold the claims needed to run the
// time and per-call checks again, and die with the key that verified them.

// Bounds of the verified-token cache.
const (
	defaultTokenCacheEntries = 10_000
	defaultTokenCacheBytes   = 16 << 20 // of token text
	maxCachedToken           = 16 << 10 // longer tokens are not cached
)

type cacheEntry struct {
	key    *jwk
	kind   TokenKind
	alg    jose.Alg
	claims jose.Claims
	result AuthenticationResult
}

// tokenCache is safe for concurrent use.
type tokenCache struct {
	maxEntries, maxBytes int

	mu      sync.RWMutex
	entries map[string]*cacheEntry
	bytes   int
}

func newTokenCache(maxEntries, maxBytes int) *tokenCache {
	return &tokenCache{maxEntries: maxEntries, maxBytes: maxBytes, entries: make(map[string]*cacheEntry)}
}

// get returns the entry of raw, unless the key that verified it has left the provider's JWKS.
func (t *tokenCache) get(raw string) *cacheEntry {
	t.mu.RLock()
	e := t.entries[raw]
	t.mu.RUnlock()
	if e != nil && e.key.retired.Load() {
		t.remove(raw)
		return nil
	}
	return e
}

// put adds an entry, first evicting some entries when a bound is reached. Map iteration order is
// unspecified, so eviction drops arbitrary entries: simple and O(1) amortized.
func (t *tokenCache) put(raw string, e *cacheEntry) {
	if len(raw) > maxCachedToken {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.entries[raw]; ok {
		return
	}
	if len(t.entries) >= t.maxEntries || t.bytes+len(raw) > t.maxBytes {
		drop := max(t.maxEntries/16, 1)
		for k := range t.entries {
			if drop == 0 && len(t.entries) < t.maxEntries && t.bytes+len(raw) <= t.maxBytes {
				break
			}
			delete(t.entries, k)
			t.bytes -= len(k)
			drop = max(drop-1, 0)
		}
	}
	t.entries[strings.Clone(raw)] = e // do not pin the caller's buffer
	t.bytes += len(raw)
}

func (t *tokenCache) remove(raw string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.entries[raw]; ok {
		delete(t.entries, raw)
		t.bytes -= len(raw)
	}
}

// dropRetired removes the entries verified by keys that left the provider's JWKS.
func (t *tokenCache) dropRetired() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, e := range t.entries {
		if e.key.retired.Load() {
			delete(t.entries, k)
			t.bytes -= len(k)
		}
	}
}

// len returns the number of entries.
func (t *tokenCache) len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.entries)
}
