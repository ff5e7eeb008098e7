package onesoidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/ones-now/onesoidc/internal/jose"
	"github.com/ones-now/onesoidc/onesoidctest"
)

// BenchmarkVerify measures, per algorithm and in the same run:
//
//   - raw: the floor, only the signature check of the token's signing input with a pre-parsed
//     key (hash + rsa.VerifyPKCS1v15 / ecdsa.VerifyASN1 with a pre-built DER signature /
//     ed25519.Verify);
//   - onesoidc-cold: ValidateToken with the verified-token cache off; the JWKS is cached, so
//     this is the per-token work: parsing, key lookup, signature, claims, result;
//   - onesoidc-cached: ValidateToken of a token validated before;
//   - go-oidc: oidc.NewVerifier with an oidc.StaticKeySet of the same key, same token.
//
// Run: go test -run '^$' -bench BenchmarkVerify -count 6 . > /tmp/bench.txt
func BenchmarkVerify(b *testing.B) {
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		b.Run("alg="+alg, func(b *testing.B) {
			idp := onesoidctest.NewInMemory()
			key := onesoidctest.NewKey(alg)
			idp.UseKey(key)
			claims := idp.Claims(testClientID, testSubject)
			claims["exp"] = claims["exp"].(int64) + 3600
			claims["preferred_username"] = "alice"
			claims["scope"] = "openid profile email"
			claims["auth_time"] = claims["iat"]
			claims["amr"] = []string{"pwd"}
			claims["sid"] = "a0f8b1e4-5c7d-4e2a-9b3f-6d1c8e7a2b90"
			tok, err := onesoidctest.MintWith(key, nil, claims)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			pub := key.Public().Key

			b.Run("impl=raw", func(b *testing.B) {
				dot := strings.LastIndexByte(tok, '.')
				input := []byte(tok[:dot])
				sig, _ := base64.RawURLEncoding.DecodeString(tok[dot+1:])
				var verify func() bool
				switch k := pub.(type) {
				case *rsa.PublicKey:
					verify = func() bool {
						h := sha256.Sum256(input)
						return rsa.VerifyPKCS1v15(k, crypto.SHA256, h[:], sig) == nil
					}
				case *ecdsa.PublicKey:
					der := jose.ASN1Signature(nil, sig[:32], sig[32:])
					verify = func() bool {
						h := sha256.Sum256(input)
						return ecdsa.VerifyASN1(k, h[:], der)
					}
				case ed25519.PublicKey:
					verify = func() bool { return ed25519.Verify(k, input, sig) }
				}
				b.ReportAllocs()
				for b.Loop() {
					if !verify() {
						b.Fatal("raw verify failed")
					}
				}
			})
			b.Run("impl=onesoidc-cold", func(b *testing.B) {
				c := newValidationClient(b, idp)
				c.val.cache = nil
				if _, err := c.ValidateToken(ctx, tok); err != nil { // loads the JWKS
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := c.ValidateToken(ctx, tok); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("impl=onesoidc-cached", func(b *testing.B) {
				c := newValidationClient(b, idp)
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
			b.Run("impl=go-oidc", func(b *testing.B) {
				v := oidc.NewVerifier(idp.Issuer, &oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{pub}},
					&oidc.Config{ClientID: testClientID, SupportedSigningAlgs: []string{alg}})
				b.ReportAllocs()
				for b.Loop() {
					if _, err := v.Verify(ctx, tok); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
