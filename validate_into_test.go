package onesoidc

import (
	"context"
	"errors"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/ones-now/onesoidc/onesoidctest"
)

// sameResult reports how got (from ValidateTokenInto) differs from want (from ValidateToken):
// every exported field, the roles and the claims must be equal.
func sameResult(t *testing.T, name string, got, want *AuthenticationResult) {
	t.Helper()
	if !reflect.DeepEqual(got.Entity, want.Entity) || got.Kind != want.Kind || got.Algorithm != want.Algorithm ||
		got.KeyID != want.KeyID || !reflect.DeepEqual(got.Roles(), want.Roles()) ||
		!reflect.DeepEqual(got.rawClaims(), want.rawClaims()) {
		t.Errorf("%s:\n into %+v\n want %+v", name, *got, *want)
	}
}

// TestValidateTokenIntoIsValidateToken: for ID tokens, JWT access tokens and opaque tokens, on
// the miss and on cache hits, ValidateTokenInto writes what ValidateToken returns, into one
// result used again for every call.
func TestValidateTokenIntoIsValidateToken(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	c := newValidationClient(t, idp)
	at := func(m map[string]any) { m["client_id"], m["jti"], m["scope"] = testClientID, "j", "read" }
	tokens := map[string]string{
		"id token":                  mint(t, idp, nil, nil),
		"id token, amr and roles":   mint(t, idp, nil, func(m map[string]any) { m["amr"], m["roles"] = []string{"pwd", "otp"}, []string{"a"} }),
		"id token, two audiences":   mint(t, idp, nil, func(m map[string]any) { m["aud"], m["azp"] = []string{testClientID, "other"}, testClientID }),
		"id token, empty amr":       mint(t, idp, nil, set("amr", []string{})),
		"id token, escaped strings": mint(t, idp, nil, set("name", "A \"quoted\" \u00e9")),
		"access token":              mint(t, idp, map[string]any{"typ": "at+jwt"}, at),
	}
	var res AuthenticationResult
	for round := range 2 { // both miss, then both hit
		for name, tok := range tokens {
			want := wantAccept(t)(c.ValidateToken(t.Context(), tok))
			if round == 0 { // ValidateToken's miss cached it: Into misses too
				c.val.cache.c.Delete(c.val.cache.c.Key(tok))
			}
			if err := c.ValidateTokenInto(t.Context(), tok, &res); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			sameResult(t, name, &res, want)
		}
	}
}

// TestValidateTokenIntoOpaque: an opaque token, validated by introspection, gives the result of
// ValidateToken too, on the miss and from the introspection cache.
func TestValidateTokenIntoOpaque(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, _ := opaqueClient(t)
		tok, err := c.RequestDeviceAccessToken(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var res AuthenticationResult
		for range 2 {
			if err := c.ValidateTokenInto(t.Context(), tok.AccessToken, &res); err != nil {
				t.Fatal(err)
			}
			want := wantAccept(t)(c.ValidateToken(t.Context(), tok.AccessToken))
			sameResult(t, "opaque", &res, want)
		}
	})
}

// TestValidateTokenIntoErrorLeavesZero: a token that fails leaves the zero result, whatever the
// result held before (never a result of an earlier token, never a part of one).
func TestValidateTokenIntoErrorLeavesZero(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	c := newValidationClient(t, idp)
	good := mint(t, idp, nil, set("amr", []string{"pwd"}))
	for name, bad := range map[string]string{
		"bad signature": good[:len(good)-4] + "AAAA",
		"expired":       mint(t, idp, nil, func(m map[string]any) { m["iat"], m["exp"] = 1e9, 1e9+60 }),
		"other issuer":  mint(t, idp, nil, set("iss", "https://other.example")),
		"not a token":   "not a token",
	} {
		var res AuthenticationResult
		if err := c.ValidateTokenInto(t.Context(), good, &res); err != nil || res.Entity.Subject == "" {
			t.Fatalf("good token: %v", err)
		}
		if err := c.ValidateTokenInto(t.Context(), bad, &res); err == nil {
			t.Fatalf("%s: accepted", name)
		}
		if !reflect.DeepEqual(res, AuthenticationResult{}) {
			t.Errorf("%s: after the error the result is %+v", name, res)
		}
	}
	var ce *ConfigError
	if err := c.ValidateTokenInto(t.Context(), good, nil); !errors.As(err, &ce) {
		t.Errorf("nil result: %v, want a *ConfigError", err)
	}
}

