package onesoidc

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ones-now/onesoidc/internal/jose"
	"github.com/ones-now/onesoidc/internal/mockidp"
)

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// TestTV25Crit: any crit header is refused, whatever it lists.
func TestTV25Crit(t *testing.T) {
	t.Parallel()
	idp := mockidp.NewInMemory()
	c := newValidationClient(t, idp)
	for name, h := range map[string]map[string]any{
		"exp":       {"crit": []string{"exp"}},
		"b64 false": {"crit": []string{"b64"}, "b64": false},
		"x-unknown": {"crit": []string{"x-unknown"}, "x-unknown": 1},
		"empty":     {"crit": []string{}},
	} {
		tok := mint(t, idp, h, nil)
		res, err := c.ValidateToken(t.Context(), tok)
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		wantReject(t, res, err, ErrMalformedToken, tok)
	}
	tok := mint(t, idp, map[string]any{"b64": false}, nil)
	res, err := c.ValidateToken(t.Context(), tok)
	wantReject(t, res, err, ErrMalformedToken, tok)
}

// TestTV26KeysInHeader: jwk, jku, x5u and x5c are refused and never fetched.
func TestTV26KeysInHeader(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(evil.Close)
	idp := mockidp.NewInMemory()
	c := newValidationClient(t, idp)
	attacker := mockidp.NewKey("ES256")
	pubJWK, _ := attacker.Public().MarshalJSON()
	var jwkHeader map[string]any
	if err := jsonUnmarshal(pubJWK, &jwkHeader); err != nil {
		t.Fatal(err)
	}
	priv := attacker.Key.(*ecdsa.PrivateKey)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "idp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	cert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	for name, h := range map[string]map[string]any{
		"jwk":          {"jwk": jwkHeader, "kid": mockidp.Omit},
		"jwk with kid": {"jwk": jwkHeader, "kid": idp.SigningKey().KeyID},
		"jku":          {"jku": evil.URL + "/jwks"},
		"x5u":          {"x5u": evil.URL + "/cert.pem"},
		"x5c":          {"x5c": []string{base64.StdEncoding.EncodeToString(cert)}, "kid": mockidp.Omit},
	} {
		tok := mintWith(t, idp, attacker, h, nil)
		res, err := c.ValidateToken(t.Context(), tok)
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		wantReject(t, res, err, ErrMalformedToken, tok)
	}
	if hits.Load() != 0 {
		t.Errorf("%d requests to the attacker's URLs", hits.Load())
	}
	if n := idp.Count(mockidp.EndpointJWKS); n != 0 {
		t.Errorf("%d JWKS requests, want 0", n)
	}
}

// TestTV27OpaqueKid: kid is only ever a map key; unknown ones are refused and cost at most one
// refetch together; kids over 256 bytes are refused as malformed without any.
func TestTV27OpaqueKid(t *testing.T) {
	t.Parallel()
	idp := mockidp.NewInMemory()
	c := newValidationClient(t, idp)
	wantAccept(t)(c.ValidateToken(t.Context(), mint(t, idp, nil, nil))) // loads the JWKS
	for name, kid := range map[string]any{
		"path":      "../../dev/null",
		"sql":       "' OR 1=1--",
		"256 bytes": strings.Repeat("k", jose.MaxKidLength),
		"nul":       "\x00",
		"empty-ish": " ",
	} {
		tok := mint(t, idp, map[string]any{"kid": kid}, nil)
		res, err := c.ValidateToken(t.Context(), tok)
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		wantReject(t, res, err, ErrUnknownKey, tok)
	}
	for _, kid := range []any{123, strings.Repeat("k", jose.MaxKidLength+1), strings.Repeat("k", 40<<10)} {
		tok := mint(t, idp, map[string]any{"kid": kid}, nil)
		res, err := c.ValidateToken(t.Context(), tok)
		wantReject(t, res, err, ErrMalformedToken, tok)
	}
	tok := mint(t, idp, map[string]any{"kid": strings.Repeat("k", 64<<10)}, nil)
	res, err := c.ValidateToken(t.Context(), tok)
	wantReject(t, res, err, ErrMalformedToken, tok)
	if n := idp.Count(mockidp.EndpointJWKS); n != 2 {
		t.Errorf("%d JWKS requests, want 2 (load + one refetch for all unknown kids)", n)
	}
	// A provider key whose kid looks like a path works as any other kid.
	odd := mockidp.NewKey("ES256")
	odd.KeyID = "../../dev/null"
	idp2 := mockidp.NewInMemory()
	idp2.UseKey(odd)
	c2 := newValidationClient(t, idp2)
	wantAccept(t)(c2.ValidateToken(t.Context(), mint(t, idp2, nil, nil)))
}

