package onesoidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	gojose "github.com/go-jose/go-jose/v4"
	"github.com/ones-now/onesoidc/internal/cache"
	"github.com/ones-now/onesoidc/internal/jose"
	"github.com/ones-now/onesoidc/onesoidctest"
)

// benchAlgs are the algorithms of the validation benchmarks.
var benchAlgs = []string{"RS256", "ES256", "EdDSA"}

// benchSetup is one algorithm's IdP, key and token of realistic claims (iss, sub, aud, exp,
// iat, preferred_username, scope, auth_time, amr, sid).
type benchSetup struct {
	idp *onesoidctest.Server
	key *gojose.JSONWebKey
	tok string
}

var (
	benchSetupsMu sync.Mutex
	benchSetups   = map[string]*benchSetup{}
)

func benchClaims(idp *onesoidctest.Server) map[string]any {
	claims := idp.Claims(testClientID, testSubject)
	claims["exp"] = claims["exp"].(int64) + 3600
	claims["preferred_username"] = "alice"
	claims["scope"] = "openid profile email"
	claims["auth_time"] = claims["iat"]
	claims["amr"] = []string{"pwd"}
	claims["sid"] = "a0f8b1e4-5c7d-4e2a-9b3f-6d1c8e7a2b90"
	return claims
}

// setupFor returns the benchmark setup of alg, made once per process so that every benchmark of
// a run validates the same token.
func setupFor(b *testing.B, alg string) *benchSetup {
	benchSetupsMu.Lock()
	defer benchSetupsMu.Unlock()
	if s := benchSetups[alg]; s != nil {
		return s
	}
	idp := onesoidctest.NewInMemory()
	key := onesoidctest.NewKey(alg)
	idp.UseKey(key)
	tok, err := onesoidctest.MintWith(key, nil, benchClaims(idp))
	if err != nil {
		b.Fatal(err)
	}
	s := &benchSetup{idp: idp, key: key, tok: tok}
	benchSetups[alg] = s
	return s
}

var (
	benchPoolsMu sync.Mutex
	benchPools   = map[string][]string{}
)

// poolFor returns n distinct tokens of alg's setup (each with its own jti), made once.
func poolFor(b *testing.B, s *benchSetup, alg string, n int) []string {
	benchPoolsMu.Lock()
	defer benchPoolsMu.Unlock()
	if p := benchPools[alg]; len(p) >= n {
		return p[:n]
	}
	p := make([]string, n)
	var wg sync.WaitGroup
	var failed atomic.Bool
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				cl := benchClaims(s.idp)
				cl["jti"] = fmt.Sprintf("jti-%d", i)
				tok, err := onesoidctest.MintWith(s.key, nil, cl)
				if err != nil {
					failed.Store(true)
				}
				p[i] = tok
			}
		})
	}
	wg.Wait()
	if failed.Load() {
		b.Fatal("minting the token pool failed")
	}
	benchPools[alg] = p
	return p
}

// rawVerifier returns the floor: the bare signature check of tok with a pre-parsed key.
func rawVerifier(tok string, pub crypto.PublicKey) func() bool {
	dot := strings.LastIndexByte(tok, '.')
	input := []byte(tok[:dot])
	sig, _ := base64.RawURLEncoding.DecodeString(tok[dot+1:])
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return func() bool {
			h := sha256.Sum256(input)
			return rsa.VerifyPKCS1v15(k, crypto.SHA256, h[:], sig) == nil
		}
	case *ecdsa.PublicKey:
		der := jose.ASN1Signature(nil, sig[:32], sig[32:])
		return func() bool {
			h := sha256.Sum256(input)
			return ecdsa.VerifyASN1(k, h[:], der)
		}
	case ed25519.PublicKey:
		return func() bool { return ed25519.Verify(k, input, sig) }
	}
	return nil
}

// missPool and missCacheEntries make the "miss" benchmarks: a verified-token cache that holds
// far fewer tokens than are cycled through it, so that nearly every call verifies, inserts and
// evicts.
const (
	missPool         = 1024
	missCacheEntries = 64
)

// warmUsers is how many other users' tokens the "cached-64k" rows keep in the cache: the
// 64k users the default budget is sized for, so that the heap (about 30 MB) and with it the
// garbage collector's pace are those of a server that holds them.
const warmUsers = 1 << 16

var (
	warmClientsMu sync.Mutex
	warmClients   = map[*benchSetup]*OpenIDConnectClient{}
)

