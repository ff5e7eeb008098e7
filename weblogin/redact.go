package weblogin

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/ones-now/onesoidc/internal/redact"
)

// Printing and logging of what holds a seal key, an auth_req_id or a session: every fmt verb
// (%v, %+v, %#v, %s, %q, %x ...) and log/slog, in its text and JSON handlers, show a description
// with "[redacted]" in place of the secret, never the secret itself (RFC 6750 §5.3). fmt calls
// no method of a value it reaches through an unexported field, so the types that keep a secret
// in one (Handler) describe themselves as a whole.

const redacted = redact.Redacted

// SealKey is the type of Config.SealKey: the AES-256 key (FIPS 197) under which GCM (NIST SP
// 800-38D) seals the tokens of approved logins before they reach the Store. A []byte assigns to
// it as it is, and it passes as a []byte wherever one is taken. It prints ("[redacted: 32
// bytes]", or "[]" when empty) and logs through log/slog with its length only, never a key byte,
// so that a Config printed or logged whole does not hand the key to whoever reads the log: with
// it and write access to the store, one could read and forge sealed results.
type SealKey []byte

func (k SealKey) text() string { return countText(len(k), "bytes") }

// Format prints "[redacted: N bytes]" (or "[]" when empty) for every verb: quoted for %q,
// hexadecimal for %x and %X, never a key byte.
func (k SealKey) Format(f fmt.State, verb rune) { redact.Text(f, verb, k.text()) }

// LogValue logs "[redacted: N bytes]" (or "[]" when empty), never a key byte.
func (k SealKey) LogValue() slog.Value { return slog.StringValue(k.text()) }

// SealKeys is the type of Config.PreviousSealKeys: AES-256 keys (FIPS 197) that open results
// sealed with GCM (NIST SP 800-38D) but never seal one. A [][]byte assigns to it as it is. It
// prints ("[redacted: N keys]", or "[]" when empty) and logs the number of keys, never a key
// byte, for the reason SealKey does; an element taken out of it is a []byte, which prints its
// bytes (convert it to SealKey to print it).
type SealKeys [][]byte

func (k SealKeys) text() string { return countText(len(k), "keys") }

// countText is "[redacted: n unit]", or "[]" when n is 0.
func countText(n int, unit string) string {
	if n == 0 {
		return "[]"
	}
	return "[redacted: " + strconv.Itoa(n) + " " + unit + "]"
}

// Format prints "[redacted: N keys]" (or "[]" when empty) for every verb: quoted for %q,
// hexadecimal for %x and %X, never a key byte.
func (k SealKeys) Format(f fmt.State, verb rune) { redact.Text(f, verb, k.text()) }

// LogValue logs "[redacted: N keys]" (or "[]" when empty), never a key byte.
func (k SealKeys) LogValue() slog.Value { return slog.StringValue(k.text()) }

// configFields is Config without its methods, for Config.Format.
type configFields Config

// Format prints the configuration as fmt prints a struct, field by field with the verb and
// flags given, so that %v and %+v show every setting, with SealKey and PreviousSealKeys as their
// types print them ("[redacted: 32 bytes]") and the client as it prints itself. It exists so
// that a *Config nested in another value (%s of a []*Config, where fmt would report a bad verb
// and print every byte of the pointed-to struct) prints the same.
func (c Config) Format(f fmt.State, verb rune) {
	text := fmt.Sprintf(fmt.FormatString(f, verb), configFields(c))
	if verb == 'v' && f.Flag('#') {
		text = "weblogin.Config" + strings.TrimPrefix(text, "weblogin.configFields")
	}
	_, _ = io.WriteString(f, text)
}

