package weblogin

import (
	"context"

	"golang.org/x/oauth2"
)

// Refresh renews the tokens of a login on the server (RFC 6749 §6, onesoidc's RefreshToken),
// for an application that keeps them in its own session: call it from a handler that has
// already authenticated that session, never expose it as an endpoint that takes a refresh token
// from the browser (that would redeem any refresh token for anyone: RFC 9700 §4.14.2). The
// refreshed ID token, when the provider sends one, is validated and must name the same subject.
// Refresh the tokens of one session one at a time and keep the result for the requests that
// waited: two refreshes at once redeem one refresh token twice, which a provider that rotates
// refresh tokens refuses, and may answer by revoking the whole grant (RFC 9700 §4.14.2).
//
// Errors are a *Error (Classify): 502 when the provider's answer or its ID token fails
// validation, 410 invalid_grant when the refresh token is no longer valid (log the user in
// again), 503 when the provider cannot be reached. WriteError answers them.
func (h *Handler) Refresh(ctx context.Context, tok *oauth2.Token) (*oauth2.Token, error) {
	out, err := h.client.RefreshToken(ctx, tok)
	if err != nil {
		return nil, Classify(err)
	}
	return out, nil
}
