package onesoidc

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// OAuthError is an error response from the provider as defined by RFC 6749 §5.2, CIBA Core §13 and
// RFC 8628 §3.5. It matches the sentinel of its Code with errors.Is, so callers write
//
//	if errors.Is(err, onesoidc.ErrAuthorizationPending) { ... }
//
// instead of comparing strings. Description is sanitized (printable ASCII, at most 256 bytes).
type OAuthError struct {
	// StatusCode is the HTTP status of the response (400, 401, 403 ...).
	StatusCode int
	// Code is the "error" member, such as "invalid_client" or "slow_down".
	Code string
	// Description is the optional "error_description" member.
	Description string
	// URI is the optional "error_uri" member.
	URI string
	// Op names the exchange that failed, such as "token" or "backchannel authentication".
	Op string
}

// Error names the exchange, the code, the HTTP status and the description.
func (e *OAuthError) Error() string {
	var b strings.Builder
	b.WriteString("onesoidc: ")
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	b.WriteString("provider answered ")
	b.WriteString(e.Code)
	if e.StatusCode != 0 {
		b.WriteString(" (HTTP ")
		b.WriteString(strconv.Itoa(e.StatusCode))
		b.WriteString(")")
	}
	if e.Description != "" {
		b.WriteString(": ")
		b.WriteString(e.Description)
	}
	return b.String()
}

// Is reports whether target is the sentinel error of e's Code, or an *OAuthError with the same
// Code.
func (e *OAuthError) Is(target error) bool {
	if target != nil && target == codeSentinels[e.Code] {
		return true
	}
	switch t := target.(type) {
	case *OAuthError:
		return t.Code == e.Code
	}
	return false
}

func newCode(code string) error { return errors.New(errPrefix + code) }

// errPrefix begins the message of every error of this package.
const errPrefix = "onesoidc: "

// causeText is the message of err, the cause that an error of this package wraps, without its
// own errPrefix: a message names the package once ("onesoidc: issuer: …: provider metadata
// names another issuer", not "…: onesoidc: provider metadata …").
func causeText(err error) string { return strings.TrimPrefix(err.Error(), errPrefix) }

// wrapf is fmt.Errorf for a message of this package whose error arguments, each formatted with
// %w, are errors of this package or others: their own errPrefix is left out of the message
// (causeText), but where the first begins it, and errors.Is and errors.As find them as through
// fmt.Errorf.
func wrapf(format string, args ...any) error {
	var causes []error
	shown := make([]any, len(args))
	for i, a := range args {
		shown[i] = a
		if e, ok := a.(error); ok {
			causes = append(causes, e)
			if i > 0 || !strings.HasPrefix(format, "%w") {
				shown[i] = causeOnly(causeText(e))
			}
		}
	}
	return &wrappedError{msg: fmt.Errorf(format, shown...).Error(), causes: causes}
}

// causeOnly is the text of a cause in a message of wrapf.
type causeOnly string

func (e causeOnly) Error() string { return string(e) }

// wrappedError is an error of wrapf.
type wrappedError struct {
	msg    string
	causes []error
}

func (e *wrappedError) Error() string   { return e.msg }
func (e *wrappedError) Unwrap() []error { return e.causes }

// codeSentinels maps the OAuth error codes to their sentinel errors, for OAuthError.Is.
var codeSentinels = map[string]error{
	"invalid_client": ErrInvalidClient, "invalid_grant": ErrInvalidGrant, "access_denied": ErrAccessDenied,
	"authorization_pending": ErrAuthorizationPending, "slow_down": ErrSlowDown, "expired_token": ErrLoginExpired,
	"transaction_failed": ErrTransactionFailed,
}

// Sentinel errors for the OAuth error codes a caller of this package branches on. An *OAuthError
// with the same code matches them with errors.Is. Every other code (invalid_request,
// unknown_user_id, invalid_binding_message ... of RFC 6749 §5.2, RFC 8628 §3.5 and CIBA Core
// §11, §13) is matched by an *OAuthError holding it, as in
// errors.Is(err, &onesoidc.OAuthError{Code: "unknown_user_id"}), or read from Code after
// errors.As.
var (
	// ErrInvalidClient is invalid_client (RFC 6749 §5.2): the provider did not accept the
	// client's authentication, such as a device assertion signed with a key it does not know.
	ErrInvalidClient = newCode("invalid_client")
	// ErrInvalidGrant is invalid_grant (RFC 6749 §5.2): the grant (an auth_req_id, a device
	// code, a refresh token) is invalid, expired or revoked.
	ErrInvalidGrant = newCode("invalid_grant")
	// ErrAccessDenied is access_denied (CIBA Core §11, RFC 8628 §3.5): the user refused the
	// login.
	ErrAccessDenied = newCode("access_denied")
	// ErrAuthorizationPending is authorization_pending (CIBA Core §11, RFC 8628 §3.5): the user
	// has not decided yet; poll again after the interval.
	ErrAuthorizationPending = newCode("authorization_pending")
	// ErrSlowDown is slow_down (CIBA Core §11, RFC 8628 §3.5): poll less often, the interval
	// grows by 5 seconds.
	ErrSlowDown = newCode("slow_down")
	// ErrLoginExpired is the OAuth error code expired_token (RFC 8628 §3.5, CIBA Core §11):
	// a login request (a CIBA auth_req_id, an RFC 8628 device code, an ONES QR session) ran
	// out before the user decided. It is not about a JWT's "exp": that is ErrTokenExpired.
	ErrLoginExpired = newCode("expired_token")
	// ErrTransactionFailed is transaction_failed (CIBA Core §11): the provider could not
	// complete the login.
	ErrTransactionFailed = newCode("transaction_failed")
)

