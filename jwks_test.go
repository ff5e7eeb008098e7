package onesoidc

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	gojose "github.com/go-jose/go-jose/v4"
	"github.com/ones-now/onesoidc/internal/jose"
	"github.com/ones-now/onesoidc/onesoidctest"
)

// jwkJSON is the public JWK of k as JSON, changed by edit.
func jwkJSON(t testing.TB, k *gojose.JSONWebKey, edit func(map[string]any)) string {
	t.Helper()
	b, err := k.Public().MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(m)
	}
	b, _ = json.Marshal(m)
	return string(b)
}

func noKid(m map[string]any) { delete(m, "kid"); delete(m, "alg") }

func randB64(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// serveJWKS makes the IdP answer every JWKS request with a set of these raw entries.
func serveJWKS(idp *onesoidctest.Server, entries ...string) {
	idp.ClearFaults(onesoidctest.EndpointJWKS)
	idp.Inject(onesoidctest.EndpointJWKS, onesoidctest.Fault{Status: 200, ContentType: "application/jwk-set+json",
		Body: []byte(`{"keys":[` + strings.Join(entries, ",") + `]}`)})
}

func secp256k1JWK() string {
	return `{"kty":"EC","crv":"secp256k1","x":"` + randB64(32) + `","y":"` + randB64(32) + `"}`
}

func ed25519JWK(t testing.TB) string { return jwkJSON(t, onesoidctest.NewKey("EdDSA"), noKid) }

// TestJW01NoKidSingleFittingKey: without kid, the only key that fits the alg is used.
func TestJW01NoKidSingleFittingKey(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	rsaKey, ecKey := idp.SigningKey(), onesoidctest.NewKey("ES256")
	serveJWKS(idp, jwkJSON(t, rsaKey, noKid), jwkJSON(t, ecKey, noKid), secp256k1JWK(), ed25519JWK(t))
	c := newValidationClient(t, idp)
	res := wantAccept(t)(c.ValidateToken(t.Context(), mint(t, idp, map[string]any{"kid": onesoidctest.Omit}, nil)))
	if res.KeyID != "" || res.Algorithm != "RS256" {
		t.Errorf("result %+v", res)
	}
	wantAccept(t)(c.ValidateToken(t.Context(), mintWith(t, idp, ecKey, map[string]any{"kid": onesoidctest.Omit}, nil)))
	if n := idp.Count(onesoidctest.EndpointJWKS); n != 1 {
		t.Errorf("%d JWKS requests", n)
	}
}

// TestJW02NoKidSeveralFittingKeys: without kid and with several keys that fit, the token is
// refused ("kid required"); trying each key is not done (documented choice).
func TestJW02NoKidSeveralFittingKeys(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	signer := idp.SigningKey()
	var entries []string
	entries = append(entries, jwkJSON(t, signer, noKid), jwkJSON(t, onesoidctest.NewKey("RS256"), noKid), jwkJSON(t, onesoidctest.NewKey("RS256"), noKid))
	for range 3 {
		entries = append(entries, jwkJSON(t, onesoidctest.NewKey("ES256"), noKid), secp256k1JWK(), ed25519JWK(t))
	}
	serveJWKS(idp, entries...)
	c := newValidationClient(t, idp)
	tok := mint(t, idp, map[string]any{"kid": onesoidctest.Omit}, nil)
	res, err := c.ValidateToken(t.Context(), tok)
	wantReject(t, res, err, ErrUnknownKey, tok)
	if !strings.Contains(err.Error(), "kid required") {
		t.Errorf("err = %v", err)
	}
	if n := idp.Count(onesoidctest.EndpointJWKS); n != 1 {
		t.Errorf("%d JWKS requests, want 1 (ambiguity is no reason to refetch)", n)
	}
}

// TestJW03Rotation: after the provider rotates from A to B, a token with B costs exactly one
// refetch, also for 1000 concurrent callers; A's cached tokens are dropped.
func TestJW03Rotation(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	idp.UseKey(onesoidctest.NewKey("ES256"))
	c := newValidationClient(t, idp)
	tokA := mint(t, idp, nil, nil)
	wantAccept(t)(c.ValidateToken(t.Context(), tokA))
	idp.RotateKeys("ES256")
	idp.RetireOldKeys()
	tokB := mint(t, idp, nil, nil)
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := range 1000 {
		wg.Go(func() {
			tok := tokB
			if i%2 == 1 { // distinct tokens, so that the verified-token cache does not answer
				tok = mint(t, idp, nil, set("jti", fmt.Sprint(i)))
			}
			if _, err := c.ValidateToken(t.Context(), tok); err != nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d of 1000 tokens signed with the new key failed", failed.Load())
	}
	if n := idp.Count(onesoidctest.EndpointJWKS); n != 2 {
		t.Errorf("%d JWKS requests, want 2 (load + one refetch)", n)
	}
	res, err := c.ValidateToken(t.Context(), tokA)
	wantReject(t, res, err, ErrUnknownKey, tokA)
	if n := idp.Count(onesoidctest.EndpointJWKS); n != 2 {
		t.Errorf("%d JWKS requests after the retired kid, want 2", n)
	}
}

// TestJW04KeyNewerThanCache: a kid newer than the cache refetches outside the cooldown; inside
// it the token is refused, and accepted after it (defaultJWKSCooldown, 30 s).
func TestJW04KeyNewerThanCache(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp := onesoidctest.NewInMemory()
		c := newValidationClient(t, idp)
		wantAccept(t)(c.ValidateToken(t.Context(), mint(t, idp, nil, nil))) // t=0: load {A}
		idp.UseKey(onesoidctest.NewKey("ES256"))                            // B
		time.Sleep(time.Second)
		wantAccept(t)(c.ValidateToken(t.Context(), mint(t, idp, nil, nil))) // t=1: refetch
		reqs := idp.Requests(onesoidctest.EndpointJWKS)
		if len(reqs) != 2 {
			t.Fatalf("%d JWKS requests, want 2", len(reqs))
		}
		if reqs[0].Header.Get("Cache-Control") != "" || reqs[1].Header.Get("Cache-Control") != "no-cache" {
			t.Errorf("Cache-Control %q, %q; want none on the load, no-cache on the refetch",
				reqs[0].Header.Get("Cache-Control"), reqs[1].Header.Get("Cache-Control"))
		}
		time.Sleep(time.Second)
		idp.UseKey(onesoidctest.NewKey("ES256")) // C, t=2
		tokC := mint(t, idp, nil, nil)
		time.Sleep(8 * time.Second) // t=10: inside the cooldown of the refetch at t=1
		res, err := c.ValidateToken(t.Context(), tokC)
		wantReject(t, res, err, ErrUnknownKey, tokC)
		if n := idp.Count(onesoidctest.EndpointJWKS); n != 2 {
			t.Errorf("%d JWKS requests inside the cooldown, want 2", n)
		}
		time.Sleep(21 * time.Second) // t=31
		wantAccept(t)(c.ValidateToken(t.Context(), tokC))
		if n := idp.Count(onesoidctest.EndpointJWKS); n != 3 {
			t.Errorf("%d JWKS requests after the cooldown, want 3", n)
		}
	})
}

// randomKidTokens mints n tokens with made-up kids.
func randomKidTokens(t testing.TB, idp *onesoidctest.Server, n int) []string {
	toks := make([]string, n)
	for i := range toks {
		toks[i] = mint(t, idp, map[string]any{"kid": randB64(12)}, nil)
	}
	return toks
}

// TestTV27LongKidRefused: a kid longer than 256 bytes, or a header over 8 KiB, is refused as
// malformed before any JWKS fetch, and the negative kid cache holds no long kid (TV-27, JW-05:
// 1000 tokens with 45 KiB kids must not pin 45 MiB).
func TestTV27LongKidRefused(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	idp.UseKey(onesoidctest.NewKey("ES256"))
	c := newValidationClient(t, idp)
	long := []string{strings.Repeat("k", 46<<10), strings.Repeat("k", 8<<10), strings.Repeat("k", jose.MaxKidLength+1)}
	refuseLong := func() {
		t.Helper()
		for _, kid := range long {
			tok := mint(t, idp, map[string]any{"kid": kid + randB64(4)}, nil)
			res, err := c.ValidateToken(t.Context(), tok)
			wantReject(t, res, err, ErrMalformedToken, tok)
		}
	}
	refuseLong() // cold: not even the initial load
	if n := idp.Count(onesoidctest.EndpointJWKS); n != 0 {
		t.Fatalf("%d JWKS requests for long kids, want 0", n)
	}
	wantAccept(t)(c.ValidateToken(t.Context(), mint(t, idp, nil, nil)))
	refuseLong() // warm: no refetch
	for range 3 {
		tok := mint(t, idp, map[string]any{"kid": randB64(jose.MaxKidLength * 3 / 4)}, nil) // exactly 256 bytes
		res, err := c.ValidateToken(t.Context(), tok)
		wantReject(t, res, err, ErrUnknownKey, tok)
	}
	if n := idp.Count(onesoidctest.EndpointJWKS); n != 2 {
		t.Errorf("%d JWKS requests, want 2 (the load, one refetch for a 256-byte kid)", n)
	}
	c.val.keys.mu.Lock()
	defer c.val.keys.mu.Unlock()
	if len(c.val.keys.negative) == 0 {
		t.Error("negative cache empty")
	}
	for kid := range c.val.keys.negative {
		if len(kid) > jose.MaxKidLength {
			t.Errorf("negative cache holds a kid of %d bytes", len(kid))
		}
	}
}

// TestJW05NegativeCacheClonesKid: the negative cache stores a copy of the kid, not a substring
// of the decoded header that would keep the whole header alive.
func TestJW05NegativeCacheClonesKid(t *testing.T) {
	t.Parallel()
	c := &jwksCache{cooldown: time.Minute}
	header := `{"alg":"ES256","kid":"` + randB64(48) + `"}`
	kid := header[22 : 22+64]
	c.rememberMissing(kid, time.Now())
	for k := range c.negative {
		start := uintptr(unsafe.Pointer(unsafe.StringData(header)))
		if p := uintptr(unsafe.Pointer(unsafe.StringData(k))); p >= start && p < start+uintptr(len(header)) {
			t.Error("the negative cache pins the header")
		}
	}
}

// TestJW05UnknownKidFlood: 1000 concurrent tokens with random kids cost one JWKS request, and
// sequential ones at most one per cooldown.
func TestJW05UnknownKidFlood(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	idp.UseKey(onesoidctest.NewKey("ES256"))
	toks := randomKidTokens(t, idp, 1000)
	flood := func(c *OpenIDConnectClient) {
		var wg sync.WaitGroup
		var accepted atomic.Int32
		for _, tok := range toks {
			wg.Go(func() {
				if _, err := c.ValidateToken(t.Context(), tok); err == nil || !errors.Is(err, ErrUnknownKey) {
					accepted.Add(1)
				}
			})
		}
		wg.Wait()
		if accepted.Load() != 0 {
			t.Errorf("%d tokens not refused as unknown key", accepted.Load())
		}
	}
	t.Run("warm cache", func(t *testing.T) {
		c := newValidationClient(t, idp)
		wantAccept(t)(c.ValidateToken(t.Context(), mint(t, idp, nil, nil)))
		before := idp.Count(onesoidctest.EndpointJWKS)
		flood(c)
		if n := idp.Count(onesoidctest.EndpointJWKS) - before; n != 1 {
			t.Errorf("%d JWKS requests for 1000 unknown kids, want 1", n)
		}
	})
	t.Run("cold cache", func(t *testing.T) {
		before := idp.Count(onesoidctest.EndpointJWKS)
		flood(newValidationClient(t, idp))
		// The initial load, plus at most one refetch for callers that came after it.
		if n := idp.Count(onesoidctest.EndpointJWKS) - before; n < 1 || n > 2 {
			t.Errorf("%d JWKS requests, want 1 or 2", n)
		}
	})
	t.Run("sequential", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			idp := onesoidctest.NewInMemory()
			idp.UseKey(onesoidctest.NewKey("ES256"))
			c := newValidationClient(t, idp)
			wantAccept(t)(c.ValidateToken(t.Context(), mint(t, idp, nil, nil)))
			toks := randomKidTokens(t, idp, 100)
			for _, tok := range toks {
				res, err := c.ValidateToken(t.Context(), tok)
				wantReject(t, res, err, ErrUnknownKey, tok)
				time.Sleep(100 * time.Millisecond) // 100 tokens over 10 s
			}
			if n := idp.Count(onesoidctest.EndpointJWKS); n != 2 {
				t.Errorf("%d JWKS requests, want 2 (load + 1)", n)
			}
			time.Sleep(25 * time.Second)
			for _, tok := range toks { // the same kids, and new ones, after the cooldown
				_, _ = c.ValidateToken(t.Context(), tok)
			}
			_, _ = c.ValidateToken(t.Context(), randomKidTokens(t, idp, 1)[0])
			if n := idp.Count(onesoidctest.EndpointJWKS); n != 3 {
				t.Errorf("%d JWKS requests, want 3 (one more after the cooldown)", n)
			}
		})
	})
}

