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

// maxQRURL caps the length of a URL rendered as a QR code.
const maxQRURL = 1024

// qrProtocol is the QR login protocol of a client.
type qrProtocol int

const (
	// qrProtocolONES is the ONES QR login, the default: GET {host}/auth/qr with the device access
	// token starts a session, the QR code holds {"auth_req_id","deviceId"} for the ONES app, and
	// GET {host}/auth/qr/{auth_req_id} is polled until the status carries the user's access token.
	// {host} is the device.yml host, not the issuer.
	qrProtocolONES qrProtocol = iota
	// qrProtocolDeviceAuthorization is the OAuth 2.0 device authorization grant (RFC 8628).
	qrProtocolDeviceAuthorization
)

// WithDeviceAuthorizationQR makes StartQRLogin and WaitForQRLogin use the OAuth 2.0 device
// authorization grant (RFC 8628), for providers that advertise device_authorization_endpoint:
// the QR code holds the provider's verification URL. By default a client speaks the ONES QR
// login, which the ONES app scans: GET {host}/auth/qr with the device access token starts a
// session, the QR code holds {"auth_req_id","deviceId"}, and GET {host}/auth/qr/{auth_req_id}
// is polled until the user's access token comes back ({host} is the device.yml host, not the
// issuer).
func WithDeviceAuthorizationQR() Option {
	return func(o *options) { o.qrProtocol = qrProtocolDeviceAuthorization }
}

// QRCode is a QR code for a login, rendered as PNG, SVG or terminal text. It holds either a URL
// on the provider's origin (RFC 8628) or the ONES payload {"auth_req_id","deviceId"} that
// StartQRLogin builds itself: never a credential, a token or a polling secret (RFC 8628 §3.3
// shows the user only the user code and the verification URI). A QRCode is immutable and safe for
// concurrent use.
type QRCode struct {
	url     string // the URL of a URL code, "" for the ONES payload
	payload string // the encoded text
	code    *qrcode.QRCode
}

// NewQRCode returns the QR code of rawURL, which must be an https URL (http only on a loopback
// host) on the same origin (scheme, host and port) as the issuer, without user info, of at most
// 1024 bytes: a phone that scans it opens the provider, nothing else (RFC 8628 §3.3.1).
// RFC 8628's verification_uri_complete qualifies. The ONES QR code is not a URL: StartQRLogin
// builds it (the JSON {"auth_req_id","deviceId"}) and puts it in QRSession.QR.
func (c *OpenIDConnectClient) NewQRCode(rawURL string) (*QRCode, error) {
	if err := checkQRURL(c.issuer, rawURL); err != nil {
		return nil, err
	}
	return newQRCode(rawURL, rawURL)
}

// newONESQRCode returns the ONES QR code: the JSON text {"auth_req_id":…,"deviceId":…}, built
// here from a checked session id and the device id, never from provider text.
func newONESQRCode(authReqID, deviceID string) (*QRCode, error) {
	if err := checkQRSessionID(authReqID); err != nil {
		return nil, err
	}
	if !isUUID(deviceID) {
		return nil, &ConfigError{Field: "id", Reason: "the device id must be a UUID"}
	}
	payload, err := json.Marshal(struct {
		AuthReqID string `json:"auth_req_id"`
		DeviceID  string `json:"deviceId"`
	}{authReqID, deviceID})
	if err != nil {
		return nil, &ConfigError{Field: "QR payload", Reason: "cannot encode", Err: err}
	}
	return newQRCode("", string(payload))
}

func newQRCode(rawURL, payload string) (*QRCode, error) {
	code, err := qrcode.New(payload, qrcode.Medium)
	if err != nil {
		return nil, &ConfigError{Field: "QR payload", Reason: "cannot encode as a QR code", Err: err}
	}
	return &QRCode{url: rawURL, payload: payload, code: code}, nil
}

// checkQRURL requires a QR code URL on the issuer's origin, so that a scanned code never
// leads elsewhere (RFC 8628 §5.4, remote phishing).
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

// URL returns the encoded URL, for showing as text next to the code (RFC 8628 §3.3.1), or ""
// for the ONES payload, which is no URL.
func (q *QRCode) URL() string {
	if q == nil {
		return ""
	}
	return q.url
}

