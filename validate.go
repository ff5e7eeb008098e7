package onesoidc

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ones-now/onesoidc/internal/cache"
	"github.com/ones-now/onesoidc/internal/jose"
)

// defaultMaxTokenAge is how old (by "iat") an ID token may be in VerifyIDToken, which checks ID
// tokens fresh from the token endpoint (OpenID conformance uses 5 minutes).
const defaultMaxTokenAge = 5 * time.Minute

// maxTokenLifetime is the longest lifetime, "exp" minus "iat", that a token may claim: 366 days.
// RFC 7519 §4.1.4 and §4.1.6 set no bound, but ID tokens and access tokens live minutes or hours;
// a token valid for more than a year is far beyond any real one (a date in milliseconds by
// mistake, or a forgery meant to live forever) and is refused with ErrInvalidClaim naming "exp".
const maxTokenLifetime = 366 * 24 * time.Hour

// validationOptions are the client options of token validation; zero values mean the defaults.
type validationOptions struct {
	algs        jose.AlgSet
	cooldown    time.Duration
	maxAge      time.Duration
	introMaxAge time.Duration // introspection.go
	cacheBytes  uint64
	cacheBudget bool // WithTokenCacheBytes was given

	maxIntrospections int // introspection.go
}

// WithSigningAlgorithms restricts the JWS algorithms accepted on ID tokens and JWT access tokens
// (default: all supported ones, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512 and
// EdDSA). The effective allow-list is this set ∩ the provider's
// id_token_signing_alg_values_supported (RS256 when the provider lists none, OpenID Connect Core
// 1.0 §3.1.3.7 item 7) ∩ the supported ones; "none" and HS* are never accepted (RFC 8725 §3.1).
// An unknown name, or an empty intersection, fails the client's construction.
func WithSigningAlgorithms(algs ...string) Option {
	return func(o *options) {
		var set jose.AlgSet
		for _, a := range algs {
			id := jose.ParseAlg(a)
			if id == jose.AlgUnknown {
				o.fail("WithSigningAlgorithms", "unsupported algorithm %q (supported: %s)", sanitize(a, 32),
					strings.Join(jose.AllAlgs.Names(), ", "))
				return
			}
			set |= 1 << id
		}
		if set == 0 {
			o.fail("WithSigningAlgorithms", "no algorithm given")
			return
		}
		o.validation.algs = set
	}
}

// WithJWKSCooldown sets the least time between two JWKS refetches caused by tokens whose kid is
// unknown (default 30 s; between 1 s and 10 minutes). Within it, such tokens
// are rejected without a request, so that a flood of made-up kids costs one fetch. The initial load and max-age refreshes do not count.
func WithJWKSCooldown(d time.Duration) Option {
	return func(o *options) {
		if d < time.Second || d > 10*time.Minute {
			o.fail("WithJWKSCooldown", "cooldown must be between 1s and 10m, got %v", d)
			return
		}
		o.validation.cooldown = d
	}
}

// WithJWKSMaxAge sets how long a fetched JWKS is trusted before it is fetched again, so that a
// key the provider removed stops validating (default 10 minutes; between 1
// minute and 24 hours).
func WithJWKSMaxAge(d time.Duration) Option {
	return func(o *options) {
		if d < time.Minute || d > 24*time.Hour {
			o.fail("WithJWKSMaxAge", "max age must be between 1m and 24h, got %v", d)
			return
		}
		o.validation.maxAge = d
	}
}

// validator holds a client's validation state. It is safe for concurrent use.
type validator struct {
	issuer   string
	clientID string
	leeway   time.Duration
	now      func() time.Time
	algs     jose.AlgSet
	keys     *jwksCache
	cache    *tokenCache // nil disables the verified-token cache
	dec      *jose.Decoder
	intro    *introspector
}

// initValidation sets up token validation for c from the options and the provider metadata.
func (c *OpenIDConnectClient) initValidation(o *options) error {
	vo := o.validation
	algs := vo.algs
	if algs == 0 {
		algs = jose.AllAlgs
	}
	provider := jose.AlgSet(1 << jose.RS256)
	if len(c.meta.IDTokenSigningAlgValuesSupported) > 0 {
		provider = 0
		for _, a := range c.meta.IDTokenSigningAlgValuesSupported {
			if id := jose.ParseAlg(a); id != jose.AlgUnknown {
				provider |= 1 << id
			}
		}
	}
	if algs&provider == 0 {
		return &ConfigError{Field: "id_token_signing_alg_values_supported", Reason: fmt.Sprintf(
			"no signing algorithm in common: accepted [%s], provider lists [%s]", strings.Join(algs.Names(), " "),
			sanitize(strings.Join(c.meta.IDTokenSigningAlgValuesSupported, " "), 200))}
	}
	cooldown, maxAge := vo.cooldown, vo.maxAge
	if cooldown == 0 {
		cooldown = defaultJWKSCooldown
	}
	if maxAge == 0 {
		maxAge = defaultJWKSMaxAge
	}
	budget := uint64(defaultTokenCacheBytes)
	if vo.cacheBudget {
		budget = vo.cacheBytes
	}
	tokens := newTokenCache(budget)
	introMaxAge := vo.introMaxAge
	if introMaxAge == 0 {
		introMaxAge = defaultIntrospectionMaxAge
	}
	maxIntrospections := vo.maxIntrospections
	if maxIntrospections == 0 {
		maxIntrospections = defaultMaxIntrospections
	}
	c.val = &validator{
		intro: &introspector{
			introspect: func(ctx context.Context, token string) (*IntrospectionResult, error) {
				return c.IntrospectToken(ctx, token, "access_token")
			},
			enabled:    c.meta.IntrospectionEndpoint != "",
			issuer:     c.issuer,
			leeway:     c.leeway,
			maxAge:     introMaxAge,
			now:        c.now,
			introCache: cache.New(introspectionCacheBytes, introEntryCost),
			inFlight:   make(chan struct{}, maxIntrospections),
			slotWait:   c.http.timeout,
		},
		issuer:   c.issuer,
		clientID: c.clientID,
		leeway:   c.leeway,
		now:      c.now,
		algs:     algs & provider,
		cache:    tokens,
		dec:      new(jose.Decoder),
		keys: &jwksCache{
			http:     c.http,
			url:      c.meta.JWKSURI,
			now:      c.now,
			cooldown: cooldown,
			maxAge:   max(maxAge, cooldown),
			logger:   c.logger,
			onRetire: tokens.dropRetired,
		},
	}
	if budget == 0 {
		c.val.cache = nil
	}
	return nil
}

