package onesoidc

import (
	"crypto/elliptic"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/ones-now/onesoidc/onesoidctest"
)

// writeDeviceYML writes device.yml into dir for the mock IdP idp.
func writeDeviceYML(t *testing.T, dir string, idp *onesoidctest.Server, keySecurity, keyType string) string {
	t.Helper()
	path := filepath.Join(dir, "device.yml")
	yml := fmt.Sprintf("id: %s\nclient_id: %s\nhost: %s\nis_managed: true\nkey_security: %s\nkey_type: %s\n",
		testDeviceID, testClientID, idp.URL, keySecurity, keyType)
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestNewClientFromDeviceLocalKey: device.yml, private.pem and the registered JWK beside it make
// a ready client in one call; it gets a device token with the registered kid and logs a user in
// the ONES way.
func TestNewClientFromDeviceLocalKey(t *testing.T) {
	t.Parallel()
	for _, kid := range []string{"", "dev-1"} {
		t.Run("kid="+kid, func(t *testing.T) {
			t.Parallel()
			idp := startIdP(t, onesoidctest.WithONES())
			key := newECKey(t, elliptic.P256())
			keyPath := writeKeyDir(t, key, publicJWKMap(t, key.Public(), "ES256", kid))
			cfgPath := writeDeviceYML(t, t.TempDir(), idp, "DEFAULT", "ECC:p256")
			idp.RegisterClientJWK(testClientID, jose.JSONWebKey{Key: key.Public(), Algorithm: "ES256", KeyID: kid})

			c, err := NewClientFromDevice(t.Context(), DevicePaths{Config: cfgPath, Key: keyPath},
				WithHTTPClient(idp.HTTPClient()))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.DeviceAccessToken(t.Context()); err != nil {
				t.Fatal(err)
			}
			header, _ := decodeJWT(t, idp.Requests(onesoidctest.EndpointToken)[0].Form.Get("client_assertion"))
			if got, _ := header["kid"].(string); got != kid {
				t.Errorf("assertion kid %q, want %q", got, kid)
			}
			ack, err := c.MakeCIBARequest(t.Context(), CIBARequest{Hint: LoginHint{Kind: HintLogin, Value: "alice"}, BindingMessage: "Log in to the kiosk?"})
			if err != nil {
				t.Fatalf("ONES CIBA request: %v", err)
			}
			if ack.Scope != "openid contact profile" {
				t.Errorf("scope %q", ack.Scope)
			}
		})
	}
}

// TestNewClientFromDeviceTPMUsesTheRemoteSigner: a key_security "tpm" device signs through
// px-device-identity-service with the algorithm and kid of its registered JWK; no key file is
// read.
func TestNewClientFromDeviceTPMUsesTheRemoteSigner(t *testing.T) {
	t.Parallel()
	idp := startIdP(t, onesoidctest.WithONES())
	key := testKey(t, "RS256")
	svc := fakeSigningService(t, key, jsonSignature)
	keyDir := t.TempDir()
	data, _ := jose.JSONWebKey{Key: key.Public(), KeyID: "tpm-key", Algorithm: "RS256"}.MarshalJSON()
	if err := os.WriteFile(filepath.Join(keyDir, registeredJWKFileName), data, 0o644); err != nil {
		t.Fatal(err)
	}
	cfgPath := writeDeviceYML(t, t.TempDir(), idp, "TPM", "RSA:2048")
	idp.RegisterClientJWK(testClientID, jose.JSONWebKey{Key: key.Public(), Algorithm: "RS256", KeyID: "tpm-key"})

	c, err := NewClientFromDevice(t.Context(), DevicePaths{Config: cfgPath, Key: filepath.Join(keyDir, "private.pem"),
		SignerURL: svc.URL + "/sign"}, WithHTTPClient(idp.HTTPClient()))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.signer.(*RemoteSigner); !ok {
		t.Fatalf("signer %T, want *RemoteSigner", c.signer)
	}
	if _, err := c.DeviceAccessToken(t.Context()); err != nil {
		t.Fatal(err)
	}
	header, _ := decodeJWT(t, idp.Requests(onesoidctest.EndpointToken)[0].Form.Get("client_assertion"))
	if header["kid"] != "tpm-key" || header["alg"] != "RS256" {
		t.Errorf("assertion header %v", header)
	}
}

// TestNewClientFromDeviceRefusesMismatches: a key_type that does not fit the key, a registered
// JWK of another key and a missing device.yml are *ConfigError values.
func TestNewClientFromDeviceRefusesMismatches(t *testing.T) {
	t.Parallel()
	idp := startIdP(t, onesoidctest.WithONES())
	key := newECKey(t, elliptic.P256())
	cases := map[string]struct {
		keyType string
		jwk     map[string]any
		config  string
		want    string
	}{
		"key_type": {keyType: "ECC:p384", want: "key_type"},
		"registered JWK of another key": {keyType: "ECC:p256",
			jwk: publicJWKMap(t, newECKey(t, elliptic.P256()).Public(), "ES256", ""), want: "registered JWK"},
		"no device.yml": {keyType: "ECC:p256", config: filepath.Join(t.TempDir(), "missing.yml"), want: "missing.yml"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			keyPath := writeKeyDir(t, key, tc.jwk)
			cfgPath := tc.config
			if cfgPath == "" {
				cfgPath = writeDeviceYML(t, t.TempDir(), idp, "default", tc.keyType)
			}
			_, err := NewClientFromDevice(t.Context(), DevicePaths{Config: cfgPath, Key: keyPath}, WithHTTPClient(idp.HTTPClient()))
			var ce *ConfigError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want a *ConfigError about %s", err, tc.want)
			}
		})
	}
}

