package onesoidc

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gojose "github.com/go-jose/go-jose/v4"
	"github.com/ones-now/onesoidc/internal/jose"
	"golang.org/x/sync/singleflight"
)

// The provider's JWK Set (RFC 7517 §5), fetched from jwks_uri (OpenID Connect Discovery 1.0 §3)
// and cached per client. Lookups read an immutable snapshot through an atomic pointer; fetching is serialized by
// a mutex-guarded state machine and shared by all callers through singleflight.

// Defaults of the JWKS cache.
const (
	// defaultJWKSCooldown is the least time between two JWKS fetches caused by tokens whose key
	// is unknown (WithJWKSCooldown).
	defaultJWKSCooldown = 30 * time.Second
	// defaultJWKSMaxAge is how long a fetched JWKS is used before it is fetched again
	// (WithJWKSMaxAge).
	defaultJWKSMaxAge = 10 * time.Minute

	maxJWKSKeys      = 100
	maxNegativeKids  = 1024 // bound of the negative cache
	maxSkipReasons   = 16   // bound of the reasons kept for skipped keys
	minRSAKeyBits    = 2048
	initialFailRetry = 5 * time.Second // retry delay after a failed fetch when no keys are cached
)

// jwk is one usable verification key of the provider.
type jwk struct {
	kid    string
	hasKid bool
	alg    jose.Alg // the JWK's "alg", or jose.AlgUnknown when it has none
	ecAlg  jose.Alg // ES256, ES384 or ES512 by curve
	// The public key: one of RSA, EC (with ECOrder, its curve order) and Ed is set.
	jose.PublicKey

	// retired is set when the key has left the provider's JWKS; verified tokens cached for it
	// are then dropped.
	retired atomic.Bool
}

// fits reports whether the key may verify alg: the JWK's alg, if any, must equal it, RSA
// algorithms need an RSA key, ES256/384/512 an EC key on P-256/384/521, EdDSA an Ed25519 key
// (RFC 8725 §3.1).
func (k *jwk) fits(alg jose.Alg) bool {
	if k.alg != jose.AlgUnknown && k.alg != alg {
		return false
	}
	switch {
	case alg.IsRSA():
		return k.RSA != nil
	case alg.IsEC():
		return k.EC != nil && k.ecAlg == alg
	case alg == jose.EdDSA:
		return k.Ed != nil
	}
	return false
}

// same reports whether o is the same key as k, so that a refetch keeps k's identity.
func (k *jwk) same(o *jwk) bool {
	if k.kid != o.kid || k.hasKid != o.hasKid || k.alg != o.alg {
		return false
	}
	switch {
	case k.RSA != nil:
		return o.RSA != nil && k.RSA.Equal(o.RSA)
	case k.EC != nil:
		return o.EC != nil && k.EC.Equal(o.EC)
	default:
		return o.Ed != nil && k.Ed.Equal(o.Ed)
	}
}

// keySet is an immutable snapshot of the usable keys.
type keySet struct {
	keys      []*jwk
	byKid     map[string][]*jwk
	refreshAt time.Time // fetch again at or after this time (max age, or retry after a failure)
	// skipped says why keys of the document were not usable, by kid ("" for keys without
	// one): at most maxSkipReasons, for kids of at most jose.MaxKidLength bytes, the first
	// reason per kid.
	skipped map[string]string
}

type lookupResult int

const (
	keyFound        lookupResult = iota
	keyMissing                   // no key with that kid (or, without kid, none that fits)
	keyIncompatible              // keys with that kid exist, none fits the alg
	keyAmbiguous                 // more than one key fits
	keySkipped                   // the set lists the kid, but its keys were skipped as unusable
)

// find selects the key for alg and kid. kid is an opaque map key. Without kid, the one
// key that fits alg is used; if several fit, the token is refused ("kid required", RFC 7515 §4.1.4).
func (s *keySet) find(alg jose.Alg, kid string, hasKid bool) (*jwk, lookupResult) {
	cands := s.keys
	if hasKid {
		cands = s.byKid[kid]
		if len(cands) == 0 {
			if _, ok := s.skipped[kid]; ok {
				return nil, keySkipped
			}
			return nil, keyMissing
		}
	}
	var found *jwk
	n := 0
	for _, k := range cands {
		if k.fits(alg) {
			found = k
			n++
		}
	}
	switch {
	case n == 1:
		return found, keyFound
	case n > 1:
		return nil, keyAmbiguous
	case hasKid:
		return nil, keyIncompatible
	}
	return nil, keyMissing
}

