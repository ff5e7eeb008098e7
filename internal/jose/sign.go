package jose

import (
	"encoding/base64"
	"strconv"
)

// Compact JWS serialization (RFC 7515 §5.1, §7.1) of tokens this SDK signs. The signature itself
// comes from the caller's signer: SigningInput gives the bytes to sign, AppendSignature the token.

// AppendJSONString appends s as a JSON string (RFC 8259 §7): quote, backslash and control
// characters escaped, everything else (UTF-8 included) as is.
func AppendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// EncodeHeader returns BASE64URL(UTF8(JWS Protected Header)) of a header with alg, typ and, when
// not empty, kid (RFC 7515 §4.1.1, §4.1.9, §4.1.4).
func EncodeHeader(alg, typ, kid string) string {
	b := []byte(`{"alg":`)
	b = AppendJSONString(b, alg)
	b = append(b, `,"typ":`...)
	b = AppendJSONString(b, typ)
	if kid != "" {
		b = append(b, `,"kid":`...)
		b = AppendJSONString(b, kid)
	}
	b = append(b, '}')
	return base64.RawURLEncoding.EncodeToString(b)
}

// AppendClaims appends a JWT claims set of iss, sub, aud, jti, iat and exp (RFC 7519 §4.1), as
// in a client assertion (RFC 7523 §3).
func AppendClaims(b []byte, iss, sub, aud, jti string, iat, exp int64) []byte {
	b = append(b, `{"iss":`...)
	b = AppendJSONString(b, iss)
	b = append(b, `,"sub":`...)
	b = AppendJSONString(b, sub)
	b = append(b, `,"aud":`...)
	b = AppendJSONString(b, aud)
	b = append(b, `,"jti":`...)
	b = AppendJSONString(b, jti)
	b = append(b, `,"iat":`...)
	b = strconv.AppendInt(b, iat, 10)
	b = append(b, `,"exp":`...)
	b = strconv.AppendInt(b, exp, 10)
	return append(b, '}')
}

// SigningInput returns the JWS Signing Input ASCII(header || '.' || BASE64URL(payload))
// (RFC 7515 §5.1 step 6) of a pre-encoded header, with room for a signature of up to 512 bytes
// so that AppendSignature does not copy it.
func SigningInput(header string, payload []byte) []byte {
	n := len(header) + 1 + base64.RawURLEncoding.EncodedLen(len(payload))
	buf := make([]byte, n, n+1+base64.RawURLEncoding.EncodedLen(512))
	copy(buf, header)
	buf[len(header)] = '.'
	base64.RawURLEncoding.Encode(buf[len(header)+1:], payload)
	return buf
}

// AppendSignature returns the compact JWS of a signing input and its signature:
// input || '.' || BASE64URL(sig) (RFC 7515 §7.1). It appends to input's array.
func AppendSignature(input, sig []byte) string {
	input = append(input, '.')
	input = base64.RawURLEncoding.AppendEncode(input, sig)
	return string(input)
}
