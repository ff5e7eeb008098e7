package onesoidc

import (
	"bytes"
	"errors"
	"flag"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/golden")

// qrTestClient is a client for issuer https://identity.ones-now.com/oidc without network.
func qrTestClient(t *testing.T) *OpenIDConnectClient {
	t.Helper()
	cfg := &DeviceConfig{ID: testDeviceID, ClientID: testClientID, Host: "https://identity.ones-now.com"}
	meta := &ProviderMetadata{Issuer: cfg.IssuerURL(), TokenEndpoint: cfg.IssuerURL() + "/token", JWKSURI: cfg.IssuerURL() + "/jwks"}
	c, err := NewClientFromMetadata(cfg, testKey(t, "EdDSA"), meta)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestQR01OnlyProviderURLsAreRendered(t *testing.T) {
	t.Parallel()
	c := qrTestClient(t)
	for _, bad := range []string{
		"http://identity.ones-now.com/device?user_code=ABCD",
		"javascript:alert(1)",
		"data:text/html,<script>alert(1)</script>",
		"ones://login?code=1",
		"https://evil.example/device?user_code=ABCD",
		"https://identity.ones-now.com.evil.example/device",
		"https://identity.ones-now.com:8443/device",
		"https://user:pass@identity.ones-now.com/device",
		"https://identity.ones-now.com/device?x=" + strings.Repeat("a", 1100),
		"https://identity.ones-now.com/device?x=a b",
		"https://identity.ones-now.com/device?x=\x1b[31m",
	} {
		if q, err := c.NewQRCode(bad); q != nil || !errors.As(err, new(*ConfigError)) {
			t.Errorf("NewQRCode(%.60q) = %v, %v; want a ConfigError", bad, q, err)
		}
	}
	q, err := c.NewQRCode("https://identity.ones-now.com/device?user_code=WDJB-MJHT")
	if err != nil {
		t.Fatal(err)
	}
	if q.URL() != "https://identity.ones-now.com/device?user_code=WDJB-MJHT" {
		t.Errorf("URL() = %q", q.URL())
	}
}

func TestQRCodeRendering(t *testing.T) {
	t.Parallel()
	c := qrTestClient(t)
	q, err := c.NewQRCode("https://identity.ones-now.com/oidc/device?user_code=WDJB-MJHT")
	if err != nil {
		t.Fatal(err)
	}
	data, err := q.PNG(256)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil || img.Bounds().Dx() != 256 || img.Bounds().Dy() != 256 {
		t.Fatalf("PNG: %v, bounds %v", err, img.Bounds())
	}
	if _, err := q.PNG(10); err == nil {
		t.Errorf("PNG(10) accepted")
	}

	bm := q.code.Bitmap()
	dark := 0
	for _, row := range bm {
		for _, v := range row {
			if v {
				dark++
			}
		}
	}
	svg := q.SVG()
	// Each "h" draws a run of dark modules: their lengths must add up to the dark modules.
	sum := 0
	for _, seg := range strings.Split(svg, "h")[1:] {
		n := 0
		for _, r := range seg {
			if r < '0' || r > '9' {
				break
			}
			n = n*10 + int(r-'0')
		}
		sum += n
	}
	if sum != dark {
		t.Errorf("SVG draws %d modules, bitmap has %d dark", sum, dark)
	}
	golden(t, "qr.svg", svg)

	term := q.Terminal()
	if lines := strings.Count(strings.TrimRight(term, "\n"), "\n") + 1; lines != (len(bm)+1)/2 {
		t.Errorf("terminal rendering has %d lines for %d module rows", lines, len(bm))
	}
	golden(t, "qr.txt", term)
}

// golden compares got with testdata/golden/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file; run with -update after checking the change", name)
	}
}