// TestJW06KnownKidBadSignatureNeverRefetches: 1000 bad signatures with a known kid.
func TestJW06KnownKidBadSignatureNeverRefetches(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	c := newValidationClient(t, idp)
	tok := mint(t, idp, nil, nil)
	wantAccept(t)(c.ValidateToken(t.Context(), tok))
	for i := range 1000 {
		if _, err := c.ValidateToken(t.Context(), flip(tok, i)); !errors.Is(err, ErrInvalidSignature) {
			t.Fatalf("err = %v", err)
		}
	}
	if n := idp.Count(onesoidctest.EndpointJWKS); n != 1 {
		t.Errorf("%d JWKS requests, want 1", n)
	}
}

// TestJW07FailedRefreshKeepsKeys: a refresh that fails keeps the last good keys and is retried
// after the cooldown, also when the max age forced it.
func TestJW07FailedRefreshKeepsKeys(t *testing.T) {
	t.Parallel()
	faults := map[string]onesoidctest.Fault{
		"500":          {Status: 500, ContentType: "text/plain", Body: []byte("oops")},
		"HTML":         {Status: 200, ContentType: "text/html", Body: []byte("<html>login</html>")},
		"invalid JSON": {Status: 200, ContentType: "application/json", Body: []byte(`{"keys":[`)},
		"no keys":      {Status: 200, ContentType: "application/json", Body: []byte(`{"keys":[]}`)},
		"timeout":      {Hang: true},
	}
	for name, f := range faults {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				idp := onesoidctest.NewInMemory()
				c := newValidationClient(t, idp, WithRequestTimeout(2*time.Second))
				n := 0
				fresh := func() string { n++; return mint(t, idp, nil, set("jti", fmt.Sprint(n))) }
				wantAccept(t)(c.ValidateToken(t.Context(), fresh()))
				idp.Inject(onesoidctest.EndpointJWKS, f)
				time.Sleep(time.Second)
				unknown := randomKidTokens(t, idp, 3)
				res, err := c.ValidateToken(t.Context(), unknown[0]) // refetch fails
				wantReject(t, res, err, ErrUnknownKey, unknown[0])
				wantAccept(t)(c.ValidateToken(t.Context(), fresh()))
				time.Sleep(10 * time.Second)
				_, _ = c.ValidateToken(t.Context(), unknown[1]) // inside the cooldown
				if got := idp.Count(onesoidctest.EndpointJWKS); got != 2 {
					t.Errorf("%d JWKS requests, want 2", got)
				}
				time.Sleep(25 * time.Second)
				_, _ = c.ValidateToken(t.Context(), unknown[2]) // retried after the cooldown
				if got := idp.Count(onesoidctest.EndpointJWKS); got != 3 {
					t.Errorf("%d JWKS requests, want 3", got)
				}
				time.Sleep(defaultJWKSMaxAge) // the max-age refresh fails too
				wantAccept(t)(c.ValidateToken(t.Context(), fresh()))
				if got := idp.Count(onesoidctest.EndpointJWKS); got != 4 {
					t.Errorf("%d JWKS requests, want 4", got)
				}
				if s := c.val.keys.set.Load(); s == nil || len(s.keys) != 1 {
					t.Errorf("key set replaced: %+v", s)
				}
			})
		})
	}
}

