package onesoidc

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// cibaState holds a client's CIBA requests: the pending ones by auth_req_id (for ping
// notifications and the requested scope), and the last ended ones, which are
// never sent again. Both are bounded.
type cibaState struct {
	mu         sync.Mutex
	pending    map[string]*cibaPending
	maxPending int // 0: defaultMaxPending
	finished   map[string]error
	ring       []string // finished ids, oldest first once full
	ringNext   int
	polling    map[string]bool // ids with a poll in flight
	seq        uint64          // registration counter, to find the oldest pending request
	waiter     string          // the waiting method, for messages ("" is WaitForCIBA)
}

// errPollInFlight is the error of a poll for an auth_req_id that another poll is waiting on.
var errPollInFlight = &RequestError{Field: "auth_req_id", Reason: "another poll for this request is in flight"}

// startPoll takes the poll slot of id. It fails with errPollInFlight while another poll for id
// is in flight, and with a ErrLoginFinished when id ended while this caller was on its way.
func (s *cibaState) startPoll(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err, ended := s.finished[id]; ended {
		return finishedError(err)
	}
	if s.polling[id] {
		return errPollInFlight
	}
	if s.polling == nil {
		s.polling = map[string]bool{}
	}
	s.polling[id] = true
	return nil
}

// endPoll releases the poll slot of id.
func (s *cibaState) endPoll(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.polling, id)
}

type cibaPending struct {
	scope       string
	expiry      time.Time
	notifyToken string        // ping mode only; never logged
	wake        chan struct{} // capacity 1: a ping's wake-up
	waiting     bool
	pinged      bool
	seq         uint64 // registration order
}

// reserve makes room for one more pending request: expired entries are dropped; when the
// registry is still full, the oldest request nobody waits for is forgotten; only
// when every pending request is waited for is the new one refused before it is sent.
func (s *cibaState) reserve(now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	limit := s.maxPending
	if limit == 0 {
		limit = defaultMaxPending
	}
	if len(s.pending) < limit {
		return nil
	}
	for id, p := range s.pending {
		if !now.Before(p.expiry) && !p.waiting {
			delete(s.pending, id)
		}
	}
	if len(s.pending) >= limit {
		// Still full, for instance of requests that an anonymous login page started and nobody
		// waits for: forget the oldest of those nobody waits for.
		oldest := ""
		for id, p := range s.pending {
			if !p.waiting && (oldest == "" || p.seq < s.pending[oldest].seq) {
				oldest = id
			}
		}
		if oldest != "" {
			delete(s.pending, oldest)
		}
	}
	if len(s.pending) >= limit {
		return &RequestError{Field: "auth_req_id", Reason: fmt.Sprintf("%d login requests are pending; refusing another", len(s.pending))}
	}
	return nil
}

// addNew adds r, a request this client started, with the notification token of a ping-mode
// request, unless its auth_req_id is already pending or ended in this client (one id names one
// request, CIBA Core §7.3); it reports whether it added r.
func (s *cibaState) addNew(r *CIBAResponse, notifyToken string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ended := s.finished[r.AuthReqID]; ended || s.pending[r.AuthReqID] != nil {
		return false
	}
	s.addLocked(r, notifyToken)
	return true
}

func (s *cibaState) addLocked(r *CIBAResponse, notifyToken string) {
	if s.pending == nil {
		s.pending = map[string]*cibaPending{}
	}
	s.seq++
	s.pending[r.AuthReqID] = &cibaPending{scope: r.Scope, expiry: r.Expiry(),
		notifyToken: notifyToken, wake: make(chan struct{}, 1), seq: s.seq}
}

// before checks an auth_req_id before a poll and returns its requested scope.
func (s *cibaState) before(id string, now time.Time) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err, ok := s.finished[id]; ok {
		return "", finishedError(err)
	}
	p := s.pending[id]
	if p == nil {
		return "", nil
	}
	if !now.Before(p.expiry) {
		err := &LoginExpiredError{Expiry: p.expiry}
		s.finishLocked(id, err)
		return "", err
	}
	return p.scope, nil
}

// finish records how a request ended and drops it from the pending requests.
func (s *cibaState) finish(id string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finishLocked(id, err)
}

func (s *cibaState) finishLocked(id string, err error) {
	delete(s.pending, id)
	if s.finished == nil {
		s.finished = map[string]error{}
		s.ring = make([]string, 0, maxFinishedCIBA)
	}
	if _, ok := s.finished[id]; ok {
		return
	}
	if len(s.ring) < maxFinishedCIBA {
		s.ring = append(s.ring, id)
	} else {
		delete(s.finished, s.ring[s.ringNext])
		s.ring[s.ringNext] = id
		s.ringNext = (s.ringNext + 1) % maxFinishedCIBA
	}
	s.finished[id] = err
}

