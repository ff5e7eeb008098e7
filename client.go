package onesoidc

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Version is the version of this module, sent in the User-Agent header as "onesoidc/<Version>".
const Version = "0.1.0"

// Body caps, applied after decompression.
const (
	maxDocumentBody = 1 << 20  // discovery and JWKS
	maxTokenBody    = 64 << 10 // token, backchannel, introspection responses
	maxErrorBody    = 8 << 10  // error responses
)

// Defaults of the client options.
const (
	defaultRequestTimeout = 10 * time.Second
	defaultLeeway         = 60 * time.Second
	maxLeeway             = 5 * time.Minute
)

// OpenIDConnectClient is a client of the ONES identity provider for one registered device: it
// holds the device configuration, its signing key, the provider metadata and the HTTP client, and
// performs every flow of this package. It is safe for concurrent use by multiple goroutines.
//
// Build it with NewClient (which discovers the provider) or NewClientFromMetadata (no network).
type OpenIDConnectClient struct {
	clientID string
	issuer   string
	meta     *ProviderMetadata
	signer   Signer
	http     *httpCore
	logger   *slog.Logger
	leeway   time.Duration
	now      func() time.Time // time.Now; tests fake it with testing/synctest

	audience          assertionAudience
	assertionLifetime time.Duration
	assertionHeader   string // base64url JWS header of client assertions

	tokenScope    string
	tokenResource string
	tokenMargin   time.Duration
	deviceToken   deviceTokenCache

	cibaCfg cibaConfig // CIBA options (ciba.go)
	ciba    *cibaState // pending and finished CIBA requests (cibanotify.go); a pointer, so that no auth_req_id or notification token is part of the client's value

	host       string     // device.yml host without a trailing "/": the base of the ONES QR endpoints
	deviceID   string     // device.yml id, encoded in ONES QR codes
	qrProtocol qrProtocol // WithDeviceAuthorizationQR (qr.go)
	qr         *cibaState // pending and finished ONES QR sessions (qrones.go); a pointer, as ciba

	apps applicationsCache // the ONES application list (applications.go)

	val *validator // validate.go
}

// Option configures this package's constructors and waits: NewClient, NewClientFromMetadata,
// NewClientFromDevice and Discover (the client options), NewDeviceKey, ParsePrivateKey and
// LoadPrivateKey (the key options WithRSAPSS, WithKeyID, WithRegisteredJWK,
// WithInsecureKeyFilePermissions, and WithLogger), NewRemoteSigner (the WithSigner... options,
// and WithHTTPClient, WithLogger, WithUserAgent, WithRequestTimeout), WaitForCIBA and
// WaitForQRLogin (WithProgress, WithMaxFailures). Each option's documentation says what it
// concerns; elsewhere it has no effect. NewClientFromDevice passes its options to every step.
type Option func(*options)

type options struct {
	httpClient *http.Client
	logger     *slog.Logger
	userAgent  string
	timeout    time.Duration
	leeway     time.Duration
	attempts   int
	validation validationOptions // validate.go
	errs       []error

	audience          assertionAudience
	assertionLifetime time.Duration
	tokenScope        string
	tokenResource     string
	tokenMargin       time.Duration
	ciba              cibaConfig
	qrProtocol        qrProtocol

	applicationsURL    string
	applicationsMaxAge time.Duration

	poll   pollOptions                     // WaitForCIBA, WaitForQRLogin (poll.go)
	key    keyOptions                      // NewDeviceKey, ParsePrivateKey, LoadPrivateKey (keys.go)
	signer []func(*RemoteSigner, *options) // NewRemoteSigner (signer.go)
}

