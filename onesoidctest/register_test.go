package onesoidctest_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ones-now/onesoidc"
	"github.com/ones-now/onesoidc/onesoidctest"
)

// assertionHeader decodes the JOSE header of the last client assertion the IdP received.
func assertionHeader(t *testing.T, idp *onesoidctest.Server) map[string]any {
	t.Helper()
	reqs := idp.Requests(onesoidctest.EndpointToken)
	if len(reqs) == 0 {
		t.Fatal("no token request")
	}
	raw := reqs[len(reqs)-1].Form.Get("client_assertion")
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestRegisterDeviceFilesMakeAWorkingClient: the files WriteFiles lays out are what
// NewClientFromDevice loads (the key 0600, the registered JWK deciding kid and alg), and the
// client gets a device token and logs a user in the ONES way, for every key type.
func TestRegisterDeviceFilesMakeAWorkingClient(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts []onesoidctest.DeviceOption
		alg  string
		kid  string
	}{
		{name: "default", alg: "ES256"},
		{name: "ES384 with kid", opts: []onesoidctest.DeviceOption{onesoidctest.WithDeviceAlgorithm("ES384"), onesoidctest.WithDeviceKeyID("dev-1")}, alg: "ES384", kid: "dev-1"},
		{name: "ES512", opts: []onesoidctest.DeviceOption{onesoidctest.WithDeviceAlgorithm("ES512")}, alg: "ES512"},
		{name: "RS256", opts: []onesoidctest.DeviceOption{onesoidctest.WithDeviceAlgorithm("RS256")}, alg: "RS256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			idp := onesoidctest.NewInMemory(onesoidctest.WithONES())
			dev, err := idp.RegisterDevice(tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			files, err := dev.WriteFiles(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Stat(files.Key); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("key file: %v %v", fi.Mode(), err)
			}
			if filepath.Dir(files.RegisteredJWK) != filepath.Dir(files.Key) || filepath.Base(files.RegisteredJWK) != "public_jwk.json" {
				t.Fatalf("registered JWK at %s, not beside the key", files.RegisteredJWK)
			}
			cfg, err := onesoidc.LoadDeviceConfig(files.Config)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.ID != dev.ID || cfg.ClientID != dev.ClientID || cfg.Host != idp.URL {
				t.Fatalf("device.yml %+v, device %+v", cfg, dev)
			}
			client, err := onesoidc.NewClientFromDevice(t.Context(), onesoidc.DevicePaths{Config: files.Config, Key: files.Key},
				onesoidc.WithHTTPClient(idp.HTTPClient()))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := client.DeviceAccessToken(t.Context()); err != nil {
				t.Fatal(err)
			}
			h := assertionHeader(t, idp)
			if kid, _ := h["kid"].(string); h["alg"] != tc.alg || kid != tc.kid {
				t.Fatalf("assertion header %v, want alg %s kid %q", h, tc.alg, tc.kid)
			}
			if _, err := client.MakeCIBARequest(t.Context(), onesoidc.CIBARequest{Hint: onesoidc.LoginHint{Kind: onesoidc.HintLogin, Value: "alice"}}); err != nil {
				t.Fatalf("ONES CIBA request: %v", err)
			}
		})
	}
}

