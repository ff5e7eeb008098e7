package onesoidc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/ones-now/onesoidc/internal/jose"
)

// The ONES QR login: the vendor's own protocol (not RFC 8628), spoken by the ONES app that scans
// the code. The device starts a session with GET {host}/auth/qr, shows a QR code holding
// {"auth_req_id","deviceId"}, and polls GET {host}/auth/qr/{auth_req_id} until the status carries
// the user's access token. Both requests carry the device access token as a bearer token
// (RFC 6750 §2.1). The endpoints hang off the device.yml host, not off the issuer.

// ONES QR login paths below the device.yml host, and the status values of the protocol.
const (
	qrStartPath      = "/auth/qr"
	qrStatusPending  = "pending"
	qrStatusApproved = "approved"

	maxQRSessionIDLength = 256
)

// QRStatusError reports a status of an ONES QR login other than "approved": "pending" while the
// user has not decided (it matches ErrAuthorizationPending with errors.Is, and only then is the
// session still open), any other value ends the session. The ONES protocol publishes no other
// status values; "expired" also matches ErrLoginExpired and "denied" or "rejected" also match
// ErrAccessDenied, so that callers can treat them as they treat the CIBA answers.
type QRStatusError struct {
	// Status is the provider's "status" member: printable ASCII, at most 64 bytes.
	Status string
}

// Error names the status.
func (e *QRStatusError) Error() string {
	if e.Status == qrStatusPending {
		return "onesoidc: QR login pending: the user has not decided yet"
	}
	return "onesoidc: QR login ended with status " + strconv.Quote(e.Status)
}

// Is reports whether target is the sentinel that fits the status: ErrAuthorizationPending for
// "pending", ErrLoginExpired for "expired", ErrAccessDenied for "denied" and "rejected".
func (e *QRStatusError) Is(target error) bool {
	switch e.Status {
	case qrStatusPending:
		return target == ErrAuthorizationPending
	case "expired":
		return target == ErrLoginExpired
	case "denied", "rejected":
		return target == ErrAccessDenied
	}
	return false
}

// errQRRedeemed is how a session that handed out its token ended.
var errQRRedeemed = errors.New("onesoidc: QR login approved and its token handed out")

// checkQRSessionID requires an ONES auth_req_id of 22 (128 bits) to 256 characters from the unreserved set
// of RFC 3986 §2.3 (letters, digits, "-", ".", "_", "~"): it goes into a URL path and into the
// QR code, so nothing else is accepted from the provider.
func checkQRSessionID(id string) error {
	switch {
	case id == "":
		return &RequestError{Field: "auth_req_id", Reason: "empty"}
	case len(id) < minAuthReqIDLength:
		return &RequestError{Field: "auth_req_id", Reason: fmt.Sprintf("%d characters, fewer than the %d that 128 bits of entropy need (CIBA Core §7.3)",
			len(id), minAuthReqIDLength)}
	case len(id) > maxQRSessionIDLength:
		return &RequestError{Field: "auth_req_id", Reason: fmt.Sprintf("more than %d characters", maxQRSessionIDLength)}
	}
	if id == "." || id == ".." {
		return &RequestError{Field: "auth_req_id", Reason: "must not be a dot segment"}
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return &RequestError{Field: "auth_req_id", Reason: "holds a character outside letters, digits and -._~"}
		}
	}
	return nil
}

// checkQRHost requires the host the device access token is sent to to use https, or http on a
// loopback host (RFC 6750 §5.3: bearer tokens only over TLS).
func (c *OpenIDConnectClient) checkQRHost() error {
	return checkEndpoint("host", c.host+qrStartPath, false)
}

// qrGet sends GET {host}{path} with the device access token as bearer token (RFC 6750 §2.1)
// and returns the JSON answer. A 401 renews the device token and tries once more with the new
// one (the provider may have revoked it), unless that token was itself fetched after a 401.
// Redirects are never followed for it.
func (c *OpenIDConnectClient) qrGet(ctx context.Context, op, path string) (*response, error) {
	if err := c.checkQRHost(); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		tok, err := c.DeviceAccessToken(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w%w", err, errDeviceToken)
		}
		resp, err := c.http.exchange(ctx, request{op: op, method: http.MethodGet, url: c.host + path, limit: maxTokenBody,
			header: http.Header{"Authorization": {"Bearer " + tok.AccessToken}}})
		if attempt == 0 && unauthorized(err) && c.renewAfter401(tok) {
			continue // one renewal per token, as DeviceHTTPClient
		}
		return resp, err
	}
}

// errDeviceToken marks a failure to get the device access token for a QR request (its message is
// empty, so that the cause's message stays as it is): it says nothing about the QR session,
// which stays open.
var errDeviceToken = errors.New("")

// unauthorized reports a 401 answer.
func unauthorized(err error) bool {
	var (
		oe *OAuthError
		he *HTTPError
	)
	return (errors.As(err, &oe) && oe.StatusCode == http.StatusUnauthorized) ||
		(errors.As(err, &he) && he.StatusCode == http.StatusUnauthorized)
}