func (o *options) fail(field, format string, args ...any) {
	o.errs = append(o.errs, &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

// WithHTTPClient sets the HTTP client for every request (default: a client with
// a 10 s timeout whose idle connections close after 4 s, before the servers' usual 5 s
// keep-alive timeout that would otherwise race with 5 s polling). A transport that skips TLS certificate verification or allows TLS
// versions below 1.2 is refused (RFC 9325). The client is copied so that this package's redirect policy applies
// without changing yours: POSTs never follow redirects, GETs follow them only on the same host
// without a downgrade to http.
func WithHTTPClient(hc *http.Client) Option {
	return func(o *options) {
		if hc == nil {
			o.fail("WithHTTPClient", "nil *http.Client")
			return
		}
		if t, ok := hc.Transport.(*http.Transport); ok && t.TLSClientConfig != nil {
			tc := t.TLSClientConfig
			if tc.InsecureSkipVerify {
				o.fail("WithHTTPClient", "TLS certificate verification is disabled (InsecureSkipVerify); trust the provider's CA with RootCAs instead")
				return
			}
			if tc.MinVersion != 0 && tc.MinVersion < tls.VersionTLS12 {
				o.fail("WithHTTPClient", "TLS MinVersion below TLS 1.2")
				return
			}
		}
		o.httpClient = hc
	}
}

// WithLogger sets the logger for diagnostics (default: discard). Nothing logged ever contains a
// token, an assertion, a key or an Authorization header.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l == nil {
			o.fail("WithLogger", "nil *slog.Logger")
			return
		}
		o.logger = l
	}
}

// WithUserAgent sets the User-Agent header (default "onesoidc/<Version>").
func WithUserAgent(ua string) Option {
	return func(o *options) { o.userAgent = ua }
}

// WithRequestTimeout bounds each HTTP exchange, reading the body included (default
// 10 s). It must be positive.
func WithRequestTimeout(d time.Duration) Option {
	return func(o *options) {
		if d <= 0 {
			o.fail("WithRequestTimeout", "timeout must be positive, got %v", d)
			return
		}
		o.timeout = d
	}
}

// WithLeeway sets the one clock-skew tolerance applied to exp, nbf and iat (default
// 60 s; at most 5 minutes, as OpenID Connect Core §3.1.3.7 allows "a few minutes").
func WithLeeway(d time.Duration) Option {
	return func(o *options) {
		if d < 0 || d > maxLeeway {
			o.fail("WithLeeway", "leeway must be between 0 and %v, got %v", maxLeeway, d)
			return
		}
		o.leeway = d
	}
}

// WithDiscoveryAttempts sets how many times discovery is tried when the provider is unreachable
// or answers 408, 429 or 5xx (default 4), with capped exponential backoff and jitter between
// attempts. Errors that retrying cannot fix (a bad document, a 404, a TLS failure) stop at once.
func WithDiscoveryAttempts(n int) Option {
	return func(o *options) {
		if n < 1 || n > 20 {
			o.fail("WithDiscoveryAttempts", "attempts must be between 1 and 20, got %d", n)
			return
		}
		o.attempts = n
	}
}

// WithAssertionAudienceIssuer puts the issuer identifier in the "aud" of client assertions
// (RFC 7523 §3 item 3 allows it; draft-ietf-oauth-rfc7523bis asks for it). By default "aud" is
// the token endpoint URL for every endpoint, what the ONES clients send and RFC 7523 §3 names.
func WithAssertionAudienceIssuer() Option {
	return func(o *options) { o.audience = audienceIssuer }
}

// WithAssertionAudienceEndpoint puts the URL of the endpoint being called in the "aud" of client
// assertions: the backchannel authentication endpoint for CIBA requests, the introspection
// endpoint for introspection, and so on (see WithAssertionAudienceIssuer for the default).
func WithAssertionAudienceEndpoint() Option {
	return func(o *options) { o.audience = audienceCalledEndpoint }
}

// WithAssertionLifetime sets exp - iat of client assertions and request objects (default
// 300 s as in the Rust crate; between 10 s and 1 hour).
func WithAssertionLifetime(d time.Duration) Option {
	return func(o *options) {
		if d < 10*time.Second || d > time.Hour {
			o.fail("WithAssertionLifetime", "lifetime must be between 10s and 1h, got %v", d)
			return
		}
		o.assertionLifetime = d
	}
}