// TestJW08ForeignKeysSkipped: keys of unknown or unusable kinds are skipped, not fatal.
func TestJW08ForeignKeysSkipped(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	signer := idp.SigningKey()
	ec := onesoidctest.NewKey("ES256")
	idp.PublishRaw( // after the IdP's own key
		`{"kty":"AKP","alg":"ML-DSA-44","kid":"pq","pub":"`+randB64(1312)+`"}`,
		`{"kty":"XYZ","kid":"x","foo":"bar"}`,
		jwkJSON(t, onesoidctest.NewKey("RS256"), func(m map[string]any) { m["alg"] = "RS999" }),
		jwkJSON(t, ec, func(m map[string]any) { m["alg"] = "ES999" }),
		jwkJSON(t, ec, func(m map[string]any) { m["crv"] = "P-999"; m["kid"] = "p999" }),
		`{"kty":"OKP","crv":"Ed448","kid":"ed448","x":"`+randB64(57)+`"}`,
		`{"kty":"OKP","crv":"X448","kid":"x448","x":"`+randB64(56)+`"}`,
		`{"kty":"OKP","crv":"X25519","kid":"x25519","x":"`+randB64(32)+`"}`,
		secp256k1JWK(),
		jwkJSON(t, onesoidctest.NewKey("RS256"), func(m map[string]any) { m["n"] = randB64(128); m["kid"] = "rsa1024" }),
		jwkJSON(t, signer, func(m map[string]any) { m["n"] = randB64(1025); m["kid"] = "rsa8200" }),
	)
	c := newValidationClient(t, idp)
	wantAccept(t)(c.ValidateToken(t.Context(), mint(t, idp, nil, nil)))
	if s := c.val.keys.set.Load(); len(s.keys) != 1 {
		t.Errorf("%d usable keys, want 1", len(s.keys))
	}
	// The EC key published with an unknown alg is not usable either.
	tok := mintWith(t, idp, ec, nil, nil)
	res, err := c.ValidateToken(t.Context(), tok)
	wantReject(t, res, err, ErrUnknownKey, tok)
}

