package onesoidc

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ones-now/onesoidc/internal/mockidp"
)

// waitFlow is one of the login flows that share the wait of pollUntil: CIBA, ONES QR login and
// RFC 8628 QR login.
type waitFlow struct {
	setup func(t *testing.T) (*mockidp.IdP, *OpenIDConnectClient)
	// polled is the endpoint the wait polls.
	polled string
	// run starts a login scripted by script (pending until decided, expires_in) and waits for it
	// with ctx, returning the error and when the login began.
	run func(t *testing.T, ctx context.Context, idp *mockidp.IdP, c *OpenIDConnectClient, script mockidp.CIBAScript) (time.Time, error)
}

func waitForQR(t *testing.T, ctx context.Context, c *OpenIDConnectClient) (time.Time, error) {
	start := time.Now()
	s, err := c.StartQRLogin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.WaitForQRLogin(ctx, s)
	return start, err
}

var waitFlows = map[string]waitFlow{
	"CIBA": {setup: func(t *testing.T) (*mockidp.IdP, *OpenIDConnectClient) { return cibaSetup(t) }, polled: mockidp.EndpointToken,
		run: func(t *testing.T, ctx context.Context, idp *mockidp.IdP, c *OpenIDConnectClient, script mockidp.CIBAScript) (time.Time, error) {
			idp.ScriptCIBA("alice", script)
			start := time.Now()
			resp, err := c.MakeCIBARequest(t.Context(), aliceRequest())
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.WaitForCIBA(ctx, resp)
			return start, err
		}},
	"RFC 8628 QR login": {setup: func(t *testing.T) (*mockidp.IdP, *OpenIDConnectClient) { return deviceFlowSetup(t) }, polled: mockidp.EndpointToken,
		run: func(t *testing.T, ctx context.Context, idp *mockidp.IdP, c *OpenIDConnectClient, script mockidp.CIBAScript) (time.Time, error) {
			idp.ScriptDeviceFlow(script)
			return waitForQR(t, ctx, c)
		}},
	"ONES QR login": {setup: func(t *testing.T) (*mockidp.IdP, *OpenIDConnectClient) { return onesQRSetup(t) }, polled: mockidp.EndpointQRStatus,
		run: func(t *testing.T, ctx context.Context, idp *mockidp.IdP, c *OpenIDConnectClient, script mockidp.CIBAScript) (time.Time, error) {
			idp.ScriptQR(mockidp.QRScript{PendingPolls: script.PendingPolls, Outcome: script.Outcome, ExpiresIn: script.ExpiresIn})
			return waitForQR(t, ctx, c)
		}},
}

// pollTimes returns when the flow's polled endpoint was called, relative to start.
func (f waitFlow) pollTimes(idp *mockidp.IdP, start time.Time) []time.Duration {
	var ts []time.Time
	for _, r := range idp.Requests(f.polled) {
		ts = append(ts, r.Time)
	}
	return since(start, ts)
}

// inEachFlow runs body as a parallel subtest per login flow, in a synctest bubble with a fresh
// in-memory IdP and client.
func inEachFlow(t *testing.T, prefix string, body func(t *testing.T, idp *mockidp.IdP, c *OpenIDConnectClient, flow waitFlow)) {
	for name, flow := range waitFlows {
		t.Run(name+prefix, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				idp, c := flow.setup(t)
				body(t, idp, c, flow)
			})
		})
	}
}

// TestCB28RetryAfterPastExpiryEndsWaitWithThe503 proves the shared wait rule: a Retry-After
// (seconds, HTTP-date or absurd) that lands past the request's expiry or the context deadline
// ends the wait at once with the *HTTPError, its status and the Retry-After the server gave.
func TestCB28RetryAfterPastExpiryEndsWaitWithThe503(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		retryAfter  func(now time.Time) string
		want        time.Duration
		ctxDeadline time.Duration // 0: none
	}{
		{"120 s past a 60 s expiry", func(time.Time) string { return "120" }, 120 * time.Second, 0},
		{"HTTP-date past the expiry", func(now time.Time) string { return now.Add(200 * time.Second).UTC().Format(http.TimeFormat) }, 200 * time.Second, 0},
		{"999999 s", func(time.Time) string { return "999999" }, 999999 * time.Second, 0},
		{"120 s past the context deadline", func(time.Time) string { return "120" }, 120 * time.Second, 30 * time.Second},
	}
	for flowName, flow := range waitFlows {
		for _, tc := range cases {
			t.Run(flowName+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				synctest.Test(t, func(t *testing.T) {
					idp, c := flow.setup(t)
					expiresIn := 60
					if tc.ctxDeadline > 0 {
						expiresIn = 600
					}
					// The 503 answers the first poll, at 5 s.
					idp.Inject(flow.polled, mockidp.Fault{Times: 1, Status: 503, ContentType: "text/html",
						Header: http.Header{"Retry-After": {tc.retryAfter(time.Now().Add(5 * time.Second))}}})
					ctx := t.Context()
					if tc.ctxDeadline > 0 {
						var cancel context.CancelFunc
						ctx, cancel = context.WithTimeout(ctx, tc.ctxDeadline)
						defer cancel()
					}
					start, err := flow.run(t, ctx, idp, c, mockidp.CIBAScript{Outcome: mockidp.CIBAManual, ExpiresIn: expiresIn})
					var he *HTTPError
					if !errors.As(err, &he) || he.StatusCode != 503 || he.RetryAfter != tc.want {
						t.Fatalf("err = %v (%+v), want the 503 with Retry-After %v", err, he, tc.want)
					}
					if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrLoginExpired) {
						t.Errorf("err = %v, want the 503, not a deadline or expiry", err)
					}
					if elapsed := time.Since(start); elapsed != 5*time.Second {
						t.Errorf("wait ended after %v, want 5s (at once after the 503)", elapsed)
					}
					if n := idp.Count(flow.polled); n != 1 {
						t.Errorf("%d polls, want 1", n)
					}
				})
			})
		}
	}
}

