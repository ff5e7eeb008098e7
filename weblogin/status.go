package weblogin

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/ones-now/onesoidc"
)

// statusRequest is the body of status and cancel requests: the loginId the start answered, which
// names a login of the browser's own session (required).
type statusRequest struct {
	LoginID string `json:"loginId"`
	// AuthRequestID is accepted for pages written for the Rust crate, which send the handle
	// their start request got as authRequestId. It is looked up as a loginId of the browser's
	// own session, never as a provider auth_req_id: a value from another session finds nothing.
	AuthRequestID string `json:"authRequestId"`
}

func (b *statusRequest) id() string {
	if b.LoginID != "" {
		return b.LoginID
	}
	return b.AuthRequestID
}

// statusAnswer is the answer of the status endpoint while a login is pending or once approved.
// It never holds a token.
type statusAnswer struct {
	Status      string `json:"status"`
	LoginID     string `json:"loginId"`
	BindingCode string `json:"bindingCode,omitempty"`
	ExpiresIn   int64  `json:"expiresIn,omitempty"`
	Interval    int64  `json:"interval,omitempty"`
	// Name is the user's display name (preferred_username), once approved, if known.
	Name string `json:"name,omitempty"`
}

var errNoSession = &Error{Status: http.StatusNotFound, Code: "not_found", Description: "no login in this browser session"}

// findLogin returns the login of the request's session that body names. A login is found only
// with both the session cookie and its loginId, which only the page that started it knows: a
// session cookie planted in a victim's browser (session fixation) does not let the planter
// collect the victim's login.
func (h *Handler) findLogin(ctx context.Context, sessions []string, kind Kind, body *statusRequest) (*Login, *Error) {
	if len(sessions) == 0 {
		return nil, errNoSession
	}
	id := body.id()
	if id == "" {
		return nil, &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: "loginId is required"}
	}
	for _, session := range sessions {
		l, err := h.store.GetLogin(ctx, session, id)
		switch {
		case errors.Is(err, ErrNotFound) || (err == nil && l.Kind != kind):
			continue
		case err != nil:
			return nil, storeError(err)
		}
		return l, nil
	}
	return nil, errNoSession
}

// requestedLogin reads a status or cancel request and finds its login, answering the error
// itself when there is none.
func (h *Handler) requestedLogin(w http.ResponseWriter, r *http.Request, kind Kind) (*Login, bool) {
	var body statusRequest
	if e := readJSON(w, r, &body); e != nil {
		writeError(w, e)
		return nil, false
	}
	l, e := h.findLogin(r.Context(), h.sessions(r), kind, &body)
	if e != nil {
		writeError(w, e)
		return nil, false
	}
	return l, true
}

// status answers the state of the session's login, polling the provider when a poll is due
// (at most one poll in flight across all replicas, at most one per interval, at once after a
// ping) and handing an approved result to Config.OnLogin.
func (h *Handler) status(w http.ResponseWriter, r *http.Request, kind Kind) {
	l, ok := h.requestedLogin(w, r, kind)
	if !ok {
		return
	}
	ctx := r.Context()
	var wake <-chan struct{}
	if h.cfg.LongPoll > 0 && l.PollKey != "" && l.State == StatePending {
		if release, ok := h.waiters.add(l.Session + ":" + l.ID); ok {
			defer release()
			ch, unsubscribe, err := h.store.Subscribe(ctx, l.PollKey)
			if err != nil {
				writeError(w, storeError(err))
				return
			}
			defer unsubscribe()
			wake = ch
		}
	}
	deadline := h.now().Add(h.cfg.LongPoll)
	for first := true; ; first = false {
		if !first {
			var err error
			if l, err = h.store.GetLogin(ctx, l.Session, l.ID); err != nil {
				writeError(w, loginGone(err))
				return
			}
		}
		switch l.State {
		case StateApproved:
			h.collect(w, r, l)
			return
		case StateCollected:
			writeJSON(w, http.StatusOK, statusAnswer{Status: string(StateApproved), LoginID: l.ID})
			return
		case StateFailed:
			writeError(w, &Error{Status: l.ErrStatus, Code: l.ErrCode, Description: l.ErrDescription})
			return
		}
		now := h.now()
		if l.PollKey != "" {
			if !now.Before(l.Expiry) {
				writeError(w, h.fail(ctx, l, &Error{Status: http.StatusGone, Code: "expired_token", Description: "the login expired"}))
				return
			}
			polled, e := h.pollOnce(ctx, l)
			if e != nil {
				writeError(w, e)
				return
			}
			if polled {
				continue
			}
		}
		next := l.NextPoll
		if l.Expiry.Before(next) {
			next = l.Expiry
		}
		if wake == nil || !now.Before(deadline) {
			writeJSON(w, http.StatusAccepted, statusAnswer{Status: string(StatePending), LoginID: l.ID, BindingCode: l.Binding,
				ExpiresIn: seconds(l.Expiry.Sub(now)), Interval: seconds(l.Interval)})
			return
		}
		if !next.After(now) {
			// Due, but another request or replica holds the poll lease: its answer
			// publishes a wake-up; look again soon in any case.
			next = now.Add(leaseRecheck)
		}
		if deadline.Before(next) {
			next = deadline
		}
		if err := h.sleep(ctx, next, wake); err != nil {
			writeError(w, Classify(err))
			return
		}
	}
}

