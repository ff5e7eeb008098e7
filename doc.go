// Package onesoidc is the Go SDK for ONES identity: device (machine) authentication, CIBA and QR
// user login and token validation against the ONES OpenID Provider, for Go services that run on
// devices registered through px-device-identity. It is the Go counterpart of the Rust crate
// ones-oidc.
//
// Everything goes through an [OpenIDConnectClient], built from the device identity:
//
//	client, err := onesoidc.NewClientFromDevice(ctx, onesoidc.DevicePaths{})
//
// or, step by step:
//
//	cfg, err := onesoidc.LoadDeviceConfig("/etc/px-device-identity/device.yml")
//	key, err := onesoidc.LoadPrivateKey("/root/.local/share/px-device-identity/private.pem")
//	client, err := onesoidc.NewClient(ctx, cfg, key)
//
// A client is safe for concurrent use; build one per device and share it. With it:
//
//   - call other services as the device: [OpenIDConnectClient.DeviceAccessToken];
//   - protect an API: [OpenIDConnectClient.RequireToken], or [OpenIDConnectClient.ValidateToken]
//     for a token in hand;
//   - log a user in: [OpenIDConnectClient.MakeCIBARequest] and [OpenIDConnectClient.WaitForCIBA],
//     or [OpenIDConnectClient.StartQRLogin] and [OpenIDConnectClient.WaitForQRLogin]; for a web
//     page, package [github.com/ones-now/onesoidc/weblogin] serves the browser's side;
//   - test all of it without a provider: package [github.com/ones-now/onesoidc/onesoidctest], a
//     fake ONES provider; go run ./examples/quickstart in the repository shows every flow on it.
//
// A machine that is not a registered device has no device.yml: [NewClientFromDevice] then fails
// with a [*ConfigError] that matches [io/fs.ErrNotExist] and names the path.
//
// # Device identity
//
// [LoadDeviceConfig] reads the px-device-identity device.yml (id, client_id, host, key_type,
// key_security ...); the issuer is host + "/oidc" ([DeviceConfig.IssuerURL]). [LoadPrivateKey]
// reads the device key: PKCS#1 and PKCS#8 RSA (RS256, or PS256 with [WithRSAPSS]), EC P-256,
// P-384 and P-521 in PKCS#8 or SEC1 (ES256, ES384, ES512) and Ed25519 (EdDSA). Encrypted keys,
// RSA keys under 2048 bits and other curves are refused. Devices with key_security "tpm" sign
// through px-device-identity-service with a [RemoteSigner]; any [crypto.Signer] works through
// [NewDeviceKey]. The public JWK px-device-identity registered (public_jwk.json, beside
// the key) decides the "kid" (or none) and "alg" the key announces; without it no "kid" is sent.
// [NewClientFromDevice] does all of this, and discovery, in one call.
//
// # Discovery
//
// [NewClient] fetches the provider configuration ([Discover], OpenID Connect Discovery 1.0),
// requires its issuer to match exactly and every endpoint to use https (http only on loopback),
// and retries an unreachable provider with capped exponential backoff.
// [NewClientFromMetadata] builds a client from known metadata without network access.
//
// # Device token
//
// [OpenIDConnectClient.DeviceAccessToken] returns a device access token from the client
// credentials grant, authenticated with a private_key_jwt client assertion (RFC 7523) signed by
// the device key. Tokens are cached per client and renewed before expiry by one request, however
// many goroutines ask. A token answer whose access_token or refresh_token holds anything but
// visible ASCII and spaces, or whose scope is not space-separated scope tokens, is refused (RFC 6749
// Appendix A.12, A.17, A.4), so that no control character or terminal escape of the provider's
// reaches the caller's headers and logs. [OpenIDConnectClient.TokenSource] adapts the cache to x/oauth2 and
// [OpenIDConnectClient.DeviceHTTPClient] sends the token with every request. Introspection
// (RFC 7662), refresh (RFC 6749 §6) and revocation (RFC 7009) use the same client
// authentication.
//
// # CIBA
//
// Client-Initiated Backchannel Authentication (OpenID CIBA Core 1.0) logs a user in without a
// browser: the provider asks the user on their phone to approve ("Authorize login to
// example.com?"), and the device's server waits.
//
//	resp, err := client.MakeCIBARequest(ctx, onesoidc.CIBARequest{
//		Hint:           onesoidc.LoginHint{Kind: onesoidc.HintLogin, Value: "alice"},
//		Scope:          []string{"openid", "profile"},
//		BindingMessage: "W4SCT",
//	})
//	res, err := client.WaitForCIBA(ctx, resp, onesoidc.WithProgress(show))
//
// [OpenIDConnectClient.MakeCIBARequest] sends, by default, the signed request object the ONES
// clients send; [WithStandardCIBA] picks the standard form parameters and
// [WithCIBARequestObject] the standard request object (§7.1.1), for stock providers. [OpenIDConnectClient.WaitForCIBA]
// polls as the spec asks: the first poll after the interval, slow_down adding 5 s for good,
// no poll after expiry, backoff on transport failures at least as long as Retry-After, and an
// immediate return when ctx ends, or as soon as the next allowed poll would fall after the
// request's expiry or ctx's deadline (with the error that asked for the delay).
// Pending and terminal answers are errors that match [ErrAuthorizationPending],
// [ErrAccessDenied], [ErrLoginExpired] and the other sentinels. In ping mode ([WithCIBAPing]),
// [OpenIDConnectClient.CIBANotificationHandler] serves the client notification endpoint and
// wakes the waiter. The package weblogin serves the browser side of a login (start, status,
// cancel), bound to the browser's session and keeping the tokens on the server.
//
// # QR login
//
// The ONES QR login is the default: [OpenIDConnectClient.StartQRLogin] sends
// GET {host}/auth/qr with the device access token as bearer token ({host} is the device.yml host,
// not the issuer; https only, or http on loopback) and returns a [QRSession] whose [QRCode] holds
// the JSON {"auth_req_id":…,"deviceId":…} that the ONES app scans. It renders as PNG, SVG or
// terminal text that decodes on light and dark terminals alike.
//
//	s, err := client.StartQRLogin(ctx)
//	fmt.Print(s.QR.Terminal())
//	res, err := client.WaitForQRLogin(ctx, s) // res.Token: the user's access token
//
// [OpenIDConnectClient.WaitForQRLogin] polls GET {host}/auth/qr/{auth_req_id} with the polling
// rules of CIBA (5 s interval, expiry from the session's exp, Retry-After, backoff, an immediate
// return when ctx ends); [OpenIDConnectClient.CheckQRStatus] polls once, for servers that poll on
// behalf of a browser. The approved answer carries the user's access token; it is validated by
// introspection (RFC 7662), which gives [LoginResult.Auth]. Any status other than pending or
// approved ends the login with a [*QRStatusError] that carries it. A session is single-use, dies
// at its expiry, and is polled by one caller at a time.
//
// For providers that advertise device_authorization_endpoint, [WithDeviceAuthorizationQR]
// switches to the OAuth 2.0 device authorization grant
// (RFC 8628): the QR code holds the provider's verification URL (only https URLs on the issuer's
// origin are ever rendered), the device code never leaves the session, an answer that repeats
// the device_code of a session this client already holds is refused (one device code names one
// authorization, RFC 8628 §3.2), and the ID token is validated.
//
// # Well-known applications
//
// [OpenIDConnectClient.Applications] reads the provider's list of ONES applications (types
// server, server_matrix, server_discourse, server_oauth2, server_blockchain, client, client_oidc,
// client_kyc; members in snake_case or camelCase), cached per client for
// [WithApplicationsMaxAge]. Its URL is the provider metadata member "ones_applications_uri"
// ([ProviderMetadata.ApplicationsURI]), else [WithApplicationsURL]. [OpenIDConnectClient.ApplicationByClientID]
// finds an application by client identifier and [OpenIDConnectClient.ApplicationURL] builds its
// URL from its hostname and the issuer's scheme.
//
// # Validation
//
// [OpenIDConnectClient.ValidateToken] checks a token that reaches the device's server against
// the provider's keys and returns an [AuthenticationResult]: who it speaks for
// ([AuthenticatedEntity]: user or device, subject, scope, username, role ...) and every claim.
// [OpenIDConnectClient.VerifyIDToken] and [OpenIDConnectClient.VerifyAccessToken] (RFC 9068)
// accept only their kind. The checks follow RFC 8725 and OpenID Connect Core §3.1.3.7: compact
// JWS only, a size limit before parsing, an algorithm allow-list that never holds none or HS*,
// the signature before any claim, exact issuer, audience and azp, exp/nbf/iat with one leeway,
// no crit and no keys or key URLs from the header. The JWKS is cached per client: an unknown kid
// causes at most one refetch per cooldown shared by all callers, a bad signature never
// refetches, and a failed refresh keeps the last good keys. A token that validated once is
// answered from memory until it expires: the cache is keyed by a keyed hash of the token (never
// the token), bounded by memory ([WithTokenCacheBytes], default about 140,000 typical tokens)
// and keeps the tokens asked for most often; hits take no lock, a result that the caller
// drops stays on its stack, and [OpenIDConnectClient.ValidateTokenInto] writes into a result the
// caller keeps, so that a hit allocates no result. The claims a server usually
// reads are on the result without decoding anything again: [AuthenticatedEntity] carries
// subject, username, name, email, scope and role, and [AuthenticationResult.Roles] the roles;
// [AuthenticationResult.Claims] fills a struct of the other claims straight from the verified
// payload. Opaque access tokens, which the ONES provider issues,
// are validated by introspection (RFC 7662) into the same result, cached by a keyed hash of the
// token in at most 64 MiB (about 140,000 typical answers; a token of three dot-separated parts is
// a JWT), with at most 64 introspections in flight at once ([WithMaxIntrospections]): more wait
// their turn, at most the request timeout, then fail with [ErrIntrospectionUnavailable], so that
// a flood of made-up opaque tokens cannot hold any number of requests open at the provider.
// [OpenIDConnectClient.RequireToken] is net/http
// middleware for bearer access tokens (never ID tokens unless [InsecureAcceptIDTokens]); the
// handler reads the result with [AuthenticationFromContext].
//
// Every NumericDate — exp, nbf, iat and auth_time of a token, exp, iat and nbf of an
// introspection answer — must lie within 0 … 253402300799 (year 9999, fractions allowed, RFC 7519
// §2); none is clamped, and a lifetime (exp - iat) beyond 366 days is refused. A key
// listed twice in the JWKS is one key; a token whose kid names a key skipped as unusable (an RSA
// key under 2048 bits, a point off its curve, "use" enc ...) is refused saying why. An ID token
// from the client's own token request (CIBA and RFC 8628 polls, refresh) refetches the JWKS on an
// unknown kid whatever the cooldown, so that a rotation never loses an approved login;
// [OpenIDConnectClient.RefreshKeys] fetches the set on demand.
//
// # Errors
//
// Errors are typed. An error answer of the provider is an [*OAuthError] that matches the
// sentinel of its code with [errors.Is]:
//
//	_, err := client.DeviceAccessToken(ctx)
//	if errors.Is(err, onesoidc.ErrInvalidClient) { ... } // the provider refused the device's assertion
//
// A token that fails validation is a [*ValidationError] whose Reason says why, and that matches
// sentinels such as [ErrTokenExpired], [ErrInvalidSignature] and [ErrInvalidAudience].
//
// A login the user approved whose tokens then fail validation ends with a
// [*LoginIncompleteError]: the tokens were revoked at the provider (RFC 7009) — or it says that
// revoking them failed — and it wraps why they were refused.
//
// A failed exchange (connection refused, HTML instead of JSON, an oversized body) is an
// [*HTTPError] with the status, content type and the server's Retry-After as given;
// [HTTPError.Temporary] says whether retrying may help. An RFC 6749 error body is parsed whatever
// the status: on 408, 429 and 5xx the [*HTTPError] wraps the [*OAuthError], so
// errors.Is(err, &OAuthError{Code: "temporarily_unavailable"}) holds for a 503 that says so. A login that ran out
// is one [*LoginExpiredError] whether the provider answered expired_token (it wraps that
// [*OAuthError]) or the local clock ended it. A refused 2xx answer matches [ErrInvalidResponse],
// and so does an error answer whose member names are ambiguous (every answer is read by its
// exact member names: a member twice, or "Error" for "error", is refused); more specific refusals match [ErrIssuerMismatch] and [ErrNotSupportedByProvider]. A bad configuration value, device.yml field or key file (also
// one that others may read: chmod 600) is a [*ConfigError] that names the file and field. No error
// message or log line contains a token, an assertion or key material, and the types that hold
// them print without them with every fmt verb and log without them through log/slog (they are
// slog.LogValuers). The *oauth2.Token that DeviceAccessToken and RefreshToken return is
// golang.org/x/oauth2's type, which prints its tokens: log what you need of it, not the token.
package onesoidc
