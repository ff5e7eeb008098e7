package onesoidc

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ones-now/onesoidc/internal/cache"
	"github.com/ones-now/onesoidc/internal/jose"
	"github.com/ones-now/onesoidc/onesoidctest"
)

// typicalIntrospection is the introspection answer of ONES or oidc-provider for a user's access
// token issued now and valid for an hour (RFC 7662 §2.2): active, sub, client_id, scope, exp,
// iat, iss, token_type and aud, 250 bytes with the mock IdP's issuer.
func typicalIntrospection() []byte {
	iat := time.Now().Unix()
	return fmt.Appendf(nil, `{"active":true,"sub":"8f14e45f-ceea-467f-a9a5-4a2b1c3d5e6f",`+
		`"client_id":"7c3e1f52-2b7a-4d8e-9a61-0f4b2c9d8e13","scope":"openid profile","exp":%d,`+
		`"iat":%d,"iss":"http://localhost/oidc","token_type":"Bearer","aud":"https://api.example"}`, iat+3600, iat)
}

// mustParseIntrospection reads body as IntrospectToken does.
func mustParseIntrospection(t testing.TB, body []byte) *IntrospectionResult {
	t.Helper()
	res, err := parseIntrospection(body)
	if err != nil {
		t.Fatal(err)
	}
	res.Raw = body
	return res
}

// unitIntrospector returns an introspector of the mock IdP's issuer with a cache of budget bytes
// whose provider answers answer(token), and counts the introspections in calls.
func unitIntrospector(t testing.TB, budget uint64, answer func(token string) []byte) (in *introspector, calls *atomic.Int64) {
	calls = new(atomic.Int64)
	return &introspector{
		introspect: func(_ context.Context, token string) (*IntrospectionResult, error) {
			calls.Add(1)
			return mustParseIntrospection(t, answer(token)), nil
		},
		enabled:    true,
		issuer:     "http://localhost/oidc",
		leeway:     time.Minute,
		maxAge:     defaultIntrospectionMaxAge,
		now:        time.Now,
		introCache: cache.New(budget, introEntryCost),
	}, calls
}

// referenceEntity is the entity the introspection cache handed out before it kept entries
// packed: built field by field from the parsed answer.
func referenceEntity(res *IntrospectionResult, issuer string) AuthenticatedEntity {
	var extra struct {
		Role    string `json:"role"`
		IDPRole string `json:"idp_role"`
		ACR     string `json:"acr"`
		Name    string `json:"preferred_username"`
	}
	_ = json.Unmarshal(res.Raw, &extra)
	ent := AuthenticatedEntity{Kind: EntityUser, Issuer: issuer, Subject: res.Subject, Audience: slices.Clone(res.Audience),
		Scope: res.Scope, Username: res.Username, ClientID: res.ClientID, Role: extra.Role, ACR: extra.ACR,
		IssuedAt: res.IssuedAt, Expiry: res.Expiry}
	if ent.Username == "" {
		ent.Username = extra.Name
	}
	if ent.Role == "" {
		ent.Role = extra.IDPRole
	}
	if ent.Username == "" && ent.ClientID != "" && (ent.Subject == "" || ent.Subject == ent.ClientID) {
		ent.Kind, ent.Subject = EntityDevice, ent.ClientID
	}
	return ent
}

