//go:build interop

package interop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"maps"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Key is a signing key of a test client or of the provider, generated in Go so that Node never
// generates keys (IDP-NOTES: key generation plus JWK export can deadlock Node 20).
type Key struct {
	// Private is the private key: *rsa.PrivateKey, *ecdsa.PrivateKey or ed25519.PrivateKey.
	Private crypto.Signer
	// Alg is the JWS algorithm the key signs with, also registered as the JWK "alg" of client keys.
	Alg jose.SignatureAlgorithm
	// KID is the RFC 7638 SHA-256 thumbprint of the public key.
	KID string
}

// newKey generates a key for alg: RS256/PS256 (and the 384/512 variants) RSA 2048, ES256 P-256,
// ES384 P-384, ES512 P-521, EdDSA Ed25519.
func newKey(t testing.TB, alg jose.SignatureAlgorithm) *Key {
	t.Helper()
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.ES384:
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case jose.ES512:
		priv, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case jose.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("newKey: unsupported alg %s", alg)
	}
	if err != nil {
		t.Fatalf("newKey(%s): %v", alg, err)
	}
	k := &Key{Private: priv, Alg: alg}
	pub := jose.JSONWebKey{Key: priv.Public()}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatalf("newKey(%s): thumbprint: %v", alg, err)
	}
	k.KID = base64.RawURLEncoding.EncodeToString(tp)
	return k
}

// PublicJWK returns the public JWK with kid, use "sig" and alg, for client registration.
func (k *Key) PublicJWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.Private.Public(), KeyID: k.KID, Algorithm: string(k.Alg), Use: "sig"}
}

// PrivateJWK returns the private JWK with kid and use "sig" but without alg, so that a provider
// RSA key can sign both RS256 and PS256 ID tokens.
func (k *Key) PrivateJWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.Private, KeyID: k.KID, Use: "sig"}
}

// publicJWKS returns the public JWKs of keys, for a client's "jwks".
func publicJWKS(keys ...*Key) jose.JSONWebKeySet {
	var set jose.JSONWebKeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, k.PublicJWK())
	}
	return set
}

// privateJWKS returns the private JWKs of keys, for Config.ProviderJWKS.
func privateJWKS(keys ...*Key) jose.JSONWebKeySet {
	var set jose.JSONWebKeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, k.PrivateJWK())
	}
	return set
}

// newProviderKeys returns fresh provider signing keys: RSA 2048 (first, so RS256 is the default
// ID-token alg), EC P-256 and Ed25519.
func newProviderKeys(t testing.TB) []*Key {
	t.Helper()
	return []*Key{newKey(t, jose.RS256), newKey(t, jose.ES256), newKey(t, jose.EdDSA)}
}

// assertion returns a fresh RFC 7523 client assertion signed by key: header alg and kid, typ JWT;
// claims iss = sub = clientID, aud, jti (128 random bits), iat = now, exp = now + 5 min.
func assertion(t testing.TB, key *Key, clientID, aud string) string {
	t.Helper()
	return signJWT(t, key, assertionClaims(clientID, aud), nil)
}

// assertionClaims returns the claims assertion signs, for tests that change one of them.
func assertionClaims(clientID string, aud any) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": clientID,
		"sub": clientID,
		"aud": aud,
		"jti": randomID(),
		"iat": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(),
	}
}

// signJWT signs claims as a compact JWS with key's alg and kid and typ JWT; extra header
// members are added (a "kid" there replaces key.KID, an empty one removes it).
func signJWT(t testing.TB, key *Key, claims map[string]any, header map[jose.HeaderKey]any) string {
	t.Helper()
	h := map[jose.HeaderKey]any{"typ": "JWT", "kid": key.KID}
	maps.Copy(h, header)
	if kid, ok := h["kid"].(string); ok && kid == "" {
		delete(h, "kid")
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: key.Alg, Key: key.Private},
		&jose.SignerOptions{ExtraHeaders: h})
	if err != nil {
		t.Fatalf("signJWT: %v", err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatalf("signJWT: %v", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatalf("signJWT: %v", err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatalf("signJWT: %v", err)
	}
	return out
}

// randomID returns 128 random bits, base64url.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
