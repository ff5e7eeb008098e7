// Package interop holds the interop tests of onesoidc against a real OpenID Certified provider,
// panva oidc-provider, run by Node on loopback.
//
// Everything but this file carries the build tag "interop", so `go test ./...` skips the package.
// Run the suite with .ci/interop.sh, or by hand:
//
//	(cd internal/interop/provider && npm ci)
//	go test -race -count=1 -tags interop ./internal/interop/...
//
// The harness (provider_test.go) writes a JSON config, starts provider/server.js, waits for its
// READY line and exposes the issuer, the CIBA admin routes (approve, deny, pending) and the
// provider's stderr, where each provider error event is one line.
package interop
