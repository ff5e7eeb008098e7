package onesoidc

import (
	"context"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	gojose "github.com/go-jose/go-jose/v4"
	"github.com/ones-now/onesoidc/internal/jose"
	"github.com/ones-now/onesoidc/onesoidctest"
)

func TestValidateTokenAccepts(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			idp := onesoidctest.NewInMemory()
			idp.UseKey(onesoidctest.NewKey(alg))
			idp.EditMetadata(func(d map[string]any) { d["id_token_signing_alg_values_supported"] = jose.AllAlgs.Names() })
			c := newValidationClient(t, idp)
			tok := mint(t, idp, nil, func(cl map[string]any) {
				cl["preferred_username"] = "alice"
				cl["scope"] = "openid profile"
				cl["role"] = "admin"
				cl["amr"] = []string{"pwd", "otp"}
				cl["acr"] = "urn:ones:loa:2"
				cl["extra"] = map[string]any{"nested": []any{1, "x"}}
			})
			res := wantAccept(t)(c.ValidateToken(t.Context(), tok))
			e := res.Entity
			if res.Kind != KindIDToken || res.Algorithm != alg || res.KeyID != idp.SigningKey().KeyID {
				t.Errorf("result = %+v", res)
			}
			if e.Kind != EntityUser || e.Issuer != idp.Issuer || e.Subject != testSubject || !slices.Equal(e.Audience, []string{testClientID}) ||
				e.Username != "alice" || !e.HasScope("profile") || e.HasScope("prof") || e.Role != "admin" ||
				!slices.Equal(e.AuthMethods, []string{"pwd", "otp"}) || e.ACR != "urn:ones:loa:2" {
				t.Errorf("entity = %+v", e)
			}
			if d := time.Until(e.Expiry); d < 9*time.Minute || d > 10*time.Minute {
				t.Errorf("expiry in %v", d)
			}
			var extra struct {
				Extra struct{ Nested []any } `json:"extra"`
			}
			if err := res.Claims(&extra); err != nil || len(extra.Extra.Nested) != 2 {
				t.Errorf("Claims = %+v, %v", extra, err)
			}
			if raw := res.rawClaims(); raw["sub"] != testSubject || raw["extra"] == nil {
				t.Errorf("rawClaims = %v", raw)
			}
			// Again, from the verified-token cache.
			res2 := wantAccept(t)(c.ValidateToken(t.Context(), tok))
			if res2 == res || res2.Entity.Subject != testSubject || c.val.cache.len() != 1 {
				t.Errorf("cached result %p %+v", res2, res2.Entity)
			}
		})
	}
}

// TestTV01AlgNone: "none" in any spelling is refused before any key lookup, even when discovery
// lists it.
func TestTV01AlgNone(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	idp.EditMetadata(func(d map[string]any) { d["id_token_signing_alg_values_supported"] = []string{"none", "RS256"} })
	c := newValidationClient(t, idp)
	for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
		tok := mint(t, idp, map[string]any{"alg": alg, "kid": onesoidctest.Omit}, nil)
		if !strings.HasSuffix(tok, ".") {
			t.Fatalf("unsigned token expected: %s", tok)
		}
		res, err := c.ValidateToken(t.Context(), tok)
		wantReject(t, res, err, ErrUnsupportedAlgorithm, tok)
		// With the kid of a real key too.
		tok = mint(t, idp, map[string]any{"alg": alg}, nil)
		res, err = c.VerifyIDToken(t.Context(), tok)
		wantReject(t, res, err, ErrUnsupportedAlgorithm, tok)
	}
	if n := idp.Count(onesoidctest.EndpointJWKS); n != 0 {
		t.Errorf("%d JWKS requests for unsigned tokens, want 0", n)
	}
}

// TestTV02EmptyOrWrongLengthSignature: RS256 with an empty, short or long signature.
func TestTV02EmptyOrWrongLengthSignature(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	c := newValidationClient(t, idp)
	tok := mint(t, idp, nil, nil)
	input := tok[:strings.LastIndexByte(tok, '.')]
	sig, _ := base64.RawURLEncoding.DecodeString(tok[len(input)+1:])
	for name, bad := range map[string]string{
		"empty":     input + ".",
		"truncated": input + "." + base64.RawURLEncoding.EncodeToString(sig[:len(sig)-1]),
		"extended":  input + "." + base64.RawURLEncoding.EncodeToString(append(sig[:len(sig):len(sig)], 0)),
		"half":      input + "." + base64.RawURLEncoding.EncodeToString(sig[:128]),
	} {
		res, err := c.ValidateToken(t.Context(), bad)
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		wantReject(t, res, err, ErrInvalidSignature, bad)
	}
}