// WithDeviceTokenScope sets the scope requested with device access tokens (RFC 6749 §4.4.2;
// default: none, the provider's default).
func WithDeviceTokenScope(scopes ...string) Option {
	return func(o *options) { o.tokenScope = strings.Join(scopes, " ") }
}

// WithDeviceTokenResource sets the resource indicator requested with device access tokens
// (RFC 8707 §2; default: none).
func WithDeviceTokenResource(resource string) Option {
	return func(o *options) { o.tokenResource = resource }
}

// WithTokenRefreshMargin sets how long before expiry a cached device access token is renewed
// (default 100 s as in the Rust crate). The margin is bounded to half
// of each token's lifetime, so that a 60 s token is not renewed on every call.
func WithTokenRefreshMargin(d time.Duration) Option {
	return func(o *options) {
		if d < 0 {
			o.fail("WithTokenRefreshMargin", "margin must not be negative, got %v", d)
			return
		}
		o.tokenMargin = d
	}
}

func buildOptions(opts []Option) (*options, error) {
	o := &options{
		userAgent: "onesoidc/" + Version,
		timeout:   defaultRequestTimeout,
		leeway:    defaultLeeway,
		attempts:  4,

		assertionLifetime: defaultAssertionLifetime,
		tokenMargin:       defaultTokenRefreshMargin,

		applicationsMaxAge: defaultApplicationsMaxAge,
		ciba:               cibaConfig{encoding: cibaEncodingONES}, // a device.yml client talks ONES
	}
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	if len(o.errs) > 0 {
		return nil, errors.Join(o.errs...)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// NewClient discovers the provider at cfg.IssuerURL() (OpenID Connect Discovery 1.0 §4) and
// returns a client for the device cfg describes, signing with signer. Like every client made
// from a device configuration it talks ONES by default: CIBA requests take the ONES shape (see
// WithStandardCIBA and WithCIBARequestObject for stock providers), and opaque access tokens are validated by
// introspection. NewClientFromDevice also loads the device files.
func NewClient(ctx context.Context, cfg *DeviceConfig, signer Signer, opts ...Option) (*OpenIDConnectClient, error) {
	if err := checkClientInputs(cfg, signer); err != nil {
		return nil, err
	}
	meta, err := Discover(ctx, cfg.IssuerURL(), opts...)
	if err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) && ce.Field == "issuer" && ce.File == "" {
			// The caller never wrote the issuer: say where it comes from.
			ce.File = cfg.path
			ce.Reason += `; the issuer is the device config's host + "/oidc"`
		}
		return nil, err
	}
	return NewClientFromMetadata(cfg, signer, meta, opts...)
}

// NewClientFromMetadata returns a client for known provider metadata without any network access.
// meta is validated as Discover validates a fetched document and must name cfg.IssuerURL() as
// its issuer. Its defaults are NewClient's: the ONES CIBA encoding.
func NewClientFromMetadata(cfg *DeviceConfig, signer Signer, meta *ProviderMetadata, opts ...Option) (*OpenIDConnectClient, error) {
	if err := checkClientInputs(cfg, signer); err != nil {
		return nil, err
	}
	if meta == nil {
		return nil, &ConfigError{Field: "metadata", Reason: "nil *ProviderMetadata"}
	}
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	issuer := cfg.IssuerURL()
	if err := meta.validate(issuer); err != nil {
		return nil, err
	}
	if err := meta.supportsPrivateKeyJWT(signer.Algorithm()); err != nil {
		return nil, err
	}
	m := meta.clone()
	c := &OpenIDConnectClient{
		clientID: cfg.ClientID,
		issuer:   issuer,
		meta:     m,
		signer:   signer,
		http:     newHTTPCore(o),
		logger:   o.logger,
		leeway:   o.leeway,
		now:      time.Now,

		audience:          o.audience,
		assertionLifetime: o.assertionLifetime,
		assertionHeader:   encodeJWSHeader(signer, "JWT"),
		tokenScope:        o.tokenScope,
		tokenResource:     o.tokenResource,
		tokenMargin:       o.tokenMargin,
		cibaCfg:           o.ciba,
		ciba:              &cibaState{},

		host:       strings.TrimSuffix(cfg.Host, "/"),
		deviceID:   cfg.ID,
		qrProtocol: o.qrProtocol,
		qr:         &cibaState{waiter: "WaitForQRLogin"},
		apps:       applicationsCache{url: o.applicationsURL, maxAge: o.applicationsMaxAge},
	}
	if err := c.initValidation(o); err != nil {
		return nil, err
	}
	return c, nil
}