// WithTokenCacheBytes sets the memory the verified-token cache may hold (default 64 MiB: about
// 140,000 typical ID tokens); 0 turns the cache off, so
// that every call verifies the signature. A token's entry costs its decoded payload plus about
// 210 bytes; tokens over 16 KiB, and entries over an eighth of the budget, are not cached.
func WithTokenCacheBytes(n int) Option {
	return func(o *options) {
		if n < 0 {
			o.fail("WithTokenCacheBytes", "negative budget %d", n)
			return
		}
		o.validation.cacheBytes, o.validation.cacheBudget = uint64(n), true
	}
}

// VerifyOption is an expectation about one token, for ValidateToken, VerifyIDToken,
// VerifyAccessToken and RequireToken.
//
// Most options fit one kind of token only, and giving one fixes the kind (RFC 8725 §2.8, §3.11):
// with ExpectAudience only JWT access tokens are accepted; with ExpectNonce, ExpectAuthReqID,
// ExpectAtHashOf or MaxTokenAge only ID tokens. A token of the other kind is then rejected
// with ErrInvalidTokenType, never validated with the option left out. Options of both kinds in
// one call, or options of the other kind than VerifyIDToken or VerifyAccessToken check, are a
// usage error: a *ConfigError naming the options. ExpectSubject fits both.
type VerifyOption func(*verifyOptions)

type verifyOptions struct {
	nonce, authReqID, subject, audience, accessToken   string
	hasNonce, hasAuthReqID, hasSubject, hasAccessToken bool
	maxAge                                             time.Duration
	scopes                                             []string // ExpectScope
	insecureIDTokens                                   bool     // InsecureAcceptIDTokens
	// idOnly and atOnly name the first option given that fits only ID tokens, only access
	// tokens.
	idOnly, atOnly string

	// trusted marks a token from the client's own token request (fromOwnRequest).
	trusted bool
	// emptyAudience: ExpectAudience("") was given, a usage error.
	emptyAudience bool
}

func (o *verifyOptions) forIDTokens(option string) {
	if o.idOnly == "" {
		o.idOnly = option
	}
}

// ExpectNonce requires the ID token's "nonce" to equal nonce (OpenID Connect Core 1.0 §3.1.3.7
// item 11), for flows that sent one. Without it a nonce is ignored: CIBA and client credentials
// must not demand one. It fits ID tokens only: ValidateToken then
// rejects access tokens (see VerifyOption).
func ExpectNonce(nonce string) VerifyOption {
	return func(o *verifyOptions) { o.nonce, o.hasNonce = nonce, true; o.forIDTokens("ExpectNonce") }
}

// ExpectAuthReqID binds a CIBA ID token to its request (CIBA Core §10.1.1): the claim
// urn:openid:params:jwt:claim:auth_req_id may be absent, and when present must equal id. It fits
// ID tokens only: ValidateToken then rejects access tokens (see VerifyOption).
func ExpectAuthReqID(id string) VerifyOption {
	return func(o *verifyOptions) { o.authReqID, o.hasAuthReqID = id, true; o.forIDTokens("ExpectAuthReqID") }
}

// ExpectSubject requires "sub" to equal sub: the user the client asked to authenticate (CIBA with
// a known user) or the subject of the ID token being refreshed (OpenID
// Connect Core 1.0 §12.2).
func ExpectSubject(sub string) VerifyOption {
	return func(o *verifyOptions) { o.subject, o.hasSubject = sub, true }
}

// ExpectAudience sets the audience a JWT access token must carry in "aud" (RFC 9068 §4): the
// resource server's identifier (default: the client id). It fits access tokens only:
// ValidateToken and RequireToken then reject ID tokens with ErrInvalidTokenType, even one whose
// "aud" is aud (see VerifyOption). ID tokens always need the client id. An empty aud is a
// *ConfigError (an unset setting must not quietly mean the client id): leave the option out to
// expect the client id.
func ExpectAudience(aud string) VerifyOption {
	return func(o *verifyOptions) {
		o.audience, o.emptyAudience = aud, aud == ""
		if o.atOnly == "" {
			o.atOnly = "ExpectAudience"
		}
	}
}

