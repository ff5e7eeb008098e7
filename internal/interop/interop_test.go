//go:build interop

package interop

import (
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ones-now/onesoidc"
)

// These tests speak the wire protocol directly to document what the provider does; the SDK
// flows get their own interop tests on top of the same harness.

func TestInteropDiscovery(t *testing.T) {
	t.Parallel()
	keys := newProviderKeys(t)
	p := startProvider(t, Config{ProviderJWKS: privateJWKS(keys...)})

	meta, err := onesoidc.Discover(t.Context(), p.Issuer())
	if err != nil {
		t.Fatalf("Discover(%s): %v\nprovider stderr:\n%s", p.Issuer(), err, p.Stderr())
	}
	iss := p.Issuer()
	if !strings.HasSuffix(iss, "/oidc") || meta.Issuer != iss {
		t.Errorf("issuer = %q, want %q ending in /oidc", meta.Issuer, iss)
	}
	endpoints := []struct{ name, got, want string }{
		{"token_endpoint", meta.TokenEndpoint, iss + "/token"},
		{"jwks_uri", meta.JWKSURI, iss + "/jwks"},
		{"backchannel_authentication_endpoint", meta.BackchannelAuthenticationEndpoint, iss + "/backchannel"},
		{"introspection_endpoint", meta.IntrospectionEndpoint, iss + "/token/introspection"},
		{"revocation_endpoint", meta.RevocationEndpoint, iss + "/token/revocation"},
	}
	for _, e := range endpoints {
		if e.got != e.want {
			t.Errorf("%s = %q, want %q", e.name, e.got, e.want)
		}
	}
	lists := []struct {
		name      string
		got, want []string
	}{
		{"backchannel_token_delivery_modes_supported", meta.BackchannelTokenDeliveryModesSupported, []string{"poll", "ping"}},
		{"grant_types_supported", meta.GrantTypesSupported, []string{grantClientCredentials, grantCIBA, grantRefreshToken}},
		{"token_endpoint_auth_methods_supported", meta.TokenEndpointAuthMethodsSupported, []string{"private_key_jwt"}},
		{"token_endpoint_auth_signing_alg_values_supported", meta.TokenEndpointAuthSigningAlgValuesSupported, []string{"RS256", "PS256", "ES256", "EdDSA"}},
		{"id_token_signing_alg_values_supported", meta.IDTokenSigningAlgValuesSupported, []string{"RS256", "PS256", "ES256", "EdDSA"}},
		{"backchannel_authentication_request_signing_alg_values_supported", meta.BackchannelAuthenticationRequestSigningAlgValuesSupported, []string{"RS256", "PS256", "ES256", "EdDSA"}},
		{"scopes_supported", meta.ScopesSupported, []string{"openid", "offline_access", "profile"}},
	}
	for _, l := range lists {
		for _, w := range l.want {
			if !slices.Contains(l.got, w) {
				t.Errorf("%s = %v, missing %q", l.name, l.got, w)
			}
		}
	}
	if !meta.BackchannelUserCodeParameterSupported {
		t.Error("backchannel_user_code_parameter_supported = false, want true")
	}

	// jwks_uri serves exactly the public halves of the keys the harness generated.
	set := p.JWKS(t)
	if len(set.Keys) != len(keys) {
		t.Fatalf("jwks_uri has %d keys, want %d", len(set.Keys), len(keys))
	}
	for _, k := range keys {
		got := set.Key(k.KID)
		if len(got) != 1 {
			t.Errorf("jwks_uri lacks kid %s", k.KID)
			continue
		}
		if !got[0].IsPublic() {
			t.Errorf("jwks_uri serves private material for kid %s", k.KID)
		}
	}
}

