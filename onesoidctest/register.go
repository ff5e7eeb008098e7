package onesoidctest

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// Device is a device registered with a Server by RegisterDevice: what px-device-identity would
// hold on a real device. Build a client from it in memory (ParseDeviceConfig of Config, plus the
// Key) or from files written by WriteFiles (NewClientFromDevice).
type Device struct {
	// ID is the device id ("id" in device.yml), a random UUID.
	ID string
	// ClientID is the OAuth client id the device is registered as ("client_id"), a random UUID.
	ClientID string
	// Algorithm is the JWS algorithm of the key (RFC 7518 §3.1), such as "ES256".
	Algorithm string
	// KeyID is the "kid" of the registered public JWK, or "" (the default) when it has none, as
	// px-device-identity registers it.
	KeyID string
	// Key is the device's private key.
	Key crypto.Signer
	// Config is the text of the device's device.yml: id, client_id, host (the Server's URL),
	// is_managed, key_security "default", key_type and descriptive fields.
	Config []byte
}

// DeviceFiles names the files WriteFiles wrote.
type DeviceFiles struct {
	// Config is device.yml.
	Config string
	// Key is private.pem: the private key as PKCS#8 PEM, readable by the owner only (0600).
	Key string
	// RegisteredJWK is public_jwk.json beside the key: the public JWK (RFC 7517 §4) registered
	// with the Server, with "alg" and, when the device has one, "kid".
	RegisteredJWK string
}

// DeviceOption configures RegisterDevice.
type DeviceOption func(*deviceOptions)

type deviceOptions struct{ alg, kid, deviceID, clientID string }

// WithDeviceAlgorithm sets the device key's algorithm: "ES256" (the default, a P-256 key),
// "ES384", "ES512" (P-384, P-521) or "RS256" (RSA 2048, slow to generate).
func WithDeviceAlgorithm(alg string) DeviceOption { return func(o *deviceOptions) { o.alg = alg } }

// WithDeviceKeyID gives the registered public JWK a "kid" (default none, as px-device-identity
// registers keys); the Server then accepts assertions that name this kid or none.
func WithDeviceKeyID(kid string) DeviceOption { return func(o *deviceOptions) { o.kid = kid } }

// WithDeviceIdentity sets the device id and the client id (default: fresh random UUIDs), for
// output that does not change from run to run. Registering a client id again replaces its key.
func WithDeviceIdentity(deviceID, clientID string) DeviceOption {
	return func(o *deviceOptions) { o.deviceID, o.clientID = deviceID, clientID }
}

// keyTypes maps the supported device key algorithms to device.yml's key_type.
var keyTypes = map[string]string{"ES256": "ECC:p256", "ES384": "ECC:p384", "ES512": "ECC:p521", "RS256": "RSA:2048"}

// RegisterDevice registers a new device with the Server, as px-device-identity registers one
// with the ONES provider: it generates a fresh key, registers its public JWK for a fresh client
// id (RegisterClientJWK) and records the device id, which ONES QR status answers carry. The
// Server is then ready for the device's client assertions (RFC 7523 §3). Nothing is written to
// disk; see WriteFiles. An unsupported algorithm is an error.
func (m *Server) RegisterDevice(opts ...DeviceOption) (*Device, error) {
	o := deviceOptions{alg: "ES256"}
	for _, opt := range opts {
		opt(&o)
	}
	keyType, ok := keyTypes[o.alg]
	if !ok {
		return nil, fmt.Errorf("onesoidctest: device algorithm %q not supported (ES256, ES384, ES512, RS256)", o.alg)
	}
	if o.deviceID == "" {
		o.deviceID = randomUUID()
	}
	if o.clientID == "" {
		o.clientID = randomUUID()
	}
	for _, v := range []string{o.deviceID, o.clientID, o.kid} {
		if strings.ContainsAny(v, "\"\\\n\r") {
			return nil, fmt.Errorf("onesoidctest: device id, client id and key id must not hold quotes, backslashes or line breaks")
		}
	}
	key, err := generateKey(o.alg)
	if err != nil {
		return nil, fmt.Errorf("onesoidctest: device key: %w", err)
	}
	d := &Device{ID: o.deviceID, ClientID: o.clientID, Algorithm: o.alg, KeyID: o.kid, Key: key}
	d.Config = fmt.Appendf(nil, `# written by onesoidctest.RegisterDevice
config_version: 0.0.3
id: "%s"
client_id: "%s"
domain: ones.test
host: %s
initiated_on: "2026-01-01T00:00:00+00:00"
is_managed: true
key_security: default
key_type: %s
location: test
role: SERVER
title: onesoidctest device
`, d.ID, d.ClientID, m.URL, keyType)
	m.RegisterClientJWK(d.ClientID, d.publicJWK())
	m.SetDeviceID(d.ClientID, d.ID)
	return d, nil
}

// publicJWK is the device's registered public key.
func (d *Device) publicJWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: d.Key.Public(), Algorithm: d.Algorithm, KeyID: d.KeyID, Use: "sig"}
}

// WriteFiles writes the device's files into dir (which must exist; t.TempDir() in a test) as
// px-device-identity lays them out: device.yml, private.pem (mode 0600, as the SDK refuses key
// files that group or others can read) and public_jwk.json beside the key. It returns their
// paths.
func (d *Device) WriteFiles(dir string) (DeviceFiles, error) {
	if d == nil || d.Key == nil {
		return DeviceFiles{}, errors.New("onesoidctest: WriteFiles of a Device not made by RegisterDevice")
	}
	der, err := x509.MarshalPKCS8PrivateKey(d.Key)
	if err != nil {
		return DeviceFiles{}, fmt.Errorf("onesoidctest: device key: %w", err)
	}
	jwk, err := d.publicJWK().MarshalJSON()
	if err != nil {
		return DeviceFiles{}, fmt.Errorf("onesoidctest: device JWK: %w", err)
	}
	f := DeviceFiles{
		Config:        filepath.Join(dir, "device.yml"),
		Key:           filepath.Join(dir, "private.pem"),
		RegisteredJWK: filepath.Join(dir, "public_jwk.json"),
	}
	for _, w := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{f.Config, d.Config, 0o644},
		{f.Key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600},
		{f.RegisteredJWK, jwk, 0o644},
	} {
		if err := os.WriteFile(w.path, w.data, w.mode); err != nil {
			return DeviceFiles{}, fmt.Errorf("onesoidctest: %w", err)
		}
		// WriteFile keeps the mode of a file that existed; make it the one asked for.
		if err := os.Chmod(w.path, w.mode); err != nil {
			return DeviceFiles{}, fmt.Errorf("onesoidctest: %w", err)
		}
	}
	return f, nil
}