// ExpectAtHashOf gives the access token that came with the ID token in the same response: if
// the ID token has "at_hash", it must match it (OpenID Connect Core 1.0 §3.3.2.11); an absent
// at_hash is accepted. It fits ID tokens only: ValidateToken then rejects
// access tokens (see VerifyOption).
func ExpectAtHashOf(accessToken string) VerifyOption {
	return func(o *verifyOptions) {
		o.accessToken, o.hasAccessToken = accessToken, true
		o.forIDTokens("ExpectAtHashOf")
	}
}

// MaxTokenAge bounds the age of an ID token by its "iat" plus the leeway (default in
// VerifyIDToken 5 minutes; in ValidateToken none; 0 turns it off). It fits
// ID tokens only, even with 0: ValidateToken then rejects access tokens (see VerifyOption).
func MaxTokenAge(d time.Duration) VerifyOption {
	return func(o *verifyOptions) { o.maxAge = max(d, 0); o.forIDTokens("MaxTokenAge") }
}

// fromOwnRequest marks a token that came back from the client's own token request (a CIBA or
// RFC 8628 poll, a refresh): an unknown kid there refetches the provider's JWKS whatever the miss
// cooldown (see jwksCache.key). Never for tokens that reach the client from outside.
func fromOwnRequest() VerifyOption {
	return func(o *verifyOptions) { o.trusted = true }
}

// applyOptions returns the options of a call in mode m and the mode they fix.
func applyOptions(m mode, opts []VerifyOption) (*verifyOptions, mode, error) {
	o := new(verifyOptions)
	if m == modeIDToken {
		o.maxAge = defaultMaxTokenAge
	}
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	conflict := func(option, reason string) error {
		return &ConfigError{Field: option, Reason: reason, Err: errConflictingVerifyOptions}
	}
	switch {
	case o.emptyAudience:
		return nil, m, &ConfigError{Field: "ExpectAudience", Reason: "empty audience: name the API's audience (RFC 9068 §4), or leave the option out to expect the client id"}
	case o.idOnly != "" && o.atOnly != "":
		return nil, m, conflict(o.atOnly, "fits access tokens only, "+o.idOnly+" ID tokens only")
	case o.idOnly != "" && m == modeAccessToken:
		return nil, m, conflict(o.idOnly, "fits ID tokens only, not VerifyAccessToken")
	case o.atOnly != "" && m == modeIDToken:
		return nil, m, conflict(o.atOnly, "fits access tokens only, not VerifyIDToken")
	case o.idOnly != "":
		m = modeIDToken
	case o.atOnly != "":
		m = modeAccessToken
	}
	return o, m, nil
}

// mode is what kind of token a call expects.
type mode uint8

const (
	modeAny mode = iota
	modeIDToken
	modeAccessToken
)

// TokenKind is the kind of a validated token.
type TokenKind uint8

// Kinds of tokens.
const (
	// KindIDToken is an OpenID Connect ID token (OpenID Connect Core 1.0 §2): "typ" absent or JWT.
	KindIDToken TokenKind = iota + 1
	// KindAccessToken is a JWT access token (RFC 9068): "typ" at+jwt.
	KindAccessToken
)

// String returns "id_token" or "access_token".
func (k TokenKind) String() string {
	switch k {
	case KindIDToken:
		return "id_token"
	case KindAccessToken:
		return "access_token"
	}
	return "unknown"
}

// EntityKind says whether a token speaks for a person or a machine.
type EntityKind uint8

// Kinds of entities.
const (
	// EntityUser is a person: any token that is not a device's own.
	EntityUser EntityKind = iota + 1
	// EntityDevice is a device (a registered client) acting for itself, as with the
	// client_credentials grant: its subject is its own client id and it has no username.
	EntityDevice
)

// String returns "user" or "device".
func (k EntityKind) String() string {
	switch k {
	case EntityUser:
		return "user"
	case EntityDevice:
		return "device"
	}
	return "unknown"
}

// AuthenticatedEntity is who a validated token speaks for, the Go form of the ones-oidc crate's
// AuthenticatedEntity. Slices are owned by the caller.
type AuthenticatedEntity struct {
	// Kind is EntityDevice when the token's subject equals its client id ("client_id", else
	// "azp") and it has no "preferred_username" — a device's client_credentials token —, and
	// EntityUser otherwise. For an opaque token the introspection answer decides: EntityDevice
	// when it names a client_id and no username ("username", else "preferred_username") and its
	// "sub" is absent (as oidc-provider answers for client_credentials tokens) or the client_id;
	// Subject is then the client id.
	Kind EntityKind
	// Issuer is "iss", the provider's issuer identifier.
	Issuer string
	// Subject is "sub": the user's id, or the device's client id.
	Subject string
	// Audience is "aud" as a list.
	Audience []string
	// Scope is the space-separated "scope" (RFC 9068 §2.2.3), or "".
	Scope string
	// Username is "preferred_username" (OpenID Connect Core 1.0 §5.1), or "".
	Username string
	// Name is "name", the user's full name (OpenID Connect Core 1.0 §5.1), or "".
	Name string
	// Email is "email" (OpenID Connect Core 1.0 §5.1), or "". Whether the provider verified it
	// is the claim "email_verified" (read it with Claims).
	Email string
	// ClientID is "client_id" (RFC 9068 §2.2), else "azp", else "".
	ClientID string
	// Role is the identity provider role: the claim "role", else "idp_role", else "".
	Role string
	// AuthMethods is "amr" (RFC 8176), if present.
	AuthMethods []string
	// ACR is "acr", the authentication context class, or "".
	ACR string
	// AuthTime is "auth_time", or the zero time.
	AuthTime time.Time
	// IssuedAt is "iat", or the zero time.
	IssuedAt time.Time
	// Expiry is "exp".
	Expiry time.Time
}

