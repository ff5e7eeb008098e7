// Command devicetoken gets a device access token for this PantherX device, as a daemon or a
// shell script on the device would: onesoidc.NewClientFromDevice reads the px-device-identity
// device.yml, key and registered JWK, and the client signs a private_key_jwt client assertion
// and asks the ONES identity provider.
//
//	devicetoken                       # reports the token's type, scope and expiry
//	devicetoken -print-token          # prints the access token alone, for scripts
//	devicetoken -config device.yml -key private.pem
//
// Devices with key_security "tpm" sign through px-device-identity-service (-signer URL).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/ones-now/onesoidc"
)

func main() {
	var (
		cfgPath   = flag.String("config", "/etc/px-device-identity/device.yml", "px-device-identity device.yml")
		keyPath   = flag.String("key", "/root/.local/share/px-device-identity/private.pem", "device private key (PEM), for key_security default")
		signerURL = flag.String("signer", "http://localhost:8000/sign", "px-device-identity-service signing URL, for key_security tpm")
		scope     = flag.String("scope", "", "space-separated scopes to request")
		printTok  = flag.Bool("print-token", false, "print the access token itself on stdout")
		verbose   = flag.Bool("v", false, "log requests to stderr (never tokens)")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout, *cfgPath, *keyPath, *signerURL, *scope, *printTok, *verbose, nil); err != nil {
		fmt.Fprintln(os.Stderr, "devicetoken:", err)
		stop()
		os.Exit(1)
	}
}

// run gets the token and writes the report (or the token) to out; extra options come last.
func run(ctx context.Context, out io.Writer, cfgPath, keyPath, signerURL, scope string, printTok, verbose bool, extra []onesoidc.Option) error {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	opts := []onesoidc.Option{onesoidc.WithLogger(logger)}
	if scope != "" {
		opts = append(opts, onesoidc.WithDeviceTokenScope(strings.Fields(scope)...))
	}
	// key_security picks the key file or px-device-identity-service; the public_jwk.json beside
	// the key, when there, gives the registered kid and alg.
	client, err := onesoidc.NewClientFromDevice(ctx, onesoidc.DevicePaths{Config: cfgPath, Key: keyPath, SignerURL: signerURL},
		append(opts, extra...)...)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w\n(no px-device-identity files there: name them with -config and -key, or see the SDK work against a fake provider with go run ./examples/quickstart)", err)
	}
	if err != nil {
		return err
	}
	tok, err := client.DeviceAccessToken(ctx)
	if errors.Is(err, onesoidc.ErrInvalidClient) {
		return fmt.Errorf("the provider refused this device's credentials (is the device still registered?): %w", err)
	}
	if err != nil {
		return err
	}
	if printTok {
		fmt.Fprintln(out, tok.AccessToken)
		return nil
	}
	fmt.Fprintf(out, "device client %s: %s token, scope %q, expires %s (in %v)\n", client.ClientID(), tok.TokenType, tok.Extra("scope"),
		tok.Expiry.Format(time.RFC3339), time.Until(tok.Expiry).Round(time.Second))
	return nil
}
