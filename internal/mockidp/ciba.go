package mockidp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// EndpointBackchannel is the CIBA backchannel authentication endpoint (CIBA Core §7).
const EndpointBackchannel = "backchannel"

const (
	cibaGrantType    = "urn:openid:params:grant-type:ciba"
	cibaAuthReqClaim = "urn:openid:params:jwt:claim:auth_req_id"
	maxCIBAExpiry    = 600 // the provider caps requested_expiry at 600 s, as oidc-provider does
)

// bindingMessageRule is oidc-provider's binding message rule.
var bindingMessageRule = regexp.MustCompile(`^[a-zA-Z0-9-._+/!?#]{1,20}$`)

// cibaParamNames are the authentication request parameters the IdP reads (CIBA Core §7.1).
var cibaParamNames = []string{"login_hint", "login_hint_token", "id_token_hint", "scope", "binding_message",
	"user_code", "requested_expiry", "acr_values", "client_notification_token", "resource", "qr_session_id"}

// CIBAOutcome is how a scripted CIBA request ends.
type CIBAOutcome int

const (
	// CIBAApprove issues tokens (the default).
	CIBAApprove CIBAOutcome = iota
	// CIBADeny answers access_denied.
	CIBADeny
	// CIBAExpire answers expired_token.
	CIBAExpire
	// CIBATransactionFailed answers transaction_failed.
	CIBATransactionFailed
	// CIBAErrorCode answers CIBAScript.ErrorCode (any code, e.g. "invalid_request").
	CIBAErrorCode
	// CIBAManual stays pending until Decide is called.
	CIBAManual
)

// CIBAScript scripts the CIBA requests of one user (the hint value; for id_token_hint the
// token's sub).
type CIBAScript struct {
	// Reject, when set, answers the backchannel request with this error code (HTTP 400), e.g.
	// "unknown_user_id".
	Reject string
	// PendingPolls polls are answered authorization_pending before Outcome applies.
	PendingPolls int
	// Outcome says how the request ends.
	Outcome CIBAOutcome
	// ErrorCode is the error of CIBAErrorCode.
	ErrorCode string
	// SlowDownPolls lists poll numbers (1 for the first poll) answered slow_down; they do not
	// count towards PendingPolls.
	SlowDownPolls []int
	// Interval, when positive, is sent as interval (the real provider sends none).
	Interval int
	// ExpiresIn, when positive, is the expires_in of the answer (default 600, or the
	// requested_expiry when smaller).
	ExpiresIn int
	// UserCode, when set, must be sent as user_code.
	UserCode string
	// Subject is the sub of the issued tokens (default: the user).
	Subject string
	// OmitScope leaves scope out of the token response.
	OmitScope bool
	// OmitIDToken leaves id_token out of the token response.
	OmitIDToken bool
	// IDTokenClaims are set in the ID token after the normal claims; a nil value removes the
	// claim (e.g. {"urn:openid:params:jwt:claim:auth_req_id": nil}).
	IDTokenClaims map[string]any
	// IDTokenKey, when set, signs the ID token instead of the current key; it need not be
	// published (to test signature failures).
	IDTokenKey *jose.JSONWebKey
}

// CIBARecord is what the IdP recorded of an accepted CIBA request.
type CIBARecord struct {
	AuthReqID string
	ClientID  string
	// Encoding is "form", "request" or, under WithONES, "ones".
	Encoding string
	// Params are the authentication request parameters, from the form or the request object
	// (resource values joined by spaces).
	Params map[string]string
	// RequestHeader and RequestClaims are the request object's, for the "request" encoding.
	RequestHeader map[string]any
	RequestClaims map[string]any
	// ExpiresIn is the expires_in the IdP answered, in seconds.
	ExpiresIn int
	// Polls counts the token requests for the auth_req_id, PollTimes says when they came.
	Polls     int
	PollTimes []time.Time
	// Redeemed says whether tokens were issued.
	Redeemed bool
}

type cibaState struct {
	scripts  map[string]CIBAScript
	notify   map[string]string // client id -> client notification endpoint
	requests map[string]*cibaRequest
	order    []string
}

