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
	// defaultPollInterval is the polling interval when the provider's answer has none
	// (CIBA Core §7.3, RFC 8628 §3.2).
	defaultPollInterval = 5 * time.Second
	// slowDownStep is added to the polling interval for every slow_down answer, for all later
	// polls (CIBA Core §11, RFC 8628 §3.5).
	slowDownStep = 5 * time.Second
	// defaultMaxPollFailures is how many consecutive transport failures (no answer, 5xx, 429)
	// a wait tolerates before it gives up (WithMaxFailures).
	defaultMaxPollFailures = 5

	maxPollBackoff    = time.Minute     // cap of the doubled interval after failures
	maxPollRetryAfter = 5 * time.Minute // longest single wait for a server's Retry-After while polling
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

// pollOptions are the settings of WaitForCIBA and WaitForQRLogin (WithProgress,
// WithMaxFailures).
type pollOptions struct {
	progress    func(PollProgress)
	maxFailures int
}

// WithProgress calls f before every wait of WaitForCIBA or WaitForQRLogin, on the waiting goroutine: f must
// return quickly. Default: none.
func WithProgress(f func(PollProgress)) Option {
	return func(o *options) { o.poll.progress = f }
}

// WithMaxFailures sets how many consecutive transport failures (no answer, 5xx, 429)
// WaitForCIBA or WaitForQRLogin tolerates before it returns the last one (default 5). Values
// below 1 are ignored.
func WithMaxFailures(n int) Option {
	return func(o *options) {
		if n >= 1 {
			o.poll.maxFailures = n
		}
	}
}

// newPollOptions applies opts and returns the wait settings; options that do not concern a wait
// have no effect there.
func newPollOptions(opts []Option) pollOptions {
	o := options{poll: pollOptions{maxFailures: defaultMaxPollFailures}}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o.poll
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
// slow_down adds 5 s for all later polls; transport failures, 5xx and 429 back off,
// at least as long as the server's Retry-After (RFC 9110 §10.2.3; the wait is capped at
// maxPollRetryAfter, the error keeps the server's value).
//
// A poll delay (the interval, slow_down or Retry-After) that would land past the request's
// expiry or ctx's deadline ends the wait at once instead of sleeping towards a poll that can
// never be sent (CIBA Core §7.3, RFC 8628 §3.5): with the failure that asked for the delay (an
// *HTTPError with its status and RetryAfter), with an *LoginExpiredError when the request cannot be
// polled again before it expires, or with an error matching context.DeadlineExceeded and the
// last answer when ctx's deadline comes first. In ping mode (s.wake set) a pending request
// keeps waiting for the notification until the expiry or the deadline. Expiry itself ends the
// wait without another poll with a *LoginExpiredError.
func (c *OpenIDConnectClient) pollUntil(ctx context.Context, s pollSpec, w pollOptions, poll func(context.Context) (*LoginResult, error)) (*LoginResult, error) {
	interval := s.interval
	if interval <= 0 {
		interval = defaultPollInterval
	}
	deadline := s.deadline
	ctxDeadline, hasCtxDeadline := ctx.Deadline()
	expire := func() error {
		err := &LoginExpiredError{Expiry: deadline}
		if s.expired != nil {
			s.expired(err)
		}
		return err
	}
	// tooLate ends the wait when a poll at next cannot happen: cause is the error that asked for
	// the delay (nil before the first poll), failure whether it was a failed exchange.
	tooLate := func(next time.Time, cause error, failure bool) error {
		pastExpiry := next.After(deadline)
		pastCtx := hasCtxDeadline && next.After(ctxDeadline)
		switch {
		case !pastExpiry && !pastCtx:
			return nil
		case failure:
			what := "the request's expiry at " + deadline.UTC().Format(time.RFC3339)
			if !pastExpiry {
				what = "the context deadline"
			}
			return wrapf("onesoidc: %s wait: the next poll would be due after %s: %w", s.name, what, cause)
		case s.wake != nil:
			return nil // ping mode: a notification may still come before the end
		case pastExpiry && (!pastCtx || !deadline.After(ctxDeadline)):
			return expire()
		case cause != nil:
			return wrapf("onesoidc: %s wait: the next poll would be due after the context deadline: %w (last answer: %w)", s.name, context.DeadlineExceeded, cause)
		}
		return fmt.Errorf("onesoidc: %s wait: the first poll would be due after the context deadline: %w", s.name, context.DeadlineExceeded)
	}
	next := s.start.Add(interval)
	if err := tooLate(next, nil, false); err != nil {
		return nil, err
	}
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
			return nil, expire()
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
		failure := false
		due := time.Time{} // when the server allows the next poll, if later than next
		switch {
		case errors.Is(err, ErrAuthorizationPending), errors.Is(err, errPollInFlight):
			// errPollInFlight: CheckCIBAStatus (called by the application) is polling right now; its
			// answer ends the request or not, and the next poll here finds out.
			failures = 0
			next = now.Add(interval)
		case errors.Is(err, ErrSlowDown):
			failures = 0
			interval += slowDownStep
			next = now.Add(interval)
		case transientPollError(err):
			failures++
			if failures >= w.maxFailures {
				return nil, wrapf("onesoidc: %s wait: %d consecutive failures: %w", s.name, failures, err)
			}
			failure = true
			wait := interval
			for range failures {
				wait = min(2*wait, maxPollBackoff) // no shift: it would overflow after many failures
			}
			asked := wait
			if errors.As(err, &he) && he.RetryAfter > wait {
				wait, asked = min(he.RetryAfter, maxPollRetryAfter), he.RetryAfter
			}
			next, due = now.Add(wait), now.Add(asked)
			c.logger.WarnContext(ctx, "onesoidc: poll failed, backing off", "flow", s.name, "failures", failures, "wait", wait, "error", err)
		default:
			return nil, err
		}
		if due.Before(next) {
			due = next
		}
		if err := tooLate(due, err, failure); err != nil {
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
	case err == nil, errors.Is(err, ErrLoginExpired), errors.As(err, new(*LoginTokenError)):
		return true
	case errors.As(err, &he): // before *OAuthError: a 5xx wraps the provider's code
		return he.StatusCode >= 200 && he.StatusCode < 300
	case errors.As(err, new(*QRStatusError)):
		return !errors.Is(err, ErrAuthorizationPending)
	case errors.As(err, &oe):
		return !transientOAuthError(oe)
	}
	return false
}

// transientPollError reports a failed poll that a wait retries after a backoff: no answer, a
// temporary status (408, 429, 5xx, whatever error code its body names, expired_token aside), or
// the provider's temporarily_unavailable or server_error.
func transientPollError(err error) bool {
	var (
		oe *OAuthError
		he *HTTPError
	)
	switch {
	case errors.Is(err, ErrLoginExpired):
		return false
	case errors.As(err, &he):
		return he.Temporary()
	case errors.As(err, &oe):
		return transientOAuthError(oe)
	}
	return false
}
