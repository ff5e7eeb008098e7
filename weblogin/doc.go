// Package weblogin serves the browser side of OpenID CIBA login and ONES QR login for a web
// application that runs on a device registered with the ONES identity provider, in the
// backend-for-frontend shape of OAuth 2.0 for Browser-Based Applications (RFC 10017 §6.1): the
// browser never sees a token.
//
// # Endpoints
//
// New returns a Handler; mount it under its prefix (Config.Prefix, default "/auth"):
//
//	h, err := weblogin.New(weblogin.Config{Client: client, OnLogin: setAppSession})
//	mux.Handle("/auth/", h)
//
// Every endpoint takes POST with a JSON body (application/json) from the application's own
// origin, and answers JSON:
//
//	/auth/ciba/start   {"userIdentifier", "loginHintKind", "scope", "resource", "sessionId"}
//	                   → 200 {"status": "pending", "loginId", "bindingCode", "expiresIn", "interval"}
//	/auth/qr/start     {"scope"} → 200 {... "qrSvg"}: the QR code as SVG, its code and expiry
//	/auth/ciba/status, /auth/qr/status   {"loginId"} ("authRequestId" is an alias)
//	                   → 202 {"status": "pending", ...}, 200 {"status": "approved", "name"}, or an error
//	/auth/ciba/cancel, /auth/qr/cancel   {"loginId"} → 200 {"status": "cancelled"}
//
// The body fields are those the Rust crate ones-oidc's frontend sends. "resource" is "idp" or
// "device" there; what the ONES provider does with it is not published, so both are accepted
// and send no resource indicator unless Config.ResourceIndicators maps them to RFC 8707
// indicators. "authRequestId" is accepted in status and cancel requests but names a loginId of
// the browser's own session: the provider's auth_req_id never leaves the server.
//
// Errors are JSON {"error", "error_description"} (Classify lists the statuses): 400 for a bad
// request, 403 for a cross-origin request or a refused login, 404 for a login this browser
// session does not have, 410 for an expired or ended login, 413, 415, 503 with Retry-After when
// the session has Config.MaxPerSession pending logins, when Config.MaxPending are pending
// overall, or when the provider or the Store is unavailable, and 502 when the provider's answer
// or its tokens fail validation.
//
// # Sessions
//
// A login belongs to the browser that started it. The start endpoint sets a session cookie of
// its own (256 random bits, HttpOnly, SameSite=Lax, Path=/, and __Host-onesoidc-login with
// Secure unless the origin is plain http on a loopback host, so that no other host of the site
// can set it) when the browser has none, and answers a loginId of 128 random
// bits to the page. Status and cancel find a login only by both: the cookie, which scripts
// cannot read, and the loginId, which only the page that started the login knows — so a session
// cookie planted in a victim's browser (session fixation) does not give the planter the victim's
// login. The Store keeps the cookie's SHA-256, never the cookie. Status and cancel also find the
// logins started under the cookie name of the release before, __Secure-onesoidc-login, so that a
// rolling upgrade loses none; a start never sets or adopts that cookie.
//
// # Tokens stay on the server
//
// When the user approves, the next status request of that browser collects the result, on
// whichever replica: Config.OnLogin receives the validated *onesoidc.LoginResult and sets the
// application's own session; the browser gets {"status": "approved", "name"} and nothing else.
// Refresh tokens are used on the server with Handler.Refresh, inside the application's
// session: there is no refresh endpoint, and no mode that hands tokens to the browser.
//
// # Consent
//
// Every CIBA login carries a binding message (CIBA Core §7.1) shown on the page and on the
// user's phone, so that the user can tell their login from another one (RFC 10027 §6.1.4): the
// application's (Config.BindingMessage) or a code from NewBindingCode. The ONES QR protocol
// carries no binding message: the page shows a code derived from the session id in the QR code.
//
// # Bounds and origins
//
// Pending logins are bounded per session and overall; when full, new logins are refused and
// pending ones are never evicted. With Config.LongPoll, at most two status requests of one login
// wait at a time on each replica; more answer at once, so that a page cannot hold any number of
// requests open. Every endpoint checks that the request comes from the
// application's origin (Origin, else Sec-Fetch-Site: same-origin) and carries JSON.
//
// # Replicas
//
// The state that replicas share — pending logins, the lease that lets one replica at a time
// poll the provider for a request, results waiting to be collected, and ping wake-ups — lives
// in a Store: NewMemoryStore for one process, github.com/ones-now/onesoidc/redisstore for
// several. Results are sealed with AES-256-GCM under Config.SealKey before they reach the
// store. A result that cannot be stored is revoked at the provider (RFC 7009) and reported. In
// CIBA ping mode, serve NotificationHandler at the client notification endpoint: it works on
// every replica, and a login is pinged once (Store.SetPinged records a flag once,
// Store.TakePinged hands it to one poll), so that a repeated or replayed notification causes no
// further poll.
//
// # Seal key rotation
//
// Config.PreviousSealKeys holds keys that open results but never seal one, so that SealKey can
// change on replicas that share a store without losing the logins in flight: give every replica
// the new key as a previous one, then make it SealKey everywhere with the old key as the
// previous one, and drop the old key once the logins started before have ended (the provider's
// lifetime of a login request plus Config.ResultTTL; the field's doc has the steps). A result
// sealed under a key that a replica does not have fails to open there: 500, and the user starts
// again.
package weblogin
