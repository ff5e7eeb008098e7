// Package mockidp is a fake ONES identity provider for tests and examples: an OpenID Provider at
// {URL}/oidc with discovery, a JWKS that can rotate, and a token endpoint that really verifies
// private_key_jwt client assertions (RFC 7523 §3) before it issues tokens, and the ONES QR login
// at {URL}/auth/qr. Faults (status codes,
// raw bodies, delays, redirects, hangs) can be injected per endpoint, and every request is
// recorded so that tests can check what the client sent.
//
// It runs either on a loopback listener (Start) or in memory (NewInMemory), where HTTPClient
// calls the handler directly: the in-memory form works inside testing/synctest bubbles, where
// fake time advances only while every goroutine is blocked on something other than the network.
package mockidp

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Endpoint names, used for fault injection and the request log.
const (
	EndpointDiscovery = "discovery"
	EndpointJWKS      = "jwks"
	EndpointToken     = "token"
	// EndpointIntrospection is RFC 7662's, EndpointRevocation RFC 7009's.
	EndpointIntrospection = "introspection"
	EndpointRevocation    = "revocation"
)

// Paths of the endpoints below the base URL.
var paths = map[string]string{
	EndpointDiscovery:           "/oidc/.well-known/openid-configuration",
	EndpointJWKS:                "/oidc/jwks",
	EndpointToken:               "/oidc/token",
	EndpointIntrospection:       "/oidc/token/introspection",
	EndpointRevocation:          "/oidc/token/revocation",
	EndpointBackchannel:         "/oidc/backchannel",
	EndpointDeviceAuthorization: "/oidc/device/auth",
	EndpointQRStart:             "/auth/qr",
	EndpointQRStatus:            "/auth/qr/",
	EndpointApplications:        "/api/applications",
}

// Audience says which "aud" values the token endpoint accepts in client assertions.
type Audience int

const (
	// AudienceTokenEndpointOrIssuer accepts the token endpoint URL or the issuer (the default).
	AudienceTokenEndpointOrIssuer Audience = iota
	// AudienceTokenEndpoint accepts only the token endpoint URL.
	AudienceTokenEndpoint
	// AudienceIssuer accepts only the issuer.
	AudienceIssuer
	// AudienceCalledEndpoint accepts only the URL of the endpoint being called.
	AudienceCalledEndpoint
)

// Fault replaces or delays the normal answer of an endpoint.
type Fault struct {
	// Times is how many requests the fault applies to; 0 means every request from now on.
	Times int
	// Delay is waited (on the request's context) before answering.
	Delay time.Duration
	// Hang blocks until the client gives up (its context or connection ends).
	Hang bool
	// Status, with Body and ContentType, replaces the answer when non-zero.
	Status      int
	Body        []byte
	ContentType string
	// Header is added to the replaced answer (e.g. Retry-After).
	Header http.Header
	// Redirect, when set, answers Status (default 302) with this Location.
	Redirect string
}

// Request is a recorded request.
type Request struct {
	Endpoint string
	Method   string
	// Path is the request's escaped path, as sent.
	Path   string
	Header http.Header
	Form   url.Values
	Time   time.Time
}

// Option configures an IdP.
type Option func(*IdP)

// WithClock sets the IdP's clock (default time.Now).
func WithClock(now func() time.Time) Option { return func(m *IdP) { m.now = now } }

// WithTokenLifetime sets expires_in of issued access tokens (default 600 s).
func WithTokenLifetime(d time.Duration) Option { return func(m *IdP) { m.tokenTTL = d } }

// WithAudience sets which client assertion audiences are accepted.
func WithAudience(a Audience) Option { return func(m *IdP) { m.audience = a } }

// IdP is a fake ONES identity provider. Its methods are safe for concurrent use.
type IdP struct {
	// URL is the base URL (the device.yml "host"); Issuer is URL + "/oidc".
	URL, Issuer string

	srv      *httptest.Server
	handler  http.Handler
	now      func() time.Time
	tokenTTL time.Duration
	audience Audience
	opaque   bool // WithOpaqueAccessTokens
	ones     bool // WithONES
	paths    map[string]string

	mu      sync.Mutex
	clients map[string]*jose.JSONWebKey
	keys    []*jose.JSONWebKey // keys[0] signs; all are published
	jtis    map[string]bool
	grants  grantState
	faults  map[string][]*Fault
	log     []Request
	meta    func(map[string]any)
	ciba    cibaState
	qr      qrState
	apps    *string           // the application list's body; nil for DefaultApplications
	extra   []json.RawMessage // raw JWKs published after the keys (tokens.go)
}