// Payload returns the encoded text: the URL, or the ONES JSON {"auth_req_id":…,"deviceId":…}.
func (q *QRCode) Payload() string {
	if q == nil {
		return ""
	}
	return q.payload
}

// bitmap returns the modules of the code, quiet zone included; none for a nil or zero QRCode
// (one that no constructor made), which encodes nothing.
func (q *QRCode) bitmap() [][]bool {
	if q == nil || q.code == nil {
		return nil
	}
	return q.code.Bitmap()
}

// PNG returns the code as a PNG image of size × size pixels (at least 64). A nil or zero
// QRCode (one that no constructor made) is a *ConfigError.
func (q *QRCode) PNG(size int) ([]byte, error) {
	if size < 64 || size > 4096 {
		return nil, &ConfigError{Field: "size", Reason: fmt.Sprintf("PNG size must be between 64 and 4096, got %d", size)}
	}
	if q == nil || q.code == nil {
		return nil, &ConfigError{Field: "QRCode", Reason: "a zero QRCode encodes nothing: use NewQRCode or a login's QR code"}
	}
	return q.code.PNG(size)
}

// SVG returns the code as a standalone SVG document, one unit per module, scaled to fit its
// container; dark modules are drawn as one path. A nil or zero QRCode gives an empty document.
func (q *QRCode) SVG() string {
	bm := q.bitmap()
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
// half blocks "▀", "▄", "█" and spaces), quiet zone included. Every line sets its own colours
// with ANSI escape codes, black foreground (SGR 30) on a white background (SGR 47, then 107 for
// terminals that know bright white), and resets them at its end: the code carries its own light
// background and decodes on light and dark terminals alike, whatever their colour scheme. Write it
// to a terminal that interprets ANSI colours; for anything else use PNG or SVG. A nil or zero
// QRCode gives "".
func (q *QRCode) Terminal() string {
	bm := q.bitmap()
	var b strings.Builder
	b.Grow((len(bm) + 1) / 2 * (len(bm)*3 + len(termColours) + len(termReset) + 1))
	for y := 0; y < len(bm); y += 2 {
		b.WriteString(termColours)
		for x := range bm[y] {
			top := bm[y][x]
			bottom := y+1 < len(bm) && bm[y+1][x] // below an odd last row: more quiet zone
			switch {
			case top && bottom:
				b.WriteString("█")
			case top:
				b.WriteString("▀")
			case bottom:
				b.WriteString("▄")
			default:
				b.WriteByte(' ')
			}
		}
		b.WriteString(termReset + "\n")
	}
	return b.String()
}

// ANSI SGR sequences of Terminal: black on white (bright white where supported), and reset.
const (
	termColours = "\x1b[30;47;107m"
	termReset   = "\x1b[0m"
)

// deviceCodeGrantType is the grant of RFC 8628 §3.4.
const deviceCodeGrantType = "urn:ietf:params:oauth:grant-type:device_code"

// QRSession is a QR login in progress: show QR on the screen, the user scans it with their
// phone and approves, and WaitForQRLogin returns the login. With the ONES protocol (the default)
// the code holds the session id and the device id, and the user's ONES app approves; with RFC 8628
// it holds the provider's verification URL, and the device code that polls for the tokens stays
// inside the session and is never shown, encoded or logged (RFC 8628 §3.2, §3.3). A session is
// single-use and dies at its expiry (RFC 8628 §3.5). Its methods are safe for concurrent use,
// but only one WaitForQRLogin runs at a time.
type QRSession struct {
	// UserCode is the code the user confirms on their phone (RFC 8628 §3.2); show it next to the
	// QR code so that both screens show the same value. Empty for ONES sessions.
	UserCode string
	// VerificationURI is where the user can type UserCode, for users who cannot scan (RFC 8628
	// only).
	VerificationURI string
	// VerificationURIComplete is VerificationURI with the user code, if the provider sent one
	// (RFC 8628 only).
	VerificationURIComplete string
	// QR encodes the ONES payload {"auth_req_id","deviceId"}; for RFC 8628
	// VerificationURIComplete, or VerificationURI when there is none.
	QR *QRCode
	// ReceivedAt is when the provider answered.
	ReceivedAt time.Time
	// ExpiresIn is how long the session lives (ONES "exp", RFC 8628 expires_in).
	ExpiresIn time.Duration
	// Interval is the polling interval (RFC 8628 interval; 5 seconds when absent, and always
	// for ONES, which sends none).
	Interval time.Duration
	// Scope is the requested scope (RFC 8628 only: the ONES protocol takes no scope).
	Scope string

	authReqID string   // ONES: shown in the QR code, see ID
	st        *qrState // RFC 8628; behind a pointer, so that a copy of a QRSession holds no secret or lock
}

// qrState is the private part of an RFC 8628 QRSession: its device code, the polling secret.
type qrState struct {
	deviceCode string
	waiting    atomic.Bool
	ended      atomic.Pointer[error]
}

// ID returns the ONES session id (auth_req_id), which CheckQRStatus takes. It is no secret: the
// QR code shows it, and polling it takes this device's access token, since the provider binds
// the session to the client that started it. For RFC 8628 sessions it
// returns "": the device code never leaves the session.
func (s *QRSession) ID() string { return s.authReqID }

// Expiry returns when the session dies: ReceivedAt plus ExpiresIn.
func (s *QRSession) Expiry() time.Time { return s.ReceivedAt.Add(s.ExpiresIn) }

// StartQRLogin starts a QR login with the client's protocol (see WithDeviceAuthorizationQR).
//
// ONES (the default): GET {host}/auth/qr with the device access token as bearer token (sent only
// over https, or http to a loopback host) → {"auth_req_id","exp"}; the session lives exp seconds
// and its QR code holds the JSON {"auth_req_id":…,"deviceId":…} with the device.yml id, which must
// be set. The auth_req_id must be 22 to 256 letters, digits or -._~, and not the device access
// token the request carried (the QR code shows it), else the answer is refused. The ONES protocol takes no scope: scope is ignored, and the scope of the
// login is what the token's introspection says.
//
// RFC 8628: a device authorization request (§3.1) for scope ("openid" is added when missing)
// authenticated with a client assertion. The QR code encodes the provider's verification URL,
// which must be on the issuer's origin (RFC 8628 §3.3.1). An answer whose device_code is that of
// a session this client already holds, pending or ended, is refused with an *HTTPError (one
// device code names one authorization, RFC 8628 §3.2: taking it would poll one authorization
// for two sessions, and hand one user's tokens to both).
func (c *OpenIDConnectClient) StartQRLogin(ctx context.Context, scope ...string) (*QRSession, error) {
	if c.qrProtocol == qrProtocolONES {
		return c.startONESQRLogin(ctx)
	}
	if c.meta.DeviceAuthorizationEndpoint == "" {
		return nil, &ConfigError{Field: "device_authorization_endpoint", Reason: "the provider metadata has no device authorization endpoint", Err: ErrNotSupportedByProvider}
	}
	if !slices.Contains(scope, "openid") {
		scope = append([]string{"openid"}, scope...)
	}
	sc := strings.Join(scope, " ")
	if err := c.qr.reserve(c.now()); err != nil {
		return nil, err
	}
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
	if err := resp.decode("invalid device authorization answer", &ans); err != nil {
		return nil, err
	}
	if err := checkPollingHandle("device_code", ans.DeviceCode); err != nil {
		return nil, bad("device_code missing or malformed: "+err.(*RequestError).Reason, nil)
	}
	switch {
	case ans.UserCode == "" || len(ans.UserCode) > maxCIBAValueLength || !isVSChars(ans.UserCode):
		return nil, bad("user_code missing or not printable ASCII", nil)
	case ans.ExpiresIn == nil || !(*ans.ExpiresIn >= 1 && *ans.ExpiresIn <= maxCIBAExpiresIn.Seconds()):
		// At least 1 s, as for CIBA and ONES sessions: a session that dies before its first
		// poll is no session (RFC 8628 §3.2: a lifetime in seconds).
		return nil, bad("expires_in missing or not a lifetime between 1 s and 24 h", nil)
	case ans.Interval != nil && *ans.Interval != 0 && !(*ans.Interval >= 1 && *ans.Interval <= maxCIBAInterval.Seconds()):
		return nil, bad("interval out of range", nil)
	}
	// Both URLs are shown to the user (one as a QR code, one as text): both must be on the
	// issuer's origin. The refusal quotes the URL: scrubbed of the request's credentials.
	if err := checkQRURL(c.issuer, ans.VerificationURI); err != nil {
		return nil, scrub(err, resp.secrets)
	}
	target := ans.VerificationURIComplete
	if target == "" {
		target = ans.VerificationURI
	}
	qr, err := c.NewQRCode(target)
	if err != nil {
		return nil, scrub(err, resp.secrets)
	}
	s := &QRSession{
		UserCode:                ans.UserCode,
		VerificationURI:         ans.VerificationURI,
		VerificationURIComplete: ans.VerificationURIComplete,
		QR:                      qr,
		ReceivedAt:              received,
		ExpiresIn:               time.Duration(*ans.ExpiresIn * float64(time.Second)),
		Interval:                defaultPollInterval,
		Scope:                   sc,
		st:                      &qrState{deviceCode: ans.DeviceCode},
	}
	if ans.Interval != nil && *ans.Interval > 0 {
		s.Interval = time.Duration(*ans.Interval * float64(time.Second))
	}
	// One device_code names one authorization (RFC 8628 §3.2): checked and kept under one lock
	// with the client's other sessions, pending or ended, as a CIBA auth_req_id is.
	if !c.qr.addNew(&CIBAResponse{AuthReqID: ans.DeviceCode, ExpiresIn: s.ExpiresIn, ReceivedAt: received}, "") {
		return nil, bad("device authorization answer with the device_code of an earlier session", nil)
	}
	return s, nil
}

// WaitForQRLogin polls for the session until the user approves, denies, the session expires or
// ctx ends, with the rules of WaitForCIBA: the interval, slow_down adding 5 s, backoff on
// transport failures and Retry-After, an immediate end when the next allowed poll would fall
// after the expiry or ctx's deadline, no poll after the expiry (a *LoginExpiredError,
// errors.Is(err, ErrLoginExpired), also when the provider said so first), ctx.Err() at once on
// cancellation. A finished
// session is never polled again: the error matches ErrLoginFinished.
//
// ONES sessions poll GET {host}/auth/qr/{auth_req_id} as CheckQRStatus does, and return the
// user's access token with the identity its introspection gives; a status other than pending or
// approved ends the wait with a *QRStatusError. RFC 8628 sessions poll the token endpoint
// (§3.4, §3.5) and validate the ID token as VerifyIDToken does.
//
// Approved tokens that fail validation are revoked (RFC 7009) and the wait ends with a
// *LoginIncompleteError saying why; they are never returned.
func (c *OpenIDConnectClient) WaitForQRLogin(ctx context.Context, s *QRSession, opts ...Option) (*LoginResult, error) {
	if s == nil || (s.authReqID == "" && (s.st == nil || s.st.deviceCode == "")) {
		return nil, &RequestError{Field: "session", Reason: "not a session from StartQRLogin"}
	}
	if s.authReqID != "" {
		return c.waitONESQRLogin(ctx, s, newPollOptions(opts))
	}
	st := s.st
	if end := st.ended.Load(); end != nil {
		return nil, finishedError(*end)
	}
	if !st.waiting.CompareAndSwap(false, true) {
		return nil, &RequestError{Field: "session", Reason: "another WaitForQRLogin is waiting for this session"}
	}
	defer st.waiting.Store(false)
	if end := st.ended.Load(); end != nil { // ended while we took the slot
		return nil, finishedError(*end)
	}
	res, err := c.pollUntil(ctx, pollSpec{name: "QR login", start: s.ReceivedAt, interval: s.Interval, deadline: s.Expiry()},
		newPollOptions(opts), func(ctx context.Context) (*LoginResult, error) {
			form := url.Values{"grant_type": {deviceCodeGrantType}, "device_code": {st.deviceCode}}
			resp, err := c.postAuthenticated(ctx, "device token", c.meta.TokenEndpoint, form, false)
			if err != nil {
				return nil, asExpired(err, c.now())
			}
			return c.completeTokenLogin(ctx, resp, s.Scope, "")
		})
	if endsRequest(err) {
		end := err
		if end == nil {
			end = errors.New("approved and redeemed")
		}
		st.ended.Store(&end)
		c.qr.finish(st.deviceCode, end)
	}
	return res, err
}
