package onesoidc

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ones-now/onesoidc/onesoidctest"
)

func TestDiscover(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewServer()
	t.Cleanup(idp.Close)
	meta, err := Discover(t.Context(), idp.Issuer, WithHTTPClient(idp.HTTPClient()))
	if err != nil {
		t.Fatal(err)
	}
	if meta.Issuer != idp.Issuer || meta.TokenEndpoint != idp.URL+"/oidc/token" || meta.JWKSURI != idp.URL+"/oidc/jwks" {
		t.Errorf("metadata = %+v", meta)
	}
	if !bytes.Contains(meta.Raw, []byte(`"scopes_supported"`)) {
		t.Errorf("Raw does not hold the document: %s", meta.Raw)
	}
	reqs := idp.Requests(onesoidctest.EndpointDiscovery)
	if len(reqs) != 1 || reqs[0].Method != http.MethodGet {
		t.Fatalf("requests = %+v", reqs)
	}
	if ua := reqs[0].Header.Get("User-Agent"); ua != "onesoidc/"+Version {
		t.Errorf("User-Agent = %q", ua)
	}
}

func TestDS09DiscoverKeepsCIBAAndDeviceFieldsAndIgnoresUnknownMembers(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewServer()
	t.Cleanup(idp.Close)
	idp.EditMetadata(func(doc map[string]any) {
		doc["backchannel_authentication_endpoint"] = idp.URL + "/oidc/backchannel"
		doc["backchannel_token_delivery_modes_supported"] = []string{"poll", "ping"}
		doc["backchannel_user_code_parameter_supported"] = true
		doc["backchannel_authentication_request_signing_alg_values_supported"] = []string{"ES256"}
		doc["device_authorization_endpoint"] = idp.URL + "/oidc/device/auth"
		doc["introspection_endpoint"] = idp.URL + "/oidc/token/introspection"
		doc["revocation_endpoint"] = idp.URL + "/oidc/token/revocation"
		doc["mtls_endpoint_aliases"] = map[string]any{"token_endpoint": "https://mtls.example/token"} // DS-09: ignored
		doc["x_vendor_extension"] = []any{1, "two", map[string]any{}}
	})
	meta, err := Discover(t.Context(), idp.Issuer, WithHTTPClient(idp.HTTPClient()))
	if err != nil {
		t.Fatal(err)
	}
	if meta.BackchannelAuthenticationEndpoint == "" || len(meta.BackchannelTokenDeliveryModesSupported) != 2 ||
		!meta.BackchannelUserCodeParameterSupported || meta.BackchannelAuthenticationRequestSigningAlgValuesSupported[0] != "ES256" ||
		meta.DeviceAuthorizationEndpoint == "" || meta.IntrospectionEndpoint == "" || meta.RevocationEndpoint == "" {
		t.Errorf("metadata lost fields: %+v", meta)
	}
}

