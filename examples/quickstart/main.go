// Command quickstart shows the whole SDK working against the built-in mock ONES identity
// provider: it writes a device identity (device.yml and key) as px-device-identity would, builds
// a client (discovery), gets a device access token and introspects it, and logs a user in with
// CIBA and with a QR code, and protects a handler with token validation.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
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
	"github.com/ones-now/onesoidc/internal/mockidp"
)

func main() {
	idp := mockidp.Start(mockidp.WithONES())
	defer idp.Close()
	if err := run(context.Background(), os.Stdout, idp); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		idp.Close()
		os.Exit(1)
	}
}

// run walks through every step against idp.
func run(ctx context.Context, out io.Writer, idp *mockidp.IdP) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	fmt.Fprintln(out, "1. mock ONES identity provider at", idp.URL)

	dir, err := os.MkdirTemp("", "onesoidc-quickstart")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfgPath, keyPath, err := writeDeviceIdentity(dir, idp.URL)
	if err != nil {
		return err
	}
	cfg, err := onesoidc.LoadDeviceConfig(cfgPath)
	if err != nil {
		return err
	}
	key, err := onesoidc.LoadPrivateKey(keyPath)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "2. device %s (client %s) loaded from %s, key %s\n", cfg.ID, cfg.ClientID, filepath.Base(cfgPath), key)
	idp.RegisterClient(cfg.ClientID, key.Public(), key.Algorithm())

	const api = "https://api.quickstart.test" // the resource the device token is for
	client, err := onesoidc.NewClient(ctx, cfg, key, onesoidc.WithHTTPClient(idp.HTTPClient()),
		onesoidc.WithDeviceTokenResource(api))
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

	// CIBA: ask the IdP to push "approve this login" to alice's phone, then wait. The mock IdP
	// approves after two polls, one second apart.
	idp.ScriptCIBA("alice", mockidp.CIBAScript{PendingPolls: 2, Interval: 1})
	resp, err := client.MakeCIBARequest(ctx, onesoidc.CIBARequest{
		Hint:           onesoidc.LoginHint{Kind: onesoidc.HintLogin, Value: "alice"},
		Scope:          []string{"openid", "profile"},
		BindingMessage: "QUICKSTART-1",
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "6. CIBA login for alice requested (binding message QUICKSTART-1), expires in %v\n", resp.ExpiresIn)
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
	idp.SetDeviceID(cfg.ClientID, cfg.ID)
	idp.ScriptQR(mockidp.QRScript{Subject: "bob"})
	qr, err := client.StartQRLogin(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "7. QR login: scan the code with the ONES app (session %s, expires in %v)\n", qr.ID(), qr.ExpiresIn)
	fmt.Fprint(out, qr.QR.Terminal())
	qres, err := client.WaitForQRLogin(ctx, qr)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   approved on the phone by %q: scope %q, access token validated by introspection\n",
		qres.Auth.Entity.Subject, qres.Scope)

	// A resource server: RequireToken validates bearer tokens against the provider's keys.
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
		fmt.Fprintf(out, "8. GET /hello with %-12s -> %d %s %s\n", label, rec.Code, rec.Header().Get("WWW-Authenticate"), strings.TrimSpace(rec.Body.String()))
	}
	return nil
}

// writeDeviceIdentity writes device.yml and an EC P-256 key as px-device-identity would.
func writeDeviceIdentity(dir, host string) (cfgPath, keyPath string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	keyPath = filepath.Join(dir, "private.pem")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return "", "", err
	}
	cfgPath = filepath.Join(dir, "device.yml")
	yml := fmt.Sprintf(`id: 3f9a6c21-8d4e-4b7f-a2c5-6e1d0b9f4a87
client_id: 7c3e1f52-2b7a-4d8e-9a61-0f4b2c9d8e13
config_version: '1.0'
domain: ones-now.com
host: %s
initiated_on: '2026-11-28 09:14:27'
is_managed: true
key_security: default
key_type: ECC:p256
location: Quickstart
role: DESKTOP
title: Quickstart device
`, host)
	return cfgPath, keyPath, os.WriteFile(cfgPath, []byte(yml), 0o600)
}