// flip changes one byte of the signature of tok.
func flip(tok string, i int) string {
	dot := strings.LastIndexByte(tok, '.')
	sig, _ := base64.RawURLEncoding.DecodeString(tok[dot+1:])
	sig[i%len(sig)] ^= 0x01
	return tok[:dot+1] + base64.RawURLEncoding.EncodeToString(sig)
}

// TestTV03FlippedSignatureRS256: a flipped byte is refused for every entry point, without a
// JWKS refetch.
func TestTV03FlippedSignatureRS256(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	c := newValidationClient(t, idp)
	tok := mint(t, idp, nil, nil)
	wantAccept(t)(c.ValidateToken(t.Context(), tok))
	for i := range 8 {
		bad := flip(tok, i*37)
		res, err := c.VerifyIDToken(t.Context(), bad)
		wantReject(t, res, err, ErrInvalidSignature, bad)
		res, err = c.ValidateToken(t.Context(), bad)
		wantReject(t, res, err, ErrInvalidSignature, bad)
	}
	if n := idp.Count(onesoidctest.EndpointJWKS); n != 1 {
		t.Errorf("%d JWKS requests, want 1", n)
	}
}

// TestTV04BadECDSASignatures: flipped byte, DER encoding, 63/65 bytes, r = s = 0, r = n.
func TestTV04BadECDSASignatures(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	key := onesoidctest.NewKey("ES256")
	idp.UseKey(key)
	c := newValidationClient(t, idp)
	tok := mint(t, idp, nil, nil)
	wantAccept(t)(c.ValidateToken(t.Context(), tok))
	dot := strings.LastIndexByte(tok, '.')
	input := tok[:dot]
	sig, _ := base64.RawURLEncoding.DecodeString(tok[dot+1:])
	n := elliptic.P256().Params().N.FillBytes(make([]byte, 32))
	withSig := func(s []byte) string { return input + "." + base64.RawURLEncoding.EncodeToString(s) }
	cases := map[string]string{
		"flipped":   flip(tok, 10),
		"DER":       withSig(jose.ASN1Signature(nil, sig[:32], sig[32:])),
		"63 bytes":  withSig(sig[:63]),
		"65 bytes":  withSig(append(slices.Clone(sig), 0)),
		"zeros":     withSig(make([]byte, 64)),
		"r = n":     withSig(append(slices.Clone(n), sig[32:]...)),
		"s = n":     withSig(append(slices.Clone(sig[:32]), n...)),
		"r = 0":     withSig(append(make([]byte, 32), sig[32:]...)),
		"128 bytes": withSig(append(slices.Clone(sig), sig...)),
	}
	for name, bad := range cases {
		res, err := c.ValidateToken(t.Context(), bad)
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		wantReject(t, res, err, ErrInvalidSignature, bad)
	}
}

// TestTV05HS256WithRSAPublicKeyAsSecret: the classic key confusion is refused as an
// unsupported algorithm.
func TestTV05HS256WithRSAPublicKeyAsSecret(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	c := newValidationClient(t, idp)
	rsaKey := idp.SigningKey()
	pub := rsaKey.Public().Key.(*rsa.PublicKey)
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string][]byte{
		"PEM":   pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		"DER":   der,
		"JWK n": []byte(base64.RawURLEncoding.EncodeToString(pub.N.Bytes())),
	}
	for name, secret := range secrets {
		mac := &gojose.JSONWebKey{Key: secret, KeyID: rsaKey.KeyID, Algorithm: "HS256"}
		tok := mintWith(t, idp, mac, nil, nil)
		res, err := c.ValidateToken(t.Context(), tok)
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		wantReject(t, res, err, ErrUnsupportedAlgorithm, tok)
	}
}

// TestTV06HS256Refused: this SDK has no client secret; HS* is never accepted.
func TestTV06HS256Refused(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	idp.EditMetadata(func(d map[string]any) { d["id_token_signing_alg_values_supported"] = []string{"HS256", "RS256"} })
	c := newValidationClient(t, idp)
	for _, alg := range []string{"HS256", "HS384", "HS512"} {
		tok := mintWith(t, idp, &gojose.JSONWebKey{Key: []byte("a shared secret of 32 bytes....."), Algorithm: alg}, nil, nil)
		res, err := c.ValidateToken(t.Context(), tok)
		wantReject(t, res, err, ErrUnsupportedAlgorithm, tok)
	}
	if _, err := tryTestClient(t, idp, WithSigningAlgorithms("HS256")); err == nil {
		t.Error("WithSigningAlgorithms(HS256) accepted")
	}
}

