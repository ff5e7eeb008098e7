package onesoidctest

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Printing and logging of what the Server records. A test that prints a Device, a Request, a
// CIBARecord or a QRRecord (t.Logf("%+v", rec), a failure message, slog) sees "[redacted]"
// where a private key, a credential or a token was: the SDK's own tests assert that none of
// them reaches any output, and test logs of a suite that runs against a real device key are
// read by more people than the key's owner (RFC 6750 §5.3, RFC 7523 §3). The fields themselves
// keep every value, for the test to compare.

const redacted = "[redacted]"

// secretParam reports the request parameters and claims whose values are credentials, tokens
// or polling secrets.
func secretParam(name string) bool {
	switch name {
	case "client_assertion", "client_secret", "assertion", "auth_req_id", "device_code", "token", "refresh_token",
		"access_token", "id_token", "login_hint_token", "id_token_hint", "request", "client_notification_token",
		"user_code", "code", "code_verifier":
		return true
	}
	return false
}

// description builds "Type{k: v, ...}" and the slog group of the same pairs: the SDK's
// internal/redact.Description, repeated here because this package imports nothing of the SDK.
type description struct {
	typ string
	kv  []string
}

func (d description) String() string {
	if d.kv == nil {
		return d.typ
	}
	var b strings.Builder
	b.WriteString(d.typ)
	b.WriteByte('{')
	for i := 0; i+1 < len(d.kv); i += 2 {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(d.kv[i])
		b.WriteString(": ")
		b.WriteString(d.kv[i+1])
	}
	b.WriteByte('}')
	return b.String()
}

func (d description) logValue() slog.Value {
	attrs := make([]slog.Attr, 0, len(d.kv)/2)
	for i := 0; i+1 < len(d.kv); i += 2 {
		attrs = append(attrs, slog.String(d.kv[i], d.kv[i+1]))
	}
	return slog.GroupValue(attrs...)
}

// format writes the description for any verb: quoted for %q, hexadecimal for %x and %X.
func (d description) format(f fmt.State, verb rune) {
	text := d.String()
	switch verb {
	case 'q':
		_, _ = io.WriteString(f, strconv.Quote(text))
	case 'x':
		_, _ = fmt.Fprintf(f, "%x", text)
	case 'X':
		_, _ = fmt.Fprintf(f, "%X", text)
	default:
		_, _ = io.WriteString(f, text)
	}
}

func secretText(v string) string {
	if v == "" {
		return ""
	}
	return redacted
}

// redactValues copies v with the values of secret parameters replaced.
func redactValues(v url.Values) string {
	if v == nil {
		return "map[]"
	}
	out := url.Values{}
	for k, vals := range v {
		if secretParam(k) {
			vals = []string{redacted}
		}
		out[k] = vals
	}
	return fmt.Sprint(map[string][]string(out))
}

// redactMap prints m with the values of secret parameters replaced.
func redactMap[V any](m map[string]V) string {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if secretParam(k) {
			out[k] = redacted
		} else {
			out[k] = v
		}
	}
	return fmt.Sprint(out)
}

func timeList(ts []time.Time) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.UTC().Format(time.RFC3339Nano)
	}
	return "[" + strings.Join(s, " ") + "]"
}

func (d Device) description() description {
	key := ""
	if d.Key != nil {
		key = redacted
	}
	return description{"onesoidctest.Device", []string{"id", d.ID, "client_id", d.ClientID, "alg", d.Algorithm,
		"kid", d.KeyID, "key", key, "config", strconv.Itoa(len(d.Config)) + " bytes"}}
}

// Format prints the device for every verb, without its private key.
func (d Device) Format(f fmt.State, verb rune) { d.description().format(f, verb) }

// LogValue logs the device without its private key.
func (d Device) LogValue() slog.Value { return d.description().logValue() }

func (r Request) description() description {
	var header http.Header
	if r.Header != nil {
		header = r.Header.Clone()
		for _, h := range []string{"Authorization", "Cookie", "Proxy-Authorization"} {
			if header.Get(h) != "" {
				header.Set(h, redacted)
			}
		}
	}
	return description{"onesoidctest.Request", []string{"endpoint", r.Endpoint, "method", r.Method, "path", r.Path,
		"header", fmt.Sprint(map[string][]string(header)), "form", redactValues(r.Form),
		"time", r.Time.UTC().Format(time.RFC3339Nano)}}
}

// Format prints the request for every verb, with the Authorization and Cookie headers and
// the credentials and tokens of its form (client_assertion, auth_req_id, token ...) redacted.
func (r Request) Format(f fmt.State, verb rune) { r.description().format(f, verb) }

// LogValue logs the request as Format prints it.
func (r Request) LogValue() slog.Value { return r.description().logValue() }

func (r CIBARecord) description() description {
	return description{"onesoidctest.CIBARecord", []string{"auth_req_id", secretText(r.AuthReqID), "client_id", r.ClientID,
		"encoding", r.Encoding, "params", redactMap(r.Params), "request_header", fmt.Sprint(r.RequestHeader),
		"request_claims", redactMap(r.RequestClaims), "expires_in", strconv.Itoa(r.ExpiresIn),
		"polls", strconv.Itoa(r.Polls), "poll_times", timeList(r.PollTimes), "redeemed", strconv.FormatBool(r.Redeemed)}}
}

// Format prints the record for every verb, with its auth_req_id and the secret parameters
// (login_hint_token, id_token_hint, user_code, client_notification_token) redacted.
func (r CIBARecord) Format(f fmt.State, verb rune) { r.description().format(f, verb) }

// LogValue logs the record as Format prints it.
func (r CIBARecord) LogValue() slog.Value { return r.description().logValue() }

func (r QRRecord) description() description {
	return description{"onesoidctest.QRRecord", []string{"auth_req_id", r.AuthReqID, "client_id", r.ClientID,
		"expires_in", strconv.Itoa(r.ExpiresIn), "polls", strconv.Itoa(r.Polls), "poll_times", timeList(r.PollTimes),
		"redeemed", strconv.FormatBool(r.Redeemed), "access_token", secretText(r.AccessToken)}}
}

// Format prints the record for every verb, with its access token redacted. The session id
// (auth_req_id) shows: the QR code shows it too.
func (r QRRecord) Format(f fmt.State, verb rune) { r.description().format(f, verb) }

// LogValue logs the record as Format prints it.
func (r QRRecord) LogValue() slog.Value { return r.description().logValue() }

func (m *Server) description() description {
	if m == nil {
		return description{"onesoidctest.Server(nil)", nil}
	}
	return description{"onesoidctest.Server", []string{"url", m.URL, "issuer", m.Issuer}}
}

// Format prints the Server's URL and issuer for every verb, never its keys, the tokens it
// issued (which key its records) or its logins.
func (m *Server) Format(f fmt.State, verb rune) { m.description().format(f, verb) }

// LogValue logs the Server's URL and issuer.
func (m *Server) LogValue() slog.Value { return m.description().logValue() }
