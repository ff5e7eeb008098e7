package onesoidc

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"
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
		{503, "999999", "1h0m0s"},
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
	if tr.IdleConnTimeout <= 0 || tr.IdleConnTimeout >= 5*time.Second || h.client.Timeout != DefaultRequestTimeout {
		t.Errorf("default client: transport %T idle %v, timeout %v", h.client.Transport, tr.IdleConnTimeout, h.client.Timeout)
	}
	if tr == http.DefaultTransport {
		t.Errorf("the global DefaultTransport is shared and changed")
	}
}
