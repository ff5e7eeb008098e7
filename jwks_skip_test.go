package onesoidc

import (
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"

	gojose "github.com/go-jose/go-jose/v4"
	"github.com/ones-now/onesoidc/internal/mockidp"
)

// TestIdenticalDuplicateKeysAreOneKey: a JWKS that lists the same key twice (same kid, kty, alg
// and parameters; with or without kid) is one key, not "several keys with this kid fit".
// Different keys under one kid stay ambiguous.
func TestIdenticalDuplicateKeysAreOneKey(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		idp := mockidp.NewInMemory()
		k := mockidp.NewKey(alg)
		idp.UseKey(k)
		serveJWKS(idp, jwkJSON(t, k, nil), jwkJSON(t, k, func(m map[string]any) { m["use"] = "sig" }), jwkJSON(t, k, nil))
		c := newValidationClient(t, idp)
		wantAccept(t)(c.ValidateToken(t.Context(), mint(t, idp, nil, nil)))
		if s := c.val.keys.set.Load(); len(s.keys) != 1 || len(s.byKid[k.KeyID]) != 1 {
			t.Errorf("%s: %d keys, %d under the kid; want 1", alg, len(s.keys), len(s.byKid[k.KeyID]))
		}
		// Without kid: the token has none, the set lists the key twice without one.
		idp2 := mockidp.NewInMemory()
		serveJWKS(idp2, jwkJSON(t, k, noKid), jwkJSON(t, k, noKid))
		c2 := newValidationClient(t, idp2)
		wantAccept(t)(c2.ValidateToken(t.Context(), mintWith(t, idp2, k, map[string]any{"kid": mockidp.Omit}, nil)))
	}
	// Two different keys under one kid are still ambiguous.
	idp := mockidp.NewInMemory()
	k := idp.SigningKey()
	other := mockidp.NewKey(k.Algorithm)
	serveJWKS(idp, jwkJSON(t, k, nil), jwkJSON(t, other, func(m map[string]any) { m["kid"] = k.KeyID }))
	c := newValidationClient(t, idp)
	tok := mint(t, idp, nil, nil)
	res, err := c.ValidateToken(t.Context(), tok)
	wantReject(t, res, err, ErrUnknownKey, tok)
	if err == nil || !strings.Contains(err.Error(), "several keys") {
		t.Errorf("different keys under one kid: %v", err)
	}
}

// TestSkippedKeyReasonInError: a token whose kid names a key the JWKS lists but that was skipped
// as unusable (JW-08, JW-10, JW-11, JW-13) is refused saying why, not as a kid missing from the
// set, and without a refetch; the reason quotes document values only sanitized.
func TestSkippedKeyReasonInError(t *testing.T) {
	t.Parallel()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallJWK := &gojose.JSONWebKey{Key: small, KeyID: "rsa1024", Algorithm: "RS256"}
	ec := mockidp.NewKey("ES256")
	tests := []struct {
		name, entry, kid, alg, want string
	}{
		{"RSA 1024", jwkJSON(t, smallJWK, nil), "rsa1024", "RS256", "RSA key of 1024 bits, at least 2048 required"},
		{"use enc", jwkJSON(t, ec, func(m map[string]any) { m["kid"] = "enc"; m["use"] = "enc" }), "enc", "ES256", `"use" is "enc", not "sig"`},
		{"oct", `{"kty":"oct","kid":"hmac","k":"AAAA"}`, "hmac", "ES256", "symmetric (oct) key"},
		{"alg misfit", jwkJSON(t, ec, func(m map[string]any) { m["kid"] = "misfit"; m["alg"] = "ES384" }), "misfit", "ES256", "alg ES384 does not fit an EC key on P-256"},
		{"unknown alg", jwkJSON(t, ec, func(m map[string]any) { m["kid"] = "alg\x01\u202e"; m["alg"] = "ES999\x07" }), "alg\x01\u202e", "ES256", `alg "ES999" is not a supported signature algorithm`},
		{"off curve", jwkJSON(t, ec, func(m map[string]any) { m["kid"] = "curve"; m["y"] = m["x"] }), "curve", "ES256", `EC key on curve "P-256" unusable`},
		{"secp256k1", strings.Replace(secp256k1JWK(), `{`, `{"kid":"k1",`, 1), "k1", "ES256", `EC key on curve "secp256k1"`},
		{"private", jwkJSON(t, ec, func(m map[string]any) { m["kid"] = "priv"; m["d"] = randB64(32) }), "priv", "ES256", "holds private key material"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			idp := mockidp.NewInMemory()
			serveJWKS(idp, tc.entry, jwkJSON(t, idp.SigningKey(), nil))
			c := newValidationClient(t, idp)
			wantAccept(t)(c.ValidateToken(t.Context(), mint(t, idp, nil, nil)))
			signer := &gojose.JSONWebKey{Key: ec.Key, KeyID: tc.kid, Algorithm: tc.alg}
			if tc.alg == "RS256" {
				signer.Key = small
			}
			tok := mintWith(t, idp, signer, nil, nil)
			res, err := c.ValidateToken(t.Context(), tok)
			wantReject(t, res, err, ErrUnknownKey, tok)
			if err == nil || !strings.Contains(err.Error(), "was skipped: "+tc.want) || strings.Contains(err.Error(), "not in the provider's JWKS") {
				t.Errorf("error %q, want the skip reason %q", err, tc.want)
			}
			for _, r := range err.Error() {
				if r < 0x20 || r > 0x7e {
					t.Errorf("error %q holds the unprintable %U", err, r)
				}
			}
			if n := idp.Count(mockidp.EndpointJWKS); n != 1 {
				t.Errorf("%d JWKS requests, want 1: a skipped kid is listed, not unknown", n)
			}
		})
	}
}