// HTTPError reports an exchange with the provider that did not produce a usable answer: the
// connection failed, the status was unexpected, the body was not the JSON that was asked for, or it
// was too large. It never holds the request or response body, which may carry credentials.
type HTTPError struct {
	// Op names the exchange, such as "discovery" or "token".
	Op string
	// URL is the endpoint, without query.
	URL string
	// StatusCode is the HTTP status, or 0 when no response arrived.
	StatusCode int
	// ContentType is the response's Content-Type, if there was a response.
	ContentType string
	// RetryAfter is the delay the server asked for with Retry-After on 429 or 503, or 0.
	RetryAfter time.Duration
	// Reason says what was wrong when a response arrived ("unexpected status", ...).
	Reason string
	// Err is the underlying error, if any (the transport's, such as a *net.OpError or
	// context.DeadlineExceeded, without net/http's *url.Error around it; a JSON error ...; a body
	// over its cap says so).
	Err error
}

// Error names the exchange, the endpoint, the status and what was wrong, never a body.
func (e *HTTPError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "onesoidc: %s %s: ", e.Op, e.URL)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, "HTTP %d", e.StatusCode)
		if e.ContentType != "" {
			fmt.Fprintf(&b, " (%s)", e.ContentType)
		}
		if e.Reason != "" || e.Err != nil {
			b.WriteString(": ")
		}
	}
	b.WriteString(e.Reason)
	if e.Err != nil {
		if e.Reason != "" {
			b.WriteString(": ")
		}
		b.WriteString(causeText(e.Err))
	}
	return b.String()
}

// Unwrap returns Err.
func (e *HTTPError) Unwrap() error { return e.Err }

// Is reports whether target is ErrInvalidResponse and e refuses a successful (2xx) answer.
func (e *HTTPError) Is(target error) bool {
	return target == ErrInvalidResponse && e.StatusCode >= 200 && e.StatusCode < 300
}

// Temporary reports whether the same request may succeed later: no response arrived (other than
// for a permanent DNS failure or a TLS certificate problem), or the status was 408, 429 or 5xx.
func (e *HTTPError) Temporary() bool {
	if e.StatusCode == 0 {
		return !errors.Is(e.Err, errPermanent)
	}
	return e.StatusCode == 408 || e.StatusCode == 429 || e.StatusCode >= 500
}

// errPermanent marks transport failures that will not go away by retrying.
var errPermanent = errors.New("")

// Sentinel errors for refusals of what the provider sent that a caller may branch on, matched
// with errors.Is. The error itself stays an *HTTPError or a *ConfigError with the details.
var (
	// ErrInvalidResponse is matched by every *HTTPError that refuses a successful (2xx) answer
	// of the provider or of a remote signer: not JSON, a required member missing (RFC 6749 §5.1,
	// CIBA Core §7.3, RFC 8628 §3.2), a value out of range, an auth_req_id or device_code too short
	// for 128 bits, an unusable JWK Set (RFC 7517 §5), a token_type other than Bearer (RFC 6749 §7.1: tokens are
	// sent only as RFC 6750 bearer tokens), a body over its size cap, a remote signature that does
	// not verify, a member twice (also under case folding) or a member read here sent only in
	// another case ("Issuer", "ACCESS_TOKEN", "KID"; RFC 8259 §4: names are case-sensitive), an
	// access_token or refresh_token outside visible ASCII or a scope that is not scope tokens
	// (RFC 6749 Appendix A.12, A.17, A.4), an auth_req_id or device_code of a request this
	// client already holds (CIBA Core §7.3, RFC 8628 §3.2), or an ONES QR auth_req_id that is
	// the device access token the request carried. An error answer (RFC 6749 §5.2) with such
	// member names matches it too.
	ErrInvalidResponse = errors.New("onesoidc: provider answer refused")
	// errTokenTypeNotBearer is matched by the *HTTPError of a token response whose token_type is
	// not "Bearer" (RFC 6749 §5.1, §7.1): this package sends tokens only as RFC 6750 bearer
	// tokens, so a DPoP-bound or other token type cannot be used.
	errTokenTypeNotBearer = errors.New("onesoidc: token_type is not Bearer")
	// ErrIssuerMismatch is matched by the *ConfigError (Field "issuer") of provider metadata that
	// names another issuer than the one it was fetched for (OpenID Connect Discovery 1.0 §4.3,
	// RFC 8414 §3.3): none of its endpoints is used.
	ErrIssuerMismatch = errors.New("onesoidc: provider metadata names another issuer")
	// ErrNotSupportedByProvider is matched by the *ConfigError of a flow the provider's
	// metadata does not offer: no backchannel authentication, device authorization,
	// introspection or revocation endpoint, a CIBA delivery mode, grant type, user code or
	// request-object algorithm it does not list (CIBA Core §4), or no private_key_jwt client
	// authentication with the device key's algorithm (OpenID Connect Discovery 1.0 §3). A caller
	// may fall back to another flow.
	ErrNotSupportedByProvider = errors.New("onesoidc: not supported by the provider")
)

// errResponseTooLarge is wrapped by an *HTTPError when a response body exceeds its cap.
var errResponseTooLarge = errors.New("onesoidc: response body exceeds limit")

// ConfigError reports a bad configuration value: a device.yml field, a key file, a client option or
// provider metadata. It names where the problem is and never includes key material.
type ConfigError struct {
	// File is the path of the file that holds the problem, if any.
	File string
	// Field is the configuration field or option, such as "client_id" or "token_endpoint".
	Field string
	// Reason says what is wrong.
	Reason string
	// Err is the underlying error, if any.
	Err error
}

// Error names the file, the field and what is wrong, never key material.
func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("onesoidc: ")
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(causeText(e.Err))
	}
	return b.String()
}

// Unwrap returns Err.
func (e *ConfigError) Unwrap() error { return e.Err }