// jwkMembers are the members of a JWK that parseJWK reads, itself or through go-jose: those of
// RFC 7517 §4, of the RSA, EC and symmetric keys of RFC 7518 §6, of the OKP keys of RFC 8037 §2,
// and go-jose's "pub" and "priv" of AKP keys.
var jwkMembers = [...]string{"kty", "kid", "use", "key_ops", "alg", "crv", "x", "y", "n", "e", "d", "k",
	"p", "q", "dp", "dq", "qi", "x5c", "x5u", "x5t", "x5t#S256", "pub", "priv"}

// parseJWKS reads a JWK Set. A body that is not a JSON object with a non-empty "keys" array of
// objects, or that has more than maxJWKSKeys keys, is an error; so is a set or a key with a
// member twice, also under case folding, or with a member whose name differs from one read only
// in case ("Keys", "KID", "N"; checkMembers): encoding/json would read such a member as the one
// read, or the last of two, so the whole set is refused (and the last good keys stay in use).
// Keys that cannot verify tokens of this package are skipped, with the reason kept by kid, and a
// set with no usable key at all is an error. A key listed twice — same kid, alg and key
// material — is one key: RFC 7517 §4.5 asks different keys for distinct kids, and the same key
// twice is no ambiguity. Keys equal to one of old keep their identity.
func parseJWKS(body []byte, old *keySet) (*keySet, int, error) {
	var doc struct {
		Keys json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, 0, fmt.Errorf("not a JWK Set object: %w", err)
	}
	var entries []json.RawMessage
	if len(doc.Keys) == 0 || string(doc.Keys) == "null" {
		return nil, 0, errors.New(`"keys" missing`)
	}
	if err := json.Unmarshal(doc.Keys, &entries); err != nil {
		return nil, 0, errors.New(`"keys" is not an array`)
	}
	if err := checkMembers(body, []string{"keys"}); err != nil {
		return nil, 0, err
	}
	if len(entries) > maxJWKSKeys {
		return nil, 0, fmt.Errorf("%d keys, at most %d accepted", len(entries), maxJWKSKeys)
	}
	set := &keySet{byKid: make(map[string][]*jwk, len(entries))}
	skipped := 0
	for i, e := range entries {
		if len(e) == 0 || e[0] != '{' {
			return nil, 0, fmt.Errorf("key %d is not a JSON object", i)
		}
		if err := checkMembers(e, jwkMembers[:]); err != nil {
			return nil, 0, fmt.Errorf("key %d: %w", i, err)
		}
		k, kid, reason := parseJWK(e)
		if k == nil {
			skipped++
			set.skip(kid, reason)
			continue
		}
		if slices.ContainsFunc(set.keys, k.same) {
			continue // the same key again: one key, not an ambiguous kid
		}
		if old != nil {
			for _, o := range old.keys {
				if o.same(k) {
					k = o
					break
				}
			}
		}
		set.keys = append(set.keys, k)
		if k.hasKid {
			set.byKid[k.kid] = append(set.byKid[k.kid], k)
		}
	}
	if len(set.keys) == 0 {
		if reason, ok := set.firstReason(); ok {
			return nil, skipped, fmt.Errorf("no usable key among %d (%s)", len(entries), reason)
		}
		return nil, skipped, fmt.Errorf("no usable key among %d", len(entries))
	}
	return set, skipped, nil
}

// skip records why the key with kid was skipped, within the bounds of keySet.skipped. The kid is
// copied, so that the set does not keep the document alive.
func (s *keySet) skip(kid, reason string) {
	if len(kid) > jose.MaxKidLength || len(s.skipped) >= maxSkipReasons {
		return
	}
	if _, ok := s.skipped[kid]; ok {
		return
	}
	if s.skipped == nil {
		s.skipped = make(map[string]string)
	}
	s.skipped[strings.Clone(kid)] = reason
}