func TestInteropClientCredentialsRaw(t *testing.T) {
	t.Parallel()
	algs := []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA}
	keys := map[jose.SignatureAlgorithm]*Key{}
	var clients []Client
	for _, alg := range algs {
		keys[alg] = newKey(t, alg)
		clients = append(clients, deviceClient("device-"+strings.ToLower(string(alg)), keys[alg]))
	}
	p := startProvider(t, Config{Clients: clients})
	token := p.Metadata(t).TokenEndpoint

	for _, alg := range algs {
		t.Run(string(alg), func(t *testing.T) {
			t.Parallel()
			id := "device-" + strings.ToLower(string(alg))
			a := assertion(t, keys[alg], id, token)
			form := with(clientAuth(id, a), "grant_type", grantClientCredentials)

			mark := p.Mark()
			r := p.postForm(t, token, form)
			w := p.expectTokens(t, r, mark)
			if w.ExpiresIn != 600 {
				t.Errorf("expires_in = %d, want the provider default 600", w.ExpiresIn)
			}
			if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
				t.Errorf("Cache-Control = %q, want no-store", cc)
			}

			// RFC 7523 §3 item 7: the provider remembers jti; a replay is invalid_client.
			mark = p.Mark()
			r = p.postForm(t, token, form)
			p.expectError(t, r, mark, http.StatusUnauthorized, "invalid_client")
			if log := p.StderrSince(mark); !strings.Contains(log, "only be used once") {
				t.Errorf("replay reason not on stderr:\n%s", log)
			}
		})
	}

	// What the provider accepts in an assertion (IDP-NOTES "Client assertions"); the reason of
	// each rejection is only on the provider's stderr.
	es := keys[jose.ES256]
	const id = "device-es256"
	iss := p.Issuer()
	psWithRS := &Key{Private: keys[jose.RS256].Private, Alg: jose.PS256, KID: keys[jose.RS256].KID}
	tests := []struct {
		name   string
		key    *Key
		client string
		edit   func(map[string]any)
		header map[jose.HeaderKey]any
		ok     bool
		detail string // substring of the stderr line of a rejection
	}{
		{name: "aud token endpoint", ok: true},
		{name: "aud issuer", edit: func(c map[string]any) { c["aud"] = iss }, ok: true},
		{name: "aud array with token endpoint", edit: func(c map[string]any) { c["aud"] = []string{"https://other.example", token} }, ok: true},
		{name: "no iat", edit: func(c map[string]any) { delete(c, "iat") }, ok: true},
		{name: "no kid", header: map[jose.HeaderKey]any{"kid": ""}, ok: true},
		{name: "aud issuer with trailing slash", edit: func(c map[string]any) { c["aud"] = iss + "/" }, detail: "audience"},
		{name: "aud other", edit: func(c map[string]any) { c["aud"] = "https://other.example/token" }, detail: "audience"},
		{name: "no jti", edit: func(c map[string]any) { delete(c, "jti") }, detail: "unique jti (JWT ID) must be provided"},
		{name: "no exp", edit: func(c map[string]any) { delete(c, "exp") }, detail: "expiration must be specified"},
		{name: "expired beyond tolerance", edit: func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() }, detail: "jwt expired"},
		{name: "nbf in the future", edit: func(c map[string]any) { c["nbf"] = time.Now().Add(time.Minute).Unix() }, detail: "jwt not active yet"},
		{name: "iss not the client", edit: func(c map[string]any) { c["iss"] = "someone-else" }, detail: "iss (JWT issuer) must be the client_id"},
		{name: "unknown kid", header: map[jose.HeaderKey]any{"kid": "not-registered"}, detail: "no applicable key found"},
		{name: "alg not of the registered key", key: psWithRS, client: "device-rs256", detail: "no applicable key found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			key, client := es, id
			if tc.key != nil {
				key, client = tc.key, tc.client
			}
			claims := assertionClaims(client, token)
			if tc.edit != nil {
				tc.edit(claims)
			}
			form := with(clientAuth(client, signJWT(t, key, claims, tc.header)), "grant_type", grantClientCredentials)
			mark := p.Mark()
			r := p.postForm(t, token, form)
			if tc.ok {
				p.expectTokens(t, r, mark)
				return
			}
			w := p.expectError(t, r, mark, http.StatusUnauthorized, "invalid_client")
			if w.ErrorDescription != "client authentication failed" {
				t.Errorf("error_description = %q", w.ErrorDescription)
			}
			if log := p.StderrSince(mark); !strings.Contains(log, "[grant.error]") || !strings.Contains(log, tc.detail) {
				t.Errorf("stderr lacks a grant.error line with %q:\n%s", tc.detail, log)
			}
		})
	}

	t.Run("opaque token introspection", func(t *testing.T) {
		t.Parallel()
		c := &rawClient{p: p, id: id, key: es}
		mark := p.Mark()
		w := p.expectTokens(t, c.clientCredentials(t), mark)
		if strings.Count(w.AccessToken, ".") == 2 {
			t.Errorf("access token without resource is a JWT, want opaque")
		}
		in := c.introspect(t, w.AccessToken)
		if in.Active == nil || !*in.Active || in.ClientID != id {
			t.Errorf("introspection = %+v, want active for %s", in, id)
		}
	})

	t.Run("JWT access token with resource", func(t *testing.T) {
		t.Parallel()
		c := &rawClient{p: p, id: id, key: es}
		mark := p.Mark()
		w := p.expectTokens(t, c.clientCredentials(t, "resource", "urn:ones:interop:api", "scope", "api:read"), mark)
		h, claims := p.verifyJWT(t, w.AccessToken)
		if typ := h.ExtraHeaders["typ"]; typ != "at+jwt" {
			t.Errorf("typ = %v, want at+jwt (RFC 9068)", typ)
		}
		if claims["aud"] != "urn:ones:interop:api" || claims["client_id"] != id || claims["iss"] != p.Issuer() {
			t.Errorf("claims = %v", claims)
		}
		if claims["scope"] != "api:read" {
			t.Errorf("scope = %v, want api:read", claims["scope"])
		}
	})
}

