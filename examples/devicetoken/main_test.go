package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ones-now/onesoidc"
	"github.com/ones-now/onesoidc/onesoidctest"
)

func TestDeviceToken(t *testing.T) {
	idp := onesoidctest.NewServer()
	t.Cleanup(idp.Close)
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	dir := t.TempDir()
	keyPath, cfgPath := filepath.Join(dir, "private.pem"), filepath.Join(dir, "device.yml")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	const clientID = "7c3e1f52-2b7a-4d8e-9a61-0f4b2c9d8e13"
	yml := fmt.Sprintf("id: 3f9a6c21-8d4e-4b7f-a2c5-6e1d0b9f4a87\nclient_id: %s\nhost: %s\nkey_security: DEFAULT\n", clientID, idp.URL)
	if err := os.WriteFile(cfgPath, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	idp.RegisterClient(clientID, key.Public(), "EdDSA")
	extra := []onesoidc.Option{onesoidc.WithHTTPClient(idp.HTTPClient())}

	var out bytes.Buffer
	if err := run(t.Context(), &out, cfgPath, keyPath, "", "device", false, false, extra); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `Bearer token, scope "device", expires`) || strings.Contains(out.String(), "eyJ") {
		t.Errorf("report = %q", &out)
	}
	out.Reset()
	if err := run(t.Context(), &out, cfgPath, keyPath, "", "", true, false, extra); err != nil {
		t.Fatal(err)
	}
	if tok := strings.TrimSpace(out.String()); strings.Count(tok, ".") != 2 {
		t.Errorf("-print-token printed %q, want the JWT access token", tok)
	}

	idp.RegisterClient(clientID, ed25519.PublicKey(make([]byte, 32)), "EdDSA") // device no longer registered
	err = run(t.Context(), &out, cfgPath, keyPath, "", "", false, false, extra)
	if err == nil || !strings.Contains(err.Error(), "still registered") {
		t.Errorf("err = %v, want the invalid_client hint", err)
	}
}

// TestDeviceTokenWithoutDeviceFilesSaysWhatToDo: on a machine without px-device-identity files the
// command names the missing file and the flags that name others.
func TestDeviceTokenWithoutDeviceFilesSaysWhatToDo(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "device.yml")
	err := run(t.Context(), new(bytes.Buffer), missing, filepath.Join(t.TempDir(), "private.pem"), "", "", false, false, nil)
	if err == nil || !strings.Contains(err.Error(), missing+": cannot open device config: file does not exist") ||
		!strings.Contains(err.Error(), "-config and -key") {
		t.Errorf("err = %v, want the missing file and the flags", err)
	}
}
