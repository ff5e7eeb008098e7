package onesoidc

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/oauth2"
)

// CIBA constants of CIBA Core 1.0 and the limits this package applies to provider answers.
const (
	// DefaultCIBAInterval is the polling interval when the backchannel answer has none
	// (CIBA Core §7.3).
	DefaultCIBAInterval = 5 * time.Second
	// CIBASlowDownStep is added to the polling interval for every slow_down answer, for all later
	// polls (CIBA Core §11, RFC 8628 §3.5).
	CIBASlowDownStep = 5 * time.Second
	// DefaultCIBAMaxFailures is how many consecutive transport failures (no answer, 5xx, 429)
	// WaitForCIBA tolerates before it gives up (WithCIBAMaxFailures).
	DefaultCIBAMaxFailures = 5
	// DefaultBindingMessageMaxLength is the longest binding message the default check accepts, in
	// characters.
	DefaultBindingMessageMaxLength = 64
	// BindingMessagePatternOIDCProvider is the binding message rule of the oidc-provider
	// implementation (and so of the ONES provider): 1 to 20 ASCII letters, digits and -._+/!?#.
	// Pass regexp.MustCompile(BindingMessagePatternOIDCProvider) to WithCIBABindingMessagePattern
	// to reject other messages before they are sent.
	BindingMessagePatternOIDCProvider = `^[a-zA-Z0-9-._+/!?#]{1,20}$`

	cibaGrantType    = "urn:openid:params:grant-type:ciba"
	cibaAuthReqClaim = "urn:openid:params:jwt:claim:auth_req_id"

	maxCIBAExpiresIn    = 24 * time.Hour  // longer answers are refused as absurd
	maxCIBAInterval     = 5 * time.Minute // longer answers are refused as absurd
	maxCIBABackoff      = time.Minute     // cap of the doubled interval after failures
	maxCIBARetryAfter   = 5 * time.Minute // cap of a server's Retry-After while polling
	maxRequestedExpiry  = 24 * time.Hour
	maxAuthReqIDLength  = 1024
	maxHintLength       = 16 << 10
	maxCIBAValueLength  = 256 // user code, QR session id, each scope, ACR value
	defaultMaxPending   = 10000
	maxFinishedCIBA     = 4096
	notificationTokenSz = 32 // random bytes of a client_notification_token (256 bits)
)

// LoginHintKind selects which hint parameter of CIBA Core §7.1 carries a LoginHint's value.
// The zero value is LoginHintKindLoginHint.
type LoginHintKind int

const (
	// LoginHintKindLoginHint sends the value as login_hint: a user name, e-mail address or other
	// identifier the provider knows.
	LoginHintKindLoginHint LoginHintKind = iota
	// LoginHintKindLoginHintToken sends the value as login_hint_token: a token that names the
	// user, as the ONES clients do.
	LoginHintKindLoginHintToken
	// LoginHintKindIDTokenHint sends the value as id_token_hint: an ID token previously issued to
	// this client for the user.
	LoginHintKindIDTokenHint
)

// String returns the request parameter name of the kind ("login_hint", "login_hint_token" or
// "id_token_hint").
func (k LoginHintKind) String() string {
	switch k {
	case LoginHintKindLoginHint:
		return "login_hint"
	case LoginHintKindLoginHintToken:
		return "login_hint_token"
	case LoginHintKindIDTokenHint:
		return "id_token_hint"
	}
	return "LoginHintKind(" + strconv.Itoa(int(k)) + ")"
}

// ParseLoginHintKind parses the name of a hint kind: "login_hint", "login_hint_token" or
// "id_token_hint", also written in camel case ("loginHintToken") or Pascal case ("IdTokenHint").
func ParseLoginHintKind(s string) (LoginHintKind, error) {
	switch strings.ToLower(strings.ReplaceAll(s, "_", "")) {
	case "loginhint":
		return LoginHintKindLoginHint, nil
	case "loginhinttoken":
		return LoginHintKindLoginHintToken, nil
	case "idtokenhint":
		return LoginHintKindIDTokenHint, nil
	}
	return 0, &RequestError{Field: "loginHintKind", Reason: fmt.Sprintf("unknown hint kind %q", sanitize(s, 40))}
}

// LoginHint names the user of a CIBA request (CIBA Core §7.1): Kind picks which of the three
// hint parameters carries Value, so a request always has exactly one hint.
type LoginHint struct {
	Kind  LoginHintKind
	Value string
}

// CIBARequest is a backchannel authentication request (CIBA Core §7.1). MakeCIBARequest checks it
// before anything is sent and reports a *RequestError for the first problem found.
type CIBARequest struct {
	// Hint names the user (required).
	Hint LoginHint
	// Scope is the requested scope; it must include "openid".
	Scope []string
	// BindingMessage is shown on both the consumption device and the authentication device, so
	// that the user can tell this request from others. By default it may hold up to 64
	// printable characters (no control characters, valid UTF-8); WithCIBABindingMessagePattern
	// sets a stricter rule, such as BindingMessagePatternOIDCProvider, the rule of the ONES
	// provider.
	BindingMessage string
	// UserCode is a secret code known to the user (CIBA Core §7.1); the provider must announce
	// backchannel_user_code_parameter_supported.
	UserCode string
	// RequestedExpiry asks for a lifetime of the request (requested_expiry, rounded up to whole
	// seconds); 0 leaves it to the provider. It must not be negative nor over 24 hours.
	RequestedExpiry time.Duration
	// ACRValues are the requested authentication context class references, in order of
	// preference.
	ACRValues []string
	// Resource lists resource indicators (RFC 8707 §2): absolute URIs without fragment.
	Resource []string
	// QRSessionID is the ONES QR session the login was started from, sent as qr_session_id.
	QRSessionID string
}

