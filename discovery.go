package onesoidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

// ProviderMetadata is the OpenID Provider configuration document (OpenID Connect Discovery 1.0 §3)
// with the fields CIBA (CIBA Core §4), device authorization (RFC 8628 §4), introspection
// (RFC 8414 §2) and revocation need.
type ProviderMetadata struct {
	// Issuer is "issuer", the provider's issuer identifier; it must equal the URL the document was
	// fetched for (OpenID Connect Discovery 1.0 §4.3).
	Issuer string `json:"issuer"`
	// AuthorizationEndpoint is "authorization_endpoint" (OpenID Connect Core 1.0 §3.1.2); this
	// package does not use it.
	AuthorizationEndpoint string `json:"authorization_endpoint,omitempty"`
	// TokenEndpoint is "token_endpoint" (RFC 6749 §3.2), where device tokens are requested and CIBA
	// and RFC 8628 logins are polled.
	TokenEndpoint string `json:"token_endpoint"`
	// UserinfoEndpoint is "userinfo_endpoint" (OpenID Connect Core 1.0 §5.3), or "".
	UserinfoEndpoint string `json:"userinfo_endpoint,omitempty"`
	// JWKSURI is "jwks_uri", the provider's JSON Web Key Set (RFC 7517 §5) that signs its tokens.
	JWKSURI string `json:"jwks_uri"`
	// EndSessionEndpoint is "end_session_endpoint" (OpenID Connect RP-Initiated Logout 1.0 §2.1), or
	// "".
	EndSessionEndpoint string `json:"end_session_endpoint,omitempty"`
	// IntrospectionEndpoint is "introspection_endpoint" (RFC 7662 §2, RFC 8414 §2), or "": opaque
	// access tokens are validated there.
	IntrospectionEndpoint string `json:"introspection_endpoint,omitempty"`
	// RevocationEndpoint is "revocation_endpoint" (RFC 7009 §2, RFC 8414 §2), or "".
	RevocationEndpoint string `json:"revocation_endpoint,omitempty"`
	// DeviceAuthorizationEndpoint is "device_authorization_endpoint" (RFC 8628 §4), or "": the RFC
	// 8628 QR login starts there.
	DeviceAuthorizationEndpoint string `json:"device_authorization_endpoint,omitempty"`
	// BackchannelAuthenticationEndpoint is "backchannel_authentication_endpoint" (CIBA Core §4), or
	// "" when the provider offers no CIBA.
	BackchannelAuthenticationEndpoint string `json:"backchannel_authentication_endpoint,omitempty"`
	// BackchannelTokenDeliveryModesSupported is "backchannel_token_delivery_modes_supported" (CIBA
	// Core §4): "poll", "ping", "push".
	BackchannelTokenDeliveryModesSupported []string `json:"backchannel_token_delivery_modes_supported,omitempty"`
	// BackchannelAuthenticationRequestSigningAlgValuesSupported is
	// "backchannel_authentication_request_signing_alg_values_supported" (CIBA Core §4): the
	// algorithms of signed CIBA request objects.
	BackchannelAuthenticationRequestSigningAlgValuesSupported []string `json:"backchannel_authentication_request_signing_alg_values_supported,omitempty"`
	// BackchannelUserCodeParameterSupported is "backchannel_user_code_parameter_supported" (CIBA
	// Core §4): whether CIBARequest.UserCode may be sent.
	BackchannelUserCodeParameterSupported bool `json:"backchannel_user_code_parameter_supported,omitempty"`
	// ScopesSupported is "scopes_supported" (OpenID Connect Discovery 1.0 §3), or nil.
	ScopesSupported []string `json:"scopes_supported,omitempty"`
	// ResponseTypesSupported is "response_types_supported" (OpenID Connect Discovery 1.0 §3).
	ResponseTypesSupported []string `json:"response_types_supported,omitempty"`
	// GrantTypesSupported is "grant_types_supported" (OpenID Connect Discovery 1.0 §3), or nil (RFC
	// 8414 §2 then means authorization_code and implicit).
	GrantTypesSupported []string `json:"grant_types_supported,omitempty"`
	// ClaimsSupported is "claims_supported" (OpenID Connect Discovery 1.0 §3), or nil.
	ClaimsSupported []string `json:"claims_supported,omitempty"`
	// IDTokenSigningAlgValuesSupported is "id_token_signing_alg_values_supported" (OpenID Connect
	// Discovery 1.0 §3): the algorithms the provider signs ID tokens with.
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported,omitempty"`
	// TokenEndpointAuthMethodsSupported is "token_endpoint_auth_methods_supported" (OpenID Connect
	// Discovery 1.0 §3); it must allow private_key_jwt when present.
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	// TokenEndpointAuthSigningAlgValuesSupported is
	// "token_endpoint_auth_signing_alg_values_supported" (OpenID Connect Discovery 1.0 §3): the
	// algorithms the provider accepts for client assertions.
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	// ApplicationsURI is "ones_applications_uri", the URL of the ONES application list (a
	// member this package names, as ONES publishes none; see Applications).
	ApplicationsURI string `json:"ones_applications_uri,omitempty"`

	// Raw is the whole document as the provider sent it, for fields not listed above.
	Raw json.RawMessage `json:"-"`
}

