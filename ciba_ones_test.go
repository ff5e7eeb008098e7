package onesoidc

import (
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ones-now/onesoidc/onesoidctest"
)

// onesClient returns a client with default CIBA options (the ONES encoding) of an in-memory IdP
// in ONES mode; jwk is the registered key.
func onesClient(t *testing.T, idp *onesoidctest.Server, key *DeviceKey, opts ...Option) *OpenIDConnectClient {
	t.Helper()
	idp.RegisterClientJWK(testClientID, jose.JSONWebKey{Key: key.Public(), Algorithm: key.Algorithm(), KeyID: key.KeyID()})
	c, err := NewClient(t.Context(), testConfig(idp), key, append([]Option{WithHTTPClient(idp.HTTPClient())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// jwsParts returns the decoded header and payload bytes of a compact JWS.
func jwsParts(t *testing.T, raw string) (header, payload string) {
	t.Helper()
	p := strings.Split(raw, ".")
	if len(p) != 3 {
		t.Fatalf("not a compact JWS")
	}
	h, err1 := base64.RawURLEncoding.DecodeString(p[0])
	b, err2 := base64.RawURLEncoding.DecodeString(p[1])
	if err1 != nil || err2 != nil {
		t.Fatal("segments are not base64url")
	}
	return string(h), string(b)
}

// TestCIBAONESRequestIsWhatTheONESClientsSend: by default a client made from a device.yml sends
// the ONES CIBA request byte for byte: POST {issuer}/bc-authorize with exactly request,
// client_id, client_assertion_type and client_assertion; header {"alg","typ":"JWT"} without kid
// for a key registered without one; claims login_hint_token (the user name), scope (default
// "openid contact profile"), acr_values "poll", binding_message (spaces, over 20 characters),
// iss, aud = the backchannel endpoint, exp = now + 300; no iat, nbf, jti, sub. The mock IdP in
// ONES mode checks the same and the login completes.
func TestCIBAONESRequestIsWhatTheONESClientsSend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := onesoidctest.NewInMemory(onesoidctest.WithONES())
		c := onesClient(t, idp, testKey(t, "ES256"))
		if got, want := c.Metadata().BackchannelAuthenticationEndpoint, idp.Issuer+"/bc-authorize"; got != want {
			t.Fatalf("backchannel endpoint %q, want %q", got, want)
		}
		const user, message = "master.user-748@OnesDiD0", "Authorize login to Example.com?"
		ack, err := c.MakeCIBARequest(t.Context(), CIBARequest{Hint: LoginHint{Kind: HintLogin, Value: user}, BindingMessage: message})
		if err != nil {
			t.Fatal(err)
		}
		reqs := idp.Requests(onesoidctest.EndpointBackchannel)
		if len(reqs) != 1 || reqs[0].Method != "POST" {
			t.Fatalf("requests %+v", reqs)
		}
		f := reqs[0].Form
		if keys := slices.Sorted(maps.Keys(f)); !slices.Equal(keys, []string{"client_assertion", "client_assertion_type", "client_id", "request"}) {
			t.Errorf("form parameters %v", keys)
		}
		if f.Get("client_id") != testClientID || f.Get("client_assertion_type") != clientAssertionType {
			t.Errorf("form %v", f)
		}
		_, claims := decodeJWT(t, f.Get("client_assertion"))
		if claims["aud"] != idp.Issuer+"/token" {
			t.Errorf("client assertion aud %v, want the token endpoint", claims["aud"])
		}
		header, payload := jwsParts(t, f.Get("request"))
		if want := `{"alg":"ES256","typ":"JWT"}`; header != want {
			t.Errorf("header\n %s\nwant\n %s", header, want)
		}
		want := fmt.Sprintf(`{"login_hint_token":%q,"scope":"openid contact profile","acr_values":"poll","binding_message":%q,"iss":%q,"aud":%q,"exp":%d}`,
			user, message, testClientID, idp.Issuer+"/bc-authorize", time.Now().Unix()+300)
		if payload != want {
			t.Errorf("claims\n %s\nwant\n %s", payload, want)
		}
		res, err := c.WaitForCIBA(t.Context(), ack)
		if err != nil {
			t.Fatal(err)
		}
		if res.Auth.Entity.Subject != user || isJWT(res.Token.AccessToken) {
			t.Errorf("login of %q, access token JWT-shaped: %v", res.Auth.Entity.Subject, isJWT(res.Token.AccessToken))
		}
		if _, err := c.ValidateToken(t.Context(), res.Token.AccessToken); err != nil {
			t.Errorf("the user's opaque access token: %v", err)
		}
	})
}

// TestCIBAONESRequestCarriesTheRegisteredKeyID: the request object announces the registered kid
// when there is one, and the options the caller set.
func TestCIBAONESRequestCarriesTheRegisteredKeyID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := onesoidctest.NewInMemory(onesoidctest.WithONES())
		k := testKey(t, "EdDSA")
		key, err := NewDeviceKey(k.signer, WithKeyID("registered-1"))
		if err != nil {
			t.Fatal(err)
		}
		c := onesClient(t, idp, key)
		_, err = c.MakeCIBARequest(t.Context(), CIBARequest{Hint: LoginHint{Kind: HintLoginToken, Value: "bob"},
			Scope: []string{"openid"}, ACRValues: []string{"urn:ones:acr:1"}, QRSessionID: "qr-1", RequestedExpiry: 120 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		header, payload := jwsParts(t, idp.Requests(onesoidctest.EndpointBackchannel)[0].Form.Get("request"))
		if want := `{"alg":"EdDSA","typ":"JWT","kid":"registered-1"}`; header != want {
			t.Errorf("header %s, want %s", header, want)
		}
		want := fmt.Sprintf(`{"login_hint_token":"bob","scope":"openid","acr_values":"urn:ones:acr:1","requested_expiry":120,"qr_session_id":"qr-1","iss":%q,"aud":%q,"exp":%d}`,
			testClientID, idp.Issuer+"/bc-authorize", time.Now().Unix()+300)
		if payload != want {
			t.Errorf("claims\n %s\nwant\n %s", payload, want)
		}
	})
}