// firstReason returns one of the recorded skip reasons.
func (s *keySet) firstReason() (string, bool) {
	for kid, reason := range s.skipped {
		if kid == "" {
			return "a key without kid was skipped: " + reason, true
		}
		return "kid " + strconv.Quote(sanitize(kid, 64)) + " was skipped: " + reason, true
	}
	return "", false
}

// parseJWK returns the verification key of one JWK and its kid; when the key is not usable here
// it returns nil and says why: a use other than "sig", key_ops without "verify", private key
// material, an "alg" that is not a supported signature algorithm or does not fit the key, a key
// type other than RSA, EC and OKP (so never "oct"), RSA under 2048 or over 8192 bits or with an
// even modulus or exponent (RFC 8017 §3.1), or an exponent crypto/rsa refuses, a curve
// other than P-256/384/521 and Ed25519, or a point off its curve (RFC 7517 §4.2-4.3, RFC 8725
// §3.1, §3.4). Reasons quote values of the document only sanitized and bounded.
func parseJWK(data []byte) (k *jwk, kid, reason string) {
	var meta struct {
		Kid    string          `json:"kid"`
		Kty    string          `json:"kty"`
		Crv    string          `json:"crv"`
		Use    string          `json:"use"`
		KeyOps []string        `json:"key_ops"`
		Alg    *string         `json:"alg"`
		D      json.RawMessage `json:"d"`
		K      json.RawMessage `json:"k"`
	}
	if json.Unmarshal(data, &meta) != nil {
		return nil, "", "malformed JWK"
	}
	kid = meta.Kid
	quote := func(v string) string { return strconv.Quote(sanitize(v, 32)) }
	switch {
	case meta.Use != "" && meta.Use != "sig":
		return nil, kid, `"use" is ` + quote(meta.Use) + `, not "sig"`
	case meta.KeyOps != nil && !slices.Contains(meta.KeyOps, "verify"):
		return nil, kid, `"key_ops" lacks "verify"`
	case meta.K != nil || meta.Kty == "oct":
		return nil, kid, "symmetric (oct) key, never used to verify"
	case meta.D != nil:
		return nil, kid, "holds private key material"
	}
	k = &jwk{}
	if meta.Alg != nil {
		if k.alg = jose.ParseAlg(*meta.Alg); k.alg == jose.AlgUnknown {
			return nil, kid, "alg " + quote(*meta.Alg) + " is not a supported signature algorithm"
		}
	}
	var jk gojose.JSONWebKey
	if jk.UnmarshalJSON(data) != nil {
		switch meta.Kty {
		case "RSA":
			return nil, kid, "malformed RSA key"
		case "EC":
			return nil, kid, "EC key on curve " + quote(meta.Crv) + " unusable: unsupported curve, or a point not on it"
		case "OKP":
			return nil, kid, "OKP key on curve " + quote(meta.Crv) + " unsupported or malformed"
		}
		return nil, kid, "key type " + quote(meta.Kty) + " not supported"
	}
	k.kid, k.hasKid = jk.KeyID, jk.KeyID != ""
	misfit := func(kind string) (*jwk, string, string) {
		return nil, kid, "alg " + k.alg.String() + " does not fit " + kind
	}
	switch pub := jk.Key.(type) {
	case *rsa.PublicKey:
		switch bits := pub.N.BitLen(); {
		case bits < minRSAKeyBits:
			return nil, kid, fmt.Sprintf("RSA key of %d bits, at least %d required", bits, minRSAKeyBits)
		case bits > 8*jose.MaxSignature:
			return nil, kid, fmt.Sprintf("RSA key of %d bits, at most %d supported", bits, 8*jose.MaxSignature)
		case pub.N.Bit(0) == 0:
			return nil, kid, "RSA key with an even modulus"
		case pub.E < 3 || pub.E%2 == 0 || pub.E > 1<<31-1:
			// crypto/rsa verifies with none of these (an RSA exponent is odd, RFC 8017 §3.1);
			// kept, such a key would only make tokens without kid ambiguous.
			return nil, kid, "RSA key with a public exponent that is even, below 3 or over 2^31-1"
		case k.alg != jose.AlgUnknown && !k.alg.IsRSA():
			return misfit("an RSA key")
		}
		k.RSA = pub
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256():
			k.ecAlg = jose.ES256
		case elliptic.P384():
			k.ecAlg = jose.ES384
		case elliptic.P521():
			k.ecAlg = jose.ES512
		default:
			return nil, kid, "EC curve " + quote(meta.Crv) + " not supported"
		}
		if _, err := pub.ECDH(); err != nil { // off-curve or malformed point
			return nil, kid, "EC point not on its curve"
		}
		if k.alg != jose.AlgUnknown && k.alg != k.ecAlg {
			return misfit("an EC key on " + pub.Curve.Params().Name)
		}
		k.EC = pub
		k.ECOrder = pub.Curve.Params().N.FillBytes(make([]byte, (pub.Curve.Params().BitSize+7)/8))
	case ed25519.PublicKey:
		if len(pub) != ed25519.PublicKeySize {
			return nil, kid, "Ed25519 key of the wrong length"
		}
		if k.alg != jose.AlgUnknown && k.alg != jose.EdDSA {
			return misfit("an Ed25519 key")
		}
		k.Ed = pub
	default:
		return nil, kid, "key type " + quote(meta.Kty) + " not supported"
	}
	return k, kid, ""
}

