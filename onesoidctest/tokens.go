package onesoidctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Tokens with any header, claim and key, and JWK Sets with any content, for validation tests.

// Omit, as a header value of MintWith, leaves out a parameter that would be set by default
// ("alg", "kid", "typ").
const Omit omitted = "\x00omit"

// omitted is the type of Omit, so that no string a test means as a header value is taken for it.
type omitted string

// NewKey generates a provider signing key for alg: RSA 2048 for RS*/PS*, P-256/384/521 for
// ES256/384/512, Ed25519 for EdDSA. Its kid is derived from its thumbprint.
func NewKey(alg string) *jose.JSONWebKey { return newSigningKey(alg) }

// UseKey publishes k and makes it the signing key of Mint.
func (m *Server) UseKey(k *jose.JSONWebKey) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys = append([]*jose.JSONWebKey{k}, m.keys...)
}

// AddKey publishes k after the current keys; Mint does not sign with it.
func (m *Server) AddKey(k *jose.JSONWebKey) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys = append(m.keys, k)
}

// RemoveKey unpublishes the key with kid (the signing key included, if it is the one).
func (m *Server) RemoveKey(kid string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys = slices.DeleteFunc(m.keys, func(k *jose.JSONWebKey) bool { return k.KeyID == kid })
}

// PublishRaw appends raw JWK objects (or any JSON values) to the "keys" array served.
func (m *Server) PublishRaw(entries ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range entries {
		m.extra = append(m.extra, json.RawMessage(e))
	}
}

// ClearFaults removes the pending faults of an endpoint.
func (m *Server) ClearFaults(endpoint string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.faults, endpoint)
}

// JWKS returns the JWK Set the jwks endpoint serves: the public keys, then the raw entries.
func (m *Server) JWKS() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	entries := make([]json.RawMessage, 0, len(m.keys)+len(m.extra))
	for _, k := range m.keys {
		b, err := k.Public().MarshalJSON()
		if err != nil {
			panic(err)
		}
		entries = append(entries, b)
	}
	entries = append(entries, m.extra...)
	b, _ := json.Marshal(map[string]any{"keys": entries})
	return b
}

// Claims returns the claims of a fresh ID token for clientID about subject: iss, sub, aud,
// iat = now, exp = now + 10 minutes.
func (m *Server) Claims(clientID, subject string) map[string]any {
	now := m.now()
	return map[string]any{
		"iss": m.Issuer,
		"sub": subject,
		"aud": clientID,
		"iat": now.Unix(),
		"exp": now.Add(10 * time.Minute).Unix(),
	}
}

// MintWith signs claims with key, with the given header parameters on top of the defaults "alg"
// (the key's algorithm), "kid" (the key's id, if any) and "typ" ("JWT"); a value Omit removes a
// parameter. The signature uses the header's "alg" whatever the key is, so that mismatches can be
// tested: "none" gives an empty signature, HS* uses key.Key ([]byte) as the MAC key.
func MintWith(key *jose.JSONWebKey, header map[string]any, claims map[string]any) (string, error) {
	h := map[string]any{"alg": key.Algorithm, "typ": "JWT"}
	if key.KeyID != "" {
		h["kid"] = key.KeyID
	}
	for k, v := range header {
		h[k] = v
	}
	for k, v := range h {
		if v == Omit {
			delete(h, k)
		}
	}
	alg, _ := h["alg"].(string)
	if alg == "" {
		alg = key.Algorithm
	}
	hb, err := json.Marshal(h)
	if err != nil {
		return "", err
	}
	pb, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	return SignRaw(key, alg, hb, pb)
}

// SignRaw returns the compact JWS of exactly these header and payload bytes, signed with key
// for alg (RS*, PS*, ES* as raw R||S, EdDSA, HS* with a []byte key, or "none" in any case for an
// empty signature).
func SignRaw(key *jose.JSONWebKey, alg string, header, payload []byte) (string, error) {
	input := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	sig, err := Sign(key, alg, []byte(input))
	if err != nil {
		return "", err
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// Sign signs a JWS signing input with key for alg.
func Sign(key *jose.JSONWebKey, alg string, input []byte) ([]byte, error) {
	if len(alg) == 4 && (alg[0]|0x20) == 'n' && (alg[1]|0x20) == 'o' && (alg[2]|0x20) == 'n' && (alg[3]|0x20) == 'e' {
		return nil, nil
	}
	if len(alg) < 5 {
		return nil, errors.New("onesoidctest: unsupported alg " + alg)
	}
	var h crypto.Hash
	switch alg[len(alg)-3:] {
	case "256":
		h = crypto.SHA256
	case "384":
		h = crypto.SHA384
	case "512":
		h = crypto.SHA512
	}
	digest := func() []byte {
		var hh hash.Hash
		switch h {
		case crypto.SHA384:
			hh = sha512.New384()
		case crypto.SHA512:
			hh = sha512.New()
		default:
			hh = sha256.New()
		}
		hh.Write(input)
		return hh.Sum(nil)
	}
	switch k := key.Key.(type) {
	case *rsa.PrivateKey:
		switch alg[:2] {
		case "RS":
			return rsa.SignPKCS1v15(rand.Reader, k, h, digest())
		case "PS":
			return rsa.SignPSS(rand.Reader, k, h, digest(), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
	case *ecdsa.PrivateKey:
		if alg[:2] == "ES" {
			r, s, err := ecdsa.Sign(rand.Reader, k, digest())
			if err != nil {
				return nil, err
			}
			size := (k.Curve.Params().BitSize + 7) / 8
			out := make([]byte, 2*size)
			r.FillBytes(out[:size])
			s.FillBytes(out[size:])
			return out, nil
		}
	case ed25519.PrivateKey:
		if alg == "EdDSA" {
			return ed25519.Sign(k, input), nil
		}
	case []byte:
		if alg[:2] == "HS" {
			var newHash func() hash.Hash
			switch h {
			case crypto.SHA384:
				newHash = sha512.New384
			case crypto.SHA512:
				newHash = sha512.New
			default:
				newHash = sha256.New
			}
			mac := hmac.New(newHash, k)
			mac.Write(input)
			return mac.Sum(nil), nil
		}
	default:
		return nil, fmt.Errorf("onesoidctest: cannot sign with a %T", key.Key)
	}
	return nil, errors.New("onesoidctest: key cannot sign " + alg)
}

// FuzzSeeds returns malformed and edge-case compact JWS strings, some derived from the good token
// good, as seeds for fuzzers of token parsing: wrong segment counts, padding, "crit", "none",
// a control character in kid, JSON serialization and JWE shapes.
func FuzzSeeds(good string) []string {
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	p := strings.Split(good, ".")
	return []string{
		good, p[0] + "." + p[1] + ".", "a.b.c", "..", ".", "", "{}", `{"payload":"x"}`,
		p[0] + "." + p[1] + "." + p[2] + ".x.y", p[0] + "=." + p[1] + "." + p[2], "e30.e30.e30",
		b64(`{"alg":"ES256","crit":["exp"]}`) + ".e30.AA", b64(`{"alg":"none"}`) + "." + b64(`{"iss":1}`) + ".",
		b64(`{"alg":"ES256","kid":"\u0000"}`) + ".e30.", strings.Repeat(".", 100),
	}
}
