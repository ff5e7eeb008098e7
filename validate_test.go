package onesoidc

import (
	"slices"
	"testing"
	"time"

	"github.com/ones-now/onesoidc/internal/mockidp"
)

func TestValidateTokenAccepts(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			idp := mockidp.NewInMemory()
			idp.UseKey(mockidp.NewKey(alg))
			idp.EditMetadata(func(d map[string]any) { d["id_token_signing_alg_values_supported"] = allAlgs.names() })
			c := newTestClient(t, idp)
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
			if raw := res.RawClaims(); raw["sub"] != testSubject || raw["extra"] == nil {
				t.Errorf("RawClaims = %v", raw)
			}
			// Again, from the verified-token cache.
			res2 := wantAccept(t)(c.ValidateToken(t.Context(), tok))
			if res2 == res || res2.Entity.Subject != testSubject || c.val.cache.len() != 1 {
				t.Errorf("cached result %p %+v", res2, res2.Entity)
			}
		})
	}
}