// TestTV07AlternateAlgorithm: the allow-list is configured ∩ discovery ∩ supported.
func TestTV07AlternateAlgorithm(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	tok := mint(t, idp, nil, nil) // RS256 by a real provider key
	for _, alg := range []string{"PS256", "ES256"} {
		c := newValidationClient(t, idp, WithSigningAlgorithms(alg))
		res, err := c.ValidateToken(t.Context(), tok)
		wantReject(t, res, err, ErrUnsupportedAlgorithm, tok)
	}
	// The provider announces ES256 only.
	idp2 := onesoidctest.NewInMemory()
	idp2.EditMetadata(func(d map[string]any) { d["id_token_signing_alg_values_supported"] = []string{"ES256"} })
	c := newValidationClient(t, idp2)
	tok2 := mint(t, idp2, nil, nil)
	res, err := c.ValidateToken(t.Context(), tok2)
	wantReject(t, res, err, ErrUnsupportedAlgorithm, tok2)
	// No algorithm in common, or none/HS* only: the client is not built (DS-08).
	for _, list := range [][]string{{"none"}, {"HS256"}, {"none", "HS256"}} {
		idp3 := onesoidctest.NewInMemory()
		idp3.EditMetadata(func(d map[string]any) { d["id_token_signing_alg_values_supported"] = list })
		var ce *ConfigError
		if _, err := tryTestClient(t, idp3); !errors.As(err, &ce) {
			t.Errorf("discovery %v: err = %v, want a ConfigError", list, err)
		}
	}
	if _, err := tryTestClient(t, idp2, WithSigningAlgorithms("RS256")); err == nil {
		t.Error("RS256-only client with an ES256-only provider was built")
	}
	for _, bad := range []string{"none", "HS256", "rs256", ""} {
		if _, err := tryTestClient(t, idp, WithSigningAlgorithms(bad)); err == nil {
			t.Errorf("WithSigningAlgorithms(%q) accepted", bad)
		}
	}
}

// TestTV08KeyAlgorithmMismatch: the header alg must fit the key its kid selects.
func TestTV08KeyAlgorithmMismatch(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	rsaKey := idp.SigningKey()
	ps := onesoidctest.NewKey("PS256") // an RSA key registered for PS256 only
	p384 := onesoidctest.NewKey("ES384")
	idp.AddKey(ps)
	idp.AddKey(p384)
	c := newValidationClient(t, idp)
	attacker := onesoidctest.NewKey("ES256")
	cases := map[string]string{
		"ES256 with the RSA key's kid":   mintWith(t, idp, attacker, map[string]any{"kid": rsaKey.KeyID}, nil),
		"RS256 with a PS256 key":         mintWith(t, idp, ps, map[string]any{"alg": "RS256"}, nil),
		"ES256 with a P-384 key":         mintWith(t, idp, p384, map[string]any{"alg": "ES256"}, nil),
		"EdDSA with the RSA key's kid":   mintWith(t, idp, onesoidctest.NewKey("EdDSA"), map[string]any{"kid": rsaKey.KeyID}, nil),
		"RS256 with the P-384 key's kid": mintWith(t, idp, ps, map[string]any{"alg": "RS256", "kid": p384.KeyID}, nil),
	}
	for name, tok := range cases {
		res, err := c.ValidateToken(t.Context(), tok)
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		wantReject(t, res, err, ErrUnknownKey, tok)
	}
	if n := idp.Count(onesoidctest.EndpointJWKS); n != 1 {
		t.Errorf("%d JWKS requests, want 1 (a known kid never refetches)", n)
	}
	// Positive control: the PS256 key verifies PS256.
	wantAccept(t)(c.ValidateToken(t.Context(), mintWith(t, idp, ps, nil, nil)))
}

// claimCase is a token whose claims are edited, and the error it must give.
type claimCase struct {
	name string
	edit func(map[string]any)
	want error // nil: accepted
}

type verifyFunc func(c *OpenIDConnectClient, tok string) (*AuthenticationResult, error)

func runClaimCases(t *testing.T, verify verifyFunc, cases []claimCase, opts ...Option) {
	t.Helper()
	idp := onesoidctest.NewInMemory()
	c := newValidationClient(t, idp, opts...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkClaimCase(t, idp, c, verify, tc) })
	}
}

