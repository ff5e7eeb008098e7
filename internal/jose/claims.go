package jose

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// AuthReqIDClaim binds a CIBA ID token to its authentication request (CIBA Core §10.1.1).
const AuthReqIDClaim = "urn:openid:params:jwt:claim:auth_req_id"

// Bits of Claims.Has: the claim was present with the right type.
const (
	HasIss = 1 << iota
	HasSub
	HasAud
	HasExp
	HasNbf
	HasIat
	HasAzp
	HasNonce
	HasAuthReqID
	HasAtHash
	HasAuthTime
	HasJti // a non-empty string
	HasCnf // "cnf" is present (RFC 7800 §3.1): the token is bound to a key
)

// MaxNumericDate is the latest NumericDate accepted: 253402300799 seconds, 9999-12-31T23:59:59Z.
const MaxNumericDate = 253402300799

// ValidNumericDate reports whether f is a NumericDate accepted here (RFC 7519 §2): seconds since
// the epoch within 0 … MaxNumericDate, fractions allowed. Anything else — negative, later than
// year 9999, NaN, ±Inf — is refused, never clamped: a date in milliseconds by mistake (1.8e12)
// lies beyond the range.
func ValidNumericDate(f float64) bool { return f >= 0 && f <= MaxNumericDate }

// Claims are the registered claims (RFC 7519 §4.1) and the OpenID Connect and RFC 9068 claims a
// validator reads, decoded once from a verified payload. Strings are substrings of the payload
// unless they held escapes. Times are NumericDate seconds (RFC 7519 §2).
type Claims struct {
	Has                               uint32
	Iss, Sub, Azp, Nonce, AuthReqID   string
	AtHash, ClientID, Scope, Username string // Username is "preferred_username"
	Role, IdpRole, Acr                string // "role", "idp_role", "acr"
	// Name, Email and Roles are "name" and "email" (OpenID Connect Core 1.0 §5.1) and "roles"
	// (RFC 9068 §7.2.1.1, RFC 7643 §4.1.2), read from the member whose name equals theirs
	// without regard to case, as encoding/json fills a struct field; of another type they are
	// left empty.
	Name, Email             string
	Aud, Amr                []string
	Roles                   []string
	Exp, Nbf, Iat, AuthTime float64

	authTimeText string // the number of auth_time in the payload, for Pack
}

// ParseClaims reads a verified payload (RFC 7519 §4, §7.2 step 10; RFC 8259). It refuses what is
// not a single JSON object, duplicate claim names (also names equal under case folding, which
// encoding/json and so UnmarshalClaims would not tell apart, and names that differ from a claim
// read here only in case, such as "AZP"), numbers out of float64 range (RFC 8725 §3.7), and
// registered claims of the wrong type: iss, sub, azp, nonce, at_hash and auth_req_id must be
// strings, aud a string or an array of strings, exp, nbf, iat and auth_time numbers within
// 0 … MaxNumericDate (ValidNumericDate; NumericDate, RFC 7519 §2: fractions allowed). Other
// claims of an unexpected type are ignored here. The payload must be valid UTF-8 (DecodeJSONPart
// checks it). Error.Name may hold a claim name from the payload, unescaped and unbounded.
func ParseClaims(payload string, cl *Claims) *Error {
	r := jsonReader{s: payload}
	if !r.begin() {
		return malformed("", "payload is not a JSON object")
	}
	var seen memberSet
	for first := true; ; first = false {
		name, ok := r.member(first)
		if !ok {
			break
		}
		if !seen.add(name) {
			return malformed(name, "duplicate claim (names compare without regard to case)")
		}
		v := r.value(0)
		if r.bad {
			break
		}
		switch name {
		case "iss":
			if v.kind != jsonString {
				return &Error{Kind: BadIssuer, Name: "iss", Msg: "iss is not a string"}
			}
			cl.Iss, cl.Has = v.text(), cl.Has|HasIss
		case "sub":
			if v.kind != jsonString {
				return &Error{Kind: BadClaim, Name: "sub", Msg: "sub is not a string"}
			}
			cl.Sub, cl.Has = v.text(), cl.Has|HasSub
		case "aud":
			switch v.kind {
			case jsonString:
				cl.Aud = []string{v.text()}
			case jsonArray:
				auds, ok := stringArray(v)
				if !ok {
					return &Error{Kind: BadAudience, Name: "aud", Msg: "aud is not an array of strings"}
				}
				cl.Aud = auds
			default:
				return &Error{Kind: BadAudience, Name: "aud", Msg: "aud is not a string or an array of strings"}
			}
			cl.Has |= HasAud
		case "exp", "nbf", "iat", "auth_time":
			f, ok := numberValue(v)
			if !ok {
				return &Error{Kind: BadClaim, Name: name, Msg: name + " is not a number"}
			}
			if !ValidNumericDate(f) {
				return &Error{Kind: BadClaim, Name: name, Msg: name + " is not a NumericDate within 0 … 253402300799 (year 9999)"}
			}
			switch name {
			case "exp":
				cl.Exp, cl.Has = f, cl.Has|HasExp
			case "nbf":
				cl.Nbf, cl.Has = f, cl.Has|HasNbf
			case "iat":
				cl.Iat, cl.Has = f, cl.Has|HasIat
			default:
				cl.AuthTime, cl.Has, cl.authTimeText = f, cl.Has|HasAuthTime, v.raw
			}
		case "azp", "nonce", "at_hash", AuthReqIDClaim:
			if v.kind != jsonString {
				return &Error{Kind: BadClaim, Name: name, Msg: name + " is not a string"}
			}
			switch name {
			case "azp":
				cl.Azp, cl.Has = v.text(), cl.Has|HasAzp
			case "nonce":
				cl.Nonce, cl.Has = v.text(), cl.Has|HasNonce
			case "at_hash":
				cl.AtHash, cl.Has = v.text(), cl.Has|HasAtHash
			default:
				cl.AuthReqID, cl.Has = v.text(), cl.Has|HasAuthReqID
			}
		case "client_id", "scope", "preferred_username", "role", "idp_role", "acr":
			if v.kind != jsonString {
				continue
			}
			s := v.text()
			switch name {
			case "client_id":
				cl.ClientID = s
			case "scope":
				cl.Scope = s
			case "preferred_username":
				cl.Username = s
			case "role":
				cl.Role = s
			case "idp_role":
				cl.IdpRole = s
			default:
				cl.Acr = s
			}
		case "amr":
			if amr, ok := stringArray(v); ok {
				cl.Amr = amr
			}
		case "jti":
			if v.kind == jsonString && v.raw != "" {
				cl.Has |= HasJti
			}
		case "cnf":
			if v.kind != jsonNull {
				cl.Has |= HasCnf
			}
		default:
			if known := foldsToKnownClaim(name); known != "" {
				return malformed(name, "claim name differs from "+known+" only in case")
			}
			switch foldsToProfileClaim(name) {
			case "name":
				if v.kind == jsonString {
					cl.Name = v.text()
				}
			case "email":
				if v.kind == jsonString {
					cl.Email = v.text()
				}
			case "roles":
				if roles, ok := stringArray(v); ok {
					cl.Roles = roles
				}
			}
		}
	}
	if !r.end() {
		return malformed("", "payload is not valid JSON")
	}
	return nil
}

