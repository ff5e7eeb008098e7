package onesoidc

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// LoginIncompleteError reports a login that the user approved and the provider completed — it
// issued tokens — but that could not be completed here, because what came back failed
// validation: the ID token of a CIBA or RFC 8628 QR login missing or refused (CIBA Core §10.1.1,
// OpenID Connect Core 1.0 §3.1.3.7), or the access token of an ONES QR login refused at
// introspection (RFC 7662 §2.2). The tokens are never returned. The provider considers them
// handed out, so they are revoked (RFC 7009 §2.1): the refresh token, then the access token.
// The login request has ended; a new one is needed.
//
// Err says why the login failed: errors.As finds the *LoginTokenError and the
// *ValidationError under it, and errors.Is the validation sentinel (ErrUnknownKey ...).
type LoginIncompleteError struct {
	// Err is why the tokens were refused.
	Err error
	// Revoked reports whether every token was revoked at the provider.
	Revoked bool
	// RevokeErr is the first failed revocation, if any (a *ConfigError when the provider has no
	// revocation endpoint); the tokens it concerns stay valid until they expire.
	RevokeErr error
}

// Error says that the login was approved but not completed, why, and what became of its tokens.
func (e *LoginIncompleteError) Error() string {
	s := "onesoidc: login approved but could not be completed: " + causeText(e.Err)
	if e.Revoked {
		return s + "; its tokens were revoked"
	}
	if e.RevokeErr != nil {
		return s + "; revoking its tokens failed, they stay valid at the provider until they expire: " + causeText(e.RevokeErr)
	}
	return s + "; its tokens were not revoked"
}

// Unwrap returns Err.
func (e *LoginIncompleteError) Unwrap() error { return e.Err }

// revokeTimeout bounds the revocations of an incomplete login. They run even when the caller's
// context has ended: the tokens were issued whether or not the caller still waits.
const revokeTimeout = 10 * time.Second

// completeTokenLogin turns the token response of a redeemed CIBA or RFC 8628 poll
// into a LoginResult: it decodes the response (RFC 6749 §5.1) and validates its ID token
// (verifyLoginIDToken, with authReqID for CIBA, "" for RFC 8628). Tokens of a response that fails
// either step are revoked (abandonLogin).
func (c *OpenIDConnectClient) completeTokenLogin(ctx context.Context, resp *response, scope, authReqID string) (*LoginResult, error) {
	tok, tr, err := c.parseTokenResponse(resp, scope)
	if err != nil {
		// The provider issued tokens even if the answer is unusable: revoke what it names.
		return nil, c.abandonLogin(ctx, issuedTokens(resp.body), err)
	}
	id, err := c.completeLogin(ctx, tok, func(ctx context.Context) (*AuthenticationResult, error) {
		return c.verifyLoginIDToken(ctx, tr.IDToken, authReqID, tok.AccessToken)
	})
	if err != nil {
		return nil, err
	}
	return &LoginResult{Token: tok, IDToken: tr.IDToken, Scope: tr.Scope, AuthReqID: authReqID, Auth: id}, nil
}

// issuedToken is a token to revoke and its token_type_hint (RFC 7009 §2.1).
type issuedToken struct{ token, hint string }

// issuedTokens returns the tokens that a token response names, as far as it can be read: the
// string value of each top-level member named refresh_token or access_token without regard to
// case, each once, refresh tokens first. An answer refused for ambiguous member names
// ("access_token" twice, or "ACCESS_TOKEN" beside it) thus names every token it may have
// issued, not only the one encoding/json would have read.
func issuedTokens(body []byte) []issuedToken {
	var out []issuedToken
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			break
		}
		name, _ := t.(string)
		var v any
		if dec.Decode(&v) != nil {
			break
		}
		s, _ := v.(string)
		for _, hint := range [...]string{"refresh_token", "access_token"} {
			if it := (issuedToken{s, hint}); s != "" && strings.EqualFold(name, hint) && !slices.Contains(out, it) {
				out = append(out, it)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b issuedToken) int { return strings.Compare(b.hint, a.hint) }) // refresh tokens first
	return out
}

// completeLogin validates what a login request returned (validate), once the provider has
// handed out tok for it: a CIBA or RFC 8628 poll, or an approved ONES QR login. A failure that
// ends the request (endsRequest: the tokens were refused) revokes tok's refresh and access
// tokens (abandonLogin); a failure that leaves the request open (a temporary failure of the ONES
// QR introspection, which the next poll retries) is returned as it is. Every login flow goes
// through here, so that redeemed tokens are never dropped silently.
func (c *OpenIDConnectClient) completeLogin(ctx context.Context, tok *oauth2.Token, validate func(context.Context) (*AuthenticationResult, error)) (*AuthenticationResult, error) {
	id, err := validate(ctx)
	if err == nil || !endsRequest(err) {
		return id, err
	}
	return nil, c.abandonLogin(ctx, []issuedToken{{tok.RefreshToken, "refresh_token"}, {tok.AccessToken, "access_token"}}, err)
}

// abandonLogin revokes the tokens of a login that failed with err (RFC 7009 §2.1; "" for a
// token that was not issued), best effort within revokeTimeout even when ctx has ended, and
// returns the *LoginIncompleteError that reports them.
func (c *OpenIDConnectClient) abandonLogin(ctx context.Context, tokens []issuedToken, err error) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revokeTimeout)
	defer cancel()
	var revokeErr error
	for _, t := range tokens {
		if t.token == "" {
			continue
		}
		if rerr := c.RevokeToken(rctx, t.token, t.hint); rerr != nil && revokeErr == nil {
			revokeErr = rerr
		}
	}
	le := &LoginIncompleteError{Err: err, Revoked: revokeErr == nil, RevokeErr: revokeErr}
	c.logger.WarnContext(ctx, "onesoidc: approved login refused; its tokens were revoked if possible",
		"error", err, "revoked", le.Revoked, "revoke_error", revokeErr)
	return le
}
