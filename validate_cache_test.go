package onesoidc

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/ones-now/onesoidc/onesoidctest"
)

// TestResultProfileClaims: name, email and roles are on the result, the same on a cache hit as
// on the first validation, and agree with Claims into a struct.
func TestResultProfileClaims(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	c := newValidationClient(t, idp)
	tok := mint(t, idp, nil, func(m map[string]any) {
		m["name"], m["EMAIL"], m["roles"] = "Alice Example", "alice@example.com", []string{"admin", "ops"}
	})
	for _, from := range []string{"validation", "cache"} {
		res := wantAccept(t)(c.ValidateToken(t.Context(), tok))
		if res.Entity.Name != "Alice Example" || res.Entity.Email != "alice@example.com" ||
			!reflect.DeepEqual(res.Roles(), []string{"admin", "ops"}) {
			t.Errorf("%s: name %q email %q roles %q", from, res.Entity.Name, res.Entity.Email, res.Roles())
		}
		var v struct {
			Email string   `json:"email"`
			Roles []string `json:"roles"`
		}
		if err := res.Claims(&v); err != nil || v.Email != res.Entity.Email || !reflect.DeepEqual(v.Roles, res.Roles()) {
			t.Errorf("%s: Claims %+v, %v", from, v, err)
		}
		res.Roles()[0] = "tampered" // a new slice each call
		if res.Roles()[0] != "admin" {
			t.Errorf("%s: Roles shares its slice", from)
		}
	}
	other := wantAccept(t)(c.ValidateToken(t.Context(), mint(t, idp, nil, set("roles", "admin"))))
	if other.Roles() != nil || other.Entity.Name != "" {
		t.Errorf("roles %q name %q, want none", other.Roles(), other.Entity.Name)
	}
}

// TestVerifiedTokenCacheKeepsNoToken: an entry holds the verified claims under a keyed hash of
// the token, never the token's header or signature (a token at rest is a credential).
func TestVerifiedTokenCacheKeepsNoToken(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	c := newValidationClient(t, idp)
	tok := mint(t, idp, nil, nil)
	wantAccept(t)(c.ValidateToken(t.Context(), tok))
	e := c.val.cache.get(tok)
	if e == nil {
		t.Fatal("token not cached")
	}
	parts := strings.Split(tok, ".")
	text := fmt.Sprintf("%+v %+v", *e, e.claims()) // the entry and all the text it points to
	if !strings.Contains(text, `"sub":"`+testSubject+`"`) {
		t.Fatalf("the entry's text is not what this test reads: %.80q", text)
	}
	for _, p := range []string{tok, parts[0], parts[2]} {
		if strings.Contains(text, p) {
			t.Errorf("cache entry holds token text %.20q…", p)
		}
	}
}

// TestCachedTokenChangedAnywhereIsVerifiedAgain: once a token is cached, the same token with
// any one character changed (header, payload or signature) never finds its entry: it is
// verified afresh and refused. The cache key is a keyed hash of the whole token.
func TestCachedTokenChangedAnywhereIsVerifiedAgain(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	c := newValidationClient(t, idp)
	tok := mint(t, idp, nil, nil)
	wantAccept(t)(c.ValidateToken(t.Context(), tok))
	for i := range len(tok) {
		if tok[i] == '.' {
			continue
		}
		b := []byte(tok)
		b[i] = map[bool]byte{true: 'B', false: 'A'}[b[i] == 'A']
		if res, err := c.ValidateToken(t.Context(), string(b)); err == nil {
			t.Fatalf("character %d changed: accepted as %+v", i, res.Entity)
		}
	}
	wantAccept(t)(c.ValidateToken(t.Context(), tok))
}

