package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestQuickstart runs the README's first command in-process and checks every step happened.
func TestQuickstart(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), &out); err != nil {
		t.Fatalf("quickstart failed: %v\n%s", err, &out)
	}
	for _, want := range []string{
		"3. discovered issuer http://127.0.0.1:",
		"4. device access token: Bearer",
		"second call served from the cache: true",
		"5. introspection: active=true client_id=7c3e1f52-2b7a-4d8e-9a61-0f4b2c9d8e13",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, &out)
		}
	}
	if strings.Contains(out.String(), "eyJ") {
		t.Errorf("quickstart printed a token:\n%s", &out)
	}
}
