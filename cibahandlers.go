package onesoidc

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// maxHandlerBody caps the request bodies of the login page handlers.
const maxHandlerBody = 16 << 10

// CIBALoginOption configures CIBALoginHandler.
type CIBALoginOption func(*cibaLoginConfig)

type cibaLoginConfig struct {
	scope   []string
	prepare func(*http.Request, *CIBARequest) error
}

// WithLoginScope sets the scope requested when the page sends none (default "openid"). Without
// "openid" among scopes the option is ignored, as such a login could not succeed.
func WithLoginScope(scopes ...string) CIBALoginOption {
	return func(c *cibaLoginConfig) {
		if slices.Contains(scopes, "openid") {
			c.scope = slices.Clone(scopes)
		}
	}
}

// WithLoginPrepare sets a function that completes or refuses each CIBA request of the login
// handler before it is sent: set a binding message, ACR values or a requested expiry, or check
// the caller's session. An error answers 400 invalid_request with the error's text as
// description (default: none).
func WithLoginPrepare(f func(r *http.Request, req *CIBARequest) error) CIBALoginOption {
	return func(c *cibaLoginConfig) { c.prepare = f }
}

// scopeList decodes a scope given as a space-separated string or an array of strings.
type scopeList []string

// UnmarshalJSON accepts a string or an array of strings.
func (s *scopeList) UnmarshalJSON(data []byte) error {
	list, err := stringOrList(data, "scope", strings.Fields)
	*s = list
	return err
}

// CIBALoginHandler returns a handler a login page POSTs to in order to start a CIBA login (the
// frontend API of the Rust crate): the JSON body {"loginHintKind", "userIdentifier", "scope",
// "resource", "sessionId"} becomes a MakeCIBARequest with the hint of that kind
// (ParseLoginHintKind; default login_hint), the scope (a string or an array; default
// WithLoginScope), one resource indicator and the QR session id. It answers 200
// {"auth_req_id", "expires_in", "interval"} (seconds).
//
// Errors are JSON {"error", "error_description"}: 405 for a method other than POST, 415 for a
// Content-Type other than JSON, 413 for a body over 16 KiB, 400 invalid_request for malformed
// JSON, unknown fields or an invalid request, 400 with the provider's code for its CIBA Core §13
// errors (unknown_user_id, invalid_binding_message ...), 403 access_denied, 502 server_error
// when the provider refuses the client or answers nonsense, 503 temporarily_unavailable when it
// cannot be reached, 500 server_error when CIBA is not configured.
func (c *OpenIDConnectClient) CIBALoginHandler(opts ...CIBALoginOption) http.Handler {
	cfg := cibaLoginConfig{scope: []string{"openid"}}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			LoginHintKind  string    `json:"loginHintKind"`
			UserIdentifier string    `json:"userIdentifier"`
			Scope          scopeList `json:"scope"`
			Resource       string    `json:"resource"`
			SessionID      string    `json:"sessionId"`
		}
		if !readJSONRequest(w, r, &body) {
			return
		}
		req := CIBARequest{Hint: LoginHint{Value: body.UserIdentifier}, Scope: slices.Clone(cfg.scope), QRSessionID: body.SessionID}
		if body.LoginHintKind != "" {
			kind, err := ParseLoginHintKind(body.LoginHintKind)
			if err != nil {
				c.writeCIBAError(w, r, err)
				return
			}
			req.Hint.Kind = kind
		}
		if len(body.Scope) > 0 {
			req.Scope = body.Scope
		}
		if body.Resource != "" {
			req.Resource = []string{body.Resource}
		}
		if cfg.prepare != nil {
			if err := cfg.prepare(r, &req); err != nil {
				writeJSONError(w, http.StatusBadRequest, "invalid_request", err.Error())
				return
			}
		}
		resp, err := c.MakeCIBARequest(r.Context(), req)
		if err != nil {
			c.writeCIBAError(w, r, err)
			return
		}
		writeJSONBody(w, http.StatusOK, struct {
			AuthReqID string `json:"auth_req_id"`
			ExpiresIn int64  `json:"expires_in"`
			Interval  int64  `json:"interval"`
		}{resp.AuthReqID, durationSeconds(resp.ExpiresIn), durationSeconds(resp.Interval)})
	})
}

