// Package jose is the only code of onesoidc that reads untrusted token bytes or writes a compact
// JWS: it splits a compact JWS (RFC 7515 §7.1), decodes base64url (RFC 7515 §2, RFC 4648 §5),
// reads the JSON of a protected header (RFC 7515 §4) or a JWT payload (RFC 7519 §4, RFC 8259)
// with a strict, allocation-free reader, decodes the registered claims, verifies a signature
// with a given public key and algorithm (RFC 7518 §3, RFC 8037 §3.1), and serializes a compact
// JWS for a signer (RFC 7515 §5.1).
//
// It holds pure functions and immutable values: no I/O, no logging, no knowledge of clients,
// key sets, caches or flows. Which key verifies a token, and which claims make it valid, is the
// caller's business. Failures are *Error values of a few kinds, which the caller maps to its own
// error types; functions return a nil *Error on success. An *Error may be shared: never modify
// one.
package jose
