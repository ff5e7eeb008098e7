package onesoidc

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	gojose "github.com/go-jose/go-jose/v4"
)

// registeredJWKFileName is the file px-device-identity writes beside the device private key: the
// public JWK (RFC 7517 §4) it
// registered with the identity provider, which LoadPrivateKey and NewClientFromDevice read to
// announce the registered "kid" and "alg".
const registeredJWKFileName = "public_jwk.json"

// registeredField is the ConfigError.Field of registered JWK errors.
const registeredField = "registered JWK"

// registeredKey is the public JWK px-device-identity registered for the device (RFC 7517 §4):
// the provider knows the device by this key, so client assertions and request objects are
// signed with its "alg" and announce its "kid", or no "kid" when it has none.
type registeredKey struct {
	// KeyID is the JWK "kid", or "" when the JWK has none (what px-device-identity writes).
	KeyID string
	// Algorithm is the JWK "alg" as a JWS algorithm, or "" when the JWK has none.
	// px-device-identity writes "ES521" for P-521 keys, which is read as ES512 (RFC 7518 §3.4).
	Algorithm string
	// Public is the public key.
	Public crypto.PublicKey
}

// parseRegisteredJWK parses the public JWK px-device-identity registered for the device. It
// must be a public key (no "d"), of a kind this package signs with (RSA, EC P-256/P-384/P-521,
// Ed25519), and its "alg", when present, must be one of RS256, PS256, ES256, ES384, ES512 (or
// "ES521", read as ES512) and EdDSA and fit the key. Errors are *ConfigError values without key
// material.
func parseRegisteredJWK(data []byte) (*registeredKey, error) {
	fail := func(reason string) error { return &ConfigError{Field: registeredField, Reason: reason} }
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' || !json.Valid(data) {
		return nil, fail("not a JSON object; expected the public JWK px-device-identity registered")
	}
	var raw struct {
		Alg *string `json:"alg"`
		D   *string `json:"d"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fail(`"alg" is not a string`)
	}
	if raw.D != nil {
		return nil, fail(`holds a private key ("d"); the registered JWK must be the public key only`)
	}
	alg := ""
	if raw.Alg != nil {
		alg = *raw.Alg
		if alg == "ES521" { // px-device-identity's name for ES512
			alg = "ES512"
		}
	}
	// go-jose checks the key but not an alg it does not know, and "ES521" must not reach it.
	var jwk gojose.JSONWebKey
	if err := jwk.UnmarshalJSON(withoutAlg(data)); err != nil {
		return nil, &ConfigError{Field: registeredField, Reason: "invalid or unsupported JWK", Err: errors.New(sanitizeJOSEError(err))}
	}
	keyAlgs, kind := registeredAlgs(jwk.Key)
	if keyAlgs == nil {
		return nil, fail(fmt.Sprintf("unsupported key (%s); expected RSA, EC P-256/P-384/P-521 or Ed25519", kind))
	}
	if alg != "" {
		ok := false
		for _, a := range keyAlgs {
			ok = ok || a == alg
		}
		if !ok {
			return nil, fail(fmt.Sprintf("\"alg\" %q does not fit its %s key", sanitize(alg, 32), kind))
		}
	}
	return &registeredKey{KeyID: jwk.KeyID, Algorithm: alg, Public: jwk.Key}, nil
}

// withoutAlg returns the JSON object data without its "alg" member.
func withoutAlg(data []byte) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return data
	}
	if _, ok := m["alg"]; !ok {
		return data
	}
	delete(m, "alg")
	out, err := json.Marshal(m)
	if err != nil {
		return data
	}
	return out
}

// registeredAlgs returns the JWS algorithms a public key may sign with here, and its kind.
func registeredAlgs(pub any) ([]string, string) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Sprintf("RSA %d bits", k.N.BitLen())
		}
		return []string{"RS256", "PS256"}, "RSA"
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return []string{"ES256"}, "EC P-256"
		case elliptic.P384():
			return []string{"ES384"}, "EC P-384"
		case elliptic.P521():
			return []string{"ES512"}, "EC P-521"
		}
		return nil, "EC on another curve"
	case ed25519.PublicKey:
		return []string{"EdDSA"}, "Ed25519"
	}
	return nil, fmt.Sprintf("%T", pub)
}

// loadRegisteredJWK reads and parses the registered JWK at path, usually public_jwk.json beside
// the device key (see parseRegisteredJWK). The file must be a regular file of at
// most 1 MiB; errors are *ConfigError values naming it.
func loadRegisteredJWK(path string) (*registeredKey, error) {
	data, _, err := readLimitedFile(path, registeredField+" file")
	if err != nil {
		return nil, err
	}
	reg, err := parseRegisteredJWK(data)
	if err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			ce.File = path
		}
		return nil, err
	}
	return reg, nil
}

// loadRegisteredIfPresent loads the registered JWK at path; a file that does not exist is
// (nil, nil): px-device-identity registered no JWK file there.
func loadRegisteredIfPresent(path string) (*registeredKey, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return loadRegisteredJWK(path)
}

// registeredJWKBeside is the path of the registered JWK beside the key file keyPath.
func registeredJWKBeside(keyPath string) string {
	return filepath.Join(filepath.Dir(keyPath), registeredJWKFileName)
}

// WithRegisteredJWK sets the file of the public JWK px-device-identity registered for the key
// (default for LoadPrivateKey: public_jwk.json beside the key file, used when it exists;
// for ParsePrivateKey and NewDeviceKey: none). A file given here must exist. An empty path
// reads none. See DeviceKey.KeyID and DeviceKey.Algorithm for what the JWK decides.
func WithRegisteredJWK(path string) Option {
	return func(o *options) { o.key.registeredPath, o.key.registeredSet = path, true }
}

// applyRegistered makes k sign as the registered JWK says: the public keys must be equal, the
// JWK's "alg" (when present) becomes the algorithm, and its "kid" (or none) the key id unless
// WithKeyID gave one. A mismatch is a *ConfigError naming file.
func (k *DeviceKey) applyRegistered(reg *registeredKey, o *keyOptions, file string) error {
	fail := func(reason string) error { return &ConfigError{File: file, Field: registeredField, Reason: reason} }
	pub, ok := k.signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(reg.Public) {
		return fail("the registered public key is not the public key of the device private key")
	}
	switch alg := reg.Algorithm; {
	case alg == "" || alg == k.alg:
	case alg == "PS256" && k.alg == "RS256":
		k.alg, k.pss = "PS256", true
	case alg == "RS256" && k.pss:
		return fail("the key is registered for RS256 but WithRSAPSS asks for PS256")
	default:
		return fail(fmt.Sprintf("the key is registered for %s but signs %s", alg, k.alg))
	}
	if !o.kidSet {
		k.kid = reg.KeyID
	}
	return nil
}
