package onesoidc

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/ones-now/onesoidc/internal/cache"
	"github.com/ones-now/onesoidc/internal/jose"
)

// Opaque access tokens (RFC 7662): ONES access tokens are opaque strings, so a resource server
// learns what one stands for by asking the provider's introspection endpoint. The answers are
// cached per client, keyed by a keyed hash of the token: the token itself is never kept.

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
	// introspectionCacheBytes is the memory the introspection cache of a client may hold: 64 MiB,
	// about 140,000 answers for a typical user token of ONES or oidc-provider (about 460 bytes an
	// entry, its 250-byte answer included), so that a server's active users stay cached. It bounds
	// memory, not a count: eviction keeps the tokens asked for most often (W-TinyLFU), so a working
	// set larger than the budget keeps a high hit rate, and an answer that would cost more than an
	// eighth of the budget is not kept.
	introspectionCacheBytes = 64 << 20

	// maxOpaqueTokenSize bounds the opaque tokens sent to introspection: ONES and oidc-provider
	// tokens are 43 characters, and a longer string is refused as malformed without a request,
	// so that junk does not reach the provider.
	maxOpaqueTokenSize = 4096

	// defaultMaxIntrospections is how many introspection requests token validation keeps in
	// flight at once (WithMaxIntrospections).
	defaultMaxIntrospections = 64
)

// WithMaxIntrospections bounds how many introspection requests (RFC 7662) token validation
// (ValidateToken, VerifyAccessToken, RequireToken) has in flight at once, for tokens that are not
// in the cache (default 64; between 1 and 10,000). A validation that needs one more waits for one
// to end, in order of arrival, at most as long as a request may take (WithRequestTimeout, 10 s by
// default) and never past its context; then it fails with ErrIntrospectionUnavailable
// (RequireToken answers 503), which is not cached. Anyone can send random opaque tokens, each of
// which costs a signed client assertion and a request to the provider: without a bound a flood
// of them would hold any number of requests open at the provider. Cached tokens are not held
// back, and a validation that finds the answer cached once it may ask does not ask.
// IntrospectToken, called directly, is not counted.
func WithMaxIntrospections(n int) Option {
	return func(o *options) {
		if n < 1 || n > 10_000 {
			o.fail("WithMaxIntrospections", "the bound must be between 1 and 10000, got %d", n)
			return
		}
		o.validation.maxIntrospections = n
	}
}

// WithIntrospectionMaxAge sets how long an active introspection answer is reused at most
// (default 5 minutes; between 1 second and 1 hour). Shorter means a
// token revoked at the provider stops working sooner, at the cost of more introspections.
// Answers are cached under a hash of the token (never the token) in at most 64 MiB per client
// (about 140,000 answers of a typical user token), keeping the tokens asked for most often; a
// refusal is reused for 30 seconds, a failure to reach the provider never.
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

// introspector validates opaque tokens through introspection. It is safe for concurrent use.
type introspector struct {
	introspect func(ctx context.Context, token string) (*IntrospectionResult, error)
	enabled    bool // the provider has an introspection endpoint
	issuer     string
	leeway     time.Duration
	maxAge     time.Duration
	now        func() time.Time

	introCache *cache.Cache[introEntry] // introspectionCacheBytes, introEntryCost
	sf         singleflight.Group
	inFlight   chan struct{} // a slot per validation that may introspect (WithMaxIntrospections); nil: no bound
	slotWait   time.Duration // the longest wait for a slot
}

