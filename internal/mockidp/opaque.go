package mockidp

// WithOpaqueAccessTokens makes the IdP issue opaque access tokens, as the ONES provider and
// oidc-provider do: 43-character base64url strings (256 random bits) that only introspection
// explains. The introspection answer then carries "aud" only for a token requested with a
// resource indicator. By default access tokens are RFC 9068 JWTs (typ at+jwt).
func WithOpaqueAccessTokens() Option { return func(m *IdP) { m.opaque = true } }

// accessToken issues an access token with claims: a signed at+jwt, or an opaque string under
// WithOpaqueAccessTokens. aud is what introspection answers as "aud" (none when empty).
func (m *IdP) accessToken(claims map[string]any, resource string) (token string, aud []string, err error) {
	if m.opaque {
		if resource != "" {
			aud = []string{resource}
		}
		return opaqueToken(), aud, nil
	}
	if a, ok := claims["aud"].(string); ok {
		aud = []string{a}
	}
	tok, err := m.Mint(claims, map[string]any{"typ": "at+jwt"})
	return tok, aud, err
}
