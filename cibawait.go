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
	// Auth is who logged in (Auth.Entity) and all the claims: the validated ID token, or
	// for an ONES QR login the introspection of the access token (Kind KindAccessToken).
	Auth *AuthenticationResult
}

// LoginExpiredError is the one error of a login request (a CIBA auth_req_id, or a QR login session)
// that ran out before the user decided, whoever noticed first (CIBA Core §7.3, §11; RFC 8628
// §3.5): the provider, which answered expired_token (Err is its *OAuthError) or the ONES QR
// status "expired" (Err is the *QRStatusError), or this package's
// clock, which reached the request's expires_in, or found that no poll allowed by the interval
// was left before it, so that no further poll was sent (Err is nil). errors.Is(err,
// ErrLoginExpired) holds in both cases, and errors.As(err, &expired) finds it.
type LoginExpiredError struct {
	// Expiry is when the request expired: its expiry on the local clock, or, when the provider
	// said so first, when the provider's answer arrived.
	Expiry time.Time
	// Err is the provider's expired_token answer, or nil when the local clock ended the request.
	Err error
}

// Error says when the request expired.
func (e *LoginExpiredError) Error() string {
	s := "onesoidc: login request expired at " + e.Expiry.UTC().Format(time.RFC3339) + " without a decision"
	if e.Err != nil {
		s += ": " + causeText(e.Err)
	}
	return s
}

// Is reports whether target is ErrLoginExpired.
func (e *LoginExpiredError) Is(target error) bool { return target == ErrLoginExpired }

// Unwrap returns the provider's expired_token answer, if there was one.
func (e *LoginExpiredError) Unwrap() error { return e.Err }

// asExpired turns the provider's expired_token answer into an *LoginExpiredError at now, the one
// expiry error; any other error is returned as it is.
func asExpired(err error, now time.Time) error {
	if err == nil || !errors.Is(err, ErrLoginExpired) || errors.As(err, new(*LoginExpiredError)) {
		return err
	}
	return &LoginExpiredError{Expiry: now, Err: err}
}

// ErrLoginFinished is matched (errors.Is) by the error of CheckCIBAStatus, WaitForCIBA,
// CheckQRStatus and WaitForQRLogin for a login request (a CIBA auth_req_id, a QR session) that
// already ended in this client, returned without any request: its codes are single-use, and a
// new login needs a new request (CIBA Core §10.1, RFC 8628 §3.5). The error also matches how the
// request ended (ErrAccessDenied, ErrLoginExpired, a *LoginTokenError ...); a request whose
// tokens were already handed out matches ErrLoginFinished only, and its auth_req_id is never
// sent again (CIBA Core §11 forbids a second redemption). The client remembers the last 4096
// ended requests.
var ErrLoginFinished = errors.New("onesoidc: login request already finished")

// errRedeemed is how a request whose tokens were handed out ended.
var errRedeemed = errors.New("onesoidc: login already redeemed: its tokens were issued")

// finishedError is the error of a request that ended with err.
func finishedError(err error) error { return wrapf("%w: %w", ErrLoginFinished, err) }

// LoginTokenError reports the tokens of an approved login that were refused: the ID token of a
// CIBA poll missing or naming another issuer, audience or auth_req_id (CIBA Core §10.1.1), or the
// access token of an ONES QR login missing or malformed, not active at introspection (RFC 7662
// §2.2), issued by another issuer, already expired, or not a user's token. The tokens are never
// returned: they are revoked, and the *LoginTokenError comes wrapped in a *LoginIncompleteError.
type LoginTokenError struct {
	// Reason says what is wrong.
	Reason string
	// Err is the underlying error, if any (a *ValidationError, the introspection's *OAuthError
	// or *HTTPError).
	Err error
}

// Error says why the tokens were refused.
func (e *LoginTokenError) Error() string {
	s := "onesoidc: login token rejected: " + e.Reason
	if e.Err != nil {
		s += ": " + causeText(e.Err)
	}
	return s
}

// Unwrap returns the underlying error, if any.
func (e *LoginTokenError) Unwrap() error { return e.Err }