// startONESQRLogin starts an ONES QR login: GET {host}/auth/qr → {"auth_req_id","exp"}.
func (c *OpenIDConnectClient) startONESQRLogin(ctx context.Context) (*QRSession, error) {
	if c.deviceID == "" {
		return nil, &ConfigError{Field: "id", Reason: "the device config has no id; the ONES QR code carries it (set id in device.yml)"}
	}
	if err := c.qr.reserve(c.now()); err != nil {
		return nil, err
	}
	resp, err := c.qrGet(ctx, "QR login start", qrStartPath)
	if err != nil {
		return nil, err
	}
	received := c.now()
	var ans struct {
		AuthReqID *string  `json:"auth_req_id"`
		Exp       *float64 `json:"exp"`
	}
	bad := resp.invalid
	if err := resp.decode("invalid QR login answer", &ans); err != nil {
		return nil, err
	}
	if ans.AuthReqID == nil {
		return nil, bad("QR login answer without auth_req_id", nil)
	}
	if err := checkQRSessionID(*ans.AuthReqID); err != nil {
		return nil, bad("QR login answer with a malformed auth_req_id: "+err.(*RequestError).Reason, nil)
	}
	if ans.Exp == nil || !(*ans.Exp >= 1 && *ans.Exp <= maxCIBAExpiresIn.Seconds()) {
		return nil, bad("exp missing or not a lifetime between 1 s and 24 h", nil)
	}
	qr, err := newONESQRCode(*ans.AuthReqID, c.deviceID)
	if err != nil {
		return nil, err
	}
	s := &QRSession{QR: qr, ReceivedAt: received, ExpiresIn: seconds(*ans.Exp), Interval: defaultPollInterval,
		authReqID: *ans.AuthReqID}
	// Checked and kept under one lock, so that of two starts answered with one id only one
	// gets a session.
	if !c.qr.addNew(s.cibaResponse(), "") {
		return nil, bad("auth_req_id of an earlier session", nil)
	}
	return s, nil
}

// cibaResponse describes an ONES session for the request bookkeeping shared with CIBA.
func (s *QRSession) cibaResponse() *CIBAResponse {
	return &CIBAResponse{AuthReqID: s.authReqID, ExpiresIn: s.ExpiresIn, Interval: s.Interval, ReceivedAt: s.ReceivedAt}
}

// CheckQRStatus polls the status of the ONES QR login authReqID once: GET
// {host}/auth/qr/{auth_req_id} with the device access token as bearer token (ONES protocol, not
// RFC 8628). While the user has not decided, the error is a *QRStatusError that matches
// ErrAuthorizationPending. When approved, it returns a *LoginResult whose Token holds the user's
// access token (Bearer, expiring at the token's introspected exp) and whose Identity comes from
// validating that token by introspection (RFC 7662 §2.2): it must be active, of this issuer,
// unexpired and a user's; otherwise it is revoked (RFC 7009) and the error is a
// *LoginIncompleteError wrapping a *LoginTokenError. Any other status is a *QRStatusError carrying
// it. An answer that names another device than this one is refused.
//
// authReqID must be 1 to 256 letters, digits or -._~ (*RequestError otherwise); it is
// path-escaped. A session that ended in this client (approved, refused, expired) is never polled
// again: the error matches ErrLoginFinished and how the session ended. A session started by
// this client that passed its expiry gives a *LoginExpiredError without a request. Only one poll per
// session is in flight at a time; a concurrent one gets a *RequestError. It needs the ONES
// protocol (the default; not with WithDeviceAuthorizationQR).
func (c *OpenIDConnectClient) CheckQRStatus(ctx context.Context, authReqID string) (*LoginResult, error) {
	if c.qrProtocol != qrProtocolONES {
		return nil, &ConfigError{Field: "WithDeviceAuthorizationQR", Reason: "CheckQRStatus speaks the ONES QR protocol; this client uses RFC 8628"}
	}
	if err := checkQRSessionID(authReqID); err != nil {
		return nil, err
	}
	if _, err := c.qr.before(authReqID, c.now()); err != nil {
		return nil, qrFinished(err)
	}
	return c.pollQR(ctx, authReqID)
}

// qrFinished returns the error of a finished session as it is: it matches ErrLoginFinished and
// how the session ended.
func qrFinished(err error) error { return err }

// pollQR sends one status poll and records how the session ended, if it did.
func (c *OpenIDConnectClient) pollQR(ctx context.Context, id string) (*LoginResult, error) {
	if err := c.qr.startPoll(id); err != nil {
		return nil, qrFinished(err)
	}
	defer c.qr.endPoll(id)
	resp, err := c.qrGet(ctx, "QR login status", qrStartPath+"/"+url.PathEscape(id))
	var res *LoginResult
	if err == nil {
		res, err = c.qrApproved(ctx, resp, id)
	}
	err = asExpired(err, c.now())
	if endsRequest(err) && !errors.Is(err, errDeviceToken) {
		end := err
		if end == nil {
			end = errQRRedeemed
		}
		c.qr.finish(id, end)
	}
	return res, err
}

