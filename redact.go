package onesoidc

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Formatting of the types that hold a key, a token or a polling secret (an auth_req_id, a
// device code, a hint token). Each implements fmt.Formatter, so that every verb (%v, %+v, %#v,
// %s, %q, %x, %d ...) prints a description without the secret, never the fields themselves
// (RFC 6750 §5.3: bearer tokens must not leak). fmt's bad-verb paths (%p of a non-pointer, %w outside
// fmt.Errorf, both reported by go vet) print a value without its Format method; keys, device
// codes and the client's state are kept behind pointers so that even those show no secret.

const redacted = "[redacted]"

// describe builds "Type{k: v, ...}" from pairs of names and values.
func describe(typ string, kv ...string) string {
	var b strings.Builder
	b.WriteString(typ)
	b.WriteByte('{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(kv[i])
		b.WriteString(": ")
		b.WriteString(kv[i+1])
	}
	b.WriteByte('}')
	return b.String()
}

// formatSafe writes desc for any verb: quoted for %q, hexadecimal for %x and %X, as it is for
// every other verb.
func formatSafe(f fmt.State, verb rune, desc string) {
	switch verb {
	case 'q':
		_, _ = io.WriteString(f, strconv.Quote(desc))
	case 'x':
		_, _ = fmt.Fprintf(f, "%x", desc)
	case 'X':
		_, _ = fmt.Fprintf(f, "%X", desc)
	default:
		_, _ = io.WriteString(f, desc)
	}
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return t.UTC().Format(time.RFC3339)
}

// Format prints the key's algorithm and key id, never key material, for every verb.
func (k DeviceKey) Format(f fmt.State, verb rune) { formatSafe(f, verb, k.safeText()) }

// safeText describes the signer: endpoint, device, algorithm and key id.
func (s RemoteSigner) safeText() string {
	return describe("RemoteSigner", "url", redactURL(s.url), "device_id", s.deviceID, "alg", s.alg, "kid", s.kid,
		"verifies", strconv.FormatBool(s.pub != nil))
}

// Format prints a description without secrets for every verb.
func (s RemoteSigner) Format(f fmt.State, verb rune) { formatSafe(f, verb, s.safeText()) }

// safeText describes the session without its device code (RFC 8628). A ONES session shows its
// auth_req_id, which its QR code shows too (ID).
func (s QRSession) safeText() string {
	if s.authReqID != "" {
		return describe("QRSession", "auth_req_id", s.authReqID, "expires", timeText(s.Expiry()))
	}
	return describe("QRSession", "user_code", s.UserCode, "verification_uri", s.VerificationURI,
		"expires", timeText(s.Expiry()), "device_code", redacted)
}

// Format prints a description without secrets for every verb: the device code never appears.
func (s QRSession) Format(f fmt.State, verb rune) { formatSafe(f, verb, s.safeText()) }

// safeText describes the acknowledgement without its auth_req_id, the polling secret.
func (r CIBAResponse) safeText() string {
	return describe("CIBAResponse", "auth_req_id", redacted, "expires", timeText(r.Expiry()),
		"interval", r.Interval.String(), "scope", r.Scope)
}

// Format prints a description without secrets for every verb: the auth_req_id never appears.
func (r CIBAResponse) Format(f fmt.State, verb rune) { formatSafe(f, verb, r.safeText()) }

// safeText describes the result without its tokens or auth_req_id.
func (r LoginResult) safeText() string {
	subject, expiry := "", time.Time{}
	if r.Auth != nil {
		subject = r.Auth.Entity.Subject
	}
	if r.Token != nil {
		expiry = r.Token.Expiry
	}
	return describe("LoginResult", "subject", subject, "scope", r.Scope, "expires", timeText(expiry),
		"tokens", redacted)
}

// Format prints a description without secrets for every verb: no token or auth_req_id appears.
func (r LoginResult) Format(f fmt.State, verb rune) { formatSafe(f, verb, r.safeText()) }

// safeText names the hint parameter, not its value (a login_hint_token or id_token_hint is a
// token).
func (h LoginHint) safeText() string {
	return describe("LoginHint", "kind", h.Kind.String(), "value", redacted)
}

// Format prints a description without secrets for every verb.
func (h LoginHint) Format(f fmt.State, verb rune) { formatSafe(f, verb, h.safeText()) }

// safeText describes the request without its hint value or user code.
func (r CIBARequest) safeText() string {
	userCode := ""
	if r.UserCode != "" {
		userCode = redacted
	}
	return describe("CIBARequest", "hint", r.Hint.safeText(), "scope", strings.Join(r.Scope, " "),
		"binding_message", strconv.Quote(r.BindingMessage), "user_code", userCode)
}

// Format prints a description without secrets for every verb.
func (r CIBARequest) Format(f fmt.State, verb rune) { formatSafe(f, verb, r.safeText()) }

// safeText describes the client: issuer, client id and signing algorithm.
func (c *OpenIDConnectClient) safeText() string {
	if c == nil {
		return "OpenIDConnectClient(nil)"
	}
	return describe("OpenIDConnectClient", "issuer", c.issuer, "client_id", c.clientID, "alg", c.signer.Algorithm())
}

// Format prints a description without secrets for every verb: no key, token, auth_req_id or notification token of the
// client's state appears.
func (c *OpenIDConnectClient) Format(f fmt.State, verb rune) { formatSafe(f, verb, c.safeText()) }
