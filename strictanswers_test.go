package onesoidc

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/ones-now/onesoidc/onesoidctest"
)

// answerEditor is an http.RoundTripper that passes requests to base and, while armed, rewrites
// the JSON body of the answers with the armed status to requests for the armed path (or, for a
// path ending in "/", under it), and keeps the last body it saw there before the edit.
type answerEditor struct {
	base http.RoundTripper

	mu     sync.Mutex
	path   string
	status int
	edit   func([]byte) []byte
	seen   []byte
}

func (e *answerEditor) arm(path string, status int, edit func([]byte) []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.path, e.status, e.edit = path, status, edit
}

func (e *answerEditor) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := e.base.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	match := r.URL.Path == e.path || (strings.HasSuffix(e.path, "/") && strings.HasPrefix(r.URL.Path, e.path))
	if e.edit == nil || !match || resp.StatusCode != e.status {
		return resp, nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	e.seen = body
	body = e.edit(body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Del("Content-Length")
	return resp, nil
}

func (e *answerEditor) last() []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.seen
}

// jsonMember is one member of a JSON object, in the order of the text.
type jsonMember struct {
	name string
	raw  json.RawMessage
}

// editJSON applies f to the members of the object at path in data (a member name or an array
// index per step; none for the top level) and returns the text with every member in its order.
func editJSON(t testing.TB, data []byte, path []any, f func([]jsonMember) []jsonMember) []byte {
	t.Helper()
	if len(path) > 0 {
		if i, ok := path[0].(int); ok {
			var list []json.RawMessage
			if err := json.Unmarshal(data, &list); err != nil || i >= len(list) {
				t.Fatalf("no entry %d in %s", i, data)
			}
			list[i] = editJSON(t, list[i], path[1:], f)
			out, _ := json.Marshal(list)
			return out
		}
		return editJSON(t, data, nil, func(ms []jsonMember) []jsonMember {
			for i := range ms {
				if ms[i].name == path[0] {
					ms[i].raw = editJSON(t, ms[i].raw, path[1:], f)
					return ms
				}
			}
			t.Fatalf("no member %v in %s", path[0], data)
			return nil
		})
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %s", data)
	}
	var ms []jsonMember
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			t.Fatal(err)
		}
		ms = append(ms, jsonMember{tok.(string), raw})
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range f(ms) {
		if i > 0 {
			b.WriteByte(',')
		}
		name, _ := json.Marshal(m.name)
		b.Write(name)
		b.WriteByte(':')
		b.Write(m.raw)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// memberNames returns the names of the object at path in data.
func memberNames(t testing.TB, data []byte, path []any) []string {
	var names []string
	editJSON(t, data, path, func(ms []jsonMember) []jsonMember {
		for _, m := range ms {
			names = append(names, m.name)
		}
		return ms
	})
	return names
}

// jsonTags returns the member names the fields of struct v are read from.
func jsonTags(v any) []string {
	var out []string
	rt := reflect.TypeOf(v)
	for i := range rt.NumField() {
		if name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

// answerKind is one kind of provider answer the client reads: setup prepares a client that is
// about to ask for it and returns the path of the answer and the call that reads it.
type answerKind struct {
	name       string
	status     int   // of the answer: 200, or 400 for an error answer (RFC 6749 §5.2)
	at         []any // where the object whose members are varied is: nil for the top level
	members    func(body []byte) []string
	ok         func(error) bool // the clean answer's outcome; nil: no error
	setup      func(t *testing.T, idp *onesoidctest.Server, c *OpenIDConnectClient, hc *http.Client) (string, func(context.Context) error)
	clientOpts []Option
}

func urlPath(t testing.TB, raw string) string {
	t.Helper()
	u, err := http.NewRequest("GET", raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	return u.URL.Path
}

// startCIBA starts a CIBA login for alice, scripted by script.
func startCIBA(t *testing.T, idp *onesoidctest.Server, c *OpenIDConnectClient, script onesoidctest.CIBAScript) *CIBAResponse {
	t.Helper()
	idp.ScriptCIBA("alice", script)
	r, err := c.MakeCIBARequest(t.Context(), aliceRequest())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// answerKinds are the provider answers the client decodes, but introspection (see
// TestIntrospectionAnswerMembersAreReadByTheirExactNames).
func answerKinds() []answerKind {
	return []answerKind{
		{name: "discovery (OpenID Connect Discovery 1.0 §3)", status: 200,
			members: func(body []byte) []string { return jsonTags(ProviderMetadata{}) },
			setup: func(t *testing.T, idp *onesoidctest.Server, c *OpenIDConnectClient, hc *http.Client) (string, func(context.Context) error) {
				return urlPath(t, idp.Issuer+"/.well-known/openid-configuration"), func(ctx context.Context) error {
					_, err := Discover(ctx, idp.Issuer, WithHTTPClient(hc), WithDiscoveryAttempts(1))
					return err
				}
			}},
		{name: "JWK Set top level (RFC 7517 §5)", status: 200,
			setup: func(t *testing.T, idp *onesoidctest.Server, c *OpenIDConnectClient, hc *http.Client) (string, func(context.Context) error) {
				return urlPath(t, c.Metadata().JWKSURI), c.RefreshKeys
			}},
		{name: "JWK (RFC 7517 §4)", status: 200, at: []any{"keys", 0},
			setup: func(t *testing.T, idp *onesoidctest.Server, c *OpenIDConnectClient, hc *http.Client) (string, func(context.Context) error) {
				return urlPath(t, c.Metadata().JWKSURI), c.RefreshKeys
			}},
		{name: "EC JWK (RFC 7518 §6.2)", status: 200, at: []any{"keys", 0},
			setup: func(t *testing.T, idp *onesoidctest.Server, c *OpenIDConnectClient, hc *http.Client) (string, func(context.Context) error) {
				idp.RotateKeys("ES256")
				idp.RetireOldKeys()
				return urlPath(t, c.Metadata().JWKSURI), c.RefreshKeys
			}},
		{name: "client_credentials token (RFC 6749 §5.1)", status: 200,
			setup: func(t *testing.T, idp *onesoidctest.Server, c *OpenIDConnectClient, hc *http.Client) (string, func(context.Context) error) {
				return urlPath(t, c.Metadata().TokenEndpoint), func(ctx context.Context) error {
					_, err := c.DeviceAccessToken(ctx)
					return err
				}
			}},
		{name: "backchannel authentication (CIBA Core §7.3)", status: 200,
			setup: func(t *testing.T, idp *onesoidctest.Server, c *OpenIDConnectClient, hc *http.Client) (string, func(context.Context) error) {
				return urlPath(t, c.Metadata().BackchannelAuthenticationEndpoint), func(ctx context.Context) error {
					_, err := c.MakeCIBARequest(ctx, aliceRequest())
					return err
				}
			}},
		{name: "CIBA token (CIBA Core §11)", status: 200,
			setup: func(t *testing.T, idp *onesoidctest.Server, c *OpenIDConnectClient, hc *http.Client) (string, func(context.Context) error) {
				r := startCIBA(t, idp, c, onesoidctest.CIBAScript{})
				return urlPath(t, c.Metadata().TokenEndpoint), func(ctx context.Context) error {
					_, err := c.CheckCIBAStatus(ctx, r.AuthReqID)
					return err
				}
			}},
		{name: "CIBA error (CIBA Core §13, RFC 6749 §5.2)", status: 400,
			ok: func(err error) bool { return errors.Is(err, ErrAccessDenied) },
			setup: func(t *testing.T, idp *onesoidctest.Server, c *OpenIDConnectClient, hc *http.Client) (string, func(context.Context) error) {
				r := startCIBA(t, idp, c, onesoidctest.CIBAScript{Outcome: onesoidctest.Deny})
				return urlPath(t, c.Metadata().TokenEndpoint), func(ctx context.Context) error {
					_, err := c.CheckCIBAStatus(ctx, r.AuthReqID)
					return err
				}
			}},
		{name: "refresh (RFC 6749 §6)", status: 200,
			setup: func(t *testing.T, idp *onesoidctest.Server, c *OpenIDConnectClient, hc *http.Client) (string, func(context.Context) error) {
				r := startCIBA(t, idp, c, onesoidctest.CIBAScript{})
				res, err := c.CheckCIBAStatus(t.Context(), r.AuthReqID)
				if err != nil {
					t.Fatal(err)
				}
				return urlPath(t, c.Metadata().TokenEndpoint), func(ctx context.Context) error {
					_, err := c.RefreshToken(ctx, res.Token)
					return err
				}
			}},
		{name: "device authorization (RFC 8628 §3.2)", status: 200, clientOpts: []Option{WithDeviceAuthorizationQR()},
			setup: func(t *testing.T, idp *onesoidctest.Server, c *OpenIDConnectClient, hc *http.Client) (string, func(context.Context) error) {
				return urlPath(t, c.Metadata().DeviceAuthorizationEndpoint), func(ctx context.Context) error {
					_, err := c.StartQRLogin(ctx)
					return err
				}
			}},
		{name: "device token (RFC 8628 §3.5)", status: 200, clientOpts: []Option{WithDeviceAuthorizationQR()},
			setup: func(t *testing.T, idp *onesoidctest.Server, c *OpenIDConnectClient, hc *http.Client) (string, func(context.Context) error) {
				s, err := c.StartQRLogin(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				return urlPath(t, c.Metadata().TokenEndpoint), func(ctx context.Context) error {
					_, err := c.WaitForQRLogin(ctx, s)
					return err
				}
			}},
		{name: "ONES QR start", status: 200,
			setup: func(t *testing.T, idp *onesoidctest.Server, c *OpenIDConnectClient, hc *http.Client) (string, func(context.Context) error) {
				idp.SetDeviceID(testClientID, testDeviceID)
				return urlPath(t, idp.URL+qrStartPath), func(ctx context.Context) error {
					_, err := c.StartQRLogin(ctx)
					return err
				}
			}},
		{name: "ONES QR status", status: 200,
			members: func([]byte) []string { return []string{"status", "deviceId", "access_token"} },
			setup: func(t *testing.T, idp *onesoidctest.Server, c *OpenIDConnectClient, hc *http.Client) (string, func(context.Context) error) {
				idp.SetDeviceID(testClientID, testDeviceID)
				s, err := c.StartQRLogin(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				return urlPath(t, idp.URL+qrStartPath+"/"), func(ctx context.Context) error {
					_, err := c.CheckQRStatus(ctx, s.ID())
					return err
				}
			}},
		{name: "ONES applications", status: 200, at: []any{0},
			setup: func(t *testing.T, idp *onesoidctest.Server, c *OpenIDConnectClient, hc *http.Client) (string, func(context.Context) error) {
				return urlPath(t, idp.URL+"/api/applications"), func(ctx context.Context) error {
					_, err := c.Applications(ctx)
					return err
				}
			}},
		{name: "ONES applications object", status: 200,
			setup: func(t *testing.T, idp *onesoidctest.Server, c *OpenIDConnectClient, hc *http.Client) (string, func(context.Context) error) {
				idp.SetApplications(`{"applications":` + onesoidctest.DefaultApplications + `}`)
				return urlPath(t, idp.URL+"/api/applications"), func(ctx context.Context) error {
					_, err := c.Applications(ctx)
					return err
				}
			}},
	}
}

// secretMembers hold values that no error may quote.
var secretMembers = []string{"access_token", "refresh_token", "id_token", "auth_req_id", "device_code"}

// TestProviderAnswersWithAmbiguousMemberNamesAreRefused: encoding/json matches member names
// without regard to case and keeps the last of duplicates, so that {"ACCESS_TOKEN":…} was read
// as access_token, and {"issuer":a,"Issuer":b} as issuer b. Every provider answer the client
// reads (RFC 8259 §4: names are case-sensitive and should be unique) is refused with an
// *HTTPError matching ErrInvalidResponse that names the member and the endpoint and quotes no
// secret, when a member it reads comes twice, twice under case folding, or only in another case.
// The clean answer passes, and so do unknown members whatever their case.
func TestProviderAnswersWithAmbiguousMemberNamesAreRefused(t *testing.T) {
	t.Parallel()
	for _, kind := range answerKinds() {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			// run builds a fresh provider and client, arms the editor and reads the answer.
			run := func(t *testing.T, edit func([]byte) []byte) ([]byte, string, error) {
				var (
					err  error
					body []byte
					path string
				)
				synctest.Test(t, func(t *testing.T) {
					idp := onesoidctest.NewInMemory()
					ed := &answerEditor{base: idp.HTTPClient().Transport}
					hc := &http.Client{Transport: ed}
					c := newTestClient(t, idp, testKey(t, "ES256"), append(kind.clientOpts, WithHTTPClient(hc))...)
					var call func(context.Context) error
					path, call = kind.setup(t, idp, c, hc)
					ed.arm(path, kind.status, edit)
					err = call(t.Context())
					body = ed.last()
				})
				return body, path, err
			}
			outcome := kind.ok
			if outcome == nil {
				outcome = func(err error) bool { return err == nil }
			}
			clean, _, err := run(t, func(b []byte) []byte { return b })
			if clean == nil || !outcome(err) {
				t.Fatalf("clean answer %s: %v", clean, err)
			}
			// Unknown members, in any case, and nested names stay allowed (RFC 8414 §2, RFC 7517 §4).
			_, _, err = run(t, func(b []byte) []byte {
				return editJSON(t, b, kind.at, func(ms []jsonMember) []jsonMember {
					return append(ms, jsonMember{"X_Vendor", json.RawMessage(`{"ISSUER":1,"Access_Token":[{"KID":2}]}`)},
						jsonMember{"x_vendor_two", json.RawMessage(`"x"`)})
				})
			})
			if !outcome(err) {
				t.Errorf("answer with unknown members: %v", err)
			}
			var names []string
			if kind.members != nil {
				names = kind.members(clean)
			} else {
				names = memberNames(t, clean, kind.at)
			}
			present := memberNames(t, clean, kind.at)
			covered := 0
			for _, name := range names {
				i := slices.Index(present, name)
				if i < 0 {
					continue
				}
				covered++
				upper := strings.ToUpper(name)
				for _, v := range []struct {
					how  string
					edit func(ms []jsonMember) []jsonMember
				}{
					{"twice", func(ms []jsonMember) []jsonMember { return append(ms, ms[i]) }},
					{"again as " + upper, func(ms []jsonMember) []jsonMember { return append(ms, jsonMember{upper, ms[i].raw}) }},
					{"only as " + upper, func(ms []jsonMember) []jsonMember { ms[i].name = upper; return ms }},
				} {
					t.Run(name+" "+v.how, func(t *testing.T) {
						var value []byte
						_, path, err := run(t, func(b []byte) []byte {
							return editJSON(t, b, kind.at, func(ms []jsonMember) []jsonMember {
								value = ms[i].raw
								return v.edit(ms)
							})
						})
						var he *HTTPError
						if !errors.Is(err, ErrInvalidResponse) || !errors.As(err, &he) || he.StatusCode != kind.status {
							t.Fatalf("err = %v; want an *HTTPError of HTTP %d matching ErrInvalidResponse", err, kind.status)
						}
						msg := err.Error()
						if !strings.Contains(msg, path) || !strings.Contains(strings.ToLower(msg), strings.ToLower(`"`+name+`"`)) {
							t.Errorf("err = %q; want it to name the endpoint %s and the member %q", msg, path, name)
						}
						if slices.Contains(secretMembers, name) && strings.Contains(msg, strings.Trim(string(value), `"`)) {
							t.Errorf("err = %q quotes the value of %s", msg, name)
						}
						if kind.ok != nil && kind.ok(err) {
							t.Errorf("err = %v also matches the clean answer's outcome", err)
						}
					})
				}
			}
			if covered == 0 {
				t.Fatalf("only %d of the members %v in the clean answer %s", covered, names, clean)
			}
		})
	}
}

// TestSigningServiceAnswerWithAmbiguousSignatureIsRefused: the signing service's
// {"signature"} is read by its exact name too: twice, twice under case folding, or only as
// "SIGNATURE", it is refused with an *HTTPError matching ErrInvalidResponse that names it.
func TestSigningServiceAnswerWithAmbiguousSignatureIsRefused(t *testing.T) {
	t.Parallel()
	key := testKey(t, "ES256")
	for body, ok := range map[string]bool{
		`{"signature":%q}`:                      true,
		`{"signature":%[1]q,"X_Other":1}`:       true,
		`{"signature":%[1]q,"signature":%[1]q}`: false,
		`{"signature":%[1]q,"SIGNATURE":%[1]q}`: false,
		`{"SIGNATURE":%q}`:                      false,
	} {
		t.Run(body, func(t *testing.T) {
			t.Parallel()
			svc := fakeSigningService(t, key, func(w http.ResponseWriter, sig []byte) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = fmt.Fprintf(w, body, base64.RawURLEncoding.EncodeToString(sig))
			})
			signer, err := NewRemoteSigner(testDeviceID, "ES256", WithSignerURL(svc.URL+"/sign"))
			if err != nil {
				t.Fatal(err)
			}
			sig, err := signer.SignJWS(t.Context(), []byte("eyJ9.eyJ9"))
			if ok {
				if err != nil || len(sig) != 64 {
					t.Fatalf("SignJWS = %x, %v", sig, err)
				}
				return
			}
			var he *HTTPError
			if !errors.Is(err, ErrInvalidResponse) || !errors.As(err, &he) || !strings.Contains(strings.ToLower(err.Error()), `"signature"`) {
				t.Fatalf("err = %v; want an *HTTPError matching ErrInvalidResponse naming signature", err)
			}
		})
	}
}

// TestPingWithAmbiguousAuthReqIDIsRefused: a ping notification (CIBA Core §10.2) whose
// auth_req_id comes twice, twice under case folding, or only as "AUTH_REQ_ID" is answered 400:
// encoding/json read it as the last one, or as auth_req_id.
func TestPingWithAmbiguousAuthReqIDIsRefused(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := pingSetup(t)
		idp.ScriptCIBA("alice", onesoidctest.CIBAScript{Outcome: onesoidctest.AwaitDecision, ExpiresIn: 60})
		h := c.CIBANotificationHandler()
		for body, want := range map[string]int{
			`{"auth_req_id":%q,"auth_req_id":%[1]q}`:       http.StatusBadRequest,
			`{"auth_req_id":%q,"AUTH_REQ_ID":%[1]q}`:       http.StatusBadRequest,
			`{"AUTH_REQ_ID":%q}`:                           http.StatusBadRequest,
			`{"auth_req_id":%q,"Extra":{"AUTH_REQ_ID":1}}`: http.StatusNoContent,
		} {
			resp, err := c.MakeCIBARequest(t.Context(), aliceRequest())
			if err != nil {
				t.Fatal(err)
			}
			rec, _ := idp.CIBARequest(resp.AuthReqID)
			w := serveNotification(h, http.MethodPost, "Bearer "+rec.Params["client_notification_token"], "application/json",
				fmt.Sprintf(body, resp.AuthReqID))
			if w.Code != want {
				t.Errorf("%s: status %d, want %d", body, w.Code, want)
			}
		}
	})
}

// TestAmbiguousTokenAnswerRevokesEveryTokenItNames: a CIBA token answer refused for a second
// access_token and refresh_token under other cases may have issued either: each is revoked
// (RFC 7009 §2.1), refresh tokens first, not only the one encoding/json would have read.
func TestAmbiguousTokenAnswerRevokesEveryTokenItNames(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp := onesoidctest.NewInMemory()
		ed := &answerEditor{base: idp.HTTPClient().Transport}
		c := newTestClient(t, idp, testKey(t, "ES256"), WithHTTPClient(&http.Client{Transport: ed}))
		r := startCIBA(t, idp, c, onesoidctest.CIBAScript{})
		const otherAccess, otherRefresh = "other-access-token-0123456789", "other-refresh-token-0123456789"
		ed.arm(urlPath(t, c.Metadata().TokenEndpoint), 200, func(b []byte) []byte {
			return editJSON(t, b, nil, func(ms []jsonMember) []jsonMember {
				return append(ms, jsonMember{"Access_Token", json.RawMessage(`"` + otherAccess + `"`)},
					jsonMember{"REFRESH_TOKEN", json.RawMessage(`"` + otherRefresh + `"`)})
			})
		})
		_, err := c.CheckCIBAStatus(t.Context(), r.AuthReqID)
		var le *LoginIncompleteError
		if !errors.As(err, &le) || !errors.Is(err, ErrInvalidResponse) || !le.Revoked {
			t.Fatalf("err = %v; want a *LoginIncompleteError matching ErrInvalidResponse, tokens revoked", err)
		}
		var issued struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
		}
		if err := json.Unmarshal(ed.last(), &issued); err != nil || issued.AccessToken == "" || issued.RefreshToken == "" {
			t.Fatalf("provider answer %s: %v", ed.last(), err)
		}
		var revoked []string
		for _, req := range idp.Requests(onesoidctest.EndpointRevocation) {
			revoked = append(revoked, req.Form.Get("token_type_hint")+" "+req.Form.Get("token"))
		}
		want := []string{"refresh_token " + issued.RefreshToken, "refresh_token " + otherRefresh,
			"access_token " + issued.AccessToken, "access_token " + otherAccess}
		if !slices.Equal(revoked, want) {
			t.Errorf("revoked %q, want %q", revoked, want)
		}
	})
}
