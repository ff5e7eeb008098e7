package onesoidc

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/ones-now/onesoidc/onesoidctest"
)

// TestRequireTokenIgnoresTokensOutsideTheAuthorizationHeader: a valid access token in the URI
// query (?access_token=, RFC 6750 §2.3, which RFC 9700 §4.3.2 says not to use: it leaks through
// logs and Referer) or in a form body (§2.2, which a cross-site form can send) lets no request
// through; only the Authorization header counts. (Survived: pinned.)
func TestRequireTokenIgnoresTokensOutsideTheAuthorizationHeader(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	c := newValidationClient(t, idp)
	good := mint(t, idp, map[string]any{"typ": "at+jwt"}, atClaims(idp, testClientID))
	h := c.RequireToken(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("next handler called")
	}))
	form := url.Values{"access_token": {good}}.Encode()
	for name, r := range map[string]*http.Request{
		"query": httptest.NewRequest(http.MethodGet, "/api?access_token="+good, nil),
		"form":  httptest.NewRequest(http.MethodPost, "/api", strings.NewReader(form)),
	} {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") != "Bearer" || w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s: %d %v, want 401 with a bare Bearer challenge and no-store", name, w.Code, w.Header())
		}
		if strings.Contains(w.Body.String(), good[:20]) {
			t.Errorf("%s: token echoed", name)
		}
	}
}