// TestJW10EncryptionKeyNotUsed: a key for encryption never verifies.
func TestJW10EncryptionKeyNotUsed(t *testing.T) {
	t.Parallel()
	for name, edit := range map[string]func(map[string]any){
		"use enc":             func(m map[string]any) { m["use"] = "enc" },
		"key_ops encrypt":     func(m map[string]any) { delete(m, "use"); m["key_ops"] = []string{"encrypt"} },
		"key_ops sign only":   func(m map[string]any) { delete(m, "use"); m["key_ops"] = []string{"sign"} },
		"key_ops not strings": func(m map[string]any) { delete(m, "use"); m["key_ops"] = []int{1} },
	} {
		idp := onesoidctest.NewInMemory()
		other := onesoidctest.NewKey("ES256")
		serveJWKS(idp, jwkJSON(t, idp.SigningKey(), edit), jwkJSON(t, other, nil))
		c := newValidationClient(t, idp)
		tok := mint(t, idp, nil, nil)
		res, err := c.ValidateToken(t.Context(), tok)
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		wantReject(t, res, err, ErrUnknownKey, tok)
	}
	idp := onesoidctest.NewInMemory()
	serveJWKS(idp, jwkJSON(t, idp.SigningKey(), func(m map[string]any) { delete(m, "use"); m["key_ops"] = []string{"verify"} }))
	wantAccept(t)(newValidationClient(t, idp).ValidateToken(t.Context(), mint(t, idp, nil, nil)))
}

