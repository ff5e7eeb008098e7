package onesoidc

import (
	"context"
	"errors"
	"net/url"
	"time"

	"golang.org/x/oauth2"
)

// LoginResult holds the tokens of an approved login: a CIBA request (CIBA Core §10.1.1) or a QR
// login (ONES, or RFC 8628).
type LoginResult struct {
	// Token holds the access token, its expiry and the refresh token, if any. Token.Extra("scope")
	// and Token.Extra("id_token") give Scope and IDToken as well, and RefreshToken accepts it.
	Token *oauth2.Token
	// IDToken is the raw ID token ("" for an ONES QR login, which returns none).
	IDToken string
	// Scope is the granted scope: the token response's scope, or the requested scope when the
	// response has none (RFC 6749 §5.1).
	Scope string
	// AuthReqID is the CIBA request or the ONES QR session the tokens answer ("" for RFC 8628).
	AuthReqID string
	// Identity is who logged in (Identity.Entity) and all the claims: the validated ID token, or
	// for an ONES QR login the introspection of the access token (Kind KindAccessToken).
	Identity *AuthenticationResult
}

// ExpiredError is the one error of a login request (a CIBA auth_req_id, or a QR login session)
// that ran out before the user decided, whoever noticed first (CIBA Core §7.3, §11; RFC 8628
// §3.5): the provider, which answered expired_token (Err is its *OAuthError) or the ONES QR
// status "expired" (Err is the *QRStatusError), or this package's
// clock, which reached the request's expires_in, or found that no poll allowed by the interval
// was left before it, so that no further poll was sent (Err is nil). errors.Is(err,
// ErrExpiredToken) holds in both cases, and errors.As(err, &expired) finds it.
type ExpiredError struct {
	// Expiry is when the request expired: its expiry on the local clock, or, when the provider
	// said so first, when the provider's answer arrived.
	Expiry time.Time
	// Err is the provider's expired_token answer, or nil when the local clock ended the request.
	Err error
}

