package weblogin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ones-now/onesoidc"
)

// scopeField decodes a scope given as a space-separated string or an array of strings.
type scopeField []string

// UnmarshalJSON accepts a string or an array of strings.
func (s *scopeField) UnmarshalJSON(data []byte) error {
	var one string
	if err := json.Unmarshal(data, &one); err == nil {
		*s = strings.Fields(one)
		return nil
	}
	var list []string
	if err := json.Unmarshal(data, &list); err != nil {
		return errors.New("scope must be a string or an array of strings")
	}
	*s = list
	return nil
}

// startRequest is the body of a start request: the fields of the Rust crate's frontend DTO.
type startRequest struct {
	// HintKind picks the hint parameter (parseHintKind; default
	// login_hint). CIBA only.
	HintKind string `json:"loginHintKind"`
	// UserIdentifier names the user. CIBA only, required there.
	UserIdentifier string `json:"userIdentifier"`
	// SessionID is the ONES QR session a CIBA login comes from (qr_session_id).
	SessionID string `json:"sessionId"`
	// Resource is "idp" or "device" (Config.ResourceIndicators).
	Resource string `json:"resource"`
	// Scope must be a subset of Config.Scope; default Config.Scope.
	Scope scopeField `json:"scope"`
}

// startAnswer is the answer to a start request.
type startAnswer struct {
	Status string `json:"status"`
	// LoginID names the login within the browser's session (not the provider's auth_req_id);
	// status and cancel requests must send it.
	LoginID string `json:"loginId"`
	// BindingCode is shown on the page; the user's phone shows the same (CIBA).
	BindingCode string `json:"bindingCode,omitempty"`
	ExpiresIn   int64  `json:"expiresIn"`
	Interval    int64  `json:"interval"`
	// QRSVG is the QR code to show (QR login), an SVG document.
	QRSVG string `json:"qrSvg,omitempty"`
}

// scopeFor returns the scope of a login: the page's, which must be a subset of Config.Scope
// and hold "openid", or Config.Scope.
func (h *Handler) scopeFor(asked []string) ([]string, *Error) {
	if len(asked) == 0 {
		return slices.Clone(h.scope), nil
	}
	for _, s := range asked {
		if !contains(h.scope, s) {
			return nil, &Error{Status: http.StatusBadRequest, Code: "invalid_scope", Description: "scope " + clip(s, 40) + " is not offered"}
		}
	}
	if !contains(asked, "openid") {
		asked = append([]string{"openid"}, asked...)
	}
	return asked, nil
}

// startCIBA starts a CIBA login for the browser's session (CIBA Core §7.1).
func (h *Handler) startCIBA(w http.ResponseWriter, r *http.Request) {
	var body startRequest
	if e := readJSON(w, r, &body); e != nil {
		writeError(w, e)
		return
	}
	req := onesoidc.CIBARequest{Hint: onesoidc.LoginHint{Kind: onesoidc.HintLogin, Value: body.UserIdentifier}, QRSessionID: body.SessionID}
	if body.UserIdentifier == "" {
		writeError(w, &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: "userIdentifier is required"})
		return
	}
	if body.HintKind != "" {
		kind, err := parseHintKind(body.HintKind)
		if err != nil {
			writeError(w, Classify(err))
			return
		}
		req.Hint.Kind = kind
	}
	scope, e := h.scopeFor(body.Scope)
	if e != nil {
		writeError(w, e)
		return
	}
	req.Scope = scope
	if body.Resource != "" {
		list, ok := h.resources[body.Resource]
		if !ok {
			writeError(w, &Error{Status: http.StatusBadRequest, Code: "invalid_target", Description: "unknown resource " + clip(body.Resource, 40)})
			return
		}
		req.Resource = slices.Clone(list)
	}
	if h.cfg.BindingMessage != nil {
		req.BindingMessage = h.cfg.BindingMessage(r)
	}
	if req.BindingMessage == "" {
		req.BindingMessage = NewBindingCode()
	}
	if h.cfg.PrepareCIBA != nil {
		if err := h.cfg.PrepareCIBA(r, &req); err != nil {
			var we *Error
			if !errors.As(err, &we) {
				we = &Error{Status: http.StatusForbidden, Code: "access_denied", Description: err.Error()}
			}
			writeError(w, we)
			return
		}
		if req.BindingMessage == "" {
			req.BindingMessage = NewBindingCode() // a binding message is always shown
		}
	}
	session := h.ensureSession(w, r)
	l, e := h.reserve(r.Context(), session, KindCIBA)
	if e != nil {
		writeError(w, e)
		return
	}
	resp, err := h.client.MakeCIBARequest(r.Context(), req)
	if err != nil {
		h.unreserve(l)
		h.log.WarnContext(r.Context(), "weblogin: CIBA request failed", "error", err)
		writeError(w, Classify(err))
		return
	}
	if tok := resp.NotificationToken(); tok != "" {
		sum := sha256.Sum256([]byte(tok))
		l.NotifyHash = sum[:]
	}
	l.Binding, l.Scope = req.BindingMessage, resp.Scope
	h.begin(w, r, l, resp.AuthReqID, resp.ExpiresIn, resp.Interval, "")
}

