package jose

import (
	"strings"
	"unicode/utf8"
)

// Compact JWS parsing (RFC 7515 §5.2, §7.1), written for the validation hot path: no
// encoding/json, no map, the header read into a typed struct.

// Bounds of the protected header: real headers are a few dozen bytes, and a kid is a short
// identifier. Longer ones are refused as malformed before any key lookup.
const (
	MaxHeaderSize = 8 << 10 // decoded
	MaxKidLength  = 256     // bytes
)

// MaxSignature is the longest signature accepted: an RSA 8192-bit signature.
const MaxSignature = 1024

// TokenType is what the "typ" header parameter says a JWT is (RFC 7515 §4.1.9, RFC 7519 §5.1).
type TokenType uint8

// Token types: TypeJWT for "JWT", "application/jwt" or no typ, TypeAT for RFC 9068 access
// tokens, TypeOther for the rest.
const (
	TypeJWT   TokenType = iota // absent, "JWT" or "application/jwt": an ID token or any JWT
	TypeAT                     // "at+jwt" or "application/at+jwt" (RFC 9068 §2.1)
	TypeOther                  // anything else (logout+jwt, client-authentication+jwt ...)
)

// Header is the typed protected header (RFC 7515 §4.1).
type Header struct {
	Alg    Alg
	Kid    string
	HasKid bool // Kid is not empty
	Typ    TokenType
}

// Compact is a token split at its two dots (RFC 7515 §7.1).
type Compact struct {
	raw        string
	dot1, dot2 int
}

// HeaderPart is BASE64URL(UTF8(JWS Protected Header)).
func (t Compact) HeaderPart() string { return t.raw[:t.dot1] }

// PayloadPart is BASE64URL(JWS Payload).
func (t Compact) PayloadPart() string { return t.raw[t.dot1+1 : t.dot2] }

// SigningInput is the JWS Signing Input, header and payload parts with the dot (RFC 7515 §5.2).
func (t Compact) SigningInput() string { return t.raw[:t.dot2] }

// SignaturePart is BASE64URL(JWS Signature).
func (t Compact) SignaturePart() string { return t.raw[t.dot2+1:] }

// The errors of Split are allocated once: refusing a token costs no allocation here.
var (
	errEmpty             = malformed("", "empty token")
	errJSONSerialization = malformed("", "JSON serialization refused, compact JWS only")
	errOneSegment        = malformed("", "1 segment, compact JWS has 3")
	errTwoSegments       = malformed("", "2 segments, compact JWS has 3")
	errJWE               = malformed("", "5 segments: JWE is not supported")
	errTooManySegments   = malformed("", "too many segments, compact JWS has 3")
	errEmptySegment      = malformed("", "empty header or payload segment")
	errSegmentLength     = malformed("", "segment of impossible base64url length")
	errLongHeader        = malformed("", "header longer than 8 KiB")
)

// Split checks the shape of a compact JWS without allocating (RFC 7515 §7.1, §5.2 steps 1-2):
// exactly three segments of possible base64url lengths, and a header of at most MaxHeaderSize
// bytes. The JSON serialization and JWE (five segments) are refused. The alphabet of each
// segment is checked as it is decoded. The caller bounds the token's length first.
func Split(raw string) (Compact, *Error) {
	if len(raw) == 0 {
		return Compact{}, errEmpty
	}
	if raw[0] == '{' {
		return Compact{}, errJSONSerialization
	}
	dot1 := strings.IndexByte(raw, '.')
	if dot1 < 0 {
		return Compact{}, errOneSegment
	}
	d := strings.IndexByte(raw[dot1+1:], '.')
	if d < 0 {
		return Compact{}, errTwoSegments
	}
	dot2 := dot1 + 1 + d
	if n := strings.Count(raw[dot2+1:], "."); n != 0 {
		if n == 2 {
			return Compact{}, errJWE
		}
		return Compact{}, errTooManySegments
	}
	if dot1 == 0 || dot2 == dot1+1 {
		return Compact{}, errEmptySegment
	}
	if dot1%4 == 1 || (dot2-dot1-1)%4 == 1 || (len(raw)-dot2-1)%4 == 1 {
		return Compact{}, errSegmentLength
	}
	if b64Len(dot1) > MaxHeaderSize {
		return Compact{}, errLongHeader
	}
	return Compact{raw: raw, dot1: dot1, dot2: dot2}, nil
}

