package onesoidc

import (
	"errors"
	"testing"

	"github.com/ones-now/onesoidc/onesoidctest"
)

// TestDS01IssuerMismatchMatchesSentinel: discovery of a document naming another issuer is a
// *ConfigError matching ErrIssuerMismatch, so callers need not compare Field strings.
func TestDS01IssuerMismatchMatchesSentinel(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	idp.EditMetadata(func(doc map[string]any) { doc["issuer"] = "https://evil.example/oidc" })
	_, err := Discover(t.Context(), idp.Issuer, WithHTTPClient(idp.HTTPClient()))
	var ce *ConfigError
	if !errors.Is(err, ErrIssuerMismatch) || !errors.As(err, &ce) || ce.Field != "issuer" {
		t.Fatalf("err = %v, want a *ConfigError matching ErrIssuerMismatch", err)
	}
	if errors.Is(err, ErrNotSupportedByProvider) {
		t.Errorf("err = %v also matches ErrNotSupportedByProvider", err)
	}
}

// TestHF08TokenTypeNotBearerMatchesSentinel: a token response with another token_type (DPoP,
// N_A) is refused with an *HTTPError matching errTokenTypeNotBearer and ErrInvalidResponse.
func TestHF08TokenTypeNotBearerMatchesSentinel(t *testing.T) {
	t.Parallel()
	for _, tt := range []string{"DPoP", "N_A", ""} {
		t.Run(tt, func(t *testing.T) {
			t.Parallel()
			idp := onesoidctest.NewInMemory()
			c := newTestClient(t, idp, testKey(t, "ES256"))
			idp.Inject(onesoidctest.EndpointToken, onesoidctest.Fault{Status: 200, ContentType: "application/json",
				Body: []byte(`{"access_token":"a","token_type":"` + tt + `","expires_in":60}`)})
			_, err := c.RequestDeviceAccessToken(t.Context())
			if !errors.Is(err, errTokenTypeNotBearer) || !errors.Is(err, ErrInvalidResponse) || !errors.As(err, new(*HTTPError)) {
				t.Fatalf("err = %v, want errTokenTypeNotBearer", err)
			}
		})
	}
	// A refused 2xx answer of another kind matches ErrInvalidResponse only; a 5xx never does.
	idp := onesoidctest.NewInMemory()
	c := newTestClient(t, idp, testKey(t, "ES256"))
	idp.Inject(onesoidctest.EndpointToken, onesoidctest.Fault{Times: 1, Status: 200, ContentType: "application/json", Body: []byte(`{"token_type":"Bearer"}`)})
	if _, err := c.RequestDeviceAccessToken(t.Context()); !errors.Is(err, ErrInvalidResponse) || errors.Is(err, errTokenTypeNotBearer) {
		t.Errorf("missing access_token: %v", err)
	}
	idp.Inject(onesoidctest.EndpointToken, onesoidctest.Fault{Times: 1, Status: 503, ContentType: "text/html"})
	if _, err := c.RequestDeviceAccessToken(t.Context()); errors.Is(err, ErrInvalidResponse) {
		t.Errorf("503 matches ErrInvalidResponse: %v", err)
	}
}

// TestDS13DS14MissingFeatureMatchesSentinel: a flow the provider metadata does not offer is a
// *ConfigError matching ErrNotSupportedByProvider, before any request.
func TestDS13DS14MissingFeatureMatchesSentinel(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	idp.EditMetadata(func(doc map[string]any) {
		for _, k := range []string{"backchannel_authentication_endpoint", "device_authorization_endpoint", "introspection_endpoint", "revocation_endpoint"} {
			delete(doc, k)
		}
	})
	c := newTestClient(t, idp, testKey(t, "ES256"), WithDeviceAuthorizationQR())
	checks := map[string]error{}
	_, checks["CIBA"] = c.MakeCIBARequest(t.Context(), aliceRequest())
	_, checks["QR login"] = c.StartQRLogin(t.Context())
	_, checks["introspection"] = c.IntrospectToken(t.Context(), "t", "")
	checks["revocation"] = c.RevokeToken(t.Context(), "t", "")
	for name, err := range checks {
		if !errors.Is(err, ErrNotSupportedByProvider) || !errors.As(err, new(*ConfigError)) {
			t.Errorf("%s: %v, want ErrNotSupportedByProvider", name, err)
		}
	}

	idp2 := onesoidctest.NewInMemory()
	idp2.EditMetadata(func(doc map[string]any) {
		doc["token_endpoint_auth_methods_supported"] = []string{"client_secret_basic"}
	})
	key := testKey(t, "ES256")
	idp2.RegisterClient(testClientID, key.Public(), key.Algorithm())
	if _, err := NewClient(t.Context(), testConfig(idp2), key, WithHTTPClient(idp2.HTTPClient())); !errors.Is(err, ErrNotSupportedByProvider) {
		t.Errorf("no private_key_jwt: %v, want ErrNotSupportedByProvider", err)
	}
	if n := idp.Count(onesoidctest.EndpointBackchannel) + idp.Count(onesoidctest.EndpointDeviceAuthorization); n != 0 {
		t.Errorf("%d requests, want none", n)
	}
}