// jwksCache fetches and caches the provider's keys. It is safe for concurrent use. A trusted
// lookup (a token from the client's own token request) refetches on a miss whatever the
// cooldown, the negative cache and the retry delay; a kid whose keys were skipped as unusable is
// not a miss.
//
// Rules (RFC 7517 §5, OpenID Connect Core 1.0 §10.1.1 on key rotation): the first lookup loads the set; a set older than
// maxAge is fetched again; a kid that is not in the set causes one refetch unless another
// refetch caused by a miss started less than cooldown ago, and concurrent callers
// share one fetch; a kid still missing after a fetch is remembered (negative cache) for
// the cooldown, even when that fetch was the initial load, unless the set changes; a known kid never causes a fetch; a failed
// fetch keeps the last good keys and is retried after the cooldown, or after the provider's
// Retry-After when that is longer, within the maximum age.
type jwksCache struct {
	http     *httpCore
	url      string
	now      func() time.Time
	cooldown time.Duration
	maxAge   time.Duration
	logger   *slog.Logger
	onRetire func() // called after keys left the set

	set atomic.Pointer[keySet]
	sf  singleflight.Group

	mu        sync.Mutex
	inflight  bool
	flightKey string
	flights   uint64
	lastMiss  time.Time // start of the last fetch caused by a miss
	retryAt   time.Time // no new fetch before this, after a failure
	lastErr   error
	negative  map[string]time.Time // kid -> until
}

// key returns the key for the header's alg and kid, fetching the set when the rules allow.
// trusted marks a token that came back from the client's own token request (an ID token of a
// CIBA or RFC 8628 poll, or of a refresh): not attacker input, so an unknown kid there refetches
// the set whatever the miss cooldown, the negative cache and the retry delay after a failure
// (OpenID Connect Core 1.0 §10.1.1: a new kid means the provider rotated its keys), still
// sharing a fetch in flight.
func (c *jwksCache) key(ctx context.Context, h *jose.Header, trusted bool) (*jwk, *ValidationError) {
	if s := c.set.Load(); s != nil && c.now().Before(s.refreshAt) {
		k, res := s.find(h.Alg, h.Kid, h.HasKid)
		if res == keyFound {
			return k, nil
		}
		if res != keyMissing {
			return nil, lookupError(res, h, s)
		}
	}
	return c.slow(ctx, h, trusted)
}

// fresh reports whether a key set is loaded and within its max age (or retry time) at now.
func (c *jwksCache) fresh(now time.Time) bool {
	s := c.set.Load()
	return s != nil && now.Before(s.refreshAt)
}

