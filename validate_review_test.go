package onesoidc

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ones-now/onesoidc/onesoidctest"
)

// TestNestedJSONDepthIsBounded: a signed payload or header whose extra member nests arrays or
// objects deeper than 32 levels (up to 20,000, within the 64 KiB token bound) is refused as
// malformed without exhausting the stack; 31 levels of a claim the validator does not read are
// accepted and decode with Claims.
func TestNestedJSONDepthIsBounded(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	c := newValidationClient(t, idp)
	k := idp.SigningKey()
	header := fmt.Sprintf(`{"alg":%q,"kid":%q,"typ":"JWT"`, k.Algorithm, k.KeyID)
	claims, _ := json.Marshal(idp.Claims(testClientID, testSubject))
	payload := func(extra string) string { return string(claims[:len(claims)-1]) + `,"x":` + extra + `}` }
	nest := func(open, close string, n int) string {
		return strings.Repeat(open, n) + "1" + strings.Repeat(close, n)
	}
	for name, tok := range map[string]string{
		"arrays 33":         signRaw(t, idp, header+"}", payload(nest("[", "]", 33))),
		"objects 33":        signRaw(t, idp, header+"}", payload(nest(`{"a":`, "}", 33))),
		"arrays 20000":      signRaw(t, idp, header+"}", payload(nest("[", "]", 20000))),
		"objects 5000":      signRaw(t, idp, header+"}", payload(nest(`{"a":`, "}", 5000))),
		"header arrays 300": signRaw(t, idp, header+`,"x":`+nest("[", "]", 300)+"}", string(claims)),
	} {
		res, err := c.ValidateToken(t.Context(), tok)
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		wantReject(t, res, err, ErrMalformedToken, tok)
	}
	res := wantAccept(t)(c.ValidateToken(t.Context(), signRaw(t, idp, header+"}", payload(nest("[", "]", 31)))))
	var v struct{ X any }
	if err := res.Claims(&v); err != nil || v.X == nil {
		t.Errorf("Claims of 31 levels: %v, %v", v, err)
	}
}

// TestSenderConstrainedAccessTokensAreNotBearerTokens: an access token bound to a key by "cnf"
// (RFC 7800 §3.1) — a DPoP-bound token (cnf.jkt, RFC 9449 §6) or a certificate-bound one
// (cnf["x5t#S256"], RFC 8705 §3) — may only be used with a proof of possession that this package
// cannot check; taken as a bearer token, a stolen one works for anyone. A JWT access token or an
// introspection answer that carries cnf is refused with ErrInvalidTokenType naming "cnf", by
// VerifyAccessToken, ValidateToken and RequireToken; "CNF" is refused as a case variant.
func TestSenderConstrainedAccessTokensAreNotBearerTokens(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	c := newValidationClient(t, idp)
	for name, cnf := range map[string]any{
		"DPoP":        map[string]any{"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},
		"certificate": map[string]any{"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"},
	} {
		tok := mint(t, idp, map[string]any{"typ": "at+jwt"}, func(m map[string]any) {
			atClaims(idp, testClientID)(m)
			m["cnf"] = cnf
		})
		for call, validate := range map[string]func() (*AuthenticationResult, error){
			"VerifyAccessToken": func() (*AuthenticationResult, error) { return c.VerifyAccessToken(t.Context(), tok) },
			"ValidateToken":     func() (*AuthenticationResult, error) { return c.ValidateToken(t.Context(), tok) },
		} {
			res, err := validate()
			if err == nil {
				t.Fatalf("%s %s: accepted", name, call)
			}
			wantReject(t, res, err, ErrInvalidTokenType, tok)
			if ve := (*ValidationError)(nil); errors.As(err, &ve) && ve.Claim != "cnf" {
				t.Errorf("%s %s: claim %q, want cnf", name, call, ve.Claim)
			}
		}
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		c.RequireToken(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("handler reached") })).ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("%s RequireToken: %d, want 401", name, w.Code)
		}
	}
	caseVariant := mint(t, idp, map[string]any{"typ": "at+jwt"}, func(m map[string]any) {
		atClaims(idp, testClientID)(m)
		m["CNF"] = map[string]any{"jkt": "x"}
	})
	res, err := c.ValidateToken(t.Context(), caseVariant)
	wantReject(t, res, err, ErrMalformedToken, caseVariant)

	// Introspection: an answer with cnf, Bearer or not, is no bearer token either.
	for _, body := range []string{
		`{"active":true,"token_type":"Bearer","sub":"alice","client_id":"x","cnf":{"x5t#S256":"bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}}`,
		`{"active":true,"token_type":"Bearer","sub":"alice","client_id":"x","CNF":{"jkt":"x"}}`,
	} {
		idp := onesoidctest.NewInMemory(onesoidctest.WithOpaqueAccessTokens())
		c := newTestClient(t, idp, testKey(t, "EdDSA"))
		idp.Inject(onesoidctest.EndpointIntrospection, onesoidctest.Fault{Status: 200, ContentType: "application/json", Body: []byte(body)})
		res, err := c.ValidateToken(t.Context(), "opaque-token")
		if res != nil || err == nil || !errorsIsAny(err, ErrInvalidTokenType, ErrIntrospectionUnavailable) {
			t.Errorf("%s: %v, %v; want it refused", body, res, err)
		}
	}
	// Without cnf the same access token is accepted.
	wantAccept(t)(c.VerifyAccessToken(t.Context(), mint(t, idp, map[string]any{"typ": "at+jwt"}, atClaims(idp, testClientID))))
}

