package jose

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// Struct types of the differential tests: plain fields (the direct path), fields encoding/json
// fills through the member's text, and types left to encoding/json as a whole.
type (
	plainUser struct {
		Sub      string   `json:"sub"`
		Name     string   `json:"name"`
		Email    string   `json:"email"`
		Verified bool     `json:"email_verified"`
		Roles    []string `json:"roles"`
		Age      int8     `json:"age"`
		Level    uint16   `json:"level"`
		Score    float32  `json:"score"`
		Exp      float64  `json:"exp"`
		Untagged string
		Skipped  string `json:"-"`
	}
	role      string
	mixedUser struct {
		Role    role              `json:"role"`
		Aud     any               `json:"aud"`
		Extra   map[string]any    `json:"extra"`
		Nested  *struct{ A int }  `json:"nested"`
		When    time.Time         `json:"when"`
		Raw     json.RawMessage   `json:"raw"`
		Groups  []role            `json:"groups"`
		Counts  map[string]int    `json:"counts"`
		Ints    []int             `json:"ints"`
		Opt     *string           `json:"opt"`
		Members map[string]string `json:"members,omitempty"`
	}
	embedded struct {
		plainUser
		Tenant string `json:"tenant"`
	}
	stringOpt struct {
		N int `json:"n,string"`
	}
	foldTwins struct {
		A string `json:"name"`
		B string `json:"NAME"`
	}
	oddTag struct {
		A string `json:"a b"`
	}
	// kelvinName has a field whose Go name starts with the Kelvin sign (U+212A), which folds to
	// ASCII k: its members match without being ASCII on both sides.
	kelvinName struct {
		Kid string
		Sub string `json:"sub"`
	}
)

var decodeTargets = []func() any{
	func() any { return &plainUser{Sub: "keep", Roles: []string{"old"}} },
	func() any { return &mixedUser{Extra: map[string]any{"k": "v"}} },
	func() any { return &embedded{} },
	func() any { return &stringOpt{} },
	func() any { return &foldTwins{} },
	func() any { return &oddTag{} },
	func() any { return &kelvinName{} },
	func() any { m := map[string]any{}; return &m },
	func() any { var s []int; return &s },
}

var decodePayloads = []string{
	`{}`,
	`{"sub":"u1","name":"Alice","email":"a@example.com","email_verified":true,"roles":["admin","ops"],"age":42,"level":7,"score":1.5,"exp":1700000000}`,
	`{"SUB":"u2","Name":"B","EMAIL":"b@x","Email_Verified":false,"ROLES":[],"untagged":"u","Untagged2":1,"-":"dash","Skipped":"no"}`,
	`{"ſub":"long s","name":"K","roleſ":["x"]}`,
	`{"sub":null,"roles":null,"age":null,"email_verified":null}`,
	`{"sub":1}`, `{"roles":["a",1]}`, `{"roles":"admin"}`, `{"age":128}`, `{"age":1.0}`, `{"age":-0}`, `{"level":-1}`,
	`{"level":70000}`, `{"score":1e39}`, `{"exp":"1"}`, `{"email_verified":"true"}`,
	`{"name":"\u00e9\n\ud83d\ude00","email":"\"q\""}`,
	`{"name":"\ud800"}`,
	`{"role":"r","aud":["a","b"],"extra":{"n":1},"nested":{"A":2},"when":"2026-01-02T03:04:05Z","raw":{"x":[1]},"groups":["g"],"counts":{"a":1},"ints":[1,2],"opt":"o","members":{"m":"n"}}`,
	`{"role":1}`, `{"when":"not a time"}`, `{"nested":null,"opt":null,"extra":null}`, `{"counts":{"a":"b"}}`,
	`{"tenant":"t","sub":"s"}`, `{"n":"12"}`, `{"n":12}`, `{"a b":"x"}`, `{"NAME":"upper","name":"lower"}`,
	`{"name":"x","deep":{"a":[{"b":[1,2,{"c":null}]}]}}`,
	`{"kid":"k1","sub":"s"}`, `{"KID":"k2","SUB":"s"}`, `{"Kid":"k3","ſub":"s"}`, `{"kidd":"no","su":"no"}`,
}

