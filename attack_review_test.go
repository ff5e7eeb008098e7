package onesoidc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ones-now/onesoidc/onesoidctest"
)

// TestHostileProviderEchoingSecretsInErrorsIsRedacted: a provider whose RFC 6749 §5.2 error
// answer echoes what the client sent — the bearer token under introspection, the auth_req_id of a
// CIBA poll, the client assertion — must not get it into the error the caller logs.
func TestHostileProviderEchoingSecretsInErrorsIsRedacted(t *testing.T) {
	t.Parallel()
	echo := func(secret string) []byte {
		return []byte(`{"error":"invalid_request","error_description":"bad value ` + secret + ` given","error_uri":"https://idp.example/e?v=` + secret + `"}`)
	}
	t.Run("introspected token", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c, idp := opaqueClient(t)
			tok, err := c.DeviceAccessToken(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			idp.Inject(onesoidctest.EndpointIntrospection, onesoidctest.Fault{Times: 1, Status: 400, ContentType: "application/json",
				Body: echo(tok.AccessToken)})
			_, err = c.ValidateToken(t.Context(), tok.AccessToken)
			wantNoSecret(t, err, tok.AccessToken)
		})
	})
	t.Run("auth_req_id", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			idp, c := cibaSetup(t)
			ack, err := c.MakeCIBARequest(t.Context(), aliceRequest())
			if err != nil {
				t.Fatal(err)
			}
			idp.Inject(onesoidctest.EndpointToken, onesoidctest.Fault{Times: 1, Status: 400, ContentType: "application/json",
				Body: echo(ack.AuthReqID)})
			_, err = c.CheckCIBAStatus(t.Context(), ack.AuthReqID)
			wantNoSecret(t, err, ack.AuthReqID)
		})
	})
}

// wantNoSecret checks that a call failed with an error, and an *OAuthError if any, that does not
// hold secret.
func wantNoSecret(t *testing.T, err error, secret string) {
	t.Helper()
	if err == nil {
		t.Fatal("accepted")
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error holds the secret: %v", err)
	}
	var oe *OAuthError
	if errors.As(err, &oe) && (strings.Contains(oe.Description, secret) || strings.Contains(oe.URI, secret)) {
		t.Errorf("OAuthError holds the secret: %+v", oe)
	}
}

// TestHostileProviderEchoingTheAssertionIsRedacted: a token endpoint that echoes the request's
// client assertion in its error text, or redirects to a URL holding it, does not get it into the
// error.
func TestHostileProviderEchoingTheAssertionIsRedacted(t *testing.T) {
	t.Parallel()
	const assertion = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJkZXZpY2UifQ.c2lnbmF0dXJlLWJ5dGVzLW9mLXRoZS1hc3NlcnRpb24"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		a := r.PostForm.Get("client_assertion")
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "https://elsewhere.example/"+a+"?x="+a, http.StatusTemporaryRedirect)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = fmt.Fprintf(w, `{"error":"invalid_client","error_description":"assertion %s refused","error_uri":"https://idp.example/?a=%s"}`,
			a, url.QueryEscape(a+"+"))
	}))
	t.Cleanup(srv.Close)
	o, err := buildOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	h := newHTTPCore(o)
	form := url.Values{"client_assertion": {assertion}, "client_assertion_type": {clientAssertionType}}
	for _, path := range []string{"/token", "/redirect"} {
		_, err := h.exchange(t.Context(), request{op: "token", method: http.MethodPost, url: srv.URL + path, form: form, limit: maxTokenBody})
		if err == nil {
			t.Fatalf("%s: accepted", path)
		}
		for _, part := range strings.Split(assertion, ".") {
			if strings.Contains(err.Error(), part) {
				t.Errorf("%s: error holds the assertion: %v", path, err)
			}
		}
		if !strings.Contains(err.Error(), redacted) {
			t.Errorf("%s: error %q does not say what was redacted", path, err)
		}
	}
}

// dripTransport answers every request 200 with JSON headers and a body that trickles one byte a
// second (testing/synctest's clock) until the request's context ends.
type dripTransport struct{}

func (dripTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		r.Body.Close()
	}
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: &dripBody{ctx: r.Context()}, Request: r}, nil
}

type dripBody struct{ ctx context.Context }

func (b *dripBody) Read(p []byte) (int, error) {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-b.ctx.Done():
		return 0, b.ctx.Err()
	case <-t.C:
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = ' '
	return 1, nil
}

func (b *dripBody) Close() error { return nil }

