package onesoidc

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// writeKeyDir writes private.pem (mode 0600) for key into a fresh directory and, when jwk is not
// nil, public_jwk.json beside it, as px-device-identity does; it returns the key path.
func writeKeyDir(t *testing.T, key crypto.Signer, jwk map[string]any) string {
	t.Helper()
	dir := t.TempDir()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "private.pem")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if jwk != nil {
		data, _ := json.Marshal(jwk)
		if err := os.WriteFile(filepath.Join(dir, registeredJWKFileName), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return keyPath
}

// publicJWKMap returns the public JWK of key as a map, with alg and kid when not empty.
func publicJWKMap(t *testing.T, pub crypto.PublicKey, alg, kid string) map[string]any {
	t.Helper()
	data, err := jose.JSONWebKey{Key: pub}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "kid")
	if alg != "" {
		m["alg"] = alg
	}
	if kid != "" {
		m["kid"] = kid
	}
	return m
}

func newECKey(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestKF06CA14LoadPrivateKeyTakesKeyIDAndAlgorithmFromRegisteredJWK: the public JWK px-device-identity
// wrote beside the key decides the announced kid (or none) and the algorithm; ES521 is ES512.
func TestKF06CA14LoadPrivateKeyTakesKeyIDAndAlgorithmFromRegisteredJWK(t *testing.T) {
	t.Parallel()
	p256, p521 := newECKey(t, elliptic.P256()), newECKey(t, elliptic.P521())
	rsaKey := testRSAKey()
	tests := []struct {
		name    string
		key     crypto.Signer
		jwk     map[string]any
		opts    []Option
		alg     string
		kid     string
		wantErr string
	}{
		{name: "no JWK: no kid", key: p256, alg: "ES256"},
		{name: "JWK without kid", key: p256, jwk: publicJWKMap(t, p256.Public(), "ES256", ""), alg: "ES256"},
		{name: "JWK with kid", key: p256, jwk: publicJWKMap(t, p256.Public(), "ES256", "device-1"), alg: "ES256", kid: "device-1"},
		{name: "JWK without alg", key: p256, jwk: publicJWKMap(t, p256.Public(), "", "k"), alg: "ES256", kid: "k"},
		{name: "ES521 is ES512", key: p521, jwk: publicJWKMap(t, p521.Public(), "ES521", ""), alg: "ES512"},
		{name: "PS256 registered", key: rsaKey, jwk: publicJWKMap(t, rsaKey.Public(), "PS256", ""), alg: "PS256"},
		{name: "WithKeyID overrides", key: p256, jwk: publicJWKMap(t, p256.Public(), "ES256", "device-1"),
			opts: []Option{WithKeyID("explicit")}, alg: "ES256", kid: "explicit"},
		{name: "WithRegisteredJWK empty reads none", key: p256, jwk: publicJWKMap(t, p256.Public(), "ES256", "device-1"),
			opts: []Option{WithRegisteredJWK("")}, alg: "ES256"},
		{name: "another key registered", key: p256, jwk: publicJWKMap(t, newECKey(t, elliptic.P256()).Public(), "ES256", ""),
			wantErr: "is not the public key of the device private key"},
		{name: "alg of another curve", key: p256, jwk: publicJWKMap(t, p256.Public(), "ES384", ""),
			wantErr: `"alg" "ES384" does not fit its EC P-256 key`},
		{name: "RS256 registered but PSS asked", key: rsaKey, jwk: publicJWKMap(t, rsaKey.Public(), "RS256", ""),
			opts: []Option{WithRSAPSS()}, wantErr: "registered for RS256 but WithRSAPSS asks for PS256"},
		{name: "private key in the public file", key: p256, jwk: func() map[string]any {
			m := publicJWKMap(t, p256.Public(), "ES256", "")
			m["d"] = "AAAA"
			return m
		}(), wantErr: `holds a private key ("d")`},
		{name: "unknown alg", key: p256, jwk: publicJWKMap(t, p256.Public(), "HS256", ""), wantErr: `"alg" "HS256" does not fit`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeKeyDir(t, tt.key, tt.jwk)
			k, err := LoadPrivateKey(path, tt.opts...)
			if tt.wantErr != "" {
				var ce *ConfigError
				if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want a *ConfigError with %q", err, tt.wantErr)
				}
				if ce.File == "" {
					t.Errorf("error names no file: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.Algorithm() != tt.alg || k.KeyID() != tt.kid {
				t.Errorf("key = %v, want alg %s kid %q", k, tt.alg, tt.kid)
			}
			signAndVerify(t, k)
		})
	}
}

// TestWithRegisteredJWKMissingFileIsAnError: a registered JWK named explicitly must exist.
func TestWithRegisteredJWKMissingFileIsAnError(t *testing.T) {
	t.Parallel()
	path := writeKeyDir(t, newECKey(t, elliptic.P256()), nil)
	_, err := LoadPrivateKey(path, WithRegisteredJWK(filepath.Join(t.TempDir(), "missing.json")))
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *ConfigError", err)
	}
}