func checkClientInputs(cfg *DeviceConfig, signer Signer) error {
	if cfg == nil {
		return &ConfigError{Field: "device config", Reason: "nil *DeviceConfig"}
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	if signer == nil {
		return &ConfigError{Field: "signer", Reason: "nil Signer"}
	}
	return cfg.checkKey(signer)
}

// ClientID returns the OAuth client id of the device.
func (c *OpenIDConnectClient) ClientID() string { return c.clientID }

// Metadata returns a copy of the provider metadata the client uses; its Issuer is the client's
// issuer identifier, DeviceConfig.IssuerURL().
func (c *OpenIDConnectClient) Metadata() ProviderMetadata { return *c.meta.clone() }

// httpCore performs every HTTP exchange of the package: limits, user agent, redirect policy,
// timeouts and error parsing live here and nowhere else.
type httpCore struct {
	client    *http.Client
	userAgent string
	timeout   time.Duration
	logger    *slog.Logger
}

func newHTTPCore(o *options) *httpCore {
	var hc http.Client
	if o.httpClient != nil {
		hc = *o.httpClient
	} else {
		hc.Timeout = o.timeout
		hc.Transport = defaultTransport()
	}
	hc.CheckRedirect = checkRedirect
	return &httpCore{client: &hc, userAgent: o.userAgent, timeout: o.timeout, logger: o.logger}
}

// defaultIdleConnTimeout closes idle connections before the 5 s keep-alive timeout common on
// servers (Node's default, for one): a CIBA or device-code poll every 5 s on a connection the
// server is just closing fails with a reset that cannot be retried, since a token POST carries
// a single-use assertion.
const defaultIdleConnTimeout = 4 * time.Second

// defaultTransport is http.DefaultTransport's configuration with defaultIdleConnTimeout.
func defaultTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.IdleConnTimeout = defaultIdleConnTimeout
	return t
}

// checkRedirect follows a redirect only for GET and HEAD without an Authorization header, at
// most three times, on the same host and without a downgrade from https to http (RFC 6750 §5.3):
// a bearer token goes to the URL it was meant for and nowhere else. The redirect
// response is otherwise returned as is, and exchange reports it.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if first := via[0]; (first.Method != http.MethodGet && first.Method != http.MethodHead) || first.Header.Get("Authorization") != "" {
		return http.ErrUseLastResponse
	}
	return sameOriginRedirect(req, via)
}

// sameOriginRedirect follows at most three redirects on the same host, without a downgrade from
// https to http.
func sameOriginRedirect(req *http.Request, via []*http.Request) error {
	first := via[0]
	if len(via) > 3 || req.URL.Host != first.URL.Host ||
		(first.URL.Scheme == "https" && req.URL.Scheme != "https") {
		return http.ErrUseLastResponse
	}
	return nil
}

// request describes one exchange.
type request struct {
	op     string     // for errors and logs: "discovery", "token" ...
	method string     // GET or POST
	url    string     // endpoint
	form   url.Values // POST body, form-encoded
	json   []byte     // POST body, JSON (instead of form)
	noBody bool       // a 2xx answer needs no JSON body (RFC 7009 revocation)
	limit  int64      // cap of a successful body
	header http.Header
}

// response is a successful (2xx, JSON) answer.
type response struct {
	op     string
	url    string // redacted endpoint
	status int
	ctype  string // Content-Type, cleaned by quoteProvider for errors
	body   []byte
	// secrets are the secret values the request sent (request.secrets), for redacting their
	// echo in provider text that is not an OAuth error, such as an ONES QR status.
	secrets []string
}

