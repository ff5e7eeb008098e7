package onesoidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ones-now/onesoidc/internal/jose"
	"golang.org/x/oauth2"
)

// clientAssertion returns a fresh private_key_jwt client assertion (RFC 7523 §3, OpenID Connect
// Core §9) for a request to endpoint: iss = sub = client_id, aud per WithAssertionAudienceIssuer and WithAssertionAudienceEndpoint, a new
// 128-bit jti, iat = now and exp = now + the assertion lifetime.
func (c *OpenIDConnectClient) clientAssertion(ctx context.Context, endpoint string) (string, error) {
	aud := c.meta.TokenEndpoint
	switch c.audience {
	case audienceIssuer:
		aud = c.issuer
	case audienceCalledEndpoint:
		aud = endpoint
	}
	now := c.now()
	var buf [384]byte
	payload := jose.AppendClaims(buf[:0], c.clientID, c.clientID, aud, newJTI(), now.Unix(),
		now.Add(c.assertionLifetime).Unix())
	tok, err := signCompact(ctx, c.signer, c.assertionHeader, payload)
	if err != nil {
		return "", wrapf("onesoidc: client assertion: %w", err)
	}
	return tok, nil
}

// postAuthenticated POSTs form to endpoint with client authentication by a fresh assertion
// (RFC 7521 §4.2) and returns the JSON answer.
func (c *OpenIDConnectClient) postAuthenticated(ctx context.Context, op, endpoint string, form url.Values, noBody bool) (*response, error) {
	assertion, err := c.clientAssertion(ctx, endpoint)
	if err != nil {
		return nil, err
	}
	form.Set("client_id", c.clientID)
	form.Set("client_assertion_type", clientAssertionType)
	form.Set("client_assertion", assertion)
	return c.http.exchange(ctx, request{op: op, method: "POST", url: endpoint, form: form, limit: maxTokenBody, noBody: noBody})
}

// tokenResponse is a successful token response (RFC 6749 §5.1, OpenID Connect Core §3.1.3.3).
type tokenResponse struct {
	AccessToken  string   `json:"access_token"`
	TokenType    string   `json:"token_type"`
	ExpiresIn    *float64 `json:"expires_in"`
	RefreshToken string   `json:"refresh_token"`
	IDToken      string   `json:"id_token"`
	Scope        string   `json:"scope"`
}

// defaultTokenLifetime is assumed when a token response has no expires_in (RFC 6749 §5.1 makes
// it optional): short, so that such a token is renewed soon.
const defaultTokenLifetime = 60 * time.Second

// parseTokenResponse decodes and checks a token response: access_token and a Bearer token_type
// are required, expires_in must be a number of at least 1 s when present (RFC 6749 §5.1;
// a token that expires at once would be fetched again on every call). access_token and
// refresh_token must be visible ASCII and spaces (RFC 6749 Appendix A.12, A.17: 1*VSCHAR), scope
// space-separated scope tokens (Appendix A.4): a provider cannot hand the caller a token or
// scope with control characters or ANSI escapes to put into headers and logs.
func (c *OpenIDConnectClient) parseTokenResponse(resp *response, requestedScope string) (*oauth2.Token, *tokenResponse, error) {
	bad := resp.invalid
	var tr tokenResponse
	if err := resp.decode("invalid token response", &tr); err != nil {
		return nil, nil, err
	}
	switch {
	case tr.AccessToken == "":
		return nil, nil, bad("token response without access_token", nil)
	case !strings.EqualFold(tr.TokenType, "Bearer"):
		return nil, nil, bad(fmt.Sprintf("token response with token_type %q, want Bearer", resp.quote(tr.TokenType, 32)), errTokenTypeNotBearer)
	case tr.ExpiresIn != nil && !(*tr.ExpiresIn >= 1 && *tr.ExpiresIn <= math.MaxInt32):
		return nil, nil, bad("token response with an out-of-range expires_in", nil)
	case !isVSChars(tr.AccessToken):
		return nil, nil, bad("token response with an access_token outside visible ASCII (RFC 6749 Appendix A.12)", nil)
	case !isVSChars(tr.RefreshToken):
		return nil, nil, bad("token response with a refresh_token outside visible ASCII (RFC 6749 Appendix A.17)", nil)
	case !isScope(tr.Scope):
		return nil, nil, bad("token response with a scope that is not scope tokens (RFC 6749 Appendix A.4)", nil)
	}
	lifetime := defaultTokenLifetime
	if tr.ExpiresIn != nil {
		lifetime = time.Duration(*tr.ExpiresIn * float64(time.Second))
	}
	if tr.Scope == "" {
		tr.Scope = requestedScope // RFC 6749 §5.1: absent scope means as requested
	}
	tok := &oauth2.Token{
		AccessToken:  tr.AccessToken,
		TokenType:    "Bearer",
		RefreshToken: tr.RefreshToken,
		Expiry:       c.now().Add(lifetime),
		ExpiresIn:    int64(lifetime / time.Second),
	}
	extra := map[string]any{"scope": tr.Scope}
	if tr.IDToken != "" {
		extra["id_token"] = tr.IDToken
	}
	return tok.WithExtra(extra), &tr, nil
}

