package onesoidc

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/ones-now/onesoidc/internal/cache"
	"github.com/ones-now/onesoidc/onesoidctest"
)

// newBenchMissCache returns a verified-token cache far smaller than missPool.
func newBenchMissCache() *tokenCache { return newTokenCache(missCacheEntries * 512) }

// benchReadStandard reads the standard claims a server needs from res.
func benchReadStandard(res *AuthenticationResult) bool {
	return res.Entity.Subject != "" && res.Entity.Username != "" && res.Entity.Scope != "" &&
		res.Entity.Name != "" && res.Entity.Email != "" && len(res.Roles()) == 2
}

// BenchmarkTokenCacheEntrySize validates 5000 distinct EdDSA tokens (the BenchmarkVerify
// claims, each with its own jti) into an empty verified-token cache with the default bounds and
// reports the heap each cached token holds (B/entry) and how many of them the cache kept.
func BenchmarkTokenCacheEntrySize(b *testing.B) {
	const n = 5000 // away from a power of two, where hash tables double
	s := setupFor(b, "EdDSA")
	pool := poolFor(b, s, "EdDSA", n)
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		c := newValidationClient(b, s.idp)
		if _, err := c.ValidateToken(ctx, s.tok); err != nil {
			b.Fatal(err)
		}
		reportHeapPerEntry(b, func() {
			for _, tok := range pool {
				if _, err := c.ValidateToken(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		}, c.val.cache.len)
		b.StartTimer()
	}
}

// reportHeapPerEntry runs fill, timed, between two garbage collections and reports the growth of
// the heap over the entries kept (B/entry) and their number.
func reportHeapPerEntry(b *testing.B, fill func(), kept func() int) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.StartTimer()
	fill()
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	n := kept() // and the cache stays alive until here
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "B/entry")
	b.ReportMetric(float64(n), "entries")
}

// BenchmarkTokenCacheZipf measures the hit rate of the verified-token cache, default budget,
// when users (one token each) come back Zipf-distributed (s = 1.01) over 100k and 1M users:
// hit% after a warm-up of 2M requests, and the cost of a lookup (and insert on a miss). Entries
// are those of the benchmark token, under keys made from the user number.
func BenchmarkTokenCacheZipf(b *testing.B) {
	s := setupFor(b, "EdDSA")
	for _, users := range []uint64{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("users=%dk", users/1000), func(b *testing.B) {
			c := newValidationClient(b, s.idp)
			if _, err := c.ValidateToken(context.Background(), s.tok); err != nil {
				b.Fatal(err)
			}
			e := *c.val.cache.get(s.tok)
			t := newTokenCache(defaultTokenCacheBytes)
			z := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), 1.01, 1, users-1)
			key := func() cache.Key {
				var k cache.Key
				binary.LittleEndian.PutUint64(k[:], z.Uint64())
				return t.c.Key(string(k[:])) // the cache's own key, as for a token
			}
			for range 2_000_000 {
				if k := key(); !has(t, k) {
					t.c.Set(k, e)
				}
			}
			hits := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if k := key(); !has(t, k) {
					t.c.Set(k, e)
				} else {
					hits++
				}
			}
			b.ReportMetric(100*float64(hits)/float64(b.N), "hit%")
			b.ReportMetric(float64(t.len()), "entries")
		})
	}
}

func has(t *tokenCache, k cache.Key) bool {
	_, ok := t.c.Get(k)
	return ok
}

// BenchmarkIntrospectionCacheEntrySize validates 5000 distinct opaque tokens, each introspected
// into the typical answer of a user token (typicalIntrospection, 250 bytes), into an empty
// introspection cache with the default budget, and reports the heap each cached answer holds
// (B/entry) and how many of them the cache kept. The provider's answer is parsed as
// IntrospectToken does, without the HTTP exchange (whose mock IdP keeps a log of every request).
func BenchmarkIntrospectionCacheEntrySize(b *testing.B) {
	const n = 5000 // away from a power of two, where hash tables double
	idp := onesoidctest.NewInMemory(onesoidctest.WithOpaqueAccessTokens())
	body := typicalIntrospection()
	pool := make([]string, n)
	for i := range pool {
		pool[i] = fmt.Sprintf("%043d", i) // the length of a ONES token
	}
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		c := newTestClient(b, idp, testKey(b, "EdDSA"))
		c.val.intro.introspect = func(context.Context, string) (*IntrospectionResult, error) {
			return mustParseIntrospection(b, slices.Clone(body)), nil // a body of its own, as read
		}
		reportHeapPerEntry(b, func() {
			for _, tok := range pool {
				if _, err := c.ValidateToken(ctx, tok, ExpectAudience("https://api.example")); err != nil {
					b.Fatal(err)
				}
			}
		}, c.val.intro.len)
		b.StartTimer()
	}
}
