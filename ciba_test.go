package onesoidc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	gojose "github.com/go-jose/go-jose/v4"

	"github.com/ones-now/onesoidc/onesoidctest"
)

// notifyURL is the client notification endpoint registered at the mock IdP in ping tests.
const notifyURL = "http://localhost/ciba/notify"

// cibaSetup returns an in-memory IdP and a client of it; call it inside a synctest bubble.
func cibaSetup(t *testing.T, opts ...Option) (*onesoidctest.Server, *OpenIDConnectClient) {
	t.Helper()
	idp := onesoidctest.NewInMemory()
	return idp, newTestClient(t, idp, testKey(t, "ES256"), opts...)
}

// pingSetup is cibaSetup for a client in ping mode.
func pingSetup(t *testing.T, opts ...Option) (*onesoidctest.Server, *OpenIDConnectClient) {
	t.Helper()
	idp, c := cibaSetup(t, append([]Option{WithCIBAPing()}, opts...)...)
	idp.SetCIBANotificationEndpoint(testClientID, notifyURL)
	return idp, c
}

func aliceRequest() CIBARequest {
	return CIBARequest{Hint: LoginHint{Kind: HintLogin, Value: "alice"}, Scope: []string{"openid", "profile"}, BindingMessage: "A1B2"}
}

// since returns the offsets of ts from start.
func since(start time.Time, ts []time.Time) []time.Duration {
	out := make([]time.Duration, len(ts))
	for i, t := range ts {
		out[i] = t.Sub(start)
	}
	return out
}

func secs(ns ...int) []time.Duration {
	out := make([]time.Duration, len(ns))
	for i, n := range ns {
		out[i] = time.Duration(n) * time.Second
	}
	return out
}

// tokenRequestTimes returns when the token endpoint was called, relative to start.
func tokenRequestTimes(idp *onesoidctest.Server, start time.Time) []time.Duration {
	var ts []time.Time
	for _, r := range idp.Requests(onesoidctest.EndpointToken) {
		ts = append(ts, r.Time)
	}
	return since(start, ts)
}

// waitScripted starts a request for user with script and waits for it, returning the result,
// the acknowledgement, the start time and the error.
func waitScripted(t *testing.T, idp *onesoidctest.Server, c *OpenIDConnectClient, script onesoidctest.CIBAScript) (*LoginResult, *CIBAResponse, time.Time, error) {
	t.Helper()
	idp.ScriptCIBA("alice", script)
	start := time.Now()
	resp, err := c.MakeCIBARequest(t.Context(), aliceRequest())
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.WaitForCIBA(t.Context(), resp)
	return res, resp, start, err
}

func TestCB03DefaultIntervalIsFiveSeconds(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := cibaSetup(t)
		res, resp, start, err := waitScripted(t, idp, c, onesoidctest.CIBAScript{PendingPolls: 3})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Interval != defaultPollInterval || resp.ExpiresIn != 600*time.Second || !resp.ReceivedAt.Equal(start) {
			t.Errorf("response = %+v", resp)
		}
		if got, want := tokenRequestTimes(idp, start), secs(5, 10, 15, 20); !slices.Equal(got, want) {
			t.Errorf("polls at %v, want %v", got, want)
		}
		if res.Token.AccessToken == "" || res.IDToken == "" || res.Token.RefreshToken == "" || res.AuthReqID != resp.AuthReqID {
			t.Errorf("result = %+v", res)
		}
		if res.Scope != "openid profile" || res.Token.Extra("id_token") != res.IDToken || res.Token.Expiry.IsZero() {
			t.Errorf("scope %q, extra id_token set %v, expiry %v", res.Scope, res.Token.Extra("id_token") != nil, res.Token.Expiry)
		}
		_, claims := decodeJWT(t, res.IDToken)
		if claims["sub"] != "alice" {
			t.Errorf("ID token sub = %v", claims["sub"])
		}
	})
}

func TestCB04IntervalThirtyOneRespected(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := cibaSetup(t)
		_, resp, start, err := waitScripted(t, idp, c, onesoidctest.CIBAScript{PendingPolls: 2, Interval: 31})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Interval != 31*time.Second {
			t.Errorf("interval %v", resp.Interval)
		}
		if got, want := tokenRequestTimes(idp, start), secs(31, 62, 93); !slices.Equal(got, want) {
			t.Errorf("polls at %v, want %v", got, want)
		}
	})
}

func TestCB05SlowDownAddsFiveSeconds(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := cibaSetup(t)
		// Poll 2 and poll 4 answer slow_down; polls 1, 3 and 5 are pending; poll 6 approves.
		_, _, start, err := waitScripted(t, idp, c, onesoidctest.CIBAScript{PendingPolls: 3, SlowDownPolls: []int{2, 4}})
		if err != nil {
			t.Fatal(err)
		}
		got := tokenRequestTimes(idp, start)
		if want := secs(5, 10, 20, 30, 45, 60); !slices.Equal(got, want) {
			t.Errorf("polls at %v, want %v (gaps 5, 5, 10, 10, 15, 15)", got, want)
		}
	})
}

func TestCB06ExpiryStopsWithoutExtraRequest(t *testing.T) {
	t.Parallel()
	for _, expiresIn := range []int{30, 27} {
		t.Run(fmt.Sprintf("expires_in=%d", expiresIn), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				idp, c := cibaSetup(t)
				_, resp, start, err := waitScripted(t, idp, c, onesoidctest.CIBAScript{Outcome: onesoidctest.AwaitDecision, ExpiresIn: expiresIn})
				elapsed := time.Since(start)
				var exp *LoginExpiredError
				if !errors.Is(err, ErrLoginExpired) || !errors.As(err, &exp) || !exp.Expiry.Equal(resp.Expiry()) {
					t.Fatalf("err = %v, want a *LoginExpiredError matching ErrLoginExpired", err)
				}
				// The last pending answer comes at 25 s; with expires_in 27 the next poll (30 s)
				// would be past the expiry, so the wait ends at once.
				want := expiresIn
				if expiresIn < 30 {
					want = 25
				}
				if elapsed != time.Duration(want)*time.Second {
					t.Errorf("returned after %v, want %ds", elapsed, want)
				}
				if got, want := tokenRequestTimes(idp, start), secs(5, 10, 15, 20, 25); !slices.Equal(got, want) {
					t.Errorf("polls at %v, want %v (none at or after expiry)", got, want)
				}
				_, err = c.CheckCIBAStatus(t.Context(), resp.AuthReqID)
				if !errors.Is(err, ErrLoginExpired) || !errors.Is(err, ErrLoginFinished) {
					t.Errorf("CheckCIBAStatus after expiry: %v", err)
				}
				if n := idp.Count(onesoidctest.EndpointToken); n != 5 {
					t.Errorf("%d token requests, want 5", n)
				}
			})
		})
	}
}

func TestCB07AccessDeniedIsTypedAndFinal(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := cibaSetup(t)
		res, resp, start, err := waitScripted(t, idp, c, onesoidctest.CIBAScript{PendingPolls: 2, Outcome: onesoidctest.Deny})
		var oe *OAuthError
		if res != nil || !errors.Is(err, ErrAccessDenied) || !errors.As(err, &oe) || oe.StatusCode != 400 {
			t.Fatalf("got %v, %v; want access_denied", res, err)
		}
		if got, want := tokenRequestTimes(idp, start), secs(5, 10, 15); !slices.Equal(got, want) {
			t.Errorf("polls at %v, want %v", got, want)
		}
		// Never reused: neither a status check nor a second wait sends the auth_req_id again.
		if _, err := c.CheckCIBAStatus(t.Context(), resp.AuthReqID); !errors.Is(err, ErrAccessDenied) {
			t.Errorf("CheckCIBAStatus after denial: %v", err)
		}
		if _, err := c.WaitForCIBA(t.Context(), resp); !errors.Is(err, ErrAccessDenied) {
			t.Errorf("WaitForCIBA after denial: %v", err)
		}
		if n := idp.Count(onesoidctest.EndpointToken); n != 3 {
			t.Errorf("%d token requests, want 3", n)
		}
	})
}

func TestCB08ExpiredTokenIsTypedAndFinal(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := cibaSetup(t)
		_, _, start, err := waitScripted(t, idp, c, onesoidctest.CIBAScript{PendingPolls: 2, Outcome: onesoidctest.Expire})
		var oe *OAuthError
		if !errors.Is(err, ErrLoginExpired) || !errors.As(err, &oe) {
			t.Fatalf("err = %v, want the provider's expired_token", err)
		}
		if got, want := tokenRequestTimes(idp, start), secs(5, 10, 15); !slices.Equal(got, want) {
			t.Errorf("polls at %v, want %v", got, want)
		}
		if n := idp.Count(onesoidctest.EndpointBackchannel); n != 1 {
			t.Errorf("%d backchannel requests, want 1 (no automatic new request)", n)
		}
	})
}

func TestCB09CB10TerminalErrorsStopAtOnce(t *testing.T) {
	t.Parallel()
	for _, code := range []string{"invalid_request", "invalid_grant", "unauthorized_client", "invalid_client",
		"transaction_failed", "made_up_code"} {
		t.Run(code, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				idp, c := cibaSetup(t)
				outcome := onesoidctest.FailWithCode
				if code == "transaction_failed" {
					outcome = onesoidctest.TransactionFailed
				}
				_, resp, start, err := waitScripted(t, idp, c, onesoidctest.CIBAScript{PendingPolls: 2, Outcome: outcome, ErrorCode: code})
				var oe *OAuthError
				if !errors.As(err, &oe) || oe.Code != code || !errors.Is(err, &OAuthError{Code: code}) {
					t.Fatalf("err = %v, want %s", err, code)
				}
				if code == "transaction_failed" && !errors.Is(err, ErrTransactionFailed) {
					t.Errorf("err does not match ErrTransactionFailed")
				}
				if got, want := tokenRequestTimes(idp, start), secs(5, 10, 15); !slices.Equal(got, want) {
					t.Errorf("polls at %v, want %v", got, want)
				}
				if _, err := c.CheckCIBAStatus(t.Context(), resp.AuthReqID); !errors.Is(err, ErrLoginFinished) {
					t.Errorf("CheckCIBAStatus after %s: %v", code, err)
				}
				if n := idp.Count(onesoidctest.EndpointToken); n != 3 {
					t.Errorf("%d token requests, want 3", n)
				}
			})
		})
	}
}