// TestIntrospectionEntryRebuildsTheResult: the result built from a packed entry, on the miss
// that stores it and on later hits, is the one built from the answer itself, for every shape of
// answer: strings with escapes (kept after the answer), every form of "aud", fractional
// NumericDates, fallbacks to preferred_username and idp_role, a device token, and answers too
// large for the compact form (read again on each hit). Claims reads the whole answer, Roles
// nothing.
func TestIntrospectionEntryRebuildsTheResult(t *testing.T) {
	t.Parallel()
	const head = `{"active":true,"token_type":"Bearer","exp":4102444800,`
	many := make([]string, 300)
	for i := range many {
		many[i] = fmt.Sprintf("%q", fmt.Sprint("https://", i, ".example"))
	}
	cases := []struct {
		name, body string
		alone      bool // packed alone, read again on a hit
	}{
		{"typical", string(typicalIntrospection()), false},
		{"device", head + `"client_id":"dev-1","scope":"device read"}`, false},
		{"device named by sub", head + `"client_id":"dev-1","sub":"dev-1"}`, false},
		{"escapes", head + `"sub":"\u00e9lise","username":"a\"b","scope":"r\/w","client_id":"c","role":"\u0041dmin","acr":"x\ty"}`, false},
		{"fallbacks", head + `"sub":"u","client_id":"c","preferred_username":"alice","idp_role":"owner","acr":"urn:ones:mfa"}`, false},
		{"names win", head + `"sub":"u","username":"bob","preferred_username":"alice","role":"admin","idp_role":"owner"}`, false},
		{"aud list", head + `"sub":"u","aud":["https://a.example","https://b.example","u"]}`, false},
		{"aud many", head + `"sub":"u","aud":["a","b","c","d","e","f\u00e9","a","","u"]}`, false},
		{"aud empty list", head + `"sub":"u","aud":[]}`, false},
		{"aud empty string", head + `"sub":"u","aud":""}`, false},
		{"aud repeated value", head + `"sub":"same","aud":["same","same"],"scope":"same"}`, false},
		{"fractional times", `{"active":true,"token_type":"Bearer","sub":"u","exp":4102444800.25,"iat":1700000000.000001}`, false},
		{"no exp", `{"active":true,"token_type":"Bearer","sub":"u"}`, false},
		{"roles not read", head + `"sub":"u","roles":["admin"]}`, false},
		{"aud of 300 values", head + `"sub":"u","aud":[` + strings.Join(many, ",") + `]}`, true},
		{"over 64 KiB packed", head + `"pad":"` + strings.Repeat("x", 50_000) + `","sub":"u","username":"` +
			strings.Repeat(`\/`, 7000) + `","aud":["a","\ud83d\ude00",""],"client_id":"c"}`, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in, calls := unitIntrospector(t, 64<<20, func(string) []byte { return []byte(tc.body) })
			res := mustParseIntrospection(t, []byte(tc.body))
			for _, got := range missThenHit(t, in, res) {
				if got.Kind != KindAccessToken || got.Algorithm != "" || got.KeyID != "" || got.Roles() != nil ||
					got.packed().Has() != 0 { // Claims reads an answer with encoding/json
					t.Errorf("result %+v, roles %v", got, got.Roles())
				}
				var claims, all map[string]any
				if err := got.Claims(&claims); err != nil {
					t.Fatal(err)
				}
				_ = json.Unmarshal([]byte(tc.body), &all)
				if !reflect.DeepEqual(claims, all) {
					t.Errorf("Claims = %v", claims)
				}
			}
			e, _ := in.introCache.Get(in.introCache.Key("token"))
			if n, alone := calls.Load(), jose.PackedAt(e.text).Tag() == 0; n != 1 || alone != tc.alone {
				t.Errorf("%d introspections, packed alone %v", n, alone)
			}
		})
	}
}

// TestIntrospectionEntryOfATypicalAnswerIsSmall: the entry of a typical user token's answer
// costs at most 512 bytes, cache overhead included, and the default budget holds at least 64k
// of them.
func TestIntrospectionEntryOfATypicalAnswerIsSmall(t *testing.T) {
	t.Parallel()
	in, _ := unitIntrospector(t, 0, nil)
	cost := introEntryCost(in.entry(mustParseIntrospection(t, typicalIntrospection())))
	if cost > 512 || introspectionCacheBytes/cost < 64<<10 {
		t.Errorf("an entry costs %d bytes: %d in the default budget", cost, introspectionCacheBytes/cost)
	}
}

// TestIntrospectionCacheBoundIsBytes: the cache is bounded by the bytes its entries hold, not by
// their number: one budget keeps about budget/cost entries of a typical answer and about a
// quarter as many of an answer four times its size, and never holds more than the budget.
func TestIntrospectionCacheBoundIsBytes(t *testing.T) {
	t.Parallel()
	typical := typicalIntrospection()
	large := slices.Concat(typical[:len(typical)-1], []byte(`,"pad":"`+strings.Repeat("x", 3*len(typical))+`"}`))
	const budget = 64 << 10
	for name, body := range map[string][]byte{"typical": typical, "large": large} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			in, _ := unitIntrospector(t, budget, func(string) []byte { return body })
			fit := budget / int(introEntryCost(in.entry(mustParseIntrospection(t, body))))
			for i := range 4 * fit {
				if _, err := introValidate(t, in, fmt.Sprintf("token-%d", i), "https://api.example"); err != nil {
					t.Fatal(err)
				}
				if cost := in.introCache.Cost(); cost > budget {
					t.Fatalf("after %d answers: %d bytes over the budget of %d", i+1, cost, budget)
				}
			}
			if n := in.len(); n > fit || n < fit*9/10 {
				t.Errorf("%d entries kept, %d fit in the budget", n, fit)
			}
		})
	}
}

