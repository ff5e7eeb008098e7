package onesoidc_test

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/ones-now/onesoidc"
)

// One call from the px-device-identity files to a ready client: device.yml, the key (or the TPM
// signer), the registered JWK and discovery, with the default paths.
func ExampleNewClientFromDevice() {
	ctx := context.Background()
	client, err := onesoidc.NewClientFromDevice(ctx, onesoidc.DevicePaths{})
	if err != nil {
		log.Fatal(err)
	}
	// A CIBA login the ONES way: the user name travels as login_hint_token, the scope defaults
	// to "openid contact profile".
	resp, err := client.MakeCIBARequest(ctx, onesoidc.CIBARequest{
		Hint:           onesoidc.LoginHint{Kind: onesoidc.HintLogin, Value: "master.user-748@OnesDiD0"},
		BindingMessage: "Authorize login to Example.com?",
	})
	if err != nil {
		log.Fatal(err)
	}
	res, err := client.WaitForCIBA(ctx, resp)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("logged in:", res.Auth.Entity.Subject)
}

// A resource server takes ONES opaque access tokens (by introspection) and JWT access tokens,
// never ID tokens.
func ExampleOpenIDConnectClient_RequireToken() {
	client, err := onesoidc.NewClientFromDevice(context.Background(), onesoidc.DevicePaths{})
	if err != nil {
		log.Fatal(err)
	}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth, _ := onesoidc.AuthenticationFromContext(r.Context())
		fmt.Fprintf(w, "hello %s %s", auth.Entity.Kind, auth.Entity.Subject)
	})
	http.Handle("/api/", client.RequireToken(api, onesoidc.ExpectScope("profile")))
}