// TestJW11SymmetricKeyNeverUsed: an oct key in the JWKS is skipped; HS256 stays refused.
func TestJW11SymmetricKeyNeverUsed(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	secret := []byte("0123456789abcdef0123456789abcdef")
	serveJWKS(idp, `{"kty":"oct","kid":"hmac","alg":"HS256","k":"`+base64.RawURLEncoding.EncodeToString(secret)+`"}`,
		jwkJSON(t, idp.SigningKey(), nil))
	idp.EditMetadata(func(d map[string]any) { d["id_token_signing_alg_values_supported"] = []string{"HS256", "RS256"} })
	c := newValidationClient(t, idp)
	tok := mintWith(t, idp, &gojose.JSONWebKey{Key: secret, KeyID: "hmac", Algorithm: "HS256"}, nil, nil)
	res, err := c.ValidateToken(t.Context(), tok)
	wantReject(t, res, err, ErrUnsupportedAlgorithm, tok)
	tok = mint(t, idp, map[string]any{"kid": "hmac"}, nil)
	res, err = c.ValidateToken(t.Context(), tok)
	wantReject(t, res, err, ErrUnknownKey, tok)
	if s := c.val.keys.set.Load(); len(s.keys) != 1 || s.keys[0].RSA == nil {
		t.Errorf("usable keys %+v", s.keys)
	}
}

// TestJW13InvalidECKeys: off-curve points and wrong coordinate lengths are skipped, no panic.
func TestJW13InvalidECKeys(t *testing.T) {
	t.Parallel()
	key := onesoidctest.NewKey("ES256")
	pub := key.Public().Key.(*ecdsa.PublicKey)
	point, err := pub.Bytes() // 0x04 || X || Y, 32 bytes each
	if err != nil {
		t.Fatal(err)
	}
	x, y := point[1:33], append([]byte(nil), point[33:]...)
	y[len(y)-1] ^= 1
	for name, edit := range map[string]func(map[string]any){
		"off curve": func(m map[string]any) {
			m["y"] = base64.RawURLEncoding.EncodeToString(y)
		},
		"short x": func(m map[string]any) {
			m["x"] = base64.RawURLEncoding.EncodeToString(x[1:])
		},
		"long y": func(m map[string]any) {
			m["y"] = base64.RawURLEncoding.EncodeToString(append([]byte{0}, point[33:]...))
		},
		"zero point": func(m map[string]any) { m["x"] = randB64(0); m["y"] = randB64(0) },
		"P-384 crv":  func(m map[string]any) { m["crv"] = "P-384" },
	} {
		b := jwkJSON(t, key, edit)
		if k, _, _ := parseJWK([]byte(b)); k != nil {
			t.Errorf("%s: key accepted", name)
		}
		idp := onesoidctest.NewInMemory()
		serveJWKS(idp, b, jwkJSON(t, idp.SigningKey(), nil))
		c := newValidationClient(t, idp)
		tok := mintWith(t, idp, key, nil, nil)
		res, err := c.ValidateToken(t.Context(), tok)
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		wantReject(t, res, err, ErrUnknownKey, tok)
	}
	if k, _, _ := parseJWK([]byte(jwkJSON(t, key, nil))); k == nil || k.ecAlg != jose.ES256 {
		t.Errorf("the valid key was not accepted")
	}
}

var badJWKSBodies = map[string]string{
	"not JSON":           `<html>`,
	"keys null":          `{"keys":null}`,
	"keys object":        `{"keys":{}}`,
	"keys empty":         `{"keys":[]}`,
	"non-object entries": `{"keys":["a",1]}`,
	"mixed entries":      `{"keys":[KEY,"a"]}`,
	"top-level array":    `[KEY]`,
	"no keys member":     `{}`,
	"null":               `null`,
	"only unusable keys": `{"keys":[{"kty":"oct","k":"AAAA"}]}`,
}

