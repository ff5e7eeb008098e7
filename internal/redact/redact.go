// Package redact prints and logs descriptions of values that hold secrets (keys, tokens, polling
// secrets): for the root package and weblogin, whose secret-holding types implement fmt.Formatter
// and slog.LogValuer with it, so that no verb and no slog handler shows the secret (RFC 6750 §5.3).
package redact

import (
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// Redacted stands for a secret in a description.
const Redacted = "[redacted]"

// Description is what a secret-holding value prints and logs: its type name and pairs of
// attribute names and safe values.
type Description struct {
	// Type is the name printed before the pairs, such as "DeviceKey"; "" for none.
	Type string
	// KV holds attribute names and their safe values in turn: name, value, name, value ...
	KV []string
}

// Describe returns the description of typ from pairs of names and values.
func Describe(typ string, kv ...string) Description { return Description{typ, kv} }

// String returns "Type{k: v, ...}", or the type alone when there are no pairs.
func (d Description) String() string {
	if d.KV == nil {
		return d.Type
	}
	var b strings.Builder
	b.WriteString(d.Type)
	b.WriteByte('{')
	for i := 0; i+1 < len(d.KV); i += 2 {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(d.KV[i])
		b.WriteString(": ")
		b.WriteString(d.KV[i+1])
	}
	b.WriteByte('}')
	return b.String()
}

// LogValue returns the pairs as a slog group of string attributes.
func (d Description) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, len(d.KV)/2)
	for i := 0; i+1 < len(d.KV); i += 2 {
		attrs = append(attrs, slog.String(d.KV[i], d.KV[i+1]))
	}
	return slog.GroupValue(attrs...)
}

// Format writes the description for any verb, as Text does.
func (d Description) Format(f fmt.State, verb rune) { Text(f, verb, d.String()) }

// Text writes text for any verb: quoted for %q, hexadecimal for %x and %X, as it is for every
// other verb.
func Text(f fmt.State, verb rune, text string) {
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

// Time is t in UTC as RFC 3339 for a description, or "none" for the zero time.
func Time(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return t.UTC().Format(time.RFC3339)
}