// HasScope reports whether the space-separated Scope contains scope.
func (e *AuthenticatedEntity) HasScope(scope string) bool {
	for s := range strings.FieldsSeq(e.Scope) {
		if s == scope {
			return true
		}
	}
	return false
}

// AuthenticationResult is a validated token: who it is for, what kind of token it is, and every
// claim. It is only ever returned for a token that passed every check.
type AuthenticationResult struct {
	// Entity is who the token speaks for.
	Entity AuthenticatedEntity
	// Kind is KindIDToken or KindAccessToken (also for opaque tokens).
	Kind TokenKind
	// Algorithm is the JWS "alg" the token was signed with, or "" for an opaque token validated
	// by introspection.
	Algorithm string
	// KeyID is the "kid" of the provider key that verified it, or "".
	KeyID string

	// claims is the start of the verified claims (jose.PackedAt), immutable and shared with the
	// cache entry: behind a pointer, so that printing a result (fmt %+v, slog's text handler)
	// shows an address, never the payload, which may hold a CIBA auth_req_id claim.
	claims *byte
	dec    *jose.Decoder // nil: encoding/json
}

// Claims decodes the verified claims into v, with the result and errors of encoding/json's
// Unmarshal, for claims the entity does not carry:
//
//	var extra struct{ Groups []string `json:"groups"` }
//	err := res.Claims(&extra)
//
// A struct of strings, booleans, numbers and []string is filled straight from the verified
// payload, without a second parse by encoding/json.
func (r *AuthenticationResult) Claims(v any) error {
	dec := r.dec
	claims := r.packed()
	if claims.Has() == 0 { // not a payload ParseClaims read (an introspection answer)
		dec = nil
	}
	if err := dec.Decode(claims.Payload(), v); err != nil {
		return fmt.Errorf("onesoidc: decoding claims: %w", err)
	}
	return nil
}

// Roles returns the "roles" claim (RFC 9068 §7.2.1.1, RFC 7643 §4.1.2), an array of strings,
// in a new slice; nil when the token has none or it is not an array of strings. Like Claims it
// reads the member whose name equals "roles" without regard to case.
func (r *AuthenticationResult) Roles() []string { return r.packed().Roles() }

// packed returns the verified claims.
func (r *AuthenticationResult) packed() jose.Packed { return jose.PackedAt(r.claims) }

// packedStart returns what AuthenticationResult.claims holds for p: nil for the zero Packed.
func packedStart(p jose.Packed) *byte {
	if p.Bytes() == 0 {
		return nil
	}
	return p.Ptr()
}

// rawClaims returns every verified claim, decoded by encoding/json (numbers as float64). Each call
// decodes a new map.
func (r *AuthenticationResult) rawClaims() map[string]any {
	return jose.ClaimsMap(r.packed().Payload()) // the payload was checked to be a JSON object
}