// TestIntrospectionCacheHitRateBeyondBudget: when more tokens are in use than the budget holds
// (users coming back Zipf-distributed, s = 1.01, 5,000 users for a budget of 500 answers), the
// cache keeps those asked for most often: at least 60 % of the validations are hits (the best
// possible is 75 %, keeping the 500 most frequent).
func TestIntrospectionCacheHitRateBeyondBudget(t *testing.T) {
	t.Parallel()
	body := typicalIntrospection()
	in, calls := unitIntrospector(t, 0, func(string) []byte { return body })
	in.introCache = cache.New(500*uint64(introEntryCost(in.entry(mustParseIntrospection(t, body)))), introEntryCost)
	z := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), 1.01, 1, 5000-1)
	validate := func() {
		var k [8]byte
		binary.LittleEndian.PutUint64(k[:], z.Uint64())
		if _, err := introValidate(t, in, fmt.Sprintf("token-%x", k), "https://api.example"); err != nil {
			t.Fatal(err)
		}
	}
	for range 10_000 { // warm up
		validate()
	}
	before := calls.Load()
	const n = 20_000
	for range n {
		validate()
	}
	if hits := 100 * float64(n-(calls.Load()-before)) / n; hits < 60 {
		t.Errorf("hit rate %.1f %%, want at least 60 %%", hits)
	} else {
		t.Logf("hit rate %.1f %%, %d entries", hits, in.len())
	}
}

// TestIntrospectionAnswerOverAnEighthOfTheBudgetIsNotKept: an answer that would cost more than
// an eighth of the budget is introspected again every time, so that one answer cannot empty the
// cache; smaller ones are kept.
func TestIntrospectionAnswerOverAnEighthOfTheBudgetIsNotKept(t *testing.T) {
	t.Parallel()
	small := typicalIntrospection()
	big := slices.Concat(small[:len(small)-1], []byte(`,"pad":"`+strings.Repeat("x", 1024)+`"}`))
	in, calls := unitIntrospector(t, 8*1024, func(tok string) []byte {
		if tok == "big" {
			return big
		}
		return small
	})
	for _, tok := range []string{"small", "big", "small", "big"} {
		if _, err := introValidate(t, in, tok, "https://api.example"); err != nil {
			t.Fatal(err)
		}
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("%d introspections, want 3: small once, big every time", n)
	}
}

// TestIntrospectionExpiredHitIsRemoved: an entry past its reuse is a miss and leaves the cache,
// even when the introspection that follows fails.
func TestIntrospectionExpiredHitIsRemoved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, idp := opaqueClient(t, WithIntrospectionMaxAge(10*time.Second))
		tok, _ := c.DeviceAccessToken(t.Context())
		if _, err := c.ValidateToken(t.Context(), tok.AccessToken); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second)
		idp.Inject(onesoidctest.EndpointIntrospection, onesoidctest.Fault{Times: 1, Status: 502})
		if _, err := c.ValidateToken(t.Context(), tok.AccessToken); !errors.Is(err, ErrIntrospectionUnavailable) {
			t.Fatalf("err = %v, want ErrIntrospectionUnavailable", err)
		}
		if n := c.val.intro.len(); n != 0 {
			t.Errorf("%d entries after the only one expired", n)
		}
	})
}

