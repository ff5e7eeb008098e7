package onesoidc

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/ones-now/onesoidc/onesoidctest"
	"golang.org/x/oauth2"
)

// formatVerbs are the verbs and flag combinations every secret-holding type is printed with.
var formatVerbs = []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "% x", "%#x", "%d", "%08d", "%T", "%o", "%b",
	"%e", "%f", "%g", "%t", "%c", "%U", "%10v", "%-40s", "%.5s", "%+q", "%#q"}

// secretForms returns the ways a secret could show up in output.
func secretForms(secret string) []string {
	return []string{secret, hex.EncodeToString([]byte(secret)), strings.ToUpper(hex.EncodeToString([]byte(secret))),
		strings.Trim(fmt.Sprint([]byte(secret)), "[]")}
}

// TestKF09HF19EveryVerbHidesSecrets prints every type that holds a key, a token or a polling
// secret with every verb, as a value and as a pointer, alone and nested, and checks that no
// secret appears (SECURITY-CASES KF-09, HF-19; QR-04 for the device code).
func TestKF09HF19EveryVerbHidesSecrets(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	c := newTestClient(t, idp, testKey(t, "ES256"), WithCIBAPing(), WithDeviceAuthorizationQR())
	idp.SetCIBANotificationEndpoint(testClientID, notifyURL)
	tok, err := c.DeviceAccessToken(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ack, err := c.MakeCIBARequest(t.Context(), aliceRequest())
	if err != nil {
		t.Fatal(err)
	}
	var notifyToken string
	for _, p := range c.ciba.pending {
		notifyToken = p.notifyToken
	}
	qr, err := c.StartQRLogin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	remote, err := NewRemoteSigner(testDeviceID, "ES256", WithSignerPublicKey(testKey(t, "ES256").Public()))
	if err != nil {
		t.Fatal(err)
	}
	login := LoginResult{
		Token:     (&oauth2.Token{AccessToken: "at-3c1f0e9a2b7d", RefreshToken: "rt-9d8e7f6a5b4c", TokenType: "Bearer"}).WithExtra(map[string]any{"id_token": "eyJ.id-token-secret"}),
		IDToken:   "eyJ.id-token-secret",
		AuthReqID: "auth-req-id-7f3a9c2e1b",
		Scope:     "openid",
	}
	request := CIBARequest{Hint: LoginHint{Kind: HintIDToken, Value: "eyJ.hint-token-secret"}, Scope: []string{"openid"}, UserCode: "user-code-8841"}

	type item struct {
		name    string
		value   any // nil: pointer only
		pointer any
		secrets []string
	}
	items := []item{
		{"QRSession", *qr, qr, []string{qr.st.deviceCode}},
		{"CIBAResponse", *ack, ack, []string{ack.AuthReqID}},
		{"LoginResult", login, &login, []string{"at-3c1f0e9a2b7d", "rt-9d8e7f6a5b4c", "id-token-secret", "auth-req-id-7f3a9c2e1b"}},
		{"CIBARequest", request, &request, []string{"hint-token-secret", "user-code-8841"}},
		{"LoginHint", request.Hint, &request.Hint, []string{"hint-token-secret"}},
		{"RemoteSigner", *remote, remote, nil},
		{"OpenIDConnectClient", nil, c, append([]string{tok.AccessToken, ack.AuthReqID, qr.st.deviceCode, notifyToken},
			privateParts(t, c.signer.(*DeviceKey).signer)...)},
	}
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		k := testKey(t, alg)
		items = append(items, item{"DeviceKey " + alg, *k, k, privateParts(t, k.signer)})
	}
	for _, it := range items {
		t.Run(it.name, func(t *testing.T) {
			t.Parallel()
			var outs []string
			forms := []any{it.pointer, []any{it.pointer}, struct{ X any }{it.pointer}, map[string]any{"k": it.pointer}}
			if it.value != nil {
				forms = append(forms, it.value, []any{it.value}, struct{ X any }{it.value})
			}
			for _, v := range forms {
				for _, verb := range formatVerbs {
					outs = append(outs, fmt.Sprintf(verb, v))
				}
				outs = append(outs, fmt.Sprint(v), fmt.Sprintln(v))
			}
			outs = append(outs, slogOutputs(it.pointer)...)
			if it.value != nil {
				outs = append(outs, slogOutputs(it.value)...)
			}
			// %p of a non-pointer and %w outside fmt.Errorf are bad verbs, which fmt prints
			// without calling Format; go vet reports them. A pointer's %p is its address.
			outs = append(outs, fmt.Sprintf("%p", it.pointer))
			if it.name == "QRSession" || it.name == "OpenIDConnectClient" || strings.HasPrefix(it.name, "DeviceKey") {
				// These keep their secrets behind pointers: even the bad verbs show none.
				badVerbs := []string{"%w"} // a variable format: vet rightly refuses a literal %w here
				outs = append(outs, fmt.Sprintf(badVerbs[0], it.pointer))
				if it.value != nil {
					outs = append(outs, fmt.Sprintf("%p", it.value), fmt.Sprintf(badVerbs[0], it.value))
				}
			}
			for _, out := range outs {
				for _, s := range it.secrets {
					if s == "" {
						t.Fatal("empty secret in the test")
					}
					for _, form := range secretForms(s) {
						if strings.Contains(out, form) {
							t.Fatalf("output %q shows a secret", out)
						}
					}
				}
			}
			if got := fmt.Sprintf("%v", it.pointer); !strings.Contains(got, strings.Fields(it.name)[0]+"{") {
				t.Errorf("%%v = %q, want a description", got)
			}
		})
	}
}