// CIBAResponse is the provider's acknowledgement of a backchannel authentication request (CIBA
// Core §7.3), with the time it was received: the request expires at ReceivedAt + ExpiresIn.
type CIBAResponse struct {
	// AuthReqID identifies the request at the token endpoint (auth_req_id).
	AuthReqID string
	// ExpiresIn is the lifetime of the request (expires_in).
	ExpiresIn time.Duration
	// Interval is the minimum time between polls (interval; DefaultCIBAInterval when absent
	// or 0).
	Interval time.Duration
	// ReceivedAt is when the acknowledgement arrived.
	ReceivedAt time.Time
	// Scope is the requested scope, space separated: the scope of the tokens when the token
	// response does not name one.
	Scope string
}

// Expiry returns when the request expires: ReceivedAt + ExpiresIn.
func (r *CIBAResponse) Expiry() time.Time { return r.ReceivedAt.Add(r.ExpiresIn) }

// CIBAResult holds the tokens of an approved CIBA request (CIBA Core §10.1.1).
type CIBAResult struct {
	// Token holds the access token, its expiry and the refresh token, if any. Token.Extra("scope")
	// and Token.Extra("id_token") give Scope and IDToken as well, and RefreshToken accepts it.
	Token *oauth2.Token
	// IDToken is the raw ID token.
	IDToken string
	// Scope is the granted scope: the token response's scope, or the requested scope when the
	// response has none (RFC 6749 §5.1).
	Scope string
	// AuthReqID is the request the tokens answer.
	AuthReqID string
}

// RequestError reports a CIBA request, or a request to one of the CIBA handlers, that is invalid
// before anything was sent: a missing hint, a scope without openid, a binding message that
// breaks the rule, a negative expiry. It never includes the value of a hint or token.
type RequestError struct {
	// Field is the parameter, such as "scope" or "binding_message".
	Field string
	// Reason says what is wrong.
	Reason string
}

// Error returns "onesoidc: invalid request: <field>: <reason>".
func (e *RequestError) Error() string {
	return "onesoidc: invalid request: " + e.Field + ": " + e.Reason
}

// CIBAExpiredError reports that a CIBA request reached its expires_in on the local clock, so no
// further poll was sent (CIBA Core §7.3, §11). errors.Is(err, ErrExpiredToken) holds for it, as
// for the provider's expired_token answer.
type CIBAExpiredError struct {
	// Expiry is when the request expired.
	Expiry time.Time
}

// Error says when the request expired.
func (e *CIBAExpiredError) Error() string {
	return "onesoidc: CIBA request expired at " + e.Expiry.UTC().Format(time.RFC3339) + " without a decision"
}

// Is reports whether target is ErrExpiredToken.
func (e *CIBAExpiredError) Is(target error) bool { return target == ErrExpiredToken }

// ErrCIBARedeemed is matched (errors.Is) by the error of CheckCIBAStatus and WaitForCIBA for an
// auth_req_id whose tokens were already issued: it is never sent again (SECURITY-CASES CB-15).
var ErrCIBARedeemed = errors.New("onesoidc: CIBA auth_req_id already redeemed")

// CIBAFinishedError is returned without any request by CheckCIBAStatus and WaitForCIBA for an
// auth_req_id that already ended in this client: redeemed (Err is ErrCIBARedeemed), denied,
// expired or failed (Err is the error it ended with, so errors.Is(err, ErrAccessDenied) still
// holds). The client remembers the last 4096 ended requests.
type CIBAFinishedError struct {
	Err error
}

// Error names the error the request ended with.
func (e *CIBAFinishedError) Error() string {
	return "onesoidc: CIBA request already finished: " + e.Err.Error()
}

// Unwrap returns the error the request ended with.
func (e *CIBAFinishedError) Unwrap() error { return e.Err }

// CIBATokenError reports a token response to a CIBA poll that was rejected: its ID token is
// missing or names another issuer, audience or auth_req_id (CIBA Core §10.1.1, SECURITY-CASES
// CB-18). The tokens of such a response are never returned.
type CIBATokenError struct {
	// Reason says what is wrong.
	Reason string
	// Err is the underlying error, if any.
	Err error
}

