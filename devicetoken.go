package onesoidc

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"
)

// defaultTokenRefreshMargin is how long before expiry a cached device access token is renewed
// (100 s, as in the Rust crate).
const defaultTokenRefreshMargin = 100 * time.Second

// retryAfterFailedRefresh is how long a still-valid cached token is served after a failed
// renewal before the next attempt, so that a provider outage does not turn every call into a
// request.
const retryAfterFailedRefresh = 5 * time.Second

// deviceTokenCache holds the client's device access token. Reads are one atomic load; renewals
// go through one singleflight call, so any number of concurrent callers cause one request.
type deviceTokenCache struct {
	entry  atomic.Pointer[cachedToken]
	flight singleflight.Group
}

type cachedToken struct {
	token     *oauth2.Token
	refreshAt time.Time // renew from here on
	// after401 marks a token fetched because a resource server refused its predecessor with
	// 401: such a token never causes another renewal on a 401 (DeviceHTTPClient).
	after401 bool
	// rejected marks an entry whose token a server refused with 401: refreshAt is zero, so the
	// next DeviceAccessToken renews it, and a failed renewal does not fall back to it.
	rejected bool
}

// RequestDeviceAccessToken asks the provider for a new device access token, bypassing the cache:
// an RFC 6749 §4.4 client credentials grant authenticated with a private_key_jwt assertion
// (RFC 7523 §2.2, §3), with the scope and resource of WithDeviceTokenScope and
// WithDeviceTokenResource. Most callers want DeviceAccessToken.
func (c *OpenIDConnectClient) RequestDeviceAccessToken(ctx context.Context) (*oauth2.Token, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if c.tokenScope != "" {
		form.Set("scope", c.tokenScope)
	}
	if c.tokenResource != "" {
		form.Set("resource", c.tokenResource)
	}
	resp, err := c.postAuthenticated(ctx, "device token", c.meta.TokenEndpoint, form, false)
	if err != nil {
		return nil, err
	}
	tok, _, err := c.parseTokenResponse(resp, c.tokenScope)
	return tok, err
}

