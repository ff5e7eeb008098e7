package weblogin

import (
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ones-now/onesoidc/onesoidctest"
)

// TestProviderEchoOfTheAuthReqIDNeverReachesTheBrowser: a provider whose poll error echoes the
// auth_req_id in error_description (an unknown error code, answered to the page with the
// provider's description) must not hand the browser the polling secret, nor the log.
func TestProviderEchoOfTheAuthReqIDNeverReachesTheBrowser(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, nil)
		b := newBrowser(t)
		wantStatus(t, b.post(e.h, "/auth/ciba/start", map[string]any{"userIdentifier": "alice"}), http.StatusOK)
		id := e.idp.CIBARequests()[0].AuthReqID
		e.idp.Inject(onesoidctest.EndpointToken, onesoidctest.Fault{Times: 1, Status: 400, ContentType: "application/json",
			Body: []byte(`{"error":"invalid_request","error_description":"auth_req_id ` + id + ` is unknown"}`)})
		time.Sleep(6 * time.Second) // past the interval
		w := b.post(e.h, "/auth/ciba/status", nil)
		if w.Code == http.StatusOK || w.Code == http.StatusAccepted {
			t.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
		if strings.Contains(w.Body.String(), id) {
			t.Errorf("the browser got the auth_req_id: %s", w.Body.String())
		}
		if strings.Contains(e.logs.String(), id) {
			t.Errorf("the log holds the auth_req_id")
		}
	})
}
