//go:build interop

package interop

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/ones-now/onesoidc"
)

// writeRegisteredJWK writes public_jwk.json beside keyPath as px-device-identity does: the public
// key with its alg, and a kid only when kid is set.
func writeRegisteredJWK(t *testing.T, keyPath string, key *Key, kid string) {
	t.Helper()
	data, err := jose.JSONWebKey{Key: key.Private.Public(), Algorithm: string(key.Alg), KeyID: kid}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(keyPath), "public_jwk.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestInteropSDKRegisteredKeyIDs: one device registered without a kid and one with a kid, each
// with the registered JWK px-device-identity writes beside the key, get device tokens and log
// users in with default key settings (NewClientFromDevice; only the CIBA encoding is set to the
// standard shape this stock provider takes). The first announces no kid, the second its kid.
func TestInteropSDKRegisteredKeyIDs(t *testing.T) {
	t.Parallel()
	noKID, withKID := newKey(t, jose.ES256), newKey(t, jose.RS256)
	idNoKID, idWithKID := newClientID(), newClientID()
	clientNoKID := cibaClient(idNoKID, noKID)
	clientNoKID.JWKS.Keys[0].KeyID = "" // registered without a kid
	clientWithKID := cibaClient(idWithKID, withKID)
	p := startProvider(t, Config{Clients: []Client{clientNoKID, clientWithKID}, CIBAInterval: cibaInterval})
	for _, tc := range []struct {
		name, id, kid string
		key           *Key
	}{
		{"registered without kid", idNoKID, "", noKID},
		{"registered with kid", idWithKID, withKID.KID, withKID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfgPath, keyPath := writeDevice(t, p, tc.id, tc.key)
			writeRegisteredJWK(t, keyPath, tc.key, tc.kid)
			mark := p.Mark()
			c, err := onesoidc.NewClientFromDevice(t.Context(), onesoidc.DevicePaths{Config: cfgPath, Key: keyPath},
				onesoidc.WithStandardCIBA())
			if err != nil {
				p.failf(t, mark, "NewClientFromDevice: %v", err)
				t.FailNow()
			}
			tok, err := c.RequestDeviceAccessToken(t.Context())
			if err != nil {
				p.failf(t, mark, "device token: %v", err)
				t.FailNow()
			}
			dev, err := c.ValidateToken(t.Context(), tok.AccessToken)
			if err != nil || dev.Entity.Kind != onesoidc.EntityDevice || dev.Entity.Subject != tc.id {
				p.failf(t, mark, "opaque device token by introspection: %+v, %v", dev, err)
				t.FailNow()
			}
			res := loginAlice(t, p, c, "KID-"+tc.key.KID[:6])
			user, err := c.ValidateToken(t.Context(), res.Token.AccessToken)
			if err != nil || user.Entity.Kind != onesoidc.EntityUser || user.Entity.Subject != "alice" {
				p.failf(t, mark, "opaque user token by introspection: %+v, %v", user, err)
				t.FailNow()
			}
		})
	}
}

// TestInteropSDKOpaqueTokensAtAResourceServer: the provider's opaque access tokens pass
// RequireToken through introspection, its ID tokens and refresh tokens do not, and a revoked token is inactive for
// a client that has no cached answer for it.
func TestInteropSDKOpaqueTokensAtAResourceServer(t *testing.T) {
	t.Parallel()
	key, id := newKey(t, jose.EdDSA), newClientID()
	p := startProvider(t, Config{Clients: []Client{cibaClient(id, key)}, CIBAInterval: cibaInterval})
	c := sdkClient(t, p, id, key, pkcs8)
	res := loginAlice(t, p, c, "RS-OPAQUE")
	h := c.RequireToken(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, _ := onesoidc.AuthenticationFromContext(r.Context())
		_ = json.NewEncoder(w).Encode(a.Entity)
	}))
	serve := func(tok string) *httptest.ResponseRecorder {
		req := httptest.NewRequestWithContext(t.Context(), "GET", "/api", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := serve(res.Token.AccessToken); rec.Code != 200 {
		t.Errorf("user access token: %d %s", rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
	if rec := serve(res.IDToken); rec.Code != 401 {
		t.Errorf("ID token as bearer credential: %d, want 401", rec.Code)
	}
	// The provider's introspection answer for a refresh token has no token_type: refused.
	mark := p.Mark()
	offline, err := c.MakeCIBARequest(t.Context(), aliceRequest("RS-REFRESH", "openid", "offline_access"))
	if err != nil {
		p.failf(t, mark, "MakeCIBARequest: %v", err)
		t.FailNow()
	}
	done := decideAsync(t.Context(), p, Decision{AuthReqID: offline.AuthReqID, Approve: true})
	withRefresh, err := c.WaitForCIBA(t.Context(), offline)
	if err != nil {
		p.failf(t, mark, "WaitForCIBA: %v", err)
		t.FailNow()
	}
	awaitDecision(t, p, mark, done)
	if withRefresh.Token.RefreshToken == "" {
		t.Fatal("no refresh token with offline_access")
	}
	if _, err := c.ValidateToken(t.Context(), withRefresh.Token.RefreshToken); !errors.Is(err, onesoidc.ErrInvalidTokenType) {
		t.Errorf("refresh token as an access token: %v, want ErrInvalidTokenType", err)
	}
	if rec := serve(withRefresh.Token.RefreshToken); rec.Code != 401 {
		t.Errorf("refresh token as bearer credential: %d, want 401", rec.Code)
	}
	if err := c.RevokeToken(t.Context(), res.Token.AccessToken, "access_token"); err != nil {
		t.Fatal(err)
	}
	fresh := sdkClient(t, p, id, key, pkcs8) // an empty cache sees the revocation at once
	if _, err := fresh.ValidateToken(t.Context(), res.Token.AccessToken); !errors.Is(err, onesoidc.ErrTokenInactive) {
		t.Errorf("revoked token: %v, want ErrTokenInactive", err)
	}
}