// begin records the provider's request of a reserved login and answers the start: times on the
// handler's clock, which every replica shares.
func (h *Handler) begin(w http.ResponseWriter, r *http.Request, l *Login, authReqID string, expiresIn, interval time.Duration, svg string) {
	received := h.now()
	l.AuthReqID, l.PollKey = authReqID, hashHex(authReqID)
	l.Expiry = received.Add(expiresIn)
	l.KeepUntil = l.Expiry.Add(h.cfg.ResultTTL)
	l.Interval, l.NextPoll = interval, received.Add(interval)
	if err := h.store.UpdateLogin(r.Context(), l, received); err != nil {
		// The request exists at the provider but nobody can poll it: it expires unused.
		h.log.ErrorContext(r.Context(), "weblogin: login state could not be stored", "error", err)
		writeError(w, storeError(err))
		return
	}
	writeJSON(w, http.StatusOK, startAnswer{Status: string(StatePending), LoginID: l.ID, BindingCode: l.Binding,
		ExpiresIn: seconds(l.Expiry.Sub(received)), Interval: seconds(l.Interval), QRSVG: svg})
}

// reserve makes room for a new login of session before the provider is asked, so that a full
// handler refuses without sending anything: 503 with Retry-After when the session or the handler
// is full.
func (h *Handler) reserve(ctx context.Context, session string, kind Kind) (*Login, *Error) {
	now := h.now()
	l := &Login{Session: session, ID: randomString(16), Kind: kind, State: StatePending, Created: now,
		Expiry: now.Add(time.Minute), KeepUntil: now.Add(time.Minute), NextPoll: now.Add(time.Minute)}
	err := h.store.CreateLogin(ctx, l, now, Limits{PerSession: h.cfg.MaxPerSession, Total: h.cfg.MaxPending})
	switch {
	case errors.Is(err, ErrSessionFull):
		return nil, &Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Description: "this browser has too many pending logins; cancel one or try again later", RetryAfter: h.cfg.RetryAfter, Err: err}
	case errors.Is(err, ErrStoreFull):
		h.log.WarnContext(ctx, "weblogin: pending login limit reached, refusing a new login", "limit", h.cfg.MaxPending)
		return nil, &Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Description: "too many logins in progress; try again later", RetryAfter: h.cfg.RetryAfter, Err: err}
	case err != nil:
		h.log.ErrorContext(ctx, "weblogin: login state store failed", "error", err)
		return nil, storeError(err)
	}
	return l, nil
}

// unreserve drops a reservation whose provider request failed.
func (h *Handler) unreserve(l *Login) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.store.DeleteLogin(ctx, l.Session, l.ID); err != nil {
		h.log.Warn("weblogin: reservation could not be dropped; it expires in a minute", "error", err)
	}
}

// bindingAlphabet has no letters or digits that look alike (0/O, 1/I/L).
const bindingAlphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"

// NewBindingCode returns a fresh binding code of 8 random letters and digits in two groups,
// such as "K7QM-2XPA" (about 39 bits): short enough to compare at a glance on both screens
// (CIBA Core §7.1, RFC 10027 §6.1.4), and within the binding message rule of every provider
// (onesoidc.BindingMessagePatternOIDCProvider, 1 to 20 of [a-zA-Z0-9-._+/!?#]).
func NewBindingCode() string {
	const limit = 256 - 256%len(bindingAlphabet) // rejection sampling: no modulo bias
	b := make([]byte, 0, 9)
	var r [16]byte
	for len(b) < 9 {
		_, _ = rand.Read(r[:]) // never fails (crypto/rand)
		for _, x := range r {
			if len(b) == 4 {
				b = append(b, '-')
			}
			if int(x) < limit && len(b) < 9 {
				b = append(b, bindingAlphabet[int(x)%len(bindingAlphabet)])
			}
		}
	}
	return string(b)
}

// parseHintKind parses the name of a hint kind: "login_hint", "login_hint_token" or
// "id_token_hint", also written in camel case ("loginHintToken") or Pascal case ("IdTokenHint"),
// as the Rust crate's frontend sends them.
func parseHintKind(s string) (onesoidc.HintKind, error) {
	switch strings.ToLower(strings.ReplaceAll(s, "_", "")) {
	case "loginhint":
		return onesoidc.HintLogin, nil
	case "loginhinttoken":
		return onesoidc.HintLoginToken, nil
	case "idtokenhint":
		return onesoidc.HintIDToken, nil
	}
	return 0, &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: "unknown loginHintKind"}
}