// warmClient returns a client that has validated s.tok and holds warmUsers other users' tokens
// in its cache, made once per process and setup.
func warmClient(b *testing.B, s *benchSetup) *OpenIDConnectClient {
	warmClientsMu.Lock()
	defer warmClientsMu.Unlock()
	if c := warmClients[s]; c != nil {
		return c
	}
	c := newValidationClient(b, s.idp)
	if _, err := c.ValidateToken(context.Background(), s.tok); err != nil {
		b.Fatal(err)
	}
	fillUsers(b, c.val, s.tok, warmUsers)
	warmClients[s] = c
	return c
}

// fillUsers puts n entries into v's verified-token cache, each of its own payload (tok's
// claims and a user number), under keys of their own, as n users' validated tokens would.
func fillUsers(b *testing.B, v *validator, tok string, n int) {
	e := v.cache.get(tok)
	if e == nil {
		b.Fatal("the token is not cached")
	}
	p := e.claims()
	for i := range n {
		payload := p.Payload()[:len(p.Payload())-1] + fmt.Sprintf(`,"user":%d}`, i)
		var cl jose.Claims
		if err := jose.ParseClaims(payload, &cl); err != nil {
			b.Fatal(err)
		}
		kind, alg := kindAlg(p)
		v.cache.c.Set(v.cache.c.Key(fmt.Sprint("user ", i)), newTokenEntry(payload, &cl, kind, alg, e.key))
	}
	if got := v.cache.len(); got < n {
		b.Fatalf("the cache kept %d of %d users", got, n)
	}
}

// verifyImpls returns the implementations that BenchmarkVerify and BenchmarkVerifyParallel
// compare; each returns the function one iteration calls (safe for concurrent use).
func verifyImpls(b *testing.B, alg string) []struct {
	name string
	make func(b *testing.B) func() error
} {
	s := setupFor(b, alg)
	ctx := context.Background()
	pub := s.key.Public().Key
	return []struct {
		name string
		make func(b *testing.B) func() error
	}{
		{"raw", func(b *testing.B) func() error {
			v := rawVerifier(s.tok, pub)
			return func() error {
				if !v() {
					return fmt.Errorf("raw verify failed")
				}
				return nil
			}
		}},
		{"onesoidc-cold", func(b *testing.B) func() error {
			c := newValidationClient(b, s.idp)
			c.val.cache = nil
			if _, err := c.ValidateToken(ctx, s.tok); err != nil { // loads the JWKS
				b.Fatal(err)
			}
			return func() error { _, err := c.ValidateToken(ctx, s.tok); return err }
		}},
		{"onesoidc-miss", func(b *testing.B) func() error {
			pool := poolFor(b, s, alg, missPool)
			c := newValidationClient(b, s.idp)
			c.val.cache = newBenchMissCache()
			if _, err := c.ValidateToken(ctx, s.tok); err != nil {
				b.Fatal(err)
			}
			var next atomic.Uint64
			return func() error {
				_, err := c.ValidateToken(ctx, pool[next.Add(1)%missPool])
				return err
			}
		}},
		{"onesoidc-cached", func(b *testing.B) func() error {
			c := newValidationClient(b, s.idp)
			if _, err := c.ValidateToken(ctx, s.tok); err != nil {
				b.Fatal(err)
			}
			return func() error { _, err := c.ValidateToken(ctx, s.tok); return err }
		}},
		{"onesoidc-cached-kept", func(b *testing.B) func() error {
			c := newValidationClient(b, s.idp)
			if _, err := c.ValidateToken(ctx, s.tok); err != nil {
				b.Fatal(err)
			}
			return func() error { // the result handed on in a context, as middleware does
				res, err := c.ValidateToken(ctx, s.tok)
				if err != nil {
					return err
				}
				if context.WithValue(ctx, keptResult{}, res).Value(keptResult{}) != res {
					return fmt.Errorf("result not kept")
				}
				return nil
			}
		}},
		{"onesoidc-cached-into", func(b *testing.B) func() error {
			c := newValidationClient(b, s.idp)
			if _, err := c.ValidateToken(ctx, s.tok); err != nil {
				b.Fatal(err)
			}
			return func() error {
				var res AuthenticationResult // the caller's: it stays on the stack
				return c.ValidateTokenInto(ctx, s.tok, &res)
			}
		}},
		{"onesoidc-cached-64k", func(b *testing.B) func() error {
			c := warmClient(b, s)
			return func() error { _, err := c.ValidateToken(ctx, s.tok); return err }
		}},
		{"go-oidc", func(b *testing.B) func() error {
			v := oidc.NewVerifier(s.idp.Issuer, &oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{pub}},
				&oidc.Config{ClientID: testClientID, SupportedSigningAlgs: []string{alg}})
			return func() error { _, err := v.Verify(ctx, s.tok); return err }
		}},
	}
}

