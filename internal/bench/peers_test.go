// Package bench compares onesoidc with peer libraries in one run: the raw signature check (the
// floor), go-oidc and golang-jwt. It is a module of its own so that golang-jwt stays out of
// onesoidc's go.mod.
//
// Run (from this directory):
//
//	go test -run '^$' -bench . -cpu 1,2 -count 6 > peers.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /impl peers.txt
package bench

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/golang-jwt/jwt/v5"
	"github.com/ones-now/onesoidc"
	"github.com/ones-now/onesoidc/internal/mockidp"
)

const clientID = "0b6c8f2a-3d4e-4f50-8a9b-c0d1e2f3a4b5"

type setup struct {
	idp      *mockidp.IdP
	pub      crypto.PublicKey
	tok      string // the BenchmarkVerify token of the root package: 10 claims
	tok21    string // 21 claims, as a server reading user attributes sees them
	cold     *onesoidc.OpenIDConnectClient
	cached   *onesoidc.OpenIDConnectClient
	goOIDC   *oidc.IDTokenVerifier
	jwtParse *jwt.Parser
}

func newSetup(b *testing.B, alg string) *setup {
	idp := mockidp.NewInMemory()
	key := mockidp.NewKey(alg)
	idp.UseKey(key)
	claims := idp.Claims(clientID, "user-1")
	claims["exp"] = claims["exp"].(int64) + 3600
	claims["preferred_username"] = "alice"
	claims["scope"] = "openid profile email"
	claims["auth_time"] = claims["iat"]
	claims["amr"] = []string{"pwd"}
	claims["sid"] = "a0f8b1e4-5c7d-4e2a-9b3f-6d1c8e7a2b90"
	tok, err := mockidp.MintWith(key, nil, claims)
	if err != nil {
		b.Fatal(err)
	}
	claims["jti"] = "b3c1d2e4-0000-4a5b-8c9d-0e1f2a3b4c5d"
	claims["azp"] = clientID
	claims["name"] = "Alice Example"
	claims["given_name"] = "Alice"
	claims["family_name"] = "Example"
	claims["email"] = "alice@example.com"
	claims["email_verified"] = true
	claims["locale"] = "en-GB"
	claims["roles"] = []string{"admin", "editor"}
	claims["groups"] = []string{"staff", "ops"}
	claims["tenant"] = "acme"
	tok21, err := mockidp.MintWith(key, nil, claims)
	if err != nil {
		b.Fatal(err)
	}
	s := &setup{idp: idp, pub: key.Public().Key, tok: tok, tok21: tok21}
	s.cold = newClient(b, idp, onesoidc.WithTokenCacheBytes(0))
	s.cached = newClient(b, idp)
	s.goOIDC = oidc.NewVerifier(idp.Issuer, &oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{s.pub}},
		&oidc.Config{ClientID: clientID, SupportedSigningAlgs: []string{alg}})
	s.jwtParse = jwt.NewParser(jwt.WithValidMethods([]string{alg}), jwt.WithIssuer(idp.Issuer),
		jwt.WithAudience(clientID), jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(time.Minute))
	for _, t := range []string{tok, tok21} { // load the JWKS, fill the cache
		if _, err := s.cached.ValidateToken(context.Background(), t); err != nil {
			b.Fatal(err)
		}
		if _, err := s.cold.ValidateToken(context.Background(), t); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

func newClient(b *testing.B, idp *mockidp.IdP, opts ...onesoidc.Option) *onesoidc.OpenIDConnectClient {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	dk, err := onesoidc.NewDeviceKey(priv)
	if err != nil {
		b.Fatal(err)
	}
	cfg := &onesoidc.DeviceConfig{ID: "7a9d0c3e-5b1f-4c2a-9e8d-1f2b3c4d5e6f", ClientID: clientID, Host: idp.URL, KeySecurity: "default"}
	c, err := onesoidc.NewClient(context.Background(), cfg, dk, append([]onesoidc.Option{onesoidc.WithHTTPClient(idp.HTTPClient())}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// floor returns the bare signature check of tok with a pre-parsed key.
func floor(tok string, pub crypto.PublicKey) func() bool {
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
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		_ = elliptic.P256()
		return func() bool {
			h := sha256.Sum256(input)
			return ecdsa.Verify(k, h[:], r, s)
		}
	case ed25519.PublicKey:
		return func() bool { return ed25519.Verify(k, input, sig) }
	}
	return nil
}

func (s *setup) impls() []struct {
	name string
	f    func() error
} {
	ctx := context.Background()
	raw := floor(s.tok, s.pub)
	keyfunc := func(*jwt.Token) (any, error) { return s.pub, nil }
	return []struct {
		name string
		f    func() error
	}{
		{"raw", func() error {
			if !raw() {
				return jwt.ErrSignatureInvalid
			}
			return nil
		}},
		{"onesoidc-cold", func() error { _, err := s.cold.ValidateToken(ctx, s.tok); return err }},
		{"onesoidc-cached", func() error { _, err := s.cached.ValidateToken(ctx, s.tok); return err }},
		{"go-oidc", func() error { _, err := s.goOIDC.Verify(ctx, s.tok); return err }},
		{"golang-jwt", func() error { _, err := s.jwtParse.Parse(s.tok, keyfunc); return err }},
	}
}

var algs = []string{"RS256", "ES256", "EdDSA"}

// BenchmarkPeers validates the same token with each implementation on one goroutine.
func BenchmarkPeers(b *testing.B) { benchPeers(b, false) }

// BenchmarkPeersParallel is BenchmarkPeers under b.RunParallel (one shared client or
// verifier): with -cpu 1,2 the ratio of the two ns/op is the speedup from 1 to 2 CPUs.
func BenchmarkPeersParallel(b *testing.B) { benchPeers(b, true) }

func benchPeers(b *testing.B, parallel bool) {
	for _, alg := range algs {
		b.Run("alg="+alg, func(b *testing.B) {
			s := newSetup(b, alg)
			for _, impl := range s.impls() {
				b.Run("impl="+impl.name, func(b *testing.B) {
					b.ReportAllocs()
					if !parallel {
						for b.Loop() {
							if err := impl.f(); err != nil {
								b.Fatal(err)
							}
						}
						return
					}
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := impl.f(); err != nil {
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

// user is what a server typically reads from a token.
type user struct {
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

// jwtUser is user for golang-jwt, whose claims type carries the registered claims (and so "sub").
type jwtUser struct {
	Name     string   `json:"name"`
	Username string   `json:"preferred_username"`
	Email    string   `json:"email"`
	Verified bool     `json:"email_verified"`
	Scope    string   `json:"scope"`
	Roles    []string `json:"roles"`
	Groups   []string `json:"groups"`
	Tenant   string   `json:"tenant"`
	jwt.RegisteredClaims
}

// BenchmarkPeerClaims validates the 21-claim EdDSA token and reads the user's claims into a
// struct: onesoidc from its cache (Claims(&v), and the standard claims from the result),
// go-oidc (Verify, then IDToken.Claims), golang-jwt (ParseWithClaims into the struct).
func BenchmarkPeerClaims(b *testing.B) {
	s := newSetup(b, "EdDSA")
	ctx := context.Background()
	keyfunc := func(*jwt.Token) (any, error) { return s.pub, nil }
	check := func(b *testing.B, u *user) {
		if u.Email == "" || len(u.Roles) != 2 {
			b.Fatalf("claims not read: %+v", u)
		}
	}
	run := func(name string, read func() (*user, error)) {
		b.Run("impl="+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				u, err := read()
				if err != nil {
					b.Fatal(err)
				}
				check(b, u)
			}
		})
	}
	run("onesoidc-cached-standard", func() (*user, error) {
		res, err := s.cached.ValidateToken(ctx, s.tok21)
		if err != nil {
			return nil, err
		}
		return &user{Subject: res.Entity.Subject, Name: res.Entity.Name, Username: res.Entity.Username,
			Email: res.Entity.Email, Scope: res.Entity.Scope, Roles: res.Roles()}, nil
	})
	validated := func(c *onesoidc.OpenIDConnectClient) func() (*user, error) {
		return func() (*user, error) {
			res, err := c.ValidateToken(ctx, s.tok21)
			if err != nil {
				return nil, err
			}
			var u user
			return &u, res.Claims(&u)
		}
	}
	run("onesoidc-cached-struct", validated(s.cached))
	run("onesoidc-cold-struct", validated(s.cold))
	run("go-oidc-struct", func() (*user, error) {
		t, err := s.goOIDC.Verify(ctx, s.tok21)
		if err != nil {
			return nil, err
		}
		var u user
		return &u, t.Claims(&u)
	})
	run("golang-jwt-struct", func() (*user, error) {
		var u jwtUser
		_, err := s.jwtParse.ParseWithClaims(s.tok21, &u, keyfunc)
		return &user{Email: u.Email, Roles: u.Roles}, err
	})
}
