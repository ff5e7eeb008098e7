package onesoidctest

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// The ONES QR login (not RFC 8628): GET {URL}/auth/qr with a device access token as bearer token
// starts a session, GET {URL}/auth/qr/{auth_req_id} reports its status. The endpoints hang off the
// host, not off the issuer.

// DefaultQRExpiresIn is the exp (session lifetime in seconds) of ONES QR sessions, as the
// vendor's example answers show.
const DefaultQRExpiresIn = 300

// QRScript scripts the ONES QR sessions that follow (see ScriptQR). The zero value approves at the
// first status request: alice, scope "openid profile", an opaque access token that introspection
// reports active.
type QRScript struct {
	// PendingPolls polls are answered "pending" before Outcome applies.
	PendingPolls int
	// Outcome says how the session ends: Approve (status "approved" with an access token),
	// Deny ("denied"), Expire ("expired"), TransactionFailed ("failed"),
	// FailWithCode (Status), AwaitDecision (pending until DecideQR).
	Outcome Outcome
	// Status is the status of FailWithCode.
	Status string
	// ExpiresIn, when positive, is the exp of the start answer (default DefaultQRExpiresIn);
	// from then on the status is "expired".
	ExpiresIn int
	// Subject is the user who approves (default "alice"); Scope the scope of the token
	// (default "openid profile").
	Subject, Scope string
	// DeviceID, when set, replaces the device id of the answers (see SetDeviceID).
	DeviceID string
	// InactiveToken hands out an access token that introspection reports inactive.
	InactiveToken bool
}

// QRRecord is what the Server recorded of an ONES QR session.
type QRRecord struct {
	// AuthReqID is the session id answered.
	AuthReqID string
	// ClientID is the client whose device access token started the session.
	ClientID string
	// ExpiresIn is the exp answered, in seconds.
	ExpiresIn int
	// Polls counts the status requests.
	Polls int
	// PollTimes says when the status requests came, on the Server's clock.
	PollTimes []time.Time
	// Redeemed says whether the access token was handed out.
	Redeemed bool
	// AccessToken is the access token handed out, once Redeemed.
	AccessToken string
}

type qrState struct {
	script   QRScript
	devices  map[string]string // client id -> device id
	sessions map[string]*qrSession
	order    []string
}

type qrSession struct {
	rec      QRRecord
	script   QRScript
	expires  time.Time
	pending  int
	decided  bool
	decision Outcome
}

// ScriptQR scripts the ONES QR sessions that follow (default: approved by alice at the first poll).
func (m *Server) ScriptQR(s QRScript) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.qr.script = s
}

// SetDeviceID records the device id of clientID, which the QR status answers carry as deviceId
// (omitted when unknown).
func (m *Server) SetDeviceID(clientID, deviceID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.qr.devices == nil {
		m.qr.devices = map[string]string{}
	}
	m.qr.devices[clientID] = deviceID
}

// QRSessions returns the ONES QR sessions, oldest first.
func (m *Server) QRSessions() []QRRecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]QRRecord, 0, len(m.qr.order))
	for _, id := range m.qr.order {
		r := m.qr.sessions[id].rec
		r.PollTimes = slices.Clone(r.PollTimes)
		out = append(out, r)
	}
	return out
}

// DecideQR settles a ONES QR session scripted with AwaitDecision: its next status request ends
// with outcome, as if the user had just decided. An unknown session is an error.
func (m *Server) DecideQR(authReqID string, outcome Outcome) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.qr.sessions[authReqID]
	if s == nil {
		return fmt.Errorf("onesoidctest: unknown QR session")
	}
	s.decided, s.decision = true, outcome
	return nil
}

// deviceBearer checks the request line and the bearer token of an ONES QR request: GET, no query,
// no body, exactly one "Authorization: Bearer <token>" whose token is an unexpired, unrevoked
// device access token (client_credentials) of a registered client. It answers the error itself
// and returns "" when the request is refused.
func (m *Server) deviceBearer(w http.ResponseWriter, r *http.Request) string {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "GET required")
		return ""
	}
	if r.URL.RawQuery != "" || r.URL.ForceQuery || r.ContentLength > 0 {
		oauthError(w, http.StatusBadRequest, "invalid_request", "no query and no body expected")
		return ""
	}
	refuse := func(desc string) string {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		oauthError(w, http.StatusUnauthorized, "invalid_token", desc)
		return ""
	}
	auth := r.Header.Values("Authorization")
	if len(auth) != 1 || !strings.HasPrefix(auth[0], "Bearer ") {
		return refuse("one Authorization: Bearer header required")
	}
	tok := strings.TrimPrefix(auth[0], "Bearer ")
	m.mu.Lock()
	defer m.mu.Unlock()
	it := m.grants.tokens[tok]
	if it == nil || !it.device || it.revoked || !m.now().Before(it.exp) || m.clients[it.clientID] == nil {
		return refuse("not a valid device access token")
	}
	return it.clientID
}

