package onesoidc

import (
	"github.com/ones-now/onesoidc/internal/cache"
	"github.com/ones-now/onesoidc/internal/jose"
)

// The verified-token cache: a token that passed every check once is answered from memory, so
// that a resource server seeing the same bearer token on every request pays for one signature
// verification. Entries are keyed by a keyed hash of the token (cache.Cache.Key; never the
// token itself), hold the verified claims in packed form (jose.Packed: the payload once, and
// where each claim lies in it) to run the time and per-call checks again and build the result,
// and die with the key that verified them. The cache is bounded by memory (defaultTokenCacheBytes), not by a count.

// defaultTokenCacheBytes is the memory the verified-token cache of a client may hold
// (WithTokenCacheBytes): 64 MiB, about 140,000 tokens of a typical 10-claim ID token (about 475
// bytes an entry, its 267-byte payload included), so that a server's active users stay cached.
// Eviction keeps the tokens asked for most often (W-TinyLFU), so a working set larger than the
// budget keeps a high hit rate.
const defaultTokenCacheBytes = 64 << 20

// maxCachedToken: longer tokens are not cached.
const maxCachedToken = 16 << 10

// tokenEntry is what a cache hit needs, held in the cache's own node (two pointers, no
// allocation of its own): the verified claims with the kind of token and its alg in their tag
// (jose.Packed, by the start of its text), and the key that verified them (to drop the entry
// when the key leaves the provider's JWKS, and for the result's KeyID).
type tokenEntry struct {
	text *byte // jose.PackedAt
	key  *jwk
}

// newTokenEntry returns the entry of verified claims cl of payload.
func newTokenEntry(payload string, cl *jose.Claims, kind TokenKind, alg jose.Alg, key *jwk) tokenEntry {
	return tokenEntry{text: jose.Pack(payload, cl, uint16(kind)<<8|uint16(alg)).Ptr(), key: key}
}

// claims returns the packed claims, whose tag holds the kind of token and its alg (kindAlg).
func (e tokenEntry) claims() jose.Packed { return jose.PackedAt(e.text) }

// kindAlg returns the kind of token and the alg in the tag of claims packed by newTokenEntry.
func kindAlg(p jose.Packed) (TokenKind, jose.Alg) {
	tag := p.Tag()
	return TokenKind(tag >> 8), jose.Alg(tag)
}

// tokenCache is the verified-token cache; it is safe for concurrent use. Entries are immutable:
// results share their text.
type tokenCache struct {
	c *cache.Cache[tokenEntry]
}

// newTokenCache returns a verified-token cache of budget bytes.
func newTokenCache(budget uint64) *tokenCache {
	return &tokenCache{c: cache.New(budget, tokenEntryCost)}
}

// tokenEntryCost is the memory an entry holds: the cache's overhead (its node holds the entry)
// and the text, rounded up to 32 bytes (the allocator's size classes near 300 bytes).
func tokenEntryCost(e tokenEntry) uint32 {
	return uint32(cache.Overhead + (e.claims().Bytes()+31)&^31)
}

// dropRetired removes the entries verified by keys that left the provider's JWKS.
func (t *tokenCache) dropRetired() {
	t.c.DeleteFunc(func(e tokenEntry) bool { return e.key.retired.Load() })
}

// get returns the entry of raw, unless the key that verified it has left the provider's JWKS
// (then the entry is dropped).
func (t *tokenCache) get(raw string) *tokenEntry {
	k := t.c.Key(raw)
	e, ok := t.c.Get(k)
	if !ok {
		return nil
	}
	if e.key.retired.Load() {
		t.c.Delete(k)
		return nil
	}
	return &e
}

// len returns the number of entries.
func (t *tokenCache) len() int { return t.c.Len() }

// bytes returns the memory the entries hold, as tokenEntryCost counts it.
func (t *tokenCache) bytes() uint64 { return t.c.Cost() }
