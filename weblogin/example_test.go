package weblogin_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/ones-now/onesoidc"
	"github.com/ones-now/onesoidc/onesoidctest"
	"github.com/ones-now/onesoidc/weblogin"
)

// A web application logs users in by CIBA: the page posts the user's name to /auth/ciba/start,
// shows the binding code, and polls /auth/ciba/status; when the user approves on their phone,
// OnLogin receives the validated result on the server and sets the application's own session.
// The browser never sees a token. Here the provider is onesoidctest's fake, in ping mode, so
// that the approval is noticed at once.
func Example() {
	ctx := context.Background()
	idp, clientID, client := exampleClient(onesoidc.WithCIBAPing())
	idp.SetCIBANotificationEndpoint(clientID, "https://app.example/ciba/notify")
	idp.ScriptCIBA("alice", onesoidctest.CIBAScript{IDTokenClaims: map[string]any{"preferred_username": "Alice"}})

	login, err := weblogin.New(weblogin.Config{
		Client: client,
		OnLogin: func(w http.ResponseWriter, r *http.Request, res *onesoidc.LoginResult) error {
			fmt.Println("OnLogin:", res.Auth.Entity.Subject, "has an access token:", res.Token.AccessToken != "")
			http.SetCookie(w, &http.Cookie{Name: "app-session", Value: "s-1", HttpOnly: true, Secure: true})
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/auth/", login)
	mux.Handle("/ciba/notify", login.NotificationHandler())

	// The page, in the user's browser.
	var cookies []*http.Cookie
	post := func(path, body string) map[string]any {
		r := httptest.NewRequest(http.MethodPost, "https://app.example"+path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Origin", "https://app.example")
		for _, c := range cookies {
			r.AddCookie(c)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		cookies = append(cookies, w.Result().Cookies()...)
		var ans map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &ans)
		return ans
	}
	start := post("/auth/ciba/start", `{"userIdentifier": "alice"}`)
	fmt.Println(start["status"], "- the page and the phone show the same code:",
		start["bindingCode"] == idp.CIBARequests()[0].Params["binding_message"])
	status := fmt.Sprintf(`{"loginId": %q}`, start["loginId"])
	fmt.Println(post("/auth/ciba/status", status)["status"])

	// The user approves on the phone; the provider pings the notification endpoint.
	if _, err := idp.Ping(ctx, onesoidctest.HandlerClient(mux), idp.CIBARequests()[0].AuthReqID); err != nil {
		log.Fatal(err)
	}
	done := post("/auth/ciba/status", status)
	fmt.Println(done["status"], done["name"])
	// Output:
	// pending - the page and the phone show the same code: true
	// pending
	// OnLogin: alice has an access token: true
	// approved Alice
}

// Replicas that share a store change their seal key in three steps, each rolled out to every
// replica before the next, so that no login in flight is lost: whichever replica seals a
// result, the one that the browser reaches next can open it.
func ExampleConfig_sealKeyRotation() {
	_, _, client := exampleClient()
	store := weblogin.NewMemoryStore() // redisstore with replicas
	onLogin := func(http.ResponseWriter, *http.Request, *onesoidc.LoginResult) error { return nil }
	oldKey, newKey := make([]byte, weblogin.SealKeySize), make([]byte, weblogin.SealKeySize)
	_, _ = rand.Read(oldKey) // from the application's secret store, in practice
	_, _ = rand.Read(newKey)

	for _, step := range []struct {
		name     string
		key      []byte
		previous [][]byte
	}{
		{"1. the new key opens", oldKey, [][]byte{newKey}},
		{"2. the new key seals, the old one opens", newKey, [][]byte{oldKey}},
		{"3. after the logins in flight (12 minutes with ONES), the old key is gone", newKey, nil},
	} {
		_, err := weblogin.New(weblogin.Config{Client: client, OnLogin: onLogin, Store: store,
			SealKey: step.key, PreviousSealKeys: step.previous})
		fmt.Println(step.name, err == nil)
	}
	_, err := weblogin.New(weblogin.Config{Client: client, OnLogin: onLogin, Store: store,
		SealKey: newKey, PreviousSealKeys: [][]byte{newKey}})
	fmt.Println(err)
	// Output:
	// 1. the new key opens true
	// 2. the new key seals, the old one opens true
	// 3. after the logins in flight (12 minutes with ONES), the old key is gone true
	// weblogin: Config.PreviousSealKeys[0]: repeats SealKey: the current key is not a previous one
}

// exampleClient registers a device with onesoidctest's fake ONES provider and returns the
// provider, the device's client id and a client of it.
func exampleClient(opts ...onesoidc.Option) (*onesoidctest.Server, string, *onesoidc.OpenIDConnectClient) {
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
	client, err := onesoidc.NewClient(context.Background(), cfg, key, append([]onesoidc.Option{onesoidc.WithHTTPClient(idp.HTTPClient())}, opts...)...)
	if err != nil {
		log.Fatal(err)
	}
	return idp, dev.ClientID, client
}