// TestJW14MalformedJWKS: a bad set is an error and never replaces the cached one.
func TestJW14MalformedJWKS(t *testing.T) {
	t.Parallel()
	for name, body := range badJWKSBodies {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			idp := onesoidctest.NewInMemory()
			body := strings.ReplaceAll(body, "KEY", jwkJSON(t, idp.SigningKey(), nil))
			bad := onesoidctest.Fault{Status: 200, ContentType: "application/json", Body: []byte(body)}
			// Cold: no keys at all.
			idp.Inject(onesoidctest.EndpointJWKS, bad)
			c := newValidationClient(t, idp)
			tok := mint(t, idp, nil, nil)
			res, err := c.ValidateToken(t.Context(), tok)
			wantReject(t, res, err, ErrKeySetUnavailable, tok)
			var he *HTTPError
			if !errors.As(err, &he) || he.Op != "jwks" {
				t.Errorf("err = %v, want an HTTPError of the jwks fetch", err)
			}
			// Warm: the cached keys stay.
			idp.ClearFaults(onesoidctest.EndpointJWKS)
			c = newValidationClient(t, idp)
			wantAccept(t)(c.ValidateToken(t.Context(), tok))
			before := c.val.keys.set.Load()
			idp.Inject(onesoidctest.EndpointJWKS, bad)
			unknown := randomKidTokens(t, idp, 1)[0]
			res, err = c.ValidateToken(t.Context(), unknown)
			wantReject(t, res, err, ErrUnknownKey, unknown)
			if after := c.val.keys.set.Load(); len(after.keys) != 1 || after.keys[0] != before.keys[0] {
				t.Errorf("cached keys changed")
			}
			wantAccept(t)(c.ValidateToken(t.Context(), mint(t, idp, nil, set("jti", "2"))))
			if n := idp.Count(onesoidctest.EndpointJWKS); n != 3 {
				t.Errorf("%d JWKS requests, want 3", n)
			}
		})
	}
}

// TestJW15OversizedJWKS: a body over 1 MiB or a set of more than 100 keys is refused.
func TestJW15OversizedJWKS(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	entry := jwkJSON(t, idp.SigningKey(), nil)
	// 50,000 entries small enough to stay under the 1 MiB body cap, so the key-count cap refuses
	// them.
	many := strings.TrimSuffix(strings.Repeat(`{"kty":"EC"},`, 50_000), ",")
	bodies := map[string]string{
		"5 MiB":       `{"keys":[` + entry + `],"pad":"` + strings.Repeat("x", 5<<20) + `"}`,
		"50,000 keys": `{"keys":[` + many + `]}`,
		"101 keys":    `{"keys":[` + strings.TrimSuffix(strings.Repeat(entry+",", 101), ",") + `]}`,
	}
	if n := len(bodies["50,000 keys"]); n >= maxDocumentBody {
		t.Fatalf("50,000 keys: %d bytes, over the body cap", n)
	}
	for name, body := range bodies {
		idp := onesoidctest.NewInMemory()
		idp.Inject(onesoidctest.EndpointJWKS, onesoidctest.Fault{Status: 200, ContentType: "application/json", Body: []byte(body)})
		c := newValidationClient(t, idp)
		tok := mint(t, idp, nil, nil)
		res, err := c.ValidateToken(t.Context(), tok)
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		wantReject(t, res, err, ErrKeySetUnavailable, tok)
		// Each body must hit the cap it is about.
		if tooLarge := errors.Is(err, errResponseTooLarge); tooLarge != (name == "5 MiB") {
			t.Errorf("%s: %v, response too large: %v", name, err, tooLarge)
		}
		if name != "5 MiB" && !strings.Contains(err.Error(), "at most 100 accepted") {
			t.Errorf("%s: %v, want the key-count cap", name, err)
		}
	}
	// 100 keys are fine.
	idp2 := onesoidctest.NewInMemory()
	serveJWKS(idp2, strings.Split(strings.TrimSuffix(strings.Repeat(jwkJSON(t, idp2.SigningKey(), nil)+"\n", 100), "\n"), "\n")...)
	// 100 copies of one key: parsed, and one key (TestIdenticalDuplicateKeysAreOneKey).
	wantAccept(t)(newValidationClient(t, idp2).ValidateToken(t.Context(), mint(t, idp2, nil, nil)))
}

