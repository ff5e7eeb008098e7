package jose

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
)

// Signature verification (RFC 7515 §5.2 step 8; RFC 7518 §3.3-3.5; RFC 8037 §3.1) with
// crypto/rsa, crypto/ecdsa and crypto/ed25519 directly.

// PublicKey is a verification key: the one field that matches its type is set. ECOrder is the
// order of EC's curve, big-endian, of the curve's coordinate size. Choosing the key of a token,
// and checking that it fits the algorithm, is the caller's business.
type PublicKey struct {
	RSA     *rsa.PublicKey
	EC      *ecdsa.PublicKey
	ECOrder []byte
	Ed      ed25519.PublicKey
}

// Verify checks the signature sig of t with key k for alg, which the caller has matched to the
// key (RFC 7518 §3.3-3.5, RFC 8037 §3.1). RSA signatures must have the modulus size, ECDSA
// signatures must be R||S of twice the coordinate size with R and S in [1, n-1] (RFC 7518 §3.4;
// CVE-2022-21449). scratch is working space, used when it is large enough.
func Verify(t Compact, sig []byte, alg Alg, k *PublicKey, scratch []byte) bool {
	in := t.SigningInput()
	if alg == EdDSA {
		if len(sig) != ed25519.SignatureSize || k.Ed == nil {
			return false
		}
		msg := scratch
		if len(in) > len(msg) {
			msg = make([]byte, len(in))
		}
		msg = msg[:len(in)]
		copy(msg, in)
		return ed25519.Verify(k.Ed, msg, sig)
	}
	var digest [64]byte
	h := digestOf(alg, in, scratch, digest[:0])
	switch {
	case alg.IsRSA():
		if k.RSA == nil || len(sig) != k.RSA.Size() {
			return false
		}
		if alg.IsPSS() {
			return rsa.VerifyPSS(k.RSA, alg.Hash(), h, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		}
		return rsa.VerifyPKCS1v15(k.RSA, alg.Hash(), h, sig) == nil
	case alg.IsEC():
		size := len(k.ECOrder)
		if k.EC == nil || len(sig) != 2*size {
			return false
		}
		r, s := sig[:size], sig[size:]
		if !inRange(r, k.ECOrder) || !inRange(s, k.ECOrder) {
			return false
		}
		var der [2*66 + 12]byte
		return ecdsa.VerifyASN1(k.EC, h, ASN1Signature(der[:0], r, s))
	}
	return false
}

// digestOf hashes s with the algorithm's hash, copying s through buf when it fits.
func digestOf(alg Alg, s string, buf []byte, out []byte) []byte {
	b := buf
	if len(s) > len(b) {
		b = make([]byte, len(s))
	}
	b = b[:len(s)]
	copy(b, s)
	switch alg.Hash() {
	case crypto.SHA256:
		d := sha256.Sum256(b)
		return append(out, d[:]...)
	case crypto.SHA384:
		d := sha512.Sum384(b)
		return append(out, d[:]...)
	default:
		d := sha512.Sum512(b)
		return append(out, d[:]...)
	}
}

// inRange reports whether the big-endian integer v lies in [1, n-1] (RFC 7518 §3.4; a zero r or
// s is CVE-2022-21449). v and n have the same length.
func inRange(v, n []byte) bool {
	zero := true
	for _, c := range v {
		if c != 0 {
			zero = false
			break
		}
	}
	return !zero && bytes.Compare(v, n) < 0
}

// ASN1Signature appends the DER encoding of the ECDSA signature (r, s) (RFC 3279 §2.2.3
// Ecdsa-Sig-Value) to out; r and s are big-endian and non-empty, of at most 66 bytes.
func ASN1Signature(out, r, s []byte) []byte {
	r, s = trimInt(r), trimInt(s)
	lr, ls := len(r)+int(r[0]>>7), len(s)+int(s[0]>>7)
	body := 2 + lr + 2 + ls
	out = append(out, 0x30)
	if body >= 0x80 {
		out = append(out, 0x81)
	}
	out = append(out, byte(body))
	out = appendInt(out, r, lr)
	return appendInt(out, s, ls)
}

func trimInt(v []byte) []byte {
	for len(v) > 1 && v[0] == 0 {
		v = v[1:]
	}
	return v
}

func appendInt(out, v []byte, l int) []byte {
	out = append(out, 0x02, byte(l))
	if l > len(v) {
		out = append(out, 0)
	}
	return append(out, v...)
}

// AtHash computes at_hash (OpenID Connect Core 1.0 §3.1.3.6): the base64url of the left half of
// the hash of the access token with the hash of the JWS algorithm (SHA-512 for EdDSA with
// Ed25519).
func AtHash(alg Alg, accessToken string) string {
	var sum []byte
	switch alg.Hash() {
	case crypto.SHA256:
		d := sha256.Sum256([]byte(accessToken))
		sum = d[:]
	case crypto.SHA384:
		d := sha512.Sum384([]byte(accessToken))
		sum = d[:]
	default: // SHA-512, and EdDSA
		d := sha512.Sum512([]byte(accessToken))
		sum = d[:]
	}
	return EncodeBase64URL(sum[:len(sum)/2])
}

// VerifySigningInput is Verify for a JWS Signing Input that is not yet part of a token, such as
// the input this package's caller asked a remote signer to sign (RFC 7515 §5.1, §5.2).
func VerifySigningInput(in string, sig []byte, alg Alg, k *PublicKey) bool {
	return Verify(Compact{raw: in, dot2: len(in)}, sig, alg, k, nil)
}
