package onesoidc

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ones-now/onesoidc/internal/mockidp"
)

// postJSON sends body to h as a POST with Content-Type ctype and returns the answer.
func postJSON(h http.Handler, ctype, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "http://rp.example/auth", strings.NewReader(body))
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// answer decodes a JSON answer and checks the headers every answer carries.
func answer(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("answer %d is not JSON: %q", w.Code, w.Body.String())
	}
	return m
}

func wantError(t *testing.T, w *httptest.ResponseRecorder, status int, code string) map[string]any {
	t.Helper()
	m := answer(t, w)
	if w.Code != status || m["error"] != code {
		t.Errorf("answer %d %v, want %d %s", w.Code, m, status, code)
	}
	return m
}

func TestCIBAHandlersRejectBadRequests(t *testing.T) {
	t.Parallel()
	idp := startIdP(t)
	c := newTestClient(t, idp, testKey(t, "ES256"))
	handlers := map[string]http.Handler{"login": c.CIBALoginHandler(), "status": c.CIBAStatusHandler(), "refresh": c.RefreshHandler()}
	tests := []struct {
		name, method, ctype, body string
		status                    int
		desc                      string
	}{
		{"GET", http.MethodGet, "application/json", "", http.StatusMethodNotAllowed, "POST"},
		{"form content type", http.MethodPost, "application/x-www-form-urlencoded", "a=b", http.StatusUnsupportedMediaType, "Content-Type"},
		{"no content type", http.MethodPost, "", "{}", http.StatusUnsupportedMediaType, "Content-Type"},
		{"malformed JSON", http.MethodPost, "application/json", `{"authRequestId":`, http.StatusBadRequest, "malformed"},
		{"not an object", http.MethodPost, "application/json", `["x"]`, http.StatusBadRequest, "malformed"},
		{"unknown field", http.MethodPost, "application/json", `{"isAdmin":true}`, http.StatusBadRequest, `unknown field "isAdmin"`},
		{"trailing data", http.MethodPost, "application/json", `{} {}`, http.StatusBadRequest, "after the JSON"},
		{"empty body", http.MethodPost, "application/json", ``, http.StatusBadRequest, "malformed"},
		{"17 KiB body", http.MethodPost, "application/json", `{"x":"` + strings.Repeat("a", 17<<10) + `"}`, http.StatusRequestEntityTooLarge, "16384"},
		{"17 KiB of whitespace after the object", http.MethodPost, "application/json", `{}` + strings.Repeat(" ", 17<<10), http.StatusRequestEntityTooLarge, "16384"},
	}
	for name, h := range handlers {
		for _, tc := range tests {
			r := httptest.NewRequest(tc.method, "http://rp.example/"+name, strings.NewReader(tc.body))
			if tc.ctype != "" {
				r.Header.Set("Content-Type", tc.ctype)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			m := wantError(t, w, tc.status, "invalid_request")
			if d, _ := m["error_description"].(string); !strings.Contains(d, tc.desc) {
				t.Errorf("%s %s: description %q, want it to mention %q", name, tc.name, d, tc.desc)
			}
			if tc.status == http.StatusMethodNotAllowed && w.Header().Get("Allow") != http.MethodPost {
				t.Errorf("%s %s: Allow %q", name, tc.name, w.Header().Get("Allow"))
			}
		}
	}
	if n := idp.Count(mockidp.EndpointBackchannel) + idp.Count(mockidp.EndpointToken); n != 0 {
		t.Errorf("%d requests reached the provider", n)
	}
}

func TestCIBALoginHandler(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := cibaSetup(t)
		h := c.CIBALoginHandler(WithLoginPrepare(func(r *http.Request, req *CIBARequest) error {
			if req.Hint.Value == "mallory" {
				return errors.New("not allowed here")
			}
			req.BindingMessage = "LOGIN-7"
			return nil
		}))
		w := postJSON(h, "application/json; charset=utf-8", `{"loginHintKind":"login_hint_token","userIdentifier":"lht-bob",
			"scope":"openid email","resource":"https://api.example/","sessionId":"qr-9"}`)
		m := answer(t, w)
		if w.Code != http.StatusOK || m["auth_req_id"] == "" || m["expires_in"] != float64(600) || m["interval"] != float64(5) {
			t.Fatalf("answer %d %v", w.Code, m)
		}
		rec, ok := idp.CIBARequest(m["auth_req_id"].(string))
		if !ok {
			t.Fatalf("IdP does not know %v", m["auth_req_id"])
		}
		for k, v := range map[string]string{"login_hint_token": "lht-bob", "scope": "openid email", "resource": "https://api.example/",
			"qr_session_id": "qr-9", "binding_message": "LOGIN-7"} {
			if rec.Params[k] != v {
				t.Errorf("%s = %q, want %q", k, rec.Params[k], v)
			}
		}

		// Scope as an array; default kind and scope.
		if w := postJSON(h, "application/json", `{"userIdentifier":"alice","scope":["openid","profile"]}`); w.Code != http.StatusOK {
			t.Errorf("array scope: %d %s", w.Code, w.Body)
		}
		w = postJSON(h, "application/json", `{"userIdentifier":"alice"}`)
		m = answer(t, w)
		if rec, _ := idp.CIBARequest(m["auth_req_id"].(string)); rec.Params["scope"] != "openid" || rec.Params["login_hint"] != "alice" {
			t.Errorf("defaults: %v", rec.Params)
		}

		wantError(t, postJSON(h, "application/json", `{"userIdentifier":"mallory"}`), http.StatusBadRequest, "invalid_request")
		wantError(t, postJSON(h, "application/json", `{"loginHintKind":"email","userIdentifier":"a"}`), http.StatusBadRequest, "invalid_request")
		wantError(t, postJSON(h, "application/json", `{"userIdentifier":"alice","scope":"profile"}`), http.StatusBadRequest, "invalid_request")
		wantError(t, postJSON(h, "application/json", `{"userIdentifier":""}`), http.StatusBadRequest, "invalid_request")
		wantError(t, postJSON(h, "application/json", `{"userIdentifier":"alice","scope":7}`), http.StatusBadRequest, "invalid_request")
		idp.ScriptCIBA("nobody", mockidp.CIBAScript{Reject: "unknown_user_id"})
		wantError(t, postJSON(h, "application/json", `{"userIdentifier":"nobody"}`), http.StatusBadRequest, "unknown_user_id")
	})
}

func TestCIBALoginHandlerProviderFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		setup  func(t *testing.T, idp *mockidp.IdP)
		status int
		code   string
	}{
		{"403 access_denied", func(t *testing.T, idp *mockidp.IdP) {
			idp.Inject(mockidp.EndpointBackchannel, mockidp.Fault{Status: 403, ContentType: "application/json", Body: []byte(`{"error":"access_denied"}`)})
		}, http.StatusForbidden, "access_denied"},
		{"invalid_client", func(t *testing.T, idp *mockidp.IdP) {
			idp.RegisterClient(testClientID, testKey(t, "ES256").Public(), "ES256")
		}, http.StatusBadGateway, "server_error"},
		{"HTML 502", func(t *testing.T, idp *mockidp.IdP) {
			idp.Inject(mockidp.EndpointBackchannel, mockidp.Fault{Status: 502, ContentType: "text/html", Body: []byte("<html>")})
		}, http.StatusServiceUnavailable, "temporarily_unavailable"},
		{"redirect", func(t *testing.T, idp *mockidp.IdP) {
			idp.Inject(mockidp.EndpointBackchannel, mockidp.Fault{Status: 307, Redirect: "http://localhost/x"})
		}, http.StatusBadGateway, "server_error"},
		{"malformed answer", func(t *testing.T, idp *mockidp.IdP) {
			idp.Inject(mockidp.EndpointBackchannel, mockidp.Fault{Status: 200, ContentType: "application/json", Body: []byte(`{"expires_in":60}`)})
		}, http.StatusBadGateway, "server_error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				idp, c := cibaSetup(t)
				tc.setup(t, idp)
				wantError(t, postJSON(c.CIBALoginHandler(), "application/json", `{"userIdentifier":"alice"}`), tc.status, tc.code)
			})
		})
	}
	t.Run("CIBA not offered", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			idp := mockidp.NewInMemory()
			idp.EditMetadata(func(d map[string]any) { delete(d, "backchannel_authentication_endpoint") })
			c := newTestClient(t, idp, testKey(t, "ES256"))
			wantError(t, postJSON(c.CIBALoginHandler(), "application/json", `{"userIdentifier":"alice"}`), http.StatusInternalServerError, "server_error")
		})
	})
}

