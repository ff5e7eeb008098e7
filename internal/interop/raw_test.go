//go:build interop

package interop

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// Raw protocol helpers: the tests in this package speak the wire protocol themselves to document
// what the provider does; SDK-level tests replace them with onesoidc calls.

const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// rawResponse is an HTTP answer of the provider.
type rawResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// wireReply holds the members of token, backchannel authentication, introspection and error
// answers.
type wireReply struct {
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	ExpiresIn        int    `json:"expires_in"`
	IDToken          string `json:"id_token"`
	RefreshToken     string `json:"refresh_token"`
	Scope            string `json:"scope"`
	AuthReqID        string `json:"auth_req_id"`
	Interval         *int   `json:"interval"`
	Active           *bool  `json:"active"`
	Sub              string `json:"sub"`
	ClientID         string `json:"client_id"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// reply decodes r's JSON body.
func (r *rawResponse) reply(t testing.TB) wireReply {
	t.Helper()
	var w wireReply
	if err := json.Unmarshal(r.Body, &w); err != nil {
		t.Fatalf("HTTP %d, body is not JSON (%v): %.300s", r.Status, err, r.Body)
	}
	return w
}

// fields returns the member names of r's JSON object body.
func (r *rawResponse) fields(t testing.TB) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("HTTP %d, body is not a JSON object (%v): %.300s", r.Status, err, r.Body)
	}
	var names []string
	for k := range m {
		names = append(names, k)
	}
	return names
}

func (p *Provider) do(t testing.TB, req *http.Request) *rawResponse {
	t.Helper()
	resp, err := p.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v\nprovider stderr:\n%s", req.Method, req.URL, err, p.Stderr())
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return &rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

// postForm POSTs form to endpoint as application/x-www-form-urlencoded.
func (p *Provider) postForm(t testing.TB, endpoint string, form url.Values) *rawResponse {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	return p.do(t, req)
}

// clientAuth returns the private_key_jwt client authentication parameters (RFC 7523 §2.2).
func clientAuth(clientID, clientAssertion string) url.Values {
	return url.Values{
		"client_id":             {clientID},
		"client_assertion_type": {assertionType},
		"client_assertion":      {clientAssertion},
	}
}

// with returns a copy of v with the pairs kv (name, value, name, value ...) set.
func with(v url.Values, kv ...string) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out.Set(kv[i], kv[i+1])
	}
	return out
}

// rawClient is a client that speaks the wire protocol with fresh assertions.
type rawClient struct {
	p   *Provider
	id  string
	key *Key
}

// auth returns client authentication with a fresh assertion for the token endpoint audience.
func (c *rawClient) auth(t testing.TB) url.Values {
	t.Helper()
	return clientAuth(c.id, assertion(t, c.key, c.id, c.p.Metadata(t).TokenEndpoint))
}

// clientCredentials requests a token with grant_type=client_credentials and extra pairs.
func (c *rawClient) clientCredentials(t testing.TB, kv ...string) *rawResponse {
	t.Helper()
	form := with(c.auth(t), append([]string{"grant_type", grantClientCredentials}, kv...)...)
	return c.p.postForm(t, c.p.Metadata(t).TokenEndpoint, form)
}

// backchannel sends a CIBA authentication request (CIBA Core §7.1) with the pairs kv.
func (c *rawClient) backchannel(t testing.TB, kv ...string) *rawResponse {
	t.Helper()
	return c.p.postForm(t, c.p.Metadata(t).BackchannelAuthenticationEndpoint, with(c.auth(t), kv...))
}

// startCIBA sends a CIBA request that must succeed and returns its auth_req_id.
func (c *rawClient) startCIBA(t testing.TB, kv ...string) string {
	t.Helper()
	mark := c.p.Mark()
	r := c.backchannel(t, kv...)
	w := r.reply(t)
	if r.Status != http.StatusOK || w.AuthReqID == "" {
		t.Fatalf("backchannel authentication: HTTP %d %s\nprovider stderr:\n%s", r.Status, r.Body, c.p.StderrSince(mark))
	}
	return w.AuthReqID
}

// poll asks the token endpoint for the result of authReqID (CIBA Core §10.1).
func (c *rawClient) poll(t testing.TB, authReqID string) *rawResponse {
	t.Helper()
	form := with(c.auth(t), "grant_type", grantCIBA, "auth_req_id", authReqID)
	return c.p.postForm(t, c.p.Metadata(t).TokenEndpoint, form)
}

// refresh uses refreshToken (RFC 6749 §6).
func (c *rawClient) refresh(t testing.TB, refreshToken string) *rawResponse {
	t.Helper()
	form := with(c.auth(t), "grant_type", grantRefreshToken, "refresh_token", refreshToken)
	return c.p.postForm(t, c.p.Metadata(t).TokenEndpoint, form)
}

// revoke revokes token (RFC 7009 §2.1) and returns the HTTP status.
func (c *rawClient) revoke(t testing.TB, token string) int {
	t.Helper()
	aud := c.p.Metadata(t).RevocationEndpoint
	form := with(clientAuth(c.id, assertion(t, c.key, c.id, aud)), "token", token)
	return c.p.postForm(t, aud, form).Status
}

// introspect asks the introspection endpoint about token (RFC 7662 §2.1).
func (c *rawClient) introspect(t testing.TB, token string) wireReply {
	t.Helper()
	aud := c.p.Metadata(t).IntrospectionEndpoint
	form := with(clientAuth(c.id, assertion(t, c.key, c.id, aud)), "token", token)
	r := c.p.postForm(t, aud, form)
	if r.Status != http.StatusOK {
		t.Fatalf("introspection: HTTP %d %s", r.Status, r.Body)
	}
	return r.reply(t)
}

// expectError fails t unless r is an OAuth error answer with status and code; it prints the
// provider's stderr since mark otherwise.
func (p *Provider) expectError(t testing.TB, r *rawResponse, mark, status int, code string) wireReply {
	t.Helper()
	w := r.reply(t)
	if r.Status != status || w.Error != code {
		t.Fatalf("got HTTP %d %s, want HTTP %d error %q\nprovider stderr:\n%s", r.Status, r.Body, status, code, p.StderrSince(mark))
	}
	return w
}

// expectTokens fails t unless r is a successful token answer.
func (p *Provider) expectTokens(t testing.TB, r *rawResponse, mark int) wireReply {
	t.Helper()
	w := r.reply(t)
	if r.Status != http.StatusOK || w.AccessToken == "" || !strings.EqualFold(w.TokenType, "Bearer") {
		t.Fatalf("got HTTP %d %.500s, want tokens\nprovider stderr:\n%s", r.Status, r.Body, p.StderrSince(mark))
	}
	return w
}

// verifyJWT verifies the compact JWS token against the provider's JWKS and returns its header and
// claims.
func (p *Provider) verifyJWT(t testing.TB, token string) (jose.Header, map[string]any) {
	t.Helper()
	algs := []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA}
	jws, err := jose.ParseSignedCompact(token, algs)
	if err != nil {
		t.Fatalf("parse JWT: %v", err)
	}
	if len(jws.Signatures) != 1 {
		t.Fatalf("JWT has %d signatures", len(jws.Signatures))
	}
	h := jws.Signatures[0].Header
	set := p.JWKS(t)
	keys := set.Key(h.KeyID)
	if len(keys) == 0 {
		t.Fatalf("JWT kid %q is not in the provider's JWKS", h.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("verify JWT (kid %q, alg %s): %v", h.KeyID, h.Algorithm, err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatalf("JWT claims: %v", err)
	}
	return h, claims
}
