package onesoidc

import (
	"errors"
	"strings"
	"time"

	"github.com/ones-now/onesoidc/internal/jose"
)

// validationReason is the machine-readable code of a token validation failure, such as
// "expired" or "invalid_signature", shown in the error text and in RequireToken's answer. Every
// reason has a sentinel error (ErrTokenExpired, ErrInvalidSignature ...) that a *ValidationError
// with that reason matches with errors.Is.
type validationReason string

// Reasons of token validation failures (OpenID Connect Core 1.0 §3.1.3.7, RFC 9068 §4,
// RFC 8725 §3); each is described at its sentinel error.
const (
	reasonTooLarge                 validationReason = "too_large"
	reasonMalformed                validationReason = "malformed"
	reasonUnsupportedAlgorithm     validationReason = "unsupported_algorithm"
	reasonInvalidType              validationReason = "invalid_type"
	reasonUnknownKey               validationReason = "unknown_key"
	reasonKeySetUnavailable        validationReason = "key_set_unavailable"
	reasonInvalidSignature         validationReason = "invalid_signature"
	reasonInvalidIssuer            validationReason = "invalid_issuer"
	reasonInvalidAudience          validationReason = "invalid_audience"
	reasonExpired                  validationReason = "expired"
	reasonNotYetValid              validationReason = "not_yet_valid"
	reasonInvalidClaim             validationReason = "invalid_claim"
	reasonInactive                 validationReason = "inactive"
	reasonIntrospectionUnavailable validationReason = "introspection_unavailable"
	reasonInsufficientScope        validationReason = "insufficient_scope"
)

// Sentinel errors for token validation failures. A *ValidationError matches the sentinel of its
// failure with errors.Is:
//
//	if errors.Is(err, onesoidc.ErrTokenExpired) { ... }
var (
	// ErrMalformedToken means that the token is longer than 64 KiB (nothing was parsed then), or
	// is not a compact JWS (RFC 7515 §7.1) with a JSON object header and payload,
	// is a JWE, has a header parameter this package refuses (crit, jwk, jku, x5u, x5c, b64), or has
	// a header over 8 KiB or a "kid" over 256 bytes.
	ErrMalformedToken = newValidationSentinel(reasonMalformed)
	// ErrUnsupportedAlgorithm means that the "alg" header is not in the effective allow-list (never none
	// or HS*; RFC 8725 §3.1).
	ErrUnsupportedAlgorithm = newValidationSentinel(reasonUnsupportedAlgorithm)
	// ErrInvalidTokenType means that the "typ" header does not fit the kind of token expected, such as an
	// at+jwt access token offered as an ID token (RFC 8725 §3.11, RFC 9068 §4), or that an access
	// token is bound to a key by "cnf" (DPoP, RFC 9449; mutual TLS, RFC 8705) and so is no bearer
	// token: this package cannot check its proof of possession.
	ErrInvalidTokenType = newValidationSentinel(reasonInvalidType)
	// ErrUnknownKey means that no key of the provider's JWKS fits the token's "kid" and "alg", or more than
	// one does, or the key with that "kid" was skipped as unusable (the message says why: an RSA
	// key under 2048 bits, a point off its curve, "use" enc ...).
	ErrUnknownKey = newValidationSentinel(reasonUnknownKey)
	// ErrKeySetUnavailable means that the provider's JWKS could not be fetched and no keys are cached. Err
	// of the *ValidationError holds the cause (an *HTTPError, or the context's error).
	ErrKeySetUnavailable = newValidationSentinel(reasonKeySetUnavailable)
	// ErrInvalidSignature means that the signature does not verify with the selected key.
	ErrInvalidSignature = newValidationSentinel(reasonInvalidSignature)
	// ErrInvalidIssuer means that "iss" is missing or not exactly the issuer (OIDC Core §3.1.3.7 item 2).
	ErrInvalidIssuer = newValidationSentinel(reasonInvalidIssuer)
	// ErrInvalidAudience means that "aud" is missing, malformed or lacks the expected audience, or "azp" is
	// wrong or missing where required (OIDC Core §3.1.3.7 items 3-5).
	ErrInvalidAudience = newValidationSentinel(reasonInvalidAudience)
	// ErrTokenExpired means that "exp" is past, beyond the leeway. The *ValidationError wraps a
	// *TokenExpiredError with the expiry.
	ErrTokenExpired = newValidationSentinel(reasonExpired)
	// ErrTokenNotYetValid means that "nbf" or "iat" lies in the future, beyond the leeway.
	ErrTokenNotYetValid = newValidationSentinel(reasonNotYetValid)
	// ErrInvalidClaim means that another claim is missing, of the wrong type or has the wrong value
	// (sub, iat, nonce, auth_req_id, at_hash, client_id or jti of an access token, exp or nbf of the
	// wrong type ...).
	ErrInvalidClaim = newValidationSentinel(reasonInvalidClaim)
	// ErrTokenInactive means that the provider's introspection endpoint answered that the
	// opaque token is not active (RFC 7662 §2.2): unknown, expired, revoked or not for this
	// provider.
	ErrTokenInactive = newValidationSentinel(reasonInactive)
	// ErrIntrospectionUnavailable means that an opaque token could not be introspected (RFC 7662
	// §2): the provider was unreachable, refused the client's authentication, or gave an unusable
	// answer, or every one of the WithMaxIntrospections requests stayed in flight for as long as
	// the call could wait (the request timeout, or until its context ended). Err of the
	// *ValidationError holds the cause (the context's error when it ended the wait; nil when the
	// wait ran out). Nothing is cached for it.
	ErrIntrospectionUnavailable = newValidationSentinel(reasonIntrospectionUnavailable)
	// ErrInsufficientScope means that the access token's scope lacks a scope ExpectScope asked
	// for (RFC 6750 §3.1).
	ErrInsufficientScope = newValidationSentinel(reasonInsufficientScope)
)