// LogValue logs the settings of the configuration: the seal keys as SealKey and SealKeys print
// them, the client as it logs itself, the store by its type; no function or logger.
func (c Config) LogValue() slog.Value {
	resources := make([]string, 0, len(c.ResourceIndicators))
	for name := range c.ResourceIndicators {
		resources = append(resources, name)
	}
	slices.Sort(resources)
	return slog.GroupValue(
		slog.Any("client", c.Client),
		slog.String("store", fmt.Sprintf("%T", c.Store)),
		slog.String("seal_key", c.SealKey.text()),
		slog.String("previous_seal_keys", c.PreviousSealKeys.text()),
		slog.String("prefix", c.Prefix),
		slog.String("origin", c.Origin),
		slog.String("scope", strings.Join(c.Scope, " ")),
		slog.String("resources", strings.Join(resources, " ")),
		slog.Int("max_per_session", c.MaxPerSession),
		slog.Int("max_pending", c.MaxPending),
		slog.Duration("retry_after", c.RetryAfter),
		slog.Duration("result_ttl", c.ResultTTL),
		slog.Duration("long_poll", c.LongPoll),
	)
}

// description describes the handler by its settings, without its seal keys or state.
func (h *Handler) description() redact.Description {
	if h == nil {
		return redact.Describe("weblogin.Handler", "handler", "nil")
	}
	origin := "each request's"
	if h.origin != nil {
		origin = h.origin.String()
	}
	return redact.Describe("weblogin.Handler", "prefix", h.prefix, "origin", origin, "scope", strings.Join(h.scope, " "),
		"store", fmt.Sprintf("%T", h.store), "client", fmt.Sprint(h.client), "seal_keys", redacted)
}

// Format prints the handler's prefix, origin, scope, store type and client for every verb,
// never its seal keys, which fmt would otherwise print through its unexported Config.
func (h *Handler) Format(f fmt.State, verb rune) { h.description().Format(f, verb) }

// LogValue logs the handler's prefix, origin, scope, store type and client, never its seal keys.
func (h *Handler) LogValue() slog.Value { return h.description().LogValue() }

// description describes the login with its json names: the auth_req_id redacted, the session and
// the poll key (SHA-256 hashes) cut to 8 hex digits, which is enough to tell logins apart.
func (l Login) description() redact.Description {
	authReqID, notify := "", ""
	if l.AuthReqID != "" {
		authReqID = redacted
	}
	if len(l.NotifyHash) > 0 {
		notify = redacted
	}
	return redact.Describe("weblogin.Login", "session", short(l.Session), "id", l.ID, "kind", string(l.Kind), "state", string(l.State),
		"auth_req_id", authReqID, "poll_key", short(l.PollKey), "notify_hash", notify,
		"binding", strconv.Quote(l.Binding), "scope", l.Scope, "created", redact.Time(l.Created), "expiry", redact.Time(l.Expiry),
		"keep_until", redact.Time(l.KeepUntil), "interval", l.Interval.String(), "next_poll", redact.Time(l.NextPoll),
		"err_status", strconv.Itoa(l.ErrStatus), "err_code", l.ErrCode, "err_description", strconv.Quote(l.ErrDescription))
}

// Format prints the login for every verb, without its auth_req_id (CIBA Core §7.3: it polls
// for the tokens) and with its session and poll key cut short.
func (l Login) Format(f fmt.State, verb rune) { l.description().Format(f, verb) }

// LogValue logs the login as Format prints it: no auth_req_id, the hashes cut short.
func (l Login) LogValue() slog.Value { return l.description().LogValue() }

// Format prints the number of logins the store holds, never a login, a sealed result or a
// session, for every verb.
func (s *MemoryStore) Format(f fmt.State, verb rune) { s.description().Format(f, verb) }

// LogValue logs the number of logins the store holds.
func (s *MemoryStore) LogValue() slog.Value { return s.description().LogValue() }

// description describes the store by the number of logins it holds.
func (s *MemoryStore) description() redact.Description {
	if s == nil {
		return redact.Describe("weblogin.MemoryStore", "logins", "0")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return redact.Describe("weblogin.MemoryStore", "logins", strconv.Itoa(len(s.logins)))
}

// short cuts a hex hash to its first 8 digits.
func short(hash string) string {
	if len(hash) <= 8 {
		return hash
	}
	return hash[:8] + "…"
}
