package weblogin

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/ones-now/onesoidc"
)

// TestClassifyLoginIncompleteIsFinal: an approved login whose tokens were refused and revoked
// ends; even when the cause was the provider's keys being unavailable, the browser is not told
// to retry.
func TestClassifyLoginIncompleteIsFinal(t *testing.T) {
	t.Parallel()
	err := &onesoidc.LoginIncompleteError{Revoked: true,
		Err: &onesoidc.LoginTokenError{Reason: "id_token rejected", Err: onesoidc.ErrKeySetUnavailable}}
	if !errors.Is(err, onesoidc.ErrKeySetUnavailable) {
		t.Fatal("the test error does not wrap ErrKeySetUnavailable")
	}
	e := Classify(err)
	if e.Status != http.StatusBadGateway || e.RetryAfter != 0 || !strings.Contains(e.Description, "start a new login") {
		t.Errorf("Classify = %d %s %q (Retry-After %v), want a final 502", e.Status, e.Code, e.Description, e.RetryAfter)
	}
}