// Error says why the token response was rejected.
func (e *CIBATokenError) Error() string {
	s := "onesoidc: CIBA token response rejected: " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error, if any.
func (e *CIBATokenError) Unwrap() error { return e.Err }

// CIBAEncoding selects how MakeCIBARequest encodes the request parameters.
type CIBAEncoding int

const (
	// CIBAEncodingForm sends the parameters as form parameters (CIBA Core §7.1). It is the
	// default.
	CIBAEncodingForm CIBAEncoding = iota
	// CIBAEncodingRequestObject sends them in a signed request object, the form parameter
	// "request" (CIBA Core §7.1.1): a JWT signed by the device key with header typ
	// "oauth-authz-req+jwt" and claims iss (client id), aud (issuer), iat, nbf, exp (iat plus the
	// assertion lifetime) and a fresh jti besides the parameters. It is the ONES encoding.
	CIBAEncodingRequestObject
)

// cibaConfig holds the CIBA options of a client.
type cibaConfig struct {
	encoding       CIBAEncoding
	ping           bool
	bindingPattern *regexp.Regexp
}

// WithCIBAEncoding selects the encoding of CIBA requests (default CIBAEncodingForm).
func WithCIBAEncoding(e CIBAEncoding) Option {
	return func(o *options) {
		if e != CIBAEncodingForm && e != CIBAEncodingRequestObject {
			o.fail("WithCIBAEncoding", "unknown encoding %d", e)
			return
		}
		o.ciba.encoding = e
	}
}

// WithCIBAPing puts the client in ping mode (CIBA Core §5, §10.2): each request carries a fresh
// client_notification_token of 256 random bits, and the provider notifies the client
// notification endpoint registered for the client, which CIBANotificationHandler serves.
// The default is poll mode. The provider must list "ping" in
// backchannel_token_delivery_modes_supported when it announces that list.
func WithCIBAPing() Option {
	return func(o *options) { o.ciba.ping = true }
}

// WithCIBABindingMessagePattern replaces the default binding message check (at most
// DefaultBindingMessageMaxLength printable characters) with re, which the whole message must
// match. regexp.MustCompile(BindingMessagePatternOIDCProvider) gives the rule of the ONES
// provider, so that a bad message fails before it is sent.
func WithCIBABindingMessagePattern(re *regexp.Regexp) Option {
	return func(o *options) {
		if re == nil {
			o.fail("WithCIBABindingMessagePattern", "nil *regexp.Regexp")
			return
		}
		o.ciba.bindingPattern = re
	}
}

// MakeCIBARequest sends a backchannel authentication request (CIBA Core §7.1) to the provider's
// backchannel_authentication_endpoint, authenticated with a fresh private_key_jwt client
// assertion, in the encoding of WithCIBAEncoding, and returns the provider's acknowledgement
// (§7.3). Poll it with CheckCIBAStatus or wait with WaitForCIBA.
//
// Before anything is sent, req is checked (a *RequestError), and so is the provider metadata: a
// missing backchannel endpoint, a delivery mode or request-object algorithm the provider does not
// list, a user code the provider does not support, or grant_types_supported without the CIBA
// grant are a *ConfigError. The answer must carry auth_req_id (visible ASCII, at most 1024
// characters) and expires_in (1 s to 24 h); interval, when present, must be at most 5 minutes.
// Error answers (§13) come back as *OAuthError: errors.Is(err, ErrUnknownUserID) and so on.
func (c *OpenIDConnectClient) MakeCIBARequest(ctx context.Context, req CIBARequest) (*CIBAResponse, error) {
	if err := c.cibaPreflight(&req); err != nil {
		return nil, err
	}
	params, err := req.params(c.cibaCfg.bindingPattern)
	if err != nil {
		return nil, err
	}
	if err := c.ciba.reserve(c.now()); err != nil {
		return nil, err
	}
	var notifyToken string
	if c.cibaCfg.ping {
		notifyToken = newNotificationToken()
		params.notificationToken = notifyToken
	}
	endpoint := c.meta.BackchannelAuthenticationEndpoint
	form := url.Values{}
	if c.cibaCfg.encoding == CIBAEncodingRequestObject {
		ro, err := c.requestObject(ctx, params)
		if err != nil {
			return nil, err
		}
		form.Set("request", ro)
	} else {
		params.addTo(form)
	}
	resp, err := c.postAuthenticated(ctx, "backchannel authentication", endpoint, form, false)
	if err != nil {
		return nil, err
	}
	out, err := c.parseBackchannelAnswer(resp, endpoint)
	if err != nil {
		return nil, err
	}
	out.Scope = params.scope
	c.ciba.add(out, notifyToken)
	return out, nil
}

// cibaPreflight checks the provider metadata against the client's CIBA options and req
// (SECURITY-CASES DS-13).
func (c *OpenIDConnectClient) cibaPreflight(req *CIBARequest) error {
	m := c.meta
	if m.BackchannelAuthenticationEndpoint == "" {
		return &ConfigError{Field: "backchannel_authentication_endpoint", Reason: "the provider metadata has no backchannel authentication endpoint (CIBA Core §4)"}
	}
	mode := "poll"
	if c.cibaCfg.ping {
		mode = "ping"
	}
	if len(m.BackchannelTokenDeliveryModesSupported) > 0 && !slices.Contains(m.BackchannelTokenDeliveryModesSupported, mode) {
		return &ConfigError{Field: "backchannel_token_delivery_modes_supported", Reason: fmt.Sprintf("the provider does not support the %s delivery mode", mode)}
	}
	if len(m.GrantTypesSupported) > 0 && !slices.Contains(m.GrantTypesSupported, cibaGrantType) {
		return &ConfigError{Field: "grant_types_supported", Reason: "the provider does not list the CIBA grant type " + cibaGrantType}
	}
	if req.UserCode != "" && !m.BackchannelUserCodeParameterSupported {
		return &ConfigError{Field: "backchannel_user_code_parameter_supported", Reason: "the provider does not support user_code"}
	}
	if algs := m.BackchannelAuthenticationRequestSigningAlgValuesSupported; c.cibaCfg.encoding == CIBAEncodingRequestObject &&
		len(algs) > 0 && !slices.Contains(algs, c.signer.Algorithm()) {
		return &ConfigError{Field: "backchannel_authentication_request_signing_alg_values_supported",
			Reason: fmt.Sprintf("the provider does not accept request objects signed with %s", c.signer.Algorithm())}
	}
	return nil
}

// cibaParams are the checked parameters of a CIBA request, ready to encode.
type cibaParams struct {
	hintName, hint    string
	scope             string
	bindingMessage    string
	userCode          string
	requestedExpiry   int64
	acrValues         string
	resource          []string
	qrSessionID       string
	notificationToken string
}

// params checks r (SECURITY-CASES CB-24) and returns its parameters.
func (r *CIBARequest) params(bindingPattern *regexp.Regexp) (*cibaParams, error) {
	p := &cibaParams{}
	switch r.Hint.Kind {
	case LoginHintKindLoginHint:
		if err := checkText("login_hint", r.Hint.Value, maxHintLength, true); err != nil {
			return nil, err
		}
	case LoginHintKindLoginHintToken, LoginHintKindIDTokenHint:
		if err := checkToken(r.Hint.Kind.String(), r.Hint.Value, maxHintLength); err != nil {
			return nil, err
		}
	default:
		return nil, &RequestError{Field: "hint", Reason: fmt.Sprintf("unknown hint kind %d", r.Hint.Kind)}
	}
	p.hintName, p.hint = r.Hint.Kind.String(), r.Hint.Value

	if !slices.Contains(r.Scope, "openid") {
		return nil, &RequestError{Field: "scope", Reason: `must include "openid" (CIBA Core §7.1)`}
	}
	for _, s := range r.Scope {
		if err := checkToken("scope", s, maxCIBAValueLength); err != nil {
			return nil, err
		}
	}
	p.scope = strings.Join(r.Scope, " ")

	if r.BindingMessage != "" {
		if bindingPattern != nil {
			if !bindingPattern.MatchString(r.BindingMessage) {
				return nil, &RequestError{Field: "binding_message", Reason: "does not match " + bindingPattern.String()}
			}
		} else if err := checkText("binding_message", r.BindingMessage, DefaultBindingMessageMaxLength, true); err != nil {
			return nil, err
		}
		p.bindingMessage = r.BindingMessage
	}
	if r.UserCode != "" {
		if err := checkText("user_code", r.UserCode, maxCIBAValueLength, false); err != nil {
			return nil, err
		}
		p.userCode = r.UserCode
	}
	switch {
	case r.RequestedExpiry < 0:
		return nil, &RequestError{Field: "requested_expiry", Reason: "must be positive"}
	case r.RequestedExpiry > maxRequestedExpiry:
		return nil, &RequestError{Field: "requested_expiry", Reason: fmt.Sprintf("must be at most %v", maxRequestedExpiry)}
	case r.RequestedExpiry > 0:
		p.requestedExpiry = int64((r.RequestedExpiry + time.Second - 1) / time.Second)
	}
	for _, v := range r.ACRValues {
		if err := checkToken("acr_values", v, maxCIBAValueLength); err != nil {
			return nil, err
		}
	}
	p.acrValues = strings.Join(r.ACRValues, " ")
	for _, res := range r.Resource {
		u, err := url.Parse(res)
		if err != nil || !u.IsAbs() || u.Fragment != "" || len(res) > maxHintLength {
			return nil, &RequestError{Field: "resource", Reason: "must be an absolute URI without fragment (RFC 8707 §2)"}
		}
	}
	p.resource = r.Resource
	if r.QRSessionID != "" {
		if err := checkToken("qr_session_id", r.QRSessionID, maxCIBAValueLength); err != nil {
			return nil, err
		}
		p.qrSessionID = r.QRSessionID
	}
	return p, nil
}

// checkText requires valid UTF-8 of 1 to max characters without control characters; spaces
// are allowed when spaces is true.
func checkText(field, s string, max int, spaces bool) error {
	if s == "" {
		return &RequestError{Field: field, Reason: "empty"}
	}
	if !utf8.ValidString(s) {
		return &RequestError{Field: field, Reason: "not valid UTF-8"}
	}
	if n := utf8.RuneCountInString(s); n > max {
		return &RequestError{Field: field, Reason: fmt.Sprintf("%d characters, at most %d allowed", n, max)}
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || (!spaces && r == ' ') {
			return &RequestError{Field: field, Reason: "holds a control or non-printable character"}
		}
	}
	return nil
}

// checkToken requires 1 to max visible ASCII characters other than '"' and '\' (the scope-token
// syntax of RFC 6749 §3.3).
func checkToken(field, s string, max int) error {
	if s == "" {
		return &RequestError{Field: field, Reason: "empty"}
	}
	if len(s) > max {
		return &RequestError{Field: field, Reason: fmt.Sprintf("%d bytes, at most %d allowed", len(s), max)}
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return &RequestError{Field: field, Reason: "holds a character outside visible ASCII"}
		}
	}
	return nil
}

