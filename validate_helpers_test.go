package onesoidc

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	gojose "github.com/go-jose/go-jose/v4"
	"github.com/ones-now/onesoidc/onesoidctest"
)

const testSubject = "user-1"

// newValidationClient returns a client of idp for testClientID (newTestClient with an EdDSA
// device key; validation never signs).
func newValidationClient(t testing.TB, idp *onesoidctest.Server, opts ...Option) *OpenIDConnectClient {
	t.Helper()
	return newTestClient(t, idp, testKey(t, "EdDSA"), opts...)
}

// tryTestClient builds a client of idp through discovery and returns the constructor's error.
func tryTestClient(t testing.TB, idp *onesoidctest.Server, opts ...Option) (*OpenIDConnectClient, error) {
	opts = append([]Option{WithHTTPClient(idp.HTTPClient())}, opts...)
	return NewClient(t.Context(), testConfig(idp), testKey(t, "EdDSA"), opts...)
}

// mint signs an ID token for testClientID with the IdP's current key; edit changes the claims.
func mint(t testing.TB, idp *onesoidctest.Server, header map[string]any, edit func(map[string]any)) string {
	t.Helper()
	return mintWith(t, idp, idp.SigningKey(), header, edit)
}

func mintWith(t testing.TB, idp *onesoidctest.Server, key *gojose.JSONWebKey, header map[string]any, edit func(map[string]any)) string {
	t.Helper()
	claims := idp.Claims(testClientID, testSubject)
	if edit != nil {
		edit(claims)
	}
	tok, err := onesoidctest.MintWith(key, header, claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// signRaw signs exact header and payload bytes with the IdP's current key.
func signRaw(t testing.TB, idp *onesoidctest.Server, header, payload string) string {
	t.Helper()
	k := idp.SigningKey()
	tok, err := onesoidctest.SignRaw(k, k.Algorithm, []byte(header), []byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// wantReject checks that a validation failed with target and returned no result, and that the
// error does not contain the token.
func wantReject(t testing.TB, res *AuthenticationResult, err error, target error, token string) {
	t.Helper()
	if err == nil {
		t.Fatalf("token accepted (%+v), want %v", res.Entity, target)
	}
	if res != nil {
		t.Errorf("result returned with error %v", err)
	}
	if !errors.Is(err, target) {
		t.Errorf("err = %v, want %v", err, target)
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Errorf("err = %T, want *ValidationError", err)
	}
	if token != "" && len(token) > 16 {
		if strings.Contains(err.Error(), token) {
			t.Errorf("error message contains the token")
		}
		for _, seg := range strings.Split(token, ".") {
			if len(seg) > 16 && strings.Contains(err.Error(), seg) {
				t.Errorf("error message contains a token segment")
			}
		}
	}
}

// wantAccept returns a checker of a validation call that must succeed.
func wantAccept(t testing.TB) func(*AuthenticationResult, error) *AuthenticationResult {
	return func(res *AuthenticationResult, err error) *AuthenticationResult {
		t.Helper()
		if err != nil {
			t.Fatalf("token rejected: %v", err)
		}
		if res == nil || res.Entity.Subject == "" {
			t.Fatalf("no result")
		}
		return res
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func errorsIsAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// hmacKey is a symmetric key, for tokens that must be refused.
func hmacKey(kid string) *gojose.JSONWebKey {
	return &gojose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: kid, Algorithm: "HS256"}
}
