package onesoidc

import (
	"context"
	"errors"
	"net/http"
	"strings"
)

// authResultKey is the context key of the AuthenticationResult stored by RequireToken.
type authResultKey struct{}

// RequireToken returns middleware that lets a request through to next only with a valid bearer
// token (RFC 6750 §2.1) in its Authorization header, validated with ValidateToken and opts (by
// default ID tokens and JWT access tokens whose audience is the client id; a resource server
// passes ExpectAudience with its resource identifier, and then accepts JWT access tokens for it
// only, never ID tokens). next finds the result with AuthenticationFromContext. Other requests
// get 401 with a WWW-Authenticate challenge (RFC 6750 §3): `Bearer` alone when there is no bearer
// token, `Bearer error="invalid_token"` for a token that fails validation, and 400
// `error="invalid_request"` for a malformed Authorization header. When the provider's keys cannot
// be fetched it answers 503. The token is never echoed or logged. Options of both kinds of token
// (ErrConflictingVerifyOptions, see VerifyOption) are a programming error: it is logged once,
// here, and every request is answered 500.
func (c *OpenIDConnectClient) RequireToken(next http.Handler, opts ...VerifyOption) http.Handler {
	if _, _, err := applyOptions(modeAny, opts); err != nil {
		c.logger.Error("onesoidc: RequireToken: unusable options, every request will be answered 500", "error", err)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, status := bearerToken(r)
		switch status {
		case http.StatusUnauthorized:
			bearerChallenge(w, http.StatusUnauthorized, "", "")
			return
		case http.StatusBadRequest:
			bearerChallenge(w, http.StatusBadRequest, "invalid_request", "malformed Authorization header")
			return
		}
		res, err := c.ValidateToken(r.Context(), token, opts...)
		if err != nil {
			var ve *ValidationError
			reason := "invalid"
			if errors.As(err, &ve) {
				reason = string(ve.Reason)
			}
			c.logger.DebugContext(r.Context(), "onesoidc: bearer token refused", "reason", reason, "error", err)
			if errors.Is(err, ErrKeySetUnavailable) {
				w.Header().Set("Retry-After", "5")
				http.Error(w, "authorization temporarily unavailable", http.StatusServiceUnavailable)
				return
			}
			bearerChallenge(w, http.StatusUnauthorized, "invalid_token", describeReason(reason))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), authResultKey{}, res)))
	})
}

// AuthenticationFromContext returns the result RequireToken stored for the request.
func AuthenticationFromContext(ctx context.Context) (*AuthenticationResult, bool) {
	res, ok := ctx.Value(authResultKey{}).(*AuthenticationResult)
	return res, ok && res != nil
}

// bearerToken extracts the token of "Authorization: Bearer <token>"; status is 0 on success,
// 401 without any bearer credentials and 400 for a malformed header.
func bearerToken(r *http.Request) (string, int) {
	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		return "", http.StatusUnauthorized
	}
	if len(values) > 1 {
		return "", http.StatusBadRequest
	}
	scheme, token, _ := strings.Cut(values[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", http.StatusUnauthorized // another scheme: no error code (RFC 6750 §3.1)
	}
	token = strings.TrimLeft(token, " ")
	if token == "" || strings.ContainsAny(token, " \t") {
		return "", http.StatusBadRequest
	}
	return token, 0
}

// bearerChallenge answers with a WWW-Authenticate: Bearer challenge (RFC 6750 §3).
func bearerChallenge(w http.ResponseWriter, status int, code, description string) {
	challenge := "Bearer"
	if code != "" {
		challenge += ` error="` + code + `"`
		if description != "" {
			challenge += `, error_description="` + description + `"`
		}
	}
	w.Header().Set("WWW-Authenticate", challenge)
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, http.StatusText(status), status)
}

// describeReason is a fixed, token-free error_description per reason.
func describeReason(reason string) string {
	switch ValidationReason(reason) {
	case ReasonExpired:
		return "the token expired"
	case ReasonNotYetValid:
		return "the token is not valid yet"
	case ReasonInvalidAudience:
		return "the token is not meant for this service"
	case ReasonInvalidSignature, ReasonUnknownKey, ReasonUnsupportedAlgorithm:
		return "the token signature is not valid"
	}
	return "the token is not valid"
}