// TestJW16MaxAge: the set is fetched again after defaultJWKSMaxAge (10 minutes), so that a
// removed key stops validating, cached tokens included.
func TestJW16MaxAge(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp := onesoidctest.NewInMemory()
		c := newValidationClient(t, idp)
		long := set("exp", time.Now().Add(time.Hour).Unix())
		tokA := mint(t, idp, nil, long)
		wantAccept(t)(c.ValidateToken(t.Context(), tokA))
		idp.RotateKeys("ES256")
		idp.RetireOldKeys() // the provider drops A
		time.Sleep(5 * time.Minute)
		wantAccept(t)(c.ValidateToken(t.Context(), tokA)) // cached
		if n := idp.Count(onesoidctest.EndpointJWKS); n != 1 {
			t.Fatalf("%d JWKS requests before the max age", n)
		}
		time.Sleep(5*time.Minute + time.Second)
		// Right after the max age, the cached token A itself causes the refresh: nothing else
		// is validated first.
		res, err := c.ValidateToken(t.Context(), tokA)
		wantReject(t, res, err, ErrUnknownKey, tokA)
		reqs := idp.Requests(onesoidctest.EndpointJWKS)
		if len(reqs) != 2 || reqs[1].Header.Get("Cache-Control") != "no-cache" {
			t.Fatalf("requests %d, want a no-cache refresh", len(reqs))
		}
		if c.val.cache.len() != 0 {
			t.Errorf("%d cached tokens, want 0 (A's dropped)", c.val.cache.len())
		}
		wantAccept(t)(c.ValidateToken(t.Context(), mint(t, idp, nil, nil))) // B, with the refreshed set
		if n := idp.Count(onesoidctest.EndpointJWKS); n != 2 {
			t.Errorf("%d JWKS requests, want 2", n)
		}
	})
}

// TestJW16CachedTokenAfterKeyRemoved: a cached token whose key the provider removed is refused
// once the key set is past its max age, even when no other token causes the refetch.
func TestJW16CachedTokenAfterKeyRemoved(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp := onesoidctest.NewInMemory()
		c := newValidationClient(t, idp)
		tok := mint(t, idp, nil, set("exp", time.Now().Add(24*time.Hour).Unix()))
		wantAccept(t)(c.ValidateToken(t.Context(), tok))
		wantAccept(t)(c.ValidateToken(t.Context(), tok)) // cached
		idp.RotateKeys("ES256")
		idp.RetireOldKeys() // the provider drops key A
		time.Sleep(defaultJWKSMaxAge + time.Hour)
		res, err := c.ValidateToken(t.Context(), tok)
		wantReject(t, res, err, ErrUnknownKey, tok)
		if n := idp.Count(onesoidctest.EndpointJWKS); n != 2 {
			t.Errorf("%d JWKS requests, want 2 (the max-age refetch)", n)
		}
		if n := c.val.cache.len(); n != 0 {
			t.Errorf("%d cached tokens, want 0", n)
		}
		// A token whose key stayed is answered from the cache again after the refetch.
		tokB := mint(t, idp, nil, nil)
		wantAccept(t)(c.ValidateToken(t.Context(), tokB))
		time.Sleep(defaultJWKSMaxAge + time.Second)
		wantAccept(t)(c.ValidateToken(t.Context(), tokB)) // past the max age: refetch, still valid
		wantAccept(t)(c.ValidateToken(t.Context(), tokB))
		if n := idp.Count(onesoidctest.EndpointJWKS); n != 3 {
			t.Errorf("%d JWKS requests, want 3", n)
		}
	})
}

// TestJW17JWKSURIFromDiscovery: the keys come from the jwks_uri of the validated discovery.
func TestJW17JWKSURIFromDiscovery(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewServer()
	t.Cleanup(idp.Close)
	var hits atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(idp.JWKS())
	}))
	t.Cleanup(other.Close)
	idp.EditMetadata(func(d map[string]any) { d["jwks_uri"] = other.URL + "/keys/v2" })
	c := newValidationClient(t, idp)
	wantAccept(t)(c.ValidateToken(t.Context(), mint(t, idp, nil, nil)))
	if hits.Load() != 1 || idp.Count(onesoidctest.EndpointJWKS) != 0 {
		t.Errorf("hits at the discovered jwks_uri %d, at the usual path %d", hits.Load(), idp.Count(onesoidctest.EndpointJWKS))
	}
}

// TestJW18ContentType: application/jwk-set+json (with charset) and application/json are
// accepted, text/html is not.
func TestJW18ContentType(t *testing.T) {
	t.Parallel()
	for ctype, ok := range map[string]bool{
		"application/jwk-set+json; charset=UTF-8": true,
		"application/jwk-set+json":                true,
		"application/json":                        true,
		"text/html":                               false,
		"text/plain":                              false,
		"":                                        false,
	} {
		idp := onesoidctest.NewInMemory()
		idp.Inject(onesoidctest.EndpointJWKS, onesoidctest.Fault{Status: 200, ContentType: ctype, Body: idp.JWKS()})
		c := newValidationClient(t, idp)
		tok := mint(t, idp, nil, nil)
		res, err := c.ValidateToken(t.Context(), tok)
		if ok {
			wantAccept(t)(res, err)
		} else {
			wantReject(t, res, err, ErrKeySetUnavailable, tok)
		}
	}
}

