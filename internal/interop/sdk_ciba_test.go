//go:build interop

package interop

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ones-now/onesoidc"
)

// SDK-level CIBA interop tests: the flow uses only the public onesoidc API; the harness plays
// the end-user (approve, deny) and reads the provider's stderr for failure messages.

// cibaInterval is the interval (seconds) the harness announces in backchannel answers of the
// poll-mode providers here (oidc-provider itself sends none, so the SDK would wait 5 s).
const cibaInterval = 1

// failf fails t with the provider's stderr since mark appended to the message.
func (p *Provider) failf(t testing.TB, mark int, format string, args ...any) {
	t.Helper()
	t.Fatalf("%s\nprovider stderr:\n%s", fmt.Sprintf(format, args...), p.StderrSince(mark))
}

// errorf reports an error with the provider's stderr since mark appended to the message.
func (p *Provider) errorf(t testing.TB, mark int, format string, args ...any) {
	t.Helper()
	t.Errorf("%s\nprovider stderr:\n%s", fmt.Sprintf(format, args...), p.StderrSince(mark))
}

// aliceRequest is a CIBA request for alice with bindingMessage.
func aliceRequest(bindingMessage string, scope ...string) onesoidc.CIBARequest {
	if len(scope) == 0 {
		scope = []string{"openid"}
	}
	return onesoidc.CIBARequest{
		Hint:           onesoidc.LoginHint{Kind: onesoidc.HintLogin, Value: "alice"},
		Scope:          scope,
		BindingMessage: bindingMessage,
	}
}

// progressLog records WithCIBAProgress callbacks with the time each came, and runs onAttempt
// (on the waiting goroutine; it must return quickly).
type progressLog struct {
	events    []onesoidc.PollProgress
	at        []time.Time
	onAttempt func(onesoidc.PollProgress)
}

func (l *progressLog) option() onesoidc.Option {
	return onesoidc.WithProgress(func(pr onesoidc.PollProgress) {
		l.events = append(l.events, pr)
		l.at = append(l.at, time.Now())
		if l.onAttempt != nil {
			l.onAttempt(pr)
		}
	})
}

// decideAsync applies d from another goroutine, as the end-user's device would, and returns
// the channel that receives Decide's error.
func decideAsync(ctx context.Context, p *Provider, d Decision) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := p.Decide(ctx, d)
		done <- err
	}()
	return done
}

// awaitDecision fails t when the decision sent by decideAsync failed or did not finish.
func awaitDecision(t testing.TB, p *Provider, mark int, done <-chan error) {
	t.Helper()
	if done == nil {
		p.failf(t, mark, "the decision was never sent")
	}
	select {
	case err := <-done:
		if err != nil {
			p.failf(t, mark, "Decide: %v", err)
		}
	case <-time.After(15 * time.Second):
		p.failf(t, mark, "Decide did not return")
	}
}

