package onesoidc

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ones-now/onesoidc/onesoidctest"
)

// wantPrefixOnce fails unless err's message starts with "onesoidc: " and says it nowhere else.
func wantPrefixOnce(t *testing.T, name string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", name)
		return
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "onesoidc: ") || strings.Count(msg, "onesoidc:") != 1 {
		t.Errorf("%s: %q; want it to name the package once, at its start", name, msg)
	}
}

// TestErrorsWrappingErrorsOfThePackageNameItOnce: each error type that wraps another
// (*ConfigError, *HTTPError, *ValidationError, *LoginExpiredError, *LoginTokenError,
// *LoginIncompleteError, and the wrapped errors of a finished login, a poll wait, discovery and
// client assertions) said "onesoidc: " again for its cause: "onesoidc: issuer: …: onesoidc:
// provider metadata names another issuer". The cause's own prefix is left out; errors.Is still
// finds it.
func TestErrorsWrappingErrorsOfThePackageNameItOnce(t *testing.T) {
	t.Parallel()
	cause := ErrIssuerMismatch
	for name, err := range map[string]error{
		"ConfigError":                    &ConfigError{Field: "issuer", Reason: "names another", Err: cause},
		"HTTPError":                      &HTTPError{Op: "token", URL: "https://idp/token", StatusCode: 200, Reason: "refused", Err: cause},
		"HTTPError of an OAuthError":     &HTTPError{Op: "token", URL: "https://idp/token", StatusCode: 503, Err: &OAuthError{Op: "token", Code: "temporarily_unavailable"}},
		"ValidationError":                &ValidationError{reason: reasonInvalidIssuer, Err: cause},
		"LoginExpiredError":              &LoginExpiredError{Expiry: time.Unix(0, 0), Err: cause},
		"LoginTokenError":                &LoginTokenError{Reason: "refused", Err: cause},
		"LoginIncompleteError":           &LoginIncompleteError{Err: &LoginTokenError{Reason: "refused", Err: &ValidationError{reason: reasonInvalidIssuer, Err: cause}}, RevokeErr: cause},
		"finished login":                 finishedError(&LoginIncompleteError{Err: cause, Revoked: true}),
		"wrapf of two":                   wrapf("onesoidc: discovery of %s: %w (last error: %w)", "https://idp", context.Canceled, cause),
		"ConfigError of a foreign cause": &ConfigError{Field: "x", Reason: "y", Err: context.Canceled},
	} {
		wantPrefixOnce(t, name, err)
		if name != "ConfigError of a foreign cause" && name != "HTTPError of an OAuthError" && !errors.Is(err, cause) {
			t.Errorf("%s: %v does not match its cause", name, err)
		}
	}

	// And as the failing paths build them.
	t.Run("issuer mismatch", func(t *testing.T) {
		t.Parallel()
		idp := onesoidctest.NewInMemory()
		idp.EditMetadata(func(d map[string]any) { d["issuer"] = "http://localhost/other" })
		_, err := Discover(t.Context(), idp.Issuer, WithHTTPClient(idp.HTTPClient()))
		if !errors.Is(err, ErrIssuerMismatch) {
			t.Fatalf("err = %v, want ErrIssuerMismatch", err)
		}
		wantPrefixOnce(t, "Discover", err)
		_, err = NewClient(t.Context(), testConfig(idp), testKey(t, "ES256"), WithHTTPClient(idp.HTTPClient()))
		wantPrefixOnce(t, "NewClient", err)
	})
	t.Run("not supported by the provider", func(t *testing.T) {
		t.Parallel()
		idp := onesoidctest.NewInMemory()
		idp.EditMetadata(func(d map[string]any) { delete(d, "introspection_endpoint") })
		c := newTestClient(t, idp, testKey(t, "ES256"))
		_, err := c.IntrospectToken(t.Context(), "opaque", "")
		if !errors.Is(err, ErrNotSupportedByProvider) {
			t.Fatalf("err = %v", err)
		}
		wantPrefixOnce(t, "IntrospectToken", err)
	})
	for name, f := range map[string]onesoidctest.Fault{
		"token_type not Bearer":   {Status: 200, ContentType: "application/json", Body: []byte(`{"access_token":"a","token_type":"DPoP","expires_in":60}`)},
		"503 with an OAuth error": {Status: 503, ContentType: "application/json", Body: []byte(`{"error":"temporarily_unavailable"}`)},
		"body over its cap":       {Status: 200, ContentType: "application/json", Body: []byte(`{"access_token":"` + strings.Repeat("a", 70<<10) + `"}`)},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			idp := onesoidctest.NewInMemory()
			c := newTestClient(t, idp, testKey(t, "ES256"))
			idp.Inject(onesoidctest.EndpointToken, f)
			_, err := c.DeviceAccessToken(t.Context())
			wantPrefixOnce(t, "DeviceAccessToken", err)
		})
	}
	t.Run("CIBA", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			idp, c := cibaSetup(t)
			expired := startCIBA(t, idp, c, onesoidctest.CIBAScript{Outcome: onesoidctest.Expire})
			_, err := c.CheckCIBAStatus(t.Context(), expired.AuthReqID)
			if !errors.As(err, new(*LoginExpiredError)) {
				t.Fatalf("err = %v, want a *LoginExpiredError", err)
			}
			wantPrefixOnce(t, "expired_token", err)
			_, err = c.CheckCIBAStatus(t.Context(), expired.AuthReqID)
			if !errors.Is(err, ErrLoginFinished) {
				t.Fatalf("err = %v, want ErrLoginFinished", err)
			}
			wantPrefixOnce(t, "finished", err)

			badID := startCIBA(t, idp, c, onesoidctest.CIBAScript{IDTokenClaims: map[string]any{"iss": "http://localhost/other"}})
			_, err = c.CheckCIBAStatus(t.Context(), badID.AuthReqID)
			if !errors.As(err, new(*LoginIncompleteError)) {
				t.Fatalf("err = %v, want a *LoginIncompleteError", err)
			}
			wantPrefixOnce(t, "ID token of another issuer", err)

			pending := startCIBA(t, idp, c, onesoidctest.CIBAScript{PendingPolls: 100})
			ctx, cancel := context.WithTimeout(t.Context(), 7*time.Second)
			defer cancel()
			_, err = c.WaitForCIBA(ctx, pending)
			if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrAuthorizationPending) {
				t.Fatalf("err = %v, want the deadline and the last answer", err)
			}
			wantPrefixOnce(t, "wait past the deadline", err)

			failing := startCIBA(t, idp, c, onesoidctest.CIBAScript{})
			idp.Inject(onesoidctest.EndpointToken, onesoidctest.Fault{Status: 503, ContentType: "application/json", Body: []byte(`{"error":"server_error"}`)})
			_, err = c.WaitForCIBA(t.Context(), failing, WithMaxFailures(1))
			if !errors.As(err, new(*HTTPError)) {
				t.Fatalf("err = %v, want an *HTTPError", err)
			}
			wantPrefixOnce(t, "consecutive failures", err)
		})
	})
	t.Run("validation", func(t *testing.T) {
		t.Parallel()
		idp := onesoidctest.NewInMemory(onesoidctest.WithOpaqueAccessTokens())
		c := newTestClient(t, idp, testKey(t, "ES256"))
		idp.Inject(onesoidctest.EndpointIntrospection, onesoidctest.Fault{Status: 500, ContentType: "text/plain", Body: []byte("down")})
		_, err := c.ValidateToken(t.Context(), "opaque-token")
		if !errors.Is(err, ErrIntrospectionUnavailable) {
			t.Fatalf("err = %v", err)
		}
		wantPrefixOnce(t, "introspection unavailable", err)
		tok, err := idp.MintIDToken(testClientID, "alice", nil)
		if err != nil {
			t.Fatal(err)
		}
		idp.Inject(onesoidctest.EndpointJWKS, onesoidctest.Fault{Status: 500, ContentType: "text/plain", Body: []byte("down")})
		_, err = c.VerifyIDToken(t.Context(), tok)
		var he *HTTPError
		if !errors.As(err, &he) {
			t.Fatalf("err = %v, want a JWKS *HTTPError", err)
		}
		wantPrefixOnce(t, "JWKS unavailable", err)
	})
	t.Run("discovery cancelled between attempts", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			idp := onesoidctest.NewInMemory()
			idp.Inject(onesoidctest.EndpointDiscovery, onesoidctest.Fault{Status: 503, ContentType: "text/plain", Body: []byte("busy")})
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			_, err := Discover(ctx, idp.Issuer, WithHTTPClient(idp.HTTPClient()), WithDiscoveryAttempts(3))
			if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, new(*HTTPError)) {
				t.Fatalf("err = %v", err)
			}
			wantPrefixOnce(t, "Discover", err)
		})
	})
	t.Run("client assertion", func(t *testing.T) {
		t.Parallel()
		key := testKey(t, "ES256")
		svc := fakeSigningService(t, key, func(w http.ResponseWriter, sig []byte) { http.Error(w, "tpm busy", http.StatusServiceUnavailable) })
		signer, err := NewRemoteSigner(testDeviceID, "ES256", WithSignerURL(svc.URL+"/sign"))
		if err != nil {
			t.Fatal(err)
		}
		idp := onesoidctest.NewInMemory()
		idp.RegisterClient(testClientID, key.Public(), "ES256")
		c, err := NewClient(t.Context(), testConfig(idp), signer, WithHTTPClient(idp.HTTPClient()))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.DeviceAccessToken(t.Context())
		if !errors.As(err, new(*HTTPError)) {
			t.Fatalf("err = %v, want the signing service's *HTTPError", err)
		}
		wantPrefixOnce(t, "client assertion", err)
	})
}