// TestDecoderAgreesWithEncodingJSON: Decode gives the values and errors of json.Unmarshal for
// every target type and payload, including the ones it leaves to encoding/json.
func TestDecoderAgreesWithEncodingJSON(t *testing.T) {
	var d Decoder
	if p := makePlan(reflect.TypeFor[*plainUser]()); p == nil || !p.decode(decodePayloads[1], reflect.ValueOf(&plainUser{}).Elem()) {
		t.Error("a struct of plain fields is not decoded directly")
	}
	for _, payload := range decodePayloads {
		var cl Claims
		if err := ParseClaims(payload, &cl); err != nil {
			continue // never reaches Decode
		}
		for i, target := range decodeTargets {
			for range 2 { // the second time with the type's plan remembered
				got, want := target(), target()
				gotErr := d.Decode(payload, got)
				wantErr := json.Unmarshal([]byte(payload), want)
				if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got, want) {
					t.Errorf("target %d, %s:\n got %+v, %v\nwant %+v, %v", i, payload, got, gotErr, want, wantErr)
				}
			}
		}
	}
}

// FuzzDecoder: on any payload ParseClaims accepts, Decode into a struct agrees with
// json.Unmarshal.
func FuzzDecoder(f *testing.F) {
	for _, s := range decodePayloads {
		f.Add(s)
	}
	var d Decoder
	f.Fuzz(func(t *testing.T, payload string) {
		var cl Claims
		if !utf8.ValidString(payload) || ParseClaims(payload, &cl) != nil {
			return
		}
		for _, target := range decodeTargets[:2] {
			got, want := target(), target()
			gotErr := d.Decode(payload, got)
			wantErr := json.Unmarshal([]byte(payload), want)
			if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got, want) {
				t.Fatalf("%s:\n got %+v, %v\nwant %+v, %v", payload, got, gotErr, want, wantErr)
			}
		}
	})
}

// TestPackKeepsEveryClaim: the packed form gives back what ParseClaims read, for strings that
// are text of the payload, strings that held escapes, lists, and payloads too large for the
// compact form.
func TestPackKeepsEveryClaim(t *testing.T) {
	big := `{"iss":"i","sub":"s","aud":["a","b"],"pad":"` + strings.Repeat("x", 70000) + `","roles":["r"]}`
	for _, payload := range []string{
		`{"iss":"https://idp.example","sub":"u","aud":"c","exp":1.5,"nbf":2,"iat":3,"auth_time":4,"azp":"c","nonce":"n",` +
			`"urn:openid:params:jwt:claim:auth_req_id":"r","at_hash":"h","client_id":"ci","scope":"openid email",` +
			`"preferred_username":"alice","role":"admin","idp_role":"ir","acr":"1","name":"Alice","email":"a@x",` +
			`"amr":["pwd","otp"],"roles":["r1","r2"],"jti":"j"}`,
		`{"iss":"\u0069ss","sub":"\"u\"","aud":["\u0061","b","c\n"],"name":"\u00e9","amr":[],"roles":["\ud83d\ude00"]}`,
		`{"aud":[]}`,
		`{}`,
		big,
	} {
		var cl Claims
		if err := ParseClaims(payload, &cl); err != nil {
			t.Fatalf("%.80s: %v", payload, err)
		}
		p := Pack(payload, &cl, 0xbeef)
		if p.Payload() != payload {
			t.Errorf("%.80s: payload %.80q", payload, p.Payload())
		}
		if p.Tag() != 0xbeef || p.Has() != cl.Has {
			t.Errorf("%.80s: tag %#x, has %#x", payload, p.Tag(), p.Has())
		}
		if at := PackedAt(p.Ptr()); at != p {
			t.Errorf("%.80s: PackedAt(Ptr) is another Packed", payload)
		}
		var got Claims
		p.Unpack(&got, nil)
		want := cl
		want.Amr, want.Roles, want.authTimeText = nil, nil, ""
		if len(want.Aud) == 0 && got.Aud == nil {
			want.Aud = nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%.80s:\n got %+v\nwant %+v", payload, got, want)
		}
		if a := p.Amr(); !reflect.DeepEqual(a, nilIfEmpty(cl.Amr)) {
			t.Errorf("%.80s: amr %q, want %q", payload, a, cl.Amr)
		}
		if r := p.Roles(); !reflect.DeepEqual(r, nilIfEmpty(cl.Roles)) {
			t.Errorf("%.80s: roles %q, want %q", payload, r, cl.Roles)
		}
		if a := p.Aud(nil); !reflect.DeepEqual(a, nilIfEmpty(cl.Aud)) {
			t.Errorf("%.80s: aud %q, want %q", payload, a, cl.Aud)
		}
	}
}