// TestCA06RegisteredKeyIDReachesTheProvider: a device whose registered JWK has a kid announces it
// and gets a token; one without announces none and gets a token too; a kid the registration
// lacks is refused, as oidc-provider refuses it.
func TestCA06RegisteredKeyIDReachesTheProvider(t *testing.T) {
	t.Parallel()
	for _, kid := range []string{"", "registered-kid"} {
		t.Run("kid="+kid, func(t *testing.T) {
			t.Parallel()
			key := newECKey(t, elliptic.P256())
			path := writeKeyDir(t, key, publicJWKMap(t, key.Public(), "ES256", kid))
			dk, err := LoadPrivateKey(path)
			if err != nil {
				t.Fatal(err)
			}
			idp := startIdP(t)
			idp.RegisterClientJWK(testClientID, jose.JSONWebKey{Key: key.Public(), Algorithm: "ES256", KeyID: kid})
			c, err := NewClient(t.Context(), testConfig(idp), dk, WithHTTPClient(idp.HTTPClient()))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.DeviceAccessToken(t.Context()); err != nil {
				t.Fatal(err)
			}
			header, _ := decodeJWT(t, idp.Requests("token")[0].Form.Get("client_assertion"))
			if got, _ := header["kid"].(string); got != kid {
				t.Errorf("assertion kid = %q, want %q", got, kid)
			}

			other, err := LoadPrivateKey(path, WithKeyID("not-registered"))
			if err != nil {
				t.Fatal(err)
			}
			c2, err := NewClient(t.Context(), testConfig(idp), other, WithHTTPClient(idp.HTTPClient()))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c2.DeviceAccessToken(t.Context()); !errors.Is(err, ErrInvalidClient) {
				t.Errorf("unregistered kid: err = %v, want invalid_client", err)
			}
		})
	}
}

// FuzzParseRegisteredJWK: no input panics, and every refusal is a *ConfigError without the input.
func FuzzParseRegisteredJWK(f *testing.F) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	for _, alg := range []string{"ES256", "ES521", "", "none"} {
		m := map[string]any{"kty": "EC", "crv": "P-256", "alg": alg, "kid": "k"}
		data, _ := json.Marshal(m)
		f.Add(data)
	}
	good, _ := jose.JSONWebKey{Key: k.Public(), Algorithm: "ES256"}.MarshalJSON()
	f.Add(good)
	f.Add([]byte(`{"kty":"RSA","n":"AQAB","e":"AQAB","d":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		reg, err := parseRegisteredJWK(data)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) || reg != nil {
				t.Fatalf("err %T %v, reg %v", err, err, reg)
			}
			return
		}
		if reg.Public == nil {
			t.Fatal("accepted without a key")
		}
		if algs, _ := registeredAlgs(reg.Public); algs == nil {
			t.Fatalf("accepted an unsupported key %T", reg.Public)
		}
	})
}