// TestTV28Segments: anything but three strict base64url segments is malformed.
func TestTV28Segments(t *testing.T) {
	t.Parallel()
	idp := mockidp.NewInMemory()
	c := newValidationClient(t, idp)
	tok := mint(t, idp, nil, nil)
	p := strings.Split(tok, ".")
	h, pl, s := p[0], p[1], p[2]
	cases := map[string]string{
		"2 segments":         h + "." + pl,
		"4 segments":         tok + "." + s,
		"5 segments":         tok + ".a.b",
		"empty header":       "." + pl + "." + s,
		"empty payload":      h + ".." + s,
		"all empty":          "..",
		"padding":            h + "=." + pl + "." + s,
		"padding in sig":     tok + "==",
		"plus":               strings.Replace(tok, "-", "+", 1) + "+",
		"slash":              h + "." + pl + "/." + s,
		"space":              h + " ." + pl + "." + s,
		"newline":            h + "." + pl[:10] + "\n" + pl[10:] + "." + s,
		"leading space":      " " + tok,
		"trailing newline":   tok + "\n",
		"impossible length":  h + "." + pl + strings.Repeat("A", (5-len(pl)%4)%4) + "." + s,
		"non-zero tail bits": h[:len(h)-1] + "z." + pl + "." + s,
		"empty":              "",
		"unicode":            h + "." + pl + "é." + s,
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			res, err := c.ValidateToken(t.Context(), bad)
			wantReject(t, res, err, ErrMalformedToken, "")
		})
	}
	// One segment, even one that decodes to a JSON object, is not a JWT but an opaque token
	// (a random 43-character token starts with "eyJ" once in 262,144): the provider decides.
	res, err := c.ValidateToken(t.Context(), h)
	wantReject(t, res, err, ErrTokenInactive, "")
}

// TestTV29OversizedInput: huge input is refused before any splitting or decoding, with O(1)
// allocation.
func TestTV29OversizedInput(t *testing.T) { // not parallel: AllocsPerRun
	idp := mockidp.NewInMemory()
	c := newValidationClient(t, idp)
	tok := mint(t, idp, nil, nil)
	cases := map[string]string{
		"1 MiB of dots":     strings.Repeat(".", 1<<20),
		"a.b. and 1e6 dots": "a.b." + strings.Repeat(".", 1_000_000),
		"10 MiB token":      tok + strings.Repeat("A", 10<<20),
		"200 KiB header":    b64(`{"alg":"RS256","x":"`+strings.Repeat("x", 200<<10)+`"}`) + ".e30.sig",
		"just over 64 KiB":  strings.Repeat("A", 64<<10+1),
	}
	for name, bad := range cases {
		res, err := c.ValidateToken(t.Context(), bad)
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		wantReject(t, res, err, ErrMalformedToken, "")
		allocs := testing.AllocsPerRun(20, func() { _, _ = c.ValidateToken(t.Context(), bad) })
		if allocs > 1 {
			t.Errorf("%s: %v allocations, want at most 1 (the error)", name, allocs)
		}
	}
	// Just under the limit, 64 KiB of dots are split without allocating beyond the error.
	dots := strings.Repeat(".", 64<<10)
	if allocs := testing.AllocsPerRun(20, func() { _, _ = c.ValidateToken(t.Context(), dots) }); allocs > 1 {
		t.Errorf("64 KiB of dots: %v allocations", allocs)
	}
	if n := idp.Count(mockidp.EndpointJWKS); n != 0 {
		t.Errorf("%d JWKS requests", n)
	}
}

