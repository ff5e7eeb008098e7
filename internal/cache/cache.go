// Package cache is the bounded in-memory cache of the client's verified answers: tokens whose
// signature and claims were checked, and introspection answers (RFC 7662). Entries are keyed by
// a 16-byte keyed hash of what they answer (Cache.Key: the token itself is never kept) and
// bounded by their total cost in bytes, not by their number, so that a budget holds as many
// entries as fit in it whatever their size.
//
// Eviction is github.com/maypok86/otter/v2 (W-TinyLFU: admission by an estimate of how often a
// key was asked for, so that a working set larger than the budget keeps its most asked-for part
// instead of thrashing), configured to start no goroutine: maintenance runs on the calling
// goroutine when a write needs it, and entries do not expire by time (callers check the expiry
// they keep in the value on every hit and Delete what has expired). Reads take no lock; writes
// lock one hash-table bucket.
//
// Reads record themselves in the policy (otter's read buffer: a compare-and-swap on a ring
// shared by the goroutines that hash to it, drained into the frequency sketch and the LRU
// queues every 16 reads) only once the cache has evicted an entry for room. Before that the
// policy decides nothing, so recording every read would be shared writes and cache misses for
// no gain: one read in 16 records itself, to give the sketch the frequencies it needs at the
// first eviction. From the first eviction on, every read records itself, as a W-TinyLFU cache
// needs to keep the most asked-for part of a working set larger than its budget.
package cache

import (
	"context"
	"math/rand/v2"
	"sync/atomic"

	"github.com/maypok86/otter/v2"
	"github.com/maypok86/otter/v2/stats"
)

// Overhead is the cost, in bytes, that the cache itself adds to every entry beyond what the
// value points to (the 64-byte node with its header, the key and a value of up to two pointers,
// its share of the hash table and of the frequency sketch; measured with 5,000 to 20,000
// entries), to be counted by a cost function.
const Overhead = 120

// Cache is a concurrent cache of values of type V keyed by a Key, bounded by the sum of the
// costs of its entries. It is safe for concurrent use. The zero value is not usable: use New.
type Cache[V any] struct {
	c      *otter.Cache[Key, V]
	budget uint64
	cost   func(V) uint32
	h      *hasher
	full   atomic.Bool // an entry was evicted for room: every read records itself from then on
}

// primeEvery is one in how many reads records itself before the first eviction (a power of 2).
const primeEvery = 16

// New returns a cache that keeps entries of total cost at most budget (bytes); cost returns
// the bytes one entry holds, Overhead included. A budget of 0 is a cache that keeps nothing.
func New[V any](budget uint64, cost func(V) uint32) *Cache[V] {
	return newWith(budget, cost, nil)
}

// newWith is New with otter's statistics recorded in rec (nil for none), for tests.
func newWith[V any](budget uint64, cost func(V) uint32, rec stats.Recorder) *Cache[V] {
	c := &Cache[V]{budget: budget, cost: cost, h: newHasher()}
	if budget == 0 {
		return c
	}
	c.c = otter.Must(&otter.Options[Key, V]{
		MaximumWeight: budget,
		Weigher:       func(_ Key, v V) uint32 { return cost(v) },
		Executor:      func(fn func()) { fn() }, // no goroutines: maintenance on the caller's
		Logger:        quiet{},
		StatsRecorder: rec,
		OnAtomicDeletion: func(e otter.DeletionEvent[Key, V]) {
			if e.Cause == otter.CauseOverflow && !c.full.Load() { // one store, then reads only
				c.full.Store(true)
			}
		},
	})
	return c
}

// Key returns the key of s in this cache: a keyed hash of s under keys of this cache alone (see
// hasher), so that no one can make a string that finds another's entry.
func (c *Cache[V]) Key(s string) Key { return c.h.key(s) }

// Get returns the value of k, if the cache has it. Until the cache first evicts an entry for
// room, one read in primeEvery records itself in the policy (see the package doc); after that,
// every read does.
func (c *Cache[V]) Get(k Key) (V, bool) {
	if c.c == nil {
		var zero V
		return zero, false
	}
	if !c.full.Load() && rand.Uint32()&(primeEvery-1) != 0 {
		e, ok := c.c.GetEntryQuietly(k)
		return e.Value, ok
	}
	return c.c.GetIfPresent(k)
}

// Set stores v under k, replacing what was there. A value that costs more than an eighth of the
// budget is not stored, so that one large entry cannot empty the cache.
func (c *Cache[V]) Set(k Key, v V) {
	if c.c == nil || uint64(c.cost(v)) > c.budget/8 {
		return
	}
	c.c.Set(k, v)
}

// Delete removes the entry of k, if any.
func (c *Cache[V]) Delete(k Key) {
	if c.c != nil {
		c.c.Invalidate(k)
	}
}

// DeleteFunc removes every entry whose value drop reports true for.
func (c *Cache[V]) DeleteFunc(drop func(V) bool) {
	if c.c == nil {
		return
	}
	for k, v := range c.c.All() {
		if drop(v) {
			c.c.Invalidate(k)
		}
	}
}

// Len returns the number of entries, after pending maintenance.
func (c *Cache[V]) Len() int {
	if c.c == nil {
		return 0
	}
	c.c.CleanUp()
	return c.c.EstimatedSize()
}

// Cost returns the total cost of the entries, after pending maintenance.
func (c *Cache[V]) Cost() uint64 {
	if c.c == nil {
		return 0
	}
	c.c.CleanUp()
	return c.c.WeightedSize()
}

// quiet drops otter's log messages: they are about loaders and refreshes, which this package
// does not use, and a library must not write to the global logger.
type quiet struct{}

func (quiet) Warn(context.Context, string, error)  {}
func (quiet) Error(context.Context, string, error) {}