// BenchmarkVerify measures, per algorithm and in the same run, one goroutine:
//
//   - raw: the floor, only the signature check of the token's signing input with a pre-parsed
//     key (hash + rsa.VerifyPKCS1v15 / ecdsa.VerifyASN1 with a pre-built DER signature /
//     ed25519.Verify);
//   - onesoidc-cold: ValidateToken with the verified-token cache off; the JWKS is cached, so
//     this is the per-token work: parsing, key lookup, signature, claims, result;
//   - onesoidc-miss: ValidateToken of tokens the cache does not hold, cache on: cold plus the
//     insert (and eviction) of the verified token;
//   - onesoidc-cached: ValidateToken of a token validated before, the result read and dropped
//     (it stays on the caller's stack);
//   - onesoidc-cached-kept: the same, the result kept (handed on in a context, as middleware
//     does), so that it is allocated;
//   - onesoidc-cached-into: the same with ValidateTokenInto, into a result of the caller;
//   - onesoidc-cached-64k: a hit with the cache also holding 64k other users' tokens;
//   - go-oidc: oidc.NewVerifier with an oidc.StaticKeySet of the same key, same token.
//
// Run: go test -run '^$' -bench 'BenchmarkVerify' -cpu 1,2 -count 6 . > /tmp/bench.txt
func BenchmarkVerify(b *testing.B) { benchVerify(b, false) }

// BenchmarkVerifyParallel is BenchmarkVerify under b.RunParallel, with one client shared by
// GOMAXPROCS goroutines: run with -cpu 1,2, the ratio of the two ns/op is the speedup.
func BenchmarkVerifyParallel(b *testing.B) { benchVerify(b, true) }

func benchVerify(b *testing.B, parallel bool) {
	for _, alg := range benchAlgs {
		b.Run("alg="+alg, func(b *testing.B) {
			for _, impl := range verifyImpls(b, alg) {
				b.Run("impl="+impl.name, func(b *testing.B) {
					f := impl.make(b)
					b.ReportAllocs()
					b.ResetTimer()
					if !parallel {
						for b.Loop() {
							if err := f(); err != nil {
								b.Fatal(err)
							}
						}
						return
					}
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := f(); err != nil {
								b.Error(err)
								return
							}
						}
					})
				})
			}
		})
	}
}

// claimsToken21 returns a token of 21 claims, as a server that reads user attributes sees them.
func claimsToken21(b *testing.B, s *benchSetup) string {
	cl := benchClaims(s.idp) // 10 claims
	cl["jti"] = "b3c1d2e4-0000-4a5b-8c9d-0e1f2a3b4c5d"
	cl["azp"] = testClientID
	cl["name"] = "Alice Example"
	cl["given_name"] = "Alice"
	cl["family_name"] = "Example"
	cl["email"] = "alice@example.com"
	cl["email_verified"] = true
	cl["locale"] = "en-GB"
	cl["roles"] = []string{"admin", "editor"}
	cl["groups"] = []string{"staff", "ops"}
	cl["tenant"] = "acme"
	if len(cl) != 21 {
		b.Fatalf("%d claims, want 21", len(cl))
	}
	tok, err := onesoidctest.MintWith(s.key, nil, cl)
	if err != nil {
		b.Fatal(err)
	}
	return tok
}

// benchUser is what a server typically reads from a token.
type benchUser struct {
	Subject  string   `json:"sub"`
	Name     string   `json:"name"`
	Username string   `json:"preferred_username"`
	Email    string   `json:"email"`
	Verified bool     `json:"email_verified"`
	Scope    string   `json:"scope"`
	Roles    []string `json:"roles"`
	Groups   []string `json:"groups"`
	Tenant   string   `json:"tenant"`
}