// TestTV30JSONSerialization: only compact JWS is accepted.
func TestTV30JSONSerialization(t *testing.T) {
	t.Parallel()
	idp := mockidp.NewInMemory()
	c := newValidationClient(t, idp)
	tok := mint(t, idp, nil, nil)
	p := strings.Split(tok, ".")
	for name, bad := range map[string]string{
		"flattened":           `{"protected":"` + p[0] + `","payload":"` + p[1] + `","signature":"` + p[2] + `"}`,
		"general":             `{"payload":"` + p[1] + `","signatures":[{"protected":"` + p[0] + `","signature":"` + p[2] + `"}]}`,
		"no protected":        `{"payload":"` + p[1] + `","signature":"` + p[2] + `"}`,
		"polyglot":            `{"a":"` + tok + `"}`,
		"compact inside JSON": `"` + tok + `"`,
		"leading whitespace":  ` {"payload":"` + p[1] + `"}`,
	} {
		res, err := c.ValidateToken(t.Context(), bad)
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		wantReject(t, res, err, ErrMalformedToken, "")
	}
}

// TestTV31JWERefused: encrypted tokens are refused outright; nothing is decrypted or inflated.
func TestTV31JWERefused(t *testing.T) {
	t.Parallel()
	idp := mockidp.NewInMemory()
	c := newValidationClient(t, idp)
	jweHeaders := []string{
		`{"alg":"RSA-OAEP","enc":"A256GCM","zip":"DEF"}`,
		`{"alg":"PBES2-HS256+A128KW","p2c":2147483647,"p2s":"c2FsdA","enc":"A128GCM"}`,
		`{"alg":"dir","enc":"A128GCM","cty":"JWT"}`,
	}
	for _, h := range jweHeaders {
		bad := b64(h) + ".ZW5jcnlwdGVka2V5.aXY.Y2lwaGVydGV4dA.dGFn"
		res, err := c.ValidateToken(t.Context(), bad)
		wantReject(t, res, err, ErrMalformedToken, "")
		if !strings.Contains(err.Error(), "JWE") {
			t.Errorf("err = %v, want it to name JWE", err)
		}
	}
	// A three-segment token with JWE parameters in its header.
	for _, h := range []map[string]any{{"enc": "A128GCM"}, {"zip": "DEF"}} {
		tok := mint(t, idp, h, nil)
		res, err := c.ValidateToken(t.Context(), tok)
		wantReject(t, res, err, ErrMalformedToken, tok)
	}
}

