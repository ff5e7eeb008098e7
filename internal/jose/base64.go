package jose

import (
	"encoding/base64"
	"strings"
)

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

// b64Decode decodes unpadded base64url strictly (RFC 7515 §2: no padding, no other alphabet, no
// whitespace; zero trailing bits, RFC 4648 §3.5) into dst, which must hold b64Len(len(src)) bytes.
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

// EncodeBase64URL returns the unpadded base64url encoding of b (RFC 7515 §2).
func EncodeBase64URL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// DecodeBase64URLLenient decodes base64url text that is not part of a token, such as a signature
// returned by a signing service: trailing "=" padding is dropped, then the text is decoded as
// encoding/base64's RawURLEncoding does (RFC 4648 §5; line breaks ignored, trailing bits not
// checked). Token segments are decoded strictly by DecodeJSONPart and DecodeSignature.
func DecodeBase64URLLenient(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