// CIBAStatusHandler returns a handler a login page POSTs {"authRequestId"} to while the user
// decides. For a request this client started (and still holds), it polls the provider with
// CheckCIBAStatus, at most once per interval however often the page asks:
//
//   - 200 with the tokens {"access_token", "token_type", "expires_in", "id_token",
//     "refresh_token", "scope"} when the user approved;
//   - 202 {"status": "pending", "interval"} while the user has not decided (also for slow_down,
//     and for a call sooner than the interval, which sends nothing);
//   - 403 access_denied when the user refused;
//   - 410 expired_token when the request expired (at the provider or on the local clock), and
//     410 invalid_grant when its tokens were already handed out (they are handed out once);
//   - 400 with the provider's code for transaction_failed, invalid_grant, invalid_request;
//   - 404 invalid_request for an auth_req_id this client does not hold;
//   - 502, 503, and the request errors (405, 413, 415, 400) as CIBALoginHandler.
//
// The auth_req_id works like a bearer handle to the tokens: serve this handler over TLS, to the
// page that started the login only.
func (c *OpenIDConnectClient) CIBAStatusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			AuthRequestID string `json:"authRequestId"`
		}
		if !readJSONRequest(w, r, &body) {
			return
		}
		id := body.AuthRequestID
		if err := checkAuthReqID(id); err != nil {
			c.writeCIBAError(w, r, err)
			return
		}
		now := c.now()
		known, ok, interval := c.ciba.pace(id, now)
		if !known {
			if _, err := c.ciba.before(id, now); err != nil {
				c.writeCIBAError(w, r, err)
				return
			}
			writeJSONError(w, http.StatusNotFound, "invalid_request", "unknown auth request")
			return
		}
		if !ok {
			writePending(w, interval)
			return
		}
		res, err := c.CheckCIBAStatus(r.Context(), id)
		switch {
		case errors.Is(err, ErrAuthorizationPending), errors.Is(err, errPollInFlight):
			writePending(w, interval)
		case errors.Is(err, ErrSlowDown):
			writePending(w, interval+SlowDownStep)
		case err != nil:
			c.writeCIBAError(w, r, err)
		default:
			writeTokens(w, res.Token, res.IDToken, res.Scope)
		}
	})
}

// RefreshHandler returns a handler a page POSTs {"grant_type": "refresh_token",
// "refresh_token"} to for new tokens (RFC 6749 §6, through RefreshToken). It answers 200 with
// the tokens as CIBAStatusHandler does, 400 unsupported_grant_type for another grant type, 400
// invalid_grant when the provider refuses the refresh token, and the errors of
// CIBALoginHandler otherwise.
func (c *OpenIDConnectClient) RefreshHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			GrantType    string `json:"grant_type"`
			RefreshToken string `json:"refresh_token"`
		}
		if !readJSONRequest(w, r, &body) {
			return
		}
		if body.GrantType != "refresh_token" {
			writeJSONError(w, http.StatusBadRequest, "unsupported_grant_type", `grant_type must be "refresh_token"`)
			return
		}
		if err := checkToken("refresh_token", body.RefreshToken, maxHintLength); err != nil {
			c.writeCIBAError(w, r, err)
			return
		}
		tok, err := c.RefreshToken(r.Context(), &oauth2.Token{RefreshToken: body.RefreshToken})
		if err != nil {
			c.writeCIBAError(w, r, err)
			return
		}
		idToken, _ := tok.Extra("id_token").(string)
		scope, _ := tok.Extra("scope").(string)
		writeTokens(w, tok, idToken, scope)
	})
}

// MountCIBAHandlers registers the login page handlers on mux: prefix+"/login"
// (CIBALoginHandler with opts), prefix+"/status" (CIBAStatusHandler) and prefix+"/refresh"
// (RefreshHandler). prefix is a path such as "/auth" ("" for the root). The client notification
// endpoint of ping mode is not mounted: register CIBANotificationHandler at the URL registered
// with the provider.
func (c *OpenIDConnectClient) MountCIBAHandlers(mux *http.ServeMux, prefix string, opts ...CIBALoginOption) {
	prefix = strings.TrimSuffix(prefix, "/")
	mux.Handle(prefix+"/login", c.CIBALoginHandler(opts...))
	mux.Handle(prefix+"/status", c.CIBAStatusHandler())
	mux.Handle(prefix+"/refresh", c.RefreshHandler())
}

// readJSONRequest checks method, Content-Type and size of a handler request and decodes its JSON
// body into v, rejecting unknown fields. It answers the error itself and reports false on any
// problem.
func readJSONRequest(w http.ResponseWriter, r *http.Request, v any) bool {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSONError(w, http.StatusMethodNotAllowed, "invalid_request", "POST required")
		return false
	}
	if !isJSON(r.Header.Get("Content-Type")) {
		writeJSONError(w, http.StatusUnsupportedMediaType, "invalid_request", "Content-Type must be application/json")
		return false
	}
	if status, msg := decodeJSONBody(w, r, maxHandlerBody, v, true); status != 0 {
		writeJSONError(w, status, "invalid_request", msg)
		return false
	}
	return true
}

