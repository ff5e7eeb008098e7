package weblogin

import (
	"crypto/rand"

	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ones-now/onesoidc"
)

// maxResultTTL is the ID token age limit of onesoidc's VerifyIDToken (its default MaxTokenAge).
const maxResultTTL = 5 * time.Minute

// Defaults of Config.
const (
	// DefaultPrefix is the default Config.Prefix.
	DefaultPrefix = "/auth"
	// DefaultMaxPerSession is the default Config.MaxPerSession.
	DefaultMaxPerSession = 2
	// DefaultMaxPending is the default Config.MaxPending.
	DefaultMaxPending = 1000
	// DefaultRetryAfter is the default Config.RetryAfter.
	DefaultRetryAfter = 30 * time.Second
	// DefaultResultTTL is the default Config.ResultTTL.
	DefaultResultTTL = 2 * time.Minute
	// DefaultLeaseTTL is the default Config.LeaseTTL.
	DefaultLeaseTTL = 30 * time.Second
	// DefaultPollTimeout is the default Config.PollTimeout.
	DefaultPollTimeout = 20 * time.Second

	maxLongPoll           = 60 * time.Second
	defaultCookieBaseName = "onesoidc-login"
)

// Config configures a Handler. Client and OnLogin are required; every other field has the
// default its doc names.
type Config struct {
	// Client is the SDK client that talks to the provider (required). In CIBA ping mode
	// (onesoidc.WithCIBAPing) serve Handler.NotificationHandler at the client notification
	// endpoint registered with the provider.
	Client *onesoidc.OpenIDConnectClient

	// OnLogin receives the validated result of an approved login, on the status request of
	// the browser that started it (required). It sets the application's own session (a cookie on
	// w) and keeps the tokens on the server; it must not write a body or a status. The browser
	// only learns the status and the display name. When it returns an error, the tokens are
	// revoked at the provider and the browser gets 500.
	OnLogin func(w http.ResponseWriter, r *http.Request, res *onesoidc.LoginResult) error

	// Store keeps the state replicas share (default: a new MemoryStore, for one process). With
	// any other store, SealKey is required.
	Store Store
	// SealKey is the AES-256-GCM key (SealKeySize bytes) that seals the tokens of approved
	// logins before they reach the Store. Default: a random key, for the MemoryStore only;
	// replicas sharing a store must share the key. PreviousSealKeys rotates it.
	//
	// Its type prints and logs as "[redacted: 32 bytes]", never a key byte; a []byte assigns to
	// it as it is.
	SealKey SealKey
	// PreviousSealKeys are more keys of SealKeySize bytes that open sealed results but never
	// seal one; they are tried after SealKey, in order, so that the replicas sharing a store can
	// change SealKey without losing the logins in flight. They need SealKey, and no key may
	// appear twice. To rotate, roll each step out to every replica before the next:
	//
	//  1. add the new key to PreviousSealKeys: every replica can now open what any will seal;
	//  2. make the new key SealKey and move the old one to PreviousSealKeys;
	//  3. once the logins started before step 2 reached the last replica have ended, drop the
	//     old key: wait the longest expiresIn that the start endpoints answer (the provider's
	//     lifetime of a request: 600 s for a ONES CIBA request, 300 s for a ONES QR session)
	//     plus ResultTTL; with ONES and the default ResultTTL, 12 minutes. A result sealed under
	//     a dropped key does not open: its status request answers 500 and the user starts again.
	//
	// A single process, or replicas that all restart at once, can skip step 1. After a leak, drop
	// the old key right after step 2 and accept losing the logins in flight: whoever holds it and
	// can write to the store could forge a result that it opens.
	//
	// Its type prints and logs the number of keys, never a key byte; a [][]byte assigns to it as
	// it is.
	PreviousSealKeys SealKeys

	// Prefix is the path the handler is mounted under (default DefaultPrefix, "/auth"): it
	// serves Prefix+"/ciba/start", "/ciba/status", "/ciba/cancel", "/qr/start", "/qr/status"
	// and "/qr/cancel".
	Prefix string
	// Origin is the application's origin as browsers see it, such as "https://app.example"
	// (default: the origin of each request: https when it came over TLS, else http, and
	// r.Host). Set it when TLS ends at a proxy. Plain http is accepted on loopback hosts only.
	Origin string

	// Scope is the scope of every login (default "openid profile"); it must include "openid".
	// The scope a page sends must be a subset of it.
	Scope []string
	// BindingMessage returns the binding message of a CIBA login, shown on the page and on the
	// user's phone (CIBA Core §7.1). Default, and whenever it returns "": a code of 4+4 letters
	// and digits, such as "K7QM-2XPA", that fits the rules of every provider (the oidc-provider
	// rule ^[a-zA-Z0-9-._+/!?#]{1,20}$ included).
	BindingMessage func(r *http.Request) string
	// PrepareCIBA, when set, completes or refuses each CIBA request before it is sent: check who
	// may log in, set ACR values or a requested expiry. An error refuses the login: a *Error
	// with its status, anything else 403 access_denied with the error's text.
	PrepareCIBA func(r *http.Request, req *onesoidc.CIBARequest) error
	// ResourceIndicators maps the "resource" a page sends to RFC 8707 resource indicators
	// (absolute URIs). The Rust crate's frontend sends "idp" or "device", whose meaning on the
	// wire is not published; by default both are accepted and send no resource indicator, and
	// any other value is refused with 400.
	ResourceIndicators map[string][]string

	// MaxPerSession is the most pending logins one browser session may have (default
	// DefaultMaxPerSession); one more is refused with 503 and Retry-After.
	MaxPerSession int
	// MaxPending is the most pending logins of all sessions (default DefaultMaxPending); one
	// more is refused with 503 and Retry-After. Pending logins are never evicted.
	MaxPending int
	// RetryAfter is the Retry-After of those refusals (default DefaultRetryAfter).
	RetryAfter time.Duration
	// ResultTTL is how long an approved result waits to be collected by a status request
	// (default DefaultResultTTL). It must stay under the ID token age limit of the
	// 5 minutes that VerifyIDToken allows by default, as a CIBA ID token is validated again when
	// collected.
	ResultTTL time.Duration
	// LongPoll is how long a status request may wait for news (a ping, the next poll, the end)
	// before it answers pending (default 0: answer at once, the page polls again). At most two
	// status requests of one login wait at a time on each replica; more answer at once.
	LongPoll time.Duration

	// Logger receives diagnostics (default: discard). Nothing logged holds a token, a cookie
	// or an auth_req_id.
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Handler serves the browser endpoints of CIBA and ONES QR login: see the package doc. Build it
// with New; it is safe for concurrent use.
type Handler struct {
	cfg       Config
	client    *onesoidc.OpenIDConnectClient
	store     Store
	seal      *sealer
	log       *slog.Logger
	now       func() time.Time
	prefix    string
	origin    *url.URL // nil: each request's own
	scope     []string
	resources map[string][]string
	owner     string // lease owner prefix of this handler
	waiters   waiterCounts
}

// ConfigError reports an unusable Config.
type ConfigError struct {
	// Field names the Config field at fault, such as "ResultTTL".
	Field string
	// Reason says what is wrong with it.
	Reason string
}

// Error returns "weblogin: Config.<Field>: <Reason>".
func (e *ConfigError) Error() string { return "weblogin: Config." + e.Field + ": " + e.Reason }

// New checks cfg, fills in its defaults and returns the Handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Client == nil {
		return nil, &ConfigError{"Client", "required"}
	}
	if cfg.OnLogin == nil {
		return nil, &ConfigError{"OnLogin", "required: it sets the application's session"}
	}
	h := &Handler{cfg: cfg, client: cfg.Client, store: cfg.Store, log: cfg.Logger, now: cfg.Now}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	key := cfg.SealKey
	if key == nil && len(cfg.PreviousSealKeys) > 0 {
		return nil, &ConfigError{"PreviousSealKeys", "set without SealKey: the current key seals, the previous ones only open"}
	}
	if h.store == nil {
		h.store = NewMemoryStore()
		if key == nil {
			key = make([]byte, SealKeySize)
			_, _ = io.ReadFull(rand.Reader, key)
		}
	} else if key == nil {
		return nil, &ConfigError{"SealKey", "required with a shared Store: the replicas must share it"}
	}
	var err error
	if h.seal, err = newSealer(key, cfg.PreviousSealKeys...); err != nil {
		return nil, err
	}
	h.prefix = strings.TrimSuffix(cfg.Prefix, "/")
	if cfg.Prefix == "" {
		h.prefix = DefaultPrefix
	}
	if !strings.HasPrefix(h.prefix, "/") || strings.ContainsAny(h.prefix, "?#;, \t\r\n") {
		return nil, &ConfigError{"Prefix", "must be a path such as /auth"}
	}
	if cfg.Origin != "" {
		u, err := url.Parse(cfg.Origin)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") ||
			u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, &ConfigError{"Origin", "must be scheme://host[:port], such as https://app.example"}
		}
		if u.Scheme == "http" && !isLoopback(u.Hostname()) {
			return nil, &ConfigError{"Origin", "plain http is allowed on loopback hosts only"}
		}
		// Browsers leave the default port out of Origin (RFC 6454 §6.1).
		host := strings.ToLower(u.Host)
		if p := u.Port(); (u.Scheme == "https" && p == "443") || (u.Scheme == "http" && p == "80") {
			host = strings.TrimSuffix(host, ":"+p)
		}
		h.origin = &url.URL{Scheme: u.Scheme, Host: host}
	}
	h.scope = cfg.Scope
	if len(h.scope) == 0 {
		h.scope = []string{"openid", "profile"}
	}
	if !contains(h.scope, "openid") {
		return nil, &ConfigError{"Scope", `must include "openid"`}
	}
	h.resources = cfg.ResourceIndicators
	if h.resources == nil {
		h.resources = map[string][]string{"idp": nil, "device": nil}
	}
	for name, list := range h.resources {
		for _, r := range list {
			if u, err := url.Parse(r); err != nil || !u.IsAbs() || u.Fragment != "" {
				return nil, &ConfigError{"ResourceIndicators", fmt.Sprintf("%q: %q is not an absolute URI without fragment (RFC 8707 §2)", name, r)}
			}
		}
	}
	if h.cfg.MaxPerSession == 0 {
		h.cfg.MaxPerSession = DefaultMaxPerSession
	}
	if h.cfg.MaxPending == 0 {
		h.cfg.MaxPending = DefaultMaxPending
	}
	if h.cfg.RetryAfter == 0 {
		h.cfg.RetryAfter = DefaultRetryAfter
	}
	if h.cfg.ResultTTL == 0 {
		h.cfg.ResultTTL = DefaultResultTTL
	}
	switch {
	case h.cfg.MaxPerSession < 0 || h.cfg.MaxPending < 0:
		return nil, &ConfigError{"MaxPending", "limits must not be negative"}
	case h.cfg.RetryAfter < 0 || h.cfg.ResultTTL < 0:
		return nil, &ConfigError{"RetryAfter", "durations must not be negative"}
	case h.cfg.ResultTTL > maxResultTTL:
		return nil, &ConfigError{"ResultTTL", "must not exceed 5 minutes, the ID token age limit of VerifyIDToken"}
	case h.cfg.LongPoll < 0 || h.cfg.LongPoll > maxLongPoll:
		return nil, &ConfigError{"LongPoll", "must be 0 to 60 s"}
	}
	h.owner = randomString(12)
	return h, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