// errConflictingVerifyOptions is wrapped by the *ConfigError of a call given VerifyOptions that
// fit only ID tokens together with ones that fit only access tokens, or options that do not fit
// the method (ExpectAudience in VerifyIDToken; ExpectNonce, ExpectAuthReqID, ExpectAtHashOf or
// MaxTokenAge in VerifyAccessToken). It is a programming error, not a rejected token.
var errConflictingVerifyOptions = errors.New("onesoidc: verify options for different kinds of token")

func newValidationSentinel(r validationReason) error {
	return errors.New("onesoidc: token rejected: " + string(r))
}

// sentinelOf returns the sentinel error of a validation reason.
func sentinelOf(r validationReason) error {
	switch r {
	case reasonTooLarge, reasonMalformed:
		return ErrMalformedToken
	case reasonUnsupportedAlgorithm:
		return ErrUnsupportedAlgorithm
	case reasonInvalidType:
		return ErrInvalidTokenType
	case reasonUnknownKey:
		return ErrUnknownKey
	case reasonKeySetUnavailable:
		return ErrKeySetUnavailable
	case reasonInvalidSignature:
		return ErrInvalidSignature
	case reasonInvalidIssuer:
		return ErrInvalidIssuer
	case reasonInvalidAudience:
		return ErrInvalidAudience
	case reasonExpired:
		return ErrTokenExpired
	case reasonNotYetValid:
		return ErrTokenNotYetValid
	case reasonInvalidClaim:
		return ErrInvalidClaim
	case reasonInactive:
		return ErrTokenInactive
	case reasonIntrospectionUnavailable:
		return ErrIntrospectionUnavailable
	case reasonInsufficientScope:
		return ErrInsufficientScope
	}
	return nil
}

// ValidationError reports why a token was rejected. It never contains the token and no claim is
// returned along with it. Match it with errors.Is against the sentinels (ErrTokenExpired ...) or
// with errors.As to read the fields.
type ValidationError struct {
	reason validationReason
	// Claim names the claim or header parameter at fault ("exp", "aud", "kid" ...), if any.
	Claim string
	// Err is the underlying error, if any: a *TokenExpiredError, an *HTTPError of a JWKS
	// fetch, or a context error.
	Err error

	detail string
}

// Error describes the failure without the token.
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("onesoidc: token rejected: ")
	b.WriteString(string(e.reason))
	if e.Claim != "" {
		b.WriteString(" (")
		b.WriteString(e.Claim)
		b.WriteString(")")
	}
	if e.detail != "" {
		b.WriteString(": ")
		b.WriteString(e.detail)
	}
	if e.Err != nil {
		var te *TokenExpiredError
		if !errors.As(e.Err, &te) {
			b.WriteString(": ")
			b.WriteString(causeText(e.Err))
		}
	}
	return b.String()
}

// Unwrap returns Err.
func (e *ValidationError) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel of e's failure (ErrTokenExpired ...), or a
// *ValidationError of the same failure.
func (e *ValidationError) Is(target error) bool {
	if target != nil && target == sentinelOf(e.reason) {
		return true
	}
	switch t := target.(type) {
	case *ValidationError:
		return t.reason == e.reason
	}
	return false
}

// TokenExpiredError is wrapped by the *ValidationError of a token whose "exp" has passed (RFC
// 7519 §4.1.4), for callers that want the expiry. A login request that ran out is a
// *LoginExpiredError instead.
//
//	var te *onesoidc.TokenExpiredError
//	if errors.As(err, &te) { log.Printf("expired at %v", te.Expiry) }
type TokenExpiredError struct {
	// Expiry is the token's "exp".
	Expiry time.Time
}

// Error names the expiry.
func (e *TokenExpiredError) Error() string {
	return "onesoidc: token expired at " + e.Expiry.UTC().Format(time.RFC3339)
}

// Is reports whether target is ErrTokenExpired.
func (e *TokenExpiredError) Is(target error) bool { return target == ErrTokenExpired }

// invalid builds a *ValidationError.
func invalid(reason validationReason, claim, detail string) *ValidationError {
	return &ValidationError{reason: reason, Claim: claim, detail: detail}
}

// fromJOSE maps a parse failure of internal/jose to the ValidationError it has always been: a
// wrong type of iss, aud or another claim has its own reason, anything else is malformed. Names
// are kept as jose gives them (see fromJOSEClaims).
func fromJOSE(e *jose.Error) *ValidationError {
	reason := reasonMalformed
	switch e.Kind {
	case jose.BadIssuer:
		reason = reasonInvalidIssuer
	case jose.BadAudience:
		reason = reasonInvalidAudience
	case jose.BadClaim:
		reason = reasonInvalidClaim
	}
	return invalid(reason, e.Name, e.Msg)
}

// fromJOSEClaims is fromJOSE for jose.ParseClaims, whose Name may be a claim name from the
// payload: it is made printable and bounded to 64 bytes.
func fromJOSEClaims(e *jose.Error) *ValidationError {
	v := fromJOSE(e)
	v.Claim = sanitize(v.Claim, 64)
	return v
}
