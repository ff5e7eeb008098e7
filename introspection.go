package onesoidc

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/ones-now/onesoidc/internal/cache"
	"github.com/ones-now/onesoidc/internal/jose"
)

// Opaque access tokens (RFC 7662): ONES access tokens are opaque strings, so a resource server
// learns what one stands for by asking the provider's introspection endpoint. The answers are
// cached per client, keyed by the SHA-256 of the token: the token itself is never kept.

// Bounds of the introspection cache.
const (
	// defaultIntrospectionMaxAge is how long an active answer is reused at most (WithIntrospectionMaxAge):
	// a token revoked at the provider may pass for this long. An answer is never reused past the
	// token's "exp".
	defaultIntrospectionMaxAge = 5 * time.Minute
	// introspectionNegativeTTL is how long a refusal (an inactive token, or an answer with
	// another issuer) is reused, so that replaying a dead token costs one introspection per 30 s.
	// Failures to reach the provider are never cached.
	introspectionNegativeTTL = 30 * time.Second
	// introspectionCacheEntries and introspectionCacheBytes bound the cache: at most 10,000
	// answers, of at most 16 MiB of answer bodies in all. When full, expired entries go first,
	// then arbitrary ones.
	introspectionCacheEntries = 10_000
	introspectionCacheBytes   = 16 << 20

	// maxOpaqueTokenSize bounds the opaque tokens sent to introspection: ONES and oidc-provider
	// tokens are 43 characters, and a longer string is refused as malformed without a request,
	// so that junk does not reach the provider.
	maxOpaqueTokenSize = 4096
)

// WithIntrospectionMaxAge sets how long an active introspection answer is reused at most
// (default 5 minutes; between 1 second and 1 hour). Shorter means a
// token revoked at the provider stops working sooner, at the cost of more introspections.
func WithIntrospectionMaxAge(d time.Duration) Option {
	return func(o *options) {
		if d < time.Second || d > time.Hour {
			o.fail("WithIntrospectionMaxAge", "max age must be between 1s and 1h, got %v", d)
			return
		}
		o.validation.introMaxAge = d
	}
}

// isJWT reports whether token has the shape of a JWT, which ValidateToken, VerifyAccessToken and
// RequireToken validate locally rather than by introspection: a compact JWS is three
// dot-separated segments whose first is the base64url of a JSON object, so it starts with "eyJ"
// (RFC 7515 §7.1). Tokens that start with "eyJ" and hold any dot, and tokens of exactly three or
// five dot-separated segments (the segment counts of a compact JWS or JWE, RFC 7516 §7.1), go
// the JWT way too, where anything but a well-formed JWS is refused as malformed. Anything else
// is an opaque token, validated by introspection (RFC 7662): ONES and oidc-provider access
// tokens are base64url strings without dots. A one-segment token that happens to start with
// "eyJ" is opaque: a random 43-character token does so once in 262,144.
func isJWT(token string) bool { return jose.IsJWTShaped(token) }

// introEntry is one cached introspection answer: a result to hand out, or a refusal.
type introEntry struct {
	until  time.Time        // reused until then
	reject *ValidationError // non-nil: the token is refused
	hasAud bool
	exp    int64 // 0 when the answer had none
	result AuthenticationResult
	size   int
}

// introspector validates opaque tokens through introspection. It is safe for concurrent use.
type introspector struct {
	introspect func(ctx context.Context, token string) (*IntrospectionResult, error)
	enabled    bool // the provider has an introspection endpoint
	issuer     string
	leeway     time.Duration
	maxAge     time.Duration
	now        func() time.Time

	maxEntries, maxBytes int
	mu                   sync.RWMutex
	entries              map[cache.Key]*introEntry
	bytes                int
	sf                   singleflight.Group
}

// validate answers an opaque token (RFC 7662 §2), from the cache when it can.
func (in *introspector) validate(ctx context.Context, raw string, m mode, o *verifyOptions, clientID string) (*AuthenticationResult, error) {
	if m == modeIDToken {
		return nil, invalid(reasonInvalidType, "typ", "not a JWT: an opaque token is an access token, never an ID token")
	}
	if len(raw) > maxOpaqueTokenSize {
		return nil, invalid(reasonMalformed, "", "not a JWT, and longer than an opaque token may be (4 KiB)")
	}
	if in == nil || !in.enabled {
		return nil, invalid(reasonMalformed, "", "not a JWT, and the provider has no introspection endpoint for opaque tokens")
	}
	key := cache.KeyOf(raw) // the SHA-256 of the token, never the token
	now := in.now()
	in.mu.RLock()
	e := in.entries[key]
	in.mu.RUnlock()
	if e == nil || !now.Before(e.until) {
		// Only tokens that passed this check are ever cached, so a hit skips it.
		if !jose.IsB64Token(raw) {
			return nil, invalid(reasonMalformed, "", "neither a JWT nor an opaque bearer token (RFC 6750 §2.1 b64token)")
		}
		var err error
		if e, err = in.fetch(ctx, raw, key); err != nil {
			return nil, err
		}
	}
	if e.reject != nil {
		r := *e.reject // the caller's own copy: the cached one is shared
		return nil, &r
	}
	if err := in.check(e, o, now, clientID); err != nil {
		return nil, err
	}
	return e.result.clone(), nil
}

