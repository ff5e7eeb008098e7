package onesoidc

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// fakeSigningService is a px-device-identity-service stand-in that signs with key.
func fakeSigningService(t *testing.T, key *DeviceKey, answer func(w http.ResponseWriter, sig []byte)) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			DeviceID string `json:"deviceId"`
			Message  string `json:"message"`
		}
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" ||
			json.NewDecoder(r.Body).Decode(&req) != nil || req.DeviceID != testDeviceID || strings.Count(req.Message, ".") != 1 {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		sig, err := key.SignJWS(r.Context(), []byte(req.Message))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		answer(w, sig)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func jsonSignature(w http.ResponseWriter, sig []byte) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"signature": base64.RawURLEncoding.EncodeToString(sig)})
}

func TestRemoteSignerGetsDeviceToken(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"ES256", "EdDSA", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			key := testKey(t, alg)
			svc := fakeSigningService(t, key, jsonSignature)
			signer, err := NewRemoteSigner(testDeviceID, alg, WithSignerURL(svc.URL+"/sign"), WithSignerKeyID("tpm-1"))
			if err != nil {
				t.Fatal(err)
			}
			idp := startIdP(t)
			idp.RegisterClientJWK(testClientID, jose.JSONWebKey{Key: key.Public(), Algorithm: alg, KeyID: "tpm-1"})
			c, err := NewClient(t.Context(), testConfig(idp), signer, WithHTTPClient(idp.HTTPClient()))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.DeviceAccessToken(t.Context()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRemoteSignerFailures(t *testing.T) {
	t.Parallel()
	key := testKey(t, "ES256")
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	tests := []struct {
		name   string
		url    string
		answer func(w http.ResponseWriter, sig []byte)
		phrase string
	}{
		{"service down", downURL, nil, "connection refused"},
		{"500", "", func(w http.ResponseWriter, _ []byte) { http.Error(w, "tpm busy", 500) }, "HTTP 500"},
		{"bad base64", "", func(w http.ResponseWriter, _ []byte) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"signature":"***not base64***"}`))
		}, "not base64url"},
		{"DER instead of raw ECDSA", "", func(w http.ResponseWriter, sig []byte) {
			jsonSignature(w, append([]byte{0x30, 0x44}, sig...))
		}, "66 bytes, want 64"},
		{"not JSON", "", func(w http.ResponseWriter, _ []byte) { _, _ = w.Write([]byte("signed!")) }, "expected a JSON body"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := tc.url
			if u == "" {
				u = fakeSigningService(t, key, tc.answer).URL
			}
			s, err := NewRemoteSigner(testDeviceID, "ES256", WithSignerURL(u))
			if err != nil {
				t.Fatal(err)
			}
			sig, err := s.SignJWS(t.Context(), []byte("e30.e30"))
			var he *HTTPError
			if sig != nil || !errors.As(err, &he) || he.Op != "remote sign" || !strings.Contains(err.Error(), tc.phrase) {
				t.Errorf("SignJWS = %x, %v; want a remote sign HTTPError containing %q", sig, err, tc.phrase)
			}
		})
	}
}

func TestNewRemoteSignerRejectsBadConfig(t *testing.T) {
	t.Parallel()
	for name, f := range map[string]func() (*RemoteSigner, error){
		"unknown alg":     func() (*RemoteSigner, error) { return NewRemoteSigner(testDeviceID, "HS256") },
		"empty device id": func() (*RemoteSigner, error) { return NewRemoteSigner("", "ES256") },
		"remote http service": func() (*RemoteSigner, error) {
			return NewRemoteSigner(testDeviceID, "ES256", WithSignerURL("http://signer.example/sign"))
		},
	} {
		if s, err := f(); s != nil || !errors.As(err, new(*ConfigError)) {
			t.Errorf("%s: got %v, %v; want a ConfigError", name, s, err)
		}
	}
}

// TestRemoteSignerVerifiesAnswersWithTheDevicePublicKey: with the device's public key known
// (as a key or as a JWK), a signature made by another key is refused with a
// *HTTPError naming the signer and matching ErrInvalidResponse, before any use; the right key's signatures pass.
func TestRemoteSignerVerifiesAnswersWithTheDevicePublicKey(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			device, impostor := testKey(t, alg), testKey(t, alg)
			if alg == "RS256" || alg == "PS256" {
				rk, err := rsa.GenerateKey(rand.Reader, 2048)
				if err != nil {
					t.Fatal(err)
				}
				var opts []Option
				if alg == "PS256" {
					opts = append(opts, WithRSAPSS())
				}
				if impostor, err = NewDeviceKey(rk, opts...); err != nil {
					t.Fatal(err)
				}
			}
			jwk, err := (&jose.JSONWebKey{Key: device.Public(), Algorithm: alg}).MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			for name, opt := range map[string]Option{"key": WithSignerPublicKey(device.Public()), "JWK": WithSignerPublicJWK(jwk)} {
				good := fakeSigningService(t, device, jsonSignature)
				s, err := NewRemoteSigner(testDeviceID, alg, WithSignerURL(good.URL+"/sign"), opt)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if sig, err := s.SignJWS(t.Context(), []byte("a.b")); err != nil || len(sig) == 0 {
					t.Errorf("%s: own key's signature refused: %v", name, err)
				}
				bad := fakeSigningService(t, impostor, jsonSignature)
				s, err = NewRemoteSigner(testDeviceID, alg, WithSignerURL(bad.URL+"/sign"), opt)
				if err != nil {
					t.Fatal(err)
				}
				sig, err := s.SignJWS(t.Context(), []byte("a.b"))
				var he *HTTPError
				if sig != nil || !errors.As(err, &he) || he.URL != bad.URL+"/sign" || !errors.Is(err, ErrInvalidResponse) ||
					!strings.Contains(err.Error(), "does not verify") {
					t.Errorf("%s: impostor's signature: %v, %v; want an *HTTPError of %s matching ErrInvalidResponse", name, sig, err, bad.URL)
				}
			}
		})
	}
	// A key that cannot verify the algorithm is refused at construction.
	for _, tc := range []struct {
		alg string
		opt Option
	}{
		{"RS256", WithSignerPublicKey(testKey(t, "ES256").Public())},
		{"ES256", WithSignerPublicKey(testKey(t, "ES384").Public())},
		{"EdDSA", WithSignerPublicKey(testKey(t, "RS256").Public())},
		{"ES256", WithSignerPublicJWK([]byte(`{"kty":"EC","crv":"P-256","x":"1","y":"2","d":"3"}`))},
		{"ES256", WithSignerPublicJWK([]byte(`not json`))},
	} {
		if _, err := NewRemoteSigner(testDeviceID, tc.alg, tc.opt); !errors.As(err, new(*ConfigError)) {
			t.Errorf("%s: %v, want a *ConfigError", tc.alg, err)
		}
	}
}