// TestDiscoverRejects covers documents and answers that must fail without retrying.
func TestDiscoverRejects(t *testing.T) {
	t.Parallel()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(make([]byte, 20<<20))
	_ = zw.Close()

	tests := []struct {
		name  string
		setup func(idp *onesoidctest.Server)
		check func(t *testing.T, err error)
	}{
		{
			name: "issuer mismatch trailing slash",
			setup: func(idp *onesoidctest.Server) {
				idp.EditMetadata(func(d map[string]any) { d["issuer"] = idp.Issuer + "/" })
			},
			check: wantConfigErrorOn("issuer", "expected exactly"),
		},
		{
			name: "DS-01 issuer of another host",
			setup: func(idp *onesoidctest.Server) {
				idp.EditMetadata(func(d map[string]any) { d["issuer"] = "https://evil.example/oidc" })
			},
			check: wantConfigErrorOn("issuer", "evil.example"),
		},
		{
			name: "DS-06 missing jwks_uri",
			setup: func(idp *onesoidctest.Server) {
				idp.EditMetadata(func(d map[string]any) { delete(d, "jwks_uri") })
			},
			check: wantConfigErrorOn("jwks_uri", "missing"),
		},
		{
			name: "DS-05 endpoint on plain http to a remote host",
			setup: func(idp *onesoidctest.Server) {
				idp.EditMetadata(func(d map[string]any) { d["token_endpoint"] = "http://idp.example/token" })
			},
			check: wantConfigErrorOn("token_endpoint", "must use https"),
		},
		{
			name: "DS-10 HF-06 HTML with status 200",
			setup: func(idp *onesoidctest.Server) {
				idp.Inject(onesoidctest.EndpointDiscovery, onesoidctest.Fault{Status: 200, ContentType: "text/html", Body: []byte("<html>login</html>")})
			},
			check: wantHTTPError(200, "expected a JSON body"),
		},
		{
			name: "DS-12 HF-14 20 MiB body",
			setup: func(idp *onesoidctest.Server) {
				idp.Inject(onesoidctest.EndpointDiscovery, onesoidctest.Fault{Status: 200, ContentType: "application/json", Body: bytes.Repeat([]byte(" "), 20<<20)})
			},
			check: func(t *testing.T, err error) {
				wantHTTPError(200, "body over")(t, err)
				if !errors.Is(err, errResponseTooLarge) {
					t.Errorf("err = %v, want errResponseTooLarge", err)
				}
			},
		},
		{
			name: "DS-12 HF-14 gzip bomb",
			setup: func(idp *onesoidctest.Server) {
				idp.Inject(onesoidctest.EndpointDiscovery, onesoidctest.Fault{Status: 200, ContentType: "application/json",
					Header: http.Header{"Content-Encoding": {"gzip"}}, Body: gz.Bytes()})
			},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, errResponseTooLarge) {
					t.Errorf("err = %v, want errResponseTooLarge", err)
				}
			},
		},
		{
			name: "HF-07 truncated JSON",
			setup: func(idp *onesoidctest.Server) {
				idp.Inject(onesoidctest.EndpointDiscovery, onesoidctest.Fault{Status: 200, ContentType: "application/json", Body: []byte(`{"issuer":"http://127.0.0.1`)})
			},
			check: wantHTTPError(200, "invalid provider metadata"),
		},
		{
			name: "DS-07 issuer of the wrong type",
			setup: func(idp *onesoidctest.Server) {
				idp.EditMetadata(func(d map[string]any) { d["issuer"] = 1 })
			},
			check: wantHTTPError(200, "invalid provider metadata"),
		},
		{
			name: "DS-07 jwks_uri as an array",
			setup: func(idp *onesoidctest.Server) {
				idp.EditMetadata(func(d map[string]any) { d["jwks_uri"] = []string{idp.URL + "/oidc/jwks"} })
			},
			check: wantHTTPError(200, "invalid provider metadata"),
		},
		{
			name: "DS-10 top-level array",
			setup: func(idp *onesoidctest.Server) {
				idp.Inject(onesoidctest.EndpointDiscovery, onesoidctest.Fault{Status: 200, ContentType: "application/json", Body: []byte(`[{"issuer":"x"}]`)})
			},
			check: wantHTTPError(200, "invalid provider metadata"),
		},
		{
			name: "DS-10 JSON null body",
			setup: func(idp *onesoidctest.Server) {
				idp.Inject(onesoidctest.EndpointDiscovery, onesoidctest.Fault{Status: 200, ContentType: "application/json", Body: []byte(`null`)})
			},
			check: wantConfigErrorOn("issuer", "expected exactly"),
		},
		{
			name: "DS-11 404 is not retried",
			setup: func(idp *onesoidctest.Server) {
				idp.Inject(onesoidctest.EndpointDiscovery, onesoidctest.Fault{Status: 404, ContentType: "text/plain", Body: []byte("not found")})
			},
			check: wantHTTPError(404, "unexpected status"),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			idp := onesoidctest.NewServer()
			t.Cleanup(idp.Close)
			tc.setup(idp)
			meta, err := Discover(t.Context(), idp.Issuer, WithHTTPClient(idp.HTTPClient()))
			if meta != nil || err == nil {
				t.Fatalf("Discover = %+v, %v; want an error", meta, err)
			}
			tc.check(t, err)
			if n := idp.Count(onesoidctest.EndpointDiscovery); n != 1 {
				t.Errorf("%d discovery requests, want 1 (no retry)", n)
			}
		})
	}
}

