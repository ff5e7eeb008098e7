//go:build interop

package interop

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/ones-now/onesoidc"
)

// keyFile is how a device key is written to private.pem.
type keyFile int

const (
	pkcs8 keyFile = iota
	pkcs1         // RSA PRIVATE KEY
	sec1          // EC PRIVATE KEY
)

// writeKeyAs rewrites the key file of a device in the given PEM format.
func writeKeyAs(t testing.TB, path string, key *Key, format keyFile) {
	t.Helper()
	var block *pem.Block
	switch format {
	case pkcs1:
		block = &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key.Private.(*rsa.PrivateKey))}
	case sec1:
		der, err := x509.MarshalECPrivateKey(key.Private.(*ecdsa.PrivateKey))
		if err != nil {
			t.Fatal(err)
		}
		block = &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
	default:
		return
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
}

// sdkClient loads the device files of clientID the way a ONES device does and builds a client
// through discovery. No registered JWK lies beside the key, so the key announces no kid and the
// provider tries every key registered for the client. CIBA uses the standard form encoding:
// stock oidc-provider refuses the ONES request object (its aud is the backchannel endpoint).
func sdkClient(t testing.TB, p *Provider, clientID string, key *Key, format keyFile, opts ...onesoidc.Option) *onesoidc.OpenIDConnectClient {
	t.Helper()
	cfgPath, keyPath := writeDevice(t, p, clientID, key)
	writeKeyAs(t, keyPath, key, format)
	cfg, err := onesoidc.LoadDeviceConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var keyOpts []onesoidc.Option
	if key.Alg == jose.PS256 {
		keyOpts = append(keyOpts, onesoidc.WithRSAPSS())
	}
	dk, err := onesoidc.LoadPrivateKey(keyPath, keyOpts...)
	if err != nil {
		t.Fatal(err)
	}
	if dk.Algorithm() != string(key.Alg) || dk.KeyID() != "" {
		t.Fatalf("loaded key %v, want alg %s and no kid", dk, key.Alg)
	}
	c, err := onesoidc.NewClient(t.Context(), cfg, dk, append([]onesoidc.Option{onesoidc.WithStandardCIBA()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestInteropSDKDeviceToken gets a device access token through the public API for every key
// kind and key file format, then introspects and revokes it.
func TestInteropSDKDeviceToken(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		alg    jose.SignatureAlgorithm
		format keyFile
	}{
		{"RS256 PKCS#1", jose.RS256, pkcs1},
		{"RS256 PKCS#8", jose.RS256, pkcs8},
		{"PS256 PKCS#8", jose.PS256, pkcs8},
		{"ES256 SEC1", jose.ES256, sec1},
		{"ES256 PKCS#8", jose.ES256, pkcs8},
		{"ES384 SEC1", jose.ES384, sec1},
		{"EdDSA PKCS#8", jose.EdDSA, pkcs8},
	}
	keys := make([]*Key, len(cases))
	ids := make([]string, len(cases))
	var clients []Client
	for i, tc := range cases {
		keys[i], ids[i] = newKey(t, tc.alg), newClientID()
		clients = append(clients, deviceClient(ids[i], keys[i]))
	}
	p := startProvider(t, Config{Clients: clients})
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mark := p.Mark()
			c := sdkClient(t, p, ids[i], keys[i], tc.format)
			tok, err := c.DeviceAccessToken(t.Context())
			if err != nil {
				t.Fatalf("DeviceAccessToken: %v\nprovider:\n%s", err, p.StderrSince(mark))
			}
			if tok.TokenType != "Bearer" || tok.AccessToken == "" {
				t.Fatalf("token = %+v", tok)
			}
			info, err := c.IntrospectToken(t.Context(), tok.AccessToken, "access_token")
			if err != nil || !info.Active || info.ClientID != ids[i] {
				t.Fatalf("introspection = %+v, %v\nprovider:\n%s", info, err, p.StderrSince(mark))
			}
			if err := c.RevokeToken(t.Context(), tok.AccessToken, "access_token"); err != nil {
				t.Fatalf("RevokeToken: %v\nprovider:\n%s", err, p.StderrSince(mark))
			}
			info, err = c.IntrospectToken(t.Context(), tok.AccessToken, "")
			if err != nil || info.Active {
				t.Errorf("after revocation: %+v, %v", info, err)
			}
		})
	}
}

// TestInteropSDKAssertionAudiences checks that the provider accepts every audience the SDK can
// put in its assertions.
func TestInteropSDKAssertionAudiences(t *testing.T) {
	t.Parallel()
	key, id := newKey(t, jose.ES256), newClientID()
	p := startProvider(t, Config{Clients: []Client{deviceClient(id, key)}})
	for name, aud := range map[string]onesoidc.Option{
		"token endpoint":  nil,
		"issuer":          onesoidc.WithAssertionAudienceIssuer(),
		"called endpoint": onesoidc.WithAssertionAudienceEndpoint(),
	} {
		t.Run(name, func(t *testing.T) {
			mark := p.Mark()
			c := sdkClient(t, p, id, key, pkcs8, aud)
			tok, err := c.RequestDeviceAccessToken(t.Context())
			if err != nil {
				t.Fatalf("%v\nprovider:\n%s", err, p.StderrSince(mark))
			}
			if _, err := c.IntrospectToken(t.Context(), tok.AccessToken, ""); err != nil {
				t.Fatalf("introspection: %v\nprovider:\n%s", err, p.StderrSince(mark))
			}
		})
	}
}

// TestInteropSDKDeviceTokenCacheUnderConcurrency: 50 goroutines on a cold cache share one token.
func TestInteropSDKDeviceTokenCacheUnderConcurrency(t *testing.T) {
	t.Parallel()
	key, id := newKey(t, jose.EdDSA), newClientID()
	p := startProvider(t, Config{Clients: []Client{deviceClient(id, key)}})
	c := sdkClient(t, p, id, key, pkcs8)
	var wg sync.WaitGroup
	toks := make([]*oauth2.Token, 50)
	errs := make([]error, 50)
	for i := range toks {
		wg.Go(func() { toks[i], errs[i] = c.DeviceAccessToken(t.Context()) })
	}
	wg.Wait()
	for i := range toks {
		if errs[i] != nil || toks[i] != toks[0] {
			t.Fatalf("caller %d: %v (token shared: %v)", i, errs[i], toks[i] == toks[0])
		}
	}
}

// TestInteropSDKWrongKeyIsInvalidClient: a device whose key is not the registered one gets a
// typed invalid_client error, and the provider's reason is on its stderr.
func TestInteropSDKWrongKeyIsInvalidClient(t *testing.T) {
	t.Parallel()
	registered, other, id := newKey(t, jose.ES256), newKey(t, jose.ES256), newClientID()
	p := startProvider(t, Config{Clients: []Client{deviceClient(id, registered)}})
	c := sdkClient(t, p, id, other, pkcs8)
	mark := p.Mark()
	_, err := c.DeviceAccessToken(t.Context())
	var oe *onesoidc.OAuthError
	if !errors.Is(err, onesoidc.ErrInvalidClient) || !errors.As(err, &oe) || oe.StatusCode != 401 {
		t.Fatalf("err = %v, want a 401 invalid_client OAuthError\nprovider:\n%s", err, p.StderrSince(mark))
	}
}