func TestCB27CancelDuringIntervalWait(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	synctest.Test(t, func(t *testing.T) {
		idp, c := pingSetup(t)
		idp.ScriptCIBA("alice", onesoidctest.CIBAScript{Outcome: onesoidctest.AwaitDecision})
		resp, err := c.MakeCIBARequest(t.Context(), aliceRequest())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		start := time.Now()
		var returnedAt time.Duration
		go func() {
			_, err := c.WaitForCIBA(ctx, resp)
			returnedAt = time.Since(start)
			done <- err
		}()
		time.Sleep(7 * time.Second) // one poll at 5 s, then waiting for the one at 10 s
		cancel()
		err = <-done
		if err != context.Canceled || returnedAt != 7*time.Second {
			t.Errorf("got %v after %v, want context.Canceled after 7s", err, returnedAt)
		}
		time.Sleep(time.Minute)
		if n := idp.Count(onesoidctest.EndpointToken); n != 1 {
			t.Errorf("%d token requests, want 1 (none after cancellation)", n)
		}
		// The request stays pending until it expires: a ping is accepted but polls nothing while
		// nobody waits, and a new wait polls at once because of it.
		status, err := idp.Ping(t.Context(), onesoidctest.HandlerClient(c.CIBANotificationHandler()), resp.AuthReqID)
		if err != nil || status != http.StatusNoContent {
			t.Errorf("ping after cancellation: %d, %v; want 204", status, err)
		}
		if n := idp.Count(onesoidctest.EndpointToken); n != 1 {
			t.Errorf("%d token requests after the ping, want 1", n)
		}
		if err := idp.Decide(resp.AuthReqID, onesoidctest.Approve); err != nil {
			t.Fatal(err)
		}
		again := time.Now()
		if _, err := c.WaitForCIBA(t.Context(), resp); err != nil || time.Since(again) != 0 {
			t.Errorf("second wait: %v after %v, want tokens at once", err, time.Since(again))
		}
	})
}

func TestCB27CancelDuringInFlightPoll(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	synctest.Test(t, func(t *testing.T) {
		idp, c := cibaSetup(t)
		idp.ScriptCIBA("alice", onesoidctest.CIBAScript{Outcome: onesoidctest.AwaitDecision})
		resp, err := c.MakeCIBARequest(t.Context(), aliceRequest())
		if err != nil {
			t.Fatal(err)
		}
		idp.Inject(onesoidctest.EndpointToken, onesoidctest.Fault{Times: 1, Hang: true})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		start := time.Now()
		var returnedAt time.Duration
		go func() {
			_, err := c.WaitForCIBA(ctx, resp)
			returnedAt = time.Since(start)
			done <- err
		}()
		time.Sleep(6 * time.Second) // the poll at 5 s hangs
		synctest.Wait()
		if n := idp.Count(onesoidctest.EndpointToken); n != 1 {
			t.Fatalf("%d token requests in flight, want 1", n)
		}
		cancel()
		err = <-done
		if err != context.Canceled || returnedAt != 6*time.Second {
			t.Errorf("got %v after %v, want context.Canceled after 6s", err, returnedAt)
		}
		time.Sleep(time.Minute)
		if n := idp.Count(onesoidctest.EndpointToken); n != 1 {
			t.Errorf("%d token requests, want 1", n)
		}
	})
}

func TestCB27CancelOverLoopbackLeavesNoGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	idp := onesoidctest.NewServer()
	defer idp.Close()
	arrived := make(chan struct{})
	var once sync.Once
	base := idp.HTTPClient().Transport
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if strings.HasSuffix(r.URL.Path, "/token") {
			once.Do(func() { close(arrived) })
		}
		return base.RoundTrip(r)
	})}
	c := newTestClient(t, idp, testKey(t, "ES256"), WithCIBAPing(), WithHTTPClient(hc))
	idp.SetCIBANotificationEndpoint(testClientID, notifyURL)
	idp.ScriptCIBA("alice", onesoidctest.CIBAScript{Outcome: onesoidctest.AwaitDecision})
	resp, err := c.MakeCIBARequest(t.Context(), aliceRequest())
	if err != nil {
		t.Fatal(err)
	}
	// A ping makes the waiter poll at once (no real sleeping); the poll hangs until cancelled.
	idp.Inject(onesoidctest.EndpointToken, onesoidctest.Fault{Times: 1, Hang: true})
	if status, err := idp.Ping(t.Context(), onesoidctest.HandlerClient(c.CIBANotificationHandler()), resp.AuthReqID); status != 204 {
		t.Fatalf("ping: %d, %v", status, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := c.WaitForCIBA(ctx, resp)
		done <- err
	}()
	<-arrived
	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second): // a failure bound only; the wait ends in microseconds
		t.Fatal("WaitForCIBA did not return after cancellation")
	}
	if n := idp.Count(onesoidctest.EndpointToken); n > 1 {
		t.Errorf("%d token requests, want at most 1", n)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestCB21PingWakesWaiterForOneImmediatePoll(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := pingSetup(t)
		idp.ScriptCIBA("alice", onesoidctest.CIBAScript{Outcome: onesoidctest.AwaitDecision, Interval: 30})
		start := time.Now()
		resp, err := c.MakeCIBARequest(t.Context(), aliceRequest())
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan *LoginResult, 1)
		go func() {
			res, err := c.WaitForCIBA(t.Context(), resp)
			if err != nil {
				t.Error(err)
			}
			done <- res
		}()
		time.Sleep(2 * time.Second)
		if err := idp.Decide(resp.AuthReqID, onesoidctest.Approve); err != nil {
			t.Fatal(err)
		}
		status, err := idp.Ping(t.Context(), onesoidctest.HandlerClient(c.CIBANotificationHandler()), resp.AuthReqID)
		if err != nil || status != http.StatusNoContent {
			t.Fatalf("ping answered %d, %v; want 204", status, err)
		}
		res := <-done
		if res == nil || res.Token.AccessToken == "" {
			t.Fatalf("result = %+v", res)
		}
		if got, want := tokenRequestTimes(idp, start), secs(2); !slices.Equal(got, want) {
			t.Errorf("polls at %v, want exactly one at %v (interval ignored once pinged)", got, want)
		}
	})
}

func TestCB22DuplicatePingsCauseNoExtraPoll(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := pingSetup(t)
		idp.ScriptCIBA("alice", onesoidctest.CIBAScript{Outcome: onesoidctest.AwaitDecision})
		start := time.Now()
		resp, err := c.MakeCIBARequest(t.Context(), aliceRequest())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go func() { _, _ = c.WaitForCIBA(ctx, resp) }()
		time.Sleep(time.Second)
		hc := onesoidctest.HandlerClient(c.CIBANotificationHandler())
		for range 5 {
			if status, _ := idp.Ping(t.Context(), hc, resp.AuthReqID); status != http.StatusNoContent {
				t.Fatalf("ping answered %d", status)
			}
			synctest.Wait()
		}
		if got, want := tokenRequestTimes(idp, start), secs(1); !slices.Equal(got, want) {
			t.Errorf("polls at %v, want %v: one poll for five pings", got, want)
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if got, want := tokenRequestTimes(idp, start), secs(1, 6); !slices.Equal(got, want) {
			t.Errorf("polls at %v, want %v: back to the interval", got, want)
		}
		cancel()
	})
}

func TestCB20PingWithWrongTokenIs401(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := pingSetup(t)
		idp.ScriptCIBA("alice", onesoidctest.CIBAScript{Outcome: onesoidctest.AwaitDecision})
		resp, err := c.MakeCIBARequest(t.Context(), aliceRequest())
		if err != nil {
			t.Fatal(err)
		}
		rec, _ := idp.CIBARequest(resp.AuthReqID)
		real := rec.Params["client_notification_token"]
		h := c.CIBANotificationHandler()
		for name, auth := range map[string]string{
			"real token + 1":      "Bearer " + real + "1",
			"token of other case": "Bearer " + strings.ToUpper(real),
			"missing":             "",
			"basic scheme":        "Basic " + real,
			"empty bearer":        "Bearer ",
		} {
			w := serveNotification(h, http.MethodPost, auth, "application/json", `{"auth_req_id":"`+resp.AuthReqID+`"}`)
			if w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("%s: status %d, WWW-Authenticate %q; want 401", name, w.Code, w.Header().Get("WWW-Authenticate"))
			}
		}
		// A waiter still polls on its interval only.
		ctx, cancel := context.WithTimeout(t.Context(), 7*time.Second)
		defer cancel()
		_, _ = c.WaitForCIBA(ctx, resp)
		if n := idp.Count(onesoidctest.EndpointToken); n != 1 {
			t.Errorf("%d token requests, want 1 (the poll at 5 s)", n)
		}
	})
}

