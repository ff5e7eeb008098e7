package onesoidc

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/ones-now/onesoidc/internal/jose"
)

// deviceJWTLifetime is exp - iat of the JWTs DeviceJWT signs: 300 s, as the ONES clients'
// makeDeviceJwt.
const deviceJWTLifetime = 300 * time.Second

// maxDeviceJWTAudience bounds the audience DeviceJWT accepts, in bytes.
const maxDeviceJWTAudience = 2048

// DeviceJWT returns a fresh JWT that proves the device's identity to a ONES API that takes one
// (the ONES clients' makeDeviceJwt): signed by the device key with the header of client
// assertions (alg, typ JWT, and the registered kid when there is one), and claims iss = sub =
// client_id, aud = audience, a fresh jti of 128 random bits, iat = now and exp = iat + 300 s
// (RFC 7519 §4.1). audience is required: a non-empty string of printable characters of at most
// 2048 bytes, usually the URL of the API. Each call signs a new JWT; none is cached.
func (c *OpenIDConnectClient) DeviceJWT(ctx context.Context, audience string) (string, error) {
	if err := checkDeviceJWTAudience(audience); err != nil {
		return "", err
	}
	now := c.now()
	var buf [512]byte
	payload := jose.AppendClaims(buf[:0], c.clientID, c.clientID, audience, newJTI(), now.Unix(),
		now.Add(deviceJWTLifetime).Unix())
	tok, err := signCompact(ctx, c.signer, c.assertionHeader, payload)
	if err != nil {
		return "", wrapf("onesoidc: device JWT: %w", err)
	}
	return tok, nil
}

func checkDeviceJWTAudience(aud string) error {
	fail := func(reason string) error { return &RequestError{Field: "audience", Reason: reason} }
	switch {
	case aud == "":
		return fail("empty; name the API the JWT is for")
	case len(aud) > maxDeviceJWTAudience:
		return fail(fmt.Sprintf("%d bytes, at most %d allowed", len(aud), maxDeviceJWTAudience))
	case !utf8.ValidString(aud):
		return fail("not valid UTF-8")
	}
	for _, r := range aud {
		if r < 0x20 || r == 0x7f {
			return fail("holds a control character")
		}
	}
	return nil
}
