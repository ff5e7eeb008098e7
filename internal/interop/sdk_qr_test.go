//go:build interop

package interop

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ones-now/onesoidc"
)

// The ONES QR login end to end: server.js serves GET /auth/qr and GET /auth/qr/{id} beside
// oidc-provider, checks the device's bearer token with the provider's own ClientCredentials
// model, and on approval through the admin route hands out a real access token of the provider.

// adminPost POSTs body as JSON to an admin route and returns the answer.
func (p *Provider) adminPost(t testing.TB, path string, body any) *rawResponse {
	t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, p.BaseURL()+path, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return p.do(t, req)
}

// ApproveQR approves the ONES QR session authReqID for account: the provider mints an access
// token for the account (a Grant of "openid profile").
func (p *Provider) ApproveQR(t testing.TB, authReqID, account string) {
	t.Helper()
	if r := p.adminPost(t, "/admin/approve-qr", map[string]string{"auth_req_id": authReqID, "account": account}); r.Status != http.StatusOK {
		t.Fatalf("approve-qr: HTTP %d: %s\nprovider stderr:\n%s", r.Status, r.Body, p.Stderr())
	}
}

// DenyQR ends the ONES QR session authReqID with status.
func (p *Provider) DenyQR(t testing.TB, authReqID, status string) {
	t.Helper()
	if r := p.adminPost(t, "/admin/deny-qr", map[string]string{"auth_req_id": authReqID, "status": status}); r.Status != http.StatusOK {
		t.Fatalf("deny-qr: HTTP %d: %s", r.Status, r.Body)
	}
}

// qrClient writes the device files of clientID, tells the provider the device id (which its QR
// status answers carry) and builds a client through discovery with the default, ONES, QR login.
func qrClient(t testing.TB, p *Provider, clientID string, key *Key) *onesoidc.OpenIDConnectClient {
	t.Helper()
	cfgPath, keyPath := writeDevice(t, p, clientID, key)
	cfg, err := onesoidc.LoadDeviceConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if r := p.adminPost(t, "/admin/qr-device", map[string]string{"client_id": clientID, "device_id": cfg.ID}); r.Status != http.StatusNoContent {
		t.Fatalf("qr-device: HTTP %d: %s", r.Status, r.Body)
	}
	dk, err := onesoidc.LoadPrivateKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	c, err := onesoidc.NewClient(t.Context(), cfg, dk)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestInteropSDKONESQRLogin(t *testing.T) {
	t.Parallel()
	// One client per subtest: the provider knows one device id per client.
	keys, ids := make([]*Key, 3), make([]string, 3)
	var clients []Client
	for i := range keys {
		keys[i], ids[i] = newKey(t, jose.ES256), newClientID()
		clients = append(clients, deviceClient(ids[i], keys[i]))
	}
	p := startProvider(t, Config{Clients: clients})

	t.Run("check status, approve, introspect", func(t *testing.T) {
		t.Parallel()
		mark := p.Mark()
		clientID := ids[0]
		c := qrClient(t, p, clientID, keys[0])
		s, err := c.StartQRLogin(t.Context())
		if err != nil {
			p.failf(t, mark, "StartQRLogin: %v", err)
		}
		if s.ExpiresIn != 300*time.Second || s.ID() == "" || s.QR.URL() != "" {
			t.Errorf("session %v, expires in %v", s, s.ExpiresIn)
		}
		if _, err := c.CheckQRStatus(t.Context(), s.ID()); !errors.Is(err, onesoidc.ErrAuthorizationPending) {
			p.failf(t, mark, "first status: %v, want pending", err)
		}
		p.ApproveQR(t, s.ID(), "alice")
		res, err := c.CheckQRStatus(t.Context(), s.ID())
		if err != nil {
			p.failf(t, mark, "status after approval: %v", err)
		}
		e := res.Auth.Entity
		if e.Kind != onesoidc.EntityUser || e.Subject != "alice" || e.ClientID != clientID || e.Issuer != p.Issuer() ||
			!e.HasScope("openid") || !e.HasScope("profile") || res.Token.AccessToken == "" || res.AuthReqID != s.ID() {
			p.failf(t, mark, "result %+v, identity %+v", res, e)
		}
		// The token is the provider's own: its introspection knows it, until it is revoked.
		info, err := c.IntrospectToken(t.Context(), res.Token.AccessToken, "access_token")
		if err != nil || !info.Active || info.Subject != "alice" || info.ClientID != clientID {
			p.failf(t, mark, "introspection = %+v, %v", info, err)
		}
		if err := c.RevokeToken(t.Context(), res.Token.AccessToken, "access_token"); err != nil {
			p.failf(t, mark, "revocation: %v", err)
		}
		if info, err := c.IntrospectToken(t.Context(), res.Token.AccessToken, ""); err != nil || info.Active {
			p.failf(t, mark, "introspection after revocation = %+v, %v", info, err)
		}
		if _, err := c.CheckQRStatus(t.Context(), s.ID()); !errors.Is(err, onesoidc.ErrLoginFinished) {
			t.Errorf("status after the end: %v", err)
		}
	})

	t.Run("wait for approval", func(t *testing.T) {
		t.Parallel()
		mark := p.Mark()
		c := qrClient(t, p, ids[1], keys[1])
		s, err := c.StartQRLogin(t.Context())
		if err != nil {
			p.failf(t, mark, "StartQRLogin: %v", err)
		}
		p.ApproveQR(t, s.ID(), "bob")
		start := time.Now()
		res, err := c.WaitForQRLogin(t.Context(), s)
		if err != nil {
			p.failf(t, mark, "WaitForQRLogin: %v", err)
		}
		if res.Auth.Entity.Subject != "bob" || time.Since(start) < 4*time.Second {
			t.Errorf("subject %q after %v; want bob after the 5 s interval", res.Auth.Entity.Subject, time.Since(start))
		}
	})

	t.Run("denied", func(t *testing.T) {
		t.Parallel()
		c := qrClient(t, p, ids[2], keys[2])
		s, err := c.StartQRLogin(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		p.DenyQR(t, s.ID(), "denied")
		var se *onesoidc.QRStatusError
		if _, err := c.CheckQRStatus(t.Context(), s.ID()); !errors.As(err, &se) || se.Status != "denied" || !errors.Is(err, onesoidc.ErrAccessDenied) {
			t.Errorf("status after denial: %v", err)
		}
	})

	t.Run("no device token, no session", func(t *testing.T) {
		t.Parallel()
		for _, auth := range []string{"", "Bearer not-a-token"} {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, p.Host()+"/auth/qr", nil)
			if err != nil {
				t.Fatal(err)
			}
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			if r := p.do(t, req); r.Status != http.StatusUnauthorized {
				t.Errorf("Authorization %q: HTTP %d, want 401", auth, r.Status)
			}
		}
	})
}
