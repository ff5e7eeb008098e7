package weblogin

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ones-now/onesoidc"
	"github.com/ones-now/onesoidc/onesoidctest"
)

// TestQRLoginApproved: the QR start answers the SVG, its code and expiry; the phone's approval
// reaches OnLogin with the introspected identity; no answer holds the token.
func TestQRLoginApproved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, nil)
		e.idp.SetDeviceID(testClientID, testDeviceID)
		e.idp.ScriptQR(onesoidctest.QRScript{PendingPolls: 1})
		b := newBrowser(t)
		w := b.post(e.h, "/auth/qr/start", map[string]any{})
		start := wantStatus(t, w, http.StatusOK)
		sessions := e.idp.QRSessions()
		if len(sessions) != 1 {
			t.Fatalf("%d QR sessions", len(sessions))
		}
		id := sessions[0].AuthReqID
		svg, _ := start["qrSvg"].(string)
		if !strings.HasPrefix(svg, "<svg") || start["bindingCode"] != qrCode(id) || start["expiresIn"] != float64(onesoidctest.DefaultQRExpiresIn) {
			t.Fatalf("start answer %v", start)
		}
		time.Sleep(5 * time.Second)
		wantStatus(t, b.post(e.h, "/auth/qr/status", nil), http.StatusAccepted)
		time.Sleep(5 * time.Second)
		w = b.post(e.h, "/auth/qr/status", nil)
		got := wantStatus(t, w, http.StatusOK)
		if got["status"] != "approved" {
			t.Fatalf("answer %v", got)
		}
		res := e.app.logins()
		if len(res) != 1 || res[0].Auth.Entity.Subject != "alice" || res[0].Token.AccessToken != e.idp.QRSessions()[0].AccessToken {
			t.Fatalf("OnLogin got %+v", res)
		}
		assertNoTokens(t, w.Body.String(), res[0].Token.AccessToken, id)
		// The CIBA endpoints do not know the QR login.
		wantStatus(t, b.post(e.h, "/auth/ciba/status", map[string]any{"loginId": b.logins["qr"]}), http.StatusNotFound)
		if n := e.idp.QRSessions()[0].Polls; n != 2 {
			t.Fatalf("%d polls", n)
		}
	})
}

// TestQRLoginDeniedAndCancelled: a denied QR login answers 403; a cancelled one is not polled.
func TestQRLoginDeniedAndCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, nil)
		e.idp.ScriptQR(onesoidctest.QRScript{Outcome: onesoidctest.Deny})
		b := newBrowser(t)
		wantStatus(t, b.post(e.h, "/auth/qr/start", nil), http.StatusOK)
		time.Sleep(5 * time.Second)
		if got := wantStatus(t, b.post(e.h, "/auth/qr/status", nil), http.StatusForbidden); got["error"] != "access_denied" {
			t.Fatalf("answer %v", got)
		}
		wantStatus(t, b.post(e.h, "/auth/qr/start", nil), http.StatusOK)
		wantStatus(t, b.post(e.h, "/auth/qr/cancel", nil), http.StatusOK)
		time.Sleep(5 * time.Second)
		wantStatus(t, b.post(e.h, "/auth/qr/status", nil), http.StatusNotFound)
		if n := e.idp.QRSessions()[1].Polls; n != 0 {
			t.Fatalf("cancelled session polled %d times", n)
		}
		// A QR start takes no user.
		wantStatus(t, b.post(e.h, "/auth/qr/start", map[string]any{"userIdentifier": "alice"}), http.StatusBadRequest)
	})
}

// TestParseHintKind: the crate frontend's loginHintKind names, in snake, camel or Pascal case,
// map to the SDK's hint kinds; anything else is a 400 invalid_request.
func TestParseHintKind(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]onesoidc.HintKind{
		"login_hint": onesoidc.HintLogin, "loginHint": onesoidc.HintLogin,
		"login_hint_token": onesoidc.HintLoginToken, "LoginHintToken": onesoidc.HintLoginToken,
		"id_token_hint": onesoidc.HintIDToken, "idTokenHint": onesoidc.HintIDToken,
	} {
		if got, err := parseHintKind(in); err != nil || got != want {
			t.Errorf("%q: %v, %v", in, got, err)
		}
	}
	var we *Error
	if _, err := parseHintKind("email"); !errors.As(err, &we) || we.Status != 400 {
		t.Errorf("unknown kind: %v", err)
	}
}
