package onesoidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

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
		if r < 0x21 || r > 0x7e {
			return fail("contains spaces, control or non-ASCII characters")
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

// deviceCodeGrantType is the grant of RFC 8628 §3.4.
const deviceCodeGrantType = "urn:ietf:params:oauth:grant-type:device_code"

// ErrQRSessionFinished is matched (errors.Is) by the error of WaitForQRLogin for a session that
// already ended (approved, denied or expired): its codes are single-use, and a new login needs a
// new session (SECURITY-CASES QR-08). The error also matches how the session ended.
var ErrQRSessionFinished = errors.New("onesoidc: QR login session already finished")

// QRSession is a QR login in progress, over the OAuth 2.0 device authorization grant
// (RFC 8628): show QR (and UserCode) on the screen, the user scans it with their phone and
// approves, and WaitForQRLogin returns their tokens. The device code that polls for the tokens
// stays inside the session and is never shown, encoded or logged (SECURITY-CASES QR-04, QR-06).
// A session is single-use and dies at its expiry (QR-02, QR-08). Its methods are safe for
// concurrent use, but only one WaitForQRLogin runs at a time.
type QRSession struct {
	// UserCode is the code the user confirms on their phone (RFC 8628 §3.2); show it next to the
	// QR code so that both screens show the same value (QR-05).
	UserCode string
	// VerificationURI is where the user can type UserCode, for users who cannot scan.
	VerificationURI string
	// VerificationURIComplete is VerificationURI with the user code, if the provider sent one.
	VerificationURIComplete string
	// QR encodes VerificationURIComplete, or VerificationURI when there is none.
	QR *QRCode
	// ReceivedAt is when the provider answered; ExpiresIn and Interval are its expires_in and
	// interval (DefaultPollInterval when absent).
	ReceivedAt time.Time
	ExpiresIn  time.Duration
	Interval   time.Duration
	// Scope is the requested scope.
	Scope string

	st *qrState // behind a pointer: a copy of a QRSession holds no secret or lock of its own
}

// qrState is the private part of a QRSession.
type qrState struct {
	deviceCode string
	waiting    atomic.Bool
	ended      atomic.Pointer[error]
}

// Expiry returns when the session dies: ReceivedAt plus ExpiresIn.
func (s *QRSession) Expiry() time.Time { return s.ReceivedAt.Add(s.ExpiresIn) }

// StartQRLogin starts a QR login: a device authorization request (RFC 8628 §3.1) for scope
// ("openid" is added when missing) authenticated with a client assertion. The QR code encodes
// the provider's verification URL, which must be on the issuer's origin (QR-01).
func (c *OpenIDConnectClient) StartQRLogin(ctx context.Context, scope ...string) (*QRSession, error) {
	if c.meta.DeviceAuthorizationEndpoint == "" {
		return nil, &ConfigError{Field: "device_authorization_endpoint", Reason: "the provider metadata has no device authorization endpoint", Err: ErrNotSupportedByProvider}
	}
	if !slices.Contains(scope, "openid") {
		scope = append([]string{"openid"}, scope...)
	}
	sc := strings.Join(scope, " ")
	form := url.Values{"scope": {sc}}
	resp, err := c.postAuthenticated(ctx, "device authorization", c.meta.DeviceAuthorizationEndpoint, form, false)
	if err != nil {
		return nil, err
	}
	received := c.now()
	var ans struct {
		DeviceCode              string   `json:"device_code"`
		UserCode                string   `json:"user_code"`
		VerificationURI         string   `json:"verification_uri"`
		VerificationURIComplete string   `json:"verification_uri_complete"`
		ExpiresIn               *float64 `json:"expires_in"`
		Interval                *float64 `json:"interval"`
	}
	bad := resp.invalid
	if err := json.Unmarshal(resp.body, &ans); err != nil {
		return nil, bad("invalid device authorization answer", err)
	}
	if err := checkPollingHandle("device_code", ans.DeviceCode); err != nil {
		return nil, bad("device_code missing or malformed: "+err.(*RequestError).Reason, nil)
	}
	switch {
	case ans.UserCode == "" || len(ans.UserCode) > maxCIBAValueLength || sanitize(ans.UserCode, maxCIBAValueLength) != ans.UserCode:
		return nil, bad("user_code missing or not printable ASCII", nil)
	case ans.ExpiresIn == nil || *ans.ExpiresIn <= 0 || *ans.ExpiresIn > maxCIBAExpiresIn.Seconds():
		return nil, bad("expires_in missing or out of range", nil)
	case ans.Interval != nil && *ans.Interval != 0 && !(*ans.Interval >= 1 && *ans.Interval <= maxCIBAInterval.Seconds()):
		return nil, bad("interval out of range", nil)
	}
	// Both URLs are shown to the user (one as a QR code, one as text): both must be on the
	// issuer's origin (QR-01, QR-10).
	if err := checkQRURL(c.issuer, ans.VerificationURI); err != nil {
		return nil, err
	}
	target := ans.VerificationURIComplete
	if target == "" {
		target = ans.VerificationURI
	}
	qr, err := c.NewQRCode(target)
	if err != nil {
		return nil, err
	}
	s := &QRSession{
		UserCode:                ans.UserCode,
		VerificationURI:         ans.VerificationURI,
		VerificationURIComplete: ans.VerificationURIComplete,
		QR:                      qr,
		ReceivedAt:              received,
		ExpiresIn:               time.Duration(*ans.ExpiresIn * float64(time.Second)),
		Interval:                DefaultPollInterval,
		Scope:                   sc,
		st:                      &qrState{deviceCode: ans.DeviceCode},
	}
	if ans.Interval != nil && *ans.Interval > 0 {
		s.Interval = time.Duration(*ans.Interval * float64(time.Second))
	}
	return s, nil
}

// WaitForQRLogin polls the token endpoint for the session (RFC 8628 §3.4, §3.5) until the user
// approves, denies, the session expires or ctx ends, with the rules of WaitForCIBA: the
// interval, slow_down adding SlowDownStep, backoff on transport failures and Retry-After, an
// immediate end when the next allowed poll would fall after the expiry or ctx's deadline, no
// poll after the expiry (a *ExpiredError, errors.Is(err, ErrExpiredToken), also for the
// provider's expired_token), ctx.Err() at once on cancellation (QR-09). The ID token is validated as VerifyIDToken does. A finished
// session is never polled again: the error matches ErrQRSessionFinished.
func (c *OpenIDConnectClient) WaitForQRLogin(ctx context.Context, s *QRSession, opts ...WaitOption) (*LoginResult, error) {
	if s == nil || s.st == nil || s.st.deviceCode == "" {
		return nil, &RequestError{Field: "session", Reason: "not a session from StartQRLogin"}
	}
	st := s.st
	if end := st.ended.Load(); end != nil {
		return nil, fmt.Errorf("%w: %w", ErrQRSessionFinished, *end)
	}
	if !st.waiting.CompareAndSwap(false, true) {
		return nil, &RequestError{Field: "session", Reason: "another WaitForQRLogin is waiting for this session"}
	}
	defer st.waiting.Store(false)
	if end := st.ended.Load(); end != nil { // ended while we took the slot
		return nil, fmt.Errorf("%w: %w", ErrQRSessionFinished, *end)
	}
	res, err := c.pollUntil(ctx, pollSpec{name: "QR login", start: s.ReceivedAt, interval: s.Interval, deadline: s.Expiry()},
		newPollOptions(opts), func(ctx context.Context) (*LoginResult, error) {
			form := url.Values{"grant_type": {deviceCodeGrantType}, "device_code": {st.deviceCode}}
			resp, err := c.postAuthenticated(ctx, "device token", c.meta.TokenEndpoint, form, false)
			if err != nil {
				return nil, asExpired(err, c.now())
			}
			tok, tr, err := c.parseTokenResponse("device token", resp, s.Scope)
			if err != nil {
				return nil, err
			}
			id, err := c.verifyLoginIDToken(ctx, tr.IDToken, "", tok.AccessToken)
			if err != nil {
				return nil, err
			}
			return &LoginResult{Token: tok, IDToken: tr.IDToken, Scope: tr.Scope, Identity: id}, nil
		})
	if endsRequest(err) {
		end := err
		if end == nil {
			end = errors.New("approved and redeemed")
		}
		st.ended.Store(&end)
	}
	return res, err
}
