package onesoidc

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"

	gojose "github.com/go-jose/go-jose/v4"
	"github.com/ones-now/onesoidc/internal/jose"
)

// WithSignerPublicKey gives the device's public key, so that every signature the signing service
// returns is verified before it is used (RFC 7515 §5.2); a signature that does not verify (a wrong key, a wrong device, or a service that is not
// the device's own) is never used: it is an *HTTPError matching ErrInvalidResponse.
// pub must be an *rsa.PublicKey of at least 2048 bits for RS256 and PS256, an *ecdsa.PublicKey
// on P-256, P-384 or P-521 for ES256, ES384 and ES512, or an ed25519.PublicKey for EdDSA. Default:
// none, and signatures are checked for their length only.
func WithSignerPublicKey(pub crypto.PublicKey) Option {
	return signerOption(func(s *RemoteSigner, o *options) {
		if pub == nil {
			o.fail("WithSignerPublicKey", "nil public key")
			return
		}
		s.pub = pub
	})
}

// WithSignerPublicJWK is WithSignerPublicKey for the device's public key as a JWK (RFC 7517 §4),
// such as the one px-device-identity registered. A JWK with private members ("d") or with an
// "alg" other than the signer's is refused.
func WithSignerPublicJWK(jwk []byte) Option {
	return signerOption(func(s *RemoteSigner, o *options) {
		var k gojose.JSONWebKey
		if err := k.UnmarshalJSON(jwk); err != nil {
			o.errs = append(o.errs, &ConfigError{Field: "WithSignerPublicJWK", Reason: "not a usable JWK", Err: errors.New(sanitizeJOSEError(err))})
			return
		}
		if !k.IsPublic() {
			o.fail("WithSignerPublicJWK", `the JWK holds a private key ("d"); give the public JWK`)
			return
		}
		if k.Algorithm != "" && k.Algorithm != s.alg {
			o.fail("WithSignerPublicJWK", "the JWK's alg %q differs from the signer's %s", sanitize(k.Algorithm, 32), s.alg)
			return
		}
		s.pub = k.Key
	})
}

// Public returns the device's public key given with WithSignerPublicKey or WithSignerPublicJWK,
// or nil.
func (s *RemoteSigner) Public() crypto.PublicKey { return s.pub }

// checkSignerKey reports whether pub can verify alg signatures, or why not.
func checkSignerKey(alg string, pub crypto.PublicKey) error {
	fail := func(has string) error {
		return &ConfigError{Field: "WithSignerPublicKey", Reason: fmt.Sprintf("a %s key cannot verify %s signatures", has, alg)}
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N == nil || k.N.BitLen() < minRSABits {
			return &ConfigError{Field: "WithSignerPublicKey", Reason: fmt.Sprintf("RSA key under %d bits (RFC 7518 §3.3)", minRSABits)}
		}
		if alg != "RS256" && alg != "PS256" {
			return fail("RSA")
		}
	case *ecdsa.PublicKey:
		want := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		if want == nil || k.Curve != want {
			return fail("ECDSA")
		}
	case ed25519.PublicKey:
		if alg != "EdDSA" || len(k) != ed25519.PublicKeySize {
			return fail("Ed25519")
		}
	default:
		return &ConfigError{Field: "WithSignerPublicKey", Reason: fmt.Sprintf("unsupported public key type %T", pub)}
	}
	return nil
}

// verifyJWSSignature verifies a JWS signature of signingInput (RFC 7518 §3.3-3.5, RFC 8037
// §3.1) with a key checked by checkSignerKey.
func verifyJWSSignature(alg string, pub crypto.PublicKey, signingInput, sig []byte) bool {
	var k jose.PublicKey
	switch p := pub.(type) {
	case *rsa.PublicKey:
		k.RSA = p
	case *ecdsa.PublicKey:
		params := p.Curve.Params()
		k.EC, k.ECOrder = p, params.N.FillBytes(make([]byte, (params.BitSize+7)/8))
	case ed25519.PublicKey:
		k.Ed = p
	default:
		return false
	}
	return jose.VerifySigningInput(string(signingInput), sig, jose.ParseAlg(alg), &k)
}
