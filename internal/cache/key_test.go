package cache

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
)

// TestKeyIsAFunctionOfTheString: a cache gives one string one key, every time.
func TestKeyIsAFunctionOfTheString(t *testing.T) {
	c := New(1<<20, func(int) uint32 { return 64 })
	s := strings.Repeat("eyJhbGciOiJFZERTQSJ9.", 40)
	if c.Key(s) != c.Key(strings.Clone(s)) {
		t.Fatal("two keys for one string")
	}
}

// TestKeyDistinguishesNearStrings: strings that differ in one bit, in length, or by a trailing
// zero byte get distinct keys (GHASH pads its input with zeros; the length block must keep
// "a" and "a\x00" apart).
func TestKeyDistinguishesNearStrings(t *testing.T) {
	c := New(1<<20, func(int) uint32 { return 64 })
	base := []byte(strings.Repeat("x", 100))
	seen := map[Key]string{}
	add := func(s string) {
		k := c.Key(s)
		if prev, dup := seen[k]; dup {
			t.Fatalf("%q and %q share a key", prev, s)
		}
		seen[k] = s
	}
	for n := 0; n <= 64; n++ {
		add(string(base[:n]))
		add(string(base[:n]) + "\x00")
	}
	for i := range base {
		for bit := range 8 {
			b := []byte(string(base))
			b[i] ^= 1 << bit
			add(string(b))
		}
	}
}

// TestKeysAreOwnedByTheCache: two caches key one string differently (their keys are random),
// so that a key learnt from one process or cache says nothing of another.
func TestKeysAreOwnedByTheCache(t *testing.T) {
	a := New(1<<20, func(int) uint32 { return 64 })
	b := New(1<<20, func(int) uint32 { return 64 })
	if a.Key("token") == b.Key("token") {
		t.Fatal("two caches gave one string the same key")
	}
}

// TestKeyWithoutGCMIsHMACSHA256: where AES-GCM is refused (FIPS 140-only mode), the key is
// HMAC-SHA-256 under the cache's key, cut to 16 bytes.
func TestKeyWithoutGCMIsHMACSHA256(t *testing.T) {
	keys := bytes.Repeat([]byte{7}, 32)
	m := hmac.New(sha256.New, keys)
	m.Write([]byte("token"))
	want := Key(m.Sum(nil))
	h := newHasherWith(keys, false)
	for range 2 { // the second time from a pooled, reset HMAC
		if got := h.key("token"); got != want {
			t.Fatalf("key %x, want %x", got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { h.key("token") }); n != 0 && !raceEnabled {
		t.Fatalf("%v allocations per key", n)
	}
}

// TestKeyAllocatesNothing: a key costs no allocation, so that a cache hit allocates only its
// result (not checked under the race detector, whose sync.Pool drops buffers on purpose).
func TestKeyAllocatesNothing(t *testing.T) {
	c := New(1<<20, func(int) uint32 { return 64 })
	s := strings.Repeat("a", 900)
	if n := testing.AllocsPerRun(100, func() { c.Key(s) }); n != 0 && !raceEnabled {
		t.Fatalf("%v allocations per key", n)
	}
}

// BenchmarkKey measures the key of a 43-byte opaque token and of a 905-byte JWT (the 21-claim
// token of BenchmarkClaims) against their SHA-256, the key before.
func BenchmarkKey(b *testing.B) {
	c := New(1<<20, func(int) uint32 { return 64 })
	for _, n := range []int{43, 905} {
		s := strings.Repeat("a", n)
		b.Run(fmt.Sprintf("len=%d/keyed", n), func(b *testing.B) {
			b.SetBytes(int64(len(s)))
			for b.Loop() {
				c.Key(s)
			}
		})
		b.Run(fmt.Sprintf("len=%d/sha256", n), func(b *testing.B) {
			in := []byte(s)
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				sha256.Sum256(in)
			}
		})
	}
}