type cibaRequest struct {
	rec      CIBARecord
	script   CIBAScript
	subject  string
	scope    string
	expires  time.Time
	pending  int
	decided  bool
	decision CIBAOutcome
	issued   []string // tokens, revoked when the auth_req_id is replayed
}

// ScriptCIBA scripts the CIBA requests for user; requests for users without a script are
// approved at the first poll.
func (m *IdP) ScriptCIBA(user string, s CIBAScript) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ciba.scripts == nil {
		m.ciba.scripts = map[string]CIBAScript{}
	}
	m.ciba.scripts[user] = s
}

// SetCIBANotificationEndpoint registers the client notification endpoint of clientID, which
// puts the client in ping mode: its requests must then carry client_notification_token, which
// requests of poll clients must not.
func (m *IdP) SetCIBANotificationEndpoint(clientID, endpoint string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ciba.notify == nil {
		m.ciba.notify = map[string]string{}
	}
	m.ciba.notify[clientID] = endpoint
}

// CIBARequests returns the accepted CIBA requests, oldest first.
func (m *IdP) CIBARequests() []CIBARecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]CIBARecord, 0, len(m.ciba.order))
	for _, id := range m.ciba.order {
		out = append(out, m.ciba.requests[id].recordCopy())
	}
	return out
}

// CIBARequest returns the record of one CIBA request.
func (m *IdP) CIBARequest(authReqID string) (CIBARecord, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.ciba.requests[authReqID]
	if r == nil {
		return CIBARecord{}, false
	}
	return r.recordCopy(), true
}

func (r *cibaRequest) recordCopy() CIBARecord {
	c := r.rec
	c.Params = maps.Clone(r.rec.Params)
	c.PollTimes = slices.Clone(r.rec.PollTimes)
	return c
}

// Decide ends a CIBAManual request with outcome at its next poll.
func (m *IdP) Decide(authReqID string, outcome CIBAOutcome) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.ciba.requests[authReqID]
	if r == nil {
		return fmt.Errorf("mockidp: unknown auth_req_id")
	}
	r.decided, r.decision = true, outcome
	return nil
}