// quote returns text of the answer for an error message: quoteProvider with the request's
// secrets.
func (r *response) quote(s string, max int) string { return quoteProvider(s, r.secrets, max) }

// invalid reports a successful answer whose content is not acceptable. err may quote the answer
// (a JSON decoder's error holds a number literal as sent): it is scrubbed.
func (r *response) invalid(reason string, err error) *HTTPError {
	return &HTTPError{Op: r.op, URL: r.url, StatusCode: r.status, ContentType: r.ctype,
		Reason: reason, Err: scrub(err, r.secrets)}
}

// exchange performs r and returns the body of a 2xx JSON answer. Anything else is an error. A
// JSON body with an "error" member (RFC 6749 §5.2) is parsed whatever the status: an *OAuthError
// for a 4xx answer, and for a temporary status (408, 429, 5xx) an *HTTPError that wraps the
// *OAuthError, so that errors.Is(err, &OAuthError{Code: "temporarily_unavailable"}) holds for
// 503 {"error":"temporarily_unavailable"} while the status and Retry-After stay. An error body
// whose member names are ambiguous (parseOAuthError) is an *HTTPError matching
// ErrInvalidResponse. Any other body (an HTML 502 page) is an *HTTPError.
func (h *httpCore) exchange(ctx context.Context, r request) (*response, error) {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	endpoint := redactURL(r.url)
	var body io.Reader
	switch {
	case r.form != nil:
		body = strings.NewReader(r.form.Encode())
	case r.json != nil:
		body = bytes.NewReader(r.json)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		return nil, &HTTPError{Op: r.op, URL: endpoint, Reason: "bad request", Err: err}
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	switch {
	case r.form != nil:
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	case r.json != nil:
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", h.userAgent)

	secrets := r.secrets()
	start := time.Now()
	resp, err := h.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			// The *HTTPError names the request (its URL without query or user info): the
			// *url.Error would name it again, query included.
			err = ue.Err
		}
		// A transport error may quote what the server sent (net/http quotes a malformed
		// header line, which can echo the bearer token): scrubbed like any provider text.
		err = scrub(classifyTransportError(err), secrets)
		h.logger.DebugContext(ctx, "onesoidc: request failed", "op", r.op, "url", endpoint, "error", err)
		return nil, &HTTPError{Op: r.op, URL: endpoint, Err: err}
	}
	defer resp.Body.Close()
	h.logger.DebugContext(ctx, "onesoidc: request", "op", r.op, "method", r.method, "url", endpoint,
		"status", resp.StatusCode, "elapsed", time.Since(start))

	// The Content-Type goes into errors: a provider can echo the request's credentials there.
	ctype := quoteProvider(resp.Header.Get("Content-Type"), secrets, 100)
	herr := func(reason string, err error) *HTTPError {
		return &HTTPError{Op: r.op, URL: endpoint, StatusCode: resp.StatusCode, ContentType: ctype,
			RetryAfter: retryAfter(resp, time.Now()), Reason: reason, Err: err}
	}
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	limit := r.limit
	if !ok {
		limit = maxErrorBody
	}
	data, err := readCapped(resp.Body, limit)
	if err != nil {
		if errors.Is(err, errResponseTooLarge) {
			return nil, herr(fmt.Sprintf("body over %d bytes", limit), err)
		}
		return nil, herr("reading body", scrub(classifyTransportError(err), secrets))
	}
	if !ok {
		if resp.StatusCode >= 400 && isJSON(ctype) {
			oe, err := parseOAuthError(data, resp.StatusCode, r.op, secrets)
			if err != nil {
				return nil, herr("ambiguous error answer", err)
			}
			if oe != nil {
				if e := herr("", oe); e.Temporary() {
					// 408, 429, 5xx: the *HTTPError keeps Retry-After and the retry rules of a
					// temporary failure, and errors.Is/As still find the provider's code.
					return nil, e
				}
				return nil, oe
			}
		}
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			loc := quoteProvider(redactURL(resp.Header.Get("Location")), secrets, 200)
			return nil, herr("redirect to "+loc+" not followed", nil)
		}
		return nil, herr("unexpected status", nil)
	}
	if !isJSON(ctype) && !r.noBody {
		return nil, herr("expected a JSON body", nil)
	}
	return &response{op: r.op, url: endpoint, status: resp.StatusCode, ctype: ctype, body: data,
		secrets: secrets}, nil
}

