package weblogin

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/ones-now/onesoidc"
)

// Error is an answer of the handler that is not a success, and the error of Refresh: an HTTP
// status and the JSON body {"error", "error_description"} (RFC 6749 §5.2 names). Descriptions
// never hold a token, a cookie or an auth_req_id.
type Error struct {
	// Status is the HTTP status.
	Status int
	// Code is the "error" member, such as "access_denied" or "temporarily_unavailable".
	Code string
	// Description is the "error_description" member.
	Description string
	// RetryAfter, when positive, is sent as Retry-After.
	RetryAfter time.Duration
	// Err is the underlying error, if any; it is never sent to the browser.
	Err error
}

// Error returns "weblogin: <status> <code>: <description>".
func (e *Error) Error() string {
	s := "weblogin: " + strconv.Itoa(e.Status) + " " + e.Code + ": " + e.Description
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// WriteError answers err as JSON {"error", "error_description"}: a *Error (anywhere in the
// chain) with its status, anything else as Classify maps it. Applications use it to answer the
// errors of Refresh.
func WriteError(w http.ResponseWriter, err error) {
	writeError(w, Classify(err))
}

func writeError(w http.ResponseWriter, e *Error) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(seconds(e.RetryAfter), 10))
	}
	writeJSON(w, e.Status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{e.Code, clip(e.Description, 200)})
}

// Classify maps an error of the SDK or of a Store to the answer a browser gets:
//
//   - a *Error: itself;
//   - the user refused (access_denied, QR status "denied"): 403; the request expired or ended
//     (expired_token, a redeemed or finished request, another QR status): 410;
//   - other OAuth errors of the provider about the request (unknown_user_id, invalid_binding_message,
//     invalid_request ...): 400 with the provider's code;
//   - the provider refused this client (invalid_client ...), answered nonsense, or sent a token
//     or an ID token that fails validation — at login or at refresh: 502 server_error; an
//     approved login that could not be completed (*onesoidc.LoginIncompleteError, its tokens
//     revoked) is 502 whatever the cause, never a temporary failure to retry;
//   - the provider or the Store cannot be reached, or the provider is overloaded: 503
//     temporarily_unavailable with Retry-After;
//   - a *onesoidc.RequestError: 400 invalid_request;
//   - anything else: 500 server_error.
func Classify(err error) *Error {
	var (
		we   *Error
		re   *onesoidc.RequestError
		oe   *onesoidc.OAuthError
		he   *onesoidc.HTTPError
		te   *onesoidc.LoginTokenError
		ve   *onesoidc.ValidationError
		conf *onesoidc.ConfigError
		qs   *onesoidc.QRStatusError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &we):
		return we
	case errors.As(err, new(*onesoidc.LoginIncompleteError)):
		// Before the causes below: whatever failed, the login has ended and its tokens are revoked.
		return &Error{Status: http.StatusBadGateway, Code: "server_error",
			Description: "the login was approved but could not be completed; start a new login", Err: err}
	case errors.Is(err, onesoidc.ErrAccessDenied):
		return &Error{Status: http.StatusForbidden, Code: "access_denied", Description: "the user refused the login", Err: err}
	case errors.Is(err, onesoidc.ErrLoginExpired):
		return &Error{Status: http.StatusGone, Code: "expired_token", Description: "the login expired", Err: err}
	case errors.Is(err, onesoidc.ErrLoginFinished):
		return &Error{Status: http.StatusGone, Code: "invalid_grant", Description: "the login already ended", Err: err}
	case errors.Is(err, onesoidc.ErrKeySetUnavailable):
		return &Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Description: "the provider's keys cannot be fetched", RetryAfter: 5 * time.Second, Err: err}
	case errors.As(err, &qs):
		return &Error{Status: http.StatusGone, Code: "login_ended", Description: "the QR login ended with status " + clip(qs.Status, 40), Err: err}
	case errors.As(err, &te), errors.As(err, &ve):
		return &Error{Status: http.StatusBadGateway, Code: "server_error", Description: "the provider's tokens failed validation", Err: err}
	case errors.As(err, &conf) && conf.Field == "id_token":
		return &Error{Status: http.StatusBadGateway, Code: "server_error", Description: "the provider's tokens failed validation", Err: err}
	case errors.As(err, &oe):
		switch oe.Code {
		case "invalid_client", "unauthorized_client", "unsupported_grant_type", "invalid_scope":
			return &Error{Status: http.StatusBadGateway, Code: "server_error", Description: "the provider refused this application (" + oe.Code + ")", Err: err}
		case "temporarily_unavailable", "server_error":
			return &Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Description: "the provider is unavailable", RetryAfter: 5 * time.Second, Err: err}
		case "invalid_grant":
			return &Error{Status: http.StatusGone, Code: "invalid_grant", Description: "the provider no longer knows this login or grant", Err: err}
		}
		return &Error{Status: http.StatusBadRequest, Code: clip(oe.Code, 40), Description: clip(oe.Description, 200), Err: err}
	case errors.As(err, &he):
		if he.Temporary() {
			ra := he.RetryAfter
			if ra <= 0 {
				ra = 5 * time.Second
			}
			return &Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Description: "the provider cannot be reached", RetryAfter: ra, Err: err}
		}
		return &Error{Status: http.StatusBadGateway, Code: "server_error", Description: "the provider answered unexpectedly", Err: err}
	case errors.As(err, &re):
		return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: re.Field + ": " + re.Reason, Err: err}
	case errors.Is(err, ErrNotFound):
		return &Error{Status: http.StatusNotFound, Code: "not_found", Description: "no such login in this session", Err: err}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Description: "the request was cancelled or timed out", RetryAfter: 5 * time.Second, Err: err}
	case errors.As(err, &conf):
		return &Error{Status: http.StatusInternalServerError, Code: "server_error", Description: "login is not configured", Err: err}
	}
	return &Error{Status: http.StatusInternalServerError, Code: "server_error", Description: "internal error", Err: err}
}

// storeError is the answer when the Store fails: the state of logins cannot be read or kept.
func storeError(err error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable",
		Description: "the login state store is unavailable", RetryAfter: 5 * time.Second, Err: err}
}
