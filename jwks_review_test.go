package onesoidc

import (
	"crypto/rsa"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"

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