// TestCB28RetryAfterBeforeExpiryIsHonoured: a Retry-After that ends before the expiry delays the
// next poll by that much, and a wait keeps going.
func TestCB28RetryAfterBeforeExpiryIsHonoured(t *testing.T) {
	t.Parallel()
	inEachFlow(t, "", func(t *testing.T, idp *mockidp.IdP, c *OpenIDConnectClient, flow waitFlow) {
		idp.Inject(flow.polled, mockidp.Fault{Times: 1, Status: 503, ContentType: "text/html",
			Header: http.Header{"Retry-After": {"120"}}})
		start, err := flow.run(t, t.Context(), idp, c, mockidp.CIBAScript{PendingPolls: 0, ExpiresIn: 600})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := flow.pollTimes(idp, start), secs(5, 125); !slices.Equal(got, want) {
			t.Errorf("polls at %v, want %v", got, want)
		}
	})
}

// TestCB03IntervalPastContextDeadlineEndsWaitAtOnce: when the next poll (interval after a
// pending answer) would come after the context deadline, the wait ends at once with an error
// matching context.DeadlineExceeded and the last answer.
func TestCB03IntervalPastContextDeadlineEndsWaitAtOnce(t *testing.T) {
	t.Parallel()
	inEachFlow(t, "", func(t *testing.T, idp *mockidp.IdP, c *OpenIDConnectClient, flow waitFlow) {
		ctx, cancel := context.WithTimeout(t.Context(), 7*time.Second)
		defer cancel()
		start, err := flow.run(t, ctx, idp, c, mockidp.CIBAScript{Outcome: mockidp.CIBAManual})
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrAuthorizationPending) {
			t.Fatalf("err = %v, want the deadline and the pending answer", err)
		}
		if elapsed := time.Since(start); elapsed != 5*time.Second {
			t.Errorf("wait ended after %v, want 5s", elapsed)
		}
	})
}

// TestCB08ExpiryIsOneErrorTypeWhoeverNoticed: the provider's expired_token and the local clock's
// expiry are the same *LoginExpiredError, in every flow; the provider's *OAuthError (or the ONES QR
// *QRStatusError "expired") stays reachable.
func TestCB08ExpiryIsOneErrorTypeWhoeverNoticed(t *testing.T) {
	t.Parallel()
	inEachFlow(t, "/provider", func(t *testing.T, idp *mockidp.IdP, c *OpenIDConnectClient, flow waitFlow) {
		_, err := flow.run(t, t.Context(), idp, c, mockidp.CIBAScript{PendingPolls: 1, Outcome: mockidp.CIBAExpire})
		var exp *LoginExpiredError
		var oe *OAuthError
		var qe *QRStatusError
		provider := (errors.As(err, &oe) && oe.StatusCode == 400) || (errors.As(err, &qe) && qe.Status == "expired")
		if !errors.Is(err, ErrLoginExpired) || !errors.As(err, &exp) || !provider {
			t.Fatalf("err = %v, want an *LoginExpiredError wrapping the provider's expired_token", err)
		}
		if exp.Err == nil || exp.Expiry.IsZero() {
			t.Errorf("LoginExpiredError = %+v", exp)
		}
	})
	inEachFlow(t, "/local clock", func(t *testing.T, idp *mockidp.IdP, c *OpenIDConnectClient, flow waitFlow) {
		_, err := flow.run(t, t.Context(), idp, c, mockidp.CIBAScript{Outcome: mockidp.CIBAManual, ExpiresIn: 20})
		var exp *LoginExpiredError
		if !errors.Is(err, ErrLoginExpired) || !errors.As(err, &exp) || exp.Err != nil || errors.As(err, new(*OAuthError)) || errors.As(err, new(*QRStatusError)) {
			t.Fatalf("err = %v, want a local *LoginExpiredError", err)
		}
	})
	// CheckCIBAStatus gives the same type.
	synctest.Test(t, func(t *testing.T) {
		idp, c := cibaSetup(t)
		idp.ScriptCIBA("alice", mockidp.CIBAScript{Outcome: mockidp.CIBAExpire})
		resp, err := c.MakeCIBARequest(t.Context(), aliceRequest())
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second)
		_, err = c.CheckCIBAStatus(t.Context(), resp.AuthReqID)
		if !errors.As(err, new(*LoginExpiredError)) || !errors.Is(err, ErrLoginExpired) {
			t.Errorf("CheckCIBAStatus: %v, want an *LoginExpiredError", err)
		}
	})
}