func newIdP(base string, opts []Option) *IdP {
	m := &IdP{
		URL:      base,
		Issuer:   base + "/oidc",
		now:      time.Now,
		tokenTTL: 600 * time.Second,
		clients:  map[string]*jose.JSONWebKey{},
		jtis:     map[string]bool{},
		faults:   map[string][]*Fault{},
	}
	for _, o := range opts {
		o(m)
	}
	m.paths = maps.Clone(paths)
	if m.ones {
		m.paths[EndpointBackchannel] = onesBackchannelPath
	}
	m.keys = []*jose.JSONWebKey{defaultKey()}
	mux := http.NewServeMux()
	for name, p := range m.paths {
		h := m.handlerFor(name)
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) { m.serve(name, h, w, r) })
	}
	m.handler = mux
	return m
}

// Start runs an IdP on a loopback listener. Close it when done.
func Start(opts ...Option) *IdP {
	var m *IdP
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.handler.ServeHTTP(w, r)
	}))
	srv.Start()
	m = newIdP(srv.URL, opts)
	m.srv = srv
	return m
}

// NewInMemory returns an IdP at http://localhost that has no listener: only HTTPClient reaches it.
func NewInMemory(opts ...Option) *IdP { return newIdP("http://localhost", opts) }

// Close stops the listener, if any.
func (m *IdP) Close() {
	if m.srv != nil {
		m.srv.Close()
	}
}

// Handler returns the IdP's HTTP handler.
func (m *IdP) Handler() http.Handler { return m.handler }

// HTTPClient returns a client that reaches the IdP: in memory for NewInMemory, through loopback
// otherwise.
func (m *IdP) HTTPClient() *http.Client {
	if m.srv != nil {
		return m.srv.Client()
	}
	return &http.Client{Transport: inMemory{m.handler}}
}

type inMemory struct{ h http.Handler }

func (t inMemory) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		t.h.ServeHTTP(rec, r)
	}()
	select {
	case <-done:
	case <-r.Context().Done():
		<-done
		return nil, r.Context().Err()
	}
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

// RegisterClient registers a client whose assertions verify with pub and alg (e.g. "ES256"); the
// key has no "kid", so signatures must announce none (see RegisterClientJWK).
func (m *IdP) RegisterClient(clientID string, pub crypto.PublicKey, alg string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clients[clientID] = &jose.JSONWebKey{Key: pub, Algorithm: alg, Use: "sig"}
}

// RegisterClientJWK registers a client by its public JWK, as a provider stores a client's
// "jwks": Key, Algorithm and KeyID count. Like oidc-provider, the IdP then accepts a signature
// whose header names no "kid", or exactly this KeyID; any other "kid" fails.
func (m *IdP) RegisterClientJWK(clientID string, jwk jose.JSONWebKey) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clients[clientID] = &jwk
}

// Inject adds a fault to an endpoint; faults apply in the order they were added.
func (m *IdP) Inject(endpoint string, f Fault) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.faults[endpoint] = append(m.faults[endpoint], &f)
}

// EditMetadata sets a function that edits the discovery document before it is sent.
func (m *IdP) EditMetadata(edit func(doc map[string]any)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.meta = edit
}

// RotateKeys puts a new signing key (of the given alg) in front; older keys stay published until
// RetireOldKeys. It returns the new key id.
func (m *IdP) RotateKeys(alg string) string {
	k := newSigningKey(alg)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys = append([]*jose.JSONWebKey{k}, m.keys...)
	return k.KeyID
}

// RetireOldKeys unpublishes every key but the current one.
func (m *IdP) RetireOldKeys() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys = m.keys[:1]
}

