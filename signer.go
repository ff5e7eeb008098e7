package onesoidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"time"

	"github.com/ones-now/onesoidc/internal/jose"
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

// KeyID returns the JWS "kid" the key announces: the one given with WithKeyID, else the "kid"
// of the registered JWK (WithRegisteredJWK), else the "kid" of a private JWK, else "" (none).
func (k *DeviceKey) KeyID() string { return k.kid }

// Public returns the public key.
func (k *DeviceKey) Public() crypto.PublicKey { return k.signer.Public() }

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
			return nil, wrapf("onesoidc: sign %s: %w", k.alg, err)
		}
		return rawECDSA(r, s, k.size)
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
		return nil, wrapf("onesoidc: sign %s: %w", k.alg, err)
	}
	if k.size != 0 {
		var parsed struct{ R, S *big.Int }
		rest, err := asn1.Unmarshal(sig, &parsed)
		if err != nil || len(rest) != 0 || parsed.R == nil || parsed.S == nil {
			return nil, fmt.Errorf("onesoidc: sign %s: signer returned a malformed ECDSA signature", k.alg)
		}
		return rawECDSA(parsed.R, parsed.S, k.size)
	}
	return sig, nil
}

func hashOf(h crypto.Hash, msg []byte) []byte {
	hh := h.New()
	hh.Write(msg)
	return hh.Sum(nil)
}

// rawECDSA encodes r and s as the fixed-size big-endian concatenation of RFC 7518 §3.4. A
// signer that returns values that do not fit is an error, not a panic.
func rawECDSA(r, s *big.Int, size int) ([]byte, error) {
	if r.Sign() <= 0 || s.Sign() <= 0 || r.BitLen() > 8*size || s.BitLen() > 8*size {
		return nil, errors.New("onesoidc: sign: signer returned an out-of-range ECDSA signature")
	}
	out := make([]byte, 2*size)
	r.FillBytes(out[:size])
	s.FillBytes(out[size:])
	return out, nil
}

// assertionAudience selects the "aud" of client assertions (RFC 7523 §3, item 3).
type assertionAudience int

const (
	// The zero value puts the token endpoint URL in "aud" for every endpoint: what the ONES
	// clients send, and what RFC 7523 §3 names. It is the default.
	_ assertionAudience = iota
	// audienceIssuer puts the issuer identifier in "aud" (WithAssertionAudienceIssuer).
	audienceIssuer
	// audienceCalledEndpoint puts the URL of the endpoint being called in "aud"
	// (WithAssertionAudienceEndpoint).
	audienceCalledEndpoint
)

