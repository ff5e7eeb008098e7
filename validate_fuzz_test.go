package onesoidc

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ones-now/onesoidc/internal/mockidp"
)

// staticValidator is a validator with a pre-loaded key set that never fetches: a miss falls in
// the cooldown of a refetch that "just happened".
func staticValidator(t testing.TB, idp *mockidp.IdP) *validator {
	t.Helper()
	set, _, err := parseJWKS(idp.JWKS(), nil)
	if err != nil {
		t.Fatal(err)
	}
	set.refreshAt = time.Now().Add(24 * time.Hour)
	keys := &jwksCache{now: time.Now, cooldown: 24 * time.Hour, maxAge: 24 * time.Hour, lastMiss: time.Now()}
	keys.set.Store(set)
	return &validator{issuer: idp.Issuer, clientID: testClientID, leeway: time.Minute, now: time.Now, algs: allAlgs,
		keys: keys, cache: newTokenCache(100, 1<<20)}
}

// FuzzParseJWS feeds arbitrary strings to ValidateToken's path and to each parser: nothing may
// panic, and whatever the strict JSON reader accepts as claims, encoding/json (which Claims and
// RawClaims use) must read too. The fuzzer cannot forge a signature of the validator's key, so
// through validate it reaches the splitting, header parsing, decoding, key lookup and signature
// check, but never the claim checks after the signature (only the seed token gets there);
// parseHeader and parseClaims are therefore also called directly on every decodable segment.
func FuzzParseJWS(f *testing.F) {
	idp := mockidp.NewInMemory()
	idp.UseKey(mockidp.NewKey("ES256"))
	good, err := mockidp.MintWith(idp.SigningKey(), nil, idp.Claims(testClientID, testSubject))
	if err != nil {
		f.Fatal(err)
	}
	p := strings.Split(good, ".")
	for _, s := range []string{
		good, p[0] + "." + p[1] + ".", "a.b.c", "..", ".", "", "{}", `{"payload":"x"}`,
		p[0] + "." + p[1] + "." + p[2] + ".x.y", p[0] + "=." + p[1] + "." + p[2], "e30.e30.e30",
		b64(`{"alg":"ES256","crit":["exp"]}`) + ".e30.AA", b64(`{"alg":"none"}`) + "." + b64(`{"iss":1}`) + ".",
		b64(`{"alg":"ES256","kid":"\u0000"}`) + ".e30.", strings.Repeat(".", 100),
	} {
		f.Add(s)
	}
	v := staticValidator(f, idp)
	f.Fuzz(func(t *testing.T, raw string) {
		res, err := v.validate(context.Background(), raw, modeAny, nil)
		if (res == nil) == (err == nil) {
			t.Fatalf("result %v with error %v", res, err)
		}
		tok, verr := splitJWS(raw)
		if verr != nil {
			return
		}
		for _, seg := range []string{tok.headerPart(), tok.payloadPart()} {
			s, ok := decodeJSONPart(seg, nil)
			if !ok {
				continue
			}
			_, _ = parseHeader(s)
			checkClaimsParser(t, s)
		}
	})
}

// FuzzParseClaims fuzzes the strict JSON reader on payload text directly.
func FuzzParseClaims(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"iss":"x","aud":["a","b"],"exp":1.5,"n":null,"o":{"a":[true,false]}}`, `{"a":1e400}`,
		`{"a":"\ud800"}`, `{"\u0069ss":"x"}`, `{"a":-0.0e-5}`, ` {"a" : [ ] } `, `{"a":"\u00e9\n"}`,
		`{"a":1,"a":2}`, `[]`, `{"a":01}`, `{"a":"` + "\x7f" + `"}`, `{"sub":"u","SUB":"admin"}`, `{"ſub":"x"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkClaimsParser(t, s) })
}

// checkClaimsParser runs parseClaims on s and compares with encoding/json.
func checkClaimsParser(t *testing.T, s string) {
	if !utf8.ValidString(s) { // decodeJSONPart refuses invalid UTF-8 before parsing
		return
	}
	var cl tokenClaims
	if parseClaims(s, &cl) != nil {
		return
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil || m == nil {
		t.Fatalf("parseClaims accepted %q, encoding/json says %v", s, err)
	}
	if iss, ok := m["iss"].(string); ok && cl.has&hasIss != 0 && iss != cl.iss {
		t.Fatalf("iss %q, encoding/json %q", cl.iss, iss)
	}
	if sub, ok := m["sub"].(string); ok && sub != cl.sub {
		t.Fatalf("sub %q, encoding/json %q", cl.sub, sub)
	}
	// Claims decodes into structs, whose fields encoding/json matches without regard to case.
	var st struct {
		Iss string `json:"iss"`
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal([]byte(s), &st); err == nil && (st.Iss != cl.iss || st.Sub != cl.sub) {
		t.Fatalf("iss %q sub %q, encoding/json into a struct %q %q", cl.iss, cl.sub, st.Iss, st.Sub)
	}
}
