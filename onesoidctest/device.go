package onesoidctest

import (
	"net/http"
	"net/url"
	"time"
)

// deviceFlowUser is the script key of device authorization requests.
const deviceFlowUser = "\x00device"

// ScriptDeviceFlow scripts the device authorization requests (RFC 8628) that follow: the same
// outcomes as CIBA (pending polls, slow_down, approve, deny, expire); Subject is the user who
// approves (default "alice"). UserCode, when set, is the user code shown.
func (m *Server) ScriptDeviceFlow(s CIBAScript) { m.ScriptCIBA(deviceFlowUser, s) }

// deviceAuthorization serves RFC 8628 §3.1-3.2. Requests are recorded as CIBA records with
// Encoding "device" and the device code as AuthReqID.
func (m *Server) deviceAuthorization(w http.ResponseWriter, r *http.Request) {
	if !formPost(w, r) {
		return
	}
	clientID, err := m.authenticate(r, EndpointDeviceAuthorization)
	if err != nil {
		oauthError(w, http.StatusUnauthorized, "invalid_client", err.Error())
		return
	}
	m.mu.Lock()
	script := m.ciba.scripts[deviceFlowUser]
	m.mu.Unlock()
	if script.Reject != "" {
		oauthError(w, http.StatusBadRequest, script.Reject, "scripted rejection")
		return
	}
	expiresIn := 600
	if script.ExpiresIn > 0 {
		expiresIn = script.ExpiresIn
	}
	subject := script.Subject
	if subject == "" {
		subject = "alice"
	}
	userCode := script.UserCode
	if userCode == "" {
		userCode = "WDJB-MJHT"
	}
	scope := r.PostForm.Get("scope")
	rec := CIBARecord{AuthReqID: "dc-" + randomID(), ClientID: clientID, Encoding: "device",
		Params: map[string]string{"scope": scope, "user_code": userCode}, ExpiresIn: expiresIn}
	req := &cibaRequest{rec: rec, script: script, subject: subject, scope: scope,
		expires: m.now().Add(time.Duration(expiresIn) * time.Second)}
	m.addCIBARequest(req)
	verify := m.Issuer + "/device"
	resp := map[string]any{
		"device_code":               rec.AuthReqID,
		"user_code":                 userCode,
		"verification_uri":          verify,
		"verification_uri_complete": verify + "?user_code=" + url.QueryEscape(userCode),
		"expires_in":                expiresIn,
	}
	if script.Interval > 0 {
		resp["interval"] = script.Interval
	}
	writeJSON(w, http.StatusOK, resp)
}
