package onesoidc

import (
	"errors"
	"net/http"
	"testing"
	"testing/synctest"

	"github.com/ones-now/onesoidc/onesoidctest"
)

// TestCB26BackchannelAnswerReusingAnAuthReqIDIsRefused: a provider that answers a new
// backchannel request with the auth_req_id of a request this client already holds (pending for
// another user, or finished) is refused with an *HTTPError, as a ONES QR start answer is: taking
// it would poll one request for two logins, so that one user's tokens could reach the other's
// login (and the first request's ping token was replaced). The first request is untouched.
func TestCB26BackchannelAnswerReusingAnAuthReqIDIsRefused(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := cibaSetup(t)
		alice, err := c.MakeCIBARequest(t.Context(), aliceRequest())
		if err != nil {
			t.Fatal(err)
		}
		reuse := func() error {
			idp.Inject(onesoidctest.EndpointBackchannel, onesoidctest.Fault{Times: 1, Status: 200, ContentType: "application/json",
				Body: []byte(`{"auth_req_id":"` + alice.AuthReqID + `","expires_in":300,"interval":5}`)})
			bob := CIBARequest{Hint: LoginHint{Kind: HintLogin, Value: "bob"}, Scope: []string{"openid"}, BindingMessage: "B0B1"}
			res, err := c.MakeCIBARequest(t.Context(), bob)
			var he *HTTPError
			if res != nil || !errors.As(err, &he) || he.StatusCode != http.StatusOK {
				t.Errorf("reused auth_req_id: %v, %v; want an *HTTPError", res, err)
			}
			return err
		}
		reuse() // while alice's request is pending
		res, err := c.WaitForCIBA(t.Context(), alice)
		if err != nil || res.Auth.Entity.Subject != "alice" {
			t.Fatalf("alice's own login: %v, %v", res, err)
		}
		reuse() // once it has ended
		if n := idp.Count(onesoidctest.EndpointBackchannel); n != 3 {
			t.Errorf("%d backchannel requests, want 3", n)
		}
	})
}