// ValidateToken validates a token that reached the caller — an OpenID Connect ID token or an
// RFC 9068 JWT access token (typ at+jwt), whichever it is; Kind of the result says which — and
// returns who it speaks for. It is the Go form of the ones-oidc crate's validate_token.
//
// Options that fit one kind of token fix the kind (see VerifyOption): with ExpectAudience only
// access tokens are accepted, with ExpectNonce, ExpectAuthReqID, ExpectAtHashOf or MaxTokenAge
// only ID tokens; a token of the other kind fails with ErrInvalidTokenType, and options of both
// kinds fail with a *ConfigError naming the options.
//
// Checks, in order (OpenID Connect Core 1.0 §3.1.3.7, RFC 9068 §4, RFC 8725): at most 64 KiB;
// compact JWS of three strict base64url segments whose header (at most 8 KiB) and payload are
// JSON objects; "alg" in the allow-list (WithSigningAlgorithms); no crit, jwk, jku, x5u, x5c or
// b64 header; "kid", if any, at most 256 bytes; "typ" absent, JWT or at+jwt; a provider key that
// fits kid and alg (JWKS cache: 30 s, 10 minutes); the signature; then the
// claims: "iss" exactly the issuer; "aud" contains the client id (for access tokens:
// ExpectAudience, default the client id); "azp", when present, the client id, and required with
// several audiences (ID tokens); "sub" a non-empty string of at most 255 bytes; "exp" and "iat"
// required, "nbf" and "iat" checked with the client's leeway (WithLeeway), every NumericDate
// (exp, nbf, iat, auth_time) within 0 … 253402300799 (year 9999, fractions allowed, RFC 7519
// §2), and exp - iat at most 366 days; for access tokens also
// "client_id" and "jti" required (RFC 9068 §2.2). No claim is returned with an error, and errors
// never contain the token.
//
// A token that validated once is answered from memory until it expires, kept under a keyed hash
// of the token (AES-GMAC under random keys of the client's own; never the token) in a cache
// bounded by memory (WithTokenCacheBytes, default 64 MiB) that keeps the tokens asked for most
// often; the time checks and the
// per-call options run again on every call, and the entry is dropped when the key that verified
// it leaves the provider's JWKS. A cached token is never answered past the key set's max age
// (WithJWKSMaxAge): then the set is fetched again first. A hit allocates the result only when
// the caller keeps it: the method is inlined, so a caller that reads the result and drops it
// has it on its own stack (ValidateTokenInto reuses a result the caller keeps).
//
// A token that is not JWT-shaped (three dot-separated parts) is an opaque access token, as the ONES provider issues
// (RFC 6750 b64token syntax, at most 4096 bytes, else ErrMalformedToken without a
// request): it is validated by the provider's introspection endpoint (RFC 7662 §2, authenticated with a
// client assertion, token_type_hint access_token) into the same result, Kind KindAccessToken.
// An answer with "active" not true fails with ErrTokenInactive; one whose "iss" (when present)
// is not the issuer with ErrInvalidIssuer; one whose token_type is absent (oidc-provider omits
// it for refresh tokens, which are no bearer credentials) or neither Bearer nor access_token
// with ErrInvalidTokenType; exp, iat and nbf must be JSON numbers within 0 … 253402300799
// (year 9999; fractions allowed, RFC 7519 §2; an exp of 0 has expired) and are checked with the
// leeway; member names are exact (an answer with a member twice or a member read here in another
// case is refused); "aud", when present, must hold the
// ExpectAudience value (default the client id), and ExpectAudience fails on an answer without
// "aud"; one that names a user (username or preferred_username) without "sub" fails with
// ErrInvalidClaim; ExpectSubject and ExpectScope apply; options that fit ID tokens only fail with
// ErrInvalidTokenType without a request. A provider that cannot be asked gives
// ErrIntrospectionUnavailable. Answers are cached by a keyed hash of the token (never the token):
// active ones until the earlier of exp and WithIntrospectionMaxAge (default 5 minutes),
// refusals for 30 s, failures not at all; concurrent calls for one
// token share one introspection; at most 64 MiB of answers are kept
// (about 140,000 typical ones). At most 64 introspections are in flight at once
// (WithMaxIntrospections): a call that needs one more waits its turn, at most the request timeout
// and never past ctx, and then fails with ErrIntrospectionUnavailable, uncached.
func (c *OpenIDConnectClient) ValidateToken(ctx context.Context, raw string, opts ...VerifyOption) (res *AuthenticationResult, err error) {
	res = new(AuthenticationResult) // on the caller's stack if it drops res: this inlines
	if err = c.val.validateInto(ctx, raw, modeAny, opts, res); err != nil {
		res = nil
	}
	return
}

// ValidateTokenInto is ValidateToken with a result that the caller owns: it validates raw with
// the same checks and writes the result into *res instead of allocating one, so that a token
// the cache holds is validated without allocating a result (only the 32 bytes that hold its
// one-value audience and amr lists). It is for servers that validate a bearer token on every
// request at high rates and keep the result (ValidateToken allocates a result that its caller
// keeps): res can be a field of a per-request struct, or a handler's variable, and be used
// again. Every field of *res is overwritten; on an error *res is the zero result, never
// partly filled. The slices in res are allocated for each call and shared with nothing, so a
// copy of *res keeps them when res is used again. A nil res is a *ConfigError.
func (c *OpenIDConnectClient) ValidateTokenInto(ctx context.Context, raw string, res *AuthenticationResult, opts ...VerifyOption) error {
	if res == nil {
		return &ConfigError{Field: "res", Reason: "nil *AuthenticationResult"}
	}
	return c.val.validateInto(ctx, raw, modeAny, opts, res)
}

// VerifyIDToken validates an OpenID Connect ID token received from the token endpoint (OpenID
// Connect Core 1.0 §3.1.3.7, CIBA Core §10.1.1): the checks of ValidateToken, "typ" must be
// absent or JWT (never at+jwt, RFC 8725 §3.11), and "iat" must be at most MaxTokenAge old
// (default 5 minutes). Options add the nonce, auth_req_id, subject and
// at_hash checks; ExpectAudience is a usage error here (a *ConfigError). An
// opaque token is never an ID token: ErrInvalidTokenType, without asking the provider.
func (c *OpenIDConnectClient) VerifyIDToken(ctx context.Context, raw string, opts ...VerifyOption) (res *AuthenticationResult, err error) {
	res = new(AuthenticationResult) // on the caller's stack if it drops res: this inlines
	if err = c.val.validateInto(ctx, raw, modeIDToken, opts, res); err != nil {
		res = nil
	}
	return
}