// slogOutputs logs v with log/slog's text and JSON handlers at Debug level, as an attribute, inside
// a group, and through WithAttrs, and returns what they wrote. slog resolves a LogValuer there;
// the text handler also prints v nested in a list through its Format method. (The JSON handler
// encodes a value nested in a list with encoding/json, which a LogValuer cannot reach and which
// stays as it is: applications store CIBAResponse and LoginResult as JSON.)
func slogOutputs(v any) []string {
	var text, js bytes.Buffer
	for _, l := range []*slog.Logger{
		slog.New(slog.NewTextHandler(&text, &slog.HandlerOptions{Level: slog.LevelDebug})),
		slog.New(slog.NewJSONHandler(&js, &slog.HandlerOptions{Level: slog.LevelDebug})),
	} {
		l.Debug("value", "v", v)
		l.Debug("group", slog.Group("g", "v", v, slog.Group("inner", "v", v)))
		l.With("v", v).WithGroup("g").Debug("with", "v", v)
	}
	slog.New(slog.NewTextHandler(&text, nil)).Info("list", "list", []any{v})
	return []string{text.String(), js.String()}
}

// TestAuthenticationResultPrintsNoClaimText: the result of a CIBA login, whose ID token carries
// the auth_req_id claim (CIBA Core §10.1.1), prints and logs its exported fields only, never the
// verified payload it keeps for Claims (an address, as any pointer nested in a struct prints).
func TestAuthenticationResultPrintsNoClaimText(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, c := cibaSetup(t)
		ack, err := c.MakeCIBARequest(t.Context(), aliceRequest())
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.WaitForCIBA(t.Context(), ack)
		if err != nil {
			t.Fatal(err)
		}
		var claim struct {
			AuthReqID string `json:"urn:openid:params:jwt:claim:auth_req_id"`
		}
		if err := res.Auth.Claims(&claim); err != nil || claim.AuthReqID != ack.AuthReqID {
			t.Fatalf("the ID token's auth_req_id claim is %q (%v), want the request's", claim.AuthReqID, err)
		}
		outs := slogOutputs(res.Auth)
		for _, v := range []any{res.Auth, *res.Auth, []any{res.Auth}} {
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
				outs = append(outs, fmt.Sprintf(verb, v))
			}
		}
		for _, out := range outs {
			for _, form := range secretForms(ack.AuthReqID) {
				if strings.Contains(out, form) {
					t.Fatalf("output shows the auth_req_id: %s", out)
				}
			}
		}
		if got := fmt.Sprintf("%+v", *res.Auth); !strings.Contains(got, "Subject:alice") {
			t.Errorf("%%+v = %s, want the entity's fields", got)
		}
	})
}