// startWait marks the request of r as waited for, registering it when this client did not start
// it (then pings for it are refused).
func (s *cibaState) startWait(r *CIBAResponse) (*cibaPending, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err, ok := s.finished[r.AuthReqID]; ok {
		return nil, finishedError(err)
	}
	p := s.pending[r.AuthReqID]
	if p == nil {
		if s.pending == nil {
			s.pending = map[string]*cibaPending{}
		}
		s.seq++
		p = &cibaPending{scope: r.Scope, expiry: r.Expiry(), wake: make(chan struct{}, 1), seq: s.seq}
		s.pending[r.AuthReqID] = p
	}
	if p.waiting {
		waiter := s.waiter
		if waiter == "" {
			waiter = "WaitForCIBA"
		}
		return nil, &RequestError{Field: "auth_req_id", Reason: "another " + waiter + " is waiting for this request"}
	}
	p.waiting = true
	return p, nil
}

// endWait marks a request as no longer waited for. A request whose wait ended without an end
// (ctx ended, transport failures) stays pending with its scope, expiry and notification token, so
// a later wait, status check or ping still knows it; reserve drops it once it expired.
func (s *cibaState) endWait(_ string, p *cibaPending) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.waiting = false
}

// notify checks a ping's bearer token for id in constant time and wakes the waiter. It reports
// false for an unknown or expired request, one not in ping mode, and a wrong token.
func (s *cibaState) notify(id, token string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pending[id]
	want := dummyNotificationToken
	if p != nil && p.notifyToken != "" {
		want = p.notifyToken
	}
	match := subtle.ConstantTimeCompare([]byte(token), []byte(want)) == 1
	if p == nil || p.notifyToken == "" || !match || !now.Before(p.expiry) {
		return false
	}
	if p.pinged {
		return true // a duplicate: the provider notifies once, one poll answers it
	}
	p.pinged = true
	p.wake <- struct{}{} // buffered, and only the first ping sends
	return true
}

// dummyNotificationToken is compared against when no token is expected, so that an unknown
// auth_req_id costs the same time as a wrong token.
var dummyNotificationToken = strings.Repeat("x", 43)

// maxNotificationBody caps the body of a ping notification (CIBA Core §10.2: {"auth_req_id"}).
const maxNotificationBody = 4 << 10

// CIBANotificationHandler returns the handler of the client notification endpoint for ping mode
// (CIBA Core §10.2): the provider POSTs {"auth_req_id": ...} with the request's
// client_notification_token as Bearer token, and the WaitForCIBA waiting for that request polls
// at once. Later pings for the same request are answered 204 and cause no further poll.
//
// It answers 204 to a valid notification (never a redirect); 401 with WWW-Authenticate to a
// missing or wrong token, and equally to an auth_req_id that is unknown, expired, finished or
// not in ping mode, so that the answer does not tell which requests exist; 405 to any method
// but POST; 415 to a body that is not JSON; 413 to a body over 4 KiB; 400 to malformed JSON and
// to a body with a member twice (also under case folding) or with "auth_req_id" in another case. The
// token is compared in constant time and never logged. Only requests started by this client
// with WithCIBAPing are known.
func (c *OpenIDConnectClient) CIBANotificationHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		token, status := bearerToken(r)
		ok := status == 0
		if !ok {
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if !isJSON(r.Header.Get("Content-Type")) {
			http.Error(w, "JSON body required", http.StatusUnsupportedMediaType)
			return
		}
		var body struct {
			AuthReqID string `json:"auth_req_id"`
		}
		if status, msg := decodeJSONBody(w, r, maxNotificationBody, &body, false); status != 0 {
			http.Error(w, msg, status)
			return
		}
		if checkAuthReqID(body.AuthReqID) != nil || !c.ciba.notify(body.AuthReqID, token, c.now()) {
			c.logger.DebugContext(r.Context(), "onesoidc: CIBA notification refused")
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// decodeJSONBody decodes one JSON object of at most limit bytes from r's body into v, a pointer
// to a struct, rejecting unknown fields when strict, trailing data, and member names that
// encoding/json would read otherwise than they are written (checkMembers: a member twice, also
// under case folding, or one of v's only in another case, such as "AUTH_REQ_ID"). It returns 0,
// or the status and message of the problem.
func decodeJSONBody(w http.ResponseWriter, r *http.Request, limit int64, v any, strict bool) (int, string) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return http.StatusRequestEntityTooLarge, "body over " + strconv.FormatInt(limit, 10) + " bytes"
		}
		return http.StatusBadRequest, "unreadable body"
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		if strings.HasPrefix(err.Error(), "json: unknown field") {
			return http.StatusBadRequest, sanitize(strings.TrimPrefix(err.Error(), "json: "), 100)
		}
		return http.StatusBadRequest, "malformed JSON body"
	}
	if _, err := dec.Token(); err != io.EOF {
		return http.StatusBadRequest, "data after the JSON body"
	}
	if err := checkDecoded(data, v); err != nil {
		return http.StatusBadRequest, sanitize(err.Error(), 100)
	}
	return 0, ""
}
