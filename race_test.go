//go:build race

package onesoidc

// raceEnabled: the race detector is on; allocation counts of pooled paths are not exact.
const raceEnabled = true