func serveNotification(h http.Handler, method, auth, ctype, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, notifyURL, strings.NewReader(body))
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestCB22PingEdgeCases(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := pingSetup(t)
		idp.ScriptCIBA("alice", onesoidctest.CIBAScript{Outcome: onesoidctest.AwaitDecision, ExpiresIn: 60})
		resp, err := c.MakeCIBARequest(t.Context(), aliceRequest())
		if err != nil {
			t.Fatal(err)
		}
		rec, _ := idp.CIBARequest(resp.AuthReqID)
		bearer := "Bearer " + rec.Params["client_notification_token"]
		body := `{"auth_req_id":"` + resp.AuthReqID + `"}`
		h := c.CIBANotificationHandler()
		tests := []struct {
			name, method, auth, ctype, body string
			want                            int
		}{
			{"GET", http.MethodGet, bearer, "application/json", "", http.StatusMethodNotAllowed},
			{"PUT", http.MethodPut, bearer, "application/json", body, http.StatusMethodNotAllowed},
			{"no Authorization", http.MethodPost, "", "application/json", body, http.StatusUnauthorized},
			{"non-JSON body", http.MethodPost, bearer, "application/json", "auth_req_id=" + resp.AuthReqID, http.StatusBadRequest},
			{"text/plain", http.MethodPost, bearer, "text/plain", body, http.StatusUnsupportedMediaType},
			{"1 MiB body", http.MethodPost, bearer, "application/json", `{"auth_req_id":"` + strings.Repeat("a", 1<<20) + `"}`, http.StatusRequestEntityTooLarge},
			{"trailing data", http.MethodPost, bearer, "application/json", body + `{}`, http.StatusBadRequest},
			{"unknown auth_req_id", http.MethodPost, bearer, "application/json", `{"auth_req_id":"foreign-id"}`, http.StatusUnauthorized},
			{"empty auth_req_id", http.MethodPost, bearer, "application/json", `{"auth_req_id":""}`, http.StatusUnauthorized},
		}
		for _, tc := range tests {
			w := serveNotification(h, tc.method, tc.auth, tc.ctype, tc.body)
			if w.Code != tc.want {
				t.Errorf("%s: status %d, want %d", tc.name, w.Code, tc.want)
			}
		}
		// Ping after local expiry: refused, nothing polled.
		time.Sleep(61 * time.Second)
		if w := serveNotification(h, http.MethodPost, bearer, "application/json", body); w.Code != http.StatusUnauthorized {
			t.Errorf("ping after expiry: status %d, want 401", w.Code)
		}
		// A valid ping is 204, never a redirect.
		resp2, err := c.MakeCIBARequest(t.Context(), aliceRequest())
		if err != nil {
			t.Fatal(err)
		}
		rec2, _ := idp.CIBARequest(resp2.AuthReqID)
		w := serveNotification(h, http.MethodPost, "bearer "+rec2.Params["client_notification_token"], "application/json; charset=utf-8",
			`{"auth_req_id":"`+resp2.AuthReqID+`","extra":1}`)
		if w.Code != http.StatusNoContent {
			t.Errorf("valid ping: status %d, want 204", w.Code)
		}
		if n := idp.Count(onesoidctest.EndpointToken); n != 0 {
			t.Errorf("%d token requests, want 0 (no waiter, no poll)", n)
		}
	})
}

func TestCB22PingForPollModeRequestRefused(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := cibaSetup(t)
		resp, err := c.MakeCIBARequest(t.Context(), aliceRequest())
		if err != nil {
			t.Fatal(err)
		}
		w := serveNotification(c.CIBANotificationHandler(), http.MethodPost, "Bearer "+strings.Repeat("x", 43), "application/json",
			`{"auth_req_id":"`+resp.AuthReqID+`"}`)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", w.Code)
		}
		if n := idp.Count(onesoidctest.EndpointToken); n != 0 {
			t.Errorf("%d token requests", n)
		}
	})
}

func TestCB23NotificationTokenEntropy(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp := onesoidctest.NewInMemory()
		logger, logs := logBuffer()
		c := newTestClient(t, idp, testKey(t, "ES256"), WithCIBAPing(), WithLogger(logger))
		idp.SetCIBANotificationEndpoint(testClientID, notifyURL)
		seen := map[string]bool{}
		for range 5 {
			resp, err := c.MakeCIBARequest(t.Context(), aliceRequest())
			if err != nil {
				t.Fatal(err)
			}
			w := serveNotification(c.CIBANotificationHandler(), http.MethodPost, "Bearer wrong", "application/json",
				`{"auth_req_id":"`+resp.AuthReqID+`"}`)
			if w.Code != http.StatusUnauthorized {
				t.Errorf("status %d", w.Code)
			}
		}
		for _, rec := range idp.CIBARequests() {
			tok := rec.Params["client_notification_token"]
			raw, err := base64.RawURLEncoding.DecodeString(tok)
			if err != nil || len(raw) < 16 || len(tok) > 1024 {
				t.Errorf("token %q: %d random bytes, %v; want >= 16 bytes (128 bits)", tok, len(raw), err)
			}
			if seen[tok] {
				t.Errorf("token reused")
			}
			seen[tok] = true
			if strings.Contains(logs.String(), tok) {
				t.Errorf("CB-23: notification token logged")
			}
		}
		if len(seen) != 5 {
			t.Errorf("%d distinct tokens, want 5", len(seen))
		}
		if !strings.Contains(logs.String(), "backchannel") {
			t.Errorf("debug log has no backchannel request; the leak check above saw nothing")
		}
	})
}

func TestCB24RequestValidatedBeforeSending(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 65)
	tests := []struct {
		name  string
		edit  func(*CIBARequest)
		field string
	}{
		{"empty hint", func(r *CIBARequest) { r.Hint.Value = "" }, "login_hint"},
		{"unknown hint kind", func(r *CIBARequest) { r.Hint.Kind = 7 }, "hint"},
		{"hint with control character", func(r *CIBARequest) { r.Hint.Value = "al\nice" }, "login_hint"},
		{"login_hint_token with space", func(r *CIBARequest) { r.Hint = LoginHint{Kind: HintLoginToken, Value: "a b"} }, "login_hint_token"},
		{"no scope", func(r *CIBARequest) { r.Scope = nil }, "scope"},
		{"scope without openid", func(r *CIBARequest) { r.Scope = []string{"profile"} }, "scope"},
		{"scope with space", func(r *CIBARequest) { r.Scope = []string{"openid", "a b"} }, "scope"},
		{"binding message 65 characters", func(r *CIBARequest) { r.BindingMessage = long }, "binding_message"},
		{"binding message with newline", func(r *CIBARequest) { r.BindingMessage = "A1\nB2" }, "binding_message"},
		{"binding message with escape", func(r *CIBARequest) { r.BindingMessage = "A1\x1b[31m" }, "binding_message"},
		{"binding message not UTF-8", func(r *CIBARequest) { r.BindingMessage = "A1\xff" }, "binding_message"},
		{"user code with control", func(r *CIBARequest) { r.UserCode = "12\x0034" }, "user_code"},
		{"negative expiry", func(r *CIBARequest) { r.RequestedExpiry = -time.Second }, "requested_expiry"},
		{"expiry over a day", func(r *CIBARequest) { r.RequestedExpiry = 25 * time.Hour }, "requested_expiry"},
		{"acr value with space", func(r *CIBARequest) { r.ACRValues = []string{"a b"} }, "acr_values"},
		{"relative resource", func(r *CIBARequest) { r.Resource = []string{"/api"} }, "resource"},
		{"resource with fragment", func(r *CIBARequest) { r.Resource = []string{"https://api.example/#x"} }, "resource"},
		{"qr session id with space", func(r *CIBARequest) { r.QRSessionID = "a b" }, "qr_session_id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				idp, c := cibaSetup(t)
				req := aliceRequest()
				tc.edit(&req)
				_, err := c.MakeCIBARequest(t.Context(), req)
				var re *RequestError
				if !errors.As(err, &re) || re.Field != tc.field {
					t.Fatalf("err = %v, want a *RequestError for %s", err, tc.field)
				}
				if n := idp.Count(onesoidctest.EndpointBackchannel); n != 0 {
					t.Errorf("%d backchannel requests, want 0", n)
				}
			})
		})
	}
}

func TestCB24BindingMessageRules(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := cibaSetup(t)
		// The default rule accepts 64 printable characters, spaces and non-ASCII included ...
		req := aliceRequest()
		req.BindingMessage = "Grüße " + strings.Repeat("x", 58)
		_, err := c.MakeCIBARequest(t.Context(), req)
		// ... which the ONES provider (like oidc-provider) refuses: a typed CIBA Core §13 error.
		if !errors.Is(err, &OAuthError{Code: "invalid_binding_message"}) {
			t.Errorf("err = %v, want the provider's invalid_binding_message", err)
		}
		strict := newTestClient(t, idp, testKey(t, "ES256"),
			WithCIBABindingMessagePattern(regexp.MustCompile(BindingMessagePatternOIDCProvider)))
		before := idp.Count(onesoidctest.EndpointBackchannel)
		for _, msg := range []string{"hello world", "A1,B2", strings.Repeat("x", 21)} {
			req.BindingMessage = msg
			if _, err := strict.MakeCIBARequest(t.Context(), req); !errors.As(err, new(*RequestError)) {
				t.Errorf("%q: err = %v, want a *RequestError", msg, err)
			}
		}
		if n := idp.Count(onesoidctest.EndpointBackchannel); n != before {
			t.Errorf("strict client sent %d requests", n-before)
		}
		req.BindingMessage = "Login-42/#A+b.c?!_"
		if _, err := strict.MakeCIBARequest(t.Context(), req); err != nil {
			t.Errorf("message matching the provider rule: %v", err)
		}
	})
}

func TestCB24ExactlyOneHintInEveryEncoding(t *testing.T) {
	t.Parallel()
	kinds := []HintKind{HintLogin, HintLoginToken, HintIDToken}
	for i, enc := range []Option{WithStandardCIBA(), WithCIBARequestObject()} {
		for _, kind := range kinds {
			t.Run(fmt.Sprintf("%d/%s", i, kind), func(t *testing.T) {
				t.Parallel()
				synctest.Test(t, func(t *testing.T) {
					idp, c := cibaSetup(t, enc)
					value := "alice"
					if kind == HintIDToken {
						value, _ = idp.MintIDToken(testClientID, "alice", nil)
					}
					req := aliceRequest()
					req.Hint = LoginHint{Kind: kind, Value: value}
					resp, err := c.MakeCIBARequest(t.Context(), req)
					if err != nil {
						t.Fatal(err)
					}
					rec, _ := idp.CIBARequest(resp.AuthReqID)
					for _, k := range kinds {
						_, ok := rec.Params[k.String()]
						if ok != (k == kind) {
							t.Errorf("%s present = %v", k, ok)
						}
					}
					if rec.Params[kind.String()] != value {
						t.Errorf("%s = %q", kind, rec.Params[kind.String()])
					}
					if _, ok := rec.Params["client_notification_token"]; ok {
						t.Errorf("client_notification_token sent in poll mode")
					}
					res, err := c.WaitForCIBA(t.Context(), resp)
					if err != nil {
						t.Fatal(err)
					}
					if _, claims := decodeJWT(t, res.IDToken); claims["sub"] != "alice" {
						t.Errorf("sub = %v", claims["sub"])
					}
				})
			})
		}
	}
}