func TestDS04DiscoverRefusesInsecureIssuer(t *testing.T) {
	t.Parallel()
	for _, issuer := range []string{"http://idp.example/oidc", "ftp://idp.example/oidc", "/oidc", "https://idp.example/oidc?x=1", "https://user@idp.example/oidc"} {
		_, err := Discover(t.Context(), issuer, WithHTTPClient(&http.Client{Transport: failTransport{t}}))
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != "issuer" {
			t.Errorf("Discover(%q) = %v, want a ConfigError on issuer", issuer, err)
		}
	}
}

// failTransport fails the test if a request is made.
type failTransport struct{ t *testing.T }

func (f failTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.t.Errorf("unexpected request to %s", r.URL)
	return nil, errors.New("no request expected")
}

func TestDS11HF12DiscoverRedirectToOtherHostNotFollowed(t *testing.T) {
	t.Parallel()
	var otherHits int
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { otherHits++ }))
	t.Cleanup(other.Close)
	idp := onesoidctest.NewServer()
	t.Cleanup(idp.Close)
	idp.Inject(onesoidctest.EndpointDiscovery, onesoidctest.Fault{Redirect: other.URL + "/oidc/.well-known/openid-configuration?secret=1"})
	_, err := Discover(t.Context(), idp.Issuer, WithHTTPClient(idp.HTTPClient()))
	wantHTTPError(302, "not followed")(t, err)
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error leaks the redirect query: %v", err)
	}
	if otherHits != 0 {
		t.Errorf("redirect was followed")
	}
}

