package onesoidc

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"strings"
	"unicode/utf8"
)

// Compact JWS parsing and signature verification (RFC 7515 §5.2, §7.1; RFC 7518 §3), written for
// the validation hot path: no encoding/json, no map, the header read into a typed struct, and the
// signature checked with crypto/rsa, crypto/ecdsa and crypto/ed25519 directly.

// maxTokenSize is the longest token accepted (DESIGN §5); validate refuses longer input before
// the cache lookup and any parsing.
const maxTokenSize = 64 << 10

// Bounds of the protected header: real headers are a few dozen bytes, and a kid is a short
// identifier (TV-27). Longer ones are refused as malformed before any key lookup, so that they
// never cause a JWKS fetch or stay in the negative kid cache (JW-05).
const (
	maxHeaderSize = 8 << 10 // decoded
	maxKidLength  = 256     // bytes
)

// algID is a supported JWS algorithm (RFC 7518 §3.1, RFC 8037 §3.1).
type algID uint8

const (
	algUnknown algID = iota
	algRS256
	algRS384
	algRS512
	algPS256
	algPS384
	algPS512
	algES256
	algES384
	algES512
	algEdDSA
	numAlgs
)

var algNames = [numAlgs]string{"", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

func (a algID) String() string { return algNames[a] }

// parseAlg returns the algID of a supported algorithm name, or algUnknown (for "none", HS*,
// any other name and any other spelling).
func parseAlg(s string) algID {
	switch s {
	case "RS256":
		return algRS256
	case "RS384":
		return algRS384
	case "RS512":
		return algRS512
	case "PS256":
		return algPS256
	case "PS384":
		return algPS384
	case "PS512":
		return algPS512
	case "ES256":
		return algES256
	case "ES384":
		return algES384
	case "ES512":
		return algES512
	case "EdDSA":
		return algEdDSA
	}
	return algUnknown
}

func (a algID) isRSA() bool { return a >= algRS256 && a <= algPS512 }
func (a algID) isPSS() bool { return a >= algPS256 && a <= algPS512 }
func (a algID) isEC() bool  { return a >= algES256 && a <= algES512 }

// hash is the digest of the algorithm (zero for EdDSA, which hashes internally).
func (a algID) hash() crypto.Hash {
	switch a {
	case algRS256, algPS256, algES256:
		return crypto.SHA256
	case algRS384, algPS384, algES384:
		return crypto.SHA384
	case algRS512, algPS512, algES512:
		return crypto.SHA512
	}
	return 0
}

// algSet is a set of algorithms.
type algSet uint16

func (s algSet) has(a algID) bool { return a != algUnknown && s&(1<<a) != 0 }

func (s algSet) names() []string {
	var out []string
	for a := algRS256; a < numAlgs; a++ {
		if s.has(a) {
			out = append(out, a.String())
		}
	}
	return out
}

// allAlgs holds every supported algorithm.
const allAlgs = algSet(1<<numAlgs - 2)

// tokenType is what the "typ" header says a JWT is.
type tokenType uint8

const (
	typeJWT   tokenType = iota // absent, "JWT" or "application/jwt": an ID token or any JWT
	typeAT                     // "at+jwt" or "application/at+jwt" (RFC 9068 §2.1)
	typeOther                  // anything else (logout+jwt, client-authentication+jwt ...)
)

// jwsHeader is the typed protected header.
type jwsHeader struct {
	alg    algID
	kid    string
	hasKid bool
	typ    tokenType
}

// compactJWS is a token split at its two dots.
type compactJWS struct {
	raw        string
	dot1, dot2 int
}

func (t compactJWS) headerPart() string    { return t.raw[:t.dot1] }
func (t compactJWS) payloadPart() string   { return t.raw[t.dot1+1 : t.dot2] }
func (t compactJWS) signingInput() string  { return t.raw[:t.dot2] }
func (t compactJWS) signaturePart() string { return t.raw[t.dot2+1:] }

// splitJWS checks the shape of a compact JWS without allocating: exactly three segments of
// possible base64url lengths (TV-28, TV-30, TV-31), and a header of at most maxHeaderSize bytes.
// The caller has refused tokens over maxTokenSize before anything else (validate, TV-29).
func splitJWS(raw string) (compactJWS, *ValidationError) {
	if len(raw) == 0 {
		return compactJWS{}, invalid(ReasonMalformed, "", "empty token")
	}
	if raw[0] == '{' {
		return compactJWS{}, invalid(ReasonMalformed, "", "JSON serialization refused, compact JWS only")
	}
	dot1 := strings.IndexByte(raw, '.')
	if dot1 < 0 {
		return compactJWS{}, invalid(ReasonMalformed, "", "1 segment, compact JWS has 3")
	}
	d := strings.IndexByte(raw[dot1+1:], '.')
	if d < 0 {
		return compactJWS{}, invalid(ReasonMalformed, "", "2 segments, compact JWS has 3")
	}
	dot2 := dot1 + 1 + d
	if n := strings.Count(raw[dot2+1:], "."); n != 0 {
		if n == 2 {
			return compactJWS{}, invalid(ReasonMalformed, "", "5 segments: JWE is not supported")
		}
		return compactJWS{}, invalid(ReasonMalformed, "", "too many segments, compact JWS has 3")
	}
	if dot1 == 0 || dot2 == dot1+1 {
		return compactJWS{}, invalid(ReasonMalformed, "", "empty header or payload segment")
	}
	if dot1%4 == 1 || (dot2-dot1-1)%4 == 1 || (len(raw)-dot2-1)%4 == 1 {
		return compactJWS{}, invalid(ReasonMalformed, "", "segment of impossible base64url length")
	}
	if b64Len(dot1) > maxHeaderSize {
		return compactJWS{}, invalid(ReasonMalformed, "", "header longer than 8 KiB")
	}
	// The alphabet of each segment is checked as it is decoded, all before the signature.
	return compactJWS{raw: raw, dot1: dot1, dot2: dot2}, nil
}

// b64Table maps the base64url alphabet (RFC 4648 §5) to its values and anything else to 0xff.
var b64Table = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range len(alphabet) {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// b64Len is the decoded length of unpadded base64url of length n, or -1 if n is impossible.
func b64Len(n int) int {
	if n%4 == 1 {
		return -1
	}
	return n/4*3 + (n%4*3)/4
}

// b64Decode decodes unpadded base64url strictly (no padding, no other alphabet, no whitespace,
// zero trailing bits) into dst, which must hold b64Len(len(src)) bytes.
func b64Decode(dst []byte, src string) bool {
	n := len(src)
	if n%4 == 1 {
		return false
	}
	di := 0
	i := 0
	for ; i+4 <= n; i += 4 {
		a, b, c, d := b64Table[src[i]], b64Table[src[i+1]], b64Table[src[i+2]], b64Table[src[i+3]]
		if (a|b|c|d)&0xc0 != 0 {
			return false
		}
		v := uint32(a)<<18 | uint32(b)<<12 | uint32(c)<<6 | uint32(d)
		dst[di], dst[di+1], dst[di+2] = byte(v>>16), byte(v>>8), byte(v)
		di += 3
	}
	switch n - i {
	case 2:
		a, b := b64Table[src[i]], b64Table[src[i+1]]
		if (a|b)&0xc0 != 0 || b&0x0f != 0 {
			return false
		}
		dst[di] = a<<2 | b>>4
	case 3:
		a, b, c := b64Table[src[i]], b64Table[src[i+1]], b64Table[src[i+2]]
		if (a|b|c)&0xc0 != 0 || c&0x03 != 0 {
			return false
		}
		dst[di], dst[di+1] = a<<2|b>>4, b<<4|c>>2
	}
	return true
}

// decodeJSONPart decodes a base64url segment that must hold a UTF-8 JSON object. buf is scratch
// space that is used when it is large enough.
func decodeJSONPart(seg string, buf []byte) (string, bool) {
	n := b64Len(len(seg))
	if n < 0 {
		return "", false
	}
	if n > len(buf) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if !b64Decode(buf, seg) || !utf8.Valid(buf) {
		return "", false
	}
	return string(buf), true
}

// parseHeader reads the protected header (RFC 7515 §4). It refuses duplicate names, "crit"
// (RFC 7515 §4.1.11: nothing is understood), keys or key URLs carried in the token (jwk, jku,
// x5u, x5c: RFC 8725 §3.10; never fetched), the unencoded payload option (b64, RFC 7797) and JWE
// parameters (enc, zip).
func parseHeader(h string) (jwsHeader, *ValidationError) {
	var hdr jwsHeader
	r := jsonReader{s: h}
	if !r.begin() {
		return hdr, invalid(ReasonMalformed, "", "header is not a JSON object")
	}
	var seen memberSet
	hasAlg := false
	for first := true; ; first = false {
		name, ok := r.member(first)
		if !ok {
			break
		}
		if !seen.add(name) {
			return hdr, invalid(ReasonMalformed, name, "duplicate header parameter")
		}
		v := r.value(0)
		if r.bad {
			break
		}
		switch name {
		case "alg":
			if v.kind != jsonString {
				return hdr, invalid(ReasonMalformed, "alg", "alg is not a string")
			}
			hdr.alg, hasAlg = parseAlg(v.text()), true
		case "kid":
			if v.kind != jsonString {
				return hdr, invalid(ReasonMalformed, "kid", "kid is not a string")
			}
			hdr.kid = v.text()
			hdr.hasKid = hdr.kid != ""
			if len(hdr.kid) > maxKidLength {
				return hdr, invalid(ReasonMalformed, "kid", "kid longer than 256 bytes")
			}
		case "typ":
			if v.kind != jsonString {
				return hdr, invalid(ReasonMalformed, "typ", "typ is not a string")
			}
			hdr.typ = parseTyp(v.text())
		case "crit":
			return hdr, invalid(ReasonMalformed, "crit", "critical header parameters are not supported")
		case "jwk", "jku", "x5u", "x5c":
			return hdr, invalid(ReasonMalformed, name, "keys and key URLs in the token are never used")
		case "b64":
			return hdr, invalid(ReasonMalformed, "b64", "unencoded payloads are not supported")
		case "enc", "zip":
			return hdr, invalid(ReasonMalformed, name, "JWE is not supported")
		}
	}
	if !r.end() {
		return hdr, invalid(ReasonMalformed, "", "header is not valid JSON")
	}
	if !hasAlg {
		return hdr, invalid(ReasonMalformed, "alg", "alg missing")
	}
	return hdr, nil
}

// parseTyp classifies a "typ" value; media types compare case-insensitively (RFC 7515 §4.1.9).
func parseTyp(s string) tokenType {
	switch {
	case strings.EqualFold(s, "JWT"), strings.EqualFold(s, "application/jwt"):
		return typeJWT
	case strings.EqualFold(s, "at+jwt"), strings.EqualFold(s, "application/at+jwt"):
		return typeAT
	}
	return typeOther
}

// maxSignature is the longest signature accepted: an RSA 8192-bit signature.
const maxSignature = 1024

// decodeSignature decodes the signature segment into buf when it fits.
func decodeSignature(seg string, buf []byte) ([]byte, bool) {
	n := b64Len(len(seg))
	if n < 0 || n > maxSignature {
		return nil, false
	}
	if n > len(buf) {
		buf = make([]byte, n)
	}
	sig := buf[:n]
	return sig, b64Decode(sig, seg)
}

// verifySignature checks the signature sig of t with key k for alg, which the caller has
// matched to the key (RFC 7518 §3.3-3.5, RFC 8037 §3.1). scratch is working space.
func verifySignature(t compactJWS, sig []byte, alg algID, k *jwk, scratch []byte) bool {
	in := t.signingInput()
	if alg == algEdDSA {
		if len(sig) != ed25519.SignatureSize {
			return false
		}
		msg := scratch
		if len(in) > len(msg) {
			msg = make([]byte, len(in))
		}
		msg = msg[:len(in)]
		copy(msg, in)
		return ed25519.Verify(k.ed, msg, sig)
	}
	var digest [64]byte
	h := digestOf(alg, in, scratch, digest[:0])
	switch {
	case alg.isRSA():
		if len(sig) != k.rsa.Size() {
			return false
		}
		if alg.isPSS() {
			return rsa.VerifyPSS(k.rsa, alg.hash(), h, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		}
		return rsa.VerifyPKCS1v15(k.rsa, alg.hash(), h, sig) == nil
	case alg.isEC():
		size := len(k.ecOrder)
		if len(sig) != 2*size {
			return false
		}
		r, s := sig[:size], sig[size:]
		if !inRange(r, k.ecOrder) || !inRange(s, k.ecOrder) {
			return false
		}
		var der [2*66 + 12]byte
		return ecdsa.VerifyASN1(k.ec, h, asn1Signature(der[:0], r, s))
	}
	return false
}

// digestOf hashes s with the algorithm's hash, copying s through buf when it fits.
func digestOf(alg algID, s string, buf []byte, out []byte) []byte {
	b := buf
	if len(s) > len(b) {
		b = make([]byte, len(s))
	}
	b = b[:len(s)]
	copy(b, s)
	switch alg.hash() {
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

// asn1Signature appends the DER encoding of the ECDSA signature (r, s) to out.
func asn1Signature(out, r, s []byte) []byte {
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