// TestNewClientFromDeviceKeyOptionsReachTheKey: a key option given to NewClientFromDevice reaches the key loading: a
// key file others may read is refused by default and accepted with
// WithInsecureKeyFilePermissions.
func TestNewClientFromDeviceKeyOptionsReachTheKey(t *testing.T) {
	t.Parallel()
	idp := startIdP(t, onesoidctest.WithONES())
	key := newECKey(t, elliptic.P256())
	keyPath := writeKeyDir(t, key, nil)
	if err := os.Chmod(keyPath, 0o644); err != nil {
		t.Fatal(err)
	}
	cfgPath := writeDeviceYML(t, t.TempDir(), idp, "default", "ECC:p256")
	paths := DevicePaths{Config: cfgPath, Key: keyPath}
	var ce *ConfigError
	if _, err := NewClientFromDevice(t.Context(), paths, WithHTTPClient(idp.HTTPClient())); !errors.As(err, &ce) {
		t.Fatalf("mode 0644: err = %v, want a *ConfigError", err)
	}
	if _, err := NewClientFromDevice(t.Context(), paths, WithHTTPClient(idp.HTTPClient()),
		WithInsecureKeyFilePermissions()); err != nil {
		t.Fatalf("WithInsecureKeyFilePermissions: %v", err)
	}
}

// TestNewClientFromDeviceMissingDefaultFilesSayWhatToDo: a device.yml or key missing at the
// px-device-identity default path (a machine that is no registered device, a process that is not
// root) is a *ConfigError matching fs.ErrNotExist that names the path and says how to name
// another; a missing path the caller gave gets no such advice.
func TestNewClientFromDeviceMissingDefaultFilesSayWhatToDo(t *testing.T) {
	t.Parallel()
	idp := startIdP(t, onesoidctest.WithONES())
	dir := t.TempDir()
	defaults := DevicePaths{Config: filepath.Join(dir, "etc", "device.yml"), Key: filepath.Join(dir, "root", "private.pem"),
		SignerURL: defaultRemoteSignerURL}
	cfgPath := writeDeviceYML(t, t.TempDir(), idp, "default", "ECC:p256")
	tests := []struct {
		name  string
		paths DevicePaths
		want  []string // in the message
		not   string   // not in it
	}{
		{"default device.yml", DevicePaths{}, []string{defaults.Config, "cannot open device config", "px-device-identity default", "set DevicePaths.Config", "file does not exist"}, "DevicePaths.Key"},
		{"default key", DevicePaths{Config: cfgPath}, []string{defaults.Key, "cannot open private key file", "px-device-identity default", "run as root, or set DevicePaths.Key", "file does not exist"}, "DevicePaths.Config"},
		{"given device.yml", DevicePaths{Config: filepath.Join(dir, "given.yml")}, []string{"given.yml: cannot open device config: file does not exist"}, "DevicePaths"},
		{"given key", DevicePaths{Config: cfgPath, Key: filepath.Join(dir, "given.pem")}, []string{"given.pem: cannot open private key file: file does not exist"}, "DevicePaths"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newClientFromDevice(t.Context(), tt.paths, defaults, []Option{WithHTTPClient(idp.HTTPClient())})
			var ce *ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("err = %v, want a *ConfigError matching fs.ErrNotExist", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v\ndoes not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), tt.not) {
				t.Errorf("%v\nsays %q", err, tt.not)
			}
		})
	}
}

// TestNewClientIssuerErrorNamesTheDeviceConfig: an issuer that discovery refuses before any
// request (http on a host that is not loopback) came from the device.yml host: the *ConfigError
// names that file and says how the issuer is made.
func TestNewClientIssuerErrorNamesTheDeviceConfig(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "device.yml")
	yml := fmt.Sprintf("id: %s\nclient_id: %s\nhost: http://idp.example.com\n", testDeviceID, testClientID)
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadDeviceConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewClient(t.Context(), cfg, testKey(t, "ES256"), WithHTTPClient(&http.Client{Transport: failTransport{t}}))
	want := "onesoidc: " + path + `: issuer: "http://idp.example.com/oidc" must use https (http is allowed on loopback hosts only); the issuer is the device config's host + "/oidc"`
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != "issuer" || err.Error() != want {
		t.Errorf("err = %v, want a *ConfigError on issuer:\n%s", err, want)
	}
}