// TestTV33JSONShape: header and payload must be single JSON objects of valid UTF-8 with finite
// numbers. Payload cases are validly signed, so they reach the payload parser.
func TestTV33JSONShape(t *testing.T) {
	t.Parallel()
	idp := mockidp.NewInMemory()
	c := newValidationClient(t, idp)
	kid := idp.SigningKey().KeyID
	now := time.Now().Unix()
	good := `{"iss":"` + idp.Issuer + `","sub":"u","aud":"` + testClientID + `","iat":` + itoa(now) + `,"exp":` + itoa(now+600) + `}`
	hdr := `{"alg":"RS256","kid":"` + kid + `"}`
	wantAccept(t)(c.ValidateToken(t.Context(), signRaw(t, idp, hdr, good)))
	body := good[1 : len(good)-1]
	payloads := map[string]string{
		"array":           `[` + good + `]`,
		"string":          `"` + body + `"`,
		"null":            `null`,
		"invalid UTF-8":   `{` + body + `,"x":"` + "\xff\xfe" + `"}`,
		"BOM":             "\xef\xbb\xbf" + good,
		"trailing bytes":  good + `x`,
		"two objects":     good + good,
		"1e400":           `{` + body + `,"x":1e400}`,
		"-1e400 nested":   `{` + body + `,"x":{"y":[-1e400]}}`,
		"exp 1e400":       `{"iss":"` + idp.Issuer + `","sub":"u","aud":"` + testClientID + `","iat":1,"exp":1e400}`,
		"duplicate iss":   `{` + body + `,"iss":"https://evil.example"}`,
		"escaped dup iss": `{` + body + `,"\u0069ss":"https://evil.example"}`,
		"duplicate other": `{` + body + `,"role":"user","role":"admin"}`,
		"deep nesting":    `{` + body + `,"x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`,
		"bad escape":      `{` + body + `,"x":"\q"}`,
		"control char":    `{` + body + `,"x":"a` + "\x01" + `"}`,
		"leading zero":    `{` + body + `,"x":01}`,
		"NaN":             `{` + body + `,"x":NaN}`,
		"single quotes":   `{'iss':'x'}`,
		"trailing comma":  `{` + body + `,}`,
	}
	for name, p := range payloads {
		tok := signRaw(t, idp, hdr, p)
		res, err := c.ValidateToken(t.Context(), tok)
		if err == nil {
			t.Fatalf("payload %s: accepted", name)
		}
		wantReject(t, res, err, ErrMalformedToken, tok)
	}
	headers := map[string]string{
		"array":          `[` + hdr + `]`,
		"string":         `"RS256"`,
		"null":           `null`,
		"invalid UTF-8":  `{"alg":"RS256","kid":"` + kid + `","x":"` + "\xc3\x28" + `"}`,
		"BOM":            "\xef\xbb\xbf" + hdr,
		"trailing bytes": hdr + ` {}`,
		"1e400":          `{"alg":"RS256","kid":"` + kid + `","x":1e400}`,
		"duplicate alg":  `{"alg":"none","kid":"` + kid + `","alg":"RS256"}`,
		"no alg":         `{"kid":"` + kid + `"}`,
		"alg number":     `{"alg":256,"kid":"` + kid + `"}`,
	}
	for name, h := range headers {
		tok := signRaw(t, idp, h, good)
		res, err := c.ValidateToken(t.Context(), tok)
		if err == nil {
			t.Fatalf("header %s: accepted", name)
		}
		wantReject(t, res, err, ErrMalformedToken, tok)
	}
	// Whitespace inside the JSON is fine.
	spaced := "{ \"alg\" : \"RS256\" ,\n\t\"kid\":\"" + kid + "\" }\n"
	wantAccept(t)(c.ValidateToken(t.Context(), signRaw(t, idp, spaced, " "+good[:1]+" "+good[1:]+" ")))
}

// TestTV34SignatureBeforeClaims: the signature error wins, and no claim leaks with any error.
func TestTV34SignatureBeforeClaims(t *testing.T) {
	t.Parallel()
	idp := mockidp.NewInMemory()
	c := newValidationClient(t, idp)
	expiredBadSig := flip(mint(t, idp, nil, set("exp", time.Now().Add(-time.Hour).Unix())), 3)
	res, err := c.ValidateToken(t.Context(), expiredBadSig)
	wantReject(t, res, err, ErrInvalidSignature, expiredBadSig)
	if errorsIsAny(err, ErrTokenExpired) {
		t.Errorf("err = %v also says expired", err)
	}
	wrongIssBadSig := flip(mint(t, idp, nil, set("iss", "https://evil.example")), 3)
	res, err = c.ValidateToken(t.Context(), wrongIssBadSig)
	wantReject(t, res, err, ErrInvalidSignature, wrongIssBadSig)
	// Payload garbage behind a bad signature is never parsed.
	garbage := signRaw(t, idp, `{"alg":"RS256","kid":"`+idp.SigningKey().KeyID+`"}`, `not json`)
	res, err = c.ValidateToken(t.Context(), flip(garbage, 1))
	wantReject(t, res, err, ErrInvalidSignature, "")
	// Valid signature, bad claims: a claim error, and still no result.
	tok := mint(t, idp, nil, set("aud", "other"))
	res, err = c.ValidateToken(t.Context(), tok)
	wantReject(t, res, err, ErrInvalidAudience, tok)
	if strings.Contains(err.Error(), testSubject) {
		t.Errorf("error carries claim values: %v", err)
	}
}

// TestTV36RefreshedIDToken: an ID token from a refresh response must keep iss and sub (OpenID
// Connect Core §12.2); the caller passes the original subject with ExpectSubject.
func TestTV36RefreshedIDToken(t *testing.T) {
	t.Parallel()
	runClaimCases(t, verifyIDToken(ExpectSubject(testSubject)), []claimCase{
		{"other sub", set("sub", "user-2"), ErrInvalidClaim},
		{"other iss", set("iss", "https://other.example/oidc"), ErrInvalidIssuer},
		{"same iss and sub", nil, nil},
	})
}

