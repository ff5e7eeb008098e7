// Package onesoidctest is a fake ONES identity provider for tests: the one the onesoidc SDK's own
// tests and examples use, for the tests of servers built with onesoidc. It speaks HTTP only, as
// the real provider does, so a test exercises the SDK exactly as production does.
//
// A Server is an OpenID Provider at {URL}/oidc (the issuer) with discovery (OpenID Connect
// Discovery 1.0 §4), a JWKS that can rotate, and a token endpoint that verifies private_key_jwt
// client assertions (RFC 7523 §3: signature, iss, sub, aud, exp, iat, single-use jti) before it
// answers client_credentials, refresh_token (RFC 6749 §6), CIBA (OpenID CIBA Core 1.0, poll and
// ping) and RFC 8628 device code grants. It also serves token introspection (RFC 7662),
// revocation (RFC 7009), the ONES QR login at {URL}/auth/qr and the ONES application list.
//
// # Quick start
//
// Register a device, build a client from its files, and log a user in, in a test:
//
//	synctest.Test(t, func(t *testing.T) {
//		idp := onesoidctest.NewInMemory(onesoidctest.WithONES())
//		dev, _ := idp.RegisterDevice()
//		files, _ := dev.WriteFiles(t.TempDir())
//		client, _ := onesoidc.NewClientFromDevice(t.Context(),
//			onesoidc.DevicePaths{Config: files.Config, Key: files.Key},
//			onesoidc.WithHTTPClient(idp.HTTPClient()))
//		idp.ScriptCIBA("alice", onesoidctest.CIBAScript{PendingPolls: 2}) // approved at the third poll
//		ack, _ := client.MakeCIBARequest(t.Context(), onesoidc.CIBARequest{Hint: onesoidc.LoginHint{Kind: onesoidc.HintLogin, Value: "alice"}})
//		res, err := client.WaitForCIBA(t.Context(), ack) // 15 s on the bubble's clock, no real time
//		...
//	})
//
// NewServer(onesoidctest.WithONES()) gives the same provider on a loopback port, for code that
// cannot take an *http.Client, at the price of real time.
//
// WithONES makes the Server behave as the ONES provider (its CIBA route and request object
// shape, opaque access tokens); a client made from device files talks ONES, so use it with
// NewClientFromDevice. Without it the Server is a stock OpenID Provider (form or standard request
// object CIBA requests, RFC 9068 JWT access tokens).
//
// # Scripting logins
//
// CIBA requests are scripted per user with ScriptCIBA (a user without a script is approved at the
// first poll): pending polls, then an Outcome (Approve, Deny, Expire, TransactionFailed,
// FailWithCode, or AwaitDecision until the test calls Decide), slow_down answers on chosen polls,
// an interval, an expiry, a required user code, the claims of the ID token. Ping mode is switched
// on per client with SetCIBANotificationEndpoint; Ping then delivers the notification. ONES QR
// sessions are scripted with ScriptQR, RFC 8628 device authorizations with ScriptDeviceFlow.
// CIBARequests, QRSessions and Requests report what the client sent.
//
// # Tokens and keys
//
// MintIDToken, MintAccessToken and MintOpaqueToken make tokens for a user, as a login would;
// introspection reports the access tokens active until they expire or are revoked. RotateKeys,
// RetireOldKeys, UseKey, AddKey, RemoveKey and PublishRaw change the published JWK Set; Mint,
// MintWith and SignRaw sign anything, for tests of what a validator must refuse.
//
// # Faults
//
// Inject replaces or delays the answers of an endpoint (status, body, headers, redirect, delay,
// hang) for a number of requests; EditMetadata edits the discovery document.
//
// # Real time and testing/synctest
//
// NewServer listens on a loopback port, as httptest.NewServer does. NewInMemory has no listener:
// its HTTPClient calls the handler in memory. Create it inside a testing/synctest bubble and
// every poll interval, token lifetime and delay runs on the bubble's fake clock, so a CIBA login
// with a 5 s interval costs no real time (see the Example). HandlerClient reaches any other
// handler (a CIBA ping endpoint, a server under test) the same way.
//
// A Server is safe for concurrent use and holds no global state, with one exception made for
// speed: Servers created without RotateKeys or UseKey share one RSA signing key generated once
// per process (generating RSA keys is slow). The package has no init function.
package onesoidctest
