package weblogin

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ones-now/onesoidc/internal/jose"
)

// maxBody caps the JSON body of every endpoint.
const maxBody = 8 << 10

// ServeHTTP serves the endpoints under Config.Prefix (see the package doc); other paths get 404.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, h.prefix+"/")
	if !ok {
		writeError(w, &Error{Status: http.StatusNotFound, Code: "not_found", Description: "no such endpoint"})
		return
	}
	var kind Kind
	var action string
	switch rest {
	case "ciba/start", "ciba/status", "ciba/cancel":
		kind, action = KindCIBA, strings.TrimPrefix(rest, "ciba/")
	case "qr/start", "qr/status", "qr/cancel":
		kind, action = KindQR, strings.TrimPrefix(rest, "qr/")
	default:
		writeError(w, &Error{Status: http.StatusNotFound, Code: "not_found", Description: "no such endpoint"})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if err := h.checkRequest(r); err != nil {
		if err.Status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", http.MethodPost)
		}
		writeError(w, err)
		return
	}
	switch action {
	case "start":
		if kind == KindCIBA {
			h.startCIBA(w, r)
		} else {
			h.startQR(w, r)
		}
	case "status":
		h.status(w, r, kind)
	case "cancel":
		h.cancel(w, r, kind)
	}
}

// checkRequest applies the rules of every endpoint, which all change state: POST, the
// application's own origin (the Origin header, else Sec-Fetch-Site: same-origin; a request with
// neither is refused), and a JSON body (application/json, which a cross-site form cannot send
// without a CORS preflight).
func (h *Handler) checkRequest(r *http.Request) *Error {
	if r.Method != http.MethodPost {
		return &Error{Status: http.StatusMethodNotAllowed, Code: "invalid_request", Description: "POST required"}
	}
	own, err := h.ownOrigin(r)
	if err != nil {
		return err
	}
	origin := r.Header.Get("Origin")
	switch {
	case origin != "":
		if !strings.EqualFold(origin, own) {
			return &Error{Status: http.StatusForbidden, Code: "cross_origin", Description: "request from another origin"}
		}
	case r.Header.Get("Sec-Fetch-Site") == "same-origin":
	default:
		return &Error{Status: http.StatusForbidden, Code: "cross_origin", Description: "request without Origin or Sec-Fetch-Site: same-origin"}
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return &Error{Status: http.StatusUnsupportedMediaType, Code: "invalid_request", Description: "Content-Type must be application/json"}
	}
	return nil
}

// ownOrigin returns the origin the application is served on: Config.Origin, or the request's.
func (h *Handler) ownOrigin(r *http.Request) (string, *Error) {
	if h.origin != nil {
		return h.origin.String(), nil
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := strings.ToLower(r.Host)
	if scheme == "http" && !isLoopback(hostOnly(host)) {
		return "", &Error{Status: http.StatusForbidden, Code: "insecure_origin",
			Description: "plain http is served on loopback only; behind a TLS proxy set Config.Origin"}
	}
	return scheme + "://" + host, nil
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

// isLoopback reports loopback host names: localhost, 127.0.0.0/8 and ::1.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// readJSON decodes the body into v: one JSON object of at most maxBody bytes, no unknown
// fields, nothing after it. An empty body is an empty object.
func readJSON(w http.ResponseWriter, r *http.Request, v any) *Error {
	return readBody(w, r, v, maxBody, true)
}

// readBody decodes one JSON value of at most limit bytes into v, refusing unknown fields when
// strict.
func readBody(w http.ResponseWriter, r *http.Request, v any, limit int64, strict bool) *Error {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &Error{Status: http.StatusRequestEntityTooLarge, Code: "invalid_request", Description: "body over " + strconv.FormatInt(limit, 10) + " bytes"}
		}
		return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: "unreadable body"}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		desc := "malformed JSON body"
		if s, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			desc = "unknown field " + clip(s, 60)
		}
		return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: desc}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: "data after the JSON body"}
	}
	// encoding/json matches member names without regard to case and keeps the last of two:
	// {"loginId":"a","LOGINID":"b"} or {"auth_req_id":"a","Auth_Req_ID":"b"} would be read as
	// one of them. Only the exact names are read (RFC 8259 §4 leaves duplicates undefined).
	names := jose.JSONNames(v)
	if e := jose.CheckMembers(string(data), names...); e != nil {
		desc := "ambiguous JSON body: " + clip(e.Msg, 80)
		for _, n := range names {
			if strings.EqualFold(e.Name, n) {
				desc = "ambiguous JSON body: member " + n + ": " + clip(e.Msg, 80)
			}
		}
		return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: desc}
	}
	return nil
}

// clip shortens s to max bytes of printable ASCII, for error descriptions.
func clip(s string, max int) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < max; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			b.WriteByte(c)
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
}

// Session cookies (RFC 10017, OAuth 2.0 for Browser-Based Applications, §6.1.3.2): a random
// value of 256 bits, HttpOnly, SameSite=Lax, Path=/, and on https the __Host- prefix with Secure
// and no Domain (RFC 6265bis §4.1.3.2), so that no other host of the site can set it (cookie
// tossing: a __Secure- cookie can be set with Domain=<the site> by any of its hosts). Plain http
// on loopback, where no prefix is possible, uses the bare name. The store keeps its SHA-256 only.

const sessionBytes = 32

func (h *Handler) cookieName(r *http.Request) string {
	if h.secure(r) {
		return "__Host-" + defaultCookieBaseName
	}
	return defaultCookieBaseName
}

func (h *Handler) secure(r *http.Request) bool {
	own, err := h.ownOrigin(r)
	return err != nil || !strings.HasPrefix(own, "http://")
}

// legacyCookieName is the name of the login cookie on https in the release before, whose logins
// status and cancel still find (a rolling upgrade), and which a start never sets or adopts.
const legacyCookieName = "__Secure-" + defaultCookieBaseName

// session returns the hashed session of the request's cookie, or "" when it has none.
func (h *Handler) session(r *http.Request) string {
	return sessionOf(r, h.cookieName(r))
}

// sessions returns the hashed sessions a status or cancel request may name a login of: its
// cookie's, then, on https, the one of a cookie of the release before.
func (h *Handler) sessions(r *http.Request) []string {
	var out []string
	if s := h.session(r); s != "" {
		out = append(out, s)
	}
	if h.secure(r) {
		if s := sessionOf(r, legacyCookieName); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// sessionOf returns the hashed session of the request's cookie name, or "" when it has none
// that is well formed.
func sessionOf(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(raw) != sessionBytes {
		return ""
	}
	return hashHex(c.Value)
}

// ensureSession returns the request's session, or starts one with a new cookie.
func (h *Handler) ensureSession(w http.ResponseWriter, r *http.Request) string {
	if s := h.session(r); s != "" {
		return s
	}
	var b [sessionBytes]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	value := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(w, &http.Cookie{
		Name: h.cookieName(r), Value: value, Path: "/",
		HttpOnly: true, Secure: h.secure(r), SameSite: http.SameSiteLaxMode,
	})
	return hashHex(value)
}

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// randomString returns n random bytes, base64url.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(v)
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func seconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}