func TestDiscoverRedirectOnSameHostFollowed(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewServer()
	t.Cleanup(idp.Close)
	idp.Inject(onesoidctest.EndpointDiscovery, onesoidctest.Fault{Times: 1, Redirect: idp.Issuer + "/.well-known/openid-configuration"})
	if _, err := Discover(t.Context(), idp.Issuer, WithHTTPClient(idp.HTTPClient())); err != nil {
		t.Fatal(err)
	}
	if n := idp.Count(onesoidctest.EndpointDiscovery); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

// TestDiscoverRetries runs in a synctest bubble against the in-memory IdP, so that the backoff
// waits take no real time and their lengths can be measured exactly.
func TestDiscoverRetries(t *testing.T) {
	t.Parallel()
	t.Run("503 then success", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			idp := onesoidctest.NewInMemory()
			idp.Inject(onesoidctest.EndpointDiscovery, onesoidctest.Fault{Times: 2, Status: 503, ContentType: "text/html", Body: []byte("<h1>busy</h1>")})
			start := time.Now()
			if _, err := Discover(t.Context(), idp.Issuer, WithHTTPClient(idp.HTTPClient())); err != nil {
				t.Fatal(err)
			}
			reqs := idp.Requests(onesoidctest.EndpointDiscovery)
			if len(reqs) != 3 {
				t.Fatalf("%d requests, want 3", len(reqs))
			}
			// Backoff: [250ms, 500ms] then [500ms, 1s].
			if g := reqs[1].Time.Sub(start); g < 250*time.Millisecond || g > 500*time.Millisecond {
				t.Errorf("first retry after %v", g)
			}
			if g := reqs[2].Time.Sub(reqs[1].Time); g < 500*time.Millisecond || g > time.Second {
				t.Errorf("second retry after %v", g)
			}
		})
	})
	t.Run("Retry-After honoured", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			idp := onesoidctest.NewInMemory()
			idp.Inject(onesoidctest.EndpointDiscovery, onesoidctest.Fault{Times: 1, Status: 503, Header: http.Header{"Retry-After": {"20"}}})
			if _, err := Discover(t.Context(), idp.Issuer, WithHTTPClient(idp.HTTPClient())); err != nil {
				t.Fatal(err)
			}
			reqs := idp.Requests(onesoidctest.EndpointDiscovery)
			if len(reqs) != 2 || reqs[1].Time.Sub(reqs[0].Time) != 20*time.Second {
				t.Errorf("requests %+v, want a retry after exactly 20s", reqs)
			}
		})
	})
	t.Run("attempts are bounded", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			idp := onesoidctest.NewInMemory()
			idp.Inject(onesoidctest.EndpointDiscovery, onesoidctest.Fault{Status: 502, ContentType: "text/html"})
			_, err := Discover(t.Context(), idp.Issuer, WithHTTPClient(idp.HTTPClient()), WithDiscoveryAttempts(3))
			wantHTTPError(502, "after 3 attempts: unexpected status")(t, err)
			if n := idp.Count(onesoidctest.EndpointDiscovery); n != 3 {
				t.Errorf("%d requests, want 3", n)
			}
		})
	})
	t.Run("an unreachable provider: the error says how often it was tried", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			_, err := Discover(t.Context(), "http://localhost/oidc", WithHTTPClient(&http.Client{Transport: refusingTransport{}}),
				WithDiscoveryAttempts(2))
			const want = "onesoidc: discovery http://localhost/oidc/.well-known/openid-configuration: after 2 attempts: dial tcp: connect: connection refused"
			var he *HTTPError
			if !errors.As(err, &he) || !he.Temporary() || err.Error() != want {
				t.Errorf("err = %v, want a temporary *HTTPError:\n%s", err, want)
			}
		})
	})
	t.Run("context cancelled mid-retry", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			idp := onesoidctest.NewInMemory()
			idp.Inject(onesoidctest.EndpointDiscovery, onesoidctest.Fault{Status: 503, Header: http.Header{"Retry-After": {"25"}}})
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(3*time.Second, cancel)
			start := time.Now()
			_, err := Discover(ctx, idp.Issuer, WithHTTPClient(idp.HTTPClient()))
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if d := time.Since(start); d != 3*time.Second {
				t.Errorf("returned after %v, want 3s", d)
			}
			if n := idp.Count(onesoidctest.EndpointDiscovery); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	})
}

func TestDiscoverHF01ConnectionRefusedIsTemporary(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := Discover(t.Context(), url+"/oidc", WithDiscoveryAttempts(1))
	var he *HTTPError
	if !errors.As(err, &he) || he.StatusCode != 0 || !he.Temporary() {
		t.Fatalf("err = %#v, want a temporary HTTPError without status", err)
	}
}

func TestDiscoverHF13BadCertificateIsPermanent(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	// The default client does not trust the test server's certificate.
	_, err := Discover(t.Context(), srv.URL+"/oidc", WithDiscoveryAttempts(5))
	var he *HTTPError
	if !errors.As(err, &he) || he.Temporary() || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("err = %v, want a permanent certificate error", err)
	}
}

func TestDiscoverHF03HangingServerTimesOut(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp := onesoidctest.NewInMemory()
		idp.Inject(onesoidctest.EndpointDiscovery, onesoidctest.Fault{Hang: true})
		start := time.Now()
		_, err := Discover(t.Context(), idp.Issuer, WithHTTPClient(idp.HTTPClient()), WithDiscoveryAttempts(1),
			WithRequestTimeout(2*time.Second))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want a deadline error", err)
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("gave up after %v, want 2s", d)
		}
	})
}