// qrApproved reads a status answer {"status","deviceId"[,"access_token","issue_time"]} and, when
// approved, validates the user's access token.
func (c *OpenIDConnectClient) qrApproved(ctx context.Context, resp *response, id string) (*LoginResult, error) {
	var ans struct {
		Status      *string `json:"status"`
		DeviceID    *string `json:"deviceId"`
		AccessToken *string `json:"access_token"`
	}
	if err := resp.decode("invalid QR login status", &ans); err != nil {
		return nil, err
	}
	switch {
	case ans.Status == nil:
		return nil, resp.invalid("QR login status without status", nil)
	case ans.DeviceID != nil && !strings.EqualFold(*ans.DeviceID, c.deviceID):
		return nil, resp.invalid("QR login status names another device", nil)
	case *ans.Status != qrStatusApproved:
		// The status is the provider's text: an echo of the device access token it was asked
		// with is redacted, as in OAuth error text (RFC 6750 §5.3).
		return nil, &QRStatusError{Status: redactText(*ans.Status, 64, resp.secrets)}
	case ans.AccessToken == nil || !isBearerToken(*ans.AccessToken):
		return nil, &LoginTokenError{Reason: "access_token missing or not a bearer token (RFC 6750 §2.1)"}
	}
	identity, err := c.completeLogin(ctx, &oauth2.Token{AccessToken: *ans.AccessToken}, func(ctx context.Context) (*AuthenticationResult, error) {
		return c.qrIdentity(ctx, *ans.AccessToken)
	})
	if err != nil {
		return nil, err
	}
	e := &identity.Entity
	tok := (&oauth2.Token{AccessToken: *ans.AccessToken, TokenType: "Bearer", Expiry: e.Expiry}).
		WithExtra(map[string]any{"scope": e.Scope})
	if !e.Expiry.IsZero() {
		tok.ExpiresIn = int64(e.Expiry.Sub(c.now()) / time.Second)
	}
	return &LoginResult{Token: tok, Scope: e.Scope, AuthReqID: id, Auth: identity}, nil
}

// isBearerToken reports whether s is 1 to 64 KiB of the b64token syntax of RFC 6750 §2.1.
func isBearerToken(s string) bool { return len(s) <= maxTokenSize && jose.IsB64Token(s) }

// qrIdentity validates the user access token of an approved ONES QR login as VerifyAccessToken
// does (ONES access tokens are opaque: by introspection, RFC 7662 §2.2, whose answer is then
// cached) and returns who it speaks for: active, of this issuer when the answer names one,
// unexpired, and a user's, not a device's own. A temporary failure of the introspection is
// returned as is, so that the wait polls again; anything else is a *LoginTokenError.
func (c *OpenIDConnectClient) qrIdentity(ctx context.Context, token string) (*AuthenticationResult, error) {
	res, err := c.val.validate(ctx, token, modeAccessToken, nil)
	var ve *ValidationError
	switch {
	case err == nil && res.Entity.Kind == EntityDevice:
		return nil, &LoginTokenError{Reason: "the access token is a client's own, not a user's"}
	case err == nil:
		return res, nil
	case !errors.As(err, &ve):
		return nil, &LoginTokenError{Reason: "the access token was refused", Err: err}
	case ve.reason == reasonIntrospectionUnavailable:
		var he *HTTPError
		if ctx.Err() != nil || (errors.As(err, &he) && he.Temporary()) {
			return nil, ve.Err
		}
		return nil, &LoginTokenError{Reason: "introspection failed", Err: ve.Err}
	case ve.reason == reasonInactive:
		return nil, &LoginTokenError{Reason: "the access token is not active (RFC 7662 §2.2)", Err: err}
	}
	return nil, &LoginTokenError{Reason: "the access token was refused", Err: err}
}

// waitONESQRLogin polls GET {host}/auth/qr/{auth_req_id} for s with the rules of WaitForCIBA.
func (c *OpenIDConnectClient) waitONESQRLogin(ctx context.Context, s *QRSession, w pollOptions) (*LoginResult, error) {
	id := s.authReqID
	p, err := c.qr.startWait(s.cibaResponse())
	if err != nil {
		return nil, qrFinished(err)
	}
	defer c.qr.endWait(id, p)
	return c.pollUntil(ctx, pollSpec{
		name:     "QR login",
		start:    s.ReceivedAt,
		interval: s.Interval,
		deadline: s.Expiry(),
		expired:  func(err error) { c.qr.finish(id, err) },
	}, w, func(ctx context.Context) (*LoginResult, error) { return c.pollQR(ctx, id) })
}