// readCapped reads r up to limit bytes, and fails with errResponseTooLarge if there is more.
func readCapped(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, errResponseTooLarge
	}
	return data, nil
}

// isJSON reports whether a Content-Type is application/json or a +json type such as
// application/jwk-set+json.
func isJSON(ctype string) bool {
	mt, _, err := mime.ParseMediaType(ctype)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// parseOAuthError decodes an RFC 6749 §5.2 error body, or returns nil when it is not one. Any of
// secrets (what the request carried, request.secrets) that the provider echoed is replaced by
// "[redacted]" (quoteProvider), also when control characters split it; a secret shorter than
// minCodeSecret is not looked for in the error code. A body that is one only as encoding/json
// reads it, with error, error_description or error_uri twice (also under case folding) or only in
// another case ("Error"), or with any member twice, is refused (checkMembers): the error matches
// ErrInvalidResponse.
func parseOAuthError(data []byte, status int, op string, secrets []string) (*OAuthError, error) {
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		URI         string `json:"error_uri"`
	}
	if json.Unmarshal(data, &e) != nil || e.Error == "" {
		return nil, nil
	}
	if err := checkDecoded(data, &e); err != nil {
		return nil, err
	}
	// A short secret (a user_code such as "1234") is not looked for in the code, where it would
	// break a real code such as invalid_grant apart and with it errors.Is.
	var long []string
	for _, x := range secrets {
		if len(x) >= minCodeSecret {
			long = append(long, x)
		}
	}
	return &OAuthError{StatusCode: status, Code: quoteProvider(e.Error, long, 64), Description: quoteProvider(e.Description, secrets, 256),
		URI: quoteProvider(e.URI, secrets, 256), Op: op}, nil
}

// minCodeSecret is the length from which a secret is redacted from an OAuth error code.
const minCodeSecret = 16

// secretParams are the request parameters whose values are credentials or polling secrets: a
// provider's error text that echoes one must not carry it into an error or a log (RFC 6750
// §5.3, RFC 7523 §3, CIBA Core §7.3).
var secretParams = [...]string{"client_assertion", "client_secret", "auth_req_id", "device_code", "token",
	"refresh_token", "login_hint_token", "id_token_hint", "request", "assertion", "code", "code_verifier",
	"client_notification_token", "user_code"}

// secrets returns the secret values r sends: the secretParams of its form and the credential of
// its Authorization header, each also percent-encoded when that differs (an echo in error_uri).
func (r *request) secrets() []string {
	var out []string
	add := func(v string) {
		if v = sanitize(v, len(v)); v == "" {
			return // compared with sanitized text: a secret of control characters only is gone already
		}
		out = append(out, v)
		if q := url.QueryEscape(v); q != v {
			out = append(out, q)
		}
	}
	for _, k := range secretParams {
		for _, v := range r.form[k] {
			add(v)
		}
	}
	if _, cred, ok := strings.Cut(r.header.Get("Authorization"), " "); ok {
		add(strings.TrimSpace(cred))
	}
	return out
}

// redactSecrets replaces every occurrence of each of secrets in s by "[redacted]".
func redactSecrets(s string, secrets []string) string {
	for _, x := range secrets {
		if strings.Contains(s, x) {
			s = strings.ReplaceAll(s, x, redacted)
		}
	}
	return s
}

// quoteProvider returns provider text for an error message or a log: printable ASCII only
// (sanitize), every one of secrets replaced by "[redacted]", at most max bytes. The text is
// sanitized before the secrets are looked for, so that a secret split by control characters is
// found, and cut after, so that no part of one survives the cut.
func quoteProvider(s string, secrets []string, max int) string {
	return sanitize(redactSecrets(sanitize(s, len(s)), secrets), max)
}

