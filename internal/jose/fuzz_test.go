package jose

import (
	"crypto/ecdsa"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ones-now/onesoidc/onesoidctest"
)

// FuzzParseJWS feeds arbitrary strings to every parser of a compact JWS: nothing may panic,
// whatever the strict JSON reader accepts as claims encoding/json (which UnmarshalClaims and
// ClaimsMap use) must read too, and a signature verifies only over the seed token's signing input
// (the fuzzer cannot forge one). ParseHeader and ParseClaims are called on every decodable
// segment, so that the claim reader sees what a verified payload could hold.
func FuzzParseJWS(f *testing.F) {
	key := onesoidctest.NewKey("ES256")
	good, err := onesoidctest.MintWith(key, nil, map[string]any{"iss": "https://idp.example", "sub": "user-1",
		"aud": "client", "iat": 1700000000, "exp": 1700000600})
	if err != nil {
		f.Fatal(err)
	}
	priv := key.Key.(*ecdsa.PrivateKey)
	pub := &PublicKey{EC: &priv.PublicKey, ECOrder: priv.Curve.Params().N.FillBytes(make([]byte, 32))}
	goodInput := good[:strings.LastIndexByte(good, '.')]
	for _, s := range onesoidctest.FuzzSeeds(good) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		tok, err := Split(raw)
		if err != nil {
			if err.Kind != Malformed || err.Msg == "" {
				t.Fatalf("Split error %+v", err)
			}
			return
		}
		for _, seg := range []string{tok.HeaderPart(), tok.PayloadPart()} {
			s, ok := DecodeJSONPart(seg, nil)
			if !ok {
				continue
			}
			if hdr, err := ParseHeader(s); err == nil && len(hdr.Kid) > MaxKidLength {
				t.Fatalf("kid of %d bytes accepted", len(hdr.Kid))
			}
			checkClaimsParser(t, s)
		}
		var buf [512]byte
		sig, ok := DecodeSignature(tok.SignaturePart(), buf[:])
		if !ok {
			return
		}
		for _, alg := range []Alg{ES256, ES384, RS256, EdDSA, AlgUnknown} {
			if Verify(tok, sig, alg, pub, nil) && (alg != ES256 || tok.SigningInput() != goodInput) {
				t.Fatalf("%v signature verified over %q", alg, tok.SigningInput())
			}
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

// checkClaimsParser runs ParseClaims on s and compares with encoding/json.
func checkClaimsParser(t *testing.T, s string) {
	if !utf8.ValidString(s) { // DecodeJSONPart refuses invalid UTF-8 before parsing
		return
	}
	var cl Claims
	if ParseClaims(s, &cl) != nil {
		return
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil || m == nil {
		t.Fatalf("ParseClaims accepted %q, encoding/json says %v", s, err)
	}
	if iss, ok := m["iss"].(string); ok && cl.Has&HasIss != 0 && iss != cl.Iss {
		t.Fatalf("iss %q, encoding/json %q", cl.Iss, iss)
	}
	if sub, ok := m["sub"].(string); ok && sub != cl.Sub {
		t.Fatalf("sub %q, encoding/json %q", cl.Sub, sub)
	}
	// UnmarshalClaims decodes into structs, whose fields encoding/json matches without regard to case.
	var st struct {
		Iss string `json:"iss"`
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal([]byte(s), &st); err == nil && (st.Iss != cl.Iss || st.Sub != cl.Sub) {
		t.Fatalf("iss %q sub %q, encoding/json into a struct %q %q", cl.Iss, cl.Sub, st.Iss, st.Sub)
	}
	checkPackRoundTrip(t, s, &cl)
}

// checkPackRoundTrip packs the claims cl of payload s and requires them back unchanged.
func checkPackRoundTrip(t *testing.T, s string, cl *Claims) {
	p := PackedAt(Pack(s, cl, 0x1234).Ptr())
	if p.Payload() != s || p.Tag() != 0x1234 {
		t.Fatalf("packed payload %q tag %#x", p.Payload(), p.Tag())
	}
	var got Claims
	p.Unpack(&got, nil)
	want := *cl
	want.Amr, want.Roles, want.authTimeText = nil, nil, ""
	if len(want.Aud) == 0 && len(got.Aud) == 0 {
		want.Aud, got.Aud = nil, nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("unpacked\n %+v\nwant %+v", got, want)
	}
	if !reflect.DeepEqual(p.Amr(), nilIfEmpty(cl.Amr)) || !reflect.DeepEqual(p.Roles(), nilIfEmpty(cl.Roles)) {
		t.Fatalf("amr %q roles %q, want %q %q", p.Amr(), p.Roles(), cl.Amr, cl.Roles)
	}
}
