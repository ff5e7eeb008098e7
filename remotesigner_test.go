package onesoidc

import (
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
