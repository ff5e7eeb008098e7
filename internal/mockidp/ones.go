package mockidp

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// WithONES makes the IdP behave as the ONES provider, a customised oidc-provider: its CIBA route
// is {issuer}/bc-authorize (listed in discovery; /backchannel is gone), which takes only the
// request object the ONES clients send, byte for byte (see onesRequestObject), and it issues
// opaque access tokens (WithOpaqueAccessTokens). Binding messages need not match stock
// oidc-provider's rule: the ONES provider accepts spaces and more than 20 characters.
func WithONES() Option { return func(m *IdP) { m.ones, m.opaque = true, true } }

// onesBackchannelPath is the ONES provider's CIBA route.
const onesBackchannelPath = "/oidc/bc-authorize"

// onesFormKeys are the form parameters of a ONES CIBA request, and nothing else.
var onesFormKeys = []string{"client_assertion", "client_assertion_type", "client_id", "request"}

// onesClaims are the claims a ONES request object may hold; onesRequired those it must hold.
var (
	onesClaims = []string{"login_hint_token", "id_token_hint", "scope", "acr_values", "binding_message", "user_code",
		"requested_expiry", "client_notification_token", "resource", "qr_session_id", "iss", "aud", "exp"}
	onesRequired = []string{"scope", "acr_values", "iss", "aud", "exp"}
)

// onesRequest checks a CIBA request of the ONES shape and fills rec from its request object: the
// form holds exactly request, client_id, client_assertion_type and client_assertion (no query);
// the header exactly alg (the registered one), typ "JWT" and, only when the registered key has
// one, kid; the claims only those of onesClaims, with iss = client_id, aud = the string
// {issuer}/bc-authorize, exp within (now, now + 300 s], login_hint_token or id_token_hint, scope
// and acr_values — and no iat, nbf, jti or sub.
func (m *IdP) onesRequest(r *http.Request, clientID string, rec *CIBARecord) (code string, err error) {
	if r.URL.RawQuery != "" {
		return "invalid_request", fmt.Errorf("ONES: no query parameters allowed")
	}
	if keys := slices.Sorted(maps.Keys(r.PostForm)); !slices.Equal(keys, onesFormKeys) {
		return "invalid_request", fmt.Errorf("ONES: form parameters %v, want exactly %v", keys, onesFormKeys)
	}
	for _, k := range onesFormKeys {
		if len(r.PostForm[k]) != 1 {
			return "invalid_request", fmt.Errorf("ONES: %s given more than once", k)
		}
	}
	raw := r.PostForm.Get("request")
	jws, err := jose.ParseSignedCompact(raw, assertionAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return "invalid_request_object", fmt.Errorf("ONES: request object is not a compact JWS")
	}
	m.mu.Lock()
	key := m.clients[clientID]
	m.mu.Unlock()
	if key == nil {
		return "invalid_client", fmt.Errorf("unknown client")
	}
	payload, err := jws.Verify(key.Key)
	if err != nil {
		return "invalid_request_object", fmt.Errorf("ONES: request object signature: %v", err)
	}
	headerJSON, err := base64.RawURLEncoding.DecodeString(strings.SplitN(raw, ".", 2)[0])
	if err != nil {
		return "invalid_request_object", fmt.Errorf("ONES: header is not base64url")
	}
	alg := jws.Signatures[0].Protected.Algorithm
	wantHeader := fmt.Sprintf(`{"alg":%q,"typ":"JWT"}`, alg)
	if key.KeyID != "" {
		wantHeader = fmt.Sprintf(`{"alg":%q,"typ":"JWT","kid":%q}`, alg, key.KeyID)
	}
	if string(headerJSON) != wantHeader {
		return "invalid_request_object", fmt.Errorf("ONES: header %s, want %s", headerJSON, wantHeader)
	}
	if key.Algorithm != "" && alg != key.Algorithm {
		return "invalid_request_object", fmt.Errorf("ONES: alg %s, registered %s", alg, key.Algorithm)
	}
	var claims map[string]any
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil || claims == nil {
		return "invalid_request_object", fmt.Errorf("ONES: claims are not a JSON object")
	}
	for k := range claims {
		if !slices.Contains(onesClaims, k) {
			return "invalid_request_object", fmt.Errorf("ONES: claim %q is not sent by the ONES clients", k)
		}
	}
	for _, k := range onesRequired {
		if _, ok := claims[k]; !ok {
			return "invalid_request_object", fmt.Errorf("ONES: claim %q missing", k)
		}
	}
	_, lht := claims["login_hint_token"]
	_, idth := claims["id_token_hint"]
	switch {
	case lht == idth:
		return "invalid_request", fmt.Errorf("ONES: exactly one of login_hint_token and id_token_hint")
	case claims["iss"] != clientID:
		return "invalid_request_object", fmt.Errorf("ONES: iss must be the client_id")
	case claims["aud"] != m.Issuer+"/bc-authorize":
		return "invalid_request_object", fmt.Errorf("ONES: aud must be the string %s/bc-authorize", m.Issuer)
	}
	exp, err := claims["exp"].(json.Number).Int64()
	if now := m.now().Unix(); err != nil || exp <= now || exp > now+300 {
		return "invalid_request_object", fmt.Errorf("ONES: exp must be whole seconds within the next 300 s")
	}
	rec.Encoding = "ones"
	rec.RequestHeader = map[string]any{}
	_ = json.Unmarshal(headerJSON, &rec.RequestHeader)
	rec.RequestClaims = claims
	if err := paramsFromClaims(claims, rec.Params); err != nil {
		return "invalid_request_object", err
	}
	return "", nil
}
