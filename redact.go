package onesoidc

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/ones-now/onesoidc/internal/redact"
)

// Printing and logging of the types that hold a key, a token or a polling secret (an
// auth_req_id, a device code, a hint token, a client_notification_token). Each implements
// fmt.Formatter, so that every verb (%v, %+v, %#v, %s, %q, %x, %d ...) prints a description
// without the secret, never the fields themselves, and slog.LogValuer, so that log/slog's text
// and JSON handlers log the same description as a group of attributes instead of encoding the
// exported fields (RFC 6750 §5.3: bearer tokens must not leak). fmt's bad-verb paths (%p of a
// non-pointer, %w outside fmt.Errorf, both reported by go vet) print a value without its Format
// method; keys, device codes and the client's state are kept behind pointers so that even those
// show no secret.

const redacted = redact.Redacted

// description describes the key by its algorithm and key id, without key material.
func (k DeviceKey) description() redact.Description {
	return redact.Describe("DeviceKey", "alg", k.alg, "kid", k.kid)
}

// Format prints the key's algorithm and key id, never key material, for every verb.
func (k DeviceKey) Format(f fmt.State, verb rune) { k.description().Format(f, verb) }

// LogValue logs the key's algorithm and key id, never key material.
func (k DeviceKey) LogValue() slog.Value { return k.description().LogValue() }

// description describes the signer: endpoint, device, algorithm and key id.
func (s RemoteSigner) description() redact.Description {
	return redact.Describe("RemoteSigner", "url", redactURL(s.url), "device_id", s.deviceID, "alg", s.alg, "kid", s.kid,
		"verifies", strconv.FormatBool(s.pub != nil))
}

// Format prints a description without secrets for every verb.
func (s RemoteSigner) Format(f fmt.State, verb rune) { s.description().Format(f, verb) }

// LogValue logs the signer's endpoint, device, algorithm and key id.
func (s RemoteSigner) LogValue() slog.Value { return s.description().LogValue() }

// description describes the session without its device code (RFC 8628). A ONES session shows
// its auth_req_id, which its QR code shows too (ID).
func (s QRSession) description() redact.Description {
	if s.authReqID != "" {
		return redact.Describe("QRSession", "auth_req_id", s.authReqID, "expires", redact.Time(s.Expiry()))
	}
	return redact.Describe("QRSession", "user_code", s.UserCode, "verification_uri", s.VerificationURI,
		"expires", redact.Time(s.Expiry()), "device_code", redacted)
}

// Format prints a description without secrets for every verb: the device code never appears.
func (s QRSession) Format(f fmt.State, verb rune) { s.description().Format(f, verb) }

// LogValue logs the session without its device code.
func (s QRSession) LogValue() slog.Value { return s.description().LogValue() }

// description describes the acknowledgement without its auth_req_id, the polling secret, and
// without its client_notification_token.
func (r CIBAResponse) description() redact.Description {
	return redact.Describe("CIBAResponse", "auth_req_id", redacted, "expires", redact.Time(r.Expiry()),
		"interval", r.Interval.String(), "scope", r.Scope)
}

// Format prints a description without secrets for every verb: the auth_req_id never appears.
func (r CIBAResponse) Format(f fmt.State, verb rune) { r.description().Format(f, verb) }

// LogValue logs the acknowledgement without its auth_req_id or notification token.
func (r CIBAResponse) LogValue() slog.Value { return r.description().LogValue() }

// description describes the result without its tokens or auth_req_id.
func (r LoginResult) description() redact.Description {
	subject, expiry := "", time.Time{}
	if r.Auth != nil {
		subject = r.Auth.Entity.Subject
	}
	if r.Token != nil {
		expiry = r.Token.Expiry
	}
	return redact.Describe("LoginResult", "subject", subject, "scope", r.Scope, "expires", redact.Time(expiry),
		"tokens", redacted)
}

// Format prints a description without secrets for every verb: no token or auth_req_id appears.
func (r LoginResult) Format(f fmt.State, verb rune) { r.description().Format(f, verb) }

// LogValue logs the subject, scope and expiry of the result, never a token or the auth_req_id.
func (r LoginResult) LogValue() slog.Value { return r.description().LogValue() }

// description names the hint parameter, not its value (a login_hint_token or id_token_hint is
// a token).
func (h LoginHint) description() redact.Description {
	return redact.Describe("LoginHint", "kind", h.Kind.String(), "value", redacted)
}

// Format prints a description without secrets for every verb.
func (h LoginHint) Format(f fmt.State, verb rune) { h.description().Format(f, verb) }

// LogValue logs the kind of hint, not its value.
func (h LoginHint) LogValue() slog.Value { return h.description().LogValue() }

// description describes the request without its hint value or user code.
func (r CIBARequest) description() redact.Description {
	userCode := ""
	if r.UserCode != "" {
		userCode = redacted
	}
	return redact.Describe("CIBARequest", "hint", r.Hint.description().String(), "scope", strings.Join(r.Scope, " "),
		"binding_message", strconv.Quote(r.BindingMessage), "user_code", userCode)
}

// Format prints a description without secrets for every verb.
func (r CIBARequest) Format(f fmt.State, verb rune) { r.description().Format(f, verb) }

// LogValue logs the request without its hint value or user code.
func (r CIBARequest) LogValue() slog.Value { return r.description().LogValue() }

// description describes the client: issuer, client id and signing algorithm.
func (c *OpenIDConnectClient) description() redact.Description {
	if c == nil {
		return redact.Describe("OpenIDConnectClient(nil)")
	}
	return redact.Describe("OpenIDConnectClient", "issuer", c.issuer, "client_id", c.clientID, "alg", c.signer.Algorithm())
}

// Format prints a description without secrets for every verb: no key, token, auth_req_id or
// notification token of the client's state appears.
func (c *OpenIDConnectClient) Format(f fmt.State, verb rune) { c.description().Format(f, verb) }

// LogValue logs the client's issuer, client id and signing algorithm.
func (c *OpenIDConnectClient) LogValue() slog.Value { return c.description().LogValue() }
