package mockidp

import (
	"net/http"
	"time"
)

// issued is what the IdP remembers of a token it issued, for introspection and revocation.
type issued struct {
	clientID, subject, scope string
	exp, iat                 time.Time
	aud                      []string // introspection's "aud", if any
	revoked                  bool
	refresh                  bool
	device                   bool // client_credentials: introspection has no sub, as oidc-provider
}

// RefreshBehaviour scripts the answers of the refresh_token grant.
type RefreshBehaviour struct {
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
	refresh RefreshBehaviour
}

// SetRefreshBehaviour scripts the refresh_token grant.
func (m *IdP) SetRefreshBehaviour(b RefreshBehaviour) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.grants.refresh = b
}

func (m *IdP) track(token string, it issued) {
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

// IssueRefreshToken creates a refresh token for clientID and subject, as a login would.
func (m *IdP) IssueRefreshToken(clientID, subject, scope string) string {
	rt := "rt-" + randomID()
	m.track(rt, issued{clientID: clientID, subject: subject, scope: scope, exp: m.now().Add(24 * time.Hour), refresh: true})
	return rt
}

// MintIDToken returns an ID token for clientID and subject signed by the current key.
func (m *IdP) MintIDToken(clientID, subject string, extra map[string]any) (string, error) {
	now := m.now()
	claims := map[string]any{"iss": m.Issuer, "sub": subject, "aud": clientID, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range extra {
		claims[k] = v
	}
	return m.Mint(claims, nil)
}

func (m *IdP) refresh(w http.ResponseWriter, r *http.Request, clientID string) {
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
		OAuthError(w, http.StatusBadRequest, "invalid_grant", "refresh token invalid, expired or revoked")
		return
	}
	access, aud, err := m.accessToken(map[string]any{"iss": m.Issuer, "sub": it.subject, "client_id": clientID, "aud": m.Issuer,
		"iat": now.Unix(), "exp": now.Add(m.tokenTTL).Unix(), "jti": randomID(), "scope": it.scope}, "")
	if err != nil {
		OAuthError(w, http.StatusInternalServerError, "server_error", err.Error())
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
		resp["refresh_token"] = m.IssueRefreshToken(clientID, it.subject, it.scope)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (m *IdP) introspection(w http.ResponseWriter, r *http.Request) {
	if !formPost(w, r) {
		return
	}
	if _, err := m.authenticate(r, EndpointIntrospection); err != nil {
		OAuthError(w, http.StatusUnauthorized, "invalid_client", err.Error())
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

func (m *IdP) revocation(w http.ResponseWriter, r *http.Request) {
	if !formPost(w, r) {
		return
	}
	if _, err := m.authenticate(r, EndpointRevocation); err != nil {
		OAuthError(w, http.StatusUnauthorized, "invalid_client", err.Error())
		return
	}
	m.mu.Lock()
	if it := m.grants.tokens[r.PostForm.Get("token")]; it != nil {
		it.revoked = true
	}
	m.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}