// startLogin starts a login through the login handler and returns the auth_req_id.
func startLogin(t *testing.T, c *OpenIDConnectClient, user string) string {
	t.Helper()
	w := postJSON(c.CIBALoginHandler(), "application/json", `{"userIdentifier":"`+user+`"}`)
	m := answer(t, w)
	id, _ := m["auth_req_id"].(string)
	if w.Code != http.StatusOK || id == "" {
		t.Fatalf("login: %d %v", w.Code, m)
	}
	return id
}

func statusOf(c *OpenIDConnectClient, id string) *httptest.ResponseRecorder {
	return postJSON(c.CIBAStatusHandler(), "application/json", `{"authRequestId":"`+id+`"}`)
}

func TestCIBAStatusHandlerApproved(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp := mockidp.NewInMemory()
		logger, logs := logBuffer()
		c := newTestClient(t, idp, testKey(t, "ES256"), WithLogger(logger))
		idp.ScriptCIBA("alice", mockidp.CIBAScript{PendingPolls: 1, SlowDownPolls: []int{2}})
		id := startLogin(t, c, "alice")

		pending := func(wantInterval float64, wantPolls int) {
			t.Helper()
			w := statusOf(c, id)
			m := answer(t, w)
			if w.Code != http.StatusAccepted || m["status"] != "pending" || m["interval"] != wantInterval {
				t.Errorf("answer %d %v, want 202 pending, interval %v", w.Code, m, wantInterval)
			}
			if n := idp.Count(mockidp.EndpointToken); n != wantPolls {
				t.Errorf("%d polls, want %d", n, wantPolls)
			}
		}
		pending(5, 0) // sooner than the interval: nothing sent
		time.Sleep(5 * time.Second)
		pending(5, 1) // authorization_pending
		pending(5, 1) // asked again at once: nothing sent
		time.Sleep(5 * time.Second)
		pending(10, 2) // slow_down: the interval grows
		time.Sleep(5 * time.Second)
		pending(10, 2) // the page asks after 5 s, the interval is now 10 s
		time.Sleep(5 * time.Second)

		w := statusOf(c, id)
		m := answer(t, w)
		if w.Code != http.StatusOK || m["token_type"] != "Bearer" || m["expires_in"] != float64(600) || m["scope"] != "openid" {
			t.Fatalf("answer %d %v", w.Code, m)
		}
		for _, k := range []string{"access_token", "id_token", "refresh_token"} {
			if s, _ := m[k].(string); s == "" {
				t.Errorf("%s missing", k)
			} else if strings.Contains(logs.String(), s) {
				t.Errorf("%s logged", k)
			}
		}
		// The tokens are handed out once.
		wantError(t, statusOf(c, id), http.StatusGone, "invalid_grant")
		if n := idp.Count(mockidp.EndpointToken); n != 3 {
			t.Errorf("%d polls, want 3", n)
		}
	})
}

func TestCIBAStatusHandlerOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		script mockidp.CIBAScript
		fault  *mockidp.Fault
		wait   time.Duration
		status int
		code   string
		polls  int
	}{
		{"denied", mockidp.CIBAScript{Outcome: mockidp.CIBADeny}, nil, 5 * time.Second, http.StatusForbidden, "access_denied", 1},
		{"expired at the provider", mockidp.CIBAScript{Outcome: mockidp.CIBAExpire}, nil, 5 * time.Second, http.StatusGone, "expired_token", 1},
		{"expired locally", mockidp.CIBAScript{Outcome: mockidp.CIBAManual, ExpiresIn: 4}, nil, 5 * time.Second, http.StatusGone, "expired_token", 0},
		{"transaction failed", mockidp.CIBAScript{Outcome: mockidp.CIBATransactionFailed}, nil, 5 * time.Second, http.StatusBadRequest, "transaction_failed", 1},
		{"wrong auth_req_id in ID token", mockidp.CIBAScript{IDTokenClaims: map[string]any{cibaAuthReqClaim: "x"}}, nil, 5 * time.Second, http.StatusBadGateway, "server_error", 1},
		{"provider unavailable", mockidp.CIBAScript{}, &mockidp.Fault{Times: 1, Status: 503, ContentType: "text/html",
			Header: http.Header{"Retry-After": {"30"}}}, 5 * time.Second, http.StatusServiceUnavailable, "temporarily_unavailable", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				idp, c := cibaSetup(t)
				idp.ScriptCIBA("alice", tc.script)
				id := startLogin(t, c, "alice")
				if tc.fault != nil {
					idp.Inject(mockidp.EndpointToken, *tc.fault)
				}
				time.Sleep(tc.wait)
				w := statusOf(c, id)
				wantError(t, w, tc.status, tc.code)
				if tc.status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") != "30" {
					t.Errorf("Retry-After %q", w.Header().Get("Retry-After"))
				}
				if n := idp.Count(mockidp.EndpointToken); n != tc.polls {
					t.Errorf("%d polls, want %d", n, tc.polls)
				}
				if tc.status != http.StatusServiceUnavailable {
					// Final: asked again, the same answer without a request.
					wantError(t, statusOf(c, id), tc.status, tc.code)
					if n := idp.Count(mockidp.EndpointToken); n != tc.polls {
						t.Errorf("%d polls after asking again, want %d", n, tc.polls)
					}
				}
			})
		})
	}
	t.Run("unknown and malformed ids", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			idp, c := cibaSetup(t)
			wantError(t, statusOf(c, "never-started-abcdefghijklmn"), http.StatusNotFound, "invalid_request")
			wantError(t, postJSON(c.CIBAStatusHandler(), "application/json", `{"authRequestId":"a\u0000b"}`), http.StatusBadRequest, "invalid_request")
			wantError(t, postJSON(c.CIBAStatusHandler(), "application/json", `{}`), http.StatusBadRequest, "invalid_request")
			if n := idp.Count(mockidp.EndpointToken); n != 0 {
				t.Errorf("%d polls", n)
			}
		})
	})
}

func TestRefreshHandler(t *testing.T) {
	t.Parallel()
	idp := startIdP(t)
	c := newTestClient(t, idp, testKey(t, "ES256"))
	h := c.RefreshHandler()
	rt := idp.IssueRefreshToken(testClientID, "alice", "openid offline_access")
	w := postJSON(h, "application/json", `{"grant_type":"refresh_token","refresh_token":"`+rt+`"}`)
	m := answer(t, w)
	if w.Code != http.StatusOK || m["access_token"] == nil || m["refresh_token"] != rt || m["id_token"] == nil ||
		m["scope"] != "openid offline_access" || m["token_type"] != "Bearer" || m["expires_in"] != float64(600) {
		t.Errorf("answer %d %v", w.Code, m)
	}
	if f := idp.Requests(mockidp.EndpointToken)[0].Form; f.Get("grant_type") != "refresh_token" || f.Get("refresh_token") != rt {
		t.Errorf("refresh request form %v", f)
	}
	wantError(t, postJSON(h, "application/json", `{"grant_type":"refresh_token","refresh_token":"rt-unknown"}`), http.StatusBadRequest, "invalid_grant")
	wantError(t, postJSON(h, "application/json", `{"grant_type":"password","refresh_token":"x"}`), http.StatusBadRequest, "unsupported_grant_type")
	wantError(t, postJSON(h, "application/json", `{"grant_type":"refresh_token","refresh_token":""}`), http.StatusBadRequest, "invalid_request")
	if n := idp.Count(mockidp.EndpointToken); n != 2 {
		t.Errorf("%d token requests, want 2", n)
	}
}

func TestMountCIBAHandlers(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := cibaSetup(t)
		mux := http.NewServeMux()
		c.MountCIBAHandlers(mux, "/auth/", WithLoginScope("openid", "profile"))
		serve := func(path, body string) *httptest.ResponseRecorder {
			r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, r)
			return w
		}
		w := serve("/auth/login", `{"userIdentifier":"alice"}`)
		m := answer(t, w)
		id, _ := m["auth_req_id"].(string)
		if rec, _ := idp.CIBARequest(id); w.Code != http.StatusOK || rec.Params["scope"] != "openid profile" {
			t.Fatalf("login %d %v", w.Code, rec.Params)
		}
		time.Sleep(5 * time.Second)
		w = serve("/auth/status", `{"authRequestId":"`+id+`"}`)
		m = answer(t, w)
		if w.Code != http.StatusOK {
			t.Fatalf("status %d %v", w.Code, m)
		}
		w = serve("/auth/refresh", `{"grant_type":"refresh_token","refresh_token":"`+m["refresh_token"].(string)+`"}`)
		if w.Code != http.StatusOK {
			t.Errorf("refresh %d %s", w.Code, w.Body)
		}
	})
}