func TestCIBAFormEncoding(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := cibaSetup(t)
		req := CIBARequest{Hint: LoginHint{Kind: HintLogin, Value: "alice"}, Scope: []string{"openid", "email"}, BindingMessage: "A1B2",
			UserCode: "1234", RequestedExpiry: 120*time.Second - time.Millisecond, ACRValues: []string{"urn:ones:acr:phone", "pwd"},
			Resource: []string{"https://api.example/", "https://other.example/"}, QRSessionID: "qr-123"}
		resp, err := c.MakeCIBARequest(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ExpiresIn != 120*time.Second || resp.Scope != "openid email" {
			t.Errorf("response = %+v", resp)
		}
		form := idp.Requests(onesoidctest.EndpointBackchannel)[0].Form
		want := url.Values{
			"login_hint": {"alice"}, "scope": {"openid email"}, "binding_message": {"A1B2"}, "user_code": {"1234"},
			"requested_expiry": {"120"}, "acr_values": {"urn:ones:acr:phone pwd"},
			"resource": {"https://api.example/", "https://other.example/"}, "qr_session_id": {"qr-123"},
			"client_id": {testClientID}, "client_assertion_type": {clientAssertionType},
		}
		for k, v := range want {
			if !slices.Equal(form[k], v) {
				t.Errorf("form %s = %q, want %q", k, form[k], v)
			}
		}
		for k := range form {
			if _, ok := want[k]; !ok && k != "client_assertion" {
				t.Errorf("unexpected form parameter %s", k)
			}
		}
	})
}

func TestCIBARequestObjectEncoding(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := pingSetup(t, WithCIBARequestObject())
		req := aliceRequest()
		req.Hint = LoginHint{Kind: HintLoginToken, Value: "lht-alice"}
		idp.ScriptCIBA("lht-alice", onesoidctest.CIBAScript{Subject: "alice"})
		req.ACRValues = []string{"phone"}
		req.Resource = []string{"https://api.example/"}
		req.RequestedExpiry = 90 * time.Second
		req.QRSessionID = "qr-1"
		resp, err := c.MakeCIBARequest(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		form := idp.Requests(onesoidctest.EndpointBackchannel)[0].Form
		for k := range form {
			if !slices.Contains([]string{"request", "client_id", "client_assertion", "client_assertion_type"}, k) {
				t.Errorf("parameter %s outside the request object", k)
			}
		}
		rec, _ := idp.CIBARequest(resp.AuthReqID)
		if rec.Encoding != "request" {
			t.Fatalf("encoding %q", rec.Encoding)
		}
		header, claims := decodeJWT(t, form.Get("request"))
		key := c.signer
		if _, hasKID := header["kid"]; header["alg"] != "ES256" || header["typ"] != "oauth-authz-req+jwt" || hasKID || key.KeyID() != "" {
			t.Errorf("header = %v", header)
		}
		now := float64(time.Now().Unix())
		if claims["iss"] != testClientID || claims["aud"] != idp.Issuer || claims["iat"] != now || claims["nbf"] != now ||
			claims["exp"] != now+300 || len(claims["jti"].(string)) < 22 {
			t.Errorf("claims = %v", claims)
		}
		if _, ok := claims["sub"]; ok {
			t.Errorf("request object has sub: it could pass for a client assertion")
		}
		for k, v := range map[string]any{"login_hint_token": "lht-alice", "scope": "openid profile", "binding_message": "A1B2",
			"acr_values": "phone", "resource": "https://api.example/", "requested_expiry": float64(90), "qr_session_id": "qr-1"} {
			if claims[k] != v {
				t.Errorf("claim %s = %v, want %v", k, claims[k], v)
			}
		}
		if tok, _ := claims["client_notification_token"].(string); len(tok) < 22 {
			t.Errorf("client_notification_token = %q", tok)
		}
		if rec.Params["binding_message"] != "A1B2" || rec.Params["requested_expiry"] != "90" {
			t.Errorf("IdP read %v", rec.Params)
		}
		_, assertion := decodeJWT(t, form.Get("client_assertion"))
		if assertion["jti"] == claims["jti"] {
			t.Errorf("request object and client assertion share a jti")
		}
	})
}

func TestDS13CIBAFailsFastOnProviderMetadata(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		edit  func(doc map[string]any)
		opts  []Option
		req   func(*CIBARequest)
		field string
	}{
		{"no backchannel endpoint", func(d map[string]any) { delete(d, "backchannel_authentication_endpoint") }, nil, nil, "backchannel_authentication_endpoint"},
		{"ping not supported", func(d map[string]any) { d["backchannel_token_delivery_modes_supported"] = []string{"poll"} }, []Option{WithCIBAPing()}, nil, "backchannel_token_delivery_modes_supported"},
		{"poll not supported", func(d map[string]any) { d["backchannel_token_delivery_modes_supported"] = []string{"ping", "push"} }, nil, nil, "backchannel_token_delivery_modes_supported"},
		{"no CIBA grant", func(d map[string]any) { d["grant_types_supported"] = []string{"client_credentials"} }, nil, nil, "grant_types_supported"},
		{"user code not supported", func(d map[string]any) { delete(d, "backchannel_user_code_parameter_supported") }, nil, func(r *CIBARequest) { r.UserCode = "1234" }, "backchannel_user_code_parameter_supported"},
		{"request object alg not supported", func(d map[string]any) {
			d["backchannel_authentication_request_signing_alg_values_supported"] = []string{"PS256"}
		}, []Option{WithCIBARequestObject()}, nil, "backchannel_authentication_request_signing_alg_values_supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				idp := onesoidctest.NewInMemory()
				idp.EditMetadata(tc.edit)
				c := newTestClient(t, idp, testKey(t, "ES256"), tc.opts...)
				req := aliceRequest()
				if tc.req != nil {
					tc.req(&req)
				}
				_, err := c.MakeCIBARequest(t.Context(), req)
				var ce *ConfigError
				if !errors.As(err, &ce) || ce.Field != tc.field {
					t.Fatalf("err = %v, want a *ConfigError for %s", err, tc.field)
				}
				if n := idp.Count(onesoidctest.EndpointBackchannel); n != 0 {
					t.Errorf("%d backchannel requests", n)
				}
			})
		})
	}
}

func TestCB25FreshAssertionAtBackchannelEndpoint(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp := onesoidctest.NewInMemory(onesoidctest.WithAudience(onesoidctest.AudienceCalledEndpoint))
		c := newTestClient(t, idp, testKey(t, "ES256"), WithAssertionAudienceEndpoint())
		_, _, _, err := waitScripted(t, idp, c, onesoidctest.CIBAScript{PendingPolls: 1})
		if err != nil {
			t.Fatal(err)
		}
		bc := idp.Requests(onesoidctest.EndpointBackchannel)
		tok := idp.Requests(onesoidctest.EndpointToken)
		if len(bc) != 1 || len(tok) != 2 {
			t.Fatalf("%d backchannel and %d token requests", len(bc), len(tok))
		}
		jtis := map[string]bool{}
		for _, r := range append(bc, tok...) {
			_, claims := decodeJWT(t, r.Form.Get("client_assertion"))
			jti := claims["jti"].(string)
			if jtis[jti] || len(jti) < 22 {
				t.Errorf("jti %q reused or short", jti)
			}
			jtis[jti] = true
		}
		if _, claims := decodeJWT(t, bc[0].Form.Get("client_assertion")); claims["aud"] != idp.URL+"/oidc/backchannel" {
			t.Errorf("backchannel assertion aud = %v", claims["aud"])
		}
	})
}

func TestCB26ConcurrentTransactionsNeverCross(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := cibaSetup(t)
		users := map[string]onesoidctest.CIBAScript{
			"alice": {PendingPolls: 3, Subject: "sub-alice"},
			"bob":   {PendingPolls: 1, Subject: "sub-bob", SlowDownPolls: []int{1}},
			"carol": {Outcome: onesoidctest.Deny},
		}
		var wg sync.WaitGroup
		results := map[string]*LoginResult{}
		errs := map[string]error{}
		ids := map[string]string{}
		var mu sync.Mutex
		for user, script := range users {
			idp.ScriptCIBA(user, script)
			wg.Go(func() {
				resp, err := c.MakeCIBARequest(t.Context(), CIBARequest{Hint: LoginHint{Kind: HintLogin, Value: user}, Scope: []string{"openid"}})
				if err != nil {
					t.Error(err)
					return
				}
				res, err := c.WaitForCIBA(t.Context(), resp)
				mu.Lock()
				defer mu.Unlock()
				results[user], errs[user], ids[user] = res, err, resp.AuthReqID
			})
		}
		wg.Wait()
		for _, user := range []string{"alice", "bob"} {
			res := results[user]
			if errs[user] != nil || res == nil {
				t.Fatalf("%s: %v", user, errs[user])
			}
			_, claims := decodeJWT(t, res.IDToken)
			if claims["sub"] != "sub-"+user || claims[cibaAuthReqClaim] != ids[user] || res.AuthReqID != ids[user] {
				t.Errorf("%s got the tokens of %v (%v)", user, claims["sub"], claims[cibaAuthReqClaim])
			}
		}
		if !errors.Is(errs["carol"], ErrAccessDenied) {
			t.Errorf("carol: %v", errs["carol"])
		}
	})
}

// flakyTransport fails the first n token-endpoint requests as a broken connection would, and
// records when each token-endpoint request came.
type flakyTransport struct {
	base  http.RoundTripper
	mu    sync.Mutex
	fails int
	times []time.Time
}