// TestTV37NumericDates: floats are accepted; other types are refused; unknown claims ignored.
func TestTV37NumericDates(t *testing.T) {
	t.Parallel()
	now := float64(time.Now().Unix())
	runClaimCases(t, validateToken, []claimCase{
		{"float iat and exp", func(m map[string]any) { m["iat"] = now - 0.5; m["exp"] = now + 600.5 }, nil},
		{"exp true", set("exp", true), ErrInvalidClaim},
		{"exp null", set("exp", nil), ErrInvalidClaim},
		{"iat string", set("iat", "1700000000"), ErrInvalidClaim},
		{"iat false", set("iat", false), ErrInvalidClaim},
		{"nbf array", set("nbf", []int{1}), ErrInvalidClaim},
		{"unknown claims", func(m map[string]any) { m["x-vendor"] = map[string]any{"a": []any{1, true, nil}}; m["n"] = 1e300 }, nil},
	})
	idp := mockidp.NewInMemory()
	c := newValidationClient(t, idp)
	tok := mint(t, idp, nil, set("exp", now+600.75))
	res := wantAccept(t)(c.ValidateToken(t.Context(), tok))
	if got := res.Entity.Expiry.UnixMilli(); got != int64(now*1000)+600750 {
		t.Errorf("expiry %v, want the fraction kept", res.Entity.Expiry)
	}
}

// TestClaimsCaseFoldedDuplicate: encoding/json, which Claims uses, matches struct fields without
// regard to case (Unicode simple folding: "SUB", "Sub" and "ſub" all fill `json:"sub"`), so a
// payload with "sub" and "SUB" would show Claims another subject than the validator checked.
// Member names that are equal under case folding are refused like exact duplicates, and so are
// names that differ from a claim the validator reads only in case ("AZP" would fill `json:"azp"`).
func TestClaimsCaseFoldedDuplicate(t *testing.T) {
	t.Parallel()
	idp := mockidp.NewInMemory()
	c := newValidationClient(t, idp)
	now := time.Now().Unix()
	good := `{"iss":"` + idp.Issuer + `","sub":"u","aud":"` + testClientID + `","iat":` + itoa(now) + `,"exp":` + itoa(now+600)
	hdr := `{"alg":"RS256","kid":"` + idp.SigningKey().KeyID + `"}`
	var manyClaims string // past the 24 names memberSet keeps in an array
	for i := range 30 {
		manyClaims += `,"x` + itoa(int64(i)) + `":1`
	}
	for name, extra := range map[string]string{
		"SUB":            `,"SUB":"admin"`,
		"Sub":            `,"Sub":"admin"`,
		"long s":         `,"ſub":"admin"`,
		"escaped":        `,"\u0053UB":"admin"`,
		"Kelvin sign":    `,"role":"user","\u212aey":1,"key":2`,
		"unknown claims": `,"groups":["user"],"GROUPS":["admin"]`,
		"ISS":            `,"ISS":"https://evil.example"`,
		"empty names":    `,"":1,"":2`,
		"many claims":    manyClaims + `,"X29":1`,
		"many, long s":   manyClaims + `,"ſ":1,"s":2`,
		"AZP alone":      `,"AZP":"evil"`,
		"Nonce alone":    `,"Nonce":"n"`,
		"auth_req_id":    `,"URN:openid:params:jwt:claim:auth_req_id":"r"`,
	} {
		tok := signRaw(t, idp, hdr, good+extra+`}`)
		res, err := c.ValidateToken(t.Context(), tok)
		if err == nil {
			var cl struct {
				Sub string `json:"sub"`
			}
			_ = res.Claims(&cl)
			t.Fatalf("%s: accepted: Entity.Subject %q, Claims sub %q", name, res.Entity.Subject, cl.Sub)
		}
		wantReject(t, res, err, ErrMalformedToken, tok)
	}
	// Names that only look alike stay apart.
	for _, extra := range []string{`,"sub_":"x","su":"y","subs":"z"`, `,"":1`, manyClaims, manyClaims + `,"ſ":1,"k":2`} {
		wantAccept(t)(c.ValidateToken(t.Context(), signRaw(t, idp, hdr, good+extra+`}`)))
	}
}