// cibaProvider starts a provider with the CIBA clients the CIBA tests use; their keys are in
// the returned map by client id.
func cibaProvider(t *testing.T, cfg Config, extra ...Client) (*Provider, map[string]*rawClient) {
	t.Helper()
	type spec struct {
		id  string
		alg jose.SignatureAlgorithm
		mod func(*Client)
	}
	specs := []spec{
		{"ciba-poll", jose.ES256, nil},
		{"ciba-usercode", jose.ES256, func(c *Client) { c.BackchannelUserCodeParameter = true }},
		{"ciba-idtoken-es256", jose.ES256, func(c *Client) { c.IDTokenSignedResponseAlg = "ES256" }},
		{"ciba-idtoken-ps256", jose.EdDSA, func(c *Client) { c.IDTokenSignedResponseAlg = "PS256" }},
		{"ciba-idtoken-eddsa", jose.EdDSA, func(c *Client) { c.IDTokenSignedResponseAlg = "EdDSA" }},
		{"ciba-signed", jose.ES256, func(c *Client) { c.BackchannelAuthenticationRequestSigningAlg = "ES256" }},
	}
	keys := map[string]*Key{}
	for _, s := range specs {
		keys[s.id] = newKey(t, s.alg)
		c := cibaClient(s.id, keys[s.id])
		if s.mod != nil {
			s.mod(&c)
		}
		cfg.Clients = append(cfg.Clients, c)
	}
	cfg.Clients = append(cfg.Clients, extra...)
	p := startProvider(t, cfg)
	out := map[string]*rawClient{}
	for id, k := range keys {
		out[id] = &rawClient{p: p, id: id, key: k}
	}
	return p, out
}

