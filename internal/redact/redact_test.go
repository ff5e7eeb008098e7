package redact

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestDescriptionEveryVerb: a description prints as "Type{k: v}" for %v and %s, quoted for %q,
// as the hexadecimal of that text for %x and %X, and logs as a group of its pairs.
func TestDescriptionEveryVerb(t *testing.T) {
	t.Parallel()
	d := Describe("Key", "alg", "ES256", "value", Redacted)
	text := "Key{alg: ES256, value: [redacted]}"
	for verb, want := range map[string]string{
		"%v": text, "%+v": text, "%#v": text, "%s": text, "%d": text,
		"%q": fmt.Sprintf("%q", text), "%x": fmt.Sprintf("%x", text), "%X": fmt.Sprintf("%X", text),
	} {
		if got := fmt.Sprintf(verb, d); got != want {
			t.Errorf("%s = %q, want %q", verb, got, want)
		}
	}
	if got := Describe("Client(nil)").String(); got != "Client(nil)" {
		t.Errorf("no pairs: %q", got)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "key", d.LogValue())
	if !strings.Contains(buf.String(), `"key":{"alg":"ES256","value":"[redacted]"}`) {
		t.Errorf("logged %s", buf.String())
	}
}

// TestTimeUTCOrNone: a time prints in UTC as RFC 3339, the zero time as "none".
func TestTimeUTCOrNone(t *testing.T) {
	t.Parallel()
	if got := Time(time.Time{}); got != "none" {
		t.Errorf("zero time = %q, want none", got)
	}
	at := time.Date(2026, 12, 7, 16, 4, 5, 600, time.FixedZone("CET", 3600))
	if got := Time(at); got != "2026-12-07T15:04:05Z" {
		t.Errorf("Time = %q", got)
	}
}