// validate answers an opaque token (RFC 7662 §2), from the cache when it can, in into (zeroed
// by validator.validateInto).
func (in *introspector) validate(ctx context.Context, raw string, m mode, o *verifyOptions, clientID string, into *AuthenticationResult) error {
	if m == modeIDToken {
		return invalid(reasonInvalidType, "typ", "not a JWT: an opaque token is an access token, never an ID token")
	}
	if len(raw) > maxOpaqueTokenSize {
		return invalid(reasonMalformed, "", "not a JWT, and longer than an opaque token may be (4 KiB)")
	}
	if in == nil || !in.enabled {
		return invalid(reasonMalformed, "", "not a JWT, and the provider has no introspection endpoint for opaque tokens")
	}
	key := in.introCache.Key(raw) // a keyed hash of the token, never the token
	now := in.now()
	e, ok := in.cached(key, now)
	if !ok {
		// Only tokens that passed this check are ever cached, so a hit skips it.
		if !jose.IsB64Token(raw) {
			return invalid(reasonMalformed, "", "neither a JWT nor an opaque bearer token (RFC 6750 §2.1 b64token)")
		}
		var err error
		if e, err = in.fetch(ctx, raw, key); err != nil {
			return err
		}
	}
	if e.reject != nil {
		r := *e.reject // the caller's own copy: the cached one is shared
		return &r
	}
	var cl jose.Claims
	r, room := into, newListRoom()
	p := jose.PackedAt(e.text)
	kind, ok := in.unpack(p, &cl, room.aud) // in the room when it fits
	if !ok {
		in.introCache.Delete(key)
		return &ValidationError{reason: reasonIntrospectionUnavailable, detail: "cached introspection answer unreadable"}
	}
	exp := answerDate(cl.Exp)
	if err := in.check(&cl, exp, o, now, clientID); err != nil {
		return err
	}
	// Field by field: the strings are the entry's (immutable), the audience r's own.
	r.Kind, r.claims = KindAccessToken, packedStart(p)
	ent := &r.Entity
	ent.Kind, ent.Issuer, ent.Subject, ent.Audience, ent.Scope = kind, in.issuer, cl.Sub, cl.Aud, cl.Scope
	ent.Username, ent.ClientID, ent.Role, ent.ACR = cl.Username, cl.ClientID, cl.Role, cl.Acr
	ent.IssuedAt, ent.Expiry = answerDate(cl.Iat), exp
	return nil
}

// fetch introspects raw once for any number of concurrent callers and caches the answer. A
// caller that gives up does not cancel the introspection the others wait for.
//
// Each caller holds a slot of inFlight (WithMaxIntrospections) until the introspection it waits
// for ends, or hands it to a goroutine that does when it gives up first, so that no more
// introspections than slots are ever in flight. A caller that finds no free slot waits for one
// (channel senders are served in order), at most slotWait, and looks in the cache again before
// it asks: the introspection it waited behind may have been for the same token.
func (in *introspector) fetch(ctx context.Context, raw string, key cache.Key) (introEntry, error) {
	if in.inFlight != nil {
		if err := in.takeSlot(ctx); err != nil {
			return introEntry{}, err
		}
		if e, ok := in.cached(key, in.now()); ok {
			<-in.inFlight
			return e, nil
		}
	}
	fctx := context.WithoutCancel(ctx)
	ch := in.sf.DoChan(string(key[:]), func() (any, error) {
		res, err := in.introspect(fctx, raw)
		if err != nil {
			return nil, &ValidationError{reason: reasonIntrospectionUnavailable, detail: "introspection failed", Err: err}
		}
		e := in.entryFor(res, []string{raw})
		in.put(key, e)
		return e, nil
	})
	select {
	case <-ctx.Done():
		if in.inFlight != nil {
			go func() { <-ch; <-in.inFlight }() // the slot is free when the introspection ends
		}
		return introEntry{}, &ValidationError{reason: reasonIntrospectionUnavailable, detail: "gave up waiting for introspection", Err: ctx.Err()}
	case r := <-ch:
		if in.inFlight != nil {
			<-in.inFlight
		}
		if r.Err != nil {
			ve := *r.Err.(*ValidationError) // each waiter its own copy
			return introEntry{}, &ve
		}
		return r.Val.(introEntry), nil
	}
}

