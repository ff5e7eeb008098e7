//go:build !race

package onesoidc

const raceEnabled = false