// DeviceAccessToken returns the cached device access token, renewing it with
// RequestDeviceAccessToken when it is within the refresh margin of its expiry
// (WithTokenRefreshMargin, bounded to half its lifetime). Concurrent callers share one renewal;
// a caller whose ctx ends while waiting returns at once without cancelling the renewal for the
// others. When a renewal fails while the cached token is still valid, the cached token is
// returned and the renewal is tried again a few seconds later.
//
// The returned token is shared between callers and must not be modified.
func (c *OpenIDConnectClient) DeviceAccessToken(ctx context.Context) (*oauth2.Token, error) {
	if e := c.deviceToken.entry.Load(); e != nil && c.now().Before(e.refreshAt) {
		return e.token, nil
	}
	ch := c.deviceToken.flight.DoChan("", func() (any, error) {
		// Detached from the first caller's context: its cancellation must not fail the others.
		return c.renewDeviceToken(context.WithoutCancel(ctx))
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*oauth2.Token), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *OpenIDConnectClient) renewDeviceToken(ctx context.Context) (*oauth2.Token, error) {
	now := c.now()
	old := c.deviceToken.entry.Load()
	if old != nil && now.Before(old.refreshAt) {
		return old.token, nil // renewed by a flight that ended after our fast-path check
	}
	tok, err := c.RequestDeviceAccessToken(ctx)
	if err != nil {
		if old != nil && !old.rejected && now.Before(old.token.Expiry) {
			c.logger.WarnContext(ctx, "onesoidc: device token renewal failed; using the cached token until it expires",
				"expires_in", old.token.Expiry.Sub(now).Round(time.Second), "error", err)
			retry := now.Add(retryAfterFailedRefresh)
			if retry.After(old.token.Expiry) {
				retry = old.token.Expiry
			}
			c.deviceToken.entry.CompareAndSwap(old, &cachedToken{token: old.token, refreshAt: retry})
			return old.token, nil
		}
		return nil, err
	}
	lifetime := tok.Expiry.Sub(now)
	margin := min(c.tokenMargin, lifetime/2)
	c.deviceToken.entry.Store(&cachedToken{token: tok, refreshAt: tok.Expiry.Add(-margin), after401: old != nil && old.rejected})
	return tok, nil
}

// InvalidateDeviceAccessToken drops the cached device access token, so that the next
// DeviceAccessToken call asks the provider: call it when a resource server answered 401.
func (c *OpenIDConnectClient) InvalidateDeviceAccessToken() { c.deviceToken.entry.Store(nil) }

// renewAfter401 handles a 401 that a resource server gave tok: when tok is still the cached
// token it is marked for renewal, unless it was itself fetched after a 401, in which case it
// reports false and the caller gets the 401 (one renewal per token, so a service that refuses
// every token costs one extra token request, not one per call). When another token is already
// cached, it reports true and the next DeviceAccessToken returns that one.
func (c *OpenIDConnectClient) renewAfter401(tok *oauth2.Token) bool {
	for {
		e := c.deviceToken.entry.Load()
		switch {
		case e == nil || e.token != tok:
			return true
		case e.after401:
			return false
		case e.rejected:
			return true // another caller already asked for the renewal
		}
		if c.deviceToken.entry.CompareAndSwap(e, &cachedToken{token: tok, rejected: true}) {
			return true
		}
	}
}

// TokenSource returns an oauth2.TokenSource of cached device access tokens (DeviceAccessToken).
// ctx is used for every token request the source makes, as with oauth2.Config.TokenSource.
func (c *OpenIDConnectClient) TokenSource(ctx context.Context) oauth2.TokenSource {
	return deviceTokenSource{ctx: ctx, c: c}
}

type deviceTokenSource struct {
	ctx context.Context
	c   *OpenIDConnectClient
}

func (s deviceTokenSource) Token() (*oauth2.Token, error) { return s.c.DeviceAccessToken(s.ctx) }

// DeviceHTTPClient returns an HTTP client that sends the device access token as a Bearer token
// (RFC 6750 §2.1) on every request, for calling other ONES services. When a server answers 401,
// the token is renewed and the request is sent once more with the new token, if its body can be
// replayed; a 401 to a token that was itself fetched after a 401 goes back to the caller without
// a renewal (RFC 6750 §3.1 leaves the reaction to the client): each token causes at most one
// renewal, so N calls to a service that refuses every token cost 2 token requests, not N+1,
// until the token is renewed for its age. The token is only sent over https (or to a loopback
// host), and redirects to another host or from https to http are not followed, so it never
// leaves the host it was meant for (RFC 6750 §5.3). base supplies the transport and timeout (nil: http.DefaultTransport
// and 10 s).
func (c *OpenIDConnectClient) DeviceHTTPClient(base *http.Client) *http.Client {
	hc := http.Client{Timeout: defaultRequestTimeout}
	if base != nil {
		hc = *base
	}
	rt := hc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	hc.Transport = &bearerTransport{c: c, base: rt}
	hc.CheckRedirect = sameOriginRedirect
	return &hc
}

type bearerTransport struct {
	c    *OpenIDConnectClient
	base http.RoundTripper
}

func (t *bearerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" && !isLoopback(req.URL.Hostname()) {
		closeBody(req)
		return nil, &ConfigError{Field: "URL", Reason: fmt.Sprintf("refusing to send the device token to %s over plain http", redactURL(req.URL.String()))}
	}
	tok, err := t.c.DeviceAccessToken(req.Context())
	if err != nil {
		closeBody(req)
		return nil, err
	}
	resp, err := t.base.RoundTrip(withBearer(req, tok))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	if !t.c.renewAfter401(tok) {
		return resp, nil // this token already replaced one a server refused: no renewal loop
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return resp, nil // cannot replay the body; the next request gets the renewed token
	}
	fresh, err := t.c.DeviceAccessToken(req.Context())
	if err != nil || fresh == tok {
		return resp, nil
	}
	retry := req.Clone(req.Context())
	if req.GetBody != nil {
		if retry.Body, err = req.GetBody(); err != nil {
			return resp, nil
		}
	}
	resp.Body.Close()
	return t.base.RoundTrip(withBearer(retry, fresh))
}

// withBearer returns a copy of req with the token in its Authorization header (a RoundTripper
// must not modify the request it was given).
func withBearer(req *http.Request, tok *oauth2.Token) *http.Request {
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	return r
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