// TestValidateTokenIntoSharesNothing: a copy of the result keeps its lists when the result is
// used again, and changing the result's lists changes neither the cache nor later results.
func TestValidateTokenIntoSharesNothing(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	c := newValidationClient(t, idp)
	a := mint(t, idp, nil, set("amr", []string{"pwd"}))
	b := mint(t, idp, nil, func(m map[string]any) {
		m["aud"], m["azp"], m["amr"] = []string{testClientID, "x"}, testClientID, []string{"otp"}
	})
	var res AuthenticationResult
	for range 2 { // the miss, then a hit
		if err := c.ValidateTokenInto(t.Context(), a, &res); err != nil {
			t.Fatal(err)
		}
		kept := res
		if err := c.ValidateTokenInto(t.Context(), b, &res); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(kept.Entity.Audience, []string{testClientID}) || !slices.Equal(kept.Entity.AuthMethods, []string{"pwd"}) {
			t.Fatalf("the copy changed with the result: %q %q", kept.Entity.Audience, kept.Entity.AuthMethods)
		}
		res.Entity.Audience[0], res.Entity.AuthMethods[0] = "tampered", "tampered"
		again := wantAccept(t)(c.ValidateToken(t.Context(), b))
		if again.Entity.Audience[0] != testClientID || again.Entity.AuthMethods[0] != "otp" {
			t.Fatalf("the cache changed with the result: %q %q", again.Entity.Audience, again.Entity.AuthMethods)
		}
	}
}

// TestValidateTokenIntoAllocatesOnlyItsLists: a cache hit into a result the caller owns
// allocates one array for the token's one-value audience and amr lists (32 bytes), never a
// result.
func TestValidateTokenIntoAllocatesOnlyItsLists(t *testing.T) {
	idp := onesoidctest.NewInMemory()
	c := newValidationClient(t, idp)
	tok := mint(t, idp, nil, set("amr", []string{"pwd"}))
	wantAccept(t)(c.ValidateToken(t.Context(), tok))
	ctx := t.Context()
	n := testing.AllocsPerRun(200, func() {
		var res AuthenticationResult
		if c.ValidateTokenInto(ctx, tok, &res) != nil {
			panic("rejected")
		}
	})
	limit := 1.0
	if raceEnabled {
		limit = 2 // the race detector's sync.Pool drops some of what is put back, on purpose
	}
	if n > limit {
		t.Errorf("%v allocations per cached validation into a result of the caller", n)
	}
}

// TestValidateTokenResultOfACallerThatDropsItIsOnTheStack: ValidateToken, VerifyAccessToken and
// VerifyIDToken inline, so a caller that reads the result and drops it has it on its own stack:
// a cache hit allocates only the 32-byte array of the one-value lists (as ValidateTokenInto),
// not the result. A caller that keeps the result (here in a context, as middleware does)
// allocates it too. A refused token allocates only its error.
func TestValidateTokenResultOfACallerThatDropsItIsOnTheStack(t *testing.T) {
	idp := onesoidctest.NewInMemory()
	c := newValidationClient(t, idp)
	tok := mint(t, idp, nil, set("amr", []string{"pwd"}))
	at := mint(t, idp, map[string]any{"typ": "at+jwt"}, func(m map[string]any) {
		m["client_id"], m["jti"] = testClientID, "j1"
	})
	wantAccept(t)(c.ValidateToken(t.Context(), tok))
	wantAccept(t)(c.VerifyAccessToken(t.Context(), at))
	ctx := t.Context()
	huge := strings.Repeat("A", 64<<10+1) // refused before anything is parsed
	type resultKey struct{}
	var kept context.Context
	slack := uint64(0)
	if raceEnabled || testing.CoverMode() != "" {
		// The race detector's sync.Pool drops some of what is put back, on purpose; coverage
		// counters can put the methods over the inlining budget.
		slack = 1024
	}
	for _, tc := range []struct {
		name  string
		bytes uint64 // at most, per call
		call  func()
	}{
		{"ValidateToken, result dropped", 64, func() {
			res, err := c.ValidateToken(ctx, tok)
			if err != nil || res.Entity.Subject == "" {
				panic("rejected")
			}
		}},
		{"VerifyAccessToken, result dropped", 64, func() {
			res, err := c.VerifyAccessToken(ctx, at)
			if err != nil || res.Entity.ClientID != testClientID {
				panic("rejected")
			}
		}},
		{"ValidateToken, result kept", 512, func() { // the result, its lists, the context
			res, err := c.ValidateToken(ctx, tok)
			if err != nil {
				panic("rejected")
			}
			kept = context.WithValue(ctx, resultKey{}, res)
		}},
		{"ValidateToken, refused", 128, func() { // the error
			if res, err := c.ValidateToken(ctx, huge); err == nil || res != nil {
				panic("accepted")
			}
		}},
	} {
		if n := bytesPerRun(1000, tc.call); n > tc.bytes+slack {
			t.Errorf("%s: %d bytes allocated per call, want at most %d", tc.name, n, tc.bytes+slack)
		}
	}
	if kept.Value(resultKey{}).(*AuthenticationResult).Entity.Subject == "" {
		t.Error("the kept result is empty")
	}
}

// bytesPerRun returns the bytes f allocates per call, on average over runs (after one warm-up
// call), as testing.AllocsPerRun counts allocations; the test must not run in parallel.
func bytesPerRun(runs int, f func()) uint64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	f()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}