// VerifyAccessToken validates a JWT access token (RFC 9068 §4): the checks of ValidateToken,
// "typ" must be at+jwt or application/at+jwt, "aud" must contain the ExpectAudience value
// (default the client id), and iss, exp, aud, sub, client_id, iat and jti are required (RFC 9068
// §2.2); one bound to a key by "cnf" (RFC 7800 §3.1: DPoP, RFC 9449 §7.1; mutual TLS, RFC 8705
// §3) fails with ErrInvalidTokenType, as an introspection answer with "cnf" does, since its proof
// of possession cannot be checked here. ExpectNonce, ExpectAuthReqID, ExpectAtHashOf and
// MaxTokenAge are a usage error here (a *ConfigError). An opaque token is validated by
// introspection, as ValidateToken says.
func (c *OpenIDConnectClient) VerifyAccessToken(ctx context.Context, raw string, opts ...VerifyOption) (res *AuthenticationResult, err error) {
	res = new(AuthenticationResult) // on the caller's stack if it drops res: this inlines
	if err = c.val.validateInto(ctx, raw, modeAccessToken, opts, res); err != nil {
		res = nil
	}
	return
}

// errBoundToken says why a sender-constrained access token is refused.
const errBoundToken = "sender-constrained (cnf): a DPoP- or certificate-bound token needs a proof of possession, not a bearer token"

// scratchSize is the stack buffer for decoding; longer tokens allocate.
const scratchSize = 2048

// validate validates raw into a new result, for the package's own callers. It is small enough
// to be inlined, so that the result of a caller that does not keep it (reads its fields, then
// drops it) lives on that caller's stack: validateInto does not let it escape. ValidateToken,
// VerifyIDToken and VerifyAccessToken repeat its body instead of calling it: with the call
// inlined they would be over the compiler's inlining budget (cost 94 of 80), and so would not
// be inlined themselves.
func (v *validator) validate(ctx context.Context, raw string, m mode, opts []VerifyOption) (res *AuthenticationResult, err error) {
	res = new(AuthenticationResult)
	if err = v.validateInto(ctx, raw, m, opts, res); err != nil {
		res = nil
	}
	return
}

// validateInto validates raw into into, which it zeroes first, so that an error leaves it
// zero. into never holds a pointer into itself (its slices are allocated, listRoom), so that
// it does not escape to the heap and a copy of it shares nothing with it once it is used again.
func (v *validator) validateInto(ctx context.Context, raw string, m mode, opts []VerifyOption, into *AuthenticationResult) error {
	*into = AuthenticationResult{}
	if len(raw) > maxTokenSize { // the only size check: before the cache lookup hashes raw
		return invalid(reasonTooLarge, "", "token longer than 64 KiB")
	}
	var o verifyOptions
	if m == modeIDToken {
		o.maxAge = defaultMaxTokenAge
	}
	if len(opts) > 0 { // options get a pointer: keep o itself off the heap
		p, fixed, err := applyOptions(m, opts)
		if err != nil {
			return err
		}
		o, m = *p, fixed
	}
	if !isJWT(raw) {
		return v.intro.validate(ctx, raw, m, &o, v.clientID, into)
	}
	now := v.now()
	// A hit is used only while the key set is within its max age: past it, the full path
	// refetches the set, so that a key the provider removed stops validating cached tokens too;
	// the refetch retires the key and drops its tokens.
	cached := v.cache != nil && len(raw) <= maxCachedToken
	var key cache.Key
	if cached {
		key = v.cache.c.Key(raw)
		if v.keys.fresh(now) {
			if e, ok := v.cache.c.Get(key); ok {
				if !e.key.retired.Load() {
					var cl jose.Claims
					room := newListRoom()
					p := e.claims()
					p.Unpack(&cl, room.aud) // in the room when it fits
					kind, alg := kindAlg(p)
					if err := v.check(&cl, kind, alg, m, &o, now); err != nil {
						if err.reason == reasonExpired {
							v.cache.c.Delete(key)
						}
						return err
					}
					v.fill(into, room, &cl, p, e.key)
					return nil
				}
				v.cache.c.Delete(key)
			}
		}
	}
	var cl jose.Claims
	e, err := v.verify(ctx, raw, m, &o, now, &cl)
	if err != nil {
		return err
	}
	p := e.claims()
	if cached && p.Compact() {
		v.cache.c.Set(key, e)
	}
	v.fill(into, newListRoom(), &cl, p, e.key)
	return nil
}

