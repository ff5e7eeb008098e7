package onesoidc

import (
	"crypto"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/ones-now/onesoidc/onesoidctest"
)

// TestDifferentialGoOIDC runs a corpus of valid and invalid ID tokens through VerifyIDToken and
// go-oidc's verifier (oidc.NewVerifier with a StaticKeySet of the provider key). Both must agree,
// except where go-oidc checks less than OpenID Connect Core §3.1.3.7, RFC 8725 and RFC 9068 ask;
// each exception is listed with its reason and asserted too, so that a change on either side
// shows up. Tokens stay away from time boundaries: go-oidc has no leeway on exp and 5 minutes on
// nbf, onesoidc one leeway of 60 s.
func TestDifferentialGoOIDC(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	key := onesoidctest.NewKey("ES256")
	idp.UseKey(key)
	c := newValidationClient(t, idp)
	gooidc := oidc.NewVerifier(idp.Issuer, &oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{key.Public().Key}},
		&oidc.Config{ClientID: testClientID, SupportedSigningAlgs: []string{"ES256", "RS256"}})
	now := time.Now()
	kid := key.KeyID
	good := `{"iss":"` + idp.Issuer + `","sub":"u","aud":"` + testClientID + `","iat":` + itoa(now.Unix()-30) + `,"exp":` + itoa(now.Unix()+600)
	hdr := `{"alg":"ES256","kid":"` + kid + `"}`
	raw := func(h, p string) func(t *testing.T) string {
		return func(t *testing.T) string { return signRaw(t, idp, h, p) }
	}
	claims := func(edit func(map[string]any)) func(t *testing.T) string {
		return func(t *testing.T) string { return mint(t, idp, nil, edit) }
	}
	header := func(h map[string]any) func(t *testing.T) string {
		return func(t *testing.T) string { return mint(t, idp, h, nil) }
	}
	corpus := []struct {
		name      string
		token     func(t *testing.T) string
		accept    bool   // onesoidc's verdict
		exception string // why go-oidc decides the other way, if it does
	}{
		{"valid", claims(nil), true, ""},
		{"aud array", claims(set("aud", []string{testClientID})), true, ""},
		{"float dates", claims(func(m map[string]any) { m["exp"] = float64(now.Unix()) + 600.5 }), true, ""},
		{"unknown claims", claims(set("x", map[string]any{"y": []int{1}})), true, ""},
		{"typ JWT", header(map[string]any{"typ": "JWT"}), true, ""},
		{"azp = client", claims(set("azp", testClientID)), true, ""},
		{"flipped signature", func(t *testing.T) string { return flip(mint(t, idp, nil, nil), 5) }, false, ""},
		{"empty signature", func(t *testing.T) string {
			tok := mint(t, idp, nil, nil)
			return tok[:strings.LastIndexByte(tok, '.')+1]
		}, false, ""},
		{"alg none", header(map[string]any{"alg": "none"}), false, ""},
		{"HS256", func(t *testing.T) string { return mintWith(t, idp, hmacKey(kid), nil, nil) }, false, ""},
		{"other issuer", claims(set("iss", "https://evil.example")), false, ""},
		{"issuer with slash", claims(set("iss", idp.Issuer+"/")), false, ""},
		{"iss missing", claims(del("iss")), false, ""},
		{"other audience", claims(set("aud", "other")), false, ""},
		{"aud missing", claims(del("aud")), false, ""},
		{"aud number", claims(set("aud", 5)), false, ""},
		{"expired an hour ago", claims(set("exp", now.Unix()-3600)), false, ""},
		{"exp missing", claims(del("exp")), false, ""}, // go-oidc: the zero time, so expired
		{"nbf in 10 minutes", claims(set("nbf", now.Unix()+600)), false, ""},
		{"two segments", func(t *testing.T) string { tok := mint(t, idp, nil, nil); return tok[:strings.LastIndexByte(tok, '.')] }, false, ""},
		{"JWE", func(*testing.T) string { return b64(`{"alg":"dir","enc":"A128GCM"}`) + "..aXY.Y3Q.dGFn" }, false, ""},
		{"JSON serialization", func(t *testing.T) string {
			p := strings.Split(mint(t, idp, nil, nil), ".")
			return `{"protected":"` + p[0] + `","payload":"` + p[1] + `","signature":"` + p[2] + `"}`
		}, false, "go-jose parses the flattened JSON serialization too (onesoidc: compact only, TV-30)"},
		{"jwk in header, attacker key", func(t *testing.T) string {
			att := onesoidctest.NewKey("ES256")
			return mintWith(t, idp, att, map[string]any{"jwk": map[string]any{"kty": "EC"}}, nil)
		}, false, ""},
		{"crit", header(map[string]any{"crit": []string{"exp"}}), false, ""},
		{"payload trailing garbage", raw(hdr, good+`}x`), false, ""},
		{"payload array", raw(hdr, `[`+good+`}]`), false, ""},
		// Where go-oidc checks less.
		{"iat missing", claims(del("iat")), false, "go-oidc does not require iat (OIDC Core §2 does; TV-18)"},
		{"iat a week old", claims(set("iat", now.Unix()-7*24*3600)), false, "go-oidc has no iat age limit (TV-19)"},
		{"sub missing", claims(del("sub")), false, "go-oidc does not require sub (TV-21)"},
		{"typ at+jwt", header(map[string]any{"typ": "at+jwt"}), false, "go-oidc ignores typ (RFC 8725 §3.11, TV-24)"},
		{"azp other", claims(set("azp", "other")), false, "go-oidc ignores azp (OIDC Core §3.1.3.7 item 5, TV-14)"},
		{"two audiences without azp", claims(set("aud", []string{testClientID, "other"})), false, "go-oidc ignores azp (TV-14)"},
		{"exp as a string", claims(set("exp", itoa(now.Unix()+600))), false, "go-oidc reads json.Number from a string (RFC 7519 §2 NumericDate is a number, TV-15)"},
		{"unknown kid", header(map[string]any{"kid": "other"}), false, "a StaticKeySet ignores kid; onesoidc selects the key by kid"},
		{"duplicate claim", raw(hdr, good+`,"iss":"https://evil.example","iss":"`+idp.Issuer+`"}`), false, "encoding/json keeps the last duplicate; onesoidc refuses duplicates (RFC 7519 §4)"},
		{"1e400 in a claim", raw(hdr, good+`,"x":1e400}`), false, "encoding/json skips unknown members unchecked (RFC 8725 §3.7, TV-33)"},
		{"invalid UTF-8 in a claim", raw(hdr, good+`,"x":"`+"\xff"+`"}`), false, "encoding/json replaces invalid UTF-8 (TV-33)"},
	}
	for _, tc := range corpus {
		t.Run(tc.name, func(t *testing.T) {
			tok := tc.token(t)
			_, ourErr := c.VerifyIDToken(t.Context(), tok)
			_, theirErr := gooidc.Verify(t.Context(), tok)
			ours, theirs := ourErr == nil, theirErr == nil
			if ours != tc.accept {
				t.Fatalf("onesoidc accepted=%v (%v), want %v", ours, ourErr, tc.accept)
			}
			if tc.exception == "" && theirs != ours {
				t.Errorf("go-oidc accepted=%v (%v), onesoidc %v", theirs, theirErr, ours)
			}
			if tc.exception != "" && theirs == ours {
				t.Errorf("documented difference gone (%s): both accepted=%v", tc.exception, ours)
			}
		})
	}
}