// DecodeJSONPart decodes a base64url segment (RFC 7515 §2, strictly) that must hold UTF-8
// (RFC 8259 §8.1), the header or the payload of a JWT. buf is scratch space that is used when
// it is large enough.
func DecodeJSONPart(seg string, buf []byte) (string, bool) {
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

// DecodeSignature decodes the signature segment (RFC 7515 §2, strictly) into buf when it fits;
// signatures over MaxSignature bytes are refused.
func DecodeSignature(seg string, buf []byte) ([]byte, bool) {
	n := b64Len(len(seg))
	if n < 0 || n > MaxSignature {
		return nil, false
	}
	if n > len(buf) {
		buf = make([]byte, n)
	}
	sig := buf[:n]
	return sig, b64Decode(sig, seg)
}

// ParseHeader reads the decoded protected header (RFC 7515 §4). It refuses duplicate names,
// "crit" (RFC 7515 §4.1.11: nothing is understood), keys or key URLs carried in the token (jwk,
// jku, x5u, x5c: RFC 8725 §3.10), the unencoded payload option (b64, RFC 7797) and JWE
// parameters (enc, zip), a missing or non-string alg, and a kid over MaxKidLength bytes.
func ParseHeader(h string) (Header, *Error) {
	var hdr Header
	r := jsonReader{s: h}
	if !r.begin() {
		return hdr, malformed("", "header is not a JSON object")
	}
	var seen memberSet
	hasAlg := false
	for first := true; ; first = false {
		name, ok := r.member(first)
		if !ok {
			break
		}
		if !seen.add(name) {
			return hdr, malformed(name, "duplicate header parameter")
		}
		v := r.value(0)
		if r.bad {
			break
		}
		switch name {
		case "alg":
			if v.kind != jsonString {
				return hdr, malformed("alg", "alg is not a string")
			}
			hdr.Alg, hasAlg = ParseAlg(v.text()), true
		case "kid":
			if v.kind != jsonString {
				return hdr, malformed("kid", "kid is not a string")
			}
			hdr.Kid = v.text()
			hdr.HasKid = hdr.Kid != ""
			if len(hdr.Kid) > MaxKidLength {
				return hdr, malformed("kid", "kid longer than 256 bytes")
			}
		case "typ":
			if v.kind != jsonString {
				return hdr, malformed("typ", "typ is not a string")
			}
			hdr.Typ = parseTyp(v.text())
		case "crit":
			return hdr, malformed("crit", "critical header parameters are not supported")
		case "jwk", "jku", "x5u", "x5c":
			return hdr, malformed(name, "keys and key URLs in the token are never used")
		case "b64":
			return hdr, malformed("b64", "unencoded payloads are not supported")
		case "enc", "zip":
			return hdr, malformed(name, "JWE is not supported")
		}
	}
	if !r.end() {
		return hdr, malformed("", "header is not valid JSON")
	}
	if !hasAlg {
		return hdr, malformed("alg", "alg missing")
	}
	return hdr, nil
}

// parseTyp classifies a "typ" value; media types compare case-insensitively (RFC 7515 §4.1.9).
func parseTyp(s string) TokenType {
	switch {
	case strings.EqualFold(s, "JWT"), strings.EqualFold(s, "application/jwt"):
		return TypeJWT
	case strings.EqualFold(s, "at+jwt"), strings.EqualFold(s, "application/at+jwt"):
		return TypeAT
	}
	return TypeOther
}