// SigningKey returns the current signing key (private).
func (m *IdP) SigningKey() *jose.JSONWebKey {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.keys[0]
}

// Requests returns the recorded requests to an endpoint.
func (m *IdP) Requests(endpoint string) []Request {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Request
	for _, r := range m.log {
		if r.Endpoint == endpoint {
			out = append(out, r)
		}
	}
	return out
}

// Count returns how many requests reached an endpoint.
func (m *IdP) Count(endpoint string) int { return len(m.Requests(endpoint)) }

func (m *IdP) serve(name string, h http.HandlerFunc, w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		_ = r.ParseForm()
	}
	m.mu.Lock()
	m.log = append(m.log, Request{Endpoint: name, Method: r.Method, Path: r.URL.EscapedPath(), Header: r.Header.Clone(),
		Form: maps.Clone(r.PostForm), Time: m.now()})
	var fault *Fault
	if fs := m.faults[name]; len(fs) > 0 {
		fault = fs[0]
		if fault.Times > 0 {
			fault.Times--
			if fault.Times == 0 {
				m.faults[name] = fs[1:]
			}
		}
	}
	m.mu.Unlock()
	if fault != nil {
		if fault.Hang {
			<-r.Context().Done()
			return
		}
		if fault.Delay > 0 {
			t := time.NewTimer(fault.Delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if fault.Redirect != "" {
			status := fault.Status
			if status == 0 {
				status = http.StatusFound
			}
			w.Header().Set("Location", fault.Redirect)
			w.WriteHeader(status)
			return
		}
		if fault.Status != 0 {
			for k, v := range fault.Header {
				w.Header()[k] = v
			}
			if fault.ContentType != "" {
				w.Header().Set("Content-Type", fault.ContentType)
			}
			w.WriteHeader(fault.Status)
			_, _ = w.Write(fault.Body)
			return
		}
	}
	h(w, r)
}

func (m *IdP) handlerFor(name string) http.HandlerFunc {
	switch name {
	case EndpointDiscovery:
		return m.discovery
	case EndpointJWKS:
		return m.jwks
	case EndpointToken:
		return m.token
	case EndpointIntrospection:
		return m.introspection
	case EndpointRevocation:
		return m.revocation
	case EndpointBackchannel:
		return m.backchannel
	case EndpointDeviceAuthorization:
		return m.deviceAuthorization
	case EndpointQRStart:
		return m.qrStart
	case EndpointQRStatus:
		return m.qrStatus
	case EndpointApplications:
		return m.applications
	}
	panic("mockidp: unknown endpoint " + name)
}

// endpointURL is the absolute URL of an endpoint.
func (m *IdP) endpointURL(name string) string { return m.URL + m.paths[name] }

func (m *IdP) discovery(w http.ResponseWriter, r *http.Request) {
	doc := map[string]any{
		"issuer":                                           m.Issuer,
		"token_endpoint":                                   m.endpointURL(EndpointToken),
		"jwks_uri":                                         m.endpointURL(EndpointJWKS),
		"response_types_supported":                         []string{"code"},
		"subject_types_supported":                          []string{"public"},
		"grant_types_supported":                            []string{"client_credentials", "refresh_token", "urn:openid:params:grant-type:ciba"},
		"id_token_signing_alg_values_supported":            []string{"RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA"},
		"token_endpoint_auth_methods_supported":            []string{"private_key_jwt"},
		"token_endpoint_auth_signing_alg_values_supported": []string{"RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA"},
		"scopes_supported":                                 []string{"openid", "profile", "email", "offline_access"},
		"introspection_endpoint":                           m.endpointURL(EndpointIntrospection),
		"revocation_endpoint":                              m.endpointURL(EndpointRevocation),
		"backchannel_authentication_endpoint":              m.endpointURL(EndpointBackchannel),
		"device_authorization_endpoint":                    m.endpointURL(EndpointDeviceAuthorization),
		"backchannel_token_delivery_modes_supported":       []string{"poll", "ping"},
		"backchannel_user_code_parameter_supported":        true,
		"ones_applications_uri":                            m.endpointURL(EndpointApplications),
		"backchannel_authentication_request_signing_alg_values_supported": []string{"RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA"},
	}
	m.mu.Lock()
	edit := m.meta
	m.mu.Unlock()
	if edit != nil {
		edit(doc)
	}
	writeJSON(w, http.StatusOK, doc)
}

func (m *IdP) jwks(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	_, _ = w.Write(m.JWKS())
}

// OAuthError writes an RFC 6749 §5.2 error.
func OAuthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// formPost answers an OAuth error and returns false unless r is a form-encoded POST, as every
// endpoint that authenticates clients requires (RFC 6749 §3.2, RFC 7523 §2.2).
func formPost(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost {
		OAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "POST required")
		return false
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		OAuthError(w, http.StatusBadRequest, "invalid_request", "form body required")
		return false
	}
	return true
}

