package onesoidc

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/oauth2"

	"github.com/ones-now/onesoidc/onesoidctest"
)

// TestCB15OnePollInFlightPerRequest: a second poll for an auth_req_id while the first is in flight
// is not sent (a replay of a redeemed id makes the provider revoke the tokens it just issued).
func TestCB15OnePollInFlightPerRequest(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := cibaSetup(t)
		resp, err := c.MakeCIBARequest(t.Context(), aliceRequest())
		if err != nil {
			t.Fatal(err)
		}
		idp.Inject(onesoidctest.EndpointToken, onesoidctest.Fault{Times: 1, Delay: 8 * time.Second}) // a slow provider
		var wg sync.WaitGroup
		var first *LoginResult
		var firstErr error
		wg.Go(func() { first, firstErr = c.CheckCIBAStatus(t.Context(), resp.AuthReqID) })
		time.Sleep(6 * time.Second)
		if _, err := c.CheckCIBAStatus(t.Context(), resp.AuthReqID); !errors.Is(err, errPollInFlight) {
			t.Errorf("second CheckCIBAStatus: %v, want errPollInFlight", err)
		}
		wg.Wait()
		if firstErr != nil || first == nil {
			t.Fatalf("first poll: %v", firstErr)
		}
		if n := idp.Count(onesoidctest.EndpointToken); n != 1 {
			t.Errorf("%d token requests, want 1", n)
		}
	})
}

// TestPollIntervalFloor: an interval under 1 s from the provider is refused (KF-10), as is a
// token that expires at once.
func TestPollIntervalFloor(t *testing.T) {
	t.Parallel()
	idp := startIdP(t)
	c := newTestClient(t, idp, testKey(t, "EdDSA"), WithDeviceAuthorizationQR())
	idp.Inject(onesoidctest.EndpointBackchannel, onesoidctest.Fault{Times: 1, Status: 200, ContentType: "application/json",
		Body: []byte(`{"auth_req_id":"abcdefghijklmnopqrstuv","expires_in":600,"interval":0.01}`)})
	if _, err := c.MakeCIBARequest(t.Context(), aliceRequest()); !errors.As(err, new(*HTTPError)) {
		t.Errorf("interval 0.01 in a backchannel answer: %v, want an HTTPError", err)
	}
	idp.Inject(onesoidctest.EndpointDeviceAuthorization, onesoidctest.Fault{Times: 1, Status: 200, ContentType: "application/json",
		Body: []byte(`{"device_code":"dc-abcdefghijklmnopqrstuvwxyz","user_code":"ABCD","verification_uri":"` + idp.Issuer + `/device","expires_in":600,"interval":0.5}`)})
	if _, err := c.StartQRLogin(t.Context()); !errors.As(err, new(*HTTPError)) {
		t.Errorf("interval 0.5 in a device authorization answer: %v, want an HTTPError", err)
	}
	idp.Inject(onesoidctest.EndpointToken, onesoidctest.Fault{Times: 1, Status: 200, ContentType: "application/json",
		Body: []byte(`{"access_token":"a","token_type":"Bearer","expires_in":0}`)})
	if _, err := c.RequestDeviceAccessToken(t.Context()); !errors.As(err, new(*HTTPError)) {
		t.Errorf("expires_in 0: %v, want an HTTPError", err)
	}
}

// TestQR01VerificationURIAlsoChecked: the text URL is shown too, so it must be on the issuer's
// origin and ASCII even when the QR code encodes verification_uri_complete.
func TestQR01VerificationURIAlsoChecked(t *testing.T) {
	t.Parallel()
	for name, uri := range map[string]string{
		"other origin": "https://evil.example/device",
		"bidi control": "%s/\u202edevice",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			idp := startIdP(t)
			c := newTestClient(t, idp, testKey(t, "EdDSA"), WithDeviceAuthorizationQR())
			body := `{"device_code":"dc-abcdefghijklmnopqrstuvwxyz","user_code":"ABCD","verification_uri":"` + strings.Replace(uri, "%s", idp.Issuer, 1) +
				`","verification_uri_complete":"` + idp.Issuer + `/device?user_code=ABCD","expires_in":600}`
			idp.Inject(onesoidctest.EndpointDeviceAuthorization, onesoidctest.Fault{Status: 200, ContentType: "application/json", Body: []byte(body)})
			if s, err := c.StartQRLogin(t.Context()); s != nil || !errors.As(err, new(*ConfigError)) {
				t.Errorf("StartQRLogin = %v, %v; want a ConfigError", s, err)
			}
		})
	}
}

