package onesoidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
)

// Signer signs JWS signing inputs (RFC 7515 §5.1: ASCII(BASE64URL(header) || '.' || BASE64URL(payload)))
// for client assertions (RFC 7523 §3) and CIBA request objects (CIBA Core §7.1.1).
//
// *DeviceKey implements it for keys held in memory or any crypto.Signer (HSM, TPM through
// crypto.Signer); *RemoteSigner implements it for keys held by px-device-identity-service.
// Implementations must be safe for concurrent use.
type Signer interface {
	// Algorithm is the JWS "alg" of the signatures, such as "RS256", "ES256" or "EdDSA".
	Algorithm() string
	// KeyID is the JWS "kid" to announce, or "" for none.
	KeyID() string
	// SignJWS returns the JWS signature of signingInput: raw R||S for ECDSA (RFC 7518 §3.4),
	// PKCS#1 v1.5 or PSS for RSA, and the Ed25519 signature for EdDSA.
	SignJWS(ctx context.Context, signingInput []byte) ([]byte, error)
}

// DeviceKey is a device private key with the JWS algorithm it signs with and its key id. It is
// built by ParsePrivateKey, LoadPrivateKey or NewDeviceKey, which refuse weak or unsupported keys.
// A DeviceKey is safe for concurrent use. Formatting it with fmt prints its algorithm and key id
// only, never key material.
type DeviceKey struct {
	signer crypto.Signer
	alg    string
	kid    string
	hash   crypto.Hash // zero for EdDSA
	pss    bool
	size   int // ECDSA coordinate size in bytes
}

// Algorithm returns the JWS algorithm of the key ("RS256", "PS256", "ES256", "ES384", "ES512" or
// "EdDSA").
func (k *DeviceKey) Algorithm() string { return k.alg }

// KeyID returns the key id: the one given with WithKeyID, or the RFC 7638 JWK thumbprint of the
// public key (base64url of its SHA-256).
func (k *DeviceKey) KeyID() string { return k.kid }

// Public returns the public key.
func (k *DeviceKey) Public() crypto.PublicKey { return k.signer.Public() }

// String describes the key without key material.
func (k *DeviceKey) String() string {
	return fmt.Sprintf("DeviceKey{alg: %s, kid: %s}", k.alg, k.kid)
}

// GoString describes the key without key material, for %#v.
func (k *DeviceKey) GoString() string { return k.String() }

// SignJWS signs signingInput with the key's algorithm. The context is not used by in-memory keys.
func (k *DeviceKey) SignJWS(_ context.Context, signingInput []byte) ([]byte, error) {
	if k == nil || k.signer == nil {
		return nil, errors.New("onesoidc: sign: nil DeviceKey")
	}
	switch key := k.signer.(type) {
	case ed25519.PrivateKey:
		return ed25519.Sign(key, signingInput), nil
	case *ecdsa.PrivateKey:
		digest := hashOf(k.hash, signingInput)
		r, s, err := ecdsa.Sign(rand.Reader, key, digest)
		if err != nil {
			return nil, fmt.Errorf("onesoidc: sign %s: %w", k.alg, err)
		}
		return rawECDSA(r, s, k.size), nil
	case *rsa.PrivateKey:
		digest := hashOf(k.hash, signingInput)
		if k.pss {
			return rsa.SignPSS(rand.Reader, key, k.hash, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		return rsa.SignPKCS1v15(rand.Reader, key, k.hash, digest)
	}
	// Any other crypto.Signer (HSM, TPM): let it sign, then convert ECDSA's ASN.1 to raw R||S.
	var opts crypto.SignerOpts = k.hash
	msg := signingInput
	if k.hash != 0 {
		msg = hashOf(k.hash, signingInput)
	}
	if k.pss {
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: k.hash}
	}
	sig, err := k.signer.Sign(rand.Reader, msg, opts)
	if err != nil {
		return nil, fmt.Errorf("onesoidc: sign %s: %w", k.alg, err)
	}
	if k.size != 0 {
		var parsed struct{ R, S *big.Int }
		rest, err := asn1.Unmarshal(sig, &parsed)
		if err != nil || len(rest) != 0 || parsed.R == nil || parsed.S == nil {
			return nil, fmt.Errorf("onesoidc: sign %s: signer returned a malformed ECDSA signature", k.alg)
		}
		return rawECDSA(parsed.R, parsed.S, k.size), nil
	}
	return sig, nil
}

func hashOf(h crypto.Hash, msg []byte) []byte {
	hh := h.New()
	hh.Write(msg)
	return hh.Sum(nil)
}

// rawECDSA encodes r and s as the fixed-size big-endian concatenation of RFC 7518 §3.4.
func rawECDSA(r, s *big.Int, size int) []byte {
	out := make([]byte, 2*size)
	r.FillBytes(out[:size])
	s.FillBytes(out[size:])
	return out
}
