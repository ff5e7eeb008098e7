package cache

import (
	"crypto/sha256"
	"runtime"
	"testing"

	"github.com/maypok86/otter/v2/stats"
)

// key returns a distinct key for each i, spread as a hash is.
func key(i int) Key {
	sum := sha256.Sum256([]byte(string(rune('a'+i%26)) + string(rune(i))))
	return Key(sum[:16])
}

// TestBudgetBoundsCost: whatever is written, the entries never cost more than the budget.
func TestBudgetBoundsCost(t *testing.T) {
	c := New(10_000, func(v int) uint32 { return uint32(v) })
	for i := range 5000 {
		c.Set(key(i), 100+i%400)
		if cost := c.Cost(); cost > 10_000 {
			t.Fatalf("after %d writes: cost %d over the budget", i+1, cost)
		}
	}
	if n := c.Len(); n == 0 || n > 100 {
		t.Errorf("%d entries of at least 100 bytes in 10,000", n)
	}
}

// TestLargeValueNotStored: a value over an eighth of the budget is not stored, so one entry
// cannot empty the cache.
func TestLargeValueNotStored(t *testing.T) {
	c := New(8000, func(v int) uint32 { return uint32(v) })
	c.Set(key(1), 100)
	c.Set(key(2), 1001)
	if _, ok := c.Get(key(2)); ok {
		t.Error("a value of 1001 bytes stored in a budget of 8000")
	}
	if v, ok := c.Get(key(1)); !ok || v != 100 {
		t.Errorf("Get = %v, %v", v, ok)
	}
}

// TestDeleteAndDeleteFunc: entries go by key and by predicate.
func TestDeleteAndDeleteFunc(t *testing.T) {
	c := New(1<<20, func(int) uint32 { return 64 })
	for i := range 10 {
		c.Set(key(i), i)
	}
	c.Delete(key(0))
	c.DeleteFunc(func(v int) bool { return v%2 == 1 })
	for i := range 10 {
		_, ok := c.Get(key(i))
		if want := i != 0 && i%2 == 0; ok != want {
			t.Errorf("entry %d present %v, want %v", i, ok, want)
		}
	}
	if n := c.Len(); n != 4 {
		t.Errorf("Len = %d, want 4", n)
	}
}

// TestZeroBudgetKeepsNothing: a budget of 0 is a cache that keeps nothing.
func TestZeroBudgetKeepsNothing(t *testing.T) {
	c := New(0, func(int) uint32 { return 1 })
	c.Set(key(1), 1)
	c.Delete(key(1))
	c.DeleteFunc(func(int) bool { return true })
	if _, ok := c.Get(key(1)); ok || c.Len() != 0 || c.Cost() != 0 {
		t.Error("a cache of budget 0 kept an entry")
	}
}

// TestNoGoroutines: the cache starts no goroutine, so that it needs no Close and works in
// testing/synctest bubbles.
func TestNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	c := New(1<<20, func(int) uint32 { return 64 })
	for i := range 10_000 {
		c.Set(key(i), i)
		c.Get(key(i / 2))
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines, %d before", n, before)
	}
}

// TestReadsRecordThemselvesOnceTheCacheEvicts: before the cache first evicts an entry for room,
// about one hit in primeEvery records itself in the policy (otter counts the hits it records);
// deletes and replacements are not evictions; from the first eviction for room on, every hit
// records itself.
func TestReadsRecordThemselvesOnceTheCacheEvicts(t *testing.T) {
	rec := stats.NewCounter()
	c := newWith(100*64, func(int) uint32 { return 64 }, rec) // room for 100 entries
	for i := range 50 {
		c.Set(key(i), i)
	}
	const reads = 3200
	for i := range reads {
		if _, ok := c.Get(key(i % 50)); !ok {
			t.Fatalf("entry %d missing", i%50)
		}
	}
	// Binomial(3200, 1/16): mean 200, standard deviation 14.
	if got := rec.Snapshot().Hits; got < reads/primeEvery/2 || got > reads/primeEvery*2 {
		t.Errorf("before any eviction, %d of %d hits recorded, want about %d", got, reads, reads/primeEvery)
	}
	c.Delete(key(0))
	c.Set(key(1), 1)
	c.Len()
	if c.full.Load() {
		t.Fatal("a delete or a replacement counted as an eviction for room")
	}
	for i := 50; i < 400; i++ {
		c.Set(key(i), i)
	}
	c.Len() // pending maintenance evicts
	if !c.full.Load() {
		t.Fatal("400 entries in room for 100 and no eviction seen")
	}
	present := -1
	for i := range 400 {
		if _, ok := c.c.GetEntryQuietly(key(i)); ok {
			present = i
			break
		}
	}
	if present < 0 {
		t.Fatal("no entry left")
	}
	before := rec.Snapshot().Hits
	for range reads {
		c.Get(key(present))
	}
	if got := rec.Snapshot().Hits - before; got != reads {
		t.Errorf("after an eviction, %d of %d hits recorded, want all", got, reads)
	}
}