func (f *flakyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/token") {
		f.mu.Lock()
		f.times = append(f.times, time.Now())
		fail := f.fails > 0
		f.fails--
		f.mu.Unlock()
		if fail {
			return nil, errors.New("read tcp 127.0.0.1:1->127.0.0.1:2: connection reset by peer")
		}
	}
	return f.base.RoundTrip(r)
}

func TestCB28TransportFailuresBackOff(t *testing.T) {
	t.Parallel()
	html := onesoidctest.Fault{Times: 1, Status: 502, ContentType: "text/html", Body: []byte("<html>bad gateway</html>")}
	tests := []struct {
		name   string
		faults []onesoidctest.Fault
		resets int
		want   []time.Duration
	}{
		{"503 with Retry-After 20", []onesoidctest.Fault{{Times: 1, Status: 503, ContentType: "text/html",
			Header: http.Header{"Retry-After": {"20"}}}}, 0, secs(5, 25, 30)},
		{"HTML 502 doubles the interval", []onesoidctest.Fault{html}, 0, secs(5, 15, 20)},
		{"two HTML 502 in a row", []onesoidctest.Fault{html, html}, 0, secs(5, 15, 35, 40)},
		{"429 with Retry-After 2 (shorter than the backoff)", []onesoidctest.Fault{{Times: 1, Status: 429, ContentType: "application/json",
			Body: []byte(`{}`), Header: http.Header{"Retry-After": {"2"}}}}, 0, secs(5, 15, 20)},
		{"two connection resets", nil, 2, secs(5, 15, 35, 40)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				idp := onesoidctest.NewInMemory()
				ft := &flakyTransport{base: idp.HTTPClient().Transport, fails: tc.resets}
				c := newTestClient(t, idp, testKey(t, "ES256"), WithHTTPClient(&http.Client{Transport: ft}))
				for _, f := range tc.faults {
					idp.Inject(onesoidctest.EndpointToken, f)
				}
				var progress []PollProgress
				idp.ScriptCIBA("alice", onesoidctest.CIBAScript{PendingPolls: 1})
				start := time.Now()
				resp, err := c.MakeCIBARequest(t.Context(), aliceRequest())
				if err != nil {
					t.Fatal(err)
				}
				_, err = c.WaitForCIBA(t.Context(), resp, WithProgress(func(p PollProgress) { progress = append(progress, p) }))
				if err != nil {
					t.Fatal(err)
				}
				if got := since(start, ft.times); !slices.Equal(got, tc.want) {
					t.Errorf("polls at %v, want %v", got, tc.want)
				}
				if len(progress) < 2 || !errors.As(progress[1].LastErr, new(*HTTPError)) {
					t.Errorf("progress = %+v, want the failure reported", progress)
				}
			})
		})
	}
}

func TestCB28ConsecutiveFailuresCapped(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := cibaSetup(t)
		idp.Inject(onesoidctest.EndpointToken, onesoidctest.Fault{Status: 503, ContentType: "text/html"})
		start := time.Now()
		resp, err := c.MakeCIBARequest(t.Context(), aliceRequest())
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.WaitForCIBA(t.Context(), resp)
		var he *HTTPError
		if !errors.As(err, &he) || he.StatusCode != 503 {
			t.Fatalf("err = %v, want the last 503", err)
		}
		// 5 s, then waits of 10, 20, 40 and 60 (capped) seconds; the fifth failure ends the wait.
		if got, want := tokenRequestTimes(idp, start), secs(5, 15, 35, 75, 135); !slices.Equal(got, want) {
			t.Errorf("polls at %v, want %v", got, want)
		}

		// A high cap over two hours: the wait stays at 60 s and never overflows into a tight loop.
		idp.ScriptCIBA("alice", onesoidctest.CIBAScript{ExpiresIn: 7200})
		resp, _ = c.MakeCIBARequest(t.Context(), aliceRequest())
		before := idp.Count(onesoidctest.EndpointToken)
		start = time.Now()
		if _, err := c.WaitForCIBA(t.Context(), resp, WithMaxFailures(1000)); !errors.As(err, &he) || he.StatusCode != 503 {
			t.Errorf("err = %v, want the last 503", err)
		}
		// 5, 15, 35, 75, then every 60 s: 135 ... 7155; the next backoff would end at 7215 s,
		// past the expiry at 7200 s, so the wait ends with the 503 at 7155 s.
		if n := idp.Count(onesoidctest.EndpointToken) - before; n != 122 || time.Since(start) != 7155*time.Second {
			t.Errorf("%d polls in %v, want 122 in 7155s", n, time.Since(start))
		}

		// A lower cap.
		resp, _ = c.MakeCIBARequest(t.Context(), aliceRequest())
		before = idp.Count(onesoidctest.EndpointToken)
		if _, err := c.WaitForCIBA(t.Context(), resp, WithMaxFailures(2)); !errors.As(err, &he) {
			t.Errorf("err = %v", err)
		}
		if n := idp.Count(onesoidctest.EndpointToken) - before; n != 2 {
			t.Errorf("%d polls with WithMaxFailures(2)", n)
		}
	})
}

func TestCB01CB02MalformedBackchannelAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, body, reason string }{
		{"CB-01 no auth_req_id", `{"expires_in":600}`, "without auth_req_id"},
		{"CB-01 empty auth_req_id", `{"auth_req_id":"","expires_in":600}`, "without auth_req_id"},
		{"CB-02 no expires_in", `{"auth_req_id":"abcdefghijklmnopqrstuv"}`, "without expires_in"},
		{"expires_in zero", `{"auth_req_id":"abcdefghijklmnopqrstuv","expires_in":0}`, "out-of-range expires_in"},
		{"expires_in two days", `{"auth_req_id":"abcdefghijklmnopqrstuv","expires_in":172800}`, "out-of-range expires_in"},
		{"expires_in string", `{"auth_req_id":"abcdefghijklmnopqrstuv","expires_in":"600"}`, "invalid backchannel answer"},
		{"negative interval", `{"auth_req_id":"abcdefghijklmnopqrstuv","expires_in":600,"interval":-1}`, "out-of-range interval"},
		{"interval over 5 minutes", `{"auth_req_id":"abcdefghijklmnopqrstuv","expires_in":600,"interval":301}`, "out-of-range interval"},
		{"auth_req_id with control character", `{"auth_req_id":"abcdefghijklmnopqrstu\u0007v","expires_in":600}`, "malformed auth_req_id"},
		{"auth_req_id over 1024 characters", `{"auth_req_id":"` + strings.Repeat("a", 1025) + `","expires_in":600}`, "malformed auth_req_id"},
		{"null", `null`, "without auth_req_id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				idp, c := cibaSetup(t)
				idp.Inject(onesoidctest.EndpointBackchannel, onesoidctest.Fault{Status: 200, ContentType: "application/json", Body: []byte(tc.body)})
				resp, err := c.MakeCIBARequest(t.Context(), aliceRequest())
				var he *HTTPError
				if resp != nil || !errors.As(err, &he) || !strings.Contains(he.Reason, tc.reason) {
					t.Fatalf("got %v, %v; want an *HTTPError %q", resp, err, tc.reason)
				}
				time.Sleep(time.Hour)
				if n := idp.Count(onesoidctest.EndpointToken); n != 0 {
					t.Errorf("%d token requests, want none", n)
				}
			})
		})
	}
}

func TestCB11BackchannelErrorsAreTyped(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code string
		want error
	}{
		{"unknown_user_id", (&OAuthError{Code: "unknown_user_id"})},
		{"invalid_id_token_hint", (&OAuthError{Code: "invalid_id_token_hint"})},
		{"expired_id_token_hint", (&OAuthError{Code: "expired_id_token_hint"})},
		{"expired_login_hint_token", (&OAuthError{Code: "expired_login_hint_token"})},
		{"invalid_binding_message", (&OAuthError{Code: "invalid_binding_message"})},
		{"missing_user_code", (&OAuthError{Code: "missing_user_code"})},
		{"invalid_user_code", (&OAuthError{Code: "invalid_user_code"})},
	}
	for _, tc := range tests {
		t.Run(tc.code, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				idp, c := cibaSetup(t)
				idp.ScriptCIBA("alice", onesoidctest.CIBAScript{Reject: tc.code})
				_, err := c.MakeCIBARequest(t.Context(), aliceRequest())
				var oe *OAuthError
				if !errors.Is(err, tc.want) || !errors.As(err, &oe) || oe.Op != "backchannel authentication" {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				if n := idp.Count(onesoidctest.EndpointBackchannel) + idp.Count(onesoidctest.EndpointToken); n != 1 {
					t.Errorf("%d requests, want 1", n)
				}
			})
		})
	}
	t.Run("user code checked by the provider", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			idp, c := cibaSetup(t)
			idp.ScriptCIBA("alice", onesoidctest.CIBAScript{UserCode: "4711"})
			if _, err := c.MakeCIBARequest(t.Context(), aliceRequest()); !errors.Is(err, &OAuthError{Code: "missing_user_code"}) {
				t.Errorf("without user code: %v", err)
			}
			req := aliceRequest()
			req.UserCode = "1234"
			if _, err := c.MakeCIBARequest(t.Context(), req); !errors.Is(err, &OAuthError{Code: "invalid_user_code"}) {
				t.Errorf("wrong user code: %v", err)
			}
			req.UserCode = "4711"
			if _, err := c.MakeCIBARequest(t.Context(), req); err != nil {
				t.Errorf("right user code: %v", err)
			}
		})
	})
}