// decodeJSONBody decodes one JSON value of at most limit bytes from r's body into v, rejecting
// unknown fields when strict, and trailing data. It returns 0, or the status and message of the
// problem.
func decodeJSONBody(w http.ResponseWriter, r *http.Request, limit int64, v any, strict bool) (int, string) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	if strict {
		dec.DisallowUnknownFields()
	}
	tooLarge := func(err error) bool {
		var mbe *http.MaxBytesError
		return errors.As(err, &mbe)
	}
	if err := dec.Decode(v); err != nil {
		switch {
		case tooLarge(err):
			return http.StatusRequestEntityTooLarge, "body over " + strconv.FormatInt(limit, 10) + " bytes"
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			return http.StatusBadRequest, sanitize(strings.TrimPrefix(err.Error(), "json: "), 100)
		}
		return http.StatusBadRequest, "malformed JSON body"
	}
	if _, err := dec.Token(); err != io.EOF {
		if tooLarge(err) {
			return http.StatusRequestEntityTooLarge, "body over " + strconv.FormatInt(limit, 10) + " bytes"
		}
		return http.StatusBadRequest, "data after the JSON body"
	}
	return 0, ""
}

// writeCIBAError answers err as JSON {"error", "error_description"} with the status that the
// handler docs list. Descriptions never include tokens: the errors of this package hold none.
func (c *OpenIDConnectClient) writeCIBAError(w http.ResponseWriter, r *http.Request, err error) {
	var (
		re   *RequestError
		oe   *OAuthError
		he   *HTTPError
		te   *CIBATokenError
		conf *ConfigError
	)
	switch {
	case errors.As(err, &re):
		writeJSONError(w, http.StatusBadRequest, "invalid_request", re.Field+": "+re.Reason)
	case errors.Is(err, ErrCIBARedeemed):
		writeJSONError(w, http.StatusGone, "invalid_grant", "the tokens of this request were already handed out")
	case errors.Is(err, ErrExpiredToken):
		writeJSONError(w, http.StatusGone, "expired_token", "the request expired")
	case errors.Is(err, ErrAccessDenied):
		writeJSONError(w, http.StatusForbidden, "access_denied", "the user refused")
	case errors.As(err, &oe):
		switch oe.Code {
		case "invalid_client", "unauthorized_client", "unsupported_grant_type", "invalid_scope":
			c.logger.WarnContext(r.Context(), "onesoidc: provider refused the client", "error", err)
			writeJSONError(w, http.StatusBadGateway, "server_error", "the provider refused this client ("+oe.Code+")")
		case "temporarily_unavailable", "server_error":
			writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the provider is unavailable")
		default:
			writeJSONError(w, http.StatusBadRequest, oe.Code, oe.Description)
		}
	case errors.As(err, &te):
		c.logger.WarnContext(r.Context(), "onesoidc: CIBA token response rejected", "error", err)
		writeJSONError(w, http.StatusBadGateway, "server_error", "the provider's token response was rejected")
	case errors.As(err, &he):
		c.logger.WarnContext(r.Context(), "onesoidc: provider exchange failed", "error", err)
		if he.Temporary() {
			if he.RetryAfter > 0 {
				w.Header().Set("Retry-After", strconv.FormatInt(durationSeconds(he.RetryAfter), 10))
			}
			writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the provider cannot be reached")
			return
		}
		writeJSONError(w, http.StatusBadGateway, "server_error", "the provider answered unexpectedly")
	case errors.As(err, &conf) && conf.Field == "id_token":
		c.logger.WarnContext(r.Context(), "onesoidc: refreshed ID token rejected", "error", err)
		writeJSONError(w, http.StatusBadGateway, "server_error", "the provider's token response was rejected")
	case errors.As(err, &conf):
		c.logger.ErrorContext(r.Context(), "onesoidc: CIBA handler misconfigured", "error", err)
		writeJSONError(w, http.StatusInternalServerError, "server_error", "login is not configured")
	case r.Context().Err() != nil:
		writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "request cancelled")
	default:
		c.logger.ErrorContext(r.Context(), "onesoidc: CIBA handler failed", "error", err)
		writeJSONError(w, http.StatusInternalServerError, "server_error", "internal error")
	}
}

func writePending(w http.ResponseWriter, interval time.Duration) {
	writeJSONBody(w, http.StatusAccepted, struct {
		Status   string `json:"status"`
		Interval int64  `json:"interval"`
	}{"pending", durationSeconds(interval)})
}

func writeTokens(w http.ResponseWriter, tok *oauth2.Token, idToken, scope string) {
	writeJSONBody(w, http.StatusOK, struct {
		AccessToken  string `json:"access_token"`
		TokenType    string `json:"token_type"`
		ExpiresIn    int64  `json:"expires_in"`
		IDToken      string `json:"id_token,omitempty"`
		RefreshToken string `json:"refresh_token,omitempty"`
		Scope        string `json:"scope,omitempty"`
	}{tok.AccessToken, "Bearer", tok.ExpiresIn, idToken, tok.RefreshToken, scope})
}

func writeJSONError(w http.ResponseWriter, status int, code, desc string) {
	writeJSONBody(w, status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{code, sanitize(desc, 256)})
}

func writeJSONBody(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(v)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// durationSeconds rounds d up to whole seconds.
func durationSeconds(d time.Duration) int64 { return int64((d + time.Second - 1) / time.Second) }
