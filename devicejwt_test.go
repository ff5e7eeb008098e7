package onesoidc

import (
	"encoding/json"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ones-now/onesoidc/internal/mockidp"
)

// TestDeviceJWTVerifiesWithGoJOSE: DeviceJWT is a JWT signed by the device key that go-jose
// verifies, with iss = sub = client_id, the caller's aud, a fresh jti, iat = now and exp = iat
// + 300 s, and the header of client assertions.
func TestDeviceJWTVerifiesWithGoJOSE(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				idp := mockidp.NewInMemory()
				key := testKey(t, alg)
				c := newTestClient(t, idp, key)
				const aud = "https://api.ones.example/v1/devices"
				raw, err := c.DeviceJWT(t.Context(), aud)
				if err != nil {
					t.Fatal(err)
				}
				tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
				if err != nil {
					t.Fatal(err)
				}
				var claims jwt.Claims
				if err := tok.Claims(key.Public(), &claims); err != nil {
					t.Fatalf("signature: %v", err)
				}
				now := time.Now()
				if err := claims.ValidateWithLeeway(jwt.Expected{Issuer: testClientID, Subject: testClientID,
					AnyAudience: jwt.Audience{aud}, Time: now}, 0); err != nil {
					t.Errorf("claims: %v", err)
				}
				if claims.IssuedAt.Time() != now.Truncate(time.Second) || claims.Expiry.Time().Sub(claims.IssuedAt.Time()) != 300*time.Second {
					t.Errorf("iat %v exp %v, want now and now+300s", claims.IssuedAt.Time(), claims.Expiry.Time())
				}
				h := tok.Headers[0]
				if h.Algorithm != alg || h.KeyID != "" || h.ExtraHeaders["typ"] != "JWT" {
					t.Errorf("header = %+v", h)
				}
				again, _ := c.DeviceJWT(t.Context(), aud)
				var c2 jwt.Claims
				t2, _ := jwt.ParseSigned(again, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
				_ = t2.UnsafeClaimsWithoutVerification(&c2)
				if len(claims.ID) < 22 || c2.ID == claims.ID {
					t.Errorf("jti %q then %q: want fresh 128-bit ids", claims.ID, c2.ID)
				}
				var all map[string]any
				_ = tok.UnsafeClaimsWithoutVerification(&all)
				if len(all) != 6 {
					b, _ := json.Marshal(all)
					t.Errorf("claims = %s, want exactly iss, sub, aud, jti, iat, exp", b)
				}
			})
		})
	}
}

// TestDeviceJWTRequiresAnAudience: an empty or control-character audience is a *RequestError.
func TestDeviceJWTRequiresAnAudience(t *testing.T) {
	t.Parallel()
	idp := startIdP(t)
	c := newTestClient(t, idp, testKey(t, "ES256"))
	for _, aud := range []string{"", "https://a\n", string(make([]byte, 3000))} {
		var re *RequestError
		if _, err := c.DeviceJWT(t.Context(), aud); !errors.As(err, &re) || re.Field != "audience" {
			t.Errorf("DeviceJWT(%q): err = %v, want a *RequestError on audience", aud, err)
		}
	}
}
