package onesoidctest

import (
	"net/http"
	"time"
)

// issued is what the Server remembers of a token it issued, for introspection and revocation.
type issued struct {
	clientID, subject, scope string
	exp, iat                 time.Time
	aud                      []string // introspection's "aud", if any
	revoked                  bool
	refresh                  bool
	device                   bool // client_credentials: introspection has no sub, as oidc-provider
}

// RefreshScript scripts the answers of the refresh_token grant (RFC 6749 §6). The zero value is
// the default: the refresh token stays valid (no rotation) and every answer holds an ID token
// with the original iss and sub.
type RefreshScript struct {
	// Rotate issues a new refresh token with every refresh (the old one stops working).
	Rotate bool
	// IDTokenSubject and IDTokenIssuer, when set, replace sub and iss of the refreshed ID token
	// (to test OpenID Connect Core §12.2 checks).
	IDTokenSubject, IDTokenIssuer string
	// OmitIDToken leaves id_token out of refresh answers.
	OmitIDToken bool
}

type grantState struct {
	tokens  map[string]*issued // by token value
	refresh RefreshScript
}

// ScriptRefresh scripts the refresh_token grant from now on.
func (m *Server) ScriptRefresh(b RefreshScript) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.grants.refresh = b
}

func (m *Server) track(token string, it issued) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.grants.tokens == nil {
		m.grants.tokens = map[string]*issued{}
	}
	if it.iat.IsZero() {
		it.iat = m.now()
	}
	m.grants.tokens[token] = &it
}

// MintRefreshToken returns a refresh token for clientID's user subject with scope, as a login
// would issue it: clientID can redeem it with the refresh_token grant for 24 hours (ScriptRefresh
// says how), and introspection reports it with token_type "refresh_token".
func (m *Server) MintRefreshToken(clientID, subject, scope string) string {
	rt := "rt-" + randomID()
	m.track(rt, issued{clientID: clientID, subject: subject, scope: scope, exp: m.now().Add(24 * time.Hour), refresh: true})
	return rt
}

// MintIDToken returns an ID token for clientID and subject signed by the current key.
func (m *Server) MintIDToken(clientID, subject string, extra map[string]any) (string, error) {
	now := m.now()
	claims := map[string]any{"iss": m.Issuer, "sub": subject, "aud": clientID, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range extra {
		claims[k] = v
	}
	return m.Mint(claims, nil)
}

func (m *Server) refresh(w http.ResponseWriter, r *http.Request, clientID string) {
	rt := r.PostForm.Get("refresh_token")
	now := m.now()
	m.mu.Lock()
	it := m.grants.tokens[rt]
	b := m.grants.refresh
	valid := it != nil && it.refresh && !it.revoked && it.clientID == clientID && now.Before(it.exp)
	if valid && b.Rotate {
		it.revoked = true
	}
	m.mu.Unlock()
	if !valid {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "refresh token invalid, expired or revoked")
		return
	}
	access, aud, err := m.accessToken(map[string]any{"iss": m.Issuer, "sub": it.subject, "client_id": clientID, "aud": m.Issuer,
		"iat": now.Unix(), "exp": now.Add(m.tokenTTL).Unix(), "jti": randomID(), "scope": it.scope}, "")
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	m.track(access, issued{clientID: clientID, subject: it.subject, scope: it.scope, exp: now.Add(m.tokenTTL), aud: aud})
	sub, iss := it.subject, m.Issuer
	if b.IDTokenSubject != "" {
		sub = b.IDTokenSubject
	}
	if b.IDTokenIssuer != "" {
		iss = b.IDTokenIssuer
	}
	idt, _ := m.MintIDToken(clientID, sub, map[string]any{"iss": iss})
	resp := map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": int(m.tokenTTL / time.Second),
		"id_token": idt, "scope": it.scope}
	if b.OmitIDToken {
		delete(resp, "id_token")
	}
	if b.Rotate {
		resp["refresh_token"] = m.MintRefreshToken(clientID, it.subject, it.scope)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (m *Server) introspection(w http.ResponseWriter, r *http.Request) {
	if !formPost(w, r) {
		return
	}
	if _, err := m.authenticate(r, EndpointIntrospection); err != nil {
		oauthError(w, http.StatusUnauthorized, "invalid_client", err.Error())
		return
	}
	m.mu.Lock()
	it := m.grants.tokens[r.PostForm.Get("token")]
	var resp map[string]any
	if it == nil || it.revoked || !m.now().Before(it.exp) {
		resp = map[string]any{"active": false}
	} else {
		resp = map[string]any{"active": true, "client_id": it.clientID, "sub": it.subject, "scope": it.scope,
			"exp": it.exp.Unix(), "iss": m.Issuer, "token_type": "Bearer"}
		if !it.iat.IsZero() {
			resp["iat"] = it.iat.Unix()
		}
		if len(it.aud) > 0 {
			resp["aud"] = it.aud
		}
		if it.device && m.opaque {
			delete(resp, "sub") // as oidc-provider answers for client_credentials tokens
		}
		if it.scope == "" {
			delete(resp, "scope")
		}
		if it.refresh {
			resp["token_type"] = "refresh_token"
		}
	}
	m.mu.Unlock()
	writeJSON(w, http.StatusOK, resp)
}

func (m *Server) revocation(w http.ResponseWriter, r *http.Request) {
	if !formPost(w, r) {
		return
	}
	if _, err := m.authenticate(r, EndpointRevocation); err != nil {
		oauthError(w, http.StatusUnauthorized, "invalid_client", err.Error())
		return
	}
	m.mu.Lock()
	if it := m.grants.tokens[r.PostForm.Get("token")]; it != nil {
		it.revoked = true
	}
	m.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// MintAccessToken returns an RFC 9068 JWT access token (header typ "at+jwt", signed by the
// current key) that clientID's user subject would hold: iss, sub, aud = client_id = clientID,
// scope (left out when empty), iat = now, exp = now + the token lifetime (WithTokenLifetime,
// default 600 s) and a fresh jti. A resource server whose client id is clientID accepts it
// (RequireToken, VerifyAccessToken); introspection reports it active until it expires or is
// revoked.
func (m *Server) MintAccessToken(clientID, subject, scope string) (string, error) {
	now := m.now()
	claims := map[string]any{"iss": m.Issuer, "sub": subject, "aud": clientID, "client_id": clientID,
		"iat": now.Unix(), "exp": now.Add(m.tokenTTL).Unix(), "jti": randomID()}
	if scope != "" {
		claims["scope"] = scope
	}
	tok, err := m.Mint(claims, map[string]any{"typ": "at+jwt"})
	if err != nil {
		return "", err
	}
	m.track(tok, issued{clientID: clientID, subject: subject, scope: scope, exp: now.Add(m.tokenTTL), aud: []string{clientID}})
	return tok, nil
}

// MintOpaqueToken returns an opaque access token as the ONES provider issues them (43 base64url
// characters, 256 random bits) for clientID's user subject with scope. Only introspection (RFC
// 7662 §2.2) explains it: active, with client_id, sub, scope (when not empty), iss, iat and exp =
// now + the token lifetime, until it expires or is revoked.
func (m *Server) MintOpaqueToken(clientID, subject, scope string) string {
	tok := opaqueToken()
	m.track(tok, issued{clientID: clientID, subject: subject, scope: scope, exp: m.now().Add(m.tokenTTL)})
	return tok
}
