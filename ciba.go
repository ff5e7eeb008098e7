package onesoidc

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ones-now/onesoidc/internal/jose"
)

// CIBA constants of CIBA Core 1.0 and the limits this package applies to provider answers.
const (
	// defaultBindingMessageMaxLength is the longest binding message the default check accepts, in
	// characters.
	defaultBindingMessageMaxLength = 64
	// BindingMessagePatternOIDCProvider is the binding message rule of stock oidc-provider: 1 to
	// 20 ASCII letters, digits and -._+/!?#. It is not the rule of the ONES provider, a customised
	// oidc-provider that accepts messages with spaces and over 20 characters (the ONES clients send
	// "Authorize login to Example.com?"), so it is never applied by default. Pass
	// regexp.MustCompile(BindingMessagePatternOIDCProvider) to WithCIBABindingMessagePattern when
	// talking to a stock oidc-provider, to reject other messages before they are sent.
	BindingMessagePatternOIDCProvider = `^[a-zA-Z0-9-._+/!?#]{1,20}$`

	cibaGrantType    = "urn:openid:params:grant-type:ciba"
	cibaAuthReqClaim = "urn:openid:params:jwt:claim:auth_req_id"

	maxCIBAExpiresIn    = 24 * time.Hour  // longer answers are refused as absurd
	maxCIBAInterval     = 5 * time.Minute // longer answers are refused as absurd
	maxRequestedExpiry  = 24 * time.Hour
	maxAuthReqIDLength  = 1024
	maxHintLength       = 16 << 10
	maxCIBAValueLength  = 256 // user code, QR session id, each scope, ACR value
	defaultMaxPending   = 10000
	maxFinishedCIBA     = 4096
	notificationTokenSz = 32 // random bytes of a client_notification_token (256 bits)
)

// HintKind selects which hint parameter of CIBA Core §7.1 carries a LoginHint's value.
// The zero value is no hint: a request must name one of HintLogin, HintLoginToken or
// HintIDToken.
type HintKind int

const (
	// HintLogin sends the value as login_hint: a user name, e-mail address or other
	// identifier the provider knows.
	HintLogin HintKind = iota + 1
	// HintLoginToken sends the value as login_hint_token: a token that names the
	// user, as the ONES clients do.
	HintLoginToken
	// HintIDToken sends the value as id_token_hint: an ID token previously issued to
	// this client for the user.
	HintIDToken
)

// String returns the request parameter name of the kind ("login_hint", "login_hint_token" or
// "id_token_hint"), or "no login hint" for the zero value.
func (k HintKind) String() string {
	switch k {
	case 0:
		return "no login hint"
	case HintLogin:
		return "login_hint"
	case HintLoginToken:
		return "login_hint_token"
	case HintIDToken:
		return "id_token_hint"
	}
	return "HintKind(" + strconv.Itoa(int(k)) + ")"
}

// LoginHint names the user of a CIBA request (CIBA Core §7.1): Kind picks which of the three
// hint parameters carries Value, so a request always has exactly one hint.
type LoginHint struct {
	// Kind is the hint parameter: HintLogin, HintLoginToken or HintIDToken. The zero value is
	// no hint, which MakeCIBARequest refuses.
	Kind HintKind
	// Value is the hint itself: a user name for HintLogin, a token for the other kinds.
	Value string
}

// CIBARequest is a backchannel authentication request (CIBA Core §7.1). MakeCIBARequest checks it
// before anything is sent and reports a *RequestError for the first problem found.
type CIBARequest struct {
	// Hint names the user (required).
	Hint LoginHint
	// Scope is the requested scope; it must include "openid". With cibaEncodingONES an empty
	// Scope sends "openid contact profile", as the ONES clients do.
	Scope []string
	// BindingMessage is shown on both the consumption device and the authentication device, so
	// that the user can tell this request from others. By default it may hold up to 64
	// printable characters, spaces included (no control characters, valid UTF-8), which fits
	// the ONES provider; WithCIBABindingMessagePattern sets a stricter rule, such as
	// BindingMessagePatternOIDCProvider for a stock oidc-provider.
	BindingMessage string
	// UserCode is a secret code known to the user (CIBA Core §7.1); the provider must announce
	// backchannel_user_code_parameter_supported.
	UserCode string
	// RequestedExpiry asks for a lifetime of the request (requested_expiry, rounded up to whole
	// seconds); 0 leaves it to the provider. It must not be negative nor over 24 hours.
	RequestedExpiry time.Duration
	// ACRValues are the requested authentication context class references, in order of
	// preference. With cibaEncodingONES empty ACRValues send the delivery mode, "poll" as the
	// ONES clients do (or "ping" with WithCIBAPing, by analogy: no ONES client in ping mode is
	// published).
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
	// Interval is the minimum time between polls (interval; 5 s when absent
	// or 0).
	Interval time.Duration
	// ReceivedAt is when the acknowledgement arrived.
	ReceivedAt time.Time
	// Scope is the requested scope, space separated: the scope of the tokens when the token
	// response does not name one.
	Scope string

	// notify holds the client_notification_token of a ping-mode request behind a pointer, so
	// that printing the response (fmt %+v) shows an address, never the secret.
	notify *notificationSecret
}