// TestHF16CancelledWaiter: a caller that gives up returns at once; the shared fetch goes on
// for the others and is not spoiled.
func TestHF16CancelledWaiter(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp := onesoidctest.NewInMemory()
		idp.Inject(onesoidctest.EndpointJWKS, onesoidctest.Fault{Times: 1, Delay: 5 * time.Second})
		c := newValidationClient(t, idp)
		tok := mint(t, idp, nil, nil)
		start := time.Now()
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		var wg sync.WaitGroup
		wg.Go(func() {
			res, err := c.ValidateToken(ctx, tok)
			if res != nil || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrKeySetUnavailable) {
				t.Errorf("cancelled caller: %v, %v", res, err)
			}
			if d := time.Since(start); d != time.Second {
				t.Errorf("cancelled caller returned after %v, want 1s", d)
			}
		})
		wg.Go(func() {
			wantAccept(t)(c.ValidateToken(t.Context(), tok))
			if d := time.Since(start); d != 5*time.Second {
				t.Errorf("patient caller returned after %v, want 5s", d)
			}
		})
		wg.Wait()
		wantAccept(t)(c.ValidateToken(t.Context(), mint(t, idp, nil, set("jti", "x"))))
		if n := idp.Count(onesoidctest.EndpointJWKS); n != 1 {
			t.Errorf("%d JWKS requests, want 1", n)
		}
	})
}

// TestHF17ColdCacheConcurrentCallers: 100 goroutines with an empty cache cause one fetch.
func TestHF17ColdCacheConcurrentCallers(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	idp.UseKey(onesoidctest.NewKey("ES256"))
	c := newValidationClient(t, idp)
	toks := make([]string, 100)
	for i := range toks {
		toks[i] = mint(t, idp, nil, set("jti", fmt.Sprint(i)))
	}
	var wg sync.WaitGroup
	var failed atomic.Int32
	for _, tok := range toks {
		wg.Go(func() {
			if _, err := c.ValidateToken(t.Context(), tok); err != nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if failed.Load() != 0 || idp.Count(onesoidctest.EndpointJWKS) != 1 {
		t.Errorf("%d failures, %d JWKS requests; want 0 and 1", failed.Load(), idp.Count(onesoidctest.EndpointJWKS))
	}
}

// TestJW07RetryAfterIsTheEarliestNextFetch: a JWKS fetch answered 503 with Retry-After is not
// tried again before that delay (instead of the fixed 5 s, or the cooldown), and never later than
// the maximum age.
func TestJW07RetryAfterIsTheEarliestNextFetch(t *testing.T) {
	t.Parallel()
	unavailable := func(retryAfter string) onesoidctest.Fault {
		return onesoidctest.Fault{Times: 1, Status: 503, ContentType: "text/html", Header: http.Header{"Retry-After": {retryAfter}}}
	}
	t.Run("no keys yet", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			idp := onesoidctest.NewInMemory()
			c := newValidationClient(t, idp)
			idp.Inject(onesoidctest.EndpointJWKS, unavailable("60"))
			tok := mint(t, idp, nil, nil)
			if _, err := c.ValidateToken(t.Context(), tok); !errors.Is(err, ErrKeySetUnavailable) {
				t.Fatalf("err = %v, want the JWKS unavailable", err)
			}
			time.Sleep(59 * time.Second)
			_, _ = c.ValidateToken(t.Context(), tok)
			if n := idp.Count(onesoidctest.EndpointJWKS); n != 1 {
				t.Errorf("%d JWKS requests within the Retry-After, want 1", n)
			}
			time.Sleep(time.Second)
			wantAccept(t)(c.ValidateToken(t.Context(), tok))
			if n := idp.Count(onesoidctest.EndpointJWKS); n != 2 {
				t.Errorf("%d JWKS requests after the Retry-After, want 2", n)
			}
		})
	})
	t.Run("refresh with keys cached, huge Retry-After", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			idp := onesoidctest.NewInMemory()
			c := newValidationClient(t, idp)
			wantAccept(t)(c.ValidateToken(t.Context(), mint(t, idp, nil, nil)))
			idp.Inject(onesoidctest.EndpointJWKS, unavailable("999999"))
			unknown := randomKidTokens(t, idp, 3)
			time.Sleep(time.Second)
			_, _ = c.ValidateToken(t.Context(), unknown[0]) // the miss refetch gets the 503
			time.Sleep(defaultJWKSCooldown + time.Second)
			_, _ = c.ValidateToken(t.Context(), unknown[1]) // past the cooldown, within Retry-After
			if n := idp.Count(onesoidctest.EndpointJWKS); n != 2 {
				t.Errorf("%d JWKS requests, want 2 (none before the Retry-After)", n)
			}
			time.Sleep(defaultJWKSMaxAge - defaultJWKSCooldown)
			_, _ = c.ValidateToken(t.Context(), unknown[2]) // the max age bounds the wait
			if n := idp.Count(onesoidctest.EndpointJWKS); n != 3 {
				t.Errorf("%d JWKS requests, want 3 (Retry-After capped at the max age)", n)
			}
		})
	})
}