// Defaults and bounds of client assertions.
const (
	defaultAssertionLifetime = 300 * time.Second
	clientAssertionType      = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

// encodeJWSHeader returns the base64url JWS header for a signer: alg, typ and kid (RFC 7515 §4.1).
func encodeJWSHeader(s Signer, typ string) string {
	return jose.EncodeHeader(s.Algorithm(), typ, s.KeyID())
}

// signCompact returns the compact JWS (RFC 7515 §7.1) of payload under the pre-encoded header,
// signed by s.
func signCompact(ctx context.Context, s Signer, header string, payload []byte) (string, error) {
	in := jose.SigningInput(header, payload)
	sig, err := s.SignJWS(ctx, in)
	if err != nil {
		return "", err
	}
	return jose.AppendSignature(in, sig), nil
}

// newJTI returns a fresh JWT ID of 128 random bits (RFC 7519 §4.1.7).
func newJTI() string { return rand.Text() }

// defaultRemoteSignerURL is the signing endpoint of the local px-device-identity-service, which
// holds the key of devices with key_security "tpm".
const defaultRemoteSignerURL = "http://localhost:8000/sign"

// RemoteSigner signs through the local px-device-identity-service: POST {"deviceId", "message"}
// with the JWS signing input as message, answered by {"signature": <base64url JWS signature>}. It
// is the Signer for devices whose key never leaves the TPM. It is safe for concurrent use.
type RemoteSigner struct {
	url      string
	deviceID string
	alg      string
	kid      string
	size     int // expected ECDSA signature size, 0 when not ECDSA
	http     *httpCore
	pub      crypto.PublicKey // the device's public key, when known (remoteverify.go)
}

// signerOption is an Option that concerns NewRemoteSigner only.
func signerOption(f func(*RemoteSigner, *options)) Option {
	return func(o *options) { o.signer = append(o.signer, f) }
}

// WithSignerURL sets the signing endpoint (default http://localhost:8000/sign). It must be http on a
// loopback host or https.
func WithSignerURL(u string) Option {
	return signerOption(func(s *RemoteSigner, o *options) {
		if err := checkEndpoint("WithSignerURL", u, false); err != nil {
			o.errs = append(o.errs, err)
			return
		}
		s.url = u
	})
}

// WithSignerKeyID sets the JWS "kid" announced with signatures (default: none).
func WithSignerKeyID(kid string) Option {
	return signerOption(func(s *RemoteSigner, _ *options) { s.kid = kid })
}

// NewRemoteSigner returns a signer for device deviceID whose key signs with alg ("RS256",
// "PS256", "ES256", "ES384", "ES512" or "EdDSA"); DeviceConfig.KeyAlgorithm gives alg from the
// device's key_type. Besides the signer options (WithSignerURL, WithSignerKeyID,
// WithSignerPublicKey, WithSignerPublicJWK), WithHTTPClient, WithLogger, WithUserAgent and
// WithRequestTimeout apply to the signer's requests.
func NewRemoteSigner(deviceID, alg string, opts ...Option) (*RemoteSigner, error) {
	s := &RemoteSigner{url: defaultRemoteSignerURL, deviceID: deviceID, alg: alg}
	sizes := map[string]int{"RS256": 0, "PS256": 0, "ES256": 32, "ES384": 48, "ES512": 66, "EdDSA": 0}
	size, ok := sizes[alg]
	if !ok {
		return nil, &ConfigError{Field: "alg", Reason: fmt.Sprintf("unsupported signing algorithm %q", sanitize(alg, 32))}
	}
	s.size = size
	if deviceID == "" {
		return nil, &ConfigError{Field: "deviceId", Reason: "empty device id"}
	}
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	for _, apply := range o.signer {
		apply(s, o)
	}
	if len(o.errs) > 0 {
		return nil, errors.Join(o.errs...)
	}
	if s.pub != nil {
		if err := checkSignerKey(alg, s.pub); err != nil {
			return nil, err
		}
	}
	s.http = newHTTPCore(o)
	return s, nil
}

// signatureSize checks the length of a signature for the algorithm: raw R||S for ECDSA, 64 bytes
// for Ed25519, the modulus size of an RSA key of 2048 to 4096 bits.
func (s *RemoteSigner) signatureSize(n int) (string, bool) {
	switch {
	case s.size != 0:
		return strconv.Itoa(2 * s.size), n == 2*s.size
	case s.alg == "EdDSA":
		return "64", n == ed25519.SignatureSize
	default:
		return "256 to 512", n >= 256 && n <= 512
	}
}

// Algorithm returns the JWS algorithm of the device key.
func (s *RemoteSigner) Algorithm() string { return s.alg }

// KeyID returns the key id given with WithSignerKeyID, or "".
func (s *RemoteSigner) KeyID() string { return s.kid }

// SignJWS asks the signing service to sign signingInput. When the device's public key is known
// (WithSignerPublicKey, WithSignerPublicJWK), the signature is verified before it is returned.
func (s *RemoteSigner) SignJWS(ctx context.Context, signingInput []byte) ([]byte, error) {
	body, err := json.Marshal(struct {
		DeviceID string `json:"deviceId"`
		Message  string `json:"message"`
	}{s.deviceID, string(signingInput)})
	if err != nil {
		return nil, err
	}
	resp, err := s.http.exchange(ctx, request{op: "remote sign", method: "POST", url: s.url, json: body, limit: 16 << 10})
	if err != nil {
		return nil, err
	}
	var out struct {
		Signature string `json:"signature"`
	}
	if err := resp.decode("invalid answer", &out); err != nil {
		return nil, err
	}
	sig, err := jose.DecodeBase64URLLenient(out.Signature)
	if err != nil || len(sig) == 0 {
		return nil, resp.invalid("signature is not base64url", err)
	}
	if want, ok := s.signatureSize(len(sig)); !ok {
		return nil, resp.invalid(fmt.Sprintf("%s signature of %d bytes, want %s", s.alg, len(sig), want), nil)
	}
	if s.pub != nil && !verifyJWSSignature(s.alg, s.pub, signingInput, sig) {
		return nil, resp.invalid(fmt.Sprintf("the %s signature does not verify with the device's public key", s.alg), nil)
	}
	return sig, nil
}