// isVSChars reports whether s is made of VSCHAR (%x20-7E, RFC 6749 Appendix A); "" is.
func isVSChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// isScope reports whether s is scope tokens separated by spaces: NQCHAR (%x21 / %x23-5B /
// %x5D-7E) and spaces only (RFC 6749 Appendix A.4); "" is.
func isScope(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != ' ' && (c < 0x21 || c > 0x7e || c == '"' || c == '\\') {
			return false
		}
	}
	return true
}

// IntrospectionResult is the answer of the introspection endpoint (RFC 7662 §2.2). An inactive
// token is a result with Active false, not an error.
type IntrospectionResult struct {
	// Active is "active": whether the token is currently active (RFC 7662 §2.2).
	Active bool
	// Scope is "scope", the space-separated scopes of the token, or "".
	Scope string
	// ClientID is "client_id", the client the token was issued to, or "".
	ClientID string
	// Username is "username", a human-readable name of the resource owner, or "".
	Username string
	// TokenType is "token_type", such as "Bearer", or "".
	TokenType string
	// Expiry is "exp", when the token expires, or the zero time.
	Expiry time.Time
	// IssuedAt is "iat", when the token was issued, or the zero time.
	IssuedAt time.Time
	// NotBefore is "nbf", before which the token is not to be used, or the zero time.
	NotBefore time.Time
	// Subject is "sub", the subject of the token (usually a user id), or "".
	Subject string
	// Audience is "aud" as a list (RFC 7519 §4.1.3 allows a string or an array), or nil.
	Audience []string
	// Issuer is "iss", the issuer of the token, or "".
	Issuer string
	// JWTID is "jti", the token's identifier, or "".
	JWTID string

	// Raw is the whole answer, for members not listed above.
	Raw json.RawMessage

	bound bool // the answer has "cnf" (RFC 7800 §3.1): a sender-constrained token
}

// introspectionAnswer is the JSON form of an introspection answer; the NumericDates and "aud"
// are read by parseIntrospection.
type introspectionAnswer struct {
	Active    bool            `json:"active"`
	Scope     string          `json:"scope,omitempty"`
	ClientID  string          `json:"client_id,omitempty"`
	Username  string          `json:"username,omitempty"`
	TokenType string          `json:"token_type,omitempty"`
	Exp       json.RawMessage `json:"exp,omitempty"`
	Iat       json.RawMessage `json:"iat,omitempty"`
	Nbf       json.RawMessage `json:"nbf,omitempty"`
	Subject   string          `json:"sub,omitempty"`
	Aud       json.RawMessage `json:"aud,omitempty"`
	Issuer    string          `json:"iss,omitempty"`
	JWTID     string          `json:"jti,omitempty"`
	Cnf       json.RawMessage `json:"cnf,omitempty"`
}

// introspectionMembers are the members of an introspection answer that this package reads
// (introspectionAnswer, introspector.claims) with encoding/json.
var introspectionMembers = [...]string{"active", "scope", "client_id", "username", "token_type", "exp", "iat", "nbf",
	"sub", "aud", "iss", "jti", "cnf", "role", "idp_role", "acr", "preferred_username"}

