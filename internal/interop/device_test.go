//go:build interop

package interop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"gopkg.in/yaml.v3"
)

// Helpers for SDK-level interop tests that load a device the way a ONES device does: a
// px-device-identity device.yml and a PEM private key.

// newClientID returns a random UUID v4; ONES client ids (and device ids) are UUIDs.
func newClientID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// PEM returns the private key as PKCS#8 PEM ("PRIVATE KEY").
func (k *Key) PEM(t testing.TB) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		t.Fatalf("PEM: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// keyType returns the device.yml key_type of k ("" for Ed25519, which px-device-identity does
// not name).
func (k *Key) keyType() string {
	switch priv := k.Private.(type) {
	case *rsa.PrivateKey:
		return fmt.Sprintf("RSA:%d", priv.N.BitLen())
	case *ecdsa.PrivateKey:
		return map[int]string{256: "ECC:p256", 384: "ECC:p384", 521: "ECC:p521"}[priv.Curve.Params().BitSize]
	case ed25519.PrivateKey:
		return ""
	}
	return ""
}

// writeDevice writes device.yml and private.pem (mode 0600) of a managed device registered at
// p as clientID with key, in a fresh directory, and returns both paths. host is p.Host(), so
// the device's issuer is p.Issuer().
func writeDevice(t testing.TB, p *Provider, clientID string, key *Key) (configPath, keyPath string) {
	t.Helper()
	dir := t.TempDir()
	keyPath = filepath.Join(dir, "private.pem")
	if err := os.WriteFile(keyPath, key.PEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	yml := fmt.Sprintf(`id: %s
client_id: %s
config_version: "0.0.1"
domain: interop.ones.test
host: %s
initiated_on: %q
is_managed: true
key_security: default
location: interop test
role: DESKTOP
title: interop device
`, newClientID(), clientID, p.Host(), time.Now().UTC().Format(time.RFC3339))
	if kt := key.keyType(); kt != "" {
		yml += "key_type: " + kt + "\n"
	}
	configPath = filepath.Join(dir, "device.yml")
	if err := os.WriteFile(configPath, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	return configPath, keyPath
}

func TestInteropDeviceFiles(t *testing.T) {
	t.Parallel()
	p := &Provider{base: "http://127.0.0.1:1"} // no process: writeDevice only needs Host
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA} {
		key := newKey(t, alg)
		id := newClientID()
		cfgPath, keyPath := writeDevice(t, p, id, key)

		data, err := os.ReadFile(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatalf("device.yml: %v\n%s", err, data)
		}
		if doc["client_id"] != id || doc["host"] != p.Host() || doc["is_managed"] != true {
			t.Errorf("device.yml = %v", doc)
		}
		if !uuidRE.MatchString(id) {
			t.Errorf("client id %q is not a UUID v4", id)
		}

		raw, err := os.ReadFile(keyPath)
		if err != nil {
			t.Fatal(err)
		}
		if st, _ := os.Stat(keyPath); st.Mode().Perm() != 0o600 {
			t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
		}
		block, _ := pem.Decode(raw)
		if block == nil {
			t.Fatal("private.pem: no PEM block")
		}
		priv, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			t.Fatalf("private.pem: %v", err)
		}
		if eq, ok := priv.(interface{ Equal(crypto.PrivateKey) bool }); !ok || !eq.Equal(key.Private) {
			t.Errorf("%s: private.pem holds another key", alg)
		}
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