func TestOptionsRejectBadValues(t *testing.T) {
	t.Parallel()
	for name, opt := range map[string]Option{
		"leeway over 5 minutes": WithLeeway(6 * time.Minute),
		"negative leeway":       WithLeeway(-time.Second),
		"zero timeout":          WithRequestTimeout(0),
		"nil http client":       WithHTTPClient(nil),
		"nil logger":            WithLogger(nil),
		"zero attempts":         WithDiscoveryAttempts(0),
		"no introspection":      WithMaxIntrospections(0),
		"10001 introspections":  WithMaxIntrospections(10_001),
		"KF-11 InsecureSkipVerify": WithHTTPClient(&http.Client{Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}),
		"KF-11 TLS 1.0": WithHTTPClient(&http.Client{Transport: &http.Transport{
			TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS10}}}),
	} {
		_, err := Discover(t.Context(), "https://idp.example/oidc", opt, WithHTTPClient(&http.Client{Transport: failTransport{t}}))
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%s: err = %v, want a ConfigError", name, err)
		}
	}
}

func wantConfigErrorOn(field, phrase string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != field || !strings.Contains(err.Error(), phrase) {
			t.Errorf("err = %v, want a ConfigError on %s containing %q", err, field, phrase)
		}
	}
}

func wantHTTPError(status int, phrase string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var he *HTTPError
		if !errors.As(err, &he) || he.StatusCode != status || !strings.Contains(err.Error(), phrase) {
			t.Errorf("err = %v, want an HTTPError %d containing %q", err, status, phrase)
		}
	}
}

// TestDS03TrailingSlashIssuer: the well-known URL has no "//", and the document's issuer must
// still match the configured one exactly.
func TestDS03TrailingSlashIssuer(t *testing.T) {
	t.Parallel()
	idp := startIdP(t)
	_, err := Discover(t.Context(), idp.Issuer+"/", WithHTTPClient(idp.HTTPClient()))
	wantConfigErrorOn("issuer", "expected exactly")(t, err)
	if n := idp.Count(onesoidctest.EndpointDiscovery); n != 1 {
		t.Errorf("%d requests reached the discovery endpoint, want 1 (no // in the path)", n)
	}
}

// TestDS14ProviderWithoutPrivateKeyJWTFailsFast: a provider that lists its client
// authentication methods or assertion algorithms without ours is refused at construction.
func TestDS14ProviderWithoutPrivateKeyJWTFailsFast(t *testing.T) {
	t.Parallel()
	for name, edit := range map[string]func(map[string]any){
		"no private_key_jwt": func(d map[string]any) { d["token_endpoint_auth_methods_supported"] = []string{"client_secret_basic"} },
		"no EdDSA assertions": func(d map[string]any) {
			d["token_endpoint_auth_signing_alg_values_supported"] = []string{"RS256", "ES256"}
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			idp := startIdP(t)
			idp.EditMetadata(edit)
			c, err := tryTestClient(t, idp)
			if c != nil || !errors.As(err, new(*ConfigError)) {
				t.Fatalf("NewClient = %v, %v; want a ConfigError", c, err)
			}
			if n := idp.Count(onesoidctest.EndpointToken); n != 0 {
				t.Errorf("%d token requests", n)
			}
		})
	}
}

// TestDS16JWKSOnAnotherHost: a jwks_uri on another https host (a CDN) is accepted.
func TestDS16JWKSOnAnotherHost(t *testing.T) {
	t.Parallel()
	cfg := &DeviceConfig{ID: testDeviceID, ClientID: testClientID, Host: "https://identity.ones-now.com"}
	meta := &ProviderMetadata{Issuer: cfg.IssuerURL(), TokenEndpoint: cfg.IssuerURL() + "/token", JWKSURI: "https://cdn.example/ones/jwks.json"}
	if _, err := NewClientFromMetadata(cfg, testKey(t, "EdDSA"), meta); err != nil {
		t.Errorf("jwks_uri on a CDN: %v", err)
	}
	meta.JWKSURI = "http://cdn.example/ones/jwks.json"
	if _, err := NewClientFromMetadata(cfg, testKey(t, "EdDSA"), meta); !errors.As(err, new(*ConfigError)) {
		t.Errorf("jwks_uri on plain http: %v, want a ConfigError", err)
	}
}
