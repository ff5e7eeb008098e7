package weblogin

import (
	"net/http"
	"strings"
)

// startQR starts an ONES QR login for the browser's session (ONES: GET {host}/auth/qr with the
// device access token): it answers the QR code as SVG, its expiry and the code shown beside it.
// The session id inside the QR code is not a secret (the phone reads it), but polling it needs
// the device's credentials, which stay on the server.
func (h *Handler) startQR(w http.ResponseWriter, r *http.Request) {
	var body startRequest
	if e := readJSON(w, r, &body); e != nil {
		writeError(w, e)
		return
	}
	if body.UserIdentifier != "" || body.HintKind != "" {
		writeError(w, &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: "QR login takes no user: the user scans the code"})
		return
	}
	scope, e := h.scopeFor(body.Scope)
	if e != nil {
		writeError(w, e)
		return
	}
	session := h.ensureSession(w, r)
	l, e := h.reserve(r.Context(), session, KindQR)
	if e != nil {
		writeError(w, e)
		return
	}
	qs, err := h.client.StartQRLogin(r.Context(), scope...)
	if err != nil {
		h.unreserve(l)
		h.log.WarnContext(r.Context(), "weblogin: QR login could not start", "error", err)
		writeError(w, Classify(err))
		return
	}
	id := qs.ID()
	if id == "" { // an RFC 8628 session (onesoidc.WithDeviceAuthorizationQR): not served here
		h.unreserve(l)
		writeError(w, &Error{Status: http.StatusInternalServerError, Code: "server_error", Description: "QR login needs the ONES QR protocol (a client without onesoidc.WithDeviceAuthorizationQR)"})
		return
	}
	l.Binding, l.Scope = qrCode(id), strings.Join(scope, " ")
	h.begin(w, r, l, id, qs.ExpiresIn, qs.Interval, qs.QR.SVG())
}

// qrCode is the short code shown beside a QR code: the last 8 letters and digits of the session
// id that the QR code holds, upper-cased. The ONES QR protocol carries no binding message; an
// app that scans the code knows the session id and can show the same code, and a person
// comparing a photo of the screen with the page can tell two sessions apart.
func qrCode(id string) string {
	s := strings.ToUpper(strings.ReplaceAll(id, "-", ""))
	if len(s) > 8 {
		s = s[len(s)-8:]
	}
	return s
}