func (c *jwksCache) slow(ctx context.Context, h *jose.Header, trusted bool) (*jwk, *ValidationError) {
	// waited: a fetch ended since this call began; own: this call started a fetch of its own
	// (a trusted miss that joined a fetch started before it may start one more).
	waited, own, waits := false, false, 0
	for {
		c.mu.Lock()
		now := c.now()
		s := c.set.Load()
		start, forced := false, false
		if s == nil || !now.Before(s.refreshAt) {
			// A call waits for at most one load or refresh; after that it uses what there is.
			if !waited && (c.inflight || trusted || !now.Before(c.retryAt)) {
				start, forced = true, s != nil
			} else if s == nil {
				err := c.lastErr
				c.mu.Unlock()
				return nil, &ValidationError{reason: reasonKeySetUnavailable, detail: "provider JWKS unavailable", Err: err}
			}
		}
		if !start {
			k, res := s.find(h.Alg, h.Kid, h.HasKid)
			switch {
			case res == keyFound:
				c.mu.Unlock()
				return k, nil
			case res != keyMissing:
				c.mu.Unlock()
				return nil, lookupError(res, h, s)
			case waited && (!trusted || own || waits >= 2):
				c.rememberMissing(h.Kid, now)
				c.mu.Unlock()
				return nil, missingError(h, s, "not in the provider's JWKS")
			case c.inflight:
				start = true
			case trusted:
				c.lastMiss = now
				start, forced = true, true
			case c.isNegative(h.Kid, now):
				c.mu.Unlock()
				return nil, missingError(h, s, "not in the provider's JWKS")
			case now.Before(c.lastMiss.Add(c.cooldown)) || now.Before(c.retryAt):
				c.mu.Unlock()
				return nil, missingError(h, s, fmt.Sprintf("not in the provider's JWKS (refetched at most once per %v)", c.cooldown))
			default:
				c.lastMiss = now
				start, forced = true, true
			}
		}
		if !c.inflight {
			own = true
		}
		ch := c.flight(ctx, forced)
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, &ValidationError{reason: reasonKeySetUnavailable, detail: "gave up waiting for the JWKS", Err: ctx.Err()}
		case <-ch:
		}
		waited = true
		waits++
	}
}

// flight starts a fetch, or joins the one in flight, and returns its result channel; c.mu is
// held. The fetch outlives a caller that gives up: it runs without the caller's
// cancellation, bounded by the request timeout of exchange.
func (c *jwksCache) flight(ctx context.Context, forced bool) <-chan singleflight.Result {
	if !c.inflight {
		c.inflight = true
		c.flights++
		c.flightKey = strconv.FormatUint(c.flights, 10)
	}
	fctx := context.WithoutCancel(ctx)
	return c.sf.DoChan(c.flightKey, func() (any, error) { return nil, c.fetch(fctx, forced) })
}

// refresh fetches the set now, or waits for the fetch in flight, whatever the cooldown and the
// retry delay; see RefreshKeys.
func (c *jwksCache) refresh(ctx context.Context) error {
	c.mu.Lock()
	ch := c.flight(ctx, true)
	c.mu.Unlock()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case r := <-ch:
		return r.Err
	}
}

// RefreshKeys fetches the provider's JWK Set (RFC 7517 §5) from jwks_uri now, for operators after
// a key rotation, whatever the miss cooldown (WithJWKSCooldown) and the retry delay after a
// failed fetch; a fetch already in flight is shared instead of starting another. On success the
// new set is used at once: keys that left it stop validating, and verified tokens cached for them
// are dropped. On failure the last good keys stay in use and the error is returned: an
// *HTTPError (also when the answer is not a usable JWK Set), or ctx's error when ctx ends first,
// in which case the fetch still completes. Token validation needs no call to it: a kid it
// does not know already causes a refetch (see ValidateToken).
func (c *OpenIDConnectClient) RefreshKeys(ctx context.Context) error {
	return c.val.keys.refresh(ctx)
}