// TestIntrospectionResultsAreTheCallersOwn: a caller that changes its result or its refusal
// changes nothing that the next caller of the same token gets.
func TestIntrospectionResultsAreTheCallersOwn(t *testing.T) {
	t.Parallel()
	in, _ := unitIntrospector(t, 1<<20, func(tok string) []byte {
		if tok == "dead" {
			return []byte(`{"active":false}`)
		}
		return []byte(`{"active":true,"token_type":"Bearer","sub":"u","aud":["x","y"],"exp":4102444800}`)
	})
	for range 2 {
		res, err := introValidate(t, in, "live", "x")
		if err != nil || !slices.Equal(res.Entity.Audience, []string{"x", "y"}) {
			t.Fatalf("res %+v, err %v", res, err)
		}
		res.Entity.Audience[0] = "changed"
		_, err = introValidate(t, in, "dead", "x")
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Claim != "active" || !errors.Is(err, ErrTokenInactive) {
			t.Fatalf("refusal %v", err)
		}
		ve.Claim, ve.reason = "changed", reasonMalformed
	}
}

// BenchmarkIntrospectionCacheZipf measures the hit rate of the introspection cache, default
// budget, when users (one opaque token each) come back Zipf-distributed (s = 1.01) over 100k and
// 1M users: hit% after a warm-up of 2M requests, and the cost of a lookup (and insert on a miss).
// Entries are that of the typical answer, under keys made from the user number.
func BenchmarkIntrospectionCacheZipf(b *testing.B) {
	for _, users := range []uint64{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("users=%dk", users/1000), func(b *testing.B) {
			in, _ := unitIntrospector(b, introspectionCacheBytes, nil)
			e := in.entry(mustParseIntrospection(b, typicalIntrospection()))
			z := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), 1.01, 1, users-1)
			lookup := func() bool {
				var u [8]byte
				binary.LittleEndian.PutUint64(u[:], z.Uint64())
				k := in.introCache.Key(string(u[:])) // the cache's own key, as for a token
				if _, ok := in.introCache.Get(k); ok {
					return true
				}
				in.introCache.Set(k, e)
				return false
			}
			for range 2_000_000 {
				lookup()
			}
			hits := 0
			for b.Loop() {
				if lookup() {
					hits++
				}
			}
			b.ReportMetric(100*float64(hits)/float64(b.N), "hit%")
			b.ReportMetric(float64(in.len()), "entries")
		})
	}
}

// FuzzIntrospectionEntry: for any answer the provider may give, the result built from the cached
// entry, on the miss and on a hit, is the one built from the answer itself
// (TestIntrospectionEntryRebuildsTheResult for every answer).
func FuzzIntrospectionEntry(f *testing.F) {
	f.Add(string(typicalIntrospection()))
	f.Add(`{"active":true,"token_type":"Bearer","sub":"\u00e9","username":"a\"b","aud":["x","\u00e9",""],"exp":4102444800.5}`)
	f.Add(`{"active":true,"token_type":"access_token","client_id":"d","SUB":"d","Role":1,"idp_role":"r","iat":1.25}`)
	f.Fuzz(func(t *testing.T, body string) {
		res, err := parseIntrospection([]byte(body))
		if err != nil {
			return
		}
		res.Raw = []byte(body)
		in, _ := unitIntrospector(t, 1<<20, func(string) []byte { return []byte(body) })
		if in.entry(res).reject != nil {
			return
		}
		for _, got := range missThenHit(t, in, res) {
			if got.packed().Payload() != body || got.Roles() != nil && len(body) <= 1<<16-1 {
				t.Fatalf("claims %q, roles %v", got.packed().Payload(), got.Roles())
			}
		}
	})
}

// missThenHit validates "token", whose introspection answer is res, twice (the miss, then the
// hit) and requires each result's entity to be the one built from the answer itself.
func missThenHit(t *testing.T, in *introspector, res *IntrospectionResult) []*AuthenticationResult {
	t.Helper()
	want := referenceEntity(res, in.issuer)
	clientID := "x" // the audience the answer must name, if it has one
	if len(want.Audience) > 0 {
		clientID = want.Audience[0]
	}
	var results []*AuthenticationResult
	for range 2 {
		got, err := introValidate(t, in, "token", clientID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Entity, want) {
			t.Fatalf("entity\n got %+v\nwant %+v", got.Entity, want)
		}
		results = append(results, got)
	}
	return results
}

// introValidate validates the opaque token raw with in into a new result, as
// validator.validateInto would (nil on an error).
func introValidate(t *testing.T, in *introspector, raw, clientID string) (*AuthenticationResult, error) {
	res := new(AuthenticationResult)
	if err := in.validate(t.Context(), raw, modeAny, &verifyOptions{}, clientID, res); err != nil {
		return nil, err
	}
	return res, nil
}