// qrStart serves GET /auth/qr: {"auth_req_id": <uuid>, "exp": <seconds>}.
func (m *Server) qrStart(w http.ResponseWriter, r *http.Request) {
	if r.URL.EscapedPath() != paths[EndpointQRStart] {
		oauthError(w, http.StatusNotFound, "not_found", "unknown path")
		return
	}
	clientID := m.deviceBearer(w, r)
	if clientID == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := &qrSession{script: m.qr.script}
	exp := DefaultQRExpiresIn
	if s.script.ExpiresIn > 0 {
		exp = s.script.ExpiresIn
	}
	s.rec = QRRecord{AuthReqID: randomUUID(), ClientID: clientID, ExpiresIn: exp}
	s.expires = m.now().Add(time.Duration(exp) * time.Second)
	if m.qr.sessions == nil {
		m.qr.sessions = map[string]*qrSession{}
	}
	m.qr.sessions[s.rec.AuthReqID] = s
	m.qr.order = append(m.qr.order, s.rec.AuthReqID)
	writeJSON(w, http.StatusOK, map[string]any{"auth_req_id": s.rec.AuthReqID, "exp": exp})
}

// qrStatus serves GET /auth/qr/{auth_req_id}: {"status","deviceId"}, and when approved also
// "access_token" and "issue_time". The path must be exactly /auth/qr/ followed by the id of a
// session of the same client; a session whose token was handed out is gone (404).
func (m *Server) qrStatus(w http.ResponseWriter, r *http.Request) {
	clientID := m.deviceBearer(w, r)
	if clientID == "" {
		return
	}
	id, ok := strings.CutPrefix(r.URL.EscapedPath(), paths[EndpointQRStatus])
	now := m.now()
	m.mu.Lock()
	s := m.qr.sessions[id]
	if !ok || s == nil || s.rec.ClientID != clientID || s.rec.Redeemed {
		m.mu.Unlock()
		oauthError(w, http.StatusNotFound, "not_found", "unknown QR session")
		return
	}
	s.rec.Polls++
	s.rec.PollTimes = append(s.rec.PollTimes, now)
	deviceID := m.qr.devices[clientID]
	if s.script.DeviceID != "" {
		deviceID = s.script.DeviceID
	}
	outcome := s.script.Outcome
	status := ""
	switch {
	case !now.Before(s.expires):
		status = "expired"
	case outcome == AwaitDecision && !s.decided:
		status = "pending"
	case outcome != AwaitDecision && s.pending < s.script.PendingPolls:
		s.pending++
		status = "pending"
	}
	if outcome == AwaitDecision {
		outcome = s.decision
	}
	if status == "" {
		switch outcome {
		case Approve:
			status = "approved"
		case Deny:
			status = "denied"
		case Expire:
			status = "expired"
		case TransactionFailed:
			status = "failed"
		default:
			status = s.script.Status
		}
	}
	resp := map[string]any{"status": status}
	if deviceID != "" {
		resp["deviceId"] = deviceID
	}
	if status == "approved" {
		tok := opaqueToken()
		s.rec.Redeemed, s.rec.AccessToken = true, tok
		subject, scope := s.script.Subject, s.script.Scope
		if subject == "" {
			subject = "alice"
		}
		if scope == "" {
			scope = "openid profile"
		}
		if !s.script.InactiveToken {
			if m.grants.tokens == nil {
				m.grants.tokens = map[string]*issued{}
			}
			m.grants.tokens[tok] = &issued{clientID: clientID, subject: subject, scope: scope, exp: now.Add(m.tokenTTL)}
		}
		resp["access_token"] = tok
		resp["issue_time"] = now.Unix()
	}
	m.mu.Unlock()
	writeJSON(w, http.StatusOK, resp)
}

// opaqueToken returns an access token as ONES issues them: 43 base64url characters (256 bits).
func opaqueToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// randomUUID returns a random (version 4) UUID.
func randomUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
