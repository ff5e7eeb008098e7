package onesoidc

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/ones-now/onesoidc/onesoidctest"
)

// deviceFlowSetup is cibaSetup for a client whose QR login speaks RFC 8628.
func deviceFlowSetup(t *testing.T, opts ...Option) (*onesoidctest.Server, *OpenIDConnectClient) {
	t.Helper()
	return cibaSetup(t, append([]Option{WithDeviceAuthorizationQR()}, opts...)...)
}

func TestQR05QRLoginApprovedShowsTheUserCode(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := deviceFlowSetup(t)
		idp.ScriptDeviceFlow(onesoidctest.CIBAScript{PendingPolls: 2, Subject: "bob"})
		start := time.Now()
		s, err := c.StartQRLogin(t.Context(), "profile")
		if err != nil {
			t.Fatal(err)
		}
		if s.Scope != "openid profile" || s.UserCode != "WDJB-MJHT" || s.Interval != defaultPollInterval ||
			s.QR.URL() != idp.Issuer+"/device?user_code=WDJB-MJHT" || !s.Expiry().Equal(start.Add(600*time.Second)) {
			t.Errorf("session = %+v", s)
		}
		res, err := c.WaitForQRLogin(t.Context(), s)
		if err != nil {
			t.Fatal(err)
		}
		if res.IDToken == "" || res.Token.AccessToken == "" || res.Scope != "openid profile" {
			t.Errorf("result = %+v", res)
		}
		recs := idp.CIBARequests()
		if len(recs) != 1 || recs[0].Polls != 3 {
			t.Fatalf("records = %+v", recs)
		}
		for i, want := range []time.Duration{5 * time.Second, 10 * time.Second, 15 * time.Second} {
			if got := recs[0].PollTimes[i].Sub(start); got != want {
				t.Errorf("poll %d at %v, want %v", i+1, got, want)
			}
		}
		f := idp.Requests(onesoidctest.EndpointToken)[0].Form
		if f.Get("grant_type") != "urn:ietf:params:oauth:grant-type:device_code" || f.Get("client_assertion") == "" {
			t.Errorf("poll form = %v", f)
		}
	})
}

func TestQR03SlowDownAndTerminalErrors(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := deviceFlowSetup(t)
		idp.ScriptDeviceFlow(onesoidctest.CIBAScript{PendingPolls: 1, SlowDownPolls: []int{1}, Outcome: onesoidctest.Deny})
		s, err := c.StartQRLogin(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.WaitForQRLogin(t.Context(), s)
		if !errors.Is(err, ErrAccessDenied) {
			t.Fatalf("err = %v, want access_denied", err)
		}
		times := idp.CIBARequests()[0].PollTimes
		if len(times) != 3 || times[1].Sub(times[0]) != 10*time.Second || times[2].Sub(times[1]) != 10*time.Second {
			t.Errorf("poll times %v, want gaps of 10s after slow_down", times)
		}
	})
}

// qrFlow adapts the QR login tests that hold for both protocols to one of them.
type qrFlow struct {
	name string
	// setup returns an in-memory IdP and a client speaking the protocol (in a synctest bubble).
	setup func(t *testing.T) (*onesoidctest.Server, *OpenIDConnectClient)
	// script makes the sessions that follow stay pending until decide; expiresIn > 0 sets their
	// lifetime in seconds.
	script func(idp *onesoidctest.Server, expiresIn int)
	// decide approves the session s.
	decide func(idp *onesoidctest.Server, s *QRSession) error
	// polls counts the polls of the first session.
	polls func(idp *onesoidctest.Server) int
}

var qrFlows = []qrFlow{
	{
		name:  "ONES",
		setup: func(t *testing.T) (*onesoidctest.Server, *OpenIDConnectClient) { return onesQRSetup(t) },
		script: func(idp *onesoidctest.Server, exp int) {
			idp.ScriptQR(onesoidctest.QRScript{Outcome: onesoidctest.AwaitDecision, ExpiresIn: exp})
		},
		decide: func(idp *onesoidctest.Server, s *QRSession) error { return idp.DecideQR(s.ID(), onesoidctest.Approve) },
		polls:  func(idp *onesoidctest.Server) int { return idp.QRSessions()[0].Polls },
	},
	{
		name:  "RFC 8628",
		setup: func(t *testing.T) (*onesoidctest.Server, *OpenIDConnectClient) { return deviceFlowSetup(t) },
		script: func(idp *onesoidctest.Server, exp int) {
			idp.ScriptDeviceFlow(onesoidctest.CIBAScript{Outcome: onesoidctest.AwaitDecision, ExpiresIn: exp})
		},
		decide: func(idp *onesoidctest.Server, _ *QRSession) error {
			return idp.Decide(idp.CIBARequests()[0].AuthReqID, onesoidctest.Approve)
		},
		polls: func(idp *onesoidctest.Server) int { return idp.CIBARequests()[0].Polls },
	},
}

