// Command quickstart shows the whole SDK working against onesoidctest, the SDK's fake ONES
// identity provider: it registers a device and writes its files (device.yml, key, registered
// JWK) as px-device-identity would, builds a client from them (discovery), gets a device access
// token and introspects it, logs a user in with CIBA and with a ONES QR code, and protects a
// handler with token validation.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ones-now/onesoidc"
	"github.com/ones-now/onesoidc/onesoidctest"
)

func main() {
	idp := onesoidctest.NewServer(onesoidctest.WithONES())
	defer idp.Close()
	if err := run(context.Background(), os.Stdout, idp); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		idp.Close()
		os.Exit(1)
	}
}

// run walks through every step against idp.
func run(ctx context.Context, out io.Writer, idp *onesoidctest.Server) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	fmt.Fprintln(out, "1. fake ONES identity provider (onesoidctest) at", idp.URL)

	// A device registered with the provider, as px-device-identity leaves it: device.yml, the
	// private key (0600) and the public JWK it registered, side by side.
	const deviceID, clientID = "3f9a6c21-8d4e-4b7f-a2c5-6e1d0b9f4a87", "7c3e1f52-2b7a-4d8e-9a61-0f4b2c9d8e13"
	dev, err := idp.RegisterDevice(onesoidctest.WithDeviceIdentity(deviceID, clientID))
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "onesoidc-quickstart")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	files, err := dev.WriteFiles(dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "2. device %s (client %s) registered: %s, %s, %s\n", dev.ID, dev.ClientID,
		filepath.Base(files.Config), filepath.Base(files.Key), filepath.Base(files.RegisteredJWK))

	// One call loads the files, picks the signer and discovers the provider.
	const api = "https://api.quickstart.test" // the resource the device token is for
	client, err := onesoidc.NewClientFromDevice(ctx, onesoidc.DevicePaths{Config: files.Config, Key: files.Key},
		onesoidc.WithHTTPClient(idp.HTTPClient()), onesoidc.WithDeviceTokenResource(api))
	if err != nil {
		return err
	}
	meta := client.Metadata()
	fmt.Fprintln(out, "3. discovered issuer", client.Metadata().Issuer)
	fmt.Fprintln(out, "   token endpoint        ", meta.TokenEndpoint)
	fmt.Fprintln(out, "   jwks_uri              ", meta.JWKSURI)
	fmt.Fprintln(out, "   introspection endpoint", meta.IntrospectionEndpoint)

	tok, err := client.DeviceAccessToken(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "4. device access token: %s, %d bytes (not shown), expires in %v\n",
		tok.TokenType, len(tok.AccessToken), time.Until(tok.Expiry).Round(time.Second))
	again, err := client.DeviceAccessToken(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "   second call served from the cache:", again == tok)

	info, err := client.IntrospectToken(ctx, tok.AccessToken, "access_token")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "5. introspection: active=%v client_id=%s\n", info.Active, info.ClientID)

	// CIBA: ask the IdP to push "approve this login" to alice's phone, then wait. The fake IdP
	// approves after two polls, one second apart.
	idp.ScriptCIBA("alice", onesoidctest.CIBAScript{PendingPolls: 2, Interval: 1})
	resp, err := client.MakeCIBARequest(ctx, onesoidc.CIBARequest{
		Hint:           onesoidc.LoginHint{Kind: onesoidc.HintLogin, Value: "alice"},
		Scope:          []string{"openid", "profile"},
		BindingMessage: "QUICKSTART-1",
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "6. CIBA login for alice requested (binding message QUICKSTART-1), expires in %v\n", resp.ExpiresIn)
	fmt.Fprintln(out, "   alice would approve on her phone; here the fake IdP approves at the third poll")
	res, err := client.WaitForCIBA(ctx, resp, onesoidc.WithProgress(func(p onesoidc.PollProgress) {
		status := "waiting for approval"
		if errors.Is(p.LastErr, onesoidc.ErrAuthorizationPending) {
			status = "still pending"
		}
		fmt.Fprintf(out, "   poll %d in %v: %s\n", p.Attempt, time.Until(p.NextPoll).Round(time.Second), status)
	}))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   approved: scope %q, ID token and access token received (not shown)\n", res.Scope)
	who := res.Auth.Entity
	fmt.Fprintf(out, "   logged in: %s %q, ID token validated (%s, key %s)\n", who.Kind, who.Subject,
		res.Auth.Algorithm, res.Auth.KeyID)

	// ONES QR login: show a QR code; the user scans it with the ONES app and approves there.
	idp.ScriptQR(onesoidctest.QRScript{Subject: "bob"})
	qr, err := client.StartQRLogin(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "7. QR login: scan the code with the ONES app (session %s, expires in %v)\n", qr.ID(), qr.ExpiresIn)
	fmt.Fprint(out, qr.QR.Terminal())
	fmt.Fprintln(out, "   bob would scan it with the ONES app and approve; here the fake IdP approves as bob")
	qres, err := client.WaitForQRLogin(ctx, qr, onesoidc.WithProgress(func(p onesoidc.PollProgress) {
		fmt.Fprintf(out, "   poll %d in %v\n", p.Attempt, time.Until(p.NextPoll).Round(time.Second))
	}))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   approved on the phone by %q: scope %q, access token validated by introspection\n",
		qres.Auth.Entity.Subject, qres.Scope)

	// A resource server: RequireToken validates bearer tokens (opaque ones by introspection).
	fmt.Fprintln(out, "8. a resource server protects GET /hello with RequireToken")
	handler := client.RequireToken(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth, _ := onesoidc.AuthenticationFromContext(r.Context())
		fmt.Fprintf(w, "hello %s %s", auth.Entity.Kind, auth.Entity.Subject)
	}), onesoidc.ExpectAudience(api))
	for _, bearer := range []string{tok.AccessToken, "not-a-token", ""} {
		req := httptest.NewRequestWithContext(ctx, http.MethodGet, api+"/hello", nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		label := map[string]string{tok.AccessToken: "device token", "not-a-token": "garbage", "": "no token"}[bearer]
		if rec.Code == http.StatusOK {
			fmt.Fprintf(out, "   GET /hello with %-12s -> %d %q\n", label, rec.Code, strings.TrimSpace(rec.Body.String()))
		} else {
			fmt.Fprintf(out, "   GET /hello with %-12s -> %d, WWW-Authenticate: %s\n", label, rec.Code, rec.Header().Get("WWW-Authenticate"))
		}
	}
	fmt.Fprintln(out, "Done: every flow ran against the fake IdP. On a registered device,")
	fmt.Fprintln(out, "onesoidc.NewClientFromDevice(ctx, onesoidc.DevicePaths{}) reads the px-device-identity files instead;")
	fmt.Fprintln(out, "next: examples/devicetoken (a device token), examples/webserver (browser login), onesoidctest (your tests).")
	return nil
}