func (m *IdP) token(w http.ResponseWriter, r *http.Request) {
	if !formPost(w, r) {
		return
	}
	clientID, err := m.authenticate(r, EndpointToken)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_client"`)
		OAuthError(w, http.StatusUnauthorized, "invalid_client", err.Error())
		return
	}
	switch gt := r.PostForm.Get("grant_type"); gt {
	case "client_credentials":
		m.issueClientCredentials(w, r, clientID)
	case "refresh_token":
		m.refresh(w, r, clientID)
	case cibaGrantType:
		m.cibaToken(w, r, clientID, r.PostForm.Get("auth_req_id"))
	case "urn:ietf:params:oauth:grant-type:device_code":
		m.cibaToken(w, r, clientID, r.PostForm.Get("device_code"))
	default:
		OAuthError(w, http.StatusBadRequest, "unsupported_grant_type", fmt.Sprintf("grant_type %q", gt))
	}
}

func (m *IdP) issueClientCredentials(w http.ResponseWriter, r *http.Request, clientID string) {
	scope := r.PostForm.Get("scope")
	now := m.now()
	claims := map[string]any{
		"iss":       m.Issuer,
		"sub":       clientID,
		"client_id": clientID,
		"aud":       m.audienceOf(r),
		"iat":       now.Unix(),
		"exp":       now.Add(m.tokenTTL).Unix(),
		"jti":       randomID(),
	}
	if scope != "" {
		claims["scope"] = scope
	}
	tok, aud, err := m.accessToken(claims, r.PostForm.Get("resource"))
	if err != nil {
		OAuthError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	m.track(tok, issued{clientID: clientID, subject: clientID, scope: scope, exp: now.Add(m.tokenTTL), aud: aud,
		device: true})
	resp := map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": int(m.tokenTTL / time.Second)}
	if scope != "" {
		resp["scope"] = scope
	}
	writeJSON(w, http.StatusOK, resp)
}

func (m *IdP) audienceOf(r *http.Request) string {
	if res := r.PostForm.Get("resource"); res != "" {
		return res
	}
	return m.Issuer
}

// Mint signs claims with the current signing key (RS256 unless rotated to another alg), adding
// the extra header fields.
func (m *IdP) Mint(claims map[string]any, header map[string]any) (string, error) {
	key := m.SigningKey()
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	typ, hasTyp := header["typ"]
	so := &jose.SignerOptions{ExtraHeaders: map[jose.HeaderKey]any{}}
	for k, v := range header {
		so.ExtraHeaders[jose.HeaderKey(k)] = v
	}
	so.WithType("JWT")
	if hasTyp {
		so.WithType(jose.ContentType(fmt.Sprint(typ)))
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(key.Algorithm), Key: key}, so)
	if err != nil {
		return "", err
	}
	obj, err := sig.Sign(payload)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

var assertionAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.ES384, jose.ES512, jose.EdDSA}