func TestInteropCIBARaw(t *testing.T) {
	t.Parallel()
	p, clients := cibaProvider(t, Config{})
	c := clients["ciba-poll"]

	t.Run("approve", func(t *testing.T) {
		t.Parallel()
		mark := p.Mark()
		r := c.backchannel(t, "login_hint", "alice", "scope", "openid offline_access profile", "binding_message", "ABC-123")
		w := r.reply(t)
		if r.Status != http.StatusOK || w.AuthReqID == "" || w.ExpiresIn <= 0 {
			t.Fatalf("backchannel: HTTP %d %s\n%s", r.Status, r.Body, p.StderrSince(mark))
		}
		if w.Interval != nil {
			t.Errorf("interval = %d; IDP-NOTES says the provider sends none", *w.Interval)
		}
		id := w.AuthReqID
		if !slices.ContainsFunc(p.Pending(t), func(pr PendingRequest) bool {
			return pr.AuthReqID == id && pr.AccountID == "alice" && pr.ClientID == c.id && pr.BindingMessage == "ABC-123"
		}) {
			t.Errorf("pending = %+v, want %s for alice", p.Pending(t), id)
		}

		mark = p.Mark()
		p.expectError(t, c.poll(t, id), mark, http.StatusBadRequest, "authorization_pending")

		p.Approve(t, "ABC-123")
		mark = p.Mark()
		tr := c.poll(t, id)
		tok := p.expectTokens(t, tr, mark)
		if tok.IDToken == "" || tok.RefreshToken == "" {
			t.Errorf("tokens lack id_token or refresh_token: %v", tr.fields(t))
		}
		h, claims := p.verifyJWT(t, tok.IDToken)
		if h.Algorithm != "RS256" {
			t.Errorf("id_token alg = %s, want RS256 (default)", h.Algorithm)
		}
		if claims["iss"] != p.Issuer() || claims["sub"] != "alice" || claims["aud"] != c.id {
			t.Errorf("id_token claims = %v", claims)
		}
		if claims["preferred_username"] != "alice" || claims["role"] != "user" {
			t.Errorf("id_token profile claims = %v, want preferred_username alice, role user", claims)
		}
		if _, ok := claims["iat"]; !ok {
			t.Error("id_token lacks iat")
		}
		if in := c.introspect(t, tok.AccessToken); in.Active == nil || !*in.Active || in.Sub != "alice" {
			t.Errorf("introspection of the CIBA access token = %+v", in)
		}

		// A consumed auth_req_id is invalid_grant, and the provider revokes what it issued.
		mark = p.Mark()
		p.expectError(t, c.poll(t, id), mark, http.StatusBadRequest, "invalid_grant")
		if in := c.introspect(t, tok.AccessToken); in.Active == nil || *in.Active {
			t.Errorf("after a replayed auth_req_id the access token is %+v, IDP-NOTES says revoked", in)
		}
	})

	t.Run("refresh and revoke", func(t *testing.T) {
		t.Parallel()
		id := c.startCIBA(t, "login_hint", "alice", "scope", "openid offline_access", "binding_message", "REFRESH-1")
		p.ApproveID(t, id)
		mark := p.Mark()
		first := p.expectTokens(t, c.poll(t, id), mark)
		_, idClaims := p.verifyJWT(t, first.IDToken)

		mark = p.Mark()
		r := c.refresh(t, first.RefreshToken)
		second := p.expectTokens(t, r, mark)
		if second.AccessToken == first.AccessToken {
			t.Error("refresh returned the same access token")
		}
		if second.RefreshToken != first.RefreshToken {
			t.Log("refresh token was rotated (IDP-NOTES: not before 70 % of its lifetime)")
		}
		if second.IDToken == "" {
			t.Errorf("refresh answer lacks id_token: %v", r.fields(t))
		} else if _, claims := p.verifyJWT(t, second.IDToken); claims["sub"] != idClaims["sub"] || claims["iss"] != idClaims["iss"] {
			t.Errorf("refreshed id_token sub/iss %v/%v, first %v/%v", claims["sub"], claims["iss"], idClaims["sub"], idClaims["iss"])
		}

		// Revoking the refresh token revokes every token of the grant.
		if status := c.revoke(t, second.RefreshToken); status != http.StatusOK {
			t.Fatalf("revocation: HTTP %d", status)
		}
		for _, tok := range []string{first.AccessToken, second.AccessToken} {
			if in := c.introspect(t, tok); in.Active == nil || *in.Active {
				t.Errorf("access token active after revoking the refresh token: %+v", in)
			}
		}
		mark = p.Mark()
		p.expectError(t, c.refresh(t, second.RefreshToken), mark, http.StatusBadRequest, "invalid_grant")
	})

	t.Run("deny", func(t *testing.T) {
		t.Parallel()
		id := c.startCIBA(t, "login_hint", "bob", "scope", "openid", "binding_message", "DENY-1")
		p.Deny(t, "DENY-1")
		mark := p.Mark()
		w := p.expectError(t, c.poll(t, id), mark, http.StatusBadRequest, "access_denied")
		if w.ErrorDescription != "" {
			t.Logf("access_denied error_description = %q", w.ErrorDescription)
		}
	})

	t.Run("transaction_failed", func(t *testing.T) {
		t.Parallel()
		id := c.startCIBA(t, "login_hint", "bob", "scope", "openid", "binding_message", "FAIL-1")
		p.DenyID(t, id, "transaction_failed")
		mark := p.Mark()
		p.expectError(t, c.poll(t, id), mark, http.StatusBadRequest, "transaction_failed")
	})

	t.Run("requested_expiry", func(t *testing.T) {
		t.Parallel()
		r := c.backchannel(t, "login_hint", "alice", "scope", "openid", "requested_expiry", "30")
		if w := r.reply(t); r.Status != http.StatusOK || w.ExpiresIn != 30 {
			t.Errorf("requested_expiry 30: HTTP %d %s, want expires_in 30", r.Status, r.Body)
		}
	})

	errorCases := []struct {
		name   string
		client string
		kv     []string
		code   string
	}{
		{"unknown user", "ciba-poll", []string{"login_hint", "mallory", "scope", "openid"}, "unknown_user_id"},
		{"no hint", "ciba-poll", []string{"scope", "openid"}, "invalid_request"},
		{"two hints", "ciba-poll", []string{"login_hint", "alice", "login_hint_token", "alice", "scope", "openid"}, "invalid_request"},
		{"binding_message with space", "ciba-poll", []string{"login_hint", "alice", "scope", "openid", "binding_message", "ABC 123"}, "invalid_binding_message"},
		{"binding_message too long", "ciba-poll", []string{"login_hint", "alice", "scope", "openid", "binding_message", strings.Repeat("A", 21)}, "invalid_binding_message"},
		{"scope without openid", "ciba-poll", []string{"login_hint", "alice", "scope", "profile"}, "invalid_request"},
		{"requested_expiry 0", "ciba-poll", []string{"login_hint", "alice", "scope", "openid", "requested_expiry", "0"}, "invalid_request"},
		{"missing user_code", "ciba-usercode", []string{"login_hint", "alice", "scope", "openid"}, "missing_user_code"},
		{"wrong user_code", "ciba-usercode", []string{"login_hint", "alice", "scope", "openid", "user_code", "0000"}, "invalid_user_code"},
		{"signed-request client without request object", "ciba-signed", []string{"login_hint", "alice", "scope", "openid"}, "invalid_request"},
	}
	for _, tc := range errorCases {
		t.Run("error "+tc.name, func(t *testing.T) {
			t.Parallel()
			mark := p.Mark()
			w := p.expectError(t, clients[tc.client].backchannel(t, tc.kv...), mark, http.StatusBadRequest, tc.code)
			t.Logf("%s: error_description %q", tc.code, w.ErrorDescription)
		})
	}

	t.Run("user_code accepted", func(t *testing.T) {
		t.Parallel()
		clients["ciba-usercode"].startCIBA(t, "login_hint", "alice", "scope", "openid", "user_code", "1234")
	})

	t.Run("login_hint_token", func(t *testing.T) {
		t.Parallel()
		hint := signJWT(t, c.key, map[string]any{"sub": "bob", "exp": time.Now().Add(time.Minute).Unix()}, nil)
		id := c.startCIBA(t, "login_hint_token", hint, "scope", "openid")
		if pr := p.ApproveID(t, id); pr.AccountID != "bob" {
			t.Errorf("login_hint_token for bob gave account %q", pr.AccountID)
		}
	})

	// The ONES encoding (CIBA Core §7.1.1): the parameters in a request object signed by the
	// device key.
	t.Run("signed request object", func(t *testing.T) {
		t.Parallel()
		sc := clients["ciba-signed"]
		now := time.Now()
		req := signJWT(t, sc.key, map[string]any{
			"iss": sc.id, "aud": p.Issuer(), "iat": now.Unix(), "nbf": now.Unix(),
			"exp": now.Add(5 * time.Minute).Unix(), "jti": randomID(),
			"login_hint": "alice", "scope": "openid", "binding_message": "SIGNED-1",
		}, nil)
		id := sc.startCIBA(t, "request", req)
		p.Approve(t, "SIGNED-1")
		mark := p.Mark()
		p.expectTokens(t, sc.poll(t, id), mark)
	})

	for _, tc := range []struct{ client, alg string }{
		{"ciba-idtoken-es256", "ES256"},
		{"ciba-idtoken-ps256", "PS256"},
		{"ciba-idtoken-eddsa", "EdDSA"},
	} {
		t.Run("id_token "+tc.alg, func(t *testing.T) {
			t.Parallel()
			cc := clients[tc.client]
			id := cc.startCIBA(t, "login_hint", "alice", "scope", "openid")
			p.ApproveID(t, id)
			mark := p.Mark()
			tok := p.expectTokens(t, cc.poll(t, id), mark)
			if h, _ := p.verifyJWT(t, tok.IDToken); h.Algorithm != tc.alg {
				t.Errorf("id_token alg = %s, want %s", h.Algorithm, tc.alg)
			}
		})
	}
}