// Error says when the request expired.
func (e *ExpiredError) Error() string {
	s := "onesoidc: login request expired at " + e.Expiry.UTC().Format(time.RFC3339) + " without a decision"
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is reports whether target is ErrExpiredToken.
func (e *ExpiredError) Is(target error) bool { return target == ErrExpiredToken }

// Unwrap returns the provider's expired_token answer, if there was one.
func (e *ExpiredError) Unwrap() error { return e.Err }

// asExpired turns the provider's expired_token answer into an *ExpiredError at now, the one
// expiry error; any other error is returned as it is.
func asExpired(err error, now time.Time) error {
	if err == nil || !errors.Is(err, ErrExpiredToken) || errors.As(err, new(*ExpiredError)) {
		return err
	}
	return &ExpiredError{Expiry: now, Err: err}
}

// ErrCIBARedeemed is matched (errors.Is) by the error of CheckCIBAStatus and WaitForCIBA for an
// auth_req_id whose tokens were already issued: it is never sent again (SECURITY-CASES CB-15).
var ErrCIBARedeemed = errors.New("onesoidc: CIBA auth_req_id already redeemed")

// CIBAFinishedError is returned without any request by CheckCIBAStatus and WaitForCIBA for an
// auth_req_id that already ended in this client: redeemed (Err is ErrCIBARedeemed), denied,
// expired or failed (Err is the error it ended with, so errors.Is(err, ErrAccessDenied) still
// holds). The client remembers the last 4096 ended requests.
type CIBAFinishedError struct {
	Err error
}

// Error names the error the request ended with.
func (e *CIBAFinishedError) Error() string {
	return "onesoidc: CIBA request already finished: " + e.Err.Error()
}

// Unwrap returns the error the request ended with.
func (e *CIBAFinishedError) Unwrap() error { return e.Err }

// CIBATokenError reports a token response to a CIBA poll that was rejected: its ID token is
// missing or names another issuer, audience or auth_req_id (CIBA Core §10.1.1, SECURITY-CASES
// CB-18). The tokens of such a response are never returned.
type CIBATokenError struct {
	// Reason says what is wrong.
	Reason string
	// Err is the underlying error, if any.
	Err error
}

// Error says why the token response was rejected.
func (e *CIBATokenError) Error() string {
	s := "onesoidc: CIBA token response rejected: " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error, if any.
func (e *CIBATokenError) Unwrap() error { return e.Err }

// CheckCIBAStatus polls the token endpoint once for authReqID (CIBA Core §10.1): grant_type
// urn:openid:params:grant-type:ciba, authenticated with a fresh client assertion. While the user
// has not decided, the error matches ErrAuthorizationPending or ErrSlowDown; the end of the
// request matches ErrAccessDenied, ErrExpiredToken, ErrTransactionFailed or ErrInvalidGrant
// (*OAuthError, CIBA Core §11; expired_token comes as a *ExpiredError wrapping it). On success it returns the tokens; the ID token must name this
// client's issuer and client id, and its urn:openid:params:jwt:claim:auth_req_id claim, when
// present, must equal authReqID (§10.1.1), else the tokens are dropped and a *CIBATokenError is
// returned.
//
// An auth_req_id that already ended in this client (redeemed, denied, expired ...) is never sent
// again: the answer is a *CIBAFinishedError at once. A request started by MakeCIBARequest that
// passed its expiry on the local clock gives a *ExpiredError without a request. Callers that
// poll in a loop must respect the interval; WaitForCIBA does.
func (c *OpenIDConnectClient) CheckCIBAStatus(ctx context.Context, authReqID string) (*LoginResult, error) {
	if err := checkAuthReqID(authReqID); err != nil {
		return nil, err
	}
	scope, err := c.ciba.before(authReqID, c.now())
	if err != nil {
		return nil, err
	}
	return c.pollCIBA(ctx, authReqID, scope)
}

// pollCIBA sends one poll and records how the request ended, if it did.
func (c *OpenIDConnectClient) pollCIBA(ctx context.Context, authReqID, scope string) (*LoginResult, error) {
	// One poll at a time per auth_req_id: a second one racing a successful first would be a
	// replay of a redeemed id, which makes the provider revoke the tokens it just issued (CB-15).
	if err := c.ciba.startPoll(authReqID); err != nil {
		return nil, err
	}
	defer c.ciba.endPoll(authReqID)
	form := url.Values{"grant_type": {cibaGrantType}, "auth_req_id": {authReqID}}
	resp, err := c.postAuthenticated(ctx, "CIBA token", c.meta.TokenEndpoint, form, false)
	if err != nil {
		err = asExpired(err, c.now())
		if errors.Is(err, ErrSlowDown) {
			c.ciba.slowDown(authReqID, c.now())
		}
		if endsRequest(err) {
			c.ciba.finish(authReqID, err)
		}
		return nil, err
	}
	// From here on the provider considers the auth_req_id redeemed (CB-15).
	tok, tr, err := c.parseTokenResponse("CIBA token", resp, scope)
	var id *AuthenticationResult
	if err == nil {
		id, err = c.verifyLoginIDToken(ctx, tr.IDToken, authReqID, tok.AccessToken)
	}
	if err != nil {
		c.ciba.finish(authReqID, err)
		return nil, err
	}
	c.ciba.finish(authReqID, ErrCIBARedeemed)
	return &LoginResult{Token: tok, IDToken: tr.IDToken, Scope: tr.Scope, AuthReqID: authReqID, Identity: id}, nil
}

// transientOAuthError reports OAuth errors that do not end a CIBA request: pending, slow_down,
// and the provider's own temporary trouble.
func transientOAuthError(oe *OAuthError) bool {
	switch oe.Code {
	case "authorization_pending", "slow_down", "temporarily_unavailable", "server_error":
		return true
	}
	return false
}

// verifyLoginIDToken validates the ID token of a login's token response (CIBA Core §10.1.1,
// OpenID Connect Core §3.1.3.7) with VerifyIDToken: signature by a provider key, issuer,
// audience, times, at_hash against accessToken when present, and, for CIBA, the auth_req_id
// claim when present (SECURITY-CASES CB-17, CB-18). A response without an ID token is refused.
func (c *OpenIDConnectClient) verifyLoginIDToken(ctx context.Context, raw, authReqID, accessToken string) (*AuthenticationResult, error) {
	if raw == "" {
		return nil, &CIBATokenError{Reason: "no id_token (CIBA Core §10.1.1)"}
	}
	opts := []VerifyOption{ExpectAccessToken(accessToken)}
	if authReqID != "" {
		opts = append(opts, ExpectAuthReqID(authReqID))
	}
	res, err := c.VerifyIDToken(ctx, raw, opts...)
	if err != nil {
		return nil, &CIBATokenError{Reason: "id_token rejected", Err: err}
	}
	return res, nil
}

// WaitForCIBA polls the token endpoint for resp until the user decides, the request expires or
// ctx ends (CIBA Core §7.3, §10.1, §11), and returns the tokens as CheckCIBAStatus does.
//
// The first poll is sent Interval after resp.ReceivedAt, later polls Interval after the previous
// answer; every slow_down adds SlowDownStep (5 s) to the interval for all later polls. A
// transport failure, a 5xx or a 429 doubles the wait (at most 1 minute, at least the server's
// Retry-After, RFC 9110 §10.2.3, up to 5 minutes per wait) and counts towards WithMaxFailures.
// A delay (interval, slow_down or Retry-After) that would put the next poll after the request's
// expiry or ctx's deadline ends the wait at once: with the failure that asked for it (the
// *HTTPError, its status and RetryAfter as the server gave it), with a *ExpiredError after a
// pending answer, or, when ctx's deadline comes first, with an error matching
// context.DeadlineExceeded and the last answer; in ping mode a pending request still waits for
// the notification. At the request's expiry the wait ends without another poll with a
// *ExpiredError (errors.Is(err, ErrExpiredToken)), which is also what the provider's
// expired_token answer becomes. Any other error answer ends the wait at once. When ctx ends,
// during a wait or a poll, ctx.Err() is returned at once. In ping mode a notification received
// by CIBANotificationHandler triggers a poll at once, whatever the interval.
//
// Each auth_req_id may have one waiter at a time; a second concurrent WaitForCIBA for the same
// auth_req_id fails with a *RequestError.
func (c *OpenIDConnectClient) WaitForCIBA(ctx context.Context, resp *CIBAResponse, opts ...WaitOption) (*LoginResult, error) {
	if resp == nil {
		return nil, &RequestError{Field: "auth_req_id", Reason: "nil *CIBAResponse"}
	}
	if err := checkAuthReqID(resp.AuthReqID); err != nil {
		return nil, err
	}
	if resp.ExpiresIn <= 0 || resp.ReceivedAt.IsZero() {
		return nil, &RequestError{Field: "expires_in", Reason: "the response has no expires_in or no ReceivedAt"}
	}
	w := newPollOptions(opts)
	id := resp.AuthReqID
	p, err := c.ciba.startWait(resp)
	if err != nil {
		return nil, err
	}
	defer c.ciba.endWait(id, p)

	spec := pollSpec{
		name:     "CIBA",
		start:    resp.ReceivedAt,
		interval: resp.Interval,
		deadline: resp.Expiry(),
		expired:  func(err error) { c.ciba.finish(id, err) },
	}
	if c.cibaCfg.ping {
		spec.wake = p.wake
	}
	return c.pollUntil(ctx, spec, w, func(ctx context.Context) (*LoginResult, error) { return c.pollCIBA(ctx, id, resp.Scope) })
}