func TestCB12BackchannelHTTPErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		fault *onesoidctest.Fault
		check func(t *testing.T, err error)
	}{
		{"401 invalid_client", nil, func(t *testing.T, err error) {
			var oe *OAuthError
			if !errors.Is(err, ErrInvalidClient) || !errors.As(err, &oe) || oe.StatusCode != 401 {
				t.Errorf("err = %v", err)
			}
		}},
		{"403 access_denied", &onesoidctest.Fault{Status: 403, ContentType: "application/json", Body: []byte(`{"error":"access_denied"}`)}, func(t *testing.T, err error) {
			if !errors.Is(err, ErrAccessDenied) {
				t.Errorf("err = %v", err)
			}
		}},
		{"502 HTML is a transport error", &onesoidctest.Fault{Status: 502, ContentType: "text/html", Body: []byte("<html>oops</html>")}, func(t *testing.T, err error) {
			var he *HTTPError
			if !errors.As(err, &he) || he.StatusCode != 502 || errors.As(err, new(*OAuthError)) {
				t.Errorf("err = %v", err)
			}
		}},
		{"302 redirect not followed", &onesoidctest.Fault{Status: 307, Redirect: "http://localhost/elsewhere"}, func(t *testing.T, err error) {
			var he *HTTPError
			if !errors.As(err, &he) || he.StatusCode != 307 {
				t.Errorf("err = %v", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				idp, c := cibaSetup(t)
				if tc.fault != nil {
					idp.Inject(onesoidctest.EndpointBackchannel, *tc.fault)
				} else {
					idp.RegisterClient(testClientID, testKey(t, "ES256").Public(), "ES256") // another key
				}
				_, err := c.MakeCIBARequest(t.Context(), aliceRequest())
				tc.check(t, err)
				time.Sleep(time.Hour)
				if n, m := idp.Count(onesoidctest.EndpointBackchannel), idp.Count(onesoidctest.EndpointToken); n != 1 || m != 0 {
					t.Errorf("%d backchannel and %d token requests, want 1 and 0", n, m)
				}
			})
		})
	}
}

func TestCB15RedeemedAuthReqIDNeverSentAgain(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := cibaSetup(t)
		res, resp, _, err := waitScripted(t, idp, c, onesoidctest.CIBAScript{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.CheckCIBAStatus(t.Context(), resp.AuthReqID); !errors.Is(err, errRedeemed) || !errors.Is(err, ErrLoginFinished) {
			t.Errorf("CheckCIBAStatus after success: %v", err)
		}
		if _, err := c.WaitForCIBA(t.Context(), resp); !errors.Is(err, errRedeemed) {
			t.Errorf("WaitForCIBA after success: %v", err)
		}
		rec, _ := idp.CIBARequest(resp.AuthReqID)
		if rec.Polls != 1 || idp.Count(onesoidctest.EndpointToken) != 1 {
			t.Errorf("auth_req_id polled %d times", rec.Polls)
		}
		// The tokens stay valid: the provider would revoke them had the id been replayed.
		info, err := c.IntrospectToken(t.Context(), res.Token.AccessToken, "")
		if err != nil || !info.Active {
			t.Errorf("access token inactive: %+v, %v", info, err)
		}
	})
}

func TestCB15RedeemedSetIsBounded(t *testing.T) {
	t.Parallel()
	var s cibaState
	for i := range maxFinishedCIBA + 10 {
		s.finish("id-"+string(rune('a'+i%26))+strings.Repeat("x", i/26), errRedeemed)
	}
	if len(s.finished) != maxFinishedCIBA || len(s.ring) != maxFinishedCIBA {
		t.Errorf("%d remembered ids, want %d", len(s.finished), maxFinishedCIBA)
	}
	if _, err := s.before("id-a", time.Now()); err != nil {
		t.Errorf("oldest id still remembered: %v", err)
	}
}

func TestCB16NoScopeInTokenResponseMeansRequested(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := cibaSetup(t)
		res, _, _, err := waitScripted(t, idp, c, onesoidctest.CIBAScript{OmitScope: true})
		if err != nil {
			t.Fatal(err)
		}
		if res.Scope != "openid profile" || res.Token.Extra("scope") != "openid profile" {
			t.Errorf("scope %q, extra %v; want the requested scope", res.Scope, res.Token.Extra("scope"))
		}
	})
}

func TestCB18AuthReqIDClaim(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		script onesoidctest.CIBAScript
		ok     bool
	}{
		{"claim absent", onesoidctest.CIBAScript{IDTokenClaims: map[string]any{cibaAuthReqClaim: nil}}, true},
		{"claim equal", onesoidctest.CIBAScript{}, true},
		{"nonce ignored", onesoidctest.CIBAScript{IDTokenClaims: map[string]any{"nonce": "n-0S6_WzA2Mj"}}, true},
		{"aud array with client", onesoidctest.CIBAScript{IDTokenClaims: map[string]any{"aud": []string{testClientID}}}, true},
		{"claim different", onesoidctest.CIBAScript{IDTokenClaims: map[string]any{cibaAuthReqClaim: "other-request"}}, false},
		{"claim not a string", onesoidctest.CIBAScript{IDTokenClaims: map[string]any{cibaAuthReqClaim: 42}}, false},
		{"other issuer", onesoidctest.CIBAScript{IDTokenClaims: map[string]any{"iss": "https://evil.example/oidc"}}, false},
		{"other audience", onesoidctest.CIBAScript{IDTokenClaims: map[string]any{"aud": "someone-else"}}, false},
		{"no audience", onesoidctest.CIBAScript{IDTokenClaims: map[string]any{"aud": nil}}, false},
		{"no ID token", onesoidctest.CIBAScript{OmitIDToken: true}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				idp, c := cibaSetup(t)
				res, resp, _, err := waitScripted(t, idp, c, tc.script)
				if tc.ok {
					if err != nil || res == nil {
						t.Fatalf("rejected: %v", err)
					}
					return
				}
				var te *LoginTokenError
				if res != nil || !errors.As(err, &te) {
					t.Fatalf("got %v, %v; want a *LoginTokenError", res, err)
				}
				if _, err := c.CheckCIBAStatus(t.Context(), resp.AuthReqID); !errors.As(err, &te) || !errors.Is(err, ErrLoginFinished) {
					t.Errorf("CheckCIBAStatus after rejection: %v", err)
				}
				if n := idp.Count(onesoidctest.EndpointToken); n != 1 {
					t.Errorf("%d token requests, want 1", n)
				}
			})
		})
	}
}

func TestCheckCIBAStatus(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := cibaSetup(t)
		idp.ScriptCIBA("alice", onesoidctest.CIBAScript{PendingPolls: 1, SlowDownPolls: []int{2}})
		resp, err := c.MakeCIBARequest(t.Context(), aliceRequest())
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range []error{ErrAuthorizationPending, ErrSlowDown, nil} {
			time.Sleep(resp.Interval)
			res, err := c.CheckCIBAStatus(t.Context(), resp.AuthReqID)
			if !errors.Is(err, want) || (want == nil && res == nil) {
				t.Errorf("poll %d: %v, %v; want %v", i+1, res, err, want)
			}
		}
		f := idp.Requests(onesoidctest.EndpointToken)[0].Form
		if f.Get("grant_type") != "urn:openid:params:grant-type:ciba" || f.Get("auth_req_id") != resp.AuthReqID || f.Get("client_assertion") == "" {
			t.Errorf("poll form = %v", f)
		}
		for _, bad := range []string{"", "a\x00b", strings.Repeat("a", 1025)} {
			if _, err := c.CheckCIBAStatus(t.Context(), bad); !errors.As(err, new(*RequestError)) {
				t.Errorf("auth_req_id %q: %v", bad, err)
			}
		}
		if n := idp.Count(onesoidctest.EndpointToken); n != 3 {
			t.Errorf("%d token requests, want 3", n)
		}
	})
}

func TestWaitForCIBAProgressAndSingleWaiter(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := cibaSetup(t)
		idp.ScriptCIBA("alice", onesoidctest.CIBAScript{PendingPolls: 2})
		start := time.Now()
		resp, err := c.MakeCIBARequest(t.Context(), aliceRequest())
		if err != nil {
			t.Fatal(err)
		}
		var progress []PollProgress
		done := make(chan error, 1)
		go func() {
			_, err := c.WaitForCIBA(t.Context(), resp, WithProgress(func(p PollProgress) { progress = append(progress, p) }))
			done <- err
		}()
		synctest.Wait()
		if _, err := c.WaitForCIBA(t.Context(), resp); !errors.As(err, new(*RequestError)) {
			t.Errorf("second concurrent waiter: %v, want a *RequestError", err)
		}
		for _, bad := range []*CIBAResponse{nil, {AuthReqID: "x"}, {AuthReqID: "x", ExpiresIn: time.Minute}, {AuthReqID: "a b", ExpiresIn: time.Minute, ReceivedAt: start}} {
			if _, err := c.WaitForCIBA(t.Context(), bad); !errors.As(err, new(*RequestError)) {
				t.Errorf("WaitForCIBA(%+v): %v, want a *RequestError", bad, err)
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if len(progress) != 3 {
			t.Fatalf("%d progress calls, want 3", len(progress))
		}
		for i, p := range progress {
			if p.Attempt != i+1 || p.NextPoll.Sub(start) != time.Duration(5*(i+1))*time.Second || !p.Expiry.Equal(resp.Expiry()) {
				t.Errorf("progress %d = %+v", i, p)
			}
			if (i == 0) != (p.LastErr == nil) || (i > 0 && !errors.Is(p.LastErr, ErrAuthorizationPending)) {
				t.Errorf("progress %d LastErr = %v", i, p.LastErr)
			}
		}
	})
}