// TestInteropCIBASlowDown uses the harness's slow_down emulation (the provider itself never
// sends slow_down) with a 1 s interval announced in the backchannel response.
func TestInteropCIBASlowDown(t *testing.T) {
	t.Parallel()
	p, clients := cibaProvider(t, Config{SlowDown: true, CIBAInterval: 1})
	c := clients["ciba-poll"]

	r := c.backchannel(t, "login_hint", "alice", "scope", "openid", "binding_message", "SLOW-1")
	w := r.reply(t)
	if r.Status != http.StatusOK || w.Interval == nil || *w.Interval != 1 {
		t.Fatalf("backchannel: HTTP %d %s, want interval 1", r.Status, r.Body)
	}
	id := w.AuthReqID

	mark := p.Mark()
	p.expectError(t, c.poll(t, id), mark, http.StatusBadRequest, "authorization_pending")
	mark = p.Mark()
	p.expectError(t, c.poll(t, id), mark, http.StatusBadRequest, "slow_down")
	mark = p.Mark()
	p.expectError(t, c.poll(t, id), mark, http.StatusBadRequest, "slow_down")
	if log := p.StderrSince(mark); !strings.Contains(log, "[emulated.slow_down]") {
		t.Errorf("no emulated.slow_down line on stderr:\n%s", log)
	}

	// Other requests are not slowed down, and a slowed-down poll did not consume its assertion.
	other := c.startCIBA(t, "login_hint", "bob", "scope", "openid", "binding_message", "SLOW-2")
	mark = p.Mark()
	p.expectError(t, c.poll(t, other), mark, http.StatusBadRequest, "authorization_pending")

	// After interval + 5 s per slow_down since the last poll, polling is welcome again. This is
	// the suite's one real wait beyond process start-up; it overlaps the other parallel tests.
	p.Approve(t, "SLOW-2")
	time.Sleep(1*time.Second + 100*time.Millisecond)
	mark = p.Mark()
	p.expectTokens(t, c.poll(t, other), mark)
}

