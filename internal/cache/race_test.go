//go:build race

package cache

// raceEnabled: the race detector is on, and sync.Pool drops some of what is put back on
// purpose, so allocation counts of pooled paths are not exact.
const raceEnabled = true