// Discover fetches and validates the provider configuration of issuer from
// {issuer}/.well-known/openid-configuration (OpenID Connect Discovery 1.0 §4). The document's
// issuer must equal issuer exactly (§4.3); token_endpoint and jwks_uri must be present; the issuer
// and every endpoint must use https unless their host is loopback (127.0.0.0/8, ::1, localhost).
// Unreachable providers and 408/429/5xx answers are retried (WithDiscoveryAttempts) with capped
// exponential backoff and jitter, honouring Retry-After; ctx cancellation stops at once.
func Discover(ctx context.Context, issuer string, opts ...Option) (*ProviderMetadata, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	if err := checkEndpoint("issuer", issuer, true); err != nil {
		return nil, err
	}
	h := newHTTPCore(o)
	wellKnown := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	var lastErr error
	for attempt := range o.attempts {
		if attempt > 0 {
			if err := sleepCtx(ctx, backoff(attempt, lastErr)); err != nil {
				return nil, wrapf("onesoidc: discovery of %s: %w (last error: %w)", issuer, err, lastErr)
			}
		}
		meta, err := fetchMetadata(ctx, h, wellKnown, issuer)
		if err == nil {
			return meta, nil
		}
		lastErr = err
		var he *HTTPError
		if ctx.Err() != nil || !errors.As(err, &he) || !he.Temporary() {
			return nil, err
		}
		o.logger.WarnContext(ctx, "onesoidc: discovery failed, will retry", "issuer", issuer,
			"attempt", attempt+1, "of", o.attempts, "error", err)
	}
	var he *HTTPError
	if o.attempts > 1 && errors.As(lastErr, &he) {
		last := *he
		last.Reason = strings.TrimSuffix(fmt.Sprintf("after %d attempts: %s", o.attempts, he.Reason), ": ")
		return nil, &last
	}
	return nil, lastErr
}

func fetchMetadata(ctx context.Context, h *httpCore, wellKnown, issuer string) (*ProviderMetadata, error) {
	resp, err := h.exchange(ctx, request{op: "discovery", method: "GET", url: wellKnown, limit: maxDocumentBody})
	if err != nil {
		return nil, err
	}
	return parseMetadata(resp, issuer)
}

// parseMetadata decodes and validates a discovery document (OpenID Connect Discovery 1.0 §3,
// §4.3) fetched for issuer.
func parseMetadata(resp *response, issuer string) (*ProviderMetadata, error) {
	var meta ProviderMetadata
	if err := resp.decode("invalid provider metadata", &meta); err != nil {
		return nil, err
	}
	meta.Raw = json.RawMessage(resp.body)
	if err := meta.validate(issuer); err != nil {
		return nil, err
	}
	return &meta, nil
}

// supportsPrivateKeyJWT fails fast when the provider says it does not accept private_key_jwt
// client authentication, or not with alg. Absent lists say nothing.
func (m *ProviderMetadata) supportsPrivateKeyJWT(alg string) error {
	if l := m.TokenEndpointAuthMethodsSupported; len(l) > 0 && !slices.Contains(l, "private_key_jwt") {
		return &ConfigError{Field: "token_endpoint_auth_methods_supported",
			Reason: fmt.Sprintf("the provider does not offer private_key_jwt client authentication (it offers %s)", sanitize(strings.Join(l, " "), 200)),
			Err:    ErrNotSupportedByProvider}
	}
	if l := m.TokenEndpointAuthSigningAlgValuesSupported; len(l) > 0 && !slices.Contains(l, alg) {
		return &ConfigError{Field: "token_endpoint_auth_signing_alg_values_supported",
			Reason: fmt.Sprintf("the provider does not accept %s client assertions (it accepts %s)", alg, sanitize(strings.Join(l, " "), 200)),
			Err:    ErrNotSupportedByProvider}
	}
	return nil
}