// runClaimCasesInBubbles is runClaimCases with each case in a testing/synctest bubble of its
// own (provider, client, token and verification), for cases whose times are relative to when
// the token is minted (setIn): the bubble's clock stands still until the token is verified, so a
// case a second from a boundary holds however long a loaded machine takes.
func runClaimCasesInBubbles(t *testing.T, verify verifyFunc, cases []claimCase, opts ...Option) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				idp := onesoidctest.NewInMemory()
				checkClaimCase(t, idp, newValidationClient(t, idp, opts...), verify, tc)
			})
		})
	}
}

func checkClaimCase(t *testing.T, idp *onesoidctest.Server, c *OpenIDConnectClient, verify verifyFunc, tc claimCase) {
	t.Helper()
	tok := mint(t, idp, nil, tc.edit)
	res, err := verify(c, tok)
	if tc.want == nil {
		wantAccept(t)(res, err)
		return
	}
	wantReject(t, res, err, tc.want, tok)
}

func validateToken(c *OpenIDConnectClient, tok string) (*AuthenticationResult, error) {
	return c.ValidateToken(context.Background(), tok)
}

func verifyIDToken(opts ...VerifyOption) func(c *OpenIDConnectClient, tok string) (*AuthenticationResult, error) {
	return func(c *OpenIDConnectClient, tok string) (*AuthenticationResult, error) {
		return c.VerifyIDToken(context.Background(), tok, opts...)
	}
}

func set(k string, v any) func(map[string]any) { return func(m map[string]any) { m[k] = v } }
func del(k string) func(map[string]any)        { return func(m map[string]any) { delete(m, k) } }

// setIn sets the NumericDate k to d from when the token is minted.
func setIn(k string, d time.Duration) func(map[string]any) {
	return func(m map[string]any) { m[k] = time.Now().Add(d).Unix() }
}

func TestTV09IssuerMismatch(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory() // issuer http://localhost/oidc
	runClaimCases(t, validateToken, []claimCase{
		{"other issuer", set("iss", "https://evil.example/oidc"), ErrInvalidIssuer},
		{"trailing slash", set("iss", idp.Issuer+"/"), ErrInvalidIssuer},
		{"different case", set("iss", "http://LOCALHOST/oidc"), ErrInvalidIssuer},
		{"https variant", set("iss", "https://localhost/oidc"), ErrInvalidIssuer},
		{"prefix", set("iss", "http://localhost/oid"), ErrInvalidIssuer},
		{"exact", nil, nil},
	})
}

func TestTV10IssuerMissingOrNotString(t *testing.T) {
	t.Parallel()
	runClaimCases(t, validateToken, []claimCase{
		{"absent", del("iss"), ErrInvalidIssuer},
		{"null", set("iss", nil), ErrInvalidIssuer},
		{"number", set("iss", 1), ErrInvalidIssuer},
		{"array", set("iss", []string{"http://localhost/oidc"}), ErrInvalidIssuer},
	})
}

func TestTV11AudienceOtherClient(t *testing.T) {
	t.Parallel()
	runClaimCases(t, validateToken, []claimCase{
		{"other client", set("aud", "6a1b2c3d-0000-4000-8000-000000000000"), ErrInvalidAudience},
		{"array of others", set("aud", []string{"a", "b"}), ErrInvalidAudience},
	})
}

func TestTV12AudienceMissingOrMalformed(t *testing.T) {
	t.Parallel()
	runClaimCases(t, validateToken, []claimCase{
		{"absent", del("aud"), ErrInvalidAudience},
		{"empty array", set("aud", []string{}), ErrInvalidAudience},
		{"empty string", set("aud", ""), ErrInvalidAudience},
		{"number", set("aud", 123), ErrInvalidAudience},
		{"object", set("aud", map[string]any{}), ErrInvalidAudience},
		{"null", set("aud", nil), ErrInvalidAudience},
		{"array with a number", set("aud", []any{testClientID, 1}), ErrInvalidAudience},
	})
}

func TestTV13AudienceArrayAccepted(t *testing.T) {
	t.Parallel()
	runClaimCases(t, validateToken, []claimCase{
		{"single-element array", set("aud", []string{testClientID}), nil},
	})
}