// verify is the full, uncached validation.
// cl receives the verified claims.
func (v *validator) verify(ctx context.Context, raw string, m mode, o *verifyOptions, now time.Time, cl *jose.Claims) (tokenEntry, *ValidationError) {
	tok, jerr := jose.Split(raw)
	if jerr != nil {
		return tokenEntry{}, fromJOSE(jerr)
	}
	var scratch [scratchSize]byte
	header, ok := jose.DecodeJSONPart(tok.HeaderPart(), scratch[:])
	if !ok {
		return tokenEntry{}, invalid(reasonMalformed, "", "header is not base64url of UTF-8 JSON")
	}
	hdr, jerr := jose.ParseHeader(header)
	if jerr != nil {
		return tokenEntry{}, fromJOSE(jerr)
	}
	if !v.algs.Has(hdr.Alg) {
		return tokenEntry{}, invalid(reasonUnsupportedAlgorithm, "alg", fmt.Sprintf("alg not accepted (accepted: %s)",
			strings.Join(v.algs.Names(), ", ")))
	}
	kind := KindIDToken
	switch {
	case hdr.Typ == jose.TypeOther:
		return tokenEntry{}, invalid(reasonInvalidType, "typ", "typ is neither JWT nor at+jwt")
	case hdr.Typ == jose.TypeAT && m == modeIDToken:
		return tokenEntry{}, invalid(reasonInvalidType, "typ", "an at+jwt access token is not an ID token")
	case hdr.Typ == jose.TypeJWT && m == modeAccessToken:
		return tokenEntry{}, invalid(reasonInvalidType, "typ", "typ is not at+jwt: not a JWT access token")
	case hdr.Typ == jose.TypeAT:
		kind = KindAccessToken
	}
	// Decode (not parse) the payload and the signature before the key lookup, so that a token
	// of bad base64 or UTF-8 is refused as malformed and never causes a JWKS fetch.
	payload, ok := jose.DecodeJSONPart(tok.PayloadPart(), scratch[:])
	if !ok {
		return tokenEntry{}, invalid(reasonMalformed, "", "payload is not base64url of UTF-8")
	}
	var sigBuf [512]byte // RSA up to 4096 bits; larger signatures allocate
	sig, ok := jose.DecodeSignature(tok.SignaturePart(), sigBuf[:])
	if !ok {
		return tokenEntry{}, invalid(reasonMalformed, "", "signature is not unpadded base64url")
	}
	key, err := v.keys.key(ctx, &hdr, o.trusted)
	if err != nil {
		return tokenEntry{}, err
	}
	if !jose.Verify(tok, sig, hdr.Alg, &key.PublicKey, scratch[:]) {
		return tokenEntry{}, invalid(reasonInvalidSignature, "", "signature does not verify with the provider's key")
	}
	// Only now, with the signature verified, are the claims parsed (RFC 8725 §3.1).
	if jerr := jose.ParseClaims(payload, cl); jerr != nil {
		return tokenEntry{}, fromJOSEClaims(jerr)
	}
	if err := v.check(cl, kind, hdr.Alg, m, o, now); err != nil {
		return tokenEntry{}, err
	}
	return newTokenEntry(payload, cl, kind, hdr.Alg, key), nil
}

// audienceHint says, for an access token checked against the default audience, how to name the
// API's own: a resource server that is not the client itself meets this first.
func audienceHint(defaulted bool) string {
	if defaulted {
		return " (the client id, by default; ExpectAudience names the API's audience)"
	}
	return ""
}

// check applies the claim rules to a verified token; it runs again on every cache hit.
func (v *validator) check(cl *jose.Claims, kind TokenKind, alg jose.Alg, m mode, o *verifyOptions, now time.Time) *ValidationError {
	if (m == modeIDToken && kind != KindIDToken) || (m == modeAccessToken && kind != KindAccessToken) {
		return invalid(reasonInvalidType, "typ", "token is a "+kind.String())
	}
	if cl.Has&jose.HasIss == 0 {
		return invalid(reasonInvalidIssuer, "iss", "iss missing")
	}
	if cl.Iss != v.issuer {
		return invalid(reasonInvalidIssuer, "iss", fmt.Sprintf("iss %q is not %q", sanitize(cl.Iss, 200), v.issuer))
	}
	want := v.clientID
	if kind == KindAccessToken && o.audience != "" {
		want = o.audience
	}
	if cl.Has&jose.HasAud == 0 || len(cl.Aud) == 0 {
		return invalid(reasonInvalidAudience, "aud", "aud missing or empty")
	}
	if !slices.Contains(cl.Aud, want) {
		return invalid(reasonInvalidAudience, "aud", fmt.Sprintf("aud does not contain %q%s", sanitize(want, 200),
			audienceHint(kind == KindAccessToken && o.audience == "")))
	}
	if kind == KindIDToken {
		if cl.Has&jose.HasAzp != 0 && cl.Azp != v.clientID {
			return invalid(reasonInvalidAudience, "azp", fmt.Sprintf("azp is not %q", v.clientID))
		}
		if len(cl.Aud) > 1 && cl.Has&jose.HasAzp == 0 {
			return invalid(reasonInvalidAudience, "azp", "azp required when aud has several values")
		}
	}
	if cl.Sub == "" {
		return invalid(reasonInvalidClaim, "sub", "sub missing or empty")
	}
	if len(cl.Sub) > maxSubjectLength {
		return invalid(reasonInvalidClaim, "sub", "sub longer than 255 characters")
	}
	nowS, lw := unixSeconds(now), v.leeway.Seconds()
	if cl.Has&jose.HasExp == 0 {
		return invalid(reasonInvalidClaim, "exp", "exp missing")
	}
	if off := nowS - cl.Exp - lw; off > 0 {
		e := invalid(reasonExpired, "exp", fmt.Sprintf("expired %s ago, beyond the leeway of %v%s",
			secondsText(nowS-cl.Exp), v.leeway, skewHint(off)))
		e.Err = &TokenExpiredError{Expiry: numericDate(cl.Exp)}
		return e
	}
	if off := cl.Nbf - nowS - lw; cl.Has&jose.HasNbf != 0 && off > 0 {
		return invalid(reasonNotYetValid, "nbf", fmt.Sprintf("not valid for another %s, beyond the leeway of %v%s",
			secondsText(cl.Nbf-nowS), v.leeway, skewHint(off)))
	}
	if cl.Has&jose.HasIat != 0 {
		if off := cl.Iat - nowS - lw; off > 0 {
			return invalid(reasonNotYetValid, "iat", fmt.Sprintf("issued %s in the future, beyond the leeway of %v%s",
				secondsText(cl.Iat-nowS), v.leeway, skewHint(off)))
		}
		if off := nowS - cl.Iat - o.maxAge.Seconds() - lw; kind == KindIDToken && o.maxAge > 0 && off > 0 {
			return invalid(reasonInvalidClaim, "iat", fmt.Sprintf("issued %s ago, more than %v plus the leeway%s",
				secondsText(nowS-cl.Iat), o.maxAge, skewHint(off)))
		}
	} else {
		return invalid(reasonInvalidClaim, "iat", "iat missing")
	}
	if life := cl.Exp - cl.Iat; life > maxTokenLifetime.Seconds() {
		return invalid(reasonInvalidClaim, "exp", fmt.Sprintf("lifetime (exp - iat) of %s beyond maxTokenLifetime (366 days)",
			secondsText(life)))
	}
	if kind == KindAccessToken { // RFC 9068 §2.2: also REQUIRED in JWT access tokens
		if cl.ClientID == "" {
			return invalid(reasonInvalidClaim, "client_id", "client_id missing or not a non-empty string")
		}
		if cl.Has&jose.HasJti == 0 {
			return invalid(reasonInvalidClaim, "jti", "jti missing or not a non-empty string")
		}
		if cl.Has&jose.HasCnf != 0 { // RFC 9449 §7.1, RFC 8705 §3: the proof is the point
			return invalid(reasonInvalidType, "cnf", errBoundToken)
		}
	}
	if o.hasSubject && cl.Sub != o.subject {
		return invalid(reasonInvalidClaim, "sub", "sub is not the expected subject")
	}
	if kind != KindIDToken {
		return checkScopes(cl.Scope, o.scopes)
	}
	if o.hasNonce && (cl.Has&jose.HasNonce == 0 || cl.Nonce != o.nonce) {
		return invalid(reasonInvalidClaim, "nonce", "nonce missing or not the one sent")
	}
	if o.hasAuthReqID && cl.Has&jose.HasAuthReqID != 0 && cl.AuthReqID != o.authReqID {
		return invalid(reasonInvalidClaim, authReqIDClaim, "auth_req_id is not the one of this request")
	}
	if o.hasAccessToken && cl.Has&jose.HasAtHash != 0 && cl.AtHash != jose.AtHash(alg, o.accessToken) {
		return invalid(reasonInvalidClaim, "at_hash", "at_hash does not match the access token")
	}
	return nil
}