// Ping sends the ping notification of CIBA Core §10.2 for authReqID to the client's
// notification endpoint with hc: POST {"auth_req_id"} with the request's
// client_notification_token as Bearer token. It returns the status of the answer.
func (m *IdP) Ping(ctx context.Context, hc *http.Client, authReqID string) (int, error) {
	m.mu.Lock()
	r := m.ciba.requests[authReqID]
	var endpoint, token string
	if r != nil {
		endpoint, token = m.ciba.notify[r.rec.ClientID], r.rec.Params["client_notification_token"]
	}
	m.mu.Unlock()
	if r == nil || endpoint == "" || token == "" {
		return 0, fmt.Errorf("mockidp: no ping request for this auth_req_id")
	}
	body, _ := json.Marshal(map[string]string{"auth_req_id": authReqID})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// HandlerClient returns an HTTP client that calls h in memory, for example a client
// notification handler that Ping should reach inside a testing/synctest bubble.
func HandlerClient(h http.Handler) *http.Client { return &http.Client{Transport: inMemory{h}} }

// backchannel serves the backchannel authentication endpoint (CIBA Core §7): client
// authentication, the request (form or signed request object), its checks and the answer.
func (m *IdP) backchannel(w http.ResponseWriter, r *http.Request) {
	if !formPost(w, r) {
		return
	}
	clientID, err := m.authenticate(r, EndpointBackchannel)
	if err != nil {
		OAuthError(w, http.StatusUnauthorized, "invalid_client", err.Error())
		return
	}
	rec := CIBARecord{ClientID: clientID, Encoding: "form", Params: map[string]string{}}
	if m.ones {
		if code, err := m.onesRequest(r, clientID, &rec); err != nil {
			OAuthError(w, http.StatusBadRequest, code, err.Error())
			return
		}
	} else if raw := r.PostForm.Get("request"); raw != "" {
		for _, k := range cibaParamNames {
			if r.PostForm.Has(k) {
				OAuthError(w, http.StatusBadRequest, "invalid_request", k+" outside the request object")
				return
			}
		}
		rec.Encoding = "request"
		rec.RequestHeader, rec.RequestClaims, err = m.verifyRequestObject(raw, clientID)
		if err != nil {
			OAuthError(w, http.StatusBadRequest, "invalid_request_object", err.Error())
			return
		}
		if err := paramsFromClaims(rec.RequestClaims, rec.Params); err != nil {
			OAuthError(w, http.StatusBadRequest, "invalid_request_object", err.Error())
			return
		}
	} else {
		for _, k := range cibaParamNames {
			vs := r.PostForm[k]
			if len(vs) > 1 && k != "resource" {
				OAuthError(w, http.StatusBadRequest, "invalid_request", k+" given more than once")
				return
			}
			if len(vs) > 0 {
				rec.Params[k] = strings.Join(vs, " ")
			}
		}
	}
	p := rec.Params

	var hints []string
	for _, k := range []string{"login_hint", "login_hint_token", "id_token_hint"} {
		if _, ok := p[k]; ok {
			hints = append(hints, k)
		}
	}
	if len(hints) != 1 {
		OAuthError(w, http.StatusBadRequest, "invalid_request", "exactly one of login_hint, login_hint_token and id_token_hint is required")
		return
	}
	user := p[hints[0]]
	if hints[0] == "id_token_hint" {
		var c struct {
			Sub string `json:"sub"`
		}
		if jws, err := jose.ParseSignedCompact(user, assertionAlgs); err == nil {
			_ = json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c)
		}
		user = c.Sub
	}
	if !slices.Contains(strings.Fields(p["scope"]), "openid") {
		OAuthError(w, http.StatusBadRequest, "invalid_request", "openid scope missing")
		return
	}
	if bm, ok := p["binding_message"]; ok && !m.ones && !bindingMessageRule.MatchString(bm) {
		OAuthError(w, http.StatusBadRequest, "invalid_binding_message", "binding_message does not match "+bindingMessageRule.String())
		return
	}
	expiresIn := maxCIBAExpiry
	if v, ok := p["requested_expiry"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			OAuthError(w, http.StatusBadRequest, "invalid_request", "requested_expiry must be a positive integer")
			return
		}
		expiresIn = min(n, maxCIBAExpiry)
	}
	m.mu.Lock()
	script := m.ciba.scripts[user]
	_, ping := m.ciba.notify[clientID]
	m.mu.Unlock()
	token, hasToken := p["client_notification_token"]
	switch {
	case ping && (!hasToken || token == "" || len(token) > 1024):
		OAuthError(w, http.StatusBadRequest, "invalid_request", "client_notification_token required in ping mode")
		return
	case !ping && hasToken:
		OAuthError(w, http.StatusBadRequest, "invalid_request", "client_notification_token sent by a poll client")
		return
	case script.Reject != "":
		OAuthError(w, http.StatusBadRequest, script.Reject, "scripted rejection")
		return
	case script.UserCode != "" && p["user_code"] == "":
		OAuthError(w, http.StatusBadRequest, "missing_user_code", "user_code required")
		return
	case script.UserCode != "" && p["user_code"] != script.UserCode:
		OAuthError(w, http.StatusBadRequest, "invalid_user_code", "wrong user_code")
		return
	}
	if script.ExpiresIn > 0 {
		expiresIn = script.ExpiresIn
	}
	subject := script.Subject
	if subject == "" {
		subject = user
	}
	rec.AuthReqID = randomID()
	rec.ExpiresIn = expiresIn
	req := &cibaRequest{rec: rec, script: script, subject: subject, scope: p["scope"],
		expires: m.now().Add(time.Duration(expiresIn) * time.Second)}
	m.addCIBARequest(req)
	resp := map[string]any{"auth_req_id": rec.AuthReqID, "expires_in": expiresIn}
	if script.Interval > 0 {
		resp["interval"] = script.Interval
	}
	writeJSON(w, http.StatusOK, resp)
}

// addCIBARequest registers a CIBA request, or a device authorization request, by its id.
func (m *IdP) addCIBARequest(req *cibaRequest) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ciba.requests == nil {
		m.ciba.requests = map[string]*cibaRequest{}
	}
	m.ciba.requests[req.rec.AuthReqID] = req
	m.ciba.order = append(m.ciba.order, req.rec.AuthReqID)
}

