package onesoidc

import (
	"context"
	"errors"
	"net/http"
	"strings"
)

// authResultKey is the context key of the AuthenticationResult stored by RequireToken.
type authResultKey struct{}

// RequireToken returns middleware that lets a request through to next only with a valid access
// token as bearer credential (RFC 6750 §2.1) in its Authorization header: an RFC 9068 JWT access
// token (typ at+jwt) validated as VerifyAccessToken does, or an opaque token validated by
// introspection (RFC 7662; see ValidateToken), with opts. The audience is ExpectAudience, by
// default the client id; ExpectScope asks for scopes. An ID token is never a bearer credential
// (RFC 8725 §3.11; OpenID Connect Core §2 makes it the client's proof of the login, not an API
// key) unless InsecureAcceptIDTokens is given. next finds the result with
// AuthenticationFromContext. Other requests get 401 with a WWW-Authenticate challenge (RFC 6750
// §3): `Bearer` alone when there is no bearer token, `Bearer error="invalid_token"` for a token
// that fails validation, 403 `error="insufficient_scope"` for a token without an ExpectScope
// scope, and 400 `error="invalid_request"` for a malformed Authorization header. When the
// provider's keys cannot be fetched or its introspection endpoint cannot be asked (also when
// WithMaxIntrospections introspections stay in flight for as long as the request may wait), it
// answers 503. The token is never echoed or logged. Options of both kinds of token
// (see VerifyOption) are a programming error: it is logged once,
// here, and every request is answered 500.
func (c *OpenIDConnectClient) RequireToken(next http.Handler, opts ...VerifyOption) http.Handler {
	m := modeAccessToken
	if o, _, err := applyOptions(modeAny, opts); err == nil && o.insecureIDTokens {
		m = modeAny
	}
	if _, _, err := applyOptions(m, opts); err != nil {
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
		res, err := c.val.validate(r.Context(), token, m, opts)
		if err != nil {
			var ve *ValidationError
			reason := "invalid"
			if errors.As(err, &ve) {
				reason = string(ve.reason)
			}
			c.logger.DebugContext(r.Context(), "onesoidc: bearer token refused", "reason", reason, "error", err)
			if errors.Is(err, ErrKeySetUnavailable) || errors.Is(err, ErrIntrospectionUnavailable) {
				w.Header().Set("Retry-After", "5")
				http.Error(w, "authorization temporarily unavailable", http.StatusServiceUnavailable)
				return
			}
			if errors.Is(err, ErrInsufficientScope) {
				bearerChallenge(w, http.StatusForbidden, "insufficient_scope", "the token lacks a required scope")
				return
			}
			bearerChallenge(w, http.StatusUnauthorized, "invalid_token", describeReason(reason))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), authResultKey{}, res)))
	})
}

// InsecureAcceptIDTokens makes RequireToken also accept OpenID Connect ID tokens as bearer
// credentials, validated as ValidateToken validates them. It weakens a check: an ID token tells
// its client who logged in, and a service that accepts one lets any client that received it
// call the service in the user's name. It has no effect on ValidateToken, which accepts both
// kinds anyway, and none on VerifyIDToken or VerifyAccessToken.
func InsecureAcceptIDTokens() VerifyOption {
	return func(o *verifyOptions) { o.insecureIDTokens = true }
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
	switch validationReason(reason) {
	case reasonExpired:
		return "the token expired"
	case reasonNotYetValid:
		return "the token is not valid yet"
	case reasonInvalidAudience:
		return "the token is not meant for this service"
	case reasonInactive:
		return "the token is not active"
	case reasonInvalidType:
		return "the token is not an access token"
	case reasonInvalidSignature, reasonUnknownKey, reasonUnsupportedAlgorithm:
		return "the token signature is not valid"
	}
	return "the token is not valid"
}