type notificationSecret struct{ token string }

// Expiry returns when the request expires: ReceivedAt + ExpiresIn.
func (r *CIBAResponse) Expiry() time.Time { return r.ReceivedAt.Add(r.ExpiresIn) }

// NotificationToken returns the client_notification_token sent with the request when the client
// is in ping mode (WithCIBAPing; CIBA Core §7.1), or "" in poll mode. The provider presents it
// as Bearer token when it notifies the client notification endpoint (§10.2). It is a secret:
// keep it on the server and never log it. CIBANotificationHandler checks it for requests of its
// own process; an application that serves the notification endpoint on several processes
// stores it, or better a hash of it, where every process can compare it in constant time.
func (r *CIBAResponse) NotificationToken() string {
	if r == nil || r.notify == nil {
		return ""
	}
	return r.notify.token
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

// cibaEncoding selects how MakeCIBARequest encodes the request parameters.
type cibaEncoding int

const (
	// cibaEncodingForm sends the parameters as form parameters (CIBA Core §7.1), for stock
	// providers.
	cibaEncodingForm cibaEncoding = iota
	// cibaEncodingRequestObject sends them in a signed request object of the standard shape, the
	// form parameter "request" (CIBA Core §7.1.1): a JWT signed by the device key with header
	// typ "oauth-authz-req+jwt" and claims iss (client id), aud (the issuer), iat, nbf, exp (iat
	// plus the assertion lifetime) and a fresh jti besides the parameters, as stock
	// oidc-provider demands. The ONES provider wants cibaEncodingONES instead.
	cibaEncodingRequestObject
	// cibaEncodingONES sends what the ONES clients send (the JavaScript backend modules and the
	// Python px-user-identity-service): POST to the backchannel endpoint of the discovery
	// document, or {issuer}/bc-authorize, the ONES route, when it lists none, with exactly the form
	// parameters request, client_id, client_assertion_type and client_assertion. The request
	// object is a JWT signed by the device key with the header of client assertions (alg, typ
	// JWT, and the registered kid when there is one) and the claims, in this order:
	// login_hint_token (the user name; a LoginHint of kind login_hint travels here too, as the
	// ONES clients send it; id_token_hint stays id_token_hint), scope ("openid contact profile" when
	// CIBARequest.Scope is empty), acr_values ("poll" when CIBARequest.ACRValues is empty;
	// "ping" in ping mode), binding_message, the other parameters when set (user_code,
	// requested_expiry, client_notification_token, resource, qr_session_id), iss (the client
	// id), aud (the backchannel endpoint URL) and exp (now plus the assertion lifetime, 300 s by
	// default); no iat, nbf, jti or sub. Stock oidc-provider refuses it: its request objects need aud = the
	// issuer (cibaEncodingRequestObject). It is the default.
	cibaEncodingONES
)

// defaultONESScope is the scope cibaEncodingONES requests when CIBARequest.Scope is empty: what
// the ONES clients request.
var defaultONESScope = []string{"openid", "contact", "profile"}

// onesBackchannelPath is the ONES provider's CIBA route below the issuer.
const onesBackchannelPath = "/bc-authorize"

// cibaConfig holds the CIBA options of a client.
type cibaConfig struct {
	encoding       cibaEncoding
	ping           bool
	bindingPattern *regexp.Regexp
}

// WithStandardCIBA makes MakeCIBARequest send the request parameters as form parameters of the
// backchannel authentication endpoint (CIBA Core §7.1), for stock providers. By default a client
// sends what the ONES clients send: a request object signed by the device key, with the claims
// login_hint_token, scope, acr_values, binding_message, iss, aud (the backchannel endpoint) and
// exp, POSTed to the discovered backchannel endpoint or {issuer}/bc-authorize.
func WithStandardCIBA() Option {
	return func(o *options) { o.ciba.encoding = cibaEncodingForm }
}

// WithCIBARequestObject makes MakeCIBARequest send the request parameters in a signed request
// object of the standard shape, the form parameter "request" (CIBA Core §7.1.1): a JWT signed by
// the device key with header typ "oauth-authz-req+jwt" and the claims iss (the client id), aud
// (the issuer), iat, nbf, exp (iat plus the assertion lifetime) and a fresh jti besides the
// parameters, as stock oidc-provider demands. The ONES provider wants the default instead (see
// WithStandardCIBA).
func WithCIBARequestObject() Option {
	return func(o *options) { o.ciba.encoding = cibaEncodingRequestObject }
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
// 64 printable characters) with re, which the whole message must
// match. regexp.MustCompile(BindingMessagePatternOIDCProvider) gives the rule of stock
// oidc-provider, so that a bad message fails before it is sent; the ONES provider accepts more.
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
// assertion, in the ONES shape unless WithStandardCIBA or WithCIBARequestObject says otherwise, and returns the provider's acknowledgement
// (§7.3). Poll it with CheckCIBAStatus or wait with WaitForCIBA.
//
// Before anything is sent, req is checked (a *RequestError), and so is the provider metadata: a
// missing backchannel endpoint, a delivery mode or request-object algorithm the provider does not
// list, a user code the provider does not support, or grant_types_supported without the CIBA
// grant are a *ConfigError. The answer must carry auth_req_id (visible ASCII, 22
// to 1024 characters, and not one of a request this client already holds, pending or ended: an
// *HTTPError) and expires_in (1 s to 24 h); interval, when present, must be at most 5 minutes.
// Error answers (§13) come back as *OAuthError: errors.Is(err, &OAuthError{Code: "unknown_user_id"}) and so on.
func (c *OpenIDConnectClient) MakeCIBARequest(ctx context.Context, req CIBARequest) (*CIBAResponse, error) {
	if err := c.cibaPreflight(&req); err != nil {
		return nil, err
	}
	ones := c.cibaCfg.encoding == cibaEncodingONES
	if ones && len(req.Scope) == 0 {
		req.Scope = defaultONESScope
	}
	if ones && len(req.ACRValues) == 0 {
		// The ONES clients (poll mode) send the delivery mode as acr_values; ping mode follows suit.
		req.ACRValues = []string{"poll"}
		if c.cibaCfg.ping {
			req.ACRValues = []string{"ping"}
		}
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
	endpoint := c.backchannelEndpoint()
	form := url.Values{}
	switch c.cibaCfg.encoding {
	case cibaEncodingRequestObject:
		ro, err := c.requestObject(ctx, params)
		if err != nil {
			return nil, err
		}
		form.Set("request", ro)
	case cibaEncodingONES:
		ro, err := c.onesRequestObject(ctx, params, endpoint)
		if err != nil {
			return nil, err
		}
		form.Set("request", ro)
	default:
		params.addTo(form)
	}
	resp, err := c.postAuthenticated(ctx, "backchannel authentication", endpoint, form, false)
	if err != nil {
		return nil, err
	}
	out, err := c.parseBackchannelAnswer(resp)
	if err != nil {
		return nil, err
	}
	out.Scope = params.scope
	if notifyToken != "" {
		out.notify = &notificationSecret{notifyToken}
	}
	if !c.ciba.addNew(out, notifyToken) {
		// One auth_req_id for two requests would poll one login for two users (CIBA Core §7.3:
		// it identifies one authentication request).
		return nil, resp.invalid("backchannel answer with the auth_req_id of an earlier request", nil)
	}
	return out, nil
}

// cibaPreflight checks the provider metadata against the client's CIBA options and req
// (CIBA Core §4).
func (c *OpenIDConnectClient) cibaPreflight(req *CIBARequest) error {
	m := c.meta
	if m.BackchannelAuthenticationEndpoint == "" && c.cibaCfg.encoding != cibaEncodingONES {
		return &ConfigError{Field: "backchannel_authentication_endpoint", Reason: "the provider metadata has no backchannel authentication endpoint (CIBA Core §4)", Err: ErrNotSupportedByProvider}
	}
	mode := "poll"
	if c.cibaCfg.ping {
		mode = "ping"
	}
	if len(m.BackchannelTokenDeliveryModesSupported) > 0 && !slices.Contains(m.BackchannelTokenDeliveryModesSupported, mode) {
		return &ConfigError{Field: "backchannel_token_delivery_modes_supported", Reason: fmt.Sprintf("the provider does not support the %s delivery mode", mode), Err: ErrNotSupportedByProvider}
	}
	if len(m.GrantTypesSupported) > 0 && !slices.Contains(m.GrantTypesSupported, cibaGrantType) {
		return &ConfigError{Field: "grant_types_supported", Reason: "the provider does not list the CIBA grant type " + cibaGrantType, Err: ErrNotSupportedByProvider}
	}
	if req.UserCode != "" && !m.BackchannelUserCodeParameterSupported {
		return &ConfigError{Field: "backchannel_user_code_parameter_supported", Reason: "the provider does not support user_code", Err: ErrNotSupportedByProvider}
	}
	if algs := m.BackchannelAuthenticationRequestSigningAlgValuesSupported; c.cibaCfg.encoding != cibaEncodingForm &&
		len(algs) > 0 && !slices.Contains(algs, c.signer.Algorithm()) {
		return &ConfigError{Field: "backchannel_authentication_request_signing_alg_values_supported",
			Reason: fmt.Sprintf("the provider does not accept request objects signed with %s", c.signer.Algorithm()), Err: ErrNotSupportedByProvider}
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

// params checks r and returns its parameters.
func (r *CIBARequest) params(bindingPattern *regexp.Regexp) (*cibaParams, error) {
	p := &cibaParams{}
	switch r.Hint.Kind {
	case HintLogin:
		if err := checkText("login_hint", r.Hint.Value, maxHintLength, true); err != nil {
			return nil, err
		}
	case HintLoginToken, HintIDToken:
		if err := checkToken(r.Hint.Kind.String(), r.Hint.Value, maxHintLength); err != nil {
			return nil, err
		}
	case 0:
		return nil, &RequestError{Field: "hint", Reason: "no login hint: set Hint.Kind to HintLogin, HintLoginToken or HintIDToken (CIBA Core §7.1)"}
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
		} else if err := checkText("binding_message", r.BindingMessage, defaultBindingMessageMaxLength, true); err != nil {
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
		return "", wrapf("onesoidc: CIBA request object: %w", err)
	}
	tok, err := signCompact(ctx, c.signer, encodeJWSHeader(c.signer, requestObjectType), payload)
	if err != nil {
		return "", wrapf("onesoidc: CIBA request object: %w", err)
	}
	return tok, nil
}

// newNotificationToken returns a client_notification_token: 256 random bits, base64url (43
// characters).
func newNotificationToken() string {
	var b [notificationTokenSz]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return jose.EncodeBase64URL(b[:])
}

// parseBackchannelAnswer decodes and checks a backchannel answer (CIBA Core §7.3).
func (c *OpenIDConnectClient) parseBackchannelAnswer(resp *response) (*CIBAResponse, error) {
	bad := resp.invalid
	var a struct {
		AuthReqID *string  `json:"auth_req_id"`
		ExpiresIn *float64 `json:"expires_in"`
		Interval  *float64 `json:"interval"`
	}
	if err := resp.decode("invalid backchannel answer", &a); err != nil {
		return nil, err
	}
	if a.AuthReqID == nil || *a.AuthReqID == "" {
		return nil, bad("backchannel answer without auth_req_id", nil)
	}
	if err := checkAuthReqID(*a.AuthReqID); err != nil {
		return nil, bad("backchannel answer with a malformed auth_req_id: "+err.(*RequestError).Reason, nil)
	}
	switch {
	case a.ExpiresIn == nil:
		return nil, bad("backchannel answer without expires_in", nil)
	case !(*a.ExpiresIn >= 1 && *a.ExpiresIn <= maxCIBAExpiresIn.Seconds()):
		return nil, bad("backchannel answer with an out-of-range expires_in", nil)
	case a.Interval != nil && *a.Interval != 0 && !(*a.Interval >= 1 && *a.Interval <= maxCIBAInterval.Seconds()):
		return nil, bad("backchannel answer with an out-of-range interval", nil)
	}
	out := &CIBAResponse{
		AuthReqID:  *a.AuthReqID,
		ExpiresIn:  seconds(*a.ExpiresIn),
		Interval:   defaultPollInterval,
		ReceivedAt: c.now(),
	}
	if a.Interval != nil && *a.Interval > 0 {
		out.Interval = seconds(*a.Interval)
	}
	return out, nil
}

func seconds(f float64) time.Duration { return time.Duration(math.Round(f * float64(time.Second))) }

// minAuthReqIDLength is the shortest auth_req_id, and RFC 8628 device_code, this package
// accepts: 22 characters, the base64url encoding of 128 bits. CIBA Core §7.3 asks for at least
// 128 bits of entropy in an auth_req_id (and RFC 8628 §5.2 for device codes that cannot be
// guessed); an id shorter than 22 characters cannot carry that much in the base64url alphabet
// providers draw ids from, and so is refused as soon as the provider's answer arrives. A UUID
// (36 characters) or 32 hexadecimal digits pass.
const minAuthReqIDLength = 22

// checkAuthReqID requires 22 to 1024 visible ASCII characters (a polling
// handle: auth_req_id or device_code).
func checkAuthReqID(id string) error {
	return checkPollingHandle("auth_req_id", id)
}

// checkPollingHandle checks an auth_req_id or device_code named field.
func checkPollingHandle(field, id string) error {
	switch {
	case id == "":
		return &RequestError{Field: field, Reason: "empty"}
	case len(id) < minAuthReqIDLength:
		return &RequestError{Field: field, Reason: fmt.Sprintf("%d characters, fewer than the %d that 128 bits of entropy need (CIBA Core §7.3)",
			len(id), minAuthReqIDLength)}
	case len(id) > maxAuthReqIDLength:
		return &RequestError{Field: field, Reason: fmt.Sprintf("more than %d characters", maxAuthReqIDLength)}
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x21 || c > 0x7e {
			return &RequestError{Field: field, Reason: "holds a character outside visible ASCII"}
		}
	}
	return nil
}

// backchannelEndpoint is the backchannel authentication endpoint of the metadata; with
// cibaEncodingONES and none listed, the ONES route {issuer}/bc-authorize.
func (c *OpenIDConnectClient) backchannelEndpoint() string {
	if e := c.meta.BackchannelAuthenticationEndpoint; e != "" || c.cibaCfg.encoding != cibaEncodingONES {
		return e
	}
	return c.issuer + onesBackchannelPath
}

// onesRequestObject returns the request object the ONES clients send (see cibaEncodingONES):
// the header of client assertions and the claims login_hint_token, scope, acr_values,
// binding_message, the optional parameters, iss, aud = endpoint and exp, in this order.
func (c *OpenIDConnectClient) onesRequestObject(ctx context.Context, p *cibaParams, endpoint string) (string, error) {
	hint := p.hintName
	if hint == "login_hint" {
		hint = "login_hint_token" // the ONES clients send the user name as login_hint_token
	}
	b := make([]byte, 0, 512)
	b = append(b, '{')
	add := func(name, value string) {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = jose.AppendJSONString(b, name)
		b = append(b, ':')
		b = jose.AppendJSONString(b, value)
	}
	add(hint, p.hint)
	add("scope", p.scope)
	add("acr_values", p.acrValues)
	if p.bindingMessage != "" {
		add("binding_message", p.bindingMessage)
	}
	if p.userCode != "" {
		add("user_code", p.userCode)
	}
	if p.requestedExpiry > 0 {
		b = append(b, `,"requested_expiry":`...)
		b = strconv.AppendInt(b, p.requestedExpiry, 10)
	}
	if p.notificationToken != "" {
		add("client_notification_token", p.notificationToken)
	}
	switch len(p.resource) {
	case 0:
	case 1:
		add("resource", p.resource[0])
	default:
		b = append(b, `,"resource":[`...)
		for i, r := range p.resource {
			if i > 0 {
				b = append(b, ',')
			}
			b = jose.AppendJSONString(b, r)
		}
		b = append(b, ']')
	}
	if p.qrSessionID != "" {
		add("qr_session_id", p.qrSessionID)
	}
	add("iss", c.clientID)
	add("aud", endpoint)
	b = append(b, `,"exp":`...)
	b = strconv.AppendInt(b, c.now().Add(c.assertionLifetime).Unix(), 10)
	b = append(b, '}')
	tok, err := signCompact(ctx, c.signer, c.assertionHeader, b)
	if err != nil {
		return "", wrapf("onesoidc: CIBA request object: %w", err)
	}
	return tok, nil
}