// CheckCIBAStatus polls the token endpoint once for authReqID (CIBA Core §10.1): grant_type
// urn:openid:params:grant-type:ciba, authenticated with a fresh client assertion. While the user
// has not decided, the error matches ErrAuthorizationPending or ErrSlowDown; the end of the
// request matches ErrAccessDenied, ErrLoginExpired, ErrTransactionFailed or ErrInvalidGrant
// (*OAuthError, CIBA Core §11; expired_token comes as a *LoginExpiredError wrapping it). On success it returns the tokens; the ID token must name this
// client's issuer and client id, and its urn:openid:params:jwt:claim:auth_req_id claim, when
// present, must equal authReqID (§10.1.1), else the tokens are revoked (RFC 7009) and a
// *LoginIncompleteError wrapping a *LoginTokenError is returned. An ID token signed with a key id
// the client does not know yet refetches the provider's JWKS, whatever the miss cooldown.
//
// An auth_req_id that already ended in this client (redeemed, denied, expired ...) is never sent
// again: the answer is a ErrLoginFinished at once. A request started by MakeCIBARequest that
// passed its expiry on the local clock gives a *LoginExpiredError without a request. Callers that
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
	// replay of a redeemed id, which makes the provider revoke the tokens it just issued.
	if err := c.ciba.startPoll(authReqID); err != nil {
		return nil, err
	}
	defer c.ciba.endPoll(authReqID)
	form := url.Values{"grant_type": {cibaGrantType}, "auth_req_id": {authReqID}}
	resp, err := c.postAuthenticated(ctx, "CIBA token", c.meta.TokenEndpoint, form, false)
	if err != nil {
		err = asExpired(err, c.now())
		if endsRequest(err) {
			c.ciba.finish(authReqID, err)
		}
		return nil, err
	}
	// From here on the provider considers the auth_req_id redeemed.
	res, err := c.completeTokenLogin(ctx, resp, scope, authReqID)
	if err != nil {
		c.ciba.finish(authReqID, err)
		return nil, err
	}
	c.ciba.finish(authReqID, errRedeemed)
	return res, nil
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
// claim when present. A response without an ID token is refused.
// The ID token comes from the client's own token request, so an unknown kid refetches the
// provider's JWKS whatever the miss cooldown (fromOwnRequest).
func (c *OpenIDConnectClient) verifyLoginIDToken(ctx context.Context, raw, authReqID, accessToken string) (*AuthenticationResult, error) {
	if raw == "" {
		return nil, &LoginTokenError{Reason: "no id_token (CIBA Core §10.1.1)"}
	}
	opts := []VerifyOption{ExpectAtHashOf(accessToken), fromOwnRequest()}
	if authReqID != "" {
		opts = append(opts, ExpectAuthReqID(authReqID))
	}
	res, err := c.VerifyIDToken(ctx, raw, opts...)
	if err != nil {
		return nil, &LoginTokenError{Reason: "id_token rejected", Err: err}
	}
	return res, nil
}

// WaitForCIBA polls the token endpoint for resp until the user decides, the request expires or
// ctx ends (CIBA Core §7.3, §10.1, §11), and returns the tokens as CheckCIBAStatus does.
//
// The first poll is sent Interval after resp.ReceivedAt, later polls Interval after the previous
// answer; every slow_down adds 5 s to the interval for all later polls. A
// transport failure, a 5xx or a 429 doubles the wait (at most 1 minute, at least the server's
// Retry-After, RFC 9110 §10.2.3, up to 5 minutes per wait) and counts towards WithMaxFailures.
// A delay (interval, slow_down or Retry-After) that would put the next poll after the request's
// expiry or ctx's deadline ends the wait at once: with the failure that asked for it (the
// *HTTPError, its status and RetryAfter as the server gave it), with a *LoginExpiredError after a
// pending answer, or, when ctx's deadline comes first, with an error matching
// context.DeadlineExceeded and the last answer; in ping mode a pending request still waits for
// the notification. At the request's expiry the wait ends without another poll with a
// *LoginExpiredError (errors.Is(err, ErrLoginExpired)), which is also what the provider's
// expired_token answer becomes. Any other error answer ends the wait at once. When ctx ends,
// during a wait or a poll, ctx.Err() is returned at once. In ping mode a notification received
// by CIBANotificationHandler triggers a poll at once, whatever the interval.
//
// Each auth_req_id may have one waiter at a time; a second concurrent WaitForCIBA for the same
// auth_req_id fails with a *RequestError.
func (c *OpenIDConnectClient) WaitForCIBA(ctx context.Context, resp *CIBAResponse, opts ...Option) (*LoginResult, error) {
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