// addTo sets the parameters as form parameters (CIBA Core §7.1).
func (p *cibaParams) addTo(f url.Values) {
	f.Set(p.hintName, p.hint)
	f.Set("scope", p.scope)
	set := func(k, v string) {
		if v != "" {
			f.Set(k, v)
		}
	}
	set("binding_message", p.bindingMessage)
	set("user_code", p.userCode)
	if p.requestedExpiry > 0 {
		f.Set("requested_expiry", strconv.FormatInt(p.requestedExpiry, 10))
	}
	set("acr_values", p.acrValues)
	set("client_notification_token", p.notificationToken)
	set("qr_session_id", p.qrSessionID)
	for _, r := range p.resource {
		f.Add("resource", r)
	}
}

// requestObjectType is the JWS "typ" of CIBA request objects (RFC 9101 §10.8). Explicit typing
// keeps a request object from being accepted as a client assertion, and it has no "sub", which
// client assertions need (RFC 7523 §3).
const requestObjectType = "oauth-authz-req+jwt"

// requestObject returns the signed request object of CIBA Core §7.1.1 for p.
func (c *OpenIDConnectClient) requestObject(ctx context.Context, p *cibaParams) (string, error) {
	now := c.now().Unix()
	claims := struct {
		Iss                     string `json:"iss"`
		Aud                     string `json:"aud"`
		Iat                     int64  `json:"iat"`
		Nbf                     int64  `json:"nbf"`
		Exp                     int64  `json:"exp"`
		Jti                     string `json:"jti"`
		Scope                   string `json:"scope"`
		LoginHint               string `json:"login_hint,omitempty"`
		LoginHintToken          string `json:"login_hint_token,omitempty"`
		IDTokenHint             string `json:"id_token_hint,omitempty"`
		BindingMessage          string `json:"binding_message,omitempty"`
		UserCode                string `json:"user_code,omitempty"`
		RequestedExpiry         int64  `json:"requested_expiry,omitempty"`
		ACRValues               string `json:"acr_values,omitempty"`
		ClientNotificationToken string `json:"client_notification_token,omitempty"`
		Resource                any    `json:"resource,omitempty"`
		QRSessionID             string `json:"qr_session_id,omitempty"`
	}{
		Iss: c.clientID, Aud: c.issuer, Iat: now, Nbf: now, Exp: now + int64(c.assertionLifetime/time.Second),
		Jti: newJTI(), Scope: p.scope, BindingMessage: p.bindingMessage, UserCode: p.userCode,
		RequestedExpiry: p.requestedExpiry, ACRValues: p.acrValues, ClientNotificationToken: p.notificationToken,
		QRSessionID: p.qrSessionID,
	}
	switch p.hintName {
	case "login_hint":
		claims.LoginHint = p.hint
	case "login_hint_token":
		claims.LoginHintToken = p.hint
	default:
		claims.IDTokenHint = p.hint
	}
	switch len(p.resource) {
	case 0:
	case 1:
		claims.Resource = p.resource[0]
	default:
		claims.Resource = p.resource
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("onesoidc: CIBA request object: %w", err)
	}
	tok, err := signCompact(ctx, c.signer, jwsHeader(c.signer, requestObjectType), payload)
	if err != nil {
		return "", fmt.Errorf("onesoidc: CIBA request object: %w", err)
	}
	return tok, nil
}

