package onesoidc

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"math/big"
	"strings"
	"testing"

	"github.com/ones-now/onesoidc/internal/jose"
	"github.com/ones-now/onesoidc/onesoidctest"
)

// TestRSAKeysGoCannotVerifyWithAreSkipped: an RSA JWK whose public exponent is even or does not
// fit 32 bits, or whose modulus is even, can never verify a signature (crypto/rsa refuses such
// keys), so it is skipped as unusable with its reason, like an EC point off its curve. Before,
// it counted as a usable key: beside the provider's real key without kid, it made every token
// without kid ambiguous ("kid required"), and a token with its kid failed as a bad signature.
func TestRSAKeysGoCannotVerifyWithAreSkipped(t *testing.T) {
	t.Parallel()
	bad := onesoidctest.NewKey("RS256")
	n := new(big.Int).Set(bad.Public().Key.(*rsa.PublicKey).N)
	n.SetBit(n, 0, 0)
	for name, edit := range map[string]func(map[string]any){
		"e=1":      func(m map[string]any) { m["e"] = "AQ" },
		"e=2":      func(m map[string]any) { m["e"] = "Ag" },
		"e=65536":  func(m map[string]any) { m["e"] = "AQAA" },
		"e=2^32+1": func(m map[string]any) { m["e"] = "AQAAAAE" },
		"even n":   func(m map[string]any) { m["n"] = base64.RawURLEncoding.EncodeToString(n.Bytes()) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			entry := jwkJSON(t, bad, func(m map[string]any) { edit(m); delete(m, "kid") })
			if k, _, reason := parseJWK([]byte(entry)); k != nil || !strings.Contains(reason, "RSA") {
				t.Errorf("parseJWK: key %v, reason %q; want it skipped as an unusable RSA key", k != nil, reason)
			}
			idp := onesoidctest.NewInMemory()
			serveJWKS(idp, jwkJSON(t, idp.SigningKey(), noKid), entry)
			c := newValidationClient(t, idp)
			wantAccept(t)(c.ValidateToken(t.Context(), mint(t, idp, map[string]any{"kid": onesoidctest.Omit}, nil)))
		})
	}
}

// TestEd25519SmallOrderKeysAreSkipped: an Ed25519 JWK whose point has small order (the identity,
// the points of order 2, 4 and 8, and non-canonical encodings of them) lets anyone forge
// signatures that crypto/ed25519 accepts (for the identity, R = identity and S = 0 verify any
// message). Such keys are skipped (go-jose refuses them today; this pins it), and the forgery
// with the identity key is refused.
func TestEd25519SmallOrderKeysAreSkipped(t *testing.T) {
	t.Parallel()
	for _, x := range []string{
		"0100000000000000000000000000000000000000000000000000000000000000", // identity
		"0000000000000000000000000000000000000000000000000000000000000000", // order 4
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // order 2
		"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", // order 8
		"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", // order 8
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p+1: identity, non-canonical
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p: order 4, non-canonical
	} {
		raw, _ := hex.DecodeString(x)
		entry := `{"kty":"OKP","crv":"Ed25519","kid":"weak","x":"` + base64.RawURLEncoding.EncodeToString(raw) + `"}`
		if k, _, _ := parseJWK([]byte(entry)); k != nil {
			t.Errorf("%s: small-order key accepted", x[:8])
		}
	}
	idp := onesoidctest.NewInMemory()
	idp.EditMetadata(func(d map[string]any) { d["id_token_signing_alg_values_supported"] = jose.AllAlgs.Names() })
	identity := make([]byte, 32)
	identity[0] = 1
	serveJWKS(idp, `{"kty":"OKP","crv":"Ed25519","kid":"weak","x":"`+base64.RawURLEncoding.EncodeToString(identity)+`"}`,
		jwkJSON(t, idp.SigningKey(), nil))
	c := newValidationClient(t, idp)
	good := mint(t, idp, nil, nil)
	wantAccept(t)(c.ValidateToken(t.Context(), good))
	sig := make([]byte, 64)
	sig[0] = 1 // R = identity, S = 0
	forged := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"EdDSA","kid":"weak"}`)) + "." +
		strings.Split(good, ".")[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
	res, err := c.ValidateToken(t.Context(), forged)
	wantReject(t, res, err, ErrUnknownKey, forged)
}