// fetch gets the set and installs it; on failure it keeps the last good keys.
// forced refetches ask caches on the way for a fresh copy.
func (c *jwksCache) fetch(ctx context.Context, forced bool) error {
	var hdr http.Header
	if forced {
		hdr = http.Header{"Cache-Control": {"no-cache"}}
	}
	resp, err := c.http.exchange(ctx, request{op: "jwks", method: http.MethodGet, url: c.url, limit: maxDocumentBody, header: hdr})
	var set *keySet
	skipped := 0
	if err == nil {
		set, skipped, err = parseJWKS(resp.body, c.set.Load())
		if err != nil {
			err = &HTTPError{Op: "jwks", URL: redactURL(c.url), StatusCode: resp.status,
				ContentType: resp.ctype, Reason: "invalid JWK set", Err: err}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inflight = false
	now := c.now()
	old := c.set.Load()
	if err != nil {
		c.lastErr = err
		c.retryAt = now.Add(c.failureWait(err, old != nil))
		if old != nil && old.refreshAt.Before(c.retryAt) {
			keep := *old
			keep.refreshAt = c.retryAt
			c.set.Store(&keep)
		}
		c.logger.WarnContext(ctx, "onesoidc: JWKS fetch failed; keeping the last good keys", "url", redactURL(c.url),
			"cached_keys", old != nil, "error", err)
		return err
	}
	if skipped > 0 {
		c.logger.DebugContext(ctx, "onesoidc: JWKS keys skipped as unusable", "skipped", skipped, "usable", len(set.keys))
	}
	set.refreshAt = now.Add(c.maxAge)
	c.set.Store(set)
	c.retryAt, c.lastErr = time.Time{}, nil
	if old == nil {
		return nil
	}
	retired, added := 0, false
	for _, k := range set.keys {
		if !slices.Contains(old.keys, k) {
			added = true
		}
	}
	for _, k := range old.keys {
		if !slices.Contains(set.keys, k) {
			k.retired.Store(true)
			retired++
		}
	}
	if added {
		c.negative = nil
	}
	if retired > 0 && c.onRetire != nil {
		c.onRetire()
	}
	return nil
}

// failureWait is how long after a failed fetch no new fetch starts: the cooldown (at most
// initialFailRetry while no keys are cached), or longer when the provider asked for it with
// Retry-After on a 429 or 503 (RFC 9110 §10.2.3), but never longer than the maximum age, which
// bounds how long keys go unchecked.
func (c *jwksCache) failureWait(err error, cached bool) time.Duration {
	wait := c.cooldown
	if !cached {
		wait = min(c.cooldown, initialFailRetry)
	}
	var he *HTTPError
	if errors.As(err, &he) && he.RetryAfter > wait {
		wait = max(min(he.RetryAfter, c.maxAge), wait)
	}
	return wait
}

func (c *jwksCache) rememberMissing(kid string, now time.Time) {
	if c.negative == nil || len(c.negative) >= maxNegativeKids {
		c.negative = make(map[string]time.Time)
	}
	c.negative[strings.Clone(kid)] = now.Add(c.cooldown) // do not pin the decoded header
}

func (c *jwksCache) isNegative(kid string, now time.Time) bool {
	until, ok := c.negative[kid]
	return ok && now.Before(until)
}

func lookupError(res lookupResult, h *jose.Header, s *keySet) *ValidationError {
	switch res {
	case keyAmbiguous:
		if !h.HasKid {
			return invalid(reasonUnknownKey, "kid", fmt.Sprintf("kid required: several keys of the provider fit %s", h.Alg))
		}
		return invalid(reasonUnknownKey, "kid", fmt.Sprintf("several keys with this kid fit %s", h.Alg))
	case keySkipped:
		return invalid(reasonUnknownKey, "kid", fmt.Sprintf("kid %s was skipped: %s",
			strconv.Quote(sanitize(h.Kid, 64)), s.skipped[h.Kid]))
	}
	return invalid(reasonUnknownKey, "kid", fmt.Sprintf("the key with this kid does not fit %s", h.Alg))
}

// missingError reports a kid (or, without kid, a fitting key) that the set s lacks, and why keys
// without kid were skipped, if any were.
func missingError(h *jose.Header, s *keySet, why string) *ValidationError {
	if !h.HasKid {
		msg := "no kid, and no key of the provider fits " + h.Alg.String()
		if reason, ok := s.skipped[""]; ok {
			msg += "; a key without kid was skipped: " + reason
		}
		return invalid(reasonUnknownKey, "kid", msg)
	}
	return invalid(reasonUnknownKey, "kid", "kid "+why)
}
