package weblogin

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"mime"
	"net/http"
	"strings"
)

// NotificationHandler returns the handler of the client notification endpoint for CIBA ping
// mode (CIBA Core §10.2), for a client made with onesoidc.WithCIBAPing: the provider POSTs
// {"auth_req_id"} with the request's client_notification_token as Bearer token. Unlike
// onesoidc's CIBANotificationHandler, it works on every replica that shares the Store: the
// Store holds the SHA-256 of each login's notification token, which is compared in constant time
// (crypto/subtle) with the SHA-256 of the token presented, and a valid ping makes the next status
// request of that login, on whichever replica, poll at once — and wakes status requests waiting
// on any replica (Config.LongPoll).
//
// A login is pinged once: a repeated or replayed ping is answered 204 and causes no further poll
// (the Store keeps the flag, taken, until the login expires).
//
// It answers 204 to a valid ping (also to a repeated one); 401 with WWW-Authenticate to a missing
// or wrong token, and equally to an auth_req_id that is unknown or no longer pending, so that the
// answer tells nothing about which requests exist; 405, 415, 413 and 400 to a request that is not
// a POST of a JSON body of at most 4 KiB with a valid auth_req_id; 503 when the Store is down.
func (h *Handler) NotificationHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, &Error{Status: http.StatusMethodNotAllowed, Code: "invalid_request", Description: "POST required"})
			return
		}
		token, ok := bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", "Bearer")
			writeError(w, &Error{Status: http.StatusUnauthorized, Code: "invalid_token", Description: "bearer token required"})
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			writeError(w, &Error{Status: http.StatusUnsupportedMediaType, Code: "invalid_request", Description: "Content-Type must be application/json"})
			return
		}
		var body struct {
			AuthReqID string `json:"auth_req_id"`
		}
		if e := readBody(w, r, &body, maxNotification, false); e != nil {
			writeError(w, e)
			return
		}
		if body.AuthReqID == "" || len(body.AuthReqID) > 1024 {
			writeError(w, &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: "auth_req_id missing or too long"})
			return
		}
		ctx := r.Context()
		pollKey := hashHex(body.AuthReqID)
		l, err := h.store.LoginByPollKey(ctx, pollKey)
		if err != nil && !errors.Is(err, ErrNotFound) {
			writeError(w, storeError(err))
			return
		}
		want := make([]byte, sha256.Size) // compared against when there is nothing to compare
		if l != nil && len(l.NotifyHash) == sha256.Size {
			want = l.NotifyHash
		}
		got := sha256.Sum256([]byte(token))
		match := subtle.ConstantTimeCompare(got[:], want) == 1
		if l == nil || len(l.NotifyHash) != sha256.Size || !match || l.State != StatePending || !h.now().Before(l.Expiry) {
			h.log.DebugContext(ctx, "weblogin: CIBA notification refused")
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			writeError(w, &Error{Status: http.StatusUnauthorized, Code: "invalid_token", Description: "unknown request or wrong token"})
			return
		}
		if err := h.store.SetPinged(ctx, pollKey, l.Expiry.Sub(h.now())); err != nil {
			writeError(w, storeError(err))
			return
		}
		h.publish(ctx, l)
		w.WriteHeader(http.StatusNoContent)
	})
}

// bearer returns the token of an "Authorization: Bearer" header (RFC 6750 §2.1).
func bearer(r *http.Request) (string, bool) {
	v := r.Header.Values("Authorization")
	if len(v) != 1 {
		return "", false
	}
	scheme, tok, ok := strings.Cut(v[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != "" && len(tok) <= 4096
}

// maxNotification caps a ping body (CIBA Core §10.2: {"auth_req_id"}).
const maxNotification = 4 << 10
