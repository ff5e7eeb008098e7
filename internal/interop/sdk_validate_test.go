//go:build interop

package interop

import (
	"errors"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/ones-now/onesoidc"
)

// loginAlice logs alice in with CIBA through the SDK, approving from another goroutine, and
// returns the result (whose ID token the SDK validated).
func loginAlice(t *testing.T, p *Provider, c *onesoidc.OpenIDConnectClient, bindingMessage string) *onesoidc.LoginResult {
	t.Helper()
	mark := p.Mark()
	resp, err := c.MakeCIBARequest(t.Context(), aliceRequest(bindingMessage, "openid", "profile"))
	if err != nil {
		p.failf(t, mark, "MakeCIBARequest: %v", err)
	}
	done := decideAsync(t.Context(), p, Decision{AuthReqID: resp.AuthReqID, Approve: true})
	res, err := c.WaitForCIBA(t.Context(), resp)
	if err != nil {
		p.failf(t, mark, "WaitForCIBA: %v", err)
	}
	awaitDecision(t, p, mark, done)
	return res
}

// TestInteropSDKValidation validates what the provider issues: ID tokens in every signing alg
// the provider offers, and RFC 9068 JWT access tokens, through the public API.
func TestInteropSDKValidation(t *testing.T) {
	t.Parallel()
	algs := []string{"RS256", "PS256", "ES256", "EdDSA"}
	keys, ids := map[string]*Key{}, map[string]string{}
	var clients []Client
	for _, alg := range algs {
		keys[alg], ids[alg] = newKey(t, jose.ES256), newClientID()
		c := cibaClient(ids[alg], keys[alg])
		c.IDTokenSignedResponseAlg = alg
		clients = append(clients, c)
	}
	p := startProvider(t, Config{Clients: clients, CIBAInterval: cibaInterval})
	for _, alg := range algs {
		t.Run("ID token "+alg, func(t *testing.T) {
			t.Parallel()
			c := sdkClient(t, p, ids[alg], keys[alg], pkcs8)
			res := loginAlice(t, p, c, "VAL-"+alg)
			id := res.Auth
			if id == nil || id.Algorithm != alg || id.Kind != onesoidc.KindIDToken || id.Entity.Subject != "alice" ||
				id.Entity.Kind != onesoidc.EntityUser || id.Entity.Issuer != p.Issuer() {
				t.Fatalf("identity = %+v", id)
			}
			// The same token validated again through the public entry points.
			again, err := c.VerifyIDToken(t.Context(), res.IDToken)
			if err != nil || again.Entity.Username != "alice" {
				t.Errorf("VerifyIDToken = %+v, %v", again, err)
			}
			if _, err := c.VerifyAccessToken(t.Context(), res.IDToken); !errors.Is(err, onesoidc.ErrInvalidTokenType) {
				t.Errorf("ID token accepted as an access token: %v", err)
			}
		})
	}
	t.Run("JWT access token", func(t *testing.T) {
		t.Parallel()
		const resource = "urn:ones:interop:api"
		c := sdkClient(t, p, ids["ES256"], keys["ES256"], pkcs8, onesoidc.WithDeviceTokenResource(resource),
			onesoidc.WithDeviceTokenScope("api:read"))
		mark := p.Mark()
		tok, err := c.RequestDeviceAccessToken(t.Context())
		if err != nil {
			p.failf(t, mark, "RequestDeviceAccessToken: %v", err)
		}
		res, err := c.VerifyAccessToken(t.Context(), tok.AccessToken, onesoidc.ExpectAudience(resource))
		if err != nil {
			p.failf(t, mark, "VerifyAccessToken: %v", err)
		}
		e := res.Entity
		if res.Kind != onesoidc.KindAccessToken || e.Kind != onesoidc.EntityDevice || e.ClientID != ids["ES256"] || !e.HasScope("api:read") {
			t.Errorf("access token result = %+v", res)
		}
		if _, err := c.VerifyIDToken(t.Context(), tok.AccessToken); !errors.Is(err, onesoidc.ErrInvalidTokenType) {
			t.Errorf("TV-24: access token accepted as an ID token: %v", err)
		}
		if _, err := c.VerifyAccessToken(t.Context(), tok.AccessToken, onesoidc.ExpectAudience("urn:other")); !errors.Is(err, onesoidc.ErrInvalidAudience) {
			t.Errorf("access token for another resource accepted: %v", err)
		}
	})
}

// TestInteropSDKKeyRotation restarts the provider with new signing keys: a client that cached
// the old keys validates the first token signed with a new key after one JWKS refetch, and
// tokens of the old keys no longer validate once the keys are refreshed.
func TestInteropSDKKeyRotation(t *testing.T) {
	t.Parallel()
	key, id := newKey(t, jose.EdDSA), newClientID()
	p := startProvider(t, Config{Clients: []Client{cibaClient(id, key)}, CIBAInterval: cibaInterval})
	c := sdkClient(t, p, id, key, pkcs8)
	before := loginAlice(t, p, c, "ROTATE-1")

	p.Restart(t, privateJWKS(newProviderKeys(t)...))
	after := loginAlice(t, p, c, "ROTATE-2")
	if after.Auth.KeyID == before.Auth.KeyID {
		t.Fatalf("the restarted provider signed with the old key %s", before.Auth.KeyID)
	}
	// The old token's key left the JWKS with the refetch: it fails now, without a new fetch.
	if _, err := c.VerifyIDToken(t.Context(), before.IDToken, onesoidc.MaxTokenAge(0)); !errors.Is(err, onesoidc.ErrUnknownKey) {
		t.Errorf("token of a rotated-out key: %v, want ErrUnknownKey", err)
	}
}
