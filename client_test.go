package onesoidc

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/ones-now/onesoidc/onesoidctest"
)

func TestHF02PermanentAndTemporaryDNSFailures(t *testing.T) {
	t.Parallel()
	wrap := func(err error) *HTTPError {
		return &HTTPError{Op: "discovery", Err: classifyTransportError(&url.Error{Op: "Get", URL: "https://idp.invalid", Err: &net.OpError{Op: "dial", Err: err}})}
	}
	nx := wrap(&net.DNSError{Err: "no such host", Name: "idp.invalid", IsNotFound: true})
	if nx.Temporary() {
		t.Errorf("NXDOMAIN reported as temporary: %v", nx)
	}
	var dnsErr *net.DNSError
	if !errors.As(nx, &dnsErr) || dnsErr.Name != "idp.invalid" {
		t.Errorf("cause lost: %v", nx)
	}
	tmp := wrap(&net.DNSError{Err: "server misbehaving", Name: "idp.example", IsTemporary: true})
	if !tmp.Temporary() {
		t.Errorf("temporary DNS failure reported as permanent: %v", tmp)
	}
}

func TestRetryAfterParsing(t *testing.T) {
	t.Parallel()
	// Exercised through the HTTP path in TestDiscoverRetries; here the edge values.
	for _, tc := range []struct {
		status int
		value  string
		want   string
	}{
		{503, "20", "20s"},
		{429, "0", "0s"},
		{503, "-3", "0s"},
		{503, "soon", "0s"},
		{503, "999999", "277h46m39s"}, // reported as given: waiters cap their waits
		{503, "99999999999999999999999", maxRetryAfter.String()},
		{503, "+5", "0s"},
		{500, "20", "0s"}, // only 429 and 503 carry Retry-After for us
	} {
		got := retryAfterOf(tc.status, tc.value)
		if got.String() != tc.want {
			t.Errorf("Retry-After %q on %d = %v, want %s", tc.value, tc.status, got, tc.want)
		}
	}
}

func retryAfterOf(status int, value string) interface{ String() string } {
	resp := &http.Response{StatusCode: status, Header: http.Header{"Retry-After": {value}}}
	return retryAfter(resp, time.Now())
}

func TestDefaultTransportClosesIdleConnectionsBeforeServers(t *testing.T) {
	t.Parallel()
	o, err := buildOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	h := newHTTPCore(o)
	tr, ok := h.client.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("default transport is %T, want *http.Transport", h.client.Transport)
	}
	if tr.IdleConnTimeout <= 0 || tr.IdleConnTimeout >= 5*time.Second || h.client.Timeout != defaultRequestTimeout {
		t.Errorf("default client: transport %T idle %v, timeout %v", h.client.Transport, tr.IdleConnTimeout, h.client.Timeout)
	}
	if tr == http.DefaultTransport {
		t.Errorf("the global DefaultTransport is shared and changed")
	}
}

// TestHF09OAuthErrorBodyParsedOnAnyStatus: an RFC 6749 §5.2 JSON error body is parsed whatever
// the status; on a temporary status it stays an *HTTPError (status, Retry-After) wrapping the
// *OAuthError; HTML stays a transport error.
func TestHF09OAuthErrorBodyParsedOnAnyStatus(t *testing.T) {
	t.Parallel()
	jsonErr := func(code string) []byte { return []byte(`{"error":"` + code + `","error_description":"try later"}`) }
	cases := []struct {
		name     string
		fault    onesoidctest.Fault
		sentinel error
		wantHTTP bool
	}{
		{"503 temporarily_unavailable", onesoidctest.Fault{Status: 503, ContentType: "application/json", Body: jsonErr("temporarily_unavailable"),
			Header: http.Header{"Retry-After": {"7"}}}, (&OAuthError{Code: "temporarily_unavailable"}), true},
		{"500 server_error", onesoidctest.Fault{Status: 500, ContentType: "application/json", Body: jsonErr("server_error")}, (&OAuthError{Code: "server_error"}), true},
		{"400 invalid_client", onesoidctest.Fault{Status: 400, ContentType: "application/json", Body: jsonErr("invalid_client")}, ErrInvalidClient, false},
		{"502 HTML", onesoidctest.Fault{Status: 502, ContentType: "text/html", Body: []byte(`<html>{"error":"server_error"}</html>`)}, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			idp := onesoidctest.NewInMemory()
			c := newTestClient(t, idp, testKey(t, "ES256"))
			idp.Inject(onesoidctest.EndpointToken, tc.fault)
			_, err := c.RequestDeviceAccessToken(t.Context())
			var oe *OAuthError
			var he *HTTPError
			if tc.sentinel == nil {
				if errors.As(err, &oe) || !errors.As(err, &he) || he.StatusCode != 502 {
					t.Fatalf("err = %v, want a transport error", err)
				}
				return
			}
			if !errors.Is(err, tc.sentinel) || !errors.As(err, &oe) || oe.StatusCode != tc.fault.Status || oe.Description != "try later" {
				t.Fatalf("err = %v, want %v with status %d", err, tc.sentinel, tc.fault.Status)
			}
			if got := errors.As(err, &he); got != tc.wantHTTP {
				t.Fatalf("err = %v: *HTTPError %v, want %v", err, got, tc.wantHTTP)
			}
			if tc.wantHTTP && (he.StatusCode != tc.fault.Status || !he.Temporary()) {
				t.Errorf("HTTPError = %+v", he)
			}
			if tc.fault.Header != nil && he.RetryAfter != 7*time.Second {
				t.Errorf("RetryAfter = %v, want 7s", he.RetryAfter)
			}
		})
	}
}

// refusingTransport fails every request as a refused connection does.
type refusingTransport struct{}

func (refusingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
}

// TestTransportErrorNamesTheRequestOnce: an answer that never came is an *HTTPError that names the
// request once, without its query, and keeps the cause for errors.As (net/http's *url.Error
// would repeat the URL, query included).
func TestTransportErrorNamesTheRequestOnce(t *testing.T) {
	t.Parallel()
	o, err := buildOptions([]Option{WithHTTPClient(&http.Client{Transport: refusingTransport{}})})
	if err != nil {
		t.Fatal(err)
	}
	_, err = newHTTPCore(o).exchange(t.Context(), request{op: "QR status", method: "GET", url: "https://idp.example/auth/qr?code=s3cr3t", limit: 1 << 10})
	const want = "onesoidc: QR status https://idp.example/auth/qr: dial tcp: connect: connection refused"
	var he *HTTPError
	var oe *net.OpError
	if !errors.As(err, &he) || !errors.As(err, &oe) || err.Error() != want {
		t.Errorf("err = %v, want an *HTTPError wrapping the *net.OpError:\n%s", err, want)
	}
}
