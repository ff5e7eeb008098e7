package onesoidc

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/ones-now/onesoidc/onesoidctest"
)

const (
	testDeviceID = "7a9d0c3e-5b1f-4c2a-9e8d-1f2b3c4d5e6f"
	testClientID = "0b6c8f2a-3d4e-4f50-8a9b-c0d1e2f3a4b5"
)

// testRSAKey is generated once per test binary: RSA generation is slow.
var testRSAKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// testKey returns a fresh device key that signs with alg.
func testKey(t testing.TB, alg string) *DeviceKey {
	t.Helper()
	var (
		k    crypto.Signer
		err  error
		opts []Option
	)
	switch alg {
	case "RS256":
		k = testRSAKey()
	case "PS256":
		k, opts = testRSAKey(), []Option{WithRSAPSS()}
	case "ES256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ES512":
		k, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "EdDSA":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("no test key for %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	dk, err := NewDeviceKey(k, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if dk.Algorithm() != alg {
		t.Fatalf("key algorithm %s, want %s", dk.Algorithm(), alg)
	}
	return dk
}

func testConfig(idp *onesoidctest.Server) *DeviceConfig {
	return &DeviceConfig{ID: testDeviceID, ClientID: testClientID, Host: idp.URL, KeySecurity: "default"}
}

// newTestClient registers key with idp and returns a client that discovered it.
func newTestClient(t testing.TB, idp *onesoidctest.Server, key *DeviceKey, opts ...Option) *OpenIDConnectClient {
	t.Helper()
	idp.RegisterClient(testClientID, key.Public(), key.Algorithm())
	// The mock IdP speaks the standard CIBA shapes unless onesoidctest.WithONES: the tests of those
	// shapes pick the form encoding here, the ONES tests override it.
	opts = append([]Option{WithHTTPClient(idp.HTTPClient()), WithStandardCIBA()}, opts...)
	c, err := NewClient(t.Context(), testConfig(idp), key, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startIdP starts a loopback mock IdP, closed when the test ends.
func startIdP(t testing.TB, opts ...onesoidctest.Option) *onesoidctest.Server {
	idp := onesoidctest.NewServer(opts...)
	t.Cleanup(idp.Close)
	return idp
}

// decodeJWT returns the decoded header and claims of a compact JWS without verifying it.
func decodeJWT(t testing.TB, raw string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %d parts", len(parts))
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		data, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, dst); err != nil {
			t.Fatal(err)
		}
	}
	return header, claims
}

// logBuffer returns a debug logger writing into a buffer that is safe for concurrent use.
func logBuffer() (*slog.Logger, *syncBuffer) {
	var b syncBuffer
	return slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})), &b
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
