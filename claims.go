package onesoidc

import (
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// authReqIDClaim binds a CIBA ID token to its authentication request (CIBA Core §10.1.1).
const authReqIDClaim = "urn:openid:params:jwt:claim:auth_req_id"

// maxSubjectLength is the longest "sub" accepted (OpenID Connect Core 1.0 §2: at most 255 ASCII
// characters).
const maxSubjectLength = 255

// Bits of tokenClaims.has.
const (
	hasIss = 1 << iota
	hasSub
	hasAud
	hasExp
	hasNbf
	hasIat
	hasAzp
	hasNonce
	hasAuthReqID
	hasAtHash
	hasAuthTime
	hasJti // a non-empty string
)

// tokenClaims are the claims the validator reads, decoded once from the verified payload. Strings
// are substrings of the payload unless they held escapes.
type tokenClaims struct {
	has                               uint32
	iss, sub, azp, nonce, authReqID   string
	atHash, clientID, scope, username string
	role, idpRole, acr                string
	aud, amr                          []string
	exp, nbf, iat, authTime           float64
}

// parseClaims reads a verified payload (RFC 7519 §4). It refuses what is not a single JSON object,
// duplicate claim names (also names equal under case folding, which encoding/json and so Claims
// would not tell apart, and names that differ from a claim read here only in case, such as
// "AZP"), numbers out of float64 range, and registered claims of the wrong type:
// iss, sub, azp, nonce, at_hash and auth_req_id must be strings, aud a string or an array of
// strings, exp, nbf, iat and auth_time numbers (NumericDate, RFC 7519 §2: fractions allowed).
// Other claims of an unexpected type are ignored here and remain available through Claims.
func parseClaims(payload string, cl *tokenClaims) *ValidationError {
	r := jsonReader{s: payload}
	if !r.begin() {
		return invalid(ReasonMalformed, "", "payload is not a JSON object")
	}
	var seen memberSet
	for first := true; ; first = false {
		name, ok := r.member(first)
		if !ok {
			break
		}
		if !seen.add(name) {
			return invalid(ReasonMalformed, sanitize(name, 64), "duplicate claim (names compare without regard to case)")
		}
		v := r.value(0)
		if r.bad {
			break
		}
		switch name {
		case "iss":
			if v.kind != jsonString {
				return invalid(ReasonInvalidIssuer, "iss", "iss is not a string")
			}
			cl.iss, cl.has = v.text(), cl.has|hasIss
		case "sub":
			if v.kind != jsonString {
				return invalid(ReasonInvalidClaim, "sub", "sub is not a string")
			}
			cl.sub, cl.has = v.text(), cl.has|hasSub
		case "aud":
			switch v.kind {
			case jsonString:
				cl.aud = []string{v.text()}
			case jsonArray:
				auds, ok := stringArray(v)
				if !ok {
					return invalid(ReasonInvalidAudience, "aud", "aud is not an array of strings")
				}
				cl.aud = auds
			default:
				return invalid(ReasonInvalidAudience, "aud", "aud is not a string or an array of strings")
			}
			cl.has |= hasAud
		case "exp", "nbf", "iat", "auth_time":
			f, ok := numberValue(v)
			if !ok {
				return invalid(ReasonInvalidClaim, name, name+" is not a number")
			}
			switch name {
			case "exp":
				cl.exp, cl.has = f, cl.has|hasExp
			case "nbf":
				cl.nbf, cl.has = f, cl.has|hasNbf
			case "iat":
				cl.iat, cl.has = f, cl.has|hasIat
			default:
				cl.authTime, cl.has = f, cl.has|hasAuthTime
			}
		case "azp", "nonce", "at_hash", authReqIDClaim:
			if v.kind != jsonString {
				return invalid(ReasonInvalidClaim, name, name+" is not a string")
			}
			switch name {
			case "azp":
				cl.azp, cl.has = v.text(), cl.has|hasAzp
			case "nonce":
				cl.nonce, cl.has = v.text(), cl.has|hasNonce
			case "at_hash":
				cl.atHash, cl.has = v.text(), cl.has|hasAtHash
			default:
				cl.authReqID, cl.has = v.text(), cl.has|hasAuthReqID
			}
		case "client_id", "scope", "preferred_username", "role", "idp_role", "acr":
			if v.kind != jsonString {
				continue
			}
			s := v.text()
			switch name {
			case "client_id":
				cl.clientID = s
			case "scope":
				cl.scope = s
			case "preferred_username":
				cl.username = s
			case "role":
				cl.role = s
			case "idp_role":
				cl.idpRole = s
			default:
				cl.acr = s
			}
		case "amr":
			if amr, ok := stringArray(v); ok {
				cl.amr = amr
			}
		case "jti":
			if v.kind == jsonString && v.raw != "" {
				cl.has |= hasJti
			}
		default:
			if known := foldsToKnownClaim(name); known != "" {
				return invalid(ReasonMalformed, sanitize(name, 64), "claim name differs from "+known+" only in case")
			}
		}
	}
	if !r.end() {
		return invalid(ReasonMalformed, "", "payload is not valid JSON")
	}
	return nil
}

// numericDate converts a NumericDate to a time, clamping values no time.Time can hold.
func numericDate(f float64) time.Time {
	const limit = 1 << 62 / int64(time.Second) // far beyond any real date, still safe in UnixNano
	switch {
	case f > float64(limit):
		f = float64(limit)
	case f < -float64(limit):
		f = -float64(limit)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9))
}

// unixSeconds returns t as fractional Unix seconds.
func unixSeconds(t time.Time) float64 {
	return float64(t.Unix()) + float64(t.Nanosecond())/1e9
}

// skewHint is added to time errors off by less than 15 minutes beyond the leeway, which is more
// often a wrong clock than a stale token (SECURITY-CASES HF-18).
func skewHint(off float64) string {
	if off < 15*60 {
		return " (clock skew?)"
	}
	return ""
}

func secondsText(f float64) string {
	return fmt.Sprint(time.Duration(f * float64(time.Second)).Round(time.Second))
}

// knownClaims are the claims parseClaims reads.
var knownClaims = [...]string{"iss", "sub", "aud", "exp", "nbf", "iat", "auth_time", "azp", "nonce", "at_hash",
	authReqIDClaim, "client_id", "scope", "preferred_username", "role", "idp_role", "acr", "amr", "jti"}

// foldsToKnownClaim returns the known claim that name equals under case folding, or "". A struct
// field `json:"azp"` would be filled from "AZP", which the validator does not read as azp.
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