// TestSkippedKeyWithoutKidReasonInError: a token without kid that no key fits says why a key
// without kid was skipped.
func TestSkippedKeyWithoutKidReasonInError(t *testing.T) {
	t.Parallel()
	idp := mockidp.NewInMemory()
	k := mockidp.NewKey("ES256")
	serveJWKS(idp, jwkJSON(t, k, func(m map[string]any) { noKid(m); m["use"] = "enc" }), jwkJSON(t, idp.SigningKey(), nil))
	c := newValidationClient(t, idp)
	tok := mintWith(t, idp, k, map[string]any{"kid": mockidp.Omit}, nil)
	res, err := c.ValidateToken(t.Context(), tok)
	wantReject(t, res, err, ErrUnknownKey, tok)
	if err == nil || !strings.Contains(err.Error(), `a key without kid was skipped: "use" is "enc"`) {
		t.Errorf("error %v, want the skip reason", err)
	}
}

// TestSkipReasonsBounded: at most maxSkipReasons reasons are kept, none for kids longer than a
// token may carry, and their kids are copies that do not keep the document alive.
func TestSkipReasonsBounded(t *testing.T) {
	t.Parallel()
	idp := mockidp.NewInMemory()
	var entries []string
	for i := range maxJWKSKeys - 1 {
		kid := randB64(8)
		if i%2 == 0 {
			kid = strings.Repeat("k", 300) + randB64(4)
		}
		entries = append(entries, `{"kty":"oct","kid":"`+kid+`","k":"AAAA"}`)
	}
	serveJWKS(idp, append(entries, jwkJSON(t, idp.SigningKey(), nil))...)
	c := newValidationClient(t, idp)
	wantAccept(t)(c.ValidateToken(t.Context(), mint(t, idp, nil, nil)))
	s := c.val.keys.set.Load()
	if len(s.skipped) == 0 || len(s.skipped) > maxSkipReasons {
		t.Errorf("%d skip reasons kept, want 1 to %d", len(s.skipped), maxSkipReasons)
	}
	for kid := range s.skipped {
		if len(kid) > 256 {
			t.Errorf("a skip reason for a kid of %d bytes", len(kid))
		}
	}
	// A set of unusable keys only is refused, saying why.
	_, _, err := parseJWKS([]byte(`{"keys":[`+entries[1]+`]}`), nil)
	if err == nil || !strings.Contains(err.Error(), "was skipped: symmetric") {
		t.Errorf("parseJWKS of unusable keys: %v", err)
	}
}