// parseIntrospection reads an introspection answer. Member names are exact (RFC 8259 §4): an
// answer with a member twice, also under case folding, or with a member whose name differs from
// one read here only in case ("Active", "userName"), is refused (jose.CheckMembers). exp, iat
// and nbf must be JSON numbers within 0 … 253402300799 (9999-12-31T23:59:59Z), fractions
// allowed (RFC 7519 §2); anything else — a negative or later number, a string, a boolean, null —
// is refused, never clamped, with an error naming the member. An iat or nbf of 0 is the zero
// time; an exp of 0 is 1970-01-01T00:00:00Z, so that the token has expired.
func parseIntrospection(body []byte) (*IntrospectionResult, error) {
	if err := checkMembers(body, introspectionMembers[:]); err != nil {
		return nil, err
	}
	var a introspectionAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, err
	}
	res := &IntrospectionResult{Active: a.Active, Scope: a.Scope, ClientID: a.ClientID, Username: a.Username,
		TokenType: a.TokenType, Subject: a.Subject, Issuer: a.Issuer, JWTID: a.JWTID,
		bound: a.Cnf != nil && string(a.Cnf) != "null"}
	for _, d := range []struct {
		name string
		raw  json.RawMessage
		to   *time.Time
	}{{"exp", a.Exp, &res.Expiry}, {"iat", a.Iat, &res.IssuedAt}, {"nbf", a.Nbf, &res.NotBefore}} {
		if d.raw == nil {
			continue
		}
		t, err := parseNumericDate(d.raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.name, err)
		}
		if t.IsZero() && d.name == "exp" {
			t = time.Unix(0, 0) // an exp of 0 is 1970-01-01, long past: never "no expiry"
		}
		*d.to = t
	}
	if a.Aud != nil {
		list, err := stringOrList(a.Aud, "aud", func(s string) []string { return []string{s} })
		if err != nil {
			return nil, err
		}
		res.Audience = list
	}
	return res, nil
}

// parseNumericDate reads a JSON NumericDate (RFC 7519 §2) within 0 … 253402300799; 0 is the zero
// time.
func parseNumericDate(data []byte) (time.Time, error) {
	f, err := numericDateValue(data)
	return answerDate(f), err
}

// numericDateValue reads a JSON NumericDate (RFC 7519 §2) within 0 … 253402300799 as a number of
// seconds.
func numericDateValue(data []byte) (float64, error) {
	f, err := -1.0, error(nil)
	if len(data) > 0 && (data[0] == '-' || '0' <= data[0] && data[0] <= '9') { // a JSON number
		f, err = strconv.ParseFloat(string(data), 64)
	}
	if err != nil || !jose.ValidNumericDate(f) {
		return 0, errors.New("value outside the NumericDate range 0 … 253402300799")
	}
	return f, nil
}

// answerDate is the time of an answer's NumericDate f (numericDate), the zero time for 0.
func answerDate(f float64) time.Time {
	if f == 0 {
		return time.Time{}
	}
	return numericDate(f)
}

// stringOrList decodes a JSON string, split into values by split, or an array of strings; what
// names the member in errors.
func stringOrList(data []byte, what string, split func(string) []string) ([]string, error) {
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return nil, err
		}
		return split(s), nil
	}
	var list []string
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("%s must be a string or an array of strings", what)
	}
	return list, nil
}

// IntrospectToken asks the provider's introspection endpoint about token (RFC 7662 §2.1),
// authenticated with a client assertion. tokenTypeHint ("access_token", "refresh_token" or "")
// is passed along when set. The answer's exp, iat and nbf must be NumericDates (RFC 7519 §2)
// within 0 … 253402300799 (year 9999), and exp - iat at most 366 days, else it is refused with an
// *HTTPError.
func (c *OpenIDConnectClient) IntrospectToken(ctx context.Context, token, tokenTypeHint string) (*IntrospectionResult, error) {
	if c.meta.IntrospectionEndpoint == "" {
		return nil, &ConfigError{Field: "introspection_endpoint", Reason: "the provider metadata has no introspection endpoint", Err: ErrNotSupportedByProvider}
	}
	form := url.Values{"token": {token}}
	if tokenTypeHint != "" {
		form.Set("token_type_hint", tokenTypeHint)
	}
	resp, err := c.postAuthenticated(ctx, "introspection", c.meta.IntrospectionEndpoint, form, false)
	if err != nil {
		return nil, err
	}
	res, err := parseIntrospection(resp.body)
	if err != nil {
		return nil, resp.invalid("invalid introspection answer", err)
	}
	if !res.Expiry.IsZero() && !res.IssuedAt.IsZero() && res.Expiry.Sub(res.IssuedAt) > maxTokenLifetime {
		return nil, resp.invalid("introspection answer with a lifetime (exp - iat) beyond maxTokenLifetime (366 days)", nil)
	}
	res.Raw = json.RawMessage(resp.body)
	return res, nil
}