// knownClaims are the claims ParseClaims reads.
var knownClaims = [...]string{"iss", "sub", "aud", "exp", "nbf", "iat", "auth_time", "azp", "nonce", "at_hash",
	AuthReqIDClaim, "client_id", "scope", "preferred_username", "role", "idp_role", "acr", "amr", "jti", "cnf"}

// foldsToKnownClaim returns the known claim that name equals under case folding, or "". A struct
// field `json:"azp"` would be filled from "AZP", which ParseClaims does not read as azp.
func foldsToKnownClaim(name string) string {
	for _, k := range knownClaims {
		if len(name) > 0 && name[0] < utf8.RuneSelf && lowerASCII(name[0]) != k[0] {
			continue // known claims start with a lower-case ASCII letter
		}
		if strings.EqualFold(name, k) {
			return k
		}
	}
	return ""
}

// foldsToProfileClaim returns "name", "email" or "roles" if name equals it under case folding
// (strings.EqualFold, the rule of encoding/json), else "".
func foldsToProfileClaim(name string) string {
	if len(name) == 0 {
		return ""
	}
	if c := name[0]; c < utf8.RuneSelf {
		switch lowerASCII(c) {
		case 'n':
			if strings.EqualFold(name, "name") {
				return "name"
			}
		case 'e':
			if strings.EqualFold(name, "email") {
				return "email"
			}
		case 'r':
			if strings.EqualFold(name, "roles") {
				return "roles"
			}
		}
	}
	return ""
}

// UnmarshalClaims decodes a payload that ParseClaims accepted into v with encoding/json (RFC 7519
// §7.2 step 10), for claims ParseClaims does not read.
func UnmarshalClaims(payload string, v any) error {
	return json.Unmarshal([]byte(payload), v)
}

// ClaimsMap decodes every claim of a payload that ParseClaims accepted with encoding/json
// (numbers as float64); nil if it does not decode.
func ClaimsMap(payload string) map[string]any {
	var m map[string]any
	_ = json.Unmarshal([]byte(payload), &m)
	return m
}

// UnverifiedClaims decodes the payload of a compact JWS into v with encoding/json, without
// checking its signature (RFC 7519 §7.2 steps 1-2, 7 and 10 only), as encoding/base64's
// RawURLEncoding and encoding/json accept them. It is for a token of the caller's own, never to
// trust a token; Error.Msg says what failed.
func UnverifiedClaims(raw string, v any) *Error {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return malformed("", "not a compact JWS")
	}
	data, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return malformed("", "payload is not base64url")
	}
	if err := json.Unmarshal(data, v); err != nil {
		return malformed("", "payload is not JSON")
	}
	return nil
}