// fetch introspects raw once for any number of concurrent callers and caches the answer. A
// caller that gives up does not cancel the introspection the others wait for.
func (in *introspector) fetch(ctx context.Context, raw string, key cache.Key) (*introEntry, error) {
	fctx := context.WithoutCancel(ctx)
	ch := in.sf.DoChan(string(key[:]), func() (any, error) {
		res, err := in.introspect(fctx, raw)
		if err != nil {
			return nil, &ValidationError{reason: reasonIntrospectionUnavailable, detail: "introspection failed", Err: err}
		}
		e := in.entry(res)
		in.put(key, e)
		return e, nil
	})
	select {
	case <-ctx.Done():
		return nil, &ValidationError{reason: reasonIntrospectionUnavailable, detail: "gave up waiting for introspection", Err: ctx.Err()}
	case r := <-ch:
		if r.Err != nil {
			ve := *r.Err.(*ValidationError) // each waiter its own copy
			return nil, &ve
		}
		return r.Val.(*introEntry), nil
	}
}

// entry turns an introspection answer into a cache entry: the result, or why the token is
// refused (kept for 30 s).
func (in *introspector) entry(res *IntrospectionResult) *introEntry {
	now := in.now()
	reject := func(err *ValidationError) *introEntry {
		return &introEntry{until: now.Add(min(introspectionNegativeTTL, in.maxAge)), reject: err}
	}
	lw := in.leeway
	switch {
	case !res.Active:
		return reject(invalid(reasonInactive, "active", "the provider says the token is not active"))
	case res.Issuer != "" && res.Issuer != in.issuer:
		return reject(invalid(reasonInvalidIssuer, "iss", fmt.Sprintf("iss %q is not %q", sanitize(res.Issuer, 200), in.issuer)))
	case res.TokenType == "":
		// RFC 7662 §2.2 makes token_type optional, but oidc-provider leaves it out exactly for
		// refresh tokens: without it a refresh token would pass as an access token.
		return reject(invalid(reasonInvalidType, "token_type", "the answer has no token_type: not known to be an access token"))
	case !strings.EqualFold(res.TokenType, "Bearer") && !strings.EqualFold(res.TokenType, "access_token"):
		return reject(invalid(reasonInvalidType, "token_type", fmt.Sprintf("token_type %q is not a bearer access token",
			sanitize(res.TokenType, 40))))
	case !res.Expiry.IsZero() && now.After(res.Expiry.Add(lw)):
		e := invalid(reasonExpired, "exp", "the provider answered active for a token past its exp")
		e.Err = &TokenExpiredError{Expiry: res.Expiry}
		return reject(e)
	case !res.NotBefore.IsZero() && res.NotBefore.After(now.Add(lw)):
		return &introEntry{until: now, reject: invalid(reasonNotYetValid, "nbf", "not valid yet")}
	case !res.IssuedAt.IsZero() && res.IssuedAt.After(now.Add(lw)):
		return &introEntry{until: now, reject: invalid(reasonNotYetValid, "iat", "issued in the future")}
	case res.Subject == "" && res.ClientID == "":
		return reject(invalid(reasonInvalidClaim, "sub", "the answer names neither sub nor client_id"))
	case len(res.Subject) > maxSubjectLength:
		return reject(invalid(reasonInvalidClaim, "sub", "sub longer than 255 characters"))
	}
	var extra struct {
		Role    string `json:"role"`
		IDPRole string `json:"idp_role"`
		ACR     string `json:"acr"`
		Name    string `json:"preferred_username"`
	}
	_ = json.Unmarshal(res.Raw, &extra) // optional members; a wrong type leaves them empty
	ent := AuthenticatedEntity{
		Kind:     EntityUser,
		Issuer:   in.issuer,
		Subject:  res.Subject,
		Audience: slices.Clone(res.Audience),
		Scope:    res.Scope,
		Username: res.Username,
		ClientID: res.ClientID,
		Role:     extra.Role,
		ACR:      extra.ACR,
		IssuedAt: res.IssuedAt,
		Expiry:   res.Expiry,
	}
	if ent.Username == "" {
		ent.Username = extra.Name
	}
	if ent.Role == "" {
		ent.Role = extra.IDPRole
	}
	if ent.Username == "" && ent.ClientID != "" && (ent.Subject == "" || ent.Subject == ent.ClientID) {
		ent.Kind, ent.Subject = EntityDevice, ent.ClientID
	}
	until := now.Add(in.maxAge)
	if !res.Expiry.IsZero() && res.Expiry.Before(until) {
		until = res.Expiry
	}
	return &introEntry{
		until:  until,
		hasAud: len(res.Audience) > 0,
		exp:    unixOrZero(res.Expiry),
		result: AuthenticationResult{Entity: ent, Kind: KindAccessToken, claims: rawClaims(string(res.Raw))},
		size:   len(res.Raw) + 256,
	}
}

