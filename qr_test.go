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
func qrTestClient(t *testing.T, opts ...Option) *OpenIDConnectClient {
	t.Helper()
	cfg := &DeviceConfig{ID: testDeviceID, ClientID: testClientID, Host: "https://identity.ones-now.com"}
	meta := &ProviderMetadata{Issuer: cfg.IssuerURL(), TokenEndpoint: cfg.IssuerURL() + "/token", JWKSURI: cfg.IssuerURL() + "/jwks"}
	c, err := NewClientFromMetadata(cfg, testKey(t, "EdDSA"), meta, opts...)
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

// terminalScreen is what a simulated terminal shows: two pixel rows per character row, one pixel
// per character column (true = dark).
type terminalScreen [][]bool

// renderOnTerminal draws text as a terminal whose default colours are light on dark (dark
// true) or dark on light would, two pixel rows per character row, and fails on anything
// Terminal is not expected to write.
func renderOnTerminal(t *testing.T, text string, dark bool) terminalScreen {
	t.Helper()
	defFg, defBg := !dark, dark // true = dark colour
	fg, bg := defFg, defBg
	var screen terminalScreen
	var top, bottom []bool
	rs := []rune(text)
	for i := 0; i < len(rs); i++ {
		switch r := rs[i]; r {
		case '\x1b':
			if i+1 >= len(rs) || rs[i+1] != '[' {
				t.Fatalf("escape without [ at rune %d", i)
			}
			end := i + 2
			for end < len(rs) && rs[end] != 'm' {
				end++
			}
			if end == len(rs) {
				t.Fatalf("unterminated escape at rune %d", i)
			}
			for _, p := range strings.Split(string(rs[i+2:end]), ";") {
				switch p {
				case "0", "":
					fg, bg = defFg, defBg
				case "30":
					fg = true
				case "37", "97":
					fg = false
				case "40":
					bg = true
				case "47", "107":
					bg = false
				default:
					t.Fatalf("unexpected SGR parameter %q", p)
				}
			}
			i = end
		case '\n':
			screen = append(screen, top, bottom)
			top, bottom = nil, nil
		case ' ':
			top, bottom = append(top, bg), append(bottom, bg)
		case '▀':
			top, bottom = append(top, fg), append(bottom, bg)
		case '▄':
			top, bottom = append(top, bg), append(bottom, fg)
		case '█':
			top, bottom = append(top, fg), append(bottom, fg)
		default:
			t.Fatalf("unexpected character %q", r)
		}
	}
	if top != nil {
		t.Fatal("last line not terminated")
	}
	return screen
}

// sameModules reports whether screen shows bm module for module; with lightBelow, the row below
// the code (the lower half of the last line when the code has an odd number of rows) must be
// light too.
func sameModules(screen terminalScreen, bm [][]bool, lightBelow bool) bool {
	if len(screen) < len(bm) || len(screen) > len(bm)+1 {
		return false
	}
	for y, row := range screen {
		if len(row) != len(bm) {
			return false
		}
		for x, v := range row {
			if y < len(bm) && v != bm[y][x] || y >= len(bm) && v && lightBelow {
				return false
			}
		}
	}
	return true
}

// TestQRTerminalDecodesOnLightAndDarkTerminals draws Terminal's text as a black and as a white
// terminal would show it and requires the QR bitmap of go-qrcode, quiet zone included, module for
// module on both (no QR decoder is a dependency, so equality with the encoder's bitmap stands in
// for decoding).
func TestQRTerminalDecodesOnLightAndDarkTerminals(t *testing.T) {
	t.Parallel()
	c := qrTestClient(t)
	url, err := c.NewQRCode("https://identity.ones-now.com/oidc/device?user_code=WDJB-MJHT")
	if err != nil {
		t.Fatal(err)
	}
	ones, err := newONESQRCode("4b3c2d1e-9a8b-4c7d-8e6f-5a4b3c2d1e0f", testDeviceID)
	if err != nil {
		t.Fatal(err)
	}
	for name, q := range map[string]*QRCode{"URL": url, "ONES": ones} {
		bm := q.code.Bitmap()
		if len(bm)%2 != 1 {
			t.Fatalf("%s: the code has an even number of rows; the odd last row goes untested", name)
		}
		for _, dark := range []bool{true, false} {
			if !sameModules(renderOnTerminal(t, q.Terminal(), dark), bm, true) {
				t.Errorf("%s: Terminal() does not show the code on a terminal with dark background %v", name, dark)
			}
		}
		// The simulation can fail: go-qrcode's plain rendering shows the code only on a dark
		// terminal, inverted on a light one.
		plain := q.code.ToSmallString(false)
		if !sameModules(renderOnTerminal(t, plain, true), bm, false) || sameModules(renderOnTerminal(t, plain, false), bm, false) {
			t.Errorf("%s: the terminal simulation does not tell a light-on-dark rendering apart", name)
		}
	}
	golden(t, "qr-ones.txt", ones.Terminal())
	golden(t, "qr-ones.svg", ones.SVG())
}

// TestZeroQRCodeDoesNotPanic: a QRCode that no constructor made (a zero value, or nil) renders
// as nothing and PNG says why, instead of panicking in a handler.
func TestZeroQRCodeDoesNotPanic(t *testing.T) {
	for name, q := range map[string]*QRCode{"zero": {}, "nil": nil} {
		if s := q.Terminal(); s != "" {
			t.Errorf("%s: Terminal = %q", name, s)
		}
		if s := q.SVG(); !strings.Contains(s, `viewBox="0 0 0 0"`) || strings.Contains(s, "M") {
			t.Errorf("%s: SVG = %q", name, s)
		}
		var ce *ConfigError
		if b, err := q.PNG(256); !errors.As(err, &ce) || ce.Field != "QRCode" || b != nil {
			t.Errorf("%s: PNG = %d bytes, %v", name, len(b), err)
		}
		if q.URL() != "" || q.Payload() != "" {
			t.Errorf("%s: URL %q, payload %q", name, q.URL(), q.Payload())
		}
	}
}
