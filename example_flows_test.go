package onesoidc_test

// Runnable examples of every flow, against the fake ONES identity provider of package
// onesoidctest (in memory: no sockets, no real waiting). In a real program the client comes from
// onesoidc.NewClientFromDevice(ctx, onesoidc.DevicePaths{}) and talks to the ONES provider.

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"

	"golang.org/x/oauth2"

	"github.com/ones-now/onesoidc"
	"github.com/ones-now/onesoidc/onesoidctest"
)

// A device's px-device-identity files (device.yml, the key or the TPM signer, public_jwk.json)
// make a ready client in one call: on the device itself,
// onesoidc.NewClientFromDevice(ctx, onesoidc.DevicePaths{}) reads them from their default paths.
// Here onesoidctest registers a device with its fake provider and writes the files.
func ExampleNewClientFromDevice() {
	ctx := context.Background()
	idp := onesoidctest.NewInMemory(onesoidctest.WithONES())
	dev, err := idp.RegisterDevice()
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "device")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	files, err := dev.WriteFiles(dir)
	if err != nil {
		log.Fatal(err)
	}

	client, err := onesoidc.NewClientFromDevice(ctx, onesoidc.DevicePaths{Config: files.Config, Key: files.Key},
		onesoidc.WithHTTPClient(idp.HTTPClient()))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("issuer:", client.Metadata().Issuer)
	fmt.Println("client id from device.yml:", client.ClientID() == dev.ClientID)
	// Output:
	// issuer: http://localhost/oidc
	// client id from device.yml: true
}

// newExampleClient is the in-memory form of the setup above: a device registered with a fake
// ONES provider, and a client of it.
func newExampleClient(ctx context.Context, opts ...onesoidc.Option) (*onesoidctest.Server, *onesoidctest.Device, *onesoidc.OpenIDConnectClient) {
	idp := onesoidctest.NewInMemory(onesoidctest.WithONES())
	dev, err := idp.RegisterDevice()
	if err != nil {
		log.Fatal(err)
	}
	cfg, err := onesoidc.ParseDeviceConfig(dev.Config)
	if err != nil {
		log.Fatal(err)
	}
	key, err := onesoidc.NewDeviceKey(dev.Key)
	if err != nil {
		log.Fatal(err)
	}
	client, err := onesoidc.NewClient(ctx, cfg, key, append([]onesoidc.Option{onesoidc.WithHTTPClient(idp.HTTPClient())}, opts...)...)
	if err != nil {
		log.Fatal(err)
	}
	return idp, dev, client
}

// A device access token (RFC 7523 private_key_jwt, client_credentials) is cached and renewed
// before it expires: asking again costs no request.
func ExampleOpenIDConnectClient_DeviceAccessToken() {
	ctx := context.Background()
	idp, _, client := newExampleClient(ctx)

	tok, err := client.DeviceAccessToken(ctx)
	if err != nil {
		log.Fatal(err)
	}
	again, err := client.DeviceAccessToken(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.TokenType, len(tok.AccessToken), "characters")
	fmt.Println("cached:", again.AccessToken == tok.AccessToken, "- token requests:", idp.Count(onesoidctest.EndpointToken))
	// Output:
	// Bearer 43 characters
	// cached: true - token requests: 1
}

// TokenSource plugs the device token into golang.org/x/oauth2: every request of the HTTP client
// carries it as a bearer token.
func ExampleOpenIDConnectClient_TokenSource() {
	ctx := context.Background()
	_, _, client := newExampleClient(ctx)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("API got a bearer token:", len(r.Header.Get("Authorization")) > len("Bearer "))
	}))
	defer api.Close()

	hc := oauth2.NewClient(ctx, client.TokenSource(ctx))
	resp, err := hc.Get(api.URL)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	// Output: API got a bearer token: true
}

// A CIBA login (OpenID CIBA Core 1.0): the user approves on their phone, the wait returns the
// validated ID token's identity. In ping mode the provider notifies CIBANotificationHandler and
// the wait polls at once; in poll mode it polls every interval (see the onesoidctest example for
// a test that runs those intervals on a fake clock).
func ExampleOpenIDConnectClient_WaitForCIBA() {
	ctx := context.Background()
	idp, dev, client := newExampleClient(ctx, onesoidc.WithCIBAPing())
	idp.SetCIBANotificationEndpoint(dev.ClientID, "https://app.example/ciba/notify")
	idp.ScriptCIBA("alice", onesoidctest.CIBAScript{IDTokenClaims: map[string]any{"preferred_username": "Alice"}})

	ack, err := client.MakeCIBARequest(ctx, onesoidc.CIBARequest{
		Hint:           onesoidc.LoginHint{Kind: onesoidc.HintLogin, Value: "alice"},
		BindingMessage: "Log in to the kiosk?",
	})
	if err != nil {
		log.Fatal(err)
	}
	// The user approves; the provider pings the application's notification endpoint.
	if _, err := idp.Ping(ctx, onesoidctest.HandlerClient(client.CIBANotificationHandler()), ack.AuthReqID); err != nil {
		log.Fatal(err)
	}
	res, err := client.WaitForCIBA(ctx, ack)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("logged in:", res.Auth.Entity.Subject, "-", res.Auth.Entity.Username)
	fmt.Println("scope:", res.Scope)
	// Output:
	// logged in: alice - Alice
	// scope: openid contact profile
}