// cached returns the cached answer of key while it is valid at now; one past its time is
// deleted, and is a miss.
func (in *introspector) cached(key cache.Key, now time.Time) (introEntry, bool) {
	e, ok := in.introCache.Get(key)
	if ok && !now.Before(e.until) {
		in.introCache.Delete(key)
		return introEntry{}, false
	}
	return e, ok
}

// takeSlot takes a slot of inFlight, waiting at most slotWait and never past the end of ctx.
func (in *introspector) takeSlot(ctx context.Context) error {
	select {
	case in.inFlight <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(in.slotWait)
	defer t.Stop()
	select {
	case in.inFlight <- struct{}{}:
		return nil
	case <-ctx.Done():
		return &ValidationError{reason: reasonIntrospectionUnavailable, detail: "gave up waiting for one of the WithMaxIntrospections", Err: ctx.Err()}
	case <-t.C:
		return &ValidationError{reason: reasonIntrospectionUnavailable,
			detail: fmt.Sprintf("%d introspections in flight for %v (WithMaxIntrospections)", cap(in.inFlight), in.slotWait)}
	}
}

// entry turns an introspection answer into a cache entry: the answer packed, reused until the
// earlier of its exp and the max age, or why the token is refused (kept for 30 s).
func (in *introspector) entry(res *IntrospectionResult) introEntry { return in.entryFor(res, nil) }

// entryFor is entry for an answer about a request that carried secrets (the token itself):
// the reasons of a refusal quote the answer's iss or token_type without them, since a provider
// can echo the token there.
func (in *introspector) entryFor(res *IntrospectionResult, secrets []string) introEntry {
	now := in.now()
	reject := func(err *ValidationError) introEntry {
		return introEntry{until: now.Add(min(introspectionNegativeTTL, in.maxAge)), reject: err}
	}
	lw := in.leeway
	switch {
	case !res.Active:
		return reject(invalid(reasonInactive, "active", "the provider says the token is not active"))
	case res.Issuer != "" && res.Issuer != in.issuer:
		return reject(invalid(reasonInvalidIssuer, "iss", fmt.Sprintf("iss %q is not %q", quoteProvider(res.Issuer, secrets, 200), in.issuer)))
	case res.TokenType == "":
		// RFC 7662 §2.2 makes token_type optional, but oidc-provider leaves it out exactly for
		// refresh tokens: without it a refresh token would pass as an access token.
		return reject(invalid(reasonInvalidType, "token_type", "the answer has no token_type: not known to be an access token"))
	case res.bound: // RFC 8705 §3.2 answers Bearer with cnf for a certificate-bound token
		return reject(invalid(reasonInvalidType, "cnf", errBoundToken))
	case !strings.EqualFold(res.TokenType, "Bearer") && !strings.EqualFold(res.TokenType, "access_token"):
		return reject(invalid(reasonInvalidType, "token_type", fmt.Sprintf("token_type %q is not a bearer access token",
			quoteProvider(res.TokenType, secrets, 40))))
	case !res.Expiry.IsZero() && now.After(res.Expiry.Add(lw)):
		e := invalid(reasonExpired, "exp", "the provider answered active for a token past its exp")
		e.Err = &TokenExpiredError{Expiry: res.Expiry}
		return reject(e)
	case !res.NotBefore.IsZero() && res.NotBefore.After(now.Add(lw)):
		return introEntry{until: now, reject: invalid(reasonNotYetValid, "nbf", "not valid yet")}
	case !res.IssuedAt.IsZero() && res.IssuedAt.After(now.Add(lw)):
		return introEntry{until: now, reject: invalid(reasonNotYetValid, "iat", "issued in the future")}
	case res.Subject == "" && res.ClientID == "":
		return reject(invalid(reasonInvalidClaim, "sub", "the answer names neither sub nor client_id"))
	case len(res.Subject) > maxSubjectLength:
		return reject(invalid(reasonInvalidClaim, "sub", "sub longer than 255 characters"))
	}
	until := now.Add(in.maxAge)
	if !res.Expiry.IsZero() && res.Expiry.Before(until) {
		until = res.Expiry
	}
	cl, kind := in.claims(res)
	if kind == EntityUser && cl.Sub == "" { // a user without sub: who it is cannot be told apart
		return reject(invalid(reasonInvalidClaim, "sub", "the answer names a user (username) but no sub"))
	}
	return introEntry{text: packAnswer(string(res.Raw), &cl, kind).Ptr(), until: until}
}

// claims returns what an active answer res says of the token as the claims of its result, and
// whether that speaks for a user or a device (a token with no user whose sub, if any, is its
// client_id): sub (the client id for a device), client_id, scope, username (else
// preferred_username), role (else idp_role), acr, aud (non-nil when the answer has it, even
// empty), and exp and iat as the numbers of the answer (0 when it has none). Has stays 0: these
// are not claims ParseClaims read (AuthenticationResult.Claims decodes them with encoding/json).
func (in *introspector) claims(res *IntrospectionResult) (jose.Claims, EntityKind) {
	var extra struct {
		Role    string          `json:"role"`
		IDPRole string          `json:"idp_role"`
		ACR     string          `json:"acr"`
		Name    string          `json:"preferred_username"`
		Exp     json.RawMessage `json:"exp"` // NumericDates, checked by parseIntrospection
		Iat     json.RawMessage `json:"iat"`
	}
	_ = json.Unmarshal(res.Raw, &extra) // optional members; a wrong type leaves them empty
	cl := jose.Claims{Sub: res.Subject, ClientID: res.ClientID, Scope: res.Scope, Username: res.Username,
		Role: extra.Role, Acr: extra.ACR, Aud: res.Audience}
	if cl.Username == "" {
		cl.Username = extra.Name
	}
	if cl.Role == "" {
		cl.Role = extra.IDPRole
	}
	if extra.Exp != nil {
		cl.Exp, _ = numericDateValue(extra.Exp)
	}
	if extra.Iat != nil {
		cl.Iat, _ = numericDateValue(extra.Iat)
	}
	if cl.Username == "" && cl.ClientID != "" && (cl.Sub == "" || cl.Sub == cl.ClientID) {
		cl.Sub = cl.ClientID
		return cl, EntityDevice
	}
	return cl, EntityUser
}

// check applies the per-call expectations to the claims cl of a cached answer, which expires at
// exp: audience (when the answer has "aud"), subject and scope.
func (in *introspector) check(cl *jose.Claims, exp time.Time, o *verifyOptions, now time.Time, clientID string) *ValidationError {
	if !exp.IsZero() && now.After(exp.Add(in.leeway)) {
		x := invalid(reasonExpired, "exp", "the token expired")
		x.Err = &TokenExpiredError{Expiry: exp}
		return x
	}
	switch want := cmpOr(o.audience, clientID); {
	case len(cl.Aud) > 0 && !slices.Contains(cl.Aud, want):
		return invalid(reasonInvalidAudience, "aud", fmt.Sprintf("aud does not contain %q%s", sanitize(want, 200),
			audienceHint(o.audience == "")))
	case len(cl.Aud) == 0 && o.audience != "":
		return invalid(reasonInvalidAudience, "aud", "the introspection answer has no aud to check ExpectAudience against")
	}
	if o.hasSubject && cl.Sub != o.subject {
		return invalid(reasonInvalidClaim, "sub", "sub is not the expected subject")
	}
	return checkScopes(cl.Scope, o.scopes)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// put caches e under key, unless it has already run out. The cache makes room by itself and
// does not keep an entry over an eighth of its budget.
func (in *introspector) put(key cache.Key, e introEntry) {
	if in.now().Before(e.until) {
		in.introCache.Set(key, e)
	}
}

// len returns the number of cached answers.
func (in *introspector) len() int { return in.introCache.Len() }

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
