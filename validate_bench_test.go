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
	"github.com/ones-now/onesoidc/internal/jose"
	"github.com/ones-now/onesoidc/internal/mockidp"
)

// benchAlgs are the algorithms of the validation benchmarks.
var benchAlgs = []string{"RS256", "ES256", "EdDSA"}

// benchSetup is one algorithm's IdP, key and token of realistic claims (iss, sub, aud, exp,
// iat, preferred_username, scope, auth_time, amr, sid).
type benchSetup struct {
	idp *mockidp.IdP
	key *gojose.JSONWebKey
	tok string
}

var (
	benchSetupsMu sync.Mutex
	benchSetups   = map[string]*benchSetup{}
)

func benchClaims(idp *mockidp.IdP) map[string]any {
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
	idp := mockidp.NewInMemory()
	key := mockidp.NewKey(alg)
	idp.UseKey(key)
	tok, err := mockidp.MintWith(key, nil, benchClaims(idp))
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
				tok, err := mockidp.MintWith(s.key, nil, cl)
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
//   - onesoidc-cached: ValidateToken of a token validated before;
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
	tok, err := mockidp.MintWith(s.key, nil, cl)
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
			tok, err := mockidp.MintWith(s.key, nil, cl)
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
