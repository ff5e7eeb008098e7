package onesoidc

import (
	"crypto"
	"crypto/rand"
	"testing"
)

// BenchmarkDeviceAccessTokenCacheHit measures DeviceAccessToken when the cached token is fresh.
func BenchmarkDeviceAccessTokenCacheHit(b *testing.B) {
	idp := startIdP(b)
	c := newTestClient(b, idp, testKey(b, "EdDSA"))
	if _, err := c.DeviceAccessToken(b.Context()); err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.DeviceAccessToken(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAssertion compares building and signing a whole client assertion ("onesoidc") with
// the bare signature of an input of the same size through crypto.Signer ("raw": hash and sign).
func BenchmarkAssertion(b *testing.B) {
	for _, alg := range []string{"ES256", "EdDSA", "RS256"} {
		key := testKey(b, alg)
		idp := startIdP(b)
		c := newTestClient(b, idp, key)
		ctx := b.Context()
		sample, err := c.clientAssertion(ctx, c.meta.TokenEndpoint)
		if err != nil {
			b.Fatal(err)
		}
		input := []byte(sample[:len(sample)-len(sample[lastDot(sample):])])
		b.Run("alg="+alg+"/impl=raw", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				msg, opts := input, crypto.SignerOpts(crypto.Hash(0))
				if key.hash != 0 {
					msg, opts = hashOf(key.hash, input), key.hash
				}
				if _, err := key.signer.Sign(rand.Reader, msg, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("alg="+alg+"/impl=onesoidc", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.clientAssertion(ctx, c.meta.TokenEndpoint); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func lastDot(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '.' {
			return i
		}
	}
	return -1
}