// check applies the per-call expectations to a cached answer: audience (when the answer has
// "aud"), subject and scope.
func (in *introspector) check(e *introEntry, o *verifyOptions, now time.Time, clientID string) *ValidationError {
	ent := &e.result.Entity
	if e.exp != 0 && now.After(ent.Expiry.Add(in.leeway)) {
		x := invalid(reasonExpired, "exp", "the token expired")
		x.Err = &TokenExpiredError{Expiry: ent.Expiry}
		return x
	}
	switch want := cmpOr(o.audience, clientID); {
	case e.hasAud && !containsString(ent.Audience, want):
		return invalid(reasonInvalidAudience, "aud", fmt.Sprintf("aud does not contain %q", sanitize(want, 200)))
	case !e.hasAud && o.audience != "":
		return invalid(reasonInvalidAudience, "aud", "the introspection answer has no aud to check ExpectAudience against")
	}
	if o.hasSubject && ent.Subject != o.subject {
		return invalid(reasonInvalidClaim, "sub", "sub is not the expected subject")
	}
	return checkScopes(ent.Scope, o.scopes)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// put caches e under key, first making room: expired entries go, then arbitrary ones (map
// order), so that the cache never outgrows its bounds.
func (in *introspector) put(key cache.Key, e *introEntry) {
	now := in.now()
	if !now.Before(e.until) || e.size > in.maxBytes/16 {
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if old := in.entries[key]; old != nil {
		in.bytes -= old.size
		delete(in.entries, key)
	}
	if len(in.entries) >= in.maxEntries || in.bytes+e.size > in.maxBytes {
		for k, v := range in.entries {
			if !now.Before(v.until) {
				delete(in.entries, k)
				in.bytes -= v.size
			}
		}
		drop := max(in.maxEntries/16, 1)
		for k, v := range in.entries {
			if drop <= 0 && len(in.entries) < in.maxEntries && in.bytes+e.size <= in.maxBytes {
				break
			}
			delete(in.entries, k)
			in.bytes -= v.size
			drop--
		}
	}
	in.entries[key] = e
	in.bytes += e.size
}

// len returns the number of cached answers.
func (in *introspector) len() int {
	in.mu.RLock()
	defer in.mu.RUnlock()
	return len(in.entries)
}

// checkScopes requires every scope in want to be in the space-separated scope (RFC 6749 §3.3).
func checkScopes(scope string, want []string) *ValidationError {
	for _, w := range want {
		found := false
		for s := range strings.FieldsSeq(scope) {
			if s == w {
				found = true
				break
			}
		}
		if !found {
			return invalid(reasonInsufficientScope, "scope", fmt.Sprintf("scope lacks %q", sanitize(w, 100)))
		}
	}
	return nil
}

// ExpectScope requires the access token's "scope" (RFC 9068 §2.2.3, RFC 7662 §2.2) to hold
// every one of scopes; a token without one of them fails with ErrInsufficientScope, which
// RequireToken answers 403 insufficient_scope (RFC 6750 §3.1). It fits access tokens only:
// ValidateToken then rejects ID tokens (see VerifyOption).
func ExpectScope(scopes ...string) VerifyOption {
	return func(o *verifyOptions) {
		o.scopes = append(o.scopes, scopes...)
		if o.atOnly == "" {
			o.atOnly = "ExpectScope"
		}
	}
}

// unixOrZero is t in Unix seconds, or 0 for the zero time.
func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}