func TestTV14SecondaryAudienceAndAzp(t *testing.T) {
	t.Parallel()
	runClaimCases(t, validateToken, []claimCase{
		{"two audiences without azp", set("aud", []string{testClientID, "other"}), ErrInvalidAudience},
		{"azp of another client", set("azp", "other"), ErrInvalidAudience},
		{"two audiences, azp other", func(m map[string]any) { m["aud"] = []string{testClientID, "other"}; m["azp"] = "other" }, ErrInvalidAudience},
		{"azp not a string", set("azp", 5), ErrInvalidClaim},
		{"two audiences, azp = client", func(m map[string]any) { m["aud"] = []string{testClientID, "other"}; m["azp"] = testClientID }, nil},
		{"azp = client", set("azp", testClientID), nil},
	})
}

func TestTV15ExpMissingOrString(t *testing.T) {
	t.Parallel()
	runClaimCases(t, validateToken, []claimCase{
		{"absent", del("exp"), ErrInvalidClaim},
		{"string", set("exp", "1700000000"), ErrInvalidClaim},
		{"string of the future", set("exp", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)), ErrInvalidClaim},
	})
}

func TestTV16Expiry(t *testing.T) {
	t.Parallel()
	now := func() int64 { return time.Now().Unix() }
	runClaimCases(t, validateToken, []claimCase{
		{"6 minutes ago", set("exp", now()-360), ErrTokenExpired},
		{"leeway + 1s ago", set("exp", now()-61), ErrTokenExpired},
		{"10s ago, 60s leeway", set("exp", now()-10), nil},
	})
	runClaimCases(t, validateToken, []claimCase{
		{"10s ago, 30s leeway", set("exp", now()-10), nil},
		{"31s ago, 30s leeway", set("exp", now()-31), ErrTokenExpired},
	}, WithLeeway(30*time.Second))

	idp := onesoidctest.NewInMemory()
	c := newValidationClient(t, idp)
	exp := time.Now().Add(-2 * time.Minute).Truncate(time.Second)
	tok := mint(t, idp, nil, set("exp", exp.Unix()))
	_, err := c.ValidateToken(t.Context(), tok)
	var te *TokenExpiredError
	if !errors.As(err, &te) || !te.Expiry.Equal(exp) {
		t.Errorf("err = %v, want a TokenExpiredError at %v", err, exp)
	}
	if !strings.Contains(err.Error(), "clock skew?") {
		t.Errorf("err = %v, want a clock skew hint", err)
	}
	tok = mint(t, idp, nil, set("exp", time.Now().Add(-24*time.Hour).Unix()))
	if _, err := c.ValidateToken(t.Context(), tok); !errors.Is(err, ErrTokenExpired) || strings.Contains(err.Error(), "skew") {
		t.Errorf("err = %v, want expired without a skew hint", err)
	}
}

func TestTV18IatMissing(t *testing.T) {
	t.Parallel()
	runClaimCases(t, validateToken, []claimCase{{"ValidateToken", del("iat"), ErrInvalidClaim}})
	runClaimCases(t, verifyIDToken(), []claimCase{{"VerifyIDToken", del("iat"), ErrInvalidClaim}})
}

func TestTV19IatAge(t *testing.T) {
	t.Parallel()
	week := func(m map[string]any) { m["iat"] = time.Now().Add(-7 * 24 * time.Hour).Unix() }
	future := set("iat", time.Now().Add(10*time.Minute).Unix())
	runClaimCases(t, verifyIDToken(), []claimCase{
		{"a week old", week, ErrInvalidClaim},
		{"6 minutes and leeway old", set("iat", time.Now().Add(-7*time.Minute).Unix()), ErrInvalidClaim},
		{"10 minutes ahead", future, ErrTokenNotYetValid},
		{"4 minutes old", set("iat", time.Now().Add(-4*time.Minute).Unix()), nil},
	})
	runClaimCases(t, verifyIDToken(MaxTokenAge(time.Hour)), []claimCase{
		{"30 minutes old, 1h max", set("iat", time.Now().Add(-30*time.Minute).Unix()), nil},
	})
	// A token that reached a server (ValidateToken) may be older; the future is refused anyway.
	runClaimCases(t, validateToken, []claimCase{
		{"ValidateToken a week old", week, nil},
		{"ValidateToken 10 minutes ahead", future, ErrTokenNotYetValid},
	})
}