// authenticate verifies the private_key_jwt client assertion of r (RFC 7523 §3) for the endpoint
// being called and returns the client id.
func (m *IdP) authenticate(r *http.Request, endpoint string) (string, error) {
	f := r.PostForm
	if got := f.Get("client_assertion_type"); got != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		return "", fmt.Errorf("client_assertion_type %q", got)
	}
	raw := f.Get("client_assertion")
	if raw == "" {
		return "", fmt.Errorf("client_assertion missing")
	}
	jws, err := jose.ParseSignedCompact(raw, assertionAlgs)
	if err != nil {
		return "", fmt.Errorf("assertion: %v", err)
	}
	if len(jws.Signatures) != 1 {
		return "", fmt.Errorf("assertion: one signature expected")
	}
	hdr := jws.Signatures[0].Protected
	var unverified struct {
		Iss string `json:"iss"`
	}
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &unverified); err != nil {
		return "", fmt.Errorf("assertion payload: %v", err)
	}
	clientID := f.Get("client_id")
	if clientID == "" {
		clientID = unverified.Iss
	}
	m.mu.Lock()
	key := m.clients[clientID]
	m.mu.Unlock()
	if key == nil {
		return "", fmt.Errorf("unknown client %q", clientID)
	}
	if key.Algorithm != "" && hdr.Algorithm != key.Algorithm {
		return "", fmt.Errorf("assertion alg %s, registered %s", hdr.Algorithm, key.Algorithm)
	}
	if hdr.KeyID != "" && hdr.KeyID != key.KeyID {
		return "", fmt.Errorf("assertion kid %q is not the registered key's", hdr.KeyID)
	}
	payload, err := jws.Verify(key.Key)
	if err != nil {
		return "", fmt.Errorf("assertion signature: %v", err)
	}
	var c struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Aud json.RawMessage `json:"aud"`
		Exp *float64        `json:"exp"`
		Iat *float64        `json:"iat"`
		Nbf *float64        `json:"nbf"`
		Jti string          `json:"jti"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", fmt.Errorf("assertion claims: %v", err)
	}
	if c.Iss != clientID || c.Sub != clientID {
		return "", fmt.Errorf("assertion iss/sub must equal client_id")
	}
	auds, err := audList(c.Aud)
	if err != nil {
		return "", err
	}
	if !slices.ContainsFunc(auds, func(a string) bool { return m.acceptsAudience(a, endpoint) }) {
		return "", fmt.Errorf("assertion aud %v not accepted", auds)
	}
	now := float64(m.now().Unix())
	switch {
	case c.Exp == nil:
		return "", fmt.Errorf("assertion exp missing")
	case *c.Exp <= now-5:
		return "", fmt.Errorf("assertion expired")
	case c.Iat == nil:
		return "", fmt.Errorf("assertion iat missing")
	case *c.Iat > now+15:
		return "", fmt.Errorf("assertion iat in the future")
	case c.Nbf != nil && *c.Nbf > now+15:
		return "", fmt.Errorf("assertion not yet valid")
	case len(c.Jti) < 16:
		return "", fmt.Errorf("assertion jti missing or short")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.jtis[c.Jti] {
		return "", fmt.Errorf("assertion jti replayed")
	}
	m.jtis[c.Jti] = true
	return clientID, nil
}

func audList(raw json.RawMessage) ([]string, error) {
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err == nil {
		return many, nil
	}
	return nil, fmt.Errorf("assertion aud missing or malformed")
}

func (m *IdP) acceptsAudience(aud, endpoint string) bool {
	switch m.audience {
	case AudienceTokenEndpoint:
		return aud == m.endpointURL(EndpointToken)
	case AudienceIssuer:
		return aud == m.Issuer
	case AudienceCalledEndpoint:
		return aud == m.endpointURL(endpoint)
	}
	return aud == m.endpointURL(EndpointToken) || aud == m.Issuer
}

// defaultKey is the first signing key of every IdP: RSA generation is slow, so it is made once
// per process and never changed.
var defaultKey = sync.OnceValue(func() *jose.JSONWebKey { return newSigningKey("RS256") })

// newSigningKey generates a provider key for alg (RS256, PS256, ES256, ES384, ES512, EdDSA).
func newSigningKey(alg string) *jose.JSONWebKey {
	var key crypto.Signer
	var err error
	switch alg {
	case "ES256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ES512":
		key, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "EdDSA":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		panic(err)
	}
	jwk := &jose.JSONWebKey{Key: key, Algorithm: alg, Use: "sig"}
	pub := jwk.Public()
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		panic(err)
	}
	jwk.KeyID = fmt.Sprintf("%x", tp[:8])
	return jwk
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}