func TestRemoteSignerSignatureLengths(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		alg  string
		size int
		ok   bool
	}{
		{"EdDSA", 64, true}, {"EdDSA", 63, false}, {"RS256", 256, true}, {"RS256", 100, false}, {"ES384", 96, true}, {"ES384", 64, false},
	} {
		s, err := NewRemoteSigner(testDeviceID, tc.alg)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := s.signatureSize(tc.size); ok != tc.ok {
			t.Errorf("%s signature of %d bytes accepted=%v, want %v", tc.alg, tc.size, ok, tc.ok)
		}
	}
}

func TestRefreshWithoutIDTokenKeepsThePreviousOne(t *testing.T) {
	t.Parallel()
	idp := startIdP(t)
	c := newTestClient(t, idp, testKey(t, "ES256"))
	idp.ScriptRefresh(onesoidctest.RefreshScript{OmitIDToken: true})
	idt, _ := idp.MintIDToken(testClientID, "alice", nil)
	prev := (&oauth2.Token{AccessToken: "old", RefreshToken: idp.MintRefreshToken(testClientID, "alice", "openid")}).
		WithExtra(map[string]any{"id_token": idt})
	tok, err := c.RefreshToken(t.Context(), prev)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Extra("id_token") != idt || tok.Extra("scope") != "openid" {
		t.Errorf("refreshed token extra: id_token kept %v, scope %v", tok.Extra("id_token") == idt, tok.Extra("scope"))
	}
	// The next refresh still checks the subject against it.
	idp.ScriptRefresh(onesoidctest.RefreshScript{IDTokenSubject: "mallory"})
	if _, err := c.RefreshToken(t.Context(), tok); !errors.As(err, new(*ValidationError)) {
		t.Errorf("refresh with another subject after an answer without ID token: %v", err)
	}
}

func TestHF05ContentTypeIsSanitized(t *testing.T) {
	t.Parallel()
	idp := startIdP(t)
	idp.Inject(onesoidctest.EndpointDiscovery, onesoidctest.Fault{Status: 502, ContentType: "text/html\x1b[31m; " + strings.Repeat("x", 500)})
	_, err := Discover(t.Context(), idp.Issuer, WithHTTPClient(idp.HTTPClient()), WithDiscoveryAttempts(1))
	var he *HTTPError
	if !errors.As(err, &he) || len(he.ContentType) > 100 || strings.ContainsRune(err.Error(), 0x1b) {
		t.Errorf("err = %q", err)
	}
}

func TestMetadataIsACopy(t *testing.T) {
	t.Parallel()
	idp := startIdP(t)
	c := newTestClient(t, idp, testKey(t, "EdDSA"))
	m := c.Metadata()
	m.ScopesSupported[0] = "changed"
	m.Raw[0] = 'X'
	if again := c.Metadata(); again.ScopesSupported[0] == "changed" || again.Raw[0] == 'X' {
		t.Errorf("the client's metadata changed through a copy")
	}
}

func TestHF13TLSVersionMismatchIsPermanent(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.TLS = &tls.Config{MaxVersion: tls.VersionTLS11}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err := Discover(ctx, srv.URL+"/oidc", WithHTTPClient(srv.Client()), WithDiscoveryAttempts(5))
	var he *HTTPError
	if !errors.As(err, &he) || he.Temporary() {
		t.Fatalf("err = %v, want a permanent HTTPError", err)
	}
}