// TestVerifiedTokenEntryOfATypicalTokenIsSmall: a typical 10-claim ID token costs at most 512
// bytes in the verified-token cache, so that the default budget holds at least 64k users.
func TestVerifiedTokenEntryOfATypicalTokenIsSmall(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	c := newValidationClient(t, idp)
	tok := mint(t, idp, nil, func(m map[string]any) {
		m["preferred_username"], m["scope"], m["amr"] = "alice", "openid profile email", []string{"pwd"}
		m["auth_time"], m["sid"] = m["iat"], "a0f8b1e4-5c7d-4e2a-9b3f-6d1c8e7a2b90"
	})
	wantAccept(t)(c.ValidateToken(t.Context(), tok))
	e := c.val.cache.get(tok)
	if e == nil {
		t.Fatal("token not cached")
	}
	cost := uint64(tokenEntryCost(*e))
	if cost > 512 || defaultTokenCacheBytes/cost < 64<<10 {
		t.Errorf("an entry costs %d bytes (payload %d): %d in the default budget", cost,
			len(e.claims().Payload()), defaultTokenCacheBytes/cost)
	}
}

// TestVerifiedTokenCacheConcurrent: goroutines validating the same and different tokens at
// once (hits, misses, inserts, evictions in a small cache) all get their own subject (run with
// -race).
func TestVerifiedTokenCacheConcurrent(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	idp.UseKey(onesoidctest.NewKey("EdDSA"))
	c := newValidationClient(t, idp)
	c.val.cache = newTokenCache(8 * 512) // a few entries: inserts evict
	toks := make([]string, 32)
	for i := range toks {
		toks[i] = mint(t, idp, nil, set("sub", fmt.Sprint("user-", i)))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				n := (g*7 + i) % len(toks)
				if i%2 == 0 {
					n = 0 // a hot token
				}
				res, err := c.ValidateToken(t.Context(), toks[n])
				if err != nil || res.Entity.Subject != fmt.Sprint("user-", n) {
					t.Errorf("token %d: %v %v", n, res, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if b := c.val.cache.bytes(); b > 8*512 {
		t.Errorf("cache holds %d bytes, budget %d", b, 8*512)
	}
}

// TestValidationAllocationsFlatInClaims: claims nobody reads cost no allocation each: a token
// of 600 claims allocates about as often as one of 10, validated and on a cache hit.
func TestValidationAllocationsFlatInClaims(t *testing.T) {
	idp := onesoidctest.NewInMemory()
	idp.UseKey(onesoidctest.NewKey("EdDSA"))
	allocs := func(n int, cached bool) float64 {
		c := newValidationClient(t, idp)
		if !cached {
			c.val.cache = nil
		}
		tok := mint(t, idp, nil, func(m map[string]any) {
			for i := len(m); i < n; i++ {
				m[fmt.Sprintf("custom_%04d", i)] = i
			}
		})
		wantAccept(t)(c.ValidateToken(t.Context(), tok))
		return testing.AllocsPerRun(20, func() { wantAccept(t)(c.ValidateToken(t.Context(), tok)) })
	}
	for _, cached := range []bool{false, true} {
		few, many := allocs(10, cached), allocs(600, cached) // 600: the token stays under the 16 KiB cached at most
		if many > few+12 {
			t.Errorf("cached %v: %v allocations at 10 claims, %v at 600", cached, few, many)
		}
		if cached && many > 4 {
			t.Errorf("a cache hit allocates %v times, want at most 4", many)
		}
	}
}

// TestWithTokenCacheBytes: the budget sizes the cache, 0 turns it off, a negative one fails
// the constructor.
func TestWithTokenCacheBytes(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	off := newValidationClient(t, idp, WithTokenCacheBytes(0))
	tok := mint(t, idp, nil, nil)
	for range 2 {
		wantAccept(t)(off.ValidateToken(t.Context(), tok))
	}
	if off.val.cache != nil {
		t.Error("cache kept with a budget of 0")
	}
	small := newValidationClient(t, idp, WithTokenCacheBytes(4096))
	for i := range 20 {
		wantAccept(t)(small.ValidateToken(t.Context(), mint(t, idp, nil, set("jti", fmt.Sprint(i)))))
	}
	if b := small.val.cache.bytes(); b == 0 || b > 4096 {
		t.Errorf("%d bytes cached, budget 4096", b)
	}
	if _, err := tryTestClient(t, idp, WithTokenCacheBytes(-1)); err == nil {
		t.Error("negative budget accepted")
	}
}
