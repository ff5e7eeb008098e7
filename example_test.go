package onesoidc_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/ones-now/onesoidc"
)

// A device service loads its identity, builds a client and asks for a device access token.
func Example() {
	ctx := context.Background()
	cfg, err := onesoidc.LoadDeviceConfig(onesoidc.DefaultDeviceConfigPath)
	if err != nil {
		log.Fatal(err)
	}
	key, err := onesoidc.LoadPrivateKey(onesoidc.DefaultDeviceKeyPath)
	if err != nil {
		log.Fatal(err)
	}
	client, err := onesoidc.NewClient(ctx, cfg, key)
	if err != nil {
		log.Fatal(err)
	}
	tok, err := client.DeviceAccessToken(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("token expires at", tok.Expiry)
}

// Device configuration errors name the field and the file.
func ExampleParseDeviceConfig() {
	_, err := onesoidc.ParseDeviceConfig([]byte("id: 3f9a6c21-8d4e-4b7f-a2c5-6e1d0b9f4a87\nhost: https://identity.ones-now.com\n"))
	var ce *onesoidc.ConfigError
	if errors.As(err, &ce) {
		fmt.Println("field:", ce.Field)
	}
	// Output: field: client_id
}

// The issuer is the device.yml host with "/oidc" appended; one trailing slash is tolerated.
func ExampleDeviceConfig_IssuerURL() {
	cfg := onesoidc.DeviceConfig{Host: "https://identity.ones-now.com/"}
	fmt.Println(cfg.IssuerURL())
	// Output: https://identity.ones-now.com/oidc
}

// Provider error answers match sentinel errors with errors.Is.
func ExampleOAuthError() {
	var err error = &onesoidc.OAuthError{StatusCode: 400, Code: "authorization_pending", Op: "CIBA status"}
	fmt.Println(errors.Is(err, onesoidc.ErrAuthorizationPending), errors.Is(err, onesoidc.ErrAccessDenied))
	fmt.Println(err)
	// Output:
	// true false
	// onesoidc: CIBA status: provider answered authorization_pending (HTTP 400)
}

// Devices whose key is in the TPM sign through px-device-identity-service.
func ExampleNewRemoteSigner() {
	cfg := &onesoidc.DeviceConfig{ID: "3f9a6c21-8d4e-4b7f-a2c5-6e1d0b9f4a87", KeyType: "RSA:2048", KeySecurity: "tpm"}
	alg, err := cfg.KeyAlgorithm()
	if err != nil {
		log.Fatal(err)
	}
	signer, err := onesoidc.NewRemoteSigner(cfg.ID, alg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(signer.Algorithm())
	// Output: RS256
}