// countingTransport counts the requests that go through it.
type countingTransport struct {
	n atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// TestInteropSDKCIBA runs the CIBA flows of the SDK in poll mode against one provider that
// announces a 1 s interval.
func TestInteropSDKCIBA(t *testing.T) {
	t.Parallel()
	type sdkCIBAClient struct {
		id  string
		key *Key
	}
	newCIBA := func(alg jose.SignatureAlgorithm, mod func(*Client)) (sdkCIBAClient, Client) {
		k, id := newKey(t, alg), newClientID()
		c := cibaClient(id, k)
		if mod != nil {
			mod(&c)
		}
		return sdkCIBAClient{id, k}, c
	}
	const userCode = "4711"
	formRS, formRSReg := newCIBA(jose.RS256, nil)
	formES, formESReg := newCIBA(jose.ES256, nil)
	// Clients registered with backchannel_authentication_request_signing_alg must send signed
	// request objects (CIBA Core §7.1.1), as ONES devices do.
	roES, roESReg := newCIBA(jose.ES256, func(c *Client) { c.BackchannelAuthenticationRequestSigningAlg = "ES256" })
	roEd, roEdReg := newCIBA(jose.EdDSA, func(c *Client) { c.BackchannelAuthenticationRequestSigningAlg = "EdDSA" })
	uc, ucReg := newCIBA(jose.ES256, func(c *Client) { c.BackchannelUserCodeParameter = true })
	p := startProvider(t, Config{
		Clients:      []Client{formRSReg, formESReg, roESReg, roEdReg, ucReg},
		CIBAInterval: cibaInterval,
		UserCode:     userCode,
	})
	client := func(t *testing.T, c sdkCIBAClient, opts ...onesoidc.Option) *onesoidc.OpenIDConnectClient {
		return sdkClient(t, p, c.id, c.key, pkcs8, opts...)
	}

	// Approve after one authorization_pending, then refresh, introspect and revoke, in both
	// request encodings.
	for _, tc := range []struct {
		name string
		c    sdkCIBAClient
		enc  onesoidc.Option
	}{
		{"form RS256", formRS, onesoidc.WithStandardCIBA()},
		{"request object ES256", roES, onesoidc.WithCIBARequestObject()},
		{"request object EdDSA", roEd, onesoidc.WithCIBARequestObject()},
	} {
		t.Run("approve "+tc.name, func(t *testing.T) {
			t.Parallel()
			testSDKCIBAApprove(t, p, tc.c.id, client(t, tc.c, tc.enc))
		})
	}

	// The harness fails the request with each error code of CIBA Core §11; the provider answers
	// the next poll with it.
	for _, tc := range []struct {
		code string
		want error
	}{
		{"access_denied", onesoidc.ErrAccessDenied},
		{"transaction_failed", onesoidc.ErrTransactionFailed},
		{"expired_token", onesoidc.ErrLoginExpired},
	} {
		t.Run("deny "+tc.code, func(t *testing.T) {
			t.Parallel()
			c := client(t, formES)
			mark := p.Mark()
			resp, err := c.MakeCIBARequest(t.Context(), aliceRequest("DENY-"+strings.ToUpper(tc.code[:4])))
			if err != nil {
				p.failf(t, mark, "MakeCIBARequest: %v", err)
			}
			p.DenyID(t, resp.AuthReqID, tc.code)
			res, err := c.WaitForCIBA(t.Context(), resp)
			var oe *onesoidc.OAuthError
			if !errors.Is(err, tc.want) || !errors.As(err, &oe) || oe.StatusCode != http.StatusBadRequest {
				p.failf(t, mark, "WaitForCIBA = %+v, %v; want the provider's %s (HTTP 400)", res, err, tc.code)
			}
			// The provider's expired_token is the one expiry error too, wrapping the answer.
			var exp *onesoidc.LoginExpiredError
			if isExpired := errors.As(err, &exp); isExpired != (tc.code == "expired_token") || (isExpired && exp.Err == nil) {
				p.errorf(t, mark, "%s from the provider: %v, *LoginExpiredError %v", tc.code, err, isExpired)
			}
			// The ended request is remembered: no second poll, same error.
			_, err = c.CheckCIBAStatus(t.Context(), resp.AuthReqID)
			if !errors.Is(err, onesoidc.ErrLoginFinished) || !errors.Is(err, tc.want) {
				p.errorf(t, mark, "CheckCIBAStatus after %s = %v, want ErrLoginFinished matching it", tc.code, err)
			}
		})
	}

	// requested_expiry 2 s: the provider honours it; WaitForCIBA polls once (pending) and ends
	// with a local expiry as soon as no further poll fits before the expiry. After the expiry, a
	// client that does not know the request still polls, and the provider answers expired_token
	// itself (it keeps expired requests for its 15 s clock tolerance).
	t.Run("requested expiry", func(t *testing.T) {
		t.Parallel()
		c := client(t, formES)
		mark := p.Mark()
		req := aliceRequest("EXPIRY-1")
		req.RequestedExpiry = 2 * time.Second
		resp, err := c.MakeCIBARequest(t.Context(), req)
		if err != nil {
			p.failf(t, mark, "MakeCIBARequest: %v", err)
		}
		if resp.ExpiresIn != 2*time.Second {
			p.errorf(t, mark, "expires_in = %v, want the requested 2s", resp.ExpiresIn)
		}
		var progress progressLog
		res, err := c.WaitForCIBA(t.Context(), resp, progress.option())
		var exp *onesoidc.LoginExpiredError
		if !errors.Is(err, onesoidc.ErrLoginExpired) || !errors.As(err, &exp) || !exp.Expiry.Equal(resp.Expiry()) {
			p.failf(t, mark, "WaitForCIBA = %+v, %v; want a *LoginExpiredError at %v", res, err, resp.Expiry())
		}
		// The poll at 1 s is pending; the next one (interval 1 s later) would fall after the
		// expiry, so the wait ends at once, before the expiry, without another poll.
		if exp.Err != nil || len(progress.events) != 1 || time.Now().After(resp.Expiry().Add(500*time.Millisecond)) {
			p.errorf(t, mark, "WaitForCIBA ended at %v with %v after %d polls, want a local expiry after 1 pending poll", time.Now(), err, len(progress.events))
		}
		_, err = c.CheckCIBAStatus(t.Context(), resp.AuthReqID)
		if !errors.Is(err, onesoidc.ErrLoginFinished) || !errors.As(err, &exp) {
			p.errorf(t, mark, "CheckCIBAStatus after the expiry = %v, want ErrLoginFinished of the local expiry", err)
		}

		other := client(t, formES)
		time.Sleep(time.Until(resp.Expiry()) + 200*time.Millisecond) // the provider's clock is real
		_, err = other.CheckCIBAStatus(t.Context(), resp.AuthReqID)
		var oe *onesoidc.OAuthError
		if !errors.Is(err, onesoidc.ErrLoginExpired) || !errors.As(err, &oe) {
			p.errorf(t, mark, "CheckCIBAStatus by a client without the request = %v, want the provider's expired_token", err)
		}
	})

	t.Run("unknown user", func(t *testing.T) {
		t.Parallel()
		c := client(t, formES)
		mark := p.Mark()
		req := aliceRequest("UNKNOWN-1")
		req.Hint.Value = "mallory"
		resp, err := c.MakeCIBARequest(t.Context(), req)
		var oe *onesoidc.OAuthError
		if !errors.Is(err, (&onesoidc.OAuthError{Code: "unknown_user_id"})) || !errors.As(err, &oe) || oe.StatusCode != http.StatusBadRequest {
			p.failf(t, mark, "MakeCIBARequest for mallory = %+v, %v; want unknown_user_id (HTTP 400)", resp, err)
		}
	})

	// The SDK's default rule (64 printable characters) accepts these; the provider's rule
	// (BindingMessagePatternOIDCProvider) does not.
	for name, msg := range map[string]string{
		"space":    "ABC 123",
		"30 chars": strings.Repeat("A", 30),
		"umlaut":   "Bestätigen",
	} {
		t.Run("binding message "+name, func(t *testing.T) {
			t.Parallel()
			c := client(t, formES)
			mark := p.Mark()
			resp, err := c.MakeCIBARequest(t.Context(), aliceRequest(msg))
			if !errors.Is(err, (&onesoidc.OAuthError{Code: "invalid_binding_message"})) {
				p.failf(t, mark, "MakeCIBARequest(%q) = %+v, %v; want the provider's invalid_binding_message", msg, resp, err)
			}

			// With the provider's rule the SDK refuses the message before sending anything.
			var ct countingTransport
			strict := client(t, formES,
				onesoidc.WithCIBABindingMessagePattern(regexp.MustCompile(onesoidc.BindingMessagePatternOIDCProvider)),
				onesoidc.WithHTTPClient(&http.Client{Transport: &ct, Timeout: 10 * time.Second}))
			before := ct.n.Load()
			mark = p.Mark()
			resp, err = strict.MakeCIBARequest(t.Context(), aliceRequest(msg))
			var re *onesoidc.RequestError
			if !errors.As(err, &re) || re.Field != "binding_message" {
				p.failf(t, mark, "MakeCIBARequest(%q) with the provider's pattern = %+v, %v; want a *RequestError for binding_message", msg, resp, err)
			}
			if n := ct.n.Load() - before; n != 0 {
				p.errorf(t, mark, "the locally refused request sent %d HTTP requests", n)
			}
			if log := p.StderrSince(mark); strings.Contains(log, "backchannel.error") {
				t.Errorf("the provider saw the locally refused request:\n%s", log)
			}
		})
	}

	t.Run("user code", func(t *testing.T) {
		t.Parallel()
		c := client(t, uc)
		for _, tc := range []struct {
			name, code string
			want       error // nil: accepted
		}{
			{"right", userCode, nil},
			{"wrong", "0000", (&onesoidc.OAuthError{Code: "invalid_user_code"})},
			{"missing", "", (&onesoidc.OAuthError{Code: "missing_user_code"})},
		} {
			mark := p.Mark()
			req := aliceRequest("UC-" + strings.ToUpper(tc.name))
			req.UserCode = tc.code
			resp, err := c.MakeCIBARequest(t.Context(), req)
			if tc.want == nil {
				if err != nil {
					p.failf(t, mark, "%s user_code: %v", tc.name, err)
				}
				if pr := p.ApproveID(t, resp.AuthReqID); pr.AccountID != "alice" {
					p.errorf(t, mark, "approved request of %q, want alice", pr.AccountID)
				}
				if _, err := c.WaitForCIBA(t.Context(), resp); err != nil {
					p.failf(t, mark, "WaitForCIBA: %v", err)
				}
				continue
			}
			if !errors.Is(err, tc.want) {
				p.failf(t, mark, "%s user_code: %+v, %v; want %v", tc.name, resp, err, tc.want)
			}
		}
	})

	// A client registered for request objects refuses the form encoding.
	t.Run("form from a request-object client", func(t *testing.T) {
		t.Parallel()
		c := client(t, roES)
		mark := p.Mark()
		_, err := c.MakeCIBARequest(t.Context(), aliceRequest("RO-FORM"))
		if !errors.Is(err, (&onesoidc.OAuthError{Code: "invalid_request"})) {
			p.failf(t, mark, "form request from a request-object client: %v, want invalid_request", err)
		}
	})
}

// testSDKCIBAApprove runs a CIBA login of alice with c: the first poll is pending, the user
// approves, the second poll gets the tokens; then the redeemed auth_req_id, refresh,
// introspection and revocation.
func testSDKCIBAApprove(t *testing.T, p *Provider, clientID string, c *onesoidc.OpenIDConnectClient) {
	ctx := t.Context()
	scope := []string{"openid", "offline_access", "profile"}
	mark := p.Mark()
	resp, err := c.MakeCIBARequest(ctx, aliceRequest("OK-"+clientID[:8], scope...))
	if err != nil {
		p.failf(t, mark, "MakeCIBARequest: %v", err)
	}
	if resp.Interval != cibaInterval*time.Second {
		p.errorf(t, mark, "Interval = %v, want the announced %ds", resp.Interval, cibaInterval)
	}
	if !slices.ContainsFunc(p.Pending(t), func(pr PendingRequest) bool {
		return pr.AuthReqID == resp.AuthReqID && pr.AccountID == "alice" && pr.ClientID == clientID
	}) {
		p.errorf(t, mark, "pending = %+v, want %s of alice", p.Pending(t), resp.AuthReqID)
	}

	var decided <-chan error
	progress := progressLog{onAttempt: func(pr onesoidc.PollProgress) {
		if pr.Attempt == 2 && decided == nil {
			decided = decideAsync(ctx, p, Decision{AuthReqID: resp.AuthReqID, Approve: true})
		}
	}}
	res, err := c.WaitForCIBA(ctx, resp, progress.option())
	if err != nil {
		p.failf(t, mark, "WaitForCIBA: %v (progress %+v)", err, progress.events)
	}
	awaitDecision(t, p, mark, decided)

	// The interval of the answer is honoured: first poll Interval after the answer, the next
	// Interval after the pending answer.
	if len(progress.events) < 2 {
		p.failf(t, mark, "progress = %+v, want a pending poll before the approval", progress.events)
	}
	first, second := progress.events[0], progress.events[1]
	if !first.NextPoll.Equal(resp.ReceivedAt.Add(resp.Interval)) || first.LastErr != nil {
		p.errorf(t, mark, "first progress = %+v, want NextPoll = ReceivedAt + %v", first, resp.Interval)
	}
	if !errors.Is(second.LastErr, onesoidc.ErrAuthorizationPending) {
		p.errorf(t, mark, "second progress LastErr = %v, want authorization_pending", second.LastErr)
	}
	if gap := second.NextPoll.Sub(first.NextPoll); gap < resp.Interval {
		p.errorf(t, mark, "second poll %v after the first, want at least the interval %v", gap, resp.Interval)
	}
	if !second.Expiry.Equal(resp.Expiry()) {
		p.errorf(t, mark, "progress Expiry = %v, want %v", second.Expiry, resp.Expiry())
	}

	tok := res.Token
	if res.AuthReqID != resp.AuthReqID || tok == nil || tok.AccessToken == "" || tok.RefreshToken == "" || res.IDToken == "" {
		p.failf(t, mark, "result = %+v, want access, refresh and ID token", res)
	}
	if got := strings.Fields(res.Scope); !sameSet(got, scope) || tok.Extra("scope") != res.Scope {
		p.errorf(t, mark, "Scope = %q (token extra %v), want %q", res.Scope, tok.Extra("scope"), strings.Join(scope, " "))
	}
	if tok.Extra("id_token") != res.IDToken {
		p.errorf(t, mark, "token extra id_token differs from IDToken")
	}
	if _, claims := p.verifyJWT(t, res.IDToken); claims["sub"] != "alice" || claims["aud"] != clientID || claims["iss"] != p.Issuer() {
		p.errorf(t, mark, "ID token claims = %v", claims)
	}

	// The redeemed auth_req_id is refused locally. Had it been sent, the provider would have
	// revoked every token of the grant (IDP-NOTES), so the access token staying active proves
	// that no poll went out.
	mark = p.Mark()
	_, err = c.CheckCIBAStatus(ctx, resp.AuthReqID)
	if !errors.Is(err, onesoidc.ErrLoginFinished) {
		p.errorf(t, mark, "CheckCIBAStatus of a redeemed auth_req_id = %v, want ErrLoginFinished", err)
	}
	if log := p.StderrSince(mark); strings.Contains(log, "grant.error") {
		t.Errorf("the provider saw a poll of the redeemed auth_req_id:\n%s", log)
	}
	info, err := c.IntrospectToken(ctx, tok.AccessToken, "access_token")
	if err != nil || !info.Active || info.Subject != "alice" || info.ClientID != clientID || !sameSet(strings.Fields(info.Scope), scope) {
		p.failf(t, mark, "introspection = %+v, %v; want active, sub alice, client %s, scope %v", info, err, clientID, scope)
	}

	mark = p.Mark()
	refreshed, err := c.RefreshToken(ctx, tok)
	if err != nil {
		p.failf(t, mark, "RefreshToken: %v", err)
	}
	if refreshed.AccessToken == "" || refreshed.AccessToken == tok.AccessToken || refreshed.RefreshToken == "" {
		p.errorf(t, mark, "refreshed token: new access token %v, refresh token present %v",
			refreshed.AccessToken != tok.AccessToken, refreshed.RefreshToken != "")
	}
	if info, err := c.IntrospectToken(ctx, refreshed.AccessToken, ""); err != nil || !info.Active || info.Subject != "alice" {
		p.errorf(t, mark, "introspection of the refreshed access token = %+v, %v", info, err)
	}

	// Revoking the access token revokes the whole grant, the refresh token included.
	mark = p.Mark()
	if err := c.RevokeToken(ctx, refreshed.AccessToken, "access_token"); err != nil {
		p.failf(t, mark, "RevokeToken: %v", err)
	}
	for name, tk := range map[string]string{
		"revoked access token": refreshed.AccessToken,
		"first access token":   tok.AccessToken,
		"refresh token":        refreshed.RefreshToken,
	} {
		if info, err := c.IntrospectToken(ctx, tk, ""); err != nil || info.Active {
			p.errorf(t, mark, "%s after revocation: %+v, %v; want inactive", name, info, err)
		}
	}
	if _, err := c.RefreshToken(ctx, refreshed); !errors.Is(err, onesoidc.ErrInvalidGrant) {
		p.errorf(t, mark, "RefreshToken after revocation = %v, want invalid_grant", err)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestInteropSDKCIBASlowDown: with the harness's slow_down emulation, a manual CheckCIBAStatus
// half an interval before WaitForCIBA's first poll makes that poll too early; the answer is
// slow_down, WaitForCIBA adds 5 s to the interval (progress shows it) and then gets the tokens.
// It costs about 9 s (2 s interval + 7 s), overlapping the other tests.
//
// The interval is 2 s, not 1 s: Node's HTTP server closes a keep-alive connection after 6 s
// idle (keepAliveTimeout 5 s plus its 1 s grace), and a 1 s interval plus the 5 s step puts the
// next poll exactly then. The poll then goes out on the connection the server is closing, Go's
// transport does not retry a POST, and WaitForCIBA sees "connection reset by peer", counts a
// transport failure and backs off to twice the interval (12 s): correct, but slow.
func TestInteropSDKCIBASlowDown(t *testing.T) {
	t.Parallel()
	const interval = 2
	key, id := newKey(t, jose.ES256), newClientID()
	p := startProvider(t, Config{Clients: []Client{cibaClient(id, key)}, SlowDown: true, CIBAInterval: interval})
	c := sdkClient(t, p, id, key, pkcs8)
	ctx := t.Context()

	mark := p.Mark()
	resp, err := c.MakeCIBARequest(ctx, aliceRequest("SLOW-1"))
	if err != nil {
		p.failf(t, mark, "MakeCIBARequest: %v", err)
	}
	if resp.Interval != interval*time.Second {
		p.failf(t, mark, "Interval = %v, want %ds", resp.Interval, interval)
	}
	time.Sleep(resp.Interval / 2)
	if _, err := c.CheckCIBAStatus(ctx, resp.AuthReqID); !errors.Is(err, onesoidc.ErrAuthorizationPending) {
		p.failf(t, mark, "CheckCIBAStatus = %v, want authorization_pending", err)
	}
	p.ApproveID(t, resp.AuthReqID)

	var progress progressLog
	start := time.Now()
	res, err := c.WaitForCIBA(ctx, resp, progress.option())
	if err != nil {
		p.failf(t, mark, "WaitForCIBA: %v (progress %+v)", err, progress.events)
	}
	if res.Token.AccessToken == "" || res.IDToken == "" {
		p.errorf(t, mark, "result = %+v", res)
	}
	if len(progress.events) != 2 {
		p.failf(t, mark, "progress = %+v, want 2 attempts (slow_down, then tokens)", progress.events)
	}
	if !progress.events[0].NextPoll.Equal(resp.ReceivedAt.Add(resp.Interval)) {
		p.errorf(t, mark, "first NextPoll = %v, want ReceivedAt + %v", progress.events[0].NextPoll, resp.Interval)
	}
	second := progress.events[1]
	want := resp.Interval + 5*time.Second // RFC 8628 §3.5
	if got := second.NextPoll.Sub(progress.at[1]); !errors.Is(second.LastErr, onesoidc.ErrSlowDown) || got > want || got < want-500*time.Millisecond {
		p.errorf(t, mark, "after slow_down: LastErr %v, next poll in %v; want slow_down and %v", second.LastErr, got, want)
	}
	if elapsed := time.Since(start); elapsed < want {
		p.errorf(t, mark, "WaitForCIBA took %v, want at least %v after slow_down", elapsed, want)
	}
	if log := p.StderrSince(mark); strings.Count(log, "[emulated.slow_down]") != 1 {
		t.Errorf("want exactly one emulated slow_down on stderr:\n%s", log)
	}
}

// TestInteropSDKCIBAPing: in ping mode the provider POSTs to the client notification endpoint
// served by the SDK's CIBANotificationHandler, which wakes WaitForCIBA long before the 30 s
// interval.
func TestInteropSDKCIBAPing(t *testing.T) {
	t.Parallel()
	const interval = 30

	// The handler is the SDK client's, which needs the provider, which needs the endpoint URL.
	var (
		mu       sync.Mutex
		notify   http.Handler
		statuses []int
	)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := notify
		mu.Unlock()
		if h == nil {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		mu.Lock()
		statuses = append(statuses, sw.status)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)

	key, id := newKey(t, jose.ES256), newClientID()
	reg := cibaClient(id, key)
	reg.BackchannelTokenDeliveryMode = "ping"
	reg.BackchannelClientNotificationEndpoint = srv.URL + "/ciba/notify"
	p := startProvider(t, Config{
		Clients:      []Client{reg},
		CIBAInterval: interval,
		PingCA:       string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})),
	})
	c := sdkClient(t, p, id, key, pkcs8, onesoidc.WithCIBAPing())
	mu.Lock()
	notify = c.CIBANotificationHandler()
	mu.Unlock()
	answers := func() []int {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(statuses)
	}

	ctx, cancel := context.WithTimeout(t.Context(), interval*time.Second*2/3)
	defer cancel()
	mark := p.Mark()
	resp, err := c.MakeCIBARequest(ctx, aliceRequest("PING-1"))
	if err != nil {
		p.failf(t, mark, "MakeCIBARequest: %v", err)
	}
	if resp.Interval != interval*time.Second {
		p.failf(t, mark, "Interval = %v, want %ds", resp.Interval, interval)
	}
	var decided <-chan error
	progress := progressLog{onAttempt: func(pr onesoidc.PollProgress) {
		if pr.Attempt == 1 {
			decided = decideAsync(ctx, p, Decision{AuthReqID: resp.AuthReqID, Approve: true})
		}
	}}
	res, err := c.WaitForCIBA(ctx, resp, progress.option())
	elapsed := time.Since(resp.ReceivedAt)
	if err != nil {
		p.failf(t, mark, "WaitForCIBA: %v after %v (notification endpoint answers %v)", err, elapsed, answers())
	}
	awaitDecision(t, p, mark, decided)
	if res.Token.AccessToken == "" || res.IDToken == "" {
		p.errorf(t, mark, "result = %+v", res)
	}
	if elapsed > 5*time.Second || len(progress.events) != 1 {
		p.errorf(t, mark, "tokens after %v and %d waits; want them within 5 s of one wait (interval %v)", elapsed, len(progress.events), resp.Interval)
	}
	if got := answers(); !slices.Equal(got, []int{http.StatusNoContent}) {
		p.errorf(t, mark, "notification endpoint answered %v, want one 204", got)
	}
}

// statusWriter records the status code a handler writes.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}
