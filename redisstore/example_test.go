package redisstore_test

import (
	"context"
	"encoding/base64"
	"log"
	"net/http"
	"os"

	"github.com/redis/go-redis/v9"

	"github.com/ones-now/onesoidc"
	"github.com/ones-now/onesoidc/redisstore"
	"github.com/ones-now/onesoidc/weblogin"
)

// Every replica of a web application builds the same handler on the same Redis, with the same
// seal key (32 bytes, from the application's secrets), so that a login started on one replica is
// collected on any other.
func ExampleNew() {
	ctx := context.Background()
	client, err := onesoidc.NewClientFromDevice(ctx, onesoidc.DevicePaths{})
	if err != nil {
		log.Fatal(err)
	}
	sealKey, err := base64.StdEncoding.DecodeString(os.Getenv("ONESOIDC_SEAL_KEY"))
	if err != nil || len(sealKey) != weblogin.SealKeySize {
		log.Fatal("ONESOIDC_SEAL_KEY must hold 32 bytes in base64")
	}

	rdb := redis.NewClient(&redis.Options{Addr: "10.0.0.5:6379"})
	store, err := redisstore.New(rdb) // keys under {onesoidc-weblogin}:
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	h, err := weblogin.New(weblogin.Config{
		Client: client,
		OnLogin: func(w http.ResponseWriter, r *http.Request, res *onesoidc.LoginResult) error {
			return nil // start the application's session: keep res.Token on the server
		},
		Store:   store,
		SealKey: sealKey,
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/auth/", h)
	mux.Handle("/ciba/notify", h.NotificationHandler()) // CIBA ping mode: valid on every replica
	log.Fatal(http.ListenAndServe(":8080", mux))
}