// clientInMemory makes a client of dev from its Config and Key, without files.
func clientInMemory(t *testing.T, idp *onesoidctest.Server, dev *onesoidctest.Device) *onesoidc.OpenIDConnectClient {
	t.Helper()
	cfg, err := onesoidc.ParseDeviceConfig(dev.Config)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ID != dev.ID || cfg.ClientID != dev.ClientID || cfg.Host != idp.URL {
		t.Fatalf("device.yml %+v, device %+v", cfg, dev)
	}
	key, err := onesoidc.NewDeviceKey(dev.Key)
	if err != nil {
		t.Fatal(err)
	}
	client, err := onesoidc.NewClient(t.Context(), cfg, key, onesoidc.WithHTTPClient(idp.HTTPClient()))
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// TestRegisterDeviceInMemory: Config and Key make a client without files.
func TestRegisterDeviceInMemory(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory(onesoidctest.WithONES())
	dev, err := idp.RegisterDevice(onesoidctest.WithDeviceIdentity("3f9a6c21-8d4e-4b7f-a2c5-6e1d0b9f4a87", "7c3e1f52-2b7a-4d8e-9a61-0f4b2c9d8e13"))
	if err != nil {
		t.Fatal(err)
	}
	client := clientInMemory(t, idp, dev)
	if client.ClientID() != "7c3e1f52-2b7a-4d8e-9a61-0f4b2c9d8e13" || dev.ID != "3f9a6c21-8d4e-4b7f-a2c5-6e1d0b9f4a87" {
		t.Fatalf("client %s, device %s", client.ClientID(), dev.ID)
	}
	// The QR status answers name the registered device, as the client checks.
	s, err := client.StartQRLogin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CheckQRStatus(t.Context(), s.ID()); err != nil {
		t.Fatal(err)
	}
}

// TestRegisterDeviceRefusals: an unknown algorithm, an id that would break device.yml, and a
// directory that does not exist are errors, never a half-written device.
func TestRegisterDeviceRefusals(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	if _, err := idp.RegisterDevice(onesoidctest.WithDeviceAlgorithm("HS256")); err == nil {
		t.Error("HS256 device accepted")
	}
	if _, err := idp.RegisterDevice(onesoidctest.WithDeviceIdentity("a\nhost: https://evil.example", "b")); err == nil {
		t.Error("an id with a line break accepted")
	}
	dev, err := idp.RegisterDevice()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dev.WriteFiles(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("WriteFiles into a missing directory succeeded")
	}
	if _, err := (&onesoidctest.Device{}).WriteFiles(t.TempDir()); err == nil {
		t.Error("WriteFiles of a zero Device succeeded")
	}
}

// TestWriteFilesTightensAnExistingKeyFile: a private.pem left readable by others is rewritten
// 0600, so that the SDK (which refuses loose key files) loads it.
func TestWriteFilesTightensAnExistingKeyFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "private.pem"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	dev, err := onesoidctest.NewInMemory().RegisterDevice()
	if err != nil {
		t.Fatal(err)
	}
	files, err := dev.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(files.Key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v %v", fi.Mode(), err)
	}
}

// TestMintedTokens: an opaque token introspects active for its user, a JWT access token validates
// as one at the resource server it names, an ID token as an ID token; a revoked opaque token
// introspects inactive.
func TestMintedTokens(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory(onesoidctest.WithONES())
	dev, err := idp.RegisterDevice()
	if err != nil {
		t.Fatal(err)
	}
	client := clientInMemory(t, idp, dev)
	ctx := t.Context()

	opaque := idp.MintOpaqueToken(dev.ClientID, "alice", "openid profile")
	if len(opaque) != 43 || strings.Count(opaque, ".") == 2 {
		t.Fatalf("opaque token %d characters", len(opaque))
	}
	info, err := client.IntrospectToken(ctx, opaque, "access_token")
	if err != nil || !info.Active || info.Subject != "alice" || info.Scope != "openid profile" || info.ClientID != dev.ClientID {
		t.Fatalf("introspection %+v, %v", info, err)
	}

	at, err := idp.MintAccessToken(dev.ClientID, "bob", "read")
	if err != nil {
		t.Fatal(err)
	}
	res, err := client.VerifyAccessToken(ctx, at)
	if err != nil || res.Kind != onesoidc.KindAccessToken || res.Entity.Subject != "bob" || res.Entity.Scope != "read" {
		t.Fatalf("access token: %+v, %v", res, err)
	}
	if _, err := client.VerifyIDToken(ctx, at); err == nil {
		t.Fatal("a minted access token passed as an ID token")
	}

	idt, err := idp.MintIDToken(dev.ClientID, "carol", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := client.VerifyIDToken(ctx, idt); err != nil || res.Entity.Subject != "carol" {
		t.Fatalf("ID token: %+v, %v", res, err)
	}

	if err := client.RevokeToken(ctx, opaque, "access_token"); err != nil {
		t.Fatal(err)
	}
	if info, err := client.IntrospectToken(ctx, opaque, "access_token"); err != nil || info.Active {
		t.Fatalf("revoked token introspects %+v, %v", info, err)
	}
}