// clone returns a deep copy of m, so that the client's metadata cannot change under it.
func (m *ProviderMetadata) clone() *ProviderMetadata {
	c := *m
	for _, f := range []*[]string{&c.BackchannelTokenDeliveryModesSupported, &c.BackchannelAuthenticationRequestSigningAlgValuesSupported,
		&c.ScopesSupported, &c.ResponseTypesSupported, &c.GrantTypesSupported, &c.ClaimsSupported,
		&c.IDTokenSigningAlgValuesSupported, &c.TokenEndpointAuthMethodsSupported, &c.TokenEndpointAuthSigningAlgValuesSupported} {
		*f = slices.Clone(*f)
	}
	c.Raw = slices.Clone(c.Raw)
	return &c
}

// validate checks m against the configured issuer: exact issuer match, required endpoints, and
// transport security of every endpoint.
func (m *ProviderMetadata) validate(issuer string) error {
	if m.Issuer != issuer {
		return &ConfigError{Field: "issuer", Reason: fmt.Sprintf(
			"provider metadata names issuer %q, expected exactly %q", sanitize(m.Issuer, 200), issuer), Err: ErrIssuerMismatch}
	}
	required := []struct{ name, value string }{
		{"token_endpoint", m.TokenEndpoint},
		{"jwks_uri", m.JWKSURI},
	}
	for _, f := range required {
		if f.value == "" {
			return &ConfigError{Field: f.name, Reason: "missing from provider metadata"}
		}
	}
	optional := []struct{ name, value string }{
		{"token_endpoint", m.TokenEndpoint},
		{"jwks_uri", m.JWKSURI},
		{"authorization_endpoint", m.AuthorizationEndpoint},
		{"userinfo_endpoint", m.UserinfoEndpoint},
		{"end_session_endpoint", m.EndSessionEndpoint},
		{"introspection_endpoint", m.IntrospectionEndpoint},
		{"revocation_endpoint", m.RevocationEndpoint},
		{"device_authorization_endpoint", m.DeviceAuthorizationEndpoint},
		{"backchannel_authentication_endpoint", m.BackchannelAuthenticationEndpoint},
	}
	for _, f := range optional {
		if f.value == "" {
			continue
		}
		if err := checkEndpoint(f.name, f.value, false); err != nil {
			return err
		}
	}
	return nil
}

// checkEndpoint requires an absolute https URL, or http on a loopback host; an issuer also may not
// carry a query or fragment (Discovery §3).
func checkEndpoint(field, raw string, isIssuer bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return &ConfigError{Field: field, Reason: "not a URL", Err: err}
	}
	if u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return &ConfigError{Field: field, Reason: fmt.Sprintf("%q is not an absolute http(s) URL", sanitize(raw, 200))}
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return &ConfigError{Field: field, Reason: fmt.Sprintf("%q must use https (http is allowed on loopback hosts only)", sanitize(raw, 200))}
	}
	if isIssuer && (u.RawQuery != "" || u.Fragment != "" || u.User != nil) {
		return &ConfigError{Field: field, Reason: fmt.Sprintf("%q must not have a query, fragment or user info", sanitize(raw, 200))}
	}
	return nil
}

// isLoopback reports whether host is localhost, in 127.0.0.0/8 or ::1.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// backoff returns the wait before attempt n (n >= 1): 500 ms doubling, capped at 8 s, with jitter
// in [d/2, d]; a server's Retry-After wins when longer (capped at 30 s).
func backoff(n int, lastErr error) time.Duration {
	d := min(500*time.Millisecond<<(n-1), 8*time.Second)
	d = d/2 + rand.N(d/2+1)
	var he *HTTPError
	if errors.As(lastErr, &he) && he.RetryAfter > d {
		d = min(he.RetryAfter, 30*time.Second)
	}
	return d
}

// sleepCtx waits for d or until ctx is done, whichever comes first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