// listRoom is where the one-value audience and amr lists of a result are kept: empty slices of
// capacity one (a list of more values is allocated by append).
type listRoom struct{ aud, amr []string }

// newListRoom returns the room for the one-value lists of a result: a new array of two, so
// that a result never holds a pointer into itself (it stays where its owner put it, on the
// stack if it can, and a copy of it shares nothing with it once it is used again).
func newListRoom() listRoom {
	lists := new([2]string)
	return listRoom{aud: lists[0:0:1], amr: lists[1:1:2]}
}

// fill makes r the AuthenticationResult of the verified claims cl, packed in p, verified by
// key; one-value lists are kept in room (newListRoom). r shares nothing mutable with cl, p or a
// cache entry: its slices are its own (cl.Aud may be in room already).
func (v *validator) fill(r *AuthenticationResult, room listRoom, cl *jose.Claims, p jose.Packed, key *jwk) {
	kind, alg := kindAlg(p)
	r.Kind, r.Algorithm, r.KeyID, r.claims, r.dec = kind, alg.String(), key.kid, packedStart(p), v.dec
	aud := cl.Aud // a new slice, or in room already
	if len(aud) <= cap(room.aud) {
		aud = append(room.aud, aud...) // one allocation fewer; never nil
	}
	var amr []string // nil without values, on a cache hit as on the first validation
	switch {
	case len(cl.Amr) > 0:
		amr = append(room.amr, cl.Amr...)
	case p.HasAmr():
		amr = p.AppendAmr(room.amr)
	}
	// Field by field, not a composite literal: assigning a literal to *e copies a temporary
	// with the bulk write barrier, which costs more than the stores themselves on a cache hit.
	e := &r.Entity
	e.Kind = EntityUser
	e.Issuer = cl.Iss
	e.Subject = cl.Sub
	e.Audience = aud
	e.Scope = cl.Scope
	e.Username = cl.Username
	e.Name = cl.Name
	e.Email = cl.Email
	e.ClientID = cl.ClientID
	e.Role = cl.Role
	e.AuthMethods = amr
	e.ACR = cl.Acr
	e.Expiry = numericDate(cl.Exp)
	if e.ClientID == "" {
		e.ClientID = cl.Azp
	}
	if e.Role == "" {
		e.Role = cl.IdpRole
	}
	if e.ClientID != "" && e.Subject == e.ClientID && e.Username == "" {
		e.Kind = EntityDevice
	}
	if cl.Has&jose.HasIat != 0 {
		e.IssuedAt = numericDate(cl.Iat)
	}
	if cl.Has&jose.HasAuthTime != 0 {
		e.AuthTime = numericDate(cl.AuthTime)
	}
}