func TestQR02SessionDiesAtExpiry(t *testing.T) {
	t.Parallel()
	for _, f := range qrFlows {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				idp, c := f.setup(t)
				f.script(idp, 12)
				s, err := c.StartQRLogin(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				_, err = c.WaitForQRLogin(t.Context(), s)
				var expired *LoginExpiredError
				// Pending at 10 s: the next poll (15 s) would be past the expiry (12 s), so the
				// wait ends at once.
				if !errors.As(err, &expired) || !errors.Is(err, ErrLoginExpired) || time.Since(start) != 10*time.Second {
					t.Fatalf("err = %v after %v, want a local expiry after 10s", err, time.Since(start))
				}
				if _, err := c.WaitForQRLogin(t.Context(), s); !errors.Is(err, ErrLoginFinished) {
					t.Errorf("wait after expiry: %v, want ErrLoginFinished", err)
				}
				if n := f.polls(idp); n != 2 {
					t.Errorf("%d polls, want 2 (at 5s and 10s, none at or after expiry)", n)
				}
			})
		})
	}
}

func TestQR08SessionIsSingleUse(t *testing.T) {
	t.Parallel()
	for _, f := range qrFlows {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				idp, c := f.setup(t)
				s, err := c.StartQRLogin(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.WaitForQRLogin(t.Context(), s); err != nil {
					t.Fatal(err)
				}
				if _, err := c.WaitForQRLogin(t.Context(), s); !errors.Is(err, ErrLoginFinished) {
					t.Errorf("second wait: %v, want ErrLoginFinished", err)
				}
				if n := f.polls(idp); n != 1 {
					t.Errorf("%d polls, want 1", n)
				}
			})
		})
	}
}

func TestQR09CancelStopsPollingAtOnce(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, f := range qrFlows {
		t.Run(f.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				idp, c := f.setup(t)
				f.script(idp, 0)
				s, err := c.StartQRLogin(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(t.Context())
				time.AfterFunc(7*time.Second, cancel)
				start := time.Now()
				if _, err = c.WaitForQRLogin(ctx, s); !errors.Is(err, context.Canceled) || time.Since(start) != 7*time.Second {
					t.Fatalf("err = %v after %v, want context.Canceled after 7s", err, time.Since(start))
				}
				if n := f.polls(idp); n != 1 {
					t.Errorf("%d polls, want 1", n)
				}
				// Cancellation does not end the session: the user may come back to the screen.
				if err := f.decide(idp, s); err != nil {
					t.Fatal(err)
				}
				if _, err := c.WaitForQRLogin(t.Context(), s); err != nil {
					t.Errorf("wait after cancel: %v", err)
				}
			})
		})
	}
}

func TestQR01ProviderURLOnAnotherOriginRefused(t *testing.T) {
	t.Parallel()
	idp := startIdP(t)
	c := newTestClient(t, idp, testKey(t, "EdDSA"), WithDeviceAuthorizationQR())
	idp.Inject(onesoidctest.EndpointDeviceAuthorization, onesoidctest.Fault{Status: 200, ContentType: "application/json",
		Body: []byte(`{"device_code":"dc-abcdefghijklmnopqrstuvwxyz","user_code":"ABCD","verification_uri":"https://evil.example/device","expires_in":600}`)})
	if s, err := c.StartQRLogin(t.Context()); s != nil || !errors.As(err, new(*ConfigError)) {
		t.Fatalf("StartQRLogin = %v, %v; want a ConfigError", s, err)
	}
}

