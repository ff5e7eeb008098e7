package jose

import "strings"

// IsJWTShaped reports whether token goes the JWT way rather than to introspection: it starts
// with "eyJ" (the base64url of a JSON object's `{"`, RFC 7515 §7.1) and holds a dot, or it has
// exactly three or five dot-separated segments (a compact JWS or JWE, RFC 7516 §7.1). Anything
// else is an opaque token.
func IsJWTShaped(token string) bool {
	dots := strings.Count(token, ".")
	return dots == 2 || dots == 4 || (dots > 0 && strings.HasPrefix(token, "eyJ"))
}

// IsB64Token reports whether s has the b64token syntax of bearer tokens (RFC 6750 §2.1):
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func IsB64Token(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			break
		}
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}
