package onesoidc

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The polling state machine shared by CIBA (CIBA Core §7.3, §11) and the device authorization
// grant behind QR login (RFC 8628 §3.5): the same interval, slow_down and expiry rules.

// Polling defaults and limits.
const (
	// DefaultPollInterval is the polling interval when the provider's answer has none
	// (CIBA Core §7.3, RFC 8628 §3.2).
	DefaultPollInterval = 5 * time.Second
	// SlowDownStep is added to the polling interval for every slow_down answer, for all later
	// polls (CIBA Core §11, RFC 8628 §3.5).
	SlowDownStep = 5 * time.Second
	// DefaultMaxPollFailures is how many consecutive transport failures (no answer, 5xx, 429)
	// a wait tolerates before it gives up (WithMaxFailures).
	DefaultMaxPollFailures = 5

	maxPollBackoff    = time.Minute     // cap of the doubled interval after failures
	maxPollRetryAfter = 5 * time.Minute // cap of a server's Retry-After while polling
)

// PollProgress describes the state of WaitForCIBA or WaitForQRLogin before each wait, for a progress display.
type PollProgress struct {
	// Attempt is the number of the next poll (1 for the first).
	Attempt int
	// NextPoll is when the next poll is due (unless a ping comes first).
	NextPoll time.Time
	// Expiry is when the request expires.
	Expiry time.Time
	// LastErr is the error of the previous poll (ErrAuthorizationPending, ErrSlowDown or a
	// transport error), or nil before the first.
	LastErr error
}

// WaitOption configures WaitForCIBA and WaitForQRLogin.
type WaitOption func(*pollOptions)

type pollOptions struct {
	progress    func(PollProgress)
	maxFailures int
}

// WithProgress calls f before every wait of WaitForCIBA or WaitForQRLogin, on the waiting goroutine: f must
// return quickly. Default: none.
func WithProgress(f func(PollProgress)) WaitOption {
	return func(w *pollOptions) { w.progress = f }
}

// WithMaxFailures sets how many consecutive transport failures (no answer, 5xx, 429)
// a wait tolerates before it returns the last one (default DefaultMaxPollFailures, 5).
// Values below 1 are ignored.
func WithMaxFailures(n int) WaitOption {
	return func(w *pollOptions) {
		if n >= 1 {
			w.maxFailures = n
		}
	}
}

func newPollOptions(opts []WaitOption) pollOptions {
	w := pollOptions{maxFailures: DefaultMaxPollFailures}
	for _, o := range opts {
		if o != nil {
			o(&w)
		}
	}
	return w
}

// pollSpec describes one wait: when the acknowledgement came, the interval it asked for (0 for
// the default), when the request expires, a channel that asks for a poll at once (ping), and
// what to record when the request expires locally.
type pollSpec struct {
	name     string // "CIBA" or "QR login", for messages
	start    time.Time
	interval time.Duration
	deadline time.Time
	wake     <-chan struct{}
	expired  func(error)
}

// pollUntil polls until poll succeeds, fails for good, the request expires or ctx ends: the first
// poll one interval after s.start, later polls one interval after the previous answer;
// slow_down adds SlowDownStep for all later polls; transport failures, 5xx and 429 back off;
// expiry ends the wait without another poll with a *ExpiredError.
func (c *OpenIDConnectClient) pollUntil(ctx context.Context, s pollSpec, w pollOptions, poll func(context.Context) (*LoginResult, error)) (*LoginResult, error) {
	interval := s.interval
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	deadline := s.deadline
	next := s.start.Add(interval)
	var lastErr error
	failures := 0
	for attempt := 1; ; attempt++ {
		if w.progress != nil {
			w.progress(PollProgress{Attempt: attempt, NextPoll: next, Expiry: deadline, LastErr: lastErr})
		}
		at := next
		if deadline.Before(at) {
			at = deadline
		}
		if err := waitUntil(ctx, c.now, at, s.wake); err != nil {
			return nil, err
		}
		now := c.now()
		if !now.Before(deadline) {
			err := &ExpiredError{Expiry: deadline}
			if s.expired != nil {
				s.expired(err)
			}
			return nil, err
		}
		res, err := poll(ctx)
		if err == nil {
			return res, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		lastErr = err
		now = c.now()
		var he *HTTPError
		var oe *OAuthError
		switch {
		case errors.Is(err, ErrAuthorizationPending), errors.Is(err, errPollInFlight):
			// errPollInFlight: CheckCIBAStatus (called by the application) is polling right now; its
			// answer ends the request or not, and the next poll here finds out.
			failures = 0
			next = now.Add(interval)
		case errors.Is(err, ErrSlowDown):
			failures = 0
			interval += SlowDownStep
			next = now.Add(interval)
		case (errors.As(err, &he) && he.Temporary()) || (errors.As(err, &oe) && transientOAuthError(oe)):
			failures++
			if failures >= w.maxFailures {
				return nil, fmt.Errorf("onesoidc: %s wait: %d consecutive failures: %w", s.name, failures, err)
			}
			wait := interval
			for range failures {
				wait = min(2*wait, maxPollBackoff) // no shift: it would overflow after many failures
			}
			if he != nil && he.RetryAfter > wait {
				wait = min(he.RetryAfter, maxPollRetryAfter)
			}
			next = now.Add(wait)
			c.logger.WarnContext(ctx, "onesoidc: poll failed, backing off", "flow", s.name, "failures", failures, "wait", wait, "error", err)
		default:
			return nil, err
		}
	}
}

// waitUntil waits until at, a ping on wake, or the end of ctx.
func waitUntil(ctx context.Context, now func() time.Time, at time.Time, wake <-chan struct{}) error {
	t := time.NewTimer(at.Sub(now()))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-wake:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// endsRequest reports whether the outcome of a poll or a wait ends a login request (a CIBA
// auth_req_id or a QR session), which is then never polled again: success, expiry, a terminal
// provider error or ONES QR status, or a token that was received but refused. Pending, slow_down, the
// provider's temporary trouble, transport failures and cancellation leave it open.
func endsRequest(err error) bool {
	var (
		oe *OAuthError
		he *HTTPError
	)
	switch {
	case err == nil, errors.Is(err, ErrExpiredToken), errors.As(err, new(*CIBATokenError)), errors.As(err, new(*QRTokenError)):
		return true
	case errors.As(err, new(*QRStatusError)):
		return !errors.Is(err, ErrAuthorizationPending)
	case errors.As(err, &oe):
		return !transientOAuthError(oe)
	case errors.As(err, &he):
		return he.StatusCode >= 200 && he.StatusCode < 300
	}
	return false
}
