package weblogin

import (
	"context"
	"errors"
	"time"
)

// Kind is the flow of a login.
type Kind string

// The flows of a login.
const (
	// KindCIBA is an OpenID CIBA login (CIBA Core 1.0): the user approves on their phone.
	KindCIBA Kind = "ciba"
	// KindQR is an ONES QR login: the user scans a QR code with the ONES app.
	KindQR Kind = "qr"
)

// State is where a login stands.
type State string

// The states of a login.
const (
	// StatePending: the user has not decided; status requests poll the provider.
	StatePending State = "pending"
	// StateApproved: the user approved and the sealed result waits to be collected.
	StateApproved State = "approved"
	// StateCollected: the result was handed to the application's OnLogin.
	StateCollected State = "collected"
	// StateFailed: the login ended without tokens (denied, expired, refused, or an approved
	// result that could not be kept); ErrCode says why.
	StateFailed State = "failed"
)

// Login is the server-side record of one browser login, as a Store keeps it. It holds no token:
// the tokens of an approved login are kept apart, sealed (Store.FinishLogin). Its fields are
// exported so that a Store can encode it (encoding/json); applications do not need them.
type Login struct {
	// Session is the hex SHA-256 of the browser's login session cookie: the store never holds
	// the cookie itself.
	Session string `json:"session"`
	// ID is the login's handle: 128 random bits, given only to the page that started the login,
	// which names it in status requests together with the session cookie.
	ID string `json:"id"`
	// Kind is the flow.
	Kind Kind `json:"kind"`
	// AuthReqID is the provider's handle of the request (CIBA auth_req_id, ONES QR session id).
	// It never leaves the server.
	AuthReqID string `json:"auth_req_id,omitempty"`
	// PollKey is the hex SHA-256 of AuthReqID: the key of the poll lease, ping flag and wake-ups.
	PollKey string `json:"poll_key,omitempty"`
	// NotifyHash is the SHA-256 of the CIBA client_notification_token (ping mode), or empty.
	NotifyHash []byte `json:"notify_hash,omitempty"`
	// Binding is the binding message shown on both screens (CIBA Core §7.1), or "".
	Binding string `json:"binding,omitempty"`
	// Scope is the requested scope, space separated.
	Scope string `json:"scope,omitempty"`
	// Created is when the login was started.
	Created time.Time `json:"created"`
	// Expiry is when the provider's request expires.
	Expiry time.Time `json:"expiry"`
	// KeepUntil is when the record may be dropped (Expiry plus the time a result waits to be
	// collected).
	KeepUntil time.Time `json:"keep_until"`
	// Interval is the least time between two polls.
	Interval time.Duration `json:"interval"`
	// NextPoll is when the next poll is due.
	NextPoll time.Time `json:"next_poll"`
	// State is where the login stands.
	State State `json:"state"`
	// ErrStatus is the HTTP status of the answer to the browser of a failed login.
	ErrStatus int `json:"err_status,omitempty"`
	// ErrCode is the error code of that answer, such as "access_denied".
	ErrCode string `json:"err_code,omitempty"`
	// ErrDescription is the description of that answer.
	ErrDescription string `json:"err_description,omitempty"`
}

// Limits bound the pending logins a Store accepts (Store.CreateLogin).
type Limits struct {
	// PerSession is the most pending logins one browser session may have.
	PerSession int
	// Total is the most pending logins of all sessions together.
	Total int
}

// Errors of a Store.
var (
	// ErrNotFound: no such login (never created, cancelled, or dropped after KeepUntil).
	ErrNotFound = errors.New("weblogin: login not found")
	// ErrSessionFull: the session already has Limits.PerSession pending logins.
	ErrSessionFull = errors.New("weblogin: too many pending logins in this session")
	// ErrStoreFull: Limits.Total pending logins exist; pending logins are never evicted.
	ErrStoreFull = errors.New("weblogin: too many pending logins")
)

// Store keeps the login state that the replicas of an application share: pending logins per
// session, the one-poller lease per auth_req_id, results waiting to be collected, ping flags
// (each recorded once, CIBA Core §10.2) and wake-ups. NewMemoryStore is the default, for one process; the module
// github.com/ones-now/onesoidc/redisstore has one on Redis for several.
//
// Every method takes the caller's context and must be safe for concurrent use. Errors other
// than the sentinels above mean the store is unavailable: the handler answers 503. The store
// sees no token in clear: results are sealed by the handler before FinishLogin.
type Store interface {
	// CreateLogin stores l (State pending) unless the session has lim.PerSession pending logins
	// (ErrSessionFull) or all sessions lim.Total (ErrStoreFull); pending logins whose Expiry
	// is not after now do not count. Nothing is ever evicted to make room.
	CreateLogin(ctx context.Context, l *Login, now time.Time, lim Limits) error
	// GetLogin returns the login id of session, or ErrNotFound.
	GetLogin(ctx context.Context, session, id string) (*Login, error)
	// LoginByPollKey returns the login whose PollKey is pollKey, or ErrNotFound.
	LoginByPollKey(ctx context.Context, pollKey string) (*Login, error)
	// UpdateLogin replaces the stored record of l, which must still exist (else ErrNotFound:
	// a cancelled login is never brought back). A login that is no longer pending stops
	// counting towards the limits.
	UpdateLogin(ctx context.Context, l *Login, now time.Time) error
	// FinishLogin stores l (State approved) and its sealed result in one step, or neither
	// (ErrNotFound when the login is gone).
	FinishLogin(ctx context.Context, l *Login, sealed []byte, now time.Time) error
	// TakeResult returns the sealed result of the login and removes it, so that exactly one
	// caller gets it; nil and no error when there is none (any more).
	TakeResult(ctx context.Context, session, id string) ([]byte, error)
	// DeleteLogin removes the login and its result.
	DeleteLogin(ctx context.Context, session, id string) error
	// AcquireLease takes the poll lease of pollKey for owner for ttl, across every replica;
	// false when another owner holds it.
	AcquireLease(ctx context.Context, pollKey, owner string, ttl time.Duration) (bool, error)
	// ReleaseLease gives the lease back if owner still holds it.
	ReleaseLease(ctx context.Context, pollKey, owner string) error
	// SetPinged records that the provider notified pollKey (CIBA Core §10.2), for ttl, once:
	// while a flag of pollKey is recorded, taken or not, it changes nothing, so that a repeated
	// or replayed notification causes no further poll.
	SetPinged(ctx context.Context, pollKey string, ttl time.Duration) error
	// TakePinged reports whether the ping flag of pollKey is recorded and not yet taken, and
	// marks it taken; a taken flag stays recorded until its ttl.
	TakePinged(ctx context.Context, pollKey string) (bool, error)
	// Publish wakes every Subscribe of pollKey, on every replica.
	Publish(ctx context.Context, pollKey string) error
	// Subscribe returns a channel that receives after Publish(pollKey), and a function that
	// ends the subscription. Wake-ups may be merged; none may be lost while subscribed.
	Subscribe(ctx context.Context, pollKey string) (<-chan struct{}, func(), error)
}