// TestMockONESRefusesTheStandardShapes: the mock IdP in ONES mode refuses what the ONES provider
// would not take, so that the tests above prove the shape: form parameters, the standard
// request object (typ oauth-authz-req+jwt, aud = issuer, iat, nbf, jti), and the old route.
func TestMockONESRefusesTheStandardShapes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := onesoidctest.NewInMemory(onesoidctest.WithONES())
		key := testKey(t, "ES256")
		for i, enc := range []Option{WithStandardCIBA(), WithCIBARequestObject()} {
			c := onesClient(t, idp, key, enc)
			_, err := c.MakeCIBARequest(t.Context(), aliceRequest())
			var oe *OAuthError
			if !errors.As(err, &oe) || oe.StatusCode != 400 {
				t.Errorf("encoding %d: err = %v, want a 400 from the ONES route", i, err)
			}
		}
		resp, err := idp.HTTPClient().Post(idp.URL+"/oidc/backchannel", "application/x-www-form-urlencoded", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("/oidc/backchannel answered %d in ONES mode, want 404", resp.StatusCode)
		}
	})
}

// TestCIBAONESBindingMessageIsNotTheStockRule: the ONES default accepts binding messages the
// stock oidc-provider rule refuses; the stock rule stays available as an option.
func TestCIBAONESBindingMessageIsNotTheStockRule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := onesoidctest.NewInMemory(onesoidctest.WithONES())
		key := testKey(t, "ES256")
		req := CIBARequest{Hint: LoginHint{Kind: HintLogin, Value: "alice"}, BindingMessage: "Authorize login to Example.com?"}
		if _, err := onesClient(t, idp, key).MakeCIBARequest(t.Context(), req); err != nil {
			t.Errorf("ONES default: %v", err)
		}
		stock := onesClient(t, idp, key, WithCIBABindingMessagePattern(regexp.MustCompile(BindingMessagePatternOIDCProvider)))
		var re *RequestError
		if _, err := stock.MakeCIBARequest(t.Context(), req); !errors.As(err, &re) || re.Field != "binding_message" {
			t.Errorf("stock rule: err = %v, want a binding_message *RequestError", err)
		}
	})
}

// TestCIBAONESWithoutDiscoveredEndpointUsesBCAuthorize: a ONES provider whose discovery lists no
// backchannel endpoint is asked at {issuer}/bc-authorize, the vendor clients' route.
func TestCIBAONESWithoutDiscoveredEndpointUsesBCAuthorize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := onesoidctest.NewInMemory(onesoidctest.WithONES())
		idp.EditMetadata(func(doc map[string]any) { delete(doc, "backchannel_authentication_endpoint") })
		c := onesClient(t, idp, testKey(t, "ES256"))
		if _, err := c.MakeCIBARequest(t.Context(), aliceRequest()); err != nil {
			t.Fatal(err)
		}
		if n := idp.Count(onesoidctest.EndpointBackchannel); n != 1 {
			t.Errorf("%d requests to bc-authorize", n)
		}
	})
}

// TestCIBAONESPingModeCarriesItsToken: in ping mode the ONES request object carries the
// client_notification_token and acr_values "ping".
func TestCIBAONESPingModeCarriesItsToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := onesoidctest.NewInMemory(onesoidctest.WithONES())
		idp.SetCIBANotificationEndpoint(testClientID, notifyURL)
		c := onesClient(t, idp, testKey(t, "ES256"), WithCIBAPing())
		if _, err := c.MakeCIBARequest(t.Context(), CIBARequest{Hint: LoginHint{Kind: HintLogin, Value: "alice"}}); err != nil {
			t.Fatal(err)
		}
		rec := idp.CIBARequests()[0]
		if rec.Encoding != "ones" || rec.Params["acr_values"] != "ping" || len(rec.Params["client_notification_token"]) != 43 {
			t.Errorf("record %+v", rec)
		}
	})
}