// TestCachedTokenVariantsAreNeverHits: after a token validated (and was cached), variants that
// lenient base64url decoders read as the same bytes — "=" padding on any segment, a last
// signature character with non-zero trailing bits (RFC 4648 §3.5), surrounding whitespace — are
// neither served from the cache nor accepted: the cache key is the whole string, and the strict
// decoder refuses them before any key lookup.
func TestCachedTokenVariantsAreNeverHits(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		idp := onesoidctest.NewInMemory()
		idp.UseKey(onesoidctest.NewKey(alg))
		idp.EditMetadata(func(d map[string]any) { d["id_token_signing_alg_values_supported"] = []string{alg} })
		c := newValidationClient(t, idp)
		tok := mint(t, idp, nil, nil)
		wantAccept(t)(c.ValidateToken(t.Context(), tok))
		parts := strings.Split(tok, ".")
		last := parts[2][len(parts[2])-1]
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		nonCanonical := parts[2][:len(parts[2])-1] + string(alphabet[strings.IndexByte(alphabet, last)|1])
		for name, v := range map[string]string{
			"signature padded":       tok + "=",
			"signature padded twice": tok + "==",
			"header padded":          parts[0] + "=." + parts[1] + "." + parts[2],
			"payload padded":         parts[0] + "." + parts[1] + "=." + parts[2],
			"trailing bits":          parts[0] + "." + parts[1] + "." + nonCanonical,
			"leading space":          " " + tok,
			"trailing newline":       tok + "\n",
			"trailing dot":           tok + ".",
		} {
			if v == tok {
				t.Fatalf("%s %s: not a variant", alg, name)
			}
			res, err := c.ValidateToken(t.Context(), v)
			if err == nil {
				t.Fatalf("%s %s: accepted", alg, name)
			}
			wantReject(t, res, err, ErrMalformedToken, v)
		}
		if n := idp.Count(onesoidctest.EndpointJWKS); n != 1 {
			t.Errorf("%s: %d JWKS requests, want 1", alg, n)
		}
	}
}

// TestOverlongAndSurrogateUTF8IsRefused: overlong encodings (of '"', '/' and NUL) and encoded
// UTF-16 surrogates are not UTF-8 (RFC 3629 §3, RFC 8259 §8.1), in a claim value, a claim name
// or the header: the token is refused as malformed, so that no decoder that would read them as
// a quote or a slash ever sees them.
func TestOverlongAndSurrogateUTF8IsRefused(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	c := newValidationClient(t, idp)
	k := idp.SigningKey()
	header := fmt.Sprintf(`{"alg":%q,"kid":%q}`, k.Algorithm, k.KeyID)
	claims, _ := json.Marshal(idp.Claims(testClientID, testSubject))
	body := string(claims[:len(claims)-1])
	for name, bad := range map[string]string{
		"overlong quote": "\xc0\xa2", "overlong slash": "\xc0\xaf", "overlong NUL": "\xc0\x80",
		"three-byte overlong slash": "\xe0\x80\xaf", "surrogate": "\xed\xa0\x80",
	} {
		for where, tok := range map[string]string{
			"value":  signRaw(t, idp, header, body+`,"x":"a`+bad+`b"}`),
			"name":   signRaw(t, idp, header, body+`,"x`+bad+`":1}`),
			"header": signRaw(t, idp, header[:len(header)-1]+`,"x":"`+bad+`"}`, string(claims)),
		} {
			res, err := c.ValidateToken(t.Context(), tok)
			if err == nil {
				t.Fatalf("%s in a %s: accepted", name, where)
			}
			wantReject(t, res, err, ErrMalformedToken, tok)
		}
	}
}