// verifyRequestObject verifies a CIBA signed request object (CIBA Core §7.1.1) with the client's
// registered key and checks its claims: iss = client_id, aud = issuer, iat, nbf and exp present
// and sane (lifetime at most 1 hour), jti present and unused.
func (m *IdP) verifyRequestObject(raw, clientID string) (header, claims map[string]any, err error) {
	jws, err := jose.ParseSignedCompact(raw, assertionAlgs)
	if err != nil {
		return nil, nil, fmt.Errorf("request object: %v", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, nil, fmt.Errorf("request object: one signature expected")
	}
	hdr := jws.Signatures[0].Protected
	m.mu.Lock()
	key := m.clients[clientID]
	m.mu.Unlock()
	if key == nil {
		return nil, nil, fmt.Errorf("unknown client")
	}
	if key.Algorithm != "" && hdr.Algorithm != key.Algorithm {
		return nil, nil, fmt.Errorf("request object alg %s, registered %s", hdr.Algorithm, key.Algorithm)
	}
	if hdr.KeyID != "" && hdr.KeyID != key.KeyID {
		return nil, nil, fmt.Errorf("request object kid %q is not the registered key's", hdr.KeyID)
	}
	payload, err := jws.Verify(key.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("request object signature: %v", err)
	}
	header = map[string]any{"alg": hdr.Algorithm}
	if hdr.KeyID != "" {
		header["kid"] = hdr.KeyID
	}
	for k, v := range hdr.ExtraHeaders {
		header[string(k)] = v
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil || claims == nil {
		return nil, nil, fmt.Errorf("request object claims are not a JSON object")
	}
	if claims["iss"] != clientID {
		return nil, nil, fmt.Errorf("request object iss must be the client_id")
	}
	audJSON, _ := json.Marshal(claims["aud"])
	if auds, err := audList(audJSON); err != nil || !slices.Contains(auds, m.Issuer) {
		return nil, nil, fmt.Errorf("request object aud must contain the issuer")
	}
	num := func(name string) (float64, error) {
		n, ok := claims[name].(json.Number)
		if !ok {
			return 0, fmt.Errorf("request object %s missing or not a number", name)
		}
		f, err := n.Float64()
		if err != nil || math.IsNaN(f) {
			return 0, fmt.Errorf("request object %s not a number", name)
		}
		return f, nil
	}
	iat, err := num("iat")
	if err != nil {
		return nil, nil, err
	}
	nbf, err := num("nbf")
	if err != nil {
		return nil, nil, err
	}
	exp, err := num("exp")
	if err != nil {
		return nil, nil, err
	}
	now := float64(m.now().Unix())
	switch {
	case iat > now+15:
		return nil, nil, fmt.Errorf("request object iat in the future")
	case nbf > now+15:
		return nil, nil, fmt.Errorf("request object not yet valid")
	case nbf < now-3600:
		return nil, nil, fmt.Errorf("request object nbf over an hour old")
	case exp <= now-5:
		return nil, nil, fmt.Errorf("request object expired")
	case exp-iat > 3600 || exp <= iat:
		return nil, nil, fmt.Errorf("request object lifetime over an hour")
	}
	jti, _ := claims["jti"].(string)
	if len(jti) < 16 {
		return nil, nil, fmt.Errorf("request object jti missing or short")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.jtis[jti] {
		return nil, nil, fmt.Errorf("request object jti replayed")
	}
	m.jtis[jti] = true
	return header, claims, nil
}

// paramsFromClaims reads the authentication request parameters of a request object.
func paramsFromClaims(claims map[string]any, p map[string]string) error {
	for _, k := range cibaParamNames {
		v, ok := claims[k]
		if !ok {
			continue
		}
		switch v := v.(type) {
		case string:
			p[k] = v
		case json.Number:
			if k != "requested_expiry" {
				return fmt.Errorf("%s must be a string", k)
			}
			p[k] = v.String()
		case []any:
			if k != "resource" {
				return fmt.Errorf("%s must be a string", k)
			}
			var parts []string
			for _, e := range v {
				s, ok := e.(string)
				if !ok {
					return fmt.Errorf("resource must hold strings")
				}
				parts = append(parts, s)
			}
			p[k] = strings.Join(parts, " ")
		default:
			return fmt.Errorf("%s has the wrong type", k)
		}
	}
	return nil
}

// cibaToken serves the CIBA grant of the token endpoint (CIBA Core §10.1, §11), and, with the
// device code as id, the device code grant (RFC 8628 §3.4, §3.5), which follows the same rules.
func (m *IdP) cibaToken(w http.ResponseWriter, r *http.Request, clientID, id string) {
	now := m.now()
	m.mu.Lock()
	req := m.ciba.requests[id]
	if req == nil || req.rec.ClientID != clientID {
		m.mu.Unlock()
		OAuthError(w, http.StatusBadRequest, "invalid_grant", "unknown auth_req_id")
		return
	}
	req.rec.Polls++
	req.rec.PollTimes = append(req.rec.PollTimes, now)
	if req.rec.Redeemed {
		// As oidc-provider: a replayed auth_req_id revokes every token issued from it.
		for _, tok := range req.issued {
			if it := m.grants.tokens[tok]; it != nil {
				it.revoked = true
			}
		}
		m.mu.Unlock()
		OAuthError(w, http.StatusBadRequest, "invalid_grant", "auth_req_id already redeemed")
		return
	}
	s := req.script
	outcome := s.Outcome
	var code string
	switch {
	case !now.Before(req.expires):
		code = "expired_token"
	case slices.Contains(s.SlowDownPolls, req.rec.Polls):
		code = "slow_down"
	case outcome == CIBAManual && !req.decided:
		code = "authorization_pending"
	case outcome != CIBAManual && req.pending < s.PendingPolls:
		req.pending++
		code = "authorization_pending"
	}
	if outcome == CIBAManual {
		outcome = req.decision
	}
	if code == "" {
		switch outcome {
		case CIBADeny:
			code = "access_denied"
		case CIBAExpire:
			code = "expired_token"
		case CIBATransactionFailed:
			code = "transaction_failed"
		case CIBAErrorCode:
			code = s.ErrorCode
		}
	}
	if code != "" {
		m.mu.Unlock()
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": code})
		return
	}
	req.rec.Redeemed = true
	subject, scope := req.subject, req.scope
	m.mu.Unlock()

	access, aud, err := m.accessToken(map[string]any{"iss": m.Issuer, "sub": subject, "client_id": clientID, "aud": m.Issuer,
		"iat": now.Unix(), "exp": now.Add(m.tokenTTL).Unix(), "jti": randomID(), "scope": scope}, "")
	if err != nil {
		OAuthError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	m.track(access, issued{clientID: clientID, subject: subject, scope: scope, exp: now.Add(m.tokenTTL), aud: aud})
	refresh := m.IssueRefreshToken(clientID, subject, scope)
	resp := map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": int(m.tokenTTL / time.Second),
		"refresh_token": refresh}
	if !s.OmitScope {
		resp["scope"] = scope
	}
	if !s.OmitIDToken {
		claimID := id
		if req.rec.Encoding == "device" {
			claimID = "" // RFC 8628 ID tokens carry no auth_req_id
		}
		idt, err := m.mintCIBAIDToken(clientID, subject, claimID, s.IDTokenClaims, s.IDTokenKey)
		if err != nil {
			OAuthError(w, http.StatusInternalServerError, "server_error", err.Error())
			return
		}
		resp["id_token"] = idt
	}
	m.mu.Lock()
	req.issued = append(req.issued, access, refresh)
	m.mu.Unlock()
	writeJSON(w, http.StatusOK, resp)
}

// mintCIBAIDToken mints the ID token of a CIBA token response: iss, sub, aud, iat, exp and the
// auth_req_id claim, then overrides (a nil value removes the claim).
func (m *IdP) mintCIBAIDToken(clientID, subject, authReqID string, overrides map[string]any, key *jose.JSONWebKey) (string, error) {
	now := m.now()
	claims := map[string]any{"iss": m.Issuer, "sub": subject, "aud": clientID, "iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix()}
	if authReqID != "" {
		claims[cibaAuthReqClaim] = authReqID
	}
	for k, v := range overrides {
		if v == nil {
			delete(claims, k)
		} else {
			claims[k] = v
		}
	}
	if key != nil {
		return MintWith(key, nil, claims)
	}
	return m.Mint(claims, nil)
}