// TestTV20NotBefore: nbf beyond the leeway is refused, within it accepted. "leeway + 2s ahead"
// is refused only while less than one to two seconds pass between computing its nbf and
// verifying, so the cases run in testing/synctest bubbles.
func TestTV20NotBefore(t *testing.T) {
	t.Parallel()
	runClaimCasesInBubbles(t, validateToken, []claimCase{
		{"10 minutes ahead", setIn("nbf", 10*time.Minute), ErrTokenNotYetValid},
		{"leeway + 2s ahead", setIn("nbf", 62*time.Second), ErrTokenNotYetValid},
		{"30s ahead, within the leeway", setIn("nbf", 30*time.Second), nil},
		{"string", set("nbf", "0"), ErrInvalidClaim},
	})
}

func TestTV21Subject(t *testing.T) {
	t.Parallel()
	runClaimCases(t, validateToken, []claimCase{
		{"absent", del("sub"), ErrInvalidClaim},
		{"empty", set("sub", ""), ErrInvalidClaim},
		{"number", set("sub", 42), ErrInvalidClaim},
		{"256 characters", set("sub", strings.Repeat("s", 256)), ErrInvalidClaim},
		{"255 characters", set("sub", strings.Repeat("s", 255)), nil},
	})
}

func TestTV22Nonce(t *testing.T) {
	t.Parallel()
	runClaimCases(t, verifyIDToken(ExpectNonce("n-0S6_WzA2Mj")), []claimCase{
		{"other nonce", set("nonce", "other"), ErrInvalidClaim},
		{"missing", nil, ErrInvalidClaim},
		{"not a string", set("nonce", 1), ErrInvalidClaim},
		{"same nonce", set("nonce", "n-0S6_WzA2Mj"), nil},
	})
	// CIBA and client credentials send no nonce: none is demanded, one present is ignored.
	runClaimCases(t, verifyIDToken(), []claimCase{
		{"no nonce expected, none sent", nil, nil},
		{"no nonce expected, one present", set("nonce", "whatever"), nil},
	})
}

func TestTV23AtHash(t *testing.T) {
	t.Parallel()
	const at = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
	good := jose.AtHash(jose.RS256, at)
	if good != "77QmUPtjPfzWtF2AnpK9RQ" { // OpenID Connect Core 1.0 §A.3 example
		t.Fatalf("at_hash of the spec example = %s", good)
	}
	runClaimCases(t, verifyIDToken(ExpectAtHashOf(at)), []claimCase{
		{"wrong at_hash", set("at_hash", jose.AtHash(jose.RS256, "other")), ErrInvalidClaim},
		{"no at_hash", nil, nil},
		{"right at_hash", set("at_hash", good), nil},
	})
}

func TestTV24TypOfIDToken(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	c := newValidationClient(t, idp)
	for _, typ := range []string{"at+jwt", "application/at+jwt", "AT+JWT", "logout+jwt", "client-authentication+jwt", "jwt+other"} {
		tok := mint(t, idp, map[string]any{"typ": typ}, nil)
		res, err := c.VerifyIDToken(t.Context(), tok)
		wantReject(t, res, err, ErrInvalidTokenType, tok)
	}
	for _, typ := range []any{onesoidctest.Omit, "JWT", "jwt", "application/jwt"} {
		tok := mint(t, idp, map[string]any{"typ": typ}, nil)
		res := wantAccept(t)(c.VerifyIDToken(t.Context(), tok))
		if res.Kind != KindIDToken {
			t.Errorf("kind = %v", res.Kind)
		}
	}
	// A client_credentials access token (as the token endpoint mints it) offered as an ID token.
	now := time.Now()
	at, err := idp.Mint(map[string]any{"iss": idp.Issuer, "sub": testClientID, "client_id": testClientID, "aud": testClientID,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "j1"}, map[string]any{"typ": "at+jwt"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.VerifyIDToken(t.Context(), at)
	wantReject(t, res, err, ErrInvalidTokenType, at)
	// Cached as an access token, it still is no ID token.
	res = wantAccept(t)(c.ValidateToken(t.Context(), at))
	if res.Kind != KindAccessToken || res.Entity.Kind != EntityDevice {
		t.Errorf("ValidateToken kind %v entity %v", res.Kind, res.Entity.Kind)
	}
	res, err = c.VerifyIDToken(t.Context(), at)
	wantReject(t, res, err, ErrInvalidTokenType, at)
	// Other typ values are refused by ValidateToken as well.
	logout := mint(t, idp, map[string]any{"typ": "logout+jwt"}, nil)
	res, err = c.ValidateToken(t.Context(), logout)
	wantReject(t, res, err, ErrInvalidTokenType, logout)
}