func TestQRLoginRejectsMalformedAnswers(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"no device_code":             `{"user_code":"ABCD","verification_uri":"%s/device","expires_in":600}`,
		"no expires_in":              `{"device_code":"dc-abcdefghijklmnopqrstuvwxyz","user_code":"ABCD","verification_uri":"%s/device"}`,
		"QR-10 control in user code": `{"device_code":"dc-abcdefghijklmnopqrstuvwxyz","user_code":"AB\u001bCD","verification_uri":"%s/device","expires_in":600}`,
		"absurd interval":            `{"device_code":"dc-abcdefghijklmnopqrstuvwxyz","user_code":"ABCD","verification_uri":"%s/device","expires_in":600,"interval":3600}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			idp := startIdP(t)
			c := newTestClient(t, idp, testKey(t, "EdDSA"), WithDeviceAuthorizationQR())
			idp.Inject(onesoidctest.EndpointDeviceAuthorization, onesoidctest.Fault{Status: 200, ContentType: "application/json",
				Body: []byte(strings.Replace(body, "%s", idp.Issuer, 1))})
			if s, err := c.StartQRLogin(t.Context()); s != nil || !errors.As(err, new(*HTTPError)) {
				t.Fatalf("StartQRLogin = %v, %v; want an HTTPError", s, err)
			}
		})
	}
}

func TestQR04QR06DeviceCodeNeverLeavesTheSession(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := deviceFlowSetup(t)
		s, err := c.StartQRLogin(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		dc := idp.CIBARequests()[0].AuthReqID
		for _, shown := range []string{s.QR.URL(), s.QR.SVG(), s.description().String(), s.UserCode, s.VerificationURI, s.VerificationURIComplete} {
			if strings.Contains(shown, dc) {
				t.Errorf("device code visible in %q", shown)
			}
		}
		// A second waiter on the same session is refused while the first waits.
		var wg sync.WaitGroup
		idp.ScriptDeviceFlow(onesoidctest.CIBAScript{})
		ctx, cancel := context.WithCancel(t.Context())
		wg.Go(func() { _, _ = c.WaitForQRLogin(ctx, s) })
		synctest.Wait()
		if _, err := c.WaitForQRLogin(t.Context(), s); !errors.As(err, new(*RequestError)) {
			t.Errorf("concurrent wait: %v, want a RequestError", err)
		}
		cancel()
		wg.Wait()
	})
}

func TestStartQRLoginNeedsDeviceEndpoint(t *testing.T) {
	t.Parallel()
	if _, err := qrTestClient(t, WithDeviceAuthorizationQR()).StartQRLogin(t.Context()); !errors.As(err, new(*ConfigError)) {
		t.Errorf("err = %v, want a ConfigError", err)
	}
}

// TestDeviceAuthorizationAnswerReusingADeviceCodeIsRefused: a provider that answers a new device
// authorization request with the device_code of a session this client already holds (pending,
// or ended) is refused with an *HTTPError matching ErrInvalidResponse that does not quote it, as
// a backchannel answer reusing an auth_req_id is: taking it would poll one authorization for two
// sessions (RFC 8628 §3.2), so that one user's tokens could reach the other's. The first
// session is untouched.
func TestDeviceAuthorizationAnswerReusingADeviceCodeIsRefused(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := deviceFlowSetup(t)
		first, err := c.StartQRLogin(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		code := first.st.deviceCode
		reuse := func(when string) {
			idp.Inject(onesoidctest.EndpointDeviceAuthorization, onesoidctest.Fault{Times: 1, Status: 200, ContentType: "application/json",
				Body: []byte(`{"device_code":"` + code + `","user_code":"ABCD-EFGH","verification_uri":"` + idp.Issuer + `/device","expires_in":600}`)})
			s, err := c.StartQRLogin(t.Context())
			var he *HTTPError
			if s != nil || !errors.As(err, &he) || he.StatusCode != http.StatusOK || !errors.Is(err, ErrInvalidResponse) ||
				strings.Contains(err.Error(), code) {
				t.Errorf("%s: reused device_code: %v, %v; want an *HTTPError matching ErrInvalidResponse, without the code", when, s, err)
			}
		}
		reuse("pending")
		res, err := c.WaitForQRLogin(t.Context(), first)
		if err != nil || res.Token.AccessToken == "" {
			t.Fatalf("the first session's own login: %v, %v", res, err)
		}
		reuse("ended")
		if _, err := c.StartQRLogin(t.Context()); err != nil {
			t.Errorf("a fresh device_code: %v", err)
		}
	})
}