// TestZeroPackedHoldsNothing: the zero Packed (a result without claims) answers empty.
func TestZeroPackedHoldsNothing(t *testing.T) {
	var p Packed
	var cl Claims
	p.Unpack(&cl, nil)
	if p.Payload() != "" || p.Has() != 0 || p.Tag() != 0 || p.Compact() || p.Roles() != nil ||
		p.Amr() != nil || p.HasAmr() || !reflect.DeepEqual(cl, Claims{}) || PackedAt(nil) != p {
		t.Error("the zero Packed holds something")
	}
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// TestProfileClaimsMatchWithoutCase: name, email and roles are read from the member whose name
// folds to theirs, as encoding/json fills `json:"email"`; other types leave them empty, and
// such a member is not a duplicate or a refused claim.
func TestProfileClaimsMatchWithoutCase(t *testing.T) {
	var cl Claims
	if err := ParseClaims(`{"NAME":"n","Email":"e","roleſ":["a"]}`, &cl); err != nil {
		t.Fatal(err)
	}
	if cl.Name != "n" || cl.Email != "e" || len(cl.Roles) != 1 {
		t.Errorf("got %q %q %q", cl.Name, cl.Email, cl.Roles)
	}
	cl = Claims{}
	if err := ParseClaims(`{"name":1,"email":["e"],"roles":"admin"}`, &cl); err != nil {
		t.Fatal(err)
	}
	if cl.Name != "" || cl.Email != "" || cl.Roles != nil {
		t.Errorf("got %q %q %q", cl.Name, cl.Email, cl.Roles)
	}
}

// TestDuplicateClaimsPastTheFirst24: duplicates under case folding are refused wherever they
// are among many claims, and many distinct claims cost a few allocations, not one each.
func TestDuplicateClaimsPastTheFirst24(t *testing.T) {
	many := func(n int, extra string) string {
		var b strings.Builder
		b.WriteString(`{"iss":"x"`)
		for i := range n {
			fmt.Fprintf(&b, `,"claim_%d":%d`, i, i)
		}
		return b.String() + extra + "}"
	}
	for _, dup := range []string{`,"CLAIM_500":1`, `,"Claim_999":1`, `,"ISS":"y"`, `,"claim_30":1`} {
		var cl Claims
		if err := ParseClaims(many(1000, dup), &cl); err == nil || err.Kind != Malformed {
			t.Errorf("%s: err = %v, want a duplicate refused", dup, err)
		}
	}
	for _, pair := range [][2]string{{"kelvin", "\u212aelvin"}, {"sub_s", "sub_\u017f"}, {"\u00e9t\u00e9", "\u00c9T\u00c9"}} {
		var cl Claims
		if err := ParseClaims(many(40, `,"`+pair[0]+`":1,"`+pair[1]+`":2`), &cl); err == nil {
			t.Errorf("%q and %q accepted as different claims", pair[0], pair[1])
		}
	}
	payload := many(1000, "")
	allocs := testing.AllocsPerRun(10, func() {
		var cl Claims
		if err := ParseClaims(payload, &cl); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 8 {
		t.Errorf("%v allocations for 1000 claims, want a few", allocs)
	}
}
