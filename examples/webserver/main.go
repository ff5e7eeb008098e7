// Command webserver is a web application that logs users in with ONES: CIBA ("approve on your
// phone", with a binding code on both screens) and ONES QR login, through the weblogin package;
// the tokens stay on the server, and a protected API behind RequireToken is called by the
// server for the page.
//
// By default it runs against the SDK's fake identity provider on loopback:
//
//	go run . -addr 127.0.0.1:8080
//
// and logs in any user name (try "alice"). Against a real ONES provider, on a registered device:
//
//	go run . -device /etc/px-device-identity/device.yml -key /root/.local/share/px-device-identity/private.pem \
//	    -origin https://app.example
//
// Several replicas share their login state through Redis (-redis 127.0.0.1:6379); they must share
// the key that seals tokens at rest: ONESOIDC_SEAL_KEY, 32 bytes in base64.
package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ones-now/onesoidc"
	"github.com/ones-now/onesoidc/examples/webserver/app"
	"github.com/ones-now/onesoidc/redisstore"
	"github.com/ones-now/onesoidc/weblogin"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "webserver:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	device := flag.String("device", "", "device.yml of a registered device (default: the fake IdP)")
	keyPath := flag.String("key", "/root/.local/share/px-device-identity/private.pem", "device private key, with -device")
	origin := flag.String("origin", "", "origin browsers see, such as https://app.example (needed behind a TLS proxy)")
	redisAddr := flag.String("redis", "", "Redis address for shared login state (replicas); needs ONESOIDC_SEAL_KEY")
	ping := flag.Bool("ping", false, "CIBA ping mode: serve /ciba/notify (register it with the provider)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))

	var opts []onesoidc.Option
	if *ping {
		opts = append(opts, onesoidc.WithCIBAPing())
	}
	o := app.Options{Origin: *origin, Logger: logger}
	if *device == "" {
		idp, client, err := app.StartFakeIdP(ctx)
		if err != nil {
			return err
		}
		defer idp.Close()
		logger.Info("fake ONES identity provider", "url", idp.URL, "hint", `log in as any user name; "alice" has a display name`)
		o.Client, o.APIAudience = client, client.Metadata().Issuer
	} else {
		// device.yml, the key (or the TPM signer) and the registered JWK; the ONES defaults.
		var err error
		paths := onesoidc.DevicePaths{Config: *device, Key: *keyPath}
		if o.Client, err = onesoidc.NewClientFromDevice(ctx, paths, append(opts, onesoidc.WithLogger(logger))...); err != nil {
			return err
		}
	}
	if *redisAddr != "" {
		key, err := base64.StdEncoding.DecodeString(os.Getenv("ONESOIDC_SEAL_KEY"))
		if err != nil || len(key) != weblogin.SealKeySize {
			return errors.New("-redis needs ONESOIDC_SEAL_KEY: 32 bytes in base64, the same on every replica")
		}
		rdb := redis.NewClient(&redis.Options{Addr: *redisAddr})
		defer rdb.Close()
		st, err := redisstore.New(rdb)
		if err != nil {
			return err
		}
		defer st.Close()
		o.Store, o.SealKey = st, key
	}
	a, err := app.New(o)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := newServer(a)
	logger.Info("listening", "url", "http://"+l.Addr().String())
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newServer returns the HTTP server of h, with every timeout set: without ReadTimeout a client
// can send its headers and then trickle its body for as long as it likes, holding a connection
// and a goroutine, and without IdleTimeout so can an idle keep-alive connection. WriteTimeout
// leaves room for a long-polled status request (weblogin's LongPoll of 20 s here, plus a poll of
// the provider of up to 20 s).
func newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}