// newNotificationToken returns a client_notification_token: 256 random bits, base64url (43
// characters; SECURITY-CASES CB-23).
func newNotificationToken() string {
	var b [notificationTokenSz]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// parseBackchannelAnswer decodes and checks a backchannel answer (CIBA Core §7.3;
// SECURITY-CASES CB-01, CB-02).
func (c *OpenIDConnectClient) parseBackchannelAnswer(resp *response, endpoint string) (*CIBAResponse, error) {
	bad := func(reason string, err error) error {
		return &HTTPError{Op: "backchannel authentication", URL: redactURL(endpoint), StatusCode: resp.status,
			ContentType: resp.header.Get("Content-Type"), Reason: reason, Err: err}
	}
	var a struct {
		AuthReqID *string  `json:"auth_req_id"`
		ExpiresIn *float64 `json:"expires_in"`
		Interval  *float64 `json:"interval"`
	}
	if err := json.Unmarshal(resp.body, &a); err != nil {
		return nil, bad("invalid backchannel answer", err)
	}
	switch {
	case a.AuthReqID == nil || *a.AuthReqID == "":
		return nil, bad("backchannel answer without auth_req_id", nil)
	case checkAuthReqID(*a.AuthReqID) != nil:
		return nil, bad("backchannel answer with a malformed auth_req_id", nil)
	case a.ExpiresIn == nil:
		return nil, bad("backchannel answer without expires_in", nil)
	case !(*a.ExpiresIn >= 1 && *a.ExpiresIn <= maxCIBAExpiresIn.Seconds()):
		return nil, bad("backchannel answer with an out-of-range expires_in", nil)
	case a.Interval != nil && !(*a.Interval >= 0 && *a.Interval <= maxCIBAInterval.Seconds()):
		return nil, bad("backchannel answer with an out-of-range interval", nil)
	}
	out := &CIBAResponse{
		AuthReqID:  *a.AuthReqID,
		ExpiresIn:  seconds(*a.ExpiresIn),
		Interval:   DefaultCIBAInterval,
		ReceivedAt: c.now(),
	}
	if a.Interval != nil && *a.Interval > 0 {
		out.Interval = seconds(*a.Interval)
	}
	return out, nil
}

func seconds(f float64) time.Duration { return time.Duration(math.Round(f * float64(time.Second))) }

// checkAuthReqID requires 1 to 1024 visible ASCII characters.
func checkAuthReqID(id string) error {
	if id == "" || len(id) > maxAuthReqIDLength {
		return &RequestError{Field: "auth_req_id", Reason: "must be 1 to 1024 characters"}
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x21 || c > 0x7e {
			return &RequestError{Field: "auth_req_id", Reason: "holds a character outside visible ASCII"}
		}
	}
	return nil
}

// CheckCIBAStatus polls the token endpoint once for authReqID (CIBA Core §10.1): grant_type
// urn:openid:params:grant-type:ciba, authenticated with a fresh client assertion. While the user
// has not decided, the error matches ErrAuthorizationPending or ErrSlowDown; the end of the
// request matches ErrAccessDenied, ErrExpiredToken, ErrTransactionFailed or ErrInvalidGrant
// (*OAuthError, CIBA Core §11). On success it returns the tokens; the ID token must name this
// client's issuer and client id, and its urn:openid:params:jwt:claim:auth_req_id claim, when
// present, must equal authReqID (§10.1.1), else the tokens are dropped and a *CIBATokenError is
// returned.
//
// An auth_req_id that already ended in this client (redeemed, denied, expired ...) is never sent
// again: the answer is a *CIBAFinishedError at once. A request started by MakeCIBARequest that
// passed its expiry on the local clock gives a *CIBAExpiredError without a request. Callers that
// poll in a loop must respect the interval; WaitForCIBA does.
func (c *OpenIDConnectClient) CheckCIBAStatus(ctx context.Context, authReqID string) (*CIBAResult, error) {
	if err := checkAuthReqID(authReqID); err != nil {
		return nil, err
	}
	scope, err := c.ciba.before(authReqID, c.now())
	if err != nil {
		return nil, err
	}
	return c.pollCIBA(ctx, authReqID, scope)
}

// pollCIBA sends one poll and records how the request ended, if it did.
func (c *OpenIDConnectClient) pollCIBA(ctx context.Context, authReqID, scope string) (*CIBAResult, error) {
	form := url.Values{"grant_type": {cibaGrantType}, "auth_req_id": {authReqID}}
	resp, err := c.postAuthenticated(ctx, "CIBA token", c.meta.TokenEndpoint, form, false)
	if err != nil {
		var oe *OAuthError
		var he *HTTPError
		switch {
		case errors.Is(err, ErrSlowDown):
			c.ciba.slowDown(authReqID, c.now())
		case errors.Is(err, ErrAuthorizationPending):
		case errors.As(err, &oe) && !transientOAuthError(oe):
			c.ciba.finish(authReqID, err)
		case errors.As(err, &he) && he.StatusCode >= 200 && he.StatusCode < 300:
			c.ciba.finish(authReqID, err) // an answer the provider considers a success
		}
		return nil, err
	}
	// From here on the provider considers the auth_req_id redeemed (CB-15).
	tok, tr, err := c.parseTokenResponse("CIBA token", resp, scope)
	if err == nil {
		err = c.verifyCIBAIDToken(ctx, tr.IDToken, authReqID)
	}
	if err != nil {
		c.ciba.finish(authReqID, err)
		return nil, err
	}
	c.ciba.finish(authReqID, ErrCIBARedeemed)
	return &CIBAResult{Token: tok, IDToken: tr.IDToken, Scope: tr.Scope, AuthReqID: authReqID}, nil
}

// transientOAuthError reports OAuth errors that do not end a CIBA request: pending, slow_down,
// and the provider's own temporary trouble.
func transientOAuthError(oe *OAuthError) bool {
	switch oe.Code {
	case "authorization_pending", "slow_down", "temporarily_unavailable", "server_error":
		return true
	}
	return false
}

// verifyCIBAIDToken checks the ID token of a CIBA token response: present, iss equal to the
// issuer, aud containing the client id, and the auth_req_id claim, when present, equal to
// authReqID (CIBA Core §10.1.1; SECURITY-CASES CB-18). It reads the payload without verifying
// the signature and trusts it only to reject; full validation replaces it once token
// validation is available.
func (c *OpenIDConnectClient) verifyCIBAIDToken(_ context.Context, raw, authReqID string) error {
	if raw == "" {
		return &CIBATokenError{Reason: "no id_token (CIBA Core §10.1.1)"}
	}
	if len(raw) > maxTokenBody {
		return &CIBATokenError{Reason: "id_token too large"}
	}
	var claims struct {
		Iss       string   `json:"iss"`
		Aud       Audience `json:"aud"`
		AuthReqID *string  `json:"urn:openid:params:jwt:claim:auth_req_id"`
	}
	if err := decodeJWTPayload(raw, &claims); err != nil {
		return &CIBATokenError{Reason: "malformed id_token", Err: err}
	}
	switch {
	case claims.Iss != c.issuer:
		return &CIBATokenError{Reason: "id_token from another issuer"}
	case !claims.Aud.Contains(c.clientID):
		return &CIBATokenError{Reason: "id_token for another audience"}
	case claims.AuthReqID != nil && *claims.AuthReqID != authReqID:
		return &CIBATokenError{Reason: "id_token for another auth_req_id"}
	}
	return nil
}

// CIBAProgress describes the state of WaitForCIBA before each wait, for a progress display.
type CIBAProgress struct {
	// Attempt is the number of the next poll (1 for the first).
	Attempt int
	// NextPoll is when the next poll is due (unless a ping comes first).
	NextPoll time.Time
	// Expiry is when the request expires.
	Expiry time.Time
	// LastErr is the error of the previous poll (ErrAuthorizationPending, ErrSlowDown or a
	// transport error), or nil before the first.
	LastErr error
}

// CIBAWaitOption configures WaitForCIBA.
type CIBAWaitOption func(*cibaWait)

type cibaWait struct {
	progress    func(CIBAProgress)
	maxFailures int
}

// WithCIBAProgress calls f before every wait of WaitForCIBA, on the waiting goroutine: f must
// return quickly. Default: none.
func WithCIBAProgress(f func(CIBAProgress)) CIBAWaitOption {
	return func(w *cibaWait) { w.progress = f }
}

// WithCIBAMaxFailures sets how many consecutive transport failures (no answer, 5xx, 429)
// WaitForCIBA tolerates before it returns the last one (default DefaultCIBAMaxFailures, 5).
// Values below 1 are ignored.
func WithCIBAMaxFailures(n int) CIBAWaitOption {
	return func(w *cibaWait) {
		if n >= 1 {
			w.maxFailures = n
		}
	}
}

// WaitForCIBA polls the token endpoint for resp until the user decides, the request expires or
// ctx ends (CIBA Core §7.3, §10.1, §11), and returns the tokens as CheckCIBAStatus does.
//
// The first poll is sent Interval after resp.ReceivedAt, later polls Interval after the previous
// answer; every slow_down adds CIBASlowDownStep (5 s) to the interval for all later polls. A
// transport failure, a 5xx or a 429 doubles the wait (at most 1 minute, at least the server's
// Retry-After) and counts towards WithCIBAMaxFailures. At the request's expiry the wait ends
// without another poll with a *CIBAExpiredError (errors.Is(err, ErrExpiredToken)). Any other
// error answer ends the wait at once. When ctx ends, during a wait or a poll, ctx.Err() is
// returned at once. In ping mode a notification received by CIBANotificationHandler triggers a
// poll at once, whatever the interval.
//
// Each auth_req_id may have one waiter at a time; a second concurrent WaitForCIBA for the same
// auth_req_id fails with a *RequestError.
func (c *OpenIDConnectClient) WaitForCIBA(ctx context.Context, resp *CIBAResponse, opts ...CIBAWaitOption) (*CIBAResult, error) {
	if resp == nil {
		return nil, &RequestError{Field: "auth_req_id", Reason: "nil *CIBAResponse"}
	}
	if err := checkAuthReqID(resp.AuthReqID); err != nil {
		return nil, err
	}
	if resp.ExpiresIn <= 0 || resp.ReceivedAt.IsZero() {
		return nil, &RequestError{Field: "expires_in", Reason: "the response has no expires_in or no ReceivedAt"}
	}
	w := cibaWait{maxFailures: DefaultCIBAMaxFailures}
	for _, o := range opts {
		if o != nil {
			o(&w)
		}
	}
	id := resp.AuthReqID
	p, err := c.ciba.startWait(resp)
	if err != nil {
		return nil, err
	}
	defer c.ciba.endWait(id, p)

	interval := resp.Interval
	if interval <= 0 {
		interval = DefaultCIBAInterval
	}
	deadline := resp.Expiry()
	next := resp.ReceivedAt.Add(interval)
	var lastErr error
	failures := 0
	for attempt := 1; ; attempt++ {
		if w.progress != nil {
			w.progress(CIBAProgress{Attempt: attempt, NextPoll: next, Expiry: deadline, LastErr: lastErr})
		}
		at := next
		if deadline.Before(at) {
			at = deadline
		}
		if err := waitCIBA(ctx, c.now, at, p.wake); err != nil {
			return nil, err
		}
		now := c.now()
		if !now.Before(deadline) {
			err := &CIBAExpiredError{Expiry: deadline}
			c.ciba.finish(id, err)
			return nil, err
		}
		res, err := c.pollCIBA(ctx, id, resp.Scope)
		if err == nil {
			return res, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		lastErr = err
		now = c.now()
		var he *HTTPError
		var oe *OAuthError
		switch {
		case errors.Is(err, ErrAuthorizationPending):
			failures = 0
			next = now.Add(interval)
		case errors.Is(err, ErrSlowDown):
			failures = 0
			interval += CIBASlowDownStep
			next = now.Add(interval)
		case (errors.As(err, &he) && he.Temporary()) || (errors.As(err, &oe) && transientOAuthError(oe)):
			failures++
			if failures >= w.maxFailures {
				return nil, fmt.Errorf("onesoidc: CIBA wait: %d consecutive failures: %w", failures, err)
			}
			wait := interval
			for range failures {
				wait = min(2*wait, maxCIBABackoff) // no shift: it would overflow after many failures
			}
			if he != nil && he.RetryAfter > wait {
				wait = min(he.RetryAfter, maxCIBARetryAfter)
			}
			next = now.Add(wait)
			c.logger.WarnContext(ctx, "onesoidc: CIBA poll failed, backing off", "failures", failures, "wait", wait, "error", err)
		default:
			return nil, err
		}
	}
}

// waitCIBA waits until at, a ping on wake, or the end of ctx.
func waitCIBA(ctx context.Context, now func() time.Time, at time.Time, wake <-chan struct{}) error {
	t := time.NewTimer(at.Sub(now()))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-wake:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// cibaState holds a client's CIBA requests: the pending ones by auth_req_id (for ping
// notifications, the status handler and the requested scope), and the last ended ones, which are
// never sent again. Both are bounded.
type cibaState struct {
	mu         sync.Mutex
	pending    map[string]*cibaPending
	maxPending int // 0: defaultMaxPending
	finished   map[string]error
	ring       []string // finished ids, oldest first once full
	ringNext   int
}

type cibaPending struct {
	scope       string
	expiry      time.Time
	interval    time.Duration
	nextPoll    time.Time     // earliest poll the status handler forwards
	notifyToken string        // ping mode only; never logged
	wake        chan struct{} // capacity 1: a ping's wake-up
	waiting     bool
	pinged      bool
}

// reserve makes room for one more pending request: expired entries are dropped; when the
// registry is still full, the request is refused before it is sent.
func (s *cibaState) reserve(now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	limit := s.maxPending
	if limit == 0 {
		limit = defaultMaxPending
	}
	if len(s.pending) < limit {
		return nil
	}
	for id, p := range s.pending {
		if !now.Before(p.expiry) && !p.waiting {
			delete(s.pending, id)
		}
	}
	if len(s.pending) >= limit {
		return &RequestError{Field: "auth_req_id", Reason: fmt.Sprintf("%d CIBA requests are pending; refusing another", len(s.pending))}
	}
	return nil
}

func (s *cibaState) add(r *CIBAResponse, notifyToken string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == nil {
		s.pending = map[string]*cibaPending{}
	}
	s.pending[r.AuthReqID] = &cibaPending{scope: r.Scope, expiry: r.Expiry(), interval: r.Interval,
		nextPoll: r.ReceivedAt.Add(r.Interval), notifyToken: notifyToken, wake: make(chan struct{}, 1)}
}

// before checks an auth_req_id before a poll and returns its requested scope.
func (s *cibaState) before(id string, now time.Time) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err, ok := s.finished[id]; ok {
		return "", &CIBAFinishedError{Err: err}
	}
	p := s.pending[id]
	if p == nil {
		return "", nil
	}
	if !now.Before(p.expiry) {
		err := &CIBAExpiredError{Expiry: p.expiry}
		s.finishLocked(id, err)
		return "", err
	}
	return p.scope, nil
}

// slowDown records a slow_down answer for the status handler's pacing.
func (s *cibaState) slowDown(id string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.pending[id]; p != nil {
		p.interval += CIBASlowDownStep
		p.nextPoll = now.Add(p.interval)
	}
}

// finish records how a request ended and drops it from the pending requests.
func (s *cibaState) finish(id string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finishLocked(id, err)
}

func (s *cibaState) finishLocked(id string, err error) {
	delete(s.pending, id)
	if s.finished == nil {
		s.finished = map[string]error{}
		s.ring = make([]string, 0, maxFinishedCIBA)
	}
	if _, ok := s.finished[id]; ok {
		return
	}
	if len(s.ring) < maxFinishedCIBA {
		s.ring = append(s.ring, id)
	} else {
		delete(s.finished, s.ring[s.ringNext])
		s.ring[s.ringNext] = id
		s.ringNext = (s.ringNext + 1) % maxFinishedCIBA
	}
	s.finished[id] = err
}

// startWait marks the request of r as waited for, registering it when this client did not start
// it (then pings for it are refused).
func (s *cibaState) startWait(r *CIBAResponse) (*cibaPending, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err, ok := s.finished[r.AuthReqID]; ok {
		return nil, &CIBAFinishedError{Err: err}
	}
	p := s.pending[r.AuthReqID]
	if p == nil {
		if s.pending == nil {
			s.pending = map[string]*cibaPending{}
		}
		p = &cibaPending{scope: r.Scope, expiry: r.Expiry(), interval: r.Interval, wake: make(chan struct{}, 1)}
		s.pending[r.AuthReqID] = p
	}
	if p.waiting {
		return nil, &RequestError{Field: "auth_req_id", Reason: "another WaitForCIBA is waiting for this request"}
	}
	p.waiting = true
	return p, nil
}

// endWait drops a request whose wait ended without it being finished (ctx ended, transport
// failures): a later ping or status check for it is then refused or sent as for an unknown id.
func (s *cibaState) endWait(id string, p *cibaPending) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.waiting = false
	if s.pending[id] == p {
		delete(s.pending, id)
	}
}

// pace decides whether the status handler may poll for id now: it may when the interval since
// its last poll has passed or a ping came; the slot is then taken. known is false for requests
// this client does not hold.
func (s *cibaState) pace(id string, now time.Time) (known, ok bool, interval time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pending[id]
	if p == nil {
		return false, false, 0
	}
	if now.Before(p.nextPoll) {
		return true, false, p.interval
	}
	p.nextPoll = now.Add(p.interval)
	return true, true, p.interval
}

// notify checks a ping's bearer token for id in constant time and wakes the waiter. It reports
// false for an unknown or expired request, one not in ping mode, and a wrong token.
func (s *cibaState) notify(id, token string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pending[id]
	want := dummyNotificationToken
	if p != nil && p.notifyToken != "" {
		want = p.notifyToken
	}
	match := subtle.ConstantTimeCompare([]byte(token), []byte(want)) == 1
	if p == nil || p.notifyToken == "" || !match || !now.Before(p.expiry) {
		return false
	}
	if p.pinged {
		return true // a duplicate: the provider notifies once, one poll answers it
	}
	p.pinged = true
	p.nextPoll = now
	p.wake <- struct{}{} // buffered, and only the first ping sends
	return true
}

// dummyNotificationToken is compared against when no token is expected, so that an unknown
// auth_req_id costs the same time as a wrong token.
var dummyNotificationToken = strings.Repeat("x", 43)

// maxNotificationBody caps the body of a ping notification (CIBA Core §10.2: {"auth_req_id"}).
const maxNotificationBody = 4 << 10

// CIBANotificationHandler returns the handler of the client notification endpoint for ping mode
// (CIBA Core §10.2): the provider POSTs {"auth_req_id": ...} with the request's
// client_notification_token as Bearer token, and the WaitForCIBA waiting for that request polls
// at once. Later pings for the same request are answered 204 and cause no further poll.
//
// It answers 204 to a valid notification (never a redirect); 401 with WWW-Authenticate to a
// missing or wrong token, and equally to an auth_req_id that is unknown, expired, finished or
// not in ping mode, so that the answer does not tell which requests exist; 405 to any method
// but POST; 415 to a body that is not JSON; 413 to a body over 4 KiB; 400 to malformed JSON. The
// token is compared in constant time and never logged. Only requests started by this client
// with WithCIBAPing are known.
func (c *OpenIDConnectClient) CIBANotificationHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		token, ok := bearerToken(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if !isJSON(r.Header.Get("Content-Type")) {
			http.Error(w, "JSON body required", http.StatusUnsupportedMediaType)
			return
		}
		var body struct {
			AuthReqID string `json:"auth_req_id"`
		}
		if status, msg := decodeJSONBody(w, r, maxNotificationBody, &body, false); status != 0 {
			http.Error(w, msg, status)
			return
		}
		if checkAuthReqID(body.AuthReqID) != nil || !c.ciba.notify(body.AuthReqID, token, c.now()) {
			c.logger.DebugContext(r.Context(), "onesoidc: CIBA notification refused")
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// bearerToken returns the token of an "Authorization: Bearer" header (RFC 6750 §2.1).
func bearerToken(r *http.Request) (string, bool) {
	v := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}