// TestHF04SlowDripBodyEndsAtTheRequestTimeout: a provider that sends its headers at once and
// then one byte a second never holds a request past the request timeout (WithRequestTimeout,
// default 10 s), for the token, JWKS and introspection endpoints; the error is an *HTTPError
// that names the operation and says it was reading the body.
func TestHF04SlowDripBodyEndsAtTheRequestTimeout(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const host = "https://idp.example"
		meta := &ProviderMetadata{Issuer: host + "/oidc", TokenEndpoint: host + "/oidc/token", JWKSURI: host + "/oidc/jwks",
			IntrospectionEndpoint: host + "/oidc/token/introspection"}
		c, err := NewClientFromMetadata(&DeviceConfig{ID: testDeviceID, ClientID: testClientID, Host: host}, testKey(t, "ES256"), meta,
			WithHTTPClient(&http.Client{Transport: dripTransport{}}), WithRequestTimeout(3*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for name, call := range map[string]func() error{
			"device token": func() error { _, err := c.RequestDeviceAccessToken(t.Context()); return err },
			"jwks":         func() error { return c.RefreshKeys(t.Context()) },
			"introspection": func() error {
				_, err := c.IntrospectToken(t.Context(), "opaque-token", "")
				return err
			},
		} {
			start := time.Now()
			err := call()
			var he *HTTPError
			if !errors.As(err, &he) || he.Op != name || !strings.Contains(err.Error(), "reading body") || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s: %v, want an *HTTPError of %s reading the body past its deadline", name, err, name)
			}
			if d := time.Since(start); d != 3*time.Second {
				t.Errorf("%s: gave up after %v, want the 3s request timeout", name, d)
			}
		}
	})
}

// TestHF19EchoedSecretsAreRedactedWhateverTheirDisguise: a provider's error text that echoes a
// secret of the request broken up by control characters (which sanitizing drops, joining the
// secret again), or echoes the client_notification_token or the user_code of a CIBA request,
// does not get it into the error; a short user_code does not break the error code apart, so
// errors.Is still finds it.
func TestHF19EchoedSecretsAreRedactedWhateverTheirDisguise(t *testing.T) {
	t.Parallel()
	const (
		refresh = "rt-5f0c9a77e2d94b1c8a3e6d2f"
		notify  = "cnt-8b1e4f2a9c7d3e6f5a0b1c2d"
		code    = "in"
	)
	for _, tc := range []struct {
		name, body string
		form       url.Values
		secrets    []string
		want       error
	}{
		{"refresh token split by a control character", `{"error":"invalid_grant","error_description":"token rt-5f0c9a77e2d9\u00014b1c8a3e6d2f revoked"}`,
			url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, []string{refresh}, ErrInvalidGrant},
		{"refresh token split in the error code", `{"error":"invalid_grant rt-5f0c9a77e2d9\u001f4b1c8a3e6d2f"}`,
			url.Values{"refresh_token": {refresh}}, []string{refresh}, nil},
		{"notification token", `{"error":"invalid_request","error_description":"client_notification_token cnt-8b1e4f2a9c7d3e6f5a0b1c2d is too weak","error_uri":"https://idp.example/?t=cnt-8b1e4f2a9c7d3e6f5a0b1c2d"}`,
			url.Values{"client_notification_token": {notify}, "login_hint": {"alice"}}, []string{notify}, nil},
		{"short user code", `{"error":"invalid_grant","error_description":"user_code in refused"}`,
			url.Values{"user_code": {code}}, nil, ErrInvalidGrant},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, tc.body)
			}))
			t.Cleanup(srv.Close)
			o, err := buildOptions(nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = newHTTPCore(o).exchange(t.Context(), request{op: "token", method: http.MethodPost, url: srv.URL, form: tc.form, limit: maxTokenBody})
			var oe *OAuthError
			if !errors.As(err, &oe) {
				t.Fatalf("error %v, want an *OAuthError", err)
			}
			for _, s := range tc.secrets {
				for _, out := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err), oe.Code, oe.Description, oe.URI} {
					if strings.Contains(out, s) {
						t.Errorf("%q holds the secret", out)
					}
				}
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.want)
			}
		})
	}
}

// TestHF19QRStatusEchoSplitByAControlCharacterIsRedacted: an ONES QR status that echoes the
// device access token of the status request, broken up by a control character that sanitizing
// drops, does not get the token, or its start, into the *QRStatusError.
func TestHF19QRStatusEchoSplitByAControlCharacterIsRedacted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp, c, s := onesQRSession(t, onesoidctest.QRScript{PendingPolls: 5})
		tok, err := c.DeviceAccessToken(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		at := tok.AccessToken
		idp.Inject(onesoidctest.EndpointQRStatus, onesoidctest.Fault{Times: 1, Status: http.StatusOK, ContentType: "application/json",
			Body: []byte(`{"status":"` + at[:len(at)/2] + `\u0001` + at[len(at)/2:] + `","deviceId":"` + testDeviceID + `"}`)})
		_, err = c.CheckQRStatus(t.Context(), s.ID())
		var se *QRStatusError
		if !errors.As(err, &se) {
			t.Fatalf("err = %v, want a *QRStatusError", err)
		}
		for _, part := range []string{at[:24], at[len(at)/2-12 : len(at)/2+12]} {
			if strings.Contains(err.Error(), part) || strings.Contains(se.Status, part) {
				t.Fatalf("the error holds part of the device access token: %v", err)
			}
		}
	})
}