func TestInteropPing(t *testing.T) {
	t.Parallel()
	type ping struct {
		auth, ctype string
		body        []byte
	}
	pings := make(chan ping, 4)
	failPath := "/fail"
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		if r.URL.Path == failPath {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		pings <- ping{auth: r.Header.Get("Authorization"), ctype: r.Header.Get("Content-Type"), body: body}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))

	key := newKey(t, jose.ES256)
	pingClient := func(id, path string) Client {
		c := cibaClient(id, key)
		c.BackchannelTokenDeliveryMode = "ping"
		c.BackchannelClientNotificationEndpoint = srv.URL + path
		return c
	}
	p := startProvider(t, Config{
		PingCA:  ca,
		Clients: []Client{pingClient("ciba-ping", "/cb"), pingClient("ciba-ping-broken", failPath)},
	})
	c := &rawClient{p: p, id: "ciba-ping", key: key}

	receive := func(t *testing.T) ping {
		t.Helper()
		// backchannelResult awaits the delivery, so the ping has arrived when Approve returns.
		select {
		case pg := <-pings:
			return pg
		default:
			t.Fatalf("no ping received\nprovider stderr:\n%s", p.Stderr())
			return ping{}
		}
	}

	t.Run("approve", func(t *testing.T) {
		token := randomID()
		mark := p.Mark()
		p.expectError(t, c.backchannel(t, "login_hint", "alice", "scope", "openid"), mark, http.StatusBadRequest, "invalid_request")

		id := c.startCIBA(t, "login_hint", "alice", "scope", "openid", "binding_message", "PING-1", "client_notification_token", token)
		p.Approve(t, "PING-1")
		pg := receive(t)
		if pg.auth != "Bearer "+token {
			t.Errorf("Authorization = %q, want Bearer <client_notification_token>", pg.auth)
		}
		if !strings.HasPrefix(pg.ctype, "application/json") {
			t.Errorf("Content-Type = %q", pg.ctype)
		}
		var body map[string]any
		if err := json.Unmarshal(pg.body, &body); err != nil || len(body) != 1 || body["auth_req_id"] != id {
			t.Errorf("ping body = %s, want {\"auth_req_id\":%q}", pg.body, id)
		}
		mark = p.Mark()
		p.expectTokens(t, c.poll(t, id), mark)
	})

	t.Run("deny", func(t *testing.T) {
		token := randomID()
		id := c.startCIBA(t, "login_hint", "bob", "scope", "openid", "binding_message", "PING-2", "client_notification_token", token)
		p.Deny(t, "PING-2")
		if pg := receive(t); pg.auth != "Bearer "+token {
			t.Errorf("Authorization = %q", pg.auth)
		}
		mark := p.Mark()
		p.expectError(t, c.poll(t, id), mark, http.StatusBadRequest, "access_denied")
	})

	t.Run("failed delivery", func(t *testing.T) {
		bc := &rawClient{p: p, id: "ciba-ping-broken", key: key}
		id := bc.startCIBA(t, "login_hint", "alice", "scope", "openid", "client_notification_token", randomID())
		_, err := p.Decide(t.Context(), Decision{AuthReqID: id, Approve: true})
		if err == nil || !strings.Contains(err.Error(), "delivery_failed") {
			t.Fatalf("Decide with a failing endpoint: %v, want delivery_failed", err)
		}
		// The decision was saved before the ping: polling still gets the tokens.
		mark := p.Mark()
		p.expectTokens(t, bc.poll(t, id), mark)
	})
}