// The ONES QR login: the page shows the QR code, the user's ONES app scans it and approves, and
// the status answers the user's access token, whose introspection says who logged in.
func ExampleOpenIDConnectClient_CheckQRStatus() {
	ctx := context.Background()
	idp, dev, client := newExampleClient(ctx)
	idp.ScriptQR(onesoidctest.QRScript{Subject: "bob"})

	s, err := client.StartQRLogin(ctx)
	if err != nil {
		log.Fatal(err)
	}
	// Show s.QR.SVG() on a page, or print s.QR.Terminal(). The code holds the session and the device:
	fmt.Println(s.QR.Payload() == `{"auth_req_id":"`+s.ID()+`","deviceId":"`+dev.ID+`"}`)
	// WaitForQRLogin polls until the end; one status check is enough here.
	res, err := client.CheckQRStatus(ctx, s.ID())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("logged in:", res.Auth.Entity.Subject)
	// Output:
	// true
	// logged in: bob
}

// ValidateToken takes ID tokens and JWT access tokens down the JWS path (signature, iss, aud,
// exp, iat...) and opaque tokens through introspection.
func ExampleOpenIDConnectClient_ValidateToken() {
	ctx := context.Background()
	idp, dev, client := newExampleClient(ctx)
	idToken, err := idp.MintIDToken(dev.ClientID, "alice", map[string]any{"preferred_username": "Alice"})
	if err != nil {
		log.Fatal(err)
	}

	res, err := client.ValidateToken(ctx, idToken)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Kind, res.Algorithm, res.Entity.Kind, res.Entity.Subject, res.Entity.Username)

	_, err = client.ValidateToken(ctx, idToken[:len(idToken)-4]+"AAAA")
	fmt.Println("tampered:", err != nil)
	// Output:
	// id_token RS256 user alice Alice
	// tampered: true
}

// ValidateTokenInto validates into a result the handler owns: a token the client has validated
// before costs no allocation of a result, and the result can be used again for the next token.
func ExampleOpenIDConnectClient_ValidateTokenInto() {
	ctx := context.Background()
	idp, dev, client := newExampleClient(ctx)
	var res onesoidc.AuthenticationResult
	for _, user := range []string{"alice", "bob"} {
		token := mustMint(idp.MintAccessToken(dev.ClientID, user, "read"))
		if err := client.ValidateTokenInto(ctx, token, &res); err != nil {
			log.Fatal(err)
		}
		fmt.Println(res.Kind, res.Entity.Subject, res.Entity.HasScope("read"))
	}
	err := client.ValidateTokenInto(ctx, "not.a.token", &res)
	fmt.Println("refused:", err != nil, "result cleared:", res.Entity.Subject == "")
	// Output:
	// access_token alice true
	// access_token bob true
	// refused: true result cleared: true
}

// RequireToken protects an API: the bearer access token must validate (a JWT access token of
// RFC 9068, or a ONES opaque token by introspection; never an ID token) and carry the scopes
// asked for; the handler finds the result in the request's context.
func ExampleOpenIDConnectClient_RequireToken() {
	ctx := context.Background()
	idp, dev, client := newExampleClient(ctx)
	api := client.RequireToken(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, _ := onesoidc.AuthenticationFromContext(r.Context())
		fmt.Fprintf(w, "hello %s", res.Entity.Subject)
	}), onesoidc.ExpectScope("read"))

	for _, token := range []string{
		idp.MintOpaqueToken(dev.ClientID, "alice", "openid read"),  // ONES access tokens are opaque
		mustMint(idp.MintAccessToken(dev.ClientID, "bob", "read")), // a JWT access token
		mustMint(idp.MintAccessToken(dev.ClientID, "carol", "write")),
		"",
	} {
		r := httptest.NewRequest(http.MethodGet, "/api", nil)
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		api.ServeHTTP(w, r)
		if w.Code == http.StatusOK {
			fmt.Println(w.Code, w.Body.String())
		} else {
			fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
	// Output:
	// 200 hello alice
	// 200 hello bob
	// 403 Bearer error="insufficient_scope", error_description="the token lacks a required scope"
	// 401 Bearer
}

func mustMint(tok string, err error) string {
	if err != nil {
		log.Fatal(err)
	}
	return tok
}

// IntrospectToken asks the provider about a token (RFC 7662): opaque ONES access tokens say
// nothing by themselves.
func ExampleOpenIDConnectClient_IntrospectToken() {
	ctx := context.Background()
	idp, dev, client := newExampleClient(ctx)
	token := idp.MintOpaqueToken(dev.ClientID, "alice", "openid profile")

	info, err := client.IntrospectToken(ctx, token, "access_token")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Active, info.Subject, info.Scope, info.ClientID == dev.ClientID)

	info, err = client.IntrospectToken(ctx, "never-issued-by-this-provider", "access_token")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Active)
	// Output:
	// true alice openid profile true
	// false
}