// maxWaitersPerLogin is the most status requests of one login that wait (Config.LongPoll) on one
// replica at a time; more answer at once. A page has one status request open at a time; the
// second slot is for a request the browser gave up on before the server noticed.
const maxWaitersPerLogin = 2

// waiterCounts counts the status requests waiting for each login on this replica, so that one
// browser cannot hold any number of requests (each a goroutine, a subscription and a timer)
// with one login.
type waiterCounts struct {
	mu sync.Mutex
	n  map[string]int
}

// add takes a waiting slot of login key; it reports false when maxWaitersPerLogin are taken, and
// otherwise returns the function that gives the slot back.
func (c *waiterCounts) add(key string) (func(), bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[key] >= maxWaitersPerLogin {
		return nil, false
	}
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[key]++
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.n[key]--; c.n[key] <= 0 {
			delete(c.n, key)
		}
	}, true
}

// sleep waits until at on the handler's clock (read every 250 ms, so that a clock injected by
// tests is followed), a wake-up, or the end of ctx.
func (h *Handler) sleep(ctx context.Context, at time.Time, wake <-chan struct{}) error {
	for {
		d := at.Sub(h.now())
		if d <= 0 {
			return nil
		}
		t := time.NewTimer(min(d, 250*time.Millisecond))
		select {
		case <-t.C:
		case <-wake:
			t.Stop()
			return nil
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

func loginGone(err error) *Error {
	if errors.Is(err, ErrNotFound) {
		return &Error{Status: http.StatusGone, Code: "cancelled", Description: "the login was cancelled", Err: err}
	}
	return storeError(err)
}

// pollOnce polls the provider for l if this replica gets the poll lease and a poll is due (its
// interval passed, or a ping came). It reports whether the login may have changed.
func (h *Handler) pollOnce(ctx context.Context, l *Login) (bool, *Error) {
	owner := h.owner + "." + randomString(8)
	got, err := h.store.AcquireLease(ctx, l.PollKey, owner, DefaultLeaseTTL)
	if err != nil {
		return false, storeError(err)
	}
	if !got {
		return false, nil
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := h.store.ReleaseLease(rctx, l.PollKey, owner); err != nil {
			h.log.WarnContext(ctx, "weblogin: poll lease not released; it expires by itself", "error", err)
		}
	}()
	cur, err := h.store.GetLogin(ctx, l.Session, l.ID)
	if err != nil {
		return false, loginGone(err)
	}
	if cur.State != StatePending {
		return true, nil
	}
	now := h.now()
	if now.Before(cur.NextPoll) {
		pinged, err := h.store.TakePinged(ctx, cur.PollKey)
		if err != nil {
			return false, storeError(err)
		}
		if !pinged {
			return false, nil
		}
	}
	// The poll is not cancelled with the browser's request: an answer lost on the way would
	// leave redeemed tokens nobody holds, and the auth_req_id could not be polled again.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultPollTimeout)
	defer cancel()
	var res *onesoidc.LoginResult
	if cur.Kind == KindQR {
		res, err = h.client.CheckQRStatus(pctx, cur.AuthReqID)
	} else {
		res, err = h.client.CheckCIBAStatus(pctx, cur.AuthReqID)
	}
	now = h.now()
	var re *onesoidc.RequestError
	switch {
	case err == nil:
		return true, h.finish(pctx, cur, res)
	case errors.Is(err, onesoidc.ErrAuthorizationPending):
		cur.NextPoll = now.Add(cur.Interval)
	case errors.Is(err, onesoidc.ErrSlowDown):
		cur.Interval += 5 * time.Second // RFC 8628 §3.5
		cur.NextPoll = now.Add(cur.Interval)
	case errors.As(err, &re) && re.Field == "auth_req_id" && !errors.Is(err, onesoidc.ErrLoginFinished):
		return false, nil // another poll of this process is in flight
	default:
		e := Classify(err)
		if e.Status == http.StatusServiceUnavailable {
			// The provider's trouble: the login stays pending, the next poll after the interval.
			h.log.WarnContext(ctx, "weblogin: poll failed", "flow", string(cur.Kind), "error", err)
			cur.NextPoll = now.Add(cur.Interval)
			if uerr := h.store.UpdateLogin(pctx, cur, now); uerr != nil {
				return false, loginGone(uerr)
			}
			return false, e
		}
		h.log.InfoContext(ctx, "weblogin: login ended", "flow", string(cur.Kind), "error", err)
		return true, h.fail(pctx, cur, e)
	}
	if err := h.store.UpdateLogin(pctx, cur, now); err != nil {
		return false, loginGone(err)
	}
	h.publish(pctx, cur) // waiters on other replicas learn the new NextPoll
	return true, nil
}

// leaseRecheck is how soon a waiting status request looks again when a poll is due but another
// holds the lease.
const leaseRecheck = 250 * time.Millisecond

// fail records that l ended with e, wakes its waiters and returns e.
func (h *Handler) fail(ctx context.Context, l *Login, e *Error) *Error {
	l.State, l.ErrStatus, l.ErrCode, l.ErrDescription = StateFailed, e.Status, e.Code, e.Description
	if err := h.store.UpdateLogin(ctx, l, h.now()); err != nil && !errors.Is(err, ErrNotFound) {
		h.log.WarnContext(ctx, "weblogin: end of a login could not be stored", "error", err)
	}
	h.publish(ctx, l)
	return e
}

func (h *Handler) publish(ctx context.Context, l *Login) {
	if l.PollKey == "" {
		return
	}
	if err := h.store.Publish(ctx, l.PollKey); err != nil {
		h.log.WarnContext(ctx, "weblogin: wake-up not published", "error", err)
	}
}

// finish seals the tokens of an approved login and stores them for collection. When they
// cannot be stored, they are revoked at the provider (RFC 7009) and the failure is logged and
// answered: an approved login is never silently lost.
func (h *Handler) finish(ctx context.Context, l *Login, res *onesoidc.LoginResult) *Error {
	plain, err := encodeResult(res, l.Kind == KindQR)
	if err == nil {
		l.State = StateApproved
		err = h.store.FinishLogin(ctx, l, h.seal.seal(plain, l), h.now())
	}
	if err != nil {
		revoked := h.revoke(ctx, res)
		h.log.ErrorContext(ctx, "weblogin: approved login could not be stored; its tokens were revoked at the provider",
			"flow", string(l.Kind), "revoked", revoked, "error", err)
		e := &Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable",
			Description: "the login was approved but could not be kept; its tokens were revoked; please start again", Err: err}
		if errors.Is(err, ErrNotFound) {
			e = &Error{Status: http.StatusGone, Code: "cancelled", Description: "the login was cancelled; its tokens were revoked", Err: err}
		}
		return h.fail(ctx, l, e)
	}
	h.publish(ctx, l)
	return nil
}

// revoke revokes the tokens of res at the provider, refresh token first (RFC 7009 §2.1: the
// provider may then revoke the access tokens of its grant too). It reports whether every
// revocation succeeded.
func (h *Handler) revoke(ctx context.Context, res *onesoidc.LoginResult) bool {
	if res == nil || res.Token == nil {
		return true
	}
	ok := true
	if rt := res.Token.RefreshToken; rt != "" {
		if err := h.client.RevokeToken(ctx, rt, "refresh_token"); err != nil {
			ok = false
			h.log.ErrorContext(ctx, "weblogin: refresh token revocation failed", "error", err)
		}
	}
	if at := res.Token.AccessToken; at != "" {
		if err := h.client.RevokeToken(ctx, at, "access_token"); err != nil {
			ok = false
			h.log.ErrorContext(ctx, "weblogin: access token revocation failed", "error", err)
		}
	}
	return ok
}

// collect takes the sealed result of an approved login (one status request gets it), checks
// it, hands it to Config.OnLogin and answers the status with the display name.
func (h *Handler) collect(w http.ResponseWriter, r *http.Request, l *Login) {
	ctx := r.Context()
	sealed, err := h.store.TakeResult(ctx, l.Session, l.ID)
	if err != nil {
		writeError(w, storeError(err))
		return
	}
	if sealed == nil { // another status request collected it
		writeJSON(w, http.StatusOK, statusAnswer{Status: string(StateApproved), LoginID: l.ID})
		return
	}
	res, e := h.openResult(ctx, l, sealed)
	if e != nil {
		writeError(w, h.fail(ctx, l, e))
		return
	}
	l.State = StateCollected
	if err := h.store.UpdateLogin(ctx, l, h.now()); err != nil && !errors.Is(err, ErrNotFound) {
		h.log.WarnContext(ctx, "weblogin: collected state not stored", "error", err)
	}
	if err := h.cfg.OnLogin(w, r, res); err != nil {
		revoked := h.revoke(context.WithoutCancel(ctx), res)
		h.log.ErrorContext(ctx, "weblogin: OnLogin failed; the tokens were revoked", "revoked", revoked, "error", err)
		writeError(w, &Error{Status: http.StatusInternalServerError, Code: "server_error", Description: "the login could not be completed", Err: err})
		return
	}
	writeJSON(w, http.StatusOK, statusAnswer{Status: string(StateApproved), LoginID: l.ID, Name: res.Auth.Entity.Username})
}

// openResult unseals a stored result and rebuilds the LoginResult: a CIBA ID token is
// validated again by this replica (the store is not trusted for the identity).
func (h *Handler) openResult(ctx context.Context, l *Login, sealed []byte) (*onesoidc.LoginResult, *Error) {
	plain, err := h.seal.open(sealed, l)
	if err != nil {
		h.log.ErrorContext(ctx, "weblogin: stored login result unusable", "error", err)
		return nil, &Error{Status: http.StatusInternalServerError, Code: "server_error", Description: "the login result could not be read", Err: err}
	}
	sr, tok, err := decodeResult(plain)
	if err != nil {
		return nil, &Error{Status: http.StatusInternalServerError, Code: "server_error", Description: "the login result could not be read", Err: err}
	}
	res := &onesoidc.LoginResult{Token: tok, IDToken: sr.IDToken, Scope: sr.Scope, AuthReqID: sr.AuthReqID}
	switch {
	case sr.Entity != nil:
		res.Auth = &onesoidc.AuthenticationResult{Entity: *sr.Entity, Kind: sr.TokenKind}
	default:
		id, err := h.client.VerifyIDToken(ctx, sr.IDToken, onesoidc.ExpectAtHashOf(sr.AccessToken), onesoidc.ExpectAuthReqID(l.AuthReqID))
		if err != nil {
			h.revoke(context.WithoutCancel(ctx), res)
			e := Classify(err)
			if e.Status != http.StatusServiceUnavailable {
				e = &Error{Status: http.StatusBadGateway, Code: "server_error", Description: "the provider's ID token failed validation", Err: err}
			}
			return nil, e
		}
		res.Auth = id
	}
	return res, nil
}

// cancel ends the session's login. CIBA has no cancellation at the provider: the request is
// forgotten here and expires there. The tokens of an approval that was not collected, or that
// races the cancel (FinishLogin then finds no login), are revoked.
func (h *Handler) cancel(w http.ResponseWriter, r *http.Request, kind Kind) {
	l, ok := h.requestedLogin(w, r, kind)
	if !ok {
		return
	}
	ctx := r.Context()
	if l.State == StateApproved {
		if sealed, err := h.store.TakeResult(ctx, l.Session, l.ID); err == nil && sealed != nil {
			if plain, err := h.seal.open(sealed, l); err == nil {
				if _, tok, err := decodeResult(plain); err == nil {
					h.revoke(context.WithoutCancel(ctx), &onesoidc.LoginResult{Token: tok})
				}
			}
		}
	}
	if err := h.store.DeleteLogin(ctx, l.Session, l.ID); err != nil {
		writeError(w, storeError(err))
		return
	}
	h.publish(ctx, l)
	writeJSON(w, http.StatusOK, struct {
		Status string `json:"status"`
	}{"cancelled"})
}