// RefreshToken exchanges the refresh token of prev for new tokens (RFC 6749 §6), authenticated
// with a client assertion. When the answer has no refresh token, the returned token keeps
// prev's, and when it has no ID token, prev's is kept in Extra("id_token"); when it has one, it
// is validated (VerifyIDToken) and must name the subject of
// prev's ID token (OpenID Connect Core §12.2), else the answer is rejected with a
// *ValidationError.
func (c *OpenIDConnectClient) RefreshToken(ctx context.Context, prev *oauth2.Token) (*oauth2.Token, error) {
	if prev == nil || prev.RefreshToken == "" {
		return nil, &ConfigError{Field: "refresh_token", Reason: "the token has no refresh token"}
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {prev.RefreshToken}}
	resp, err := c.postAuthenticated(ctx, "refresh", c.meta.TokenEndpoint, form, false)
	if err != nil {
		return nil, err
	}
	prevScope, _ := prev.Extra("scope").(string)
	tok, tr, err := c.parseTokenResponse(resp, prevScope)
	if err != nil {
		return nil, err
	}
	if tok.RefreshToken == "" {
		tok.RefreshToken = prev.RefreshToken
	}
	prevID, _ := prev.Extra("id_token").(string)
	if tr.IDToken != "" {
		if err := c.checkRefreshedIDToken(ctx, prevID, tr.IDToken, tok.AccessToken); err != nil {
			return nil, err
		}
	} else if prevID != "" {
		// Keep the last ID token, so that the next refresh can still check its subject.
		tok = tok.WithExtra(map[string]any{"scope": tr.Scope, "id_token": prevID})
	}
	return tok, nil
}

// RevokeToken revokes token at the provider's revocation endpoint (RFC 7009 §2.1), authenticated
// with a client assertion. tokenTypeHint ("access_token", "refresh_token" or "") is passed along
// when set. Revoking an unknown or already revoked token succeeds, as RFC 7009 §2.2 says.
func (c *OpenIDConnectClient) RevokeToken(ctx context.Context, token, tokenTypeHint string) error {
	if c.meta.RevocationEndpoint == "" {
		return &ConfigError{Field: "revocation_endpoint", Reason: "the provider metadata has no revocation endpoint", Err: ErrNotSupportedByProvider}
	}
	form := url.Values{"token": {token}}
	if tokenTypeHint != "" {
		form.Set("token_type_hint", tokenTypeHint)
	}
	_, err := c.postAuthenticated(ctx, "revocation", c.meta.RevocationEndpoint, form, true)
	return err
}

// checkRefreshedIDToken validates a refreshed ID token with VerifyIDToken and requires the
// subject of the previous ID token (OpenID Connect Core §12.2); the issuer is the client's by
// validation. The token comes from the client's own token request, so an unknown kid refetches
// the JWKS whatever the miss cooldown (fromOwnRequest). The previous token was validated when it
// was received, so only its subject is read here.
func (c *OpenIDConnectClient) checkRefreshedIDToken(ctx context.Context, prevRaw, newRaw, accessToken string) error {
	opts := []VerifyOption{ExpectAtHashOf(accessToken), fromOwnRequest()}
	if prevRaw != "" {
		var prev struct {
			Sub string `json:"sub"`
		}
		if err := decodeJWTPayload(prevRaw, &prev); err != nil || prev.Sub == "" {
			return &ConfigError{Field: "id_token", Reason: "the previous ID token has no readable subject"}
		}
		opts = append(opts, ExpectSubject(prev.Sub))
	}
	_, err := c.VerifyIDToken(ctx, newRaw, opts...)
	return err
}

func decodeJWTPayload(raw string, v any) error {
	if err := jose.UnverifiedClaims(raw, v); err != nil {
		return &ConfigError{Field: "id_token", Reason: err.Msg}
	}
	return nil
}
