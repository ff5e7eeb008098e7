package onesoidc

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/skip2/go-qrcode"
)

// maxQRURL caps the length of a URL rendered as a QR code (SECURITY-CASES QR-01, QR-10).
const maxQRURL = 1024

// QRCode is a QR code for a login URL on the provider's origin, rendered as PNG, SVG or terminal
// text. It holds only the URL: never a credential, a token or a polling handle (SECURITY-CASES
// QR-04). Build it with OpenIDConnectClient.NewQRCode. A QRCode is immutable and safe for
// concurrent use.
type QRCode struct {
	url  string
	code *qrcode.QRCode
}

// NewQRCode returns the QR code of rawURL, which must be an https URL (http only on a loopback
// host) on the same origin (scheme, host and port) as the issuer, without user info, of at most
// 1024 bytes (SECURITY-CASES QR-01: a phone that scans it opens the provider, nothing else).
// RFC 8628's verification_uri_complete and the ONES QR login URL both qualify.
func (c *OpenIDConnectClient) NewQRCode(rawURL string) (*QRCode, error) {
	if err := checkQRURL(c.issuer, rawURL); err != nil {
		return nil, err
	}
	code, err := qrcode.New(rawURL, qrcode.Medium)
	if err != nil {
		return nil, &ConfigError{Field: "QR URL", Reason: "cannot encode as a QR code", Err: err}
	}
	return &QRCode{url: rawURL, code: code}, nil
}

// checkQRURL enforces QR-01 against the issuer's origin.
func checkQRURL(issuer, raw string) error {
	fail := func(reason string) error {
		return &ConfigError{Field: "QR URL", Reason: reason}
	}
	if len(raw) > maxQRURL {
		return fail(fmt.Sprintf("longer than %d bytes", maxQRURL))
	}
	if err := checkEndpoint("QR URL", raw, false); err != nil {
		return err
	}
	u, _ := url.Parse(raw) // parsed by checkEndpoint
	iss, err := url.Parse(issuer)
	if err != nil {
		return fail("issuer is not a URL")
	}
	if u.User != nil {
		return fail("must not contain user info")
	}
	if !strings.EqualFold(u.Scheme, iss.Scheme) || !strings.EqualFold(u.Host, iss.Host) {
		return fail(fmt.Sprintf("must be on the issuer's origin %s://%s", iss.Scheme, iss.Host))
	}
	for _, r := range raw {
		if r < 0x21 || r == 0x7f {
			return fail("contains spaces or control characters")
		}
	}
	return nil
}

// URL returns the encoded URL, for showing as text next to the code (RFC 8628 §3.3.1).
func (q *QRCode) URL() string { return q.url }

// PNG returns the code as a PNG image of size × size pixels (at least 64).
func (q *QRCode) PNG(size int) ([]byte, error) {
	if size < 64 || size > 4096 {
		return nil, &ConfigError{Field: "size", Reason: fmt.Sprintf("PNG size must be between 64 and 4096, got %d", size)}
	}
	return q.code.PNG(size)
}

// SVG returns the code as a standalone SVG document, one unit per module, scaled to fit its
// container; dark modules are drawn as one path.
func (q *QRCode) SVG() string {
	bm := q.code.Bitmap()
	n := len(bm)
	var b strings.Builder
	b.WriteString(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 `)
	b.WriteString(strconv.Itoa(n) + " " + strconv.Itoa(n))
	b.WriteString(`" shape-rendering="crispEdges"><rect width="100%" height="100%" fill="#fff"/><path fill="#000" d="`)
	for y, row := range bm {
		for x := 0; x < len(row); x++ {
			if !row[x] {
				continue
			}
			run := 1
			for x+run < len(row) && row[x+run] {
				run++
			}
			fmt.Fprintf(&b, "M%d %dh%dv1h-%dz", x, y, run, run)
			x += run - 1
		}
	}
	b.WriteString(`"/></svg>`)
	return b.String()
}

// Terminal returns the code as text for a terminal, two modules per character row (Unicode
// half blocks), dark on a light background.
func (q *QRCode) Terminal() string {
	return q.code.ToSmallString(false)
}
