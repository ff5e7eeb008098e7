package onesoidc

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ones-now/onesoidc/onesoidctest"
)

func TestRequireToken(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	c := newValidationClient(t, idp)
	at := map[string]any{"typ": "at+jwt"}
	good := mint(t, idp, at, func(m map[string]any) {
		atClaims(idp, testClientID)(m)
		m["sub"], m["preferred_username"] = testSubject, "alice"
	})
	expired := mint(t, idp, at, func(m map[string]any) {
		atClaims(idp, testClientID)(m)
		m["exp"] = time.Now().Add(-time.Hour).Unix()
	})
	var seen *AuthenticationResult
	h := c.RequireToken(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, ok := AuthenticationFromContext(r.Context())
		if !ok {
			t.Error("no result in the context")
		}
		seen = res
		_, _ = io.WriteString(w, "hello "+res.Entity.Username)
	}))
	tests := []struct {
		name      string
		header    []string
		status    int
		challenge string
	}{
		{"no header", nil, 401, "Bearer"},
		{"other scheme", []string{"Basic dXNlcjpwYXNz"}, 401, "Bearer"},
		{"bad signature", []string{"Bearer " + flip(good, 3)}, 401, `Bearer error="invalid_token", error_description="the token signature is not valid"`},
		{"expired", []string{"Bearer " + expired}, 401, `Bearer error="invalid_token", error_description="the token expired"`},
		{"garbage", []string{"Bearer a.b.c"}, 401, `Bearer error="invalid_token", error_description="the token is not valid"`},
		{"unknown opaque token", []string{"Bearer abc"}, 401, `Bearer error="invalid_token", error_description="the token is not active"`},
		{"ID token", []string{"Bearer " + mint(t, idp, nil, nil)}, 401, `Bearer error="invalid_token", error_description="the token is not an access token"`},
		{"empty token", []string{"Bearer "}, 400, `Bearer error="invalid_request", error_description="malformed Authorization header"`},
		{"two tokens", []string{"Bearer " + good + " " + good}, 400, `Bearer error="invalid_request", error_description="malformed Authorization header"`},
		{"two headers", []string{"Bearer " + good, "Bearer " + good}, 400, `Bearer error="invalid_request", error_description="malformed Authorization header"`},
		{"valid", []string{"Bearer " + good}, 200, ""},
		{"valid, lower-case scheme", []string{"bearer " + good}, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seen = nil
			req := httptest.NewRequest("GET", "/api", nil)
			for _, v := range tc.header {
				req.Header.Add("Authorization", v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tc.challenge)
			}
			body := rec.Body.String()
			if tc.status == 200 {
				if body != "hello alice" || seen == nil || seen.Entity.Subject != testSubject {
					t.Errorf("body %q, result %+v", body, seen)
				}
				return
			}
			if seen != nil {
				t.Error("next handler called")
			}
			for _, v := range tc.header {
				if tok := strings.TrimPrefix(v, "Bearer "); len(tok) > 8 && (strings.Contains(body, tok) || strings.Contains(rec.Header().Get("WWW-Authenticate"), tok)) {
					t.Error("token echoed")
				}
			}
		})
	}
	if _, ok := AuthenticationFromContext(context.Background()); ok {
		t.Error("result in an empty context")
	}
}

func TestRequireTokenProviderDown(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	idp.Inject(onesoidctest.EndpointJWKS, onesoidctest.Fault{Status: 502, ContentType: "text/html"})
	c := newValidationClient(t, idp)
	called := false
	h := c.RequireToken(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer "+mint(t, idp, map[string]any{"typ": "at+jwt"}, atClaims(idp, testClientID)))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || called {
		t.Errorf("status %d, called %v; want 503 without calling next", rec.Code, called)
	}
}

// TestRequireTokenExpectAudienceRefusesIDTokens: with ExpectAudience, RequireToken accepts JWT
// access tokens for that audience only; a plain ID token, whose aud is the client id, is refused
// (RFC 8725 §3.11, RFC 9068 §4). Options of both kinds answer 500.
func TestRequireTokenExpectAudienceRefusesIDTokens(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	c := newValidationClient(t, idp)
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	serve := serveBearer
	id := mint(t, idp, nil, nil)
	at := mint(t, idp, map[string]any{"typ": "at+jwt"}, atClaims(idp, testClientID))
	for _, aud := range []string{"https://api.example", testClientID} {
		h := c.RequireToken(next, ExpectAudience(aud))
		if rec := serve(h, id); rec.Code != http.StatusUnauthorized {
			t.Errorf("ExpectAudience(%q): ID token answered %d, want 401", aud, rec.Code)
		}
	}
	if rec := serve(c.RequireToken(next, ExpectAudience(testClientID)), at); rec.Code != http.StatusOK {
		t.Errorf("access token answered %d, want 200", rec.Code)
	}
	if rec := serve(c.RequireToken(next, InsecureAcceptIDTokens()), id); rec.Code != http.StatusOK {
		t.Errorf("InsecureAcceptIDTokens: ID token answered %d, want 200", rec.Code)
	}
	if rec := serve(c.RequireToken(next, ExpectAudience(testClientID), ExpectNonce("n")), at); rec.Code != http.StatusInternalServerError {
		t.Errorf("conflicting options answered %d, want 500", rec.Code)
	}
}

// TestExpectAudienceEmptyIsAUsageError: ExpectAudience("") (an unset setting) is a *ConfigError
// naming the option, and RequireToken answers 500 with it, instead of quietly expecting the
// client id.
func TestExpectAudienceEmptyIsAUsageError(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	c := newValidationClient(t, idp)
	at := mint(t, idp, map[string]any{"typ": "at+jwt"}, atClaims(idp, testClientID))
	for name, call := range map[string]func() (*AuthenticationResult, error){
		"ValidateToken":     func() (*AuthenticationResult, error) { return c.ValidateToken(t.Context(), at, ExpectAudience("")) },
		"VerifyAccessToken": func() (*AuthenticationResult, error) { return c.VerifyAccessToken(t.Context(), at, ExpectAudience("")) },
		"opaque token": func() (*AuthenticationResult, error) {
			return c.ValidateToken(t.Context(), "opaque", ExpectAudience(""))
		},
	} {
		res, err := call()
		var ce *ConfigError
		if res != nil || !errors.As(err, &ce) || ce.Field != "ExpectAudience" {
			t.Errorf("%s: %v, %v; want a *ConfigError naming ExpectAudience", name, res, err)
		}
	}
	wantAccept(t)(c.VerifyAccessToken(t.Context(), at, ExpectAudience(""), ExpectAudience(testClientID)))
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	if rec := serveBearer(c.RequireToken(next, ExpectAudience("")), at); rec.Code != http.StatusInternalServerError {
		t.Errorf("RequireToken(ExpectAudience(\"\")) answered %d, want 500", rec.Code)
	}
}