// BenchmarkClaims measures reading claims of a 21-claim EdDSA token on a cache hit:
//
//   - read=none: the cached validation alone;
//   - read=standard: the cached validation and the standard claims a server reads (subject,
//     name, preferred_username, email, scope, roles);
//   - read=struct: the cached validation and Claims(&v) into benchUser.
func BenchmarkClaims(b *testing.B) {
	s := setupFor(b, "EdDSA")
	tok := claimsToken21(b, s)
	ctx := context.Background()
	c := newValidationClient(b, s.idp)
	if _, err := c.ValidateToken(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.Run("read=none", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.ValidateToken(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("read=standard", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			res, err := c.ValidateToken(ctx, tok)
			if err != nil {
				b.Fatal(err)
			}
			if !benchReadStandard(res) {
				b.Fatal("standard claims missing")
			}
		}
	})
	b.Run("read=struct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			res, err := c.ValidateToken(ctx, tok)
			if err != nil {
				b.Fatal(err)
			}
			var u benchUser
			if err := res.Claims(&u); err != nil || u.Email == "" || len(u.Roles) != 2 {
				b.Fatal("claims", err)
			}
		}
	})
}

// BenchmarkClaimsGrowth measures cold validation (cache off) of EdDSA tokens with 21 and with
// 1000 claims: allocations should not grow with claims nobody reads.
func BenchmarkClaimsGrowth(b *testing.B) {
	s := setupFor(b, "EdDSA")
	ctx := context.Background()
	for _, n := range []int{21, 1000} {
		b.Run(fmt.Sprintf("claims=%d", n), func(b *testing.B) {
			cl := benchClaims(s.idp)
			for i := len(cl); i < n; i++ {
				cl[fmt.Sprintf("custom_claim_%04d", i)] = fmt.Sprintf("value %d", i)
			}
			tok, err := onesoidctest.MintWith(s.key, nil, cl)
			if err != nil {
				b.Fatal(err)
			}
			c := newValidationClient(b, s.idp)
			c.val.cache = nil
			if _, err := c.ValidateToken(ctx, tok); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.ValidateToken(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCachedHitParts runs the parts of a cache hit (EdDSA token) under b.RunParallel, one
// client shared, to see which of them scale from 1 to 2 CPUs (run with -cpu 1,2):
//
//   - key: the cache key of the token (the keyed hash);
//   - lookup: key and cache lookup;
//   - clock: the client's clock (time.Now);
//   - lists: allocating the array of a result's one-value lists (32 bytes), what every hit
//     allocates;
//   - result: allocating an empty AuthenticationResult (352 bytes), what a hit whose caller
//     keeps the result allocates too;
//   - hit: the whole ValidateToken, the result dropped.
//
// Each runs with the cache holding the one token (users=1) and with it holding warmUsers other
// users' tokens too (users=64k), whose heap paces the garbage collector as a server's would.
func BenchmarkCachedHitParts(b *testing.B) {
	s := setupFor(b, "EdDSA")
	ctx := context.Background()
	cold := newValidationClient(b, s.idp)
	if _, err := cold.ValidateToken(ctx, s.tok); err != nil {
		b.Fatal(err)
	}
	b.Run("users=1", func(b *testing.B) { benchHitParts(b, cold, s.tok) })
	b.Run("users=64k", func(b *testing.B) { benchHitParts(b, warmClient(b, s), s.tok) })
}

func benchHitParts(b *testing.B, c *OpenIDConnectClient, tok string) {
	ctx := context.Background()
	v := c.val
	parts := []struct {
		name string
		f    func() bool
	}{
		{"key", func() bool { return v.cache.c.Key(tok) != cache.Key{} }},
		{"lookup", func() bool { _, ok := v.cache.c.Get(v.cache.c.Key(tok)); return ok }},
		{"clock", func() bool { return !v.now().IsZero() }},
		{"lists", func() bool { return newLists().aud != nil }},
		{"result", func() bool { return newResult() != nil }},
		{"hit", func() bool { r, err := c.ValidateToken(ctx, tok); return err == nil && r != nil }},
	}
	for _, p := range parts {
		b.Run("part="+p.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if !p.f() {
						b.Error("part failed")
						return
					}
				}
			})
		})
	}
}

// newResult allocates a result on the heap, as a hit whose caller keeps it does (not inlined:
// the result escapes).
//
//go:noinline
func newResult() *AuthenticationResult { return new(AuthenticationResult) }

// newLists allocates the room of a result's lists, as every hit does.
//
//go:noinline
func newLists() listRoom { return newListRoom() }

// keptResult is the context key of the onesoidc-cached-kept rows.
type keptResult struct{}
