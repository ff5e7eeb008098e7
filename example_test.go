package onesoidc_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log"

	"github.com/ones-now/onesoidc"
)

// A device service loads its identity, builds a client and asks for a device access token.
func Example() {
	ctx := context.Background()
	cfg, err := onesoidc.LoadDeviceConfig("/etc/px-device-identity/device.yml")
	if err != nil {
		log.Fatal(err)
	}
	key, err := onesoidc.LoadPrivateKey("/root/.local/share/px-device-identity/private.pem")
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

// A machine that is not a registered device has no device.yml: the error names the path and
// matches fs.ErrNotExist.
func ExampleLoadDeviceConfig() {
	_, err := onesoidc.LoadDeviceConfig("/nonexistent/px-device-identity/device.yml")
	fmt.Println(errors.Is(err, fs.ErrNotExist))
	fmt.Println(err)
	// Output:
	// true
	// onesoidc: /nonexistent/px-device-identity/device.yml: cannot open device config: file does not exist
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

// The ONES QR login: show the code, the user scans it with the ONES app and approves, and the
// wait returns the user's access token with the identity its introspection gives.
func ExampleOpenIDConnectClient_StartQRLogin() {
	ctx := context.Background()
	var client *onesoidc.OpenIDConnectClient // from onesoidc.NewClient
	s, err := client.StartQRLogin(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(s.QR.Terminal()) // or s.QR.PNG(256), s.QR.SVG() on a web page
	res, err := client.WaitForQRLogin(ctx, s)
	var status *onesoidc.QRStatusError
	switch {
	case errors.As(err, &status):
		fmt.Println("the login ended:", status.Status)
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Println("logged in:", res.Auth.Entity.Subject)
	}
}

// An ONES QR status other than pending or approved ends the login and carries the status.
func ExampleQRStatusError() {
	for _, status := range []string{"pending", "denied", "cancelled"} {
		err := error(&onesoidc.QRStatusError{Status: status})
		fmt.Println(errors.Is(err, onesoidc.ErrAuthorizationPending), errors.Is(err, onesoidc.ErrAccessDenied), err)
	}
	// Output:
	// true false onesoidc: QR login pending: the user has not decided yet
	// false true onesoidc: QR login ended with status "denied"
	// false false onesoidc: QR login ended with status "cancelled"
}