func TestInteropRestartRotatesKeys(t *testing.T) {
	t.Parallel()
	old := newProviderKeys(t)
	key := newKey(t, jose.ES256)
	p := startProvider(t, Config{
		ProviderJWKS: privateJWKS(old...),
		Clients:      []Client{deviceClient("device", key)},
		TTL:          map[string]int{"ClientCredentials": 42},
	})
	issuer := p.Issuer()
	if before := p.JWKS(t); len(before.Key(old[0].KID)) != 1 {
		t.Fatal("old key not served before restart")
	}

	fresh := newProviderKeys(t)
	p.Restart(t, privateJWKS(fresh...))
	if p.Issuer() != issuer {
		t.Fatalf("issuer changed on restart: %s -> %s", issuer, p.Issuer())
	}
	set := p.JWKS(t)
	if len(set.Key(old[0].KID)) != 0 || len(set.Key(fresh[0].KID)) != 1 {
		t.Errorf("after restart jwks_uri serves %d keys, old kid present=%v, new kid present=%v",
			len(set.Keys), len(set.Key(old[0].KID)) == 1, len(set.Key(fresh[0].KID)) == 1)
	}
	c := &rawClient{p: p, id: "device", key: key}
	mark := p.Mark()
	if w := p.expectTokens(t, c.clientCredentials(t), mark); w.ExpiresIn != 42 {
		t.Errorf("expires_in = %d, want the configured TTL 42", w.ExpiresIn)
	}
}