func TestCIBAPendingRegistryIsBounded(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := cibaSetup(t)
		c.ciba.maxPending = 2
		idp.ScriptCIBA("alice", onesoidctest.CIBAScript{ExpiresIn: 60})
		var first *CIBAResponse
		for i := range 2 {
			resp, err := c.MakeCIBARequest(t.Context(), aliceRequest())
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				first = resp
			}
		}
		// Full of requests nobody waits for (an anonymous login page, say): the oldest is forgotten.
		third, err := c.MakeCIBARequest(t.Context(), aliceRequest())
		if err != nil {
			t.Fatalf("third request: %v", err)
		}
		c.ciba.mu.Lock()
		_, known := c.ciba.pending[first.AuthReqID]
		c.ciba.mu.Unlock()
		if known {
			t.Errorf("the oldest unwaited request was kept")
		}
		// Full of requests that are waited for: a new one is refused before it is sent.
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		for _, r := range []*CIBAResponse{third} {
			wg.Go(func() { _, _ = c.WaitForCIBA(ctx, r) })
		}
		var second *CIBAResponse
		for id := range c.ciba.pending {
			if id != third.AuthReqID {
				second = &CIBAResponse{AuthReqID: id, ExpiresIn: 60 * time.Second, ReceivedAt: time.Now()}
			}
		}
		wg.Go(func() { _, _ = c.WaitForCIBA(ctx, second) })
		synctest.Wait()
		before := idp.Count(onesoidctest.EndpointBackchannel)
		if _, err := c.MakeCIBARequest(t.Context(), aliceRequest()); !errors.As(err, new(*RequestError)) {
			t.Errorf("request while all pending ones are waited for: %v, want a *RequestError", err)
		}
		if n := idp.Count(onesoidctest.EndpointBackchannel); n != before {
			t.Errorf("%d backchannel requests sent for a refused request", n-before)
		}
		cancel()
		wg.Wait()
		time.Sleep(time.Minute) // both expire: room again
		if _, err := c.MakeCIBARequest(t.Context(), aliceRequest()); err != nil {
			t.Errorf("after expiry: %v", err)
		}
	})
}

func TestHintKindString(t *testing.T) {
	t.Parallel()
	for k, want := range map[HintKind]string{HintLogin: "login_hint", HintLoginToken: "login_hint_token",
		HintIDToken: "id_token_hint", 9: "HintKind(9)"} {
		if s := k.String(); s != want {
			t.Errorf("String = %q, want %q", s, want)
		}
	}
}

// TestCIBARequestWithoutHintSaysNoLoginHint proves that the zero HintKind is no hint at all, not
// a silent login_hint: the request is refused before anything is sent, saying "no login hint".
func TestCIBARequestWithoutHintSaysNoLoginHint(t *testing.T) {
	t.Parallel()
	for name, hint := range map[string]LoginHint{"zero": {}, "value without kind": {Value: "alice"}} {
		req := CIBARequest{Hint: hint, Scope: []string{"openid"}}
		_, err := req.params(nil)
		var re *RequestError
		if !errors.As(err, &re) || re.Field != "hint" || !strings.Contains(err.Error(), "no login hint") ||
			strings.Contains(err.Error(), "login_hint:") {
			t.Errorf("%s: %v, want a *RequestError on hint saying no login hint", name, err)
		}
	}
	if s := HintKind(0).String(); s != "no login hint" {
		t.Errorf("HintKind(0).String() = %q", s)
	}
}

func TestCIBAOptionsRejectBadValues(t *testing.T) {
	t.Parallel()
	idp := startIdP(t)
	for name, opt := range map[string]Option{
		"pattern": WithCIBABindingMessagePattern(nil),
	} {
		_, err := NewClientFromMetadata(testConfig(idp), testKey(t, "ES256"), &ProviderMetadata{Issuer: idp.Issuer,
			TokenEndpoint: idp.URL + "/oidc/token", JWKSURI: idp.URL + "/oidc/jwks"}, opt)
		if !errors.As(err, new(*ConfigError)) {
			t.Errorf("%s: %v, want a *ConfigError", name, err)
		}
	}
}

func TestCIBAFlowLeaksNoSecretsToLogsOrErrors(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp := onesoidctest.NewInMemory()
		logger, logs := logBuffer()
		c := newTestClient(t, idp, testKey(t, "ES256"), WithLogger(logger), WithCIBARequestObject())
		idp.ScriptCIBA("alice", onesoidctest.CIBAScript{PendingPolls: 1})
		idp.Inject(onesoidctest.EndpointToken, onesoidctest.Fault{Times: 1, Status: 503, ContentType: "text/html"})
		resp, err := c.MakeCIBARequest(t.Context(), aliceRequest())
		if err != nil {
			t.Fatal(err)
		}
		var errs []string
		res, err := c.WaitForCIBA(t.Context(), resp, WithProgress(func(p PollProgress) {
			if p.LastErr != nil {
				errs = append(errs, p.LastErr.Error())
			}
		}))
		if err != nil {
			t.Fatal(err)
		}
		secrets := []string{res.Token.AccessToken, res.Token.RefreshToken, res.IDToken,
			idp.Requests(onesoidctest.EndpointBackchannel)[0].Form.Get("request"), "eyJ"}
		all := logs.String() + strings.Join(errs, "\n")
		if !strings.Contains(all, "503") {
			t.Fatalf("nothing logged; the check would pass vacuously: %q", all)
		}
		for _, s := range secrets {
			if strings.Contains(all, s) {
				t.Errorf("secret %.12s... leaked", s)
			}
		}
	})
}

func TestMockIdPChecksRequestObjectClaims(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := cibaSetup(t)
		now := time.Now().Unix()
		valid := func() map[string]any {
			return map[string]any{"iss": testClientID, "aud": idp.Issuer, "iat": now, "nbf": now, "exp": now + 300,
				"jti": newJTI(), "scope": "openid", "login_hint": "alice"}
		}
		sign := func(claims map[string]any, s Signer) string {
			payload, err := json.Marshal(claims)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := signCompact(t.Context(), s, encodeJWSHeader(s, requestObjectType), payload)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		send := func(form url.Values) error {
			_, err := c.postAuthenticated(t.Context(), "test", c.meta.BackchannelAuthenticationEndpoint, form, false)
			return err
		}
		other := testKey(t, "ES256")
		tests := []struct {
			name string
			edit func(map[string]any)
			key  Signer
			form url.Values
			code string // "" for accepted
		}{
			{"valid", func(map[string]any) {}, nil, nil, ""},
			{"aud array with the issuer", func(m map[string]any) { m["aud"] = []string{"x", idp.Issuer} }, nil, nil, ""},
			{"requested_expiry as string", func(m map[string]any) { m["requested_expiry"] = "60" }, nil, nil, ""},
			{"other iss", func(m map[string]any) { m["iss"] = "someone" }, nil, nil, "invalid_request_object"},
			{"aud is the token endpoint", func(m map[string]any) { m["aud"] = idp.URL + "/oidc/token" }, nil, nil, "invalid_request_object"},
			{"no aud", func(m map[string]any) { delete(m, "aud") }, nil, nil, "invalid_request_object"},
			{"no iat", func(m map[string]any) { delete(m, "iat") }, nil, nil, "invalid_request_object"},
			{"no nbf", func(m map[string]any) { delete(m, "nbf") }, nil, nil, "invalid_request_object"},
			{"no exp", func(m map[string]any) { delete(m, "exp") }, nil, nil, "invalid_request_object"},
			{"exp as string", func(m map[string]any) { m["exp"] = "9999999999" }, nil, nil, "invalid_request_object"},
			{"lifetime two hours", func(m map[string]any) { m["exp"] = now + 7200 }, nil, nil, "invalid_request_object"},
			{"expired", func(m map[string]any) { m["iat"], m["nbf"], m["exp"] = now-600, now-600, now-60 }, nil, nil, "invalid_request_object"},
			{"nbf in the future", func(m map[string]any) { m["nbf"] = now + 120 }, nil, nil, "invalid_request_object"},
			{"iat in the future", func(m map[string]any) { m["iat"] = now + 120; m["exp"] = now + 300 }, nil, nil, "invalid_request_object"},
			{"no jti", func(m map[string]any) { delete(m, "jti") }, nil, nil, "invalid_request_object"},
			{"signed by another key", func(map[string]any) {}, other, nil, "invalid_request_object"},
			{"hint outside the request object", func(map[string]any) {}, nil, url.Values{"login_hint": {"bob"}}, "invalid_request"},
			{"two hints", func(m map[string]any) { m["id_token_hint"] = "x.y.z" }, nil, nil, "invalid_request"},
			{"no hint", func(m map[string]any) { delete(m, "login_hint") }, nil, nil, "invalid_request"},
			{"scope without openid", func(m map[string]any) { m["scope"] = "profile" }, nil, nil, "invalid_request"},
			{"binding message breaking the rule", func(m map[string]any) { m["binding_message"] = "hello world" }, nil, nil, "invalid_binding_message"},
			{"requested_expiry zero", func(m map[string]any) { m["requested_expiry"] = 0 }, nil, nil, "invalid_request"},
			{"scope as number", func(m map[string]any) { m["scope"] = 7 }, nil, nil, "invalid_request_object"},
			{"notification token from a poll client", func(m map[string]any) { m["client_notification_token"] = newNotificationToken() }, nil, nil, "invalid_request"},
		}
		for _, tc := range tests {
			claims := valid()
			tc.edit(claims)
			key := tc.key
			if key == nil {
				key = c.signer
			}
			form := url.Values{"request": {sign(claims, key)}}
			for k, v := range tc.form {
				form[k] = v
			}
			err := send(form)
			if tc.code == "" {
				if err != nil {
					t.Errorf("%s: %v", tc.name, err)
				}
				continue
			}
			var oe *OAuthError
			if !errors.As(err, &oe) || oe.Code != tc.code {
				t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
			}
		}
		// A replayed request object (same jti) is refused.
		ro := sign(valid(), c.signer)
		if err := send(url.Values{"request": {ro}}); err != nil {
			t.Fatal(err)
		}
		if err := send(url.Values{"request": {ro}}); !errors.Is(err, &OAuthError{Code: "invalid_request_object"}) {
			t.Errorf("replayed request object: %v", err)
		}
	})
}