// maxQuotedError bounds the text of an underlying error that quotes provider data: a JSON
// decoder's error holds a number literal as the provider sent it, which can be kilobytes long.
const maxQuotedError = 256

// scrubbedError is an error whose text quotes provider data, with the request's secrets
// replaced, control characters dropped and the length bounded; errors.Is and errors.As still
// see the error it stands for.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// scrub returns err with its text cleaned for an error message or a log: every one of secrets
// replaced by "[redacted]", non-printable characters (controls, the ESC of ANSI escapes, bidi
// overrides) dropped first, so that a secret split by them is found, and the text cut at
// maxQuotedError bytes with "..."; or err itself when nothing needs cleaning.
func scrub(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := redactSecrets(strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, msg), secrets)
	if len(clean) > maxQuotedError {
		cut := maxQuotedError
		for cut > 0 && !utf8.RuneStart(clean[cut]) {
			cut--
		}
		clean = clean[:cut] + "..."
	}
	if clean == msg {
		return err
	}
	return &scrubbedError{msg: clean, err: err}
}

// sanitize keeps printable ASCII (RFC 6749 §5.2 allows %x20-21 / %x23-5B / %x5D-7E) and cuts s
// to max bytes, so that a hostile provider cannot put control characters into logs.
func sanitize(s string, max int) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < max; i++ {
		if c := s[i]; c >= 0x20 && c <= 0x7e {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// redactURL drops the query, fragment and user info of a URL for messages and logs.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<invalid URL>"
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return u.String()
}

// classifyTransportError marks failures that retrying cannot fix (a host that does not exist, a
// certificate problem) with errPermanent, keeping the cause.
func classifyTransportError(err error) error {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return permanent(err)
	}
	if isCertificateError(err) {
		return permanent(err)
	}
	return err
}

// isCertificateError reports a TLS failure that retrying cannot fix: certificate
// verification, an alert from the server (such as no common protocol version), or a server that
// does not speak TLS at all.
func isCertificateError(err error) bool {
	var (
		verr  *tls.CertificateVerificationError
		uerr  x509.UnknownAuthorityError
		herr  x509.HostnameError
		cerr  x509.CertificateInvalidError
		alert tls.AlertError
		rerr  tls.RecordHeaderError
		oerr  *net.OpError
	)
	if errors.As(err, &oerr) && (oerr.Op == "remote error" || oerr.Op == "local error") {
		return true // crypto/tls reports handshake alerts (no common version ...) this way
	}
	return errors.As(err, &verr) || errors.As(err, &uerr) || errors.As(err, &herr) || errors.As(err, &cerr) ||
		errors.As(err, &alert) || errors.As(err, &rerr)
}

// permanent wraps an error so that errors.Is(err, errPermanent) holds, keeping the message
// (errPermanent's own message is empty).
func permanent(err error) error { return fmt.Errorf("%w%w", err, errPermanent) }

// maxRetryAfter bounds a parsed Retry-After only so that it fits a time.Duration (about 292
// years); below that the value is reported as the server gave it. Each waiter caps its own wait.
const maxRetryAfter = time.Duration(math.MaxInt64)

// retryAfter parses Retry-After (RFC 9110 §10.2.3), delay-seconds or an HTTP-date, on 429 and 503
// answers; 0 when absent, malformed or in the past. The value is not capped: an *HTTPError
// reports what the server asked for, and whoever waits caps the wait.
func retryAfter(resp *http.Response, now time.Time) time.Duration {
	if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
		return 0
	}
	v := strings.TrimSpace(resp.Header.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if v[0] >= '0' && v[0] <= '9' {
		secs, err := strconv.ParseUint(v, 10, 64)
		switch {
		case errors.Is(err, strconv.ErrRange) || (err == nil && secs > uint64(maxRetryAfter/time.Second)):
			return maxRetryAfter
		case err != nil:
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now) // saturates at the largest Duration
	}
	return 0
}