func TestCIBAQuickstartFlow(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		// The quickstart's CIBA step: a mock IdP that approves alice after two polls, a request
		// with a binding message, and a wait that prints each poll.
		idp := onesoidctest.NewInMemory()
		idp.ScriptCIBA("alice", onesoidctest.CIBAScript{PendingPolls: 2})
		c := newTestClient(t, idp, testKey(t, "EdDSA"))
		resp, err := c.MakeCIBARequest(t.Context(), CIBARequest{
			Hint:           LoginHint{Kind: HintLogin, Value: "alice"},
			Scope:          []string{"openid", "profile"},
			BindingMessage: "QUICKSTART-1",
		})
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		res, err := c.WaitForCIBA(t.Context(), resp, WithProgress(func(p PollProgress) {
			fmt.Fprintf(&out, "poll %d in %v (last: %v)\n", p.Attempt, time.Until(p.NextPoll), p.LastErr)
		}))
		if err != nil {
			t.Fatal(err)
		}
		want := "poll 1 in 5s (last: <nil>)\n" +
			"poll 2 in 5s (last: onesoidc: CIBA token: provider answered authorization_pending (HTTP 400))\n" +
			"poll 3 in 5s (last: onesoidc: CIBA token: provider answered authorization_pending (HTTP 400))\n"
		if out.String() != want {
			t.Errorf("progress output:\n%s\nwant:\n%s", out.String(), want)
		}
		if res.Scope != "openid profile" || res.Token.Valid() != true {
			t.Errorf("result = %+v", res)
		}
	})
}

func TestCB29RefreshAfterCIBAKeepsNewestRefreshToken(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := cibaSetup(t)
		res, _, _, err := waitScripted(t, idp, c, onesoidctest.CIBAScript{})
		if err != nil {
			t.Fatal(err)
		}
		idp.ScriptRefresh(onesoidctest.RefreshScript{Rotate: true})
		tok, err := c.RefreshToken(t.Context(), res.Token)
		if err != nil {
			t.Fatal(err)
		}
		if tok.RefreshToken == res.Token.RefreshToken || tok.Extra("scope") != "openid profile" {
			t.Errorf("refreshed token %+v", tok)
		}
		newest, err := c.RefreshToken(t.Context(), tok)
		if err != nil {
			t.Fatalf("refresh with the newest token: %v", err)
		}
		if _, err := c.RefreshToken(t.Context(), res.Token); !errors.Is(err, ErrInvalidGrant) {
			t.Errorf("refresh with the rotated-out token: %v", err)
		}
		// The provider's refreshed ID token must keep the subject of the CIBA ID token.
		idp.ScriptRefresh(onesoidctest.RefreshScript{IDTokenSubject: "mallory"})
		if _, err := c.RefreshToken(t.Context(), newest); err == nil || errors.Is(err, ErrInvalidGrant) {
			t.Errorf("refreshed ID token with another subject: %v, want a subject mismatch", err)
		}
	})
}

// forgedKID marks the CB-17 case whose key is made per test with the provider's kid.
var forgedKID = &gojose.JSONWebKey{}

func TestCB17IDTokenFaultsRejectTheResponse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		claims func(now time.Time) map[string]any
		key    *gojose.JSONWebKey
	}{
		{name: "signed by an unpublished key", key: onesoidctest.NewKey("RS256")},
		{name: "bad signature with the provider's kid", key: forgedKID},
		{name: "other issuer", claims: func(time.Time) map[string]any { return map[string]any{"iss": "https://evil.example/oidc"} }},
		{name: "other audience", claims: func(time.Time) map[string]any { return map[string]any{"aud": "someone-else"} }},
		{name: "secondary audience without azp", claims: func(time.Time) map[string]any { return map[string]any{"aud": []string{testClientID, "other"}} }},
		{name: "expired", claims: func(now time.Time) map[string]any { return map[string]any{"exp": now.Add(-10 * time.Minute).Unix()} }},
		{name: "missing exp", claims: func(time.Time) map[string]any { return map[string]any{"exp": nil} }},
		{name: "missing iss", claims: func(time.Time) map[string]any { return map[string]any{"iss": nil} }},
		{name: "week-old iat", claims: func(now time.Time) map[string]any { return map[string]any{"iat": now.Add(-7 * 24 * time.Hour).Unix()} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				idp, c := cibaSetup(t)
				script := onesoidctest.CIBAScript{}
				if tc.claims != nil {
					script.IDTokenClaims = tc.claims(time.Now())
				}
				if tc.key == forgedKID {
					// Another key that announces the provider's key id: the signature fails.
					k := onesoidctest.NewKey("RS256")
					k.KeyID = idp.SigningKey().KeyID
					script.IDTokenKey = k
				} else {
					script.IDTokenKey = tc.key
				}
				res, _, _, err := waitScripted(t, idp, c, script)
				var te *LoginTokenError
				if res != nil || !errors.As(err, &te) || !errors.As(err, new(*ValidationError)) {
					t.Fatalf("got %+v, %v; want a LoginTokenError wrapping a ValidationError", res, err)
				}
			})
		})
	}
}

func TestLoginResultCarriesTheValidatedIdentity(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := cibaSetup(t)
		res, _, _, err := waitScripted(t, idp, c, onesoidctest.CIBAScript{Subject: "alice-sub"})
		if err != nil {
			t.Fatal(err)
		}
		id := res.Auth
		if id == nil || id.Kind != KindIDToken || id.Entity.Subject != "alice-sub" || id.Entity.Kind != EntityUser {
			t.Fatalf("identity = %+v", id)
		}
	})
}

// TestCIBAResponseNotificationToken: in ping mode the response gives the client_notification_token
// the provider received (so that another process can check the provider's ping), and printing
// the response never shows it; in poll mode there is none.
func TestCIBAResponseNotificationToken(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := pingSetup(t)
		resp, err := c.MakeCIBARequest(t.Context(), aliceRequest())
		if err != nil {
			t.Fatal(err)
		}
		rec, _ := idp.CIBARequest(resp.AuthReqID)
		tok := resp.NotificationToken()
		if tok == "" || tok != rec.Params["client_notification_token"] {
			t.Fatalf("NotificationToken() does not match what the provider received")
		}
		for _, s := range []string{fmt.Sprintf("%v", resp), fmt.Sprintf("%+v", *resp), fmt.Sprintf("%#v", resp)} {
			if strings.Contains(s, tok) {
				t.Fatalf("printed response shows the notification token: %s", s)
			}
		}
		_, poll := cibaSetup(t)
		presp, err := poll.MakeCIBARequest(t.Context(), aliceRequest())
		if err != nil {
			t.Fatal(err)
		}
		if presp.NotificationToken() != "" {
			t.Fatal("poll mode: NotificationToken() is not empty")
		}
	})
}

// TestCB01AuthReqIDTooShortForEntropyRefused: an auth_req_id (or device_code) too short to carry
// 128 bits (fewer than minAuthReqIDLength characters) is refused in the backchannel answer itself,
// before any poll; a UUID passes.
func TestCB01AuthReqIDTooShortForEntropyRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"x", false},
		{strings.Repeat("a", minAuthReqIDLength-1), false},
		{strings.Repeat("a", minAuthReqIDLength), true},
		{"1c266114-a1be-4252-8ad1-04986c5b9ac1", true},
	} {
		t.Run(fmt.Sprint(len(tc.id)), func(t *testing.T) {
			t.Parallel()
			idp := onesoidctest.NewInMemory()
			c := newTestClient(t, idp, testKey(t, "ES256"))
			idp.Inject(onesoidctest.EndpointBackchannel, onesoidctest.Fault{Status: 200, ContentType: "application/json",
				Body: []byte(`{"auth_req_id":"` + tc.id + `","expires_in":600}`)})
			resp, err := c.MakeCIBARequest(t.Context(), aliceRequest())
			if tc.ok {
				if err != nil || resp.AuthReqID != tc.id {
					t.Fatalf("MakeCIBARequest = %v, %v", resp, err)
				}
				return
			}
			var he *HTTPError
			if resp != nil || !errors.As(err, &he) || !strings.Contains(err.Error(), "128 bits") || !errors.Is(err, ErrInvalidResponse) {
				t.Fatalf("MakeCIBARequest = %v, %v; want the short auth_req_id refused", resp, err)
			}
			if _, err := c.CheckCIBAStatus(t.Context(), tc.id); !errors.As(err, new(*RequestError)) {
				t.Errorf("CheckCIBAStatus(%q) = %v, want a *RequestError", tc.id, err)
			}
			if n := idp.Count(onesoidctest.EndpointToken); n != 0 {
				t.Errorf("%d token requests, want 0", n)
			}
		})
	}
	t.Run("ONES QR auth_req_id", func(t *testing.T) {
		t.Parallel()
		idp := onesoidctest.NewInMemory()
		c := newTestClient(t, idp, testKey(t, "ES256"))
		idp.SetDeviceID(testClientID, testDeviceID)
		idp.Inject(onesoidctest.EndpointQRStart, onesoidctest.Fault{Status: 200, ContentType: "application/json",
			Body: []byte(`{"auth_req_id":"` + strings.Repeat("q", minAuthReqIDLength-1) + `","exp":300}`)})
		if s, err := c.StartQRLogin(t.Context()); s != nil || !errors.As(err, new(*HTTPError)) || !strings.Contains(err.Error(), "128 bits") {
			t.Fatalf("StartQRLogin = %v, %v; want the short auth_req_id refused", s, err)
		}
		if _, err := c.CheckQRStatus(t.Context(), "short-id"); !errors.As(err, new(*RequestError)) {
			t.Errorf("CheckQRStatus of a short id: %v, want a *RequestError", err)
		}
	})
	t.Run("device_code", func(t *testing.T) {
		t.Parallel()
		idp := onesoidctest.NewInMemory()
		c := newTestClient(t, idp, testKey(t, "ES256"), WithDeviceAuthorizationQR())
		idp.Inject(onesoidctest.EndpointDeviceAuthorization, onesoidctest.Fault{Status: 200, ContentType: "application/json",
			Body: []byte(`{"device_code":"` + strings.Repeat("d", minAuthReqIDLength-1) + `","user_code":"ABCD","verification_uri":"` + idp.Issuer + `/device","expires_in":600}`)})
		if s, err := c.StartQRLogin(t.Context()); s != nil || !errors.As(err, new(*HTTPError)) || !strings.Contains(err.Error(), "device_code") {
			t.Fatalf("StartQRLogin = %v, %v; want the short device_code refused", s, err)
		}
	})
}
