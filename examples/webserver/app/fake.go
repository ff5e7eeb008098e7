package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"

	"github.com/ones-now/onesoidc"
	"github.com/ones-now/onesoidc/internal/mockidp"
)

// Fake device identity of the example, registered with the fake IdP.
const (
	FakeClientID = "7c3e1f52-2b7a-4d8e-9a61-0f4b2c9d8e13"
	FakeDeviceID = "0b8f4a2e-6c1d-4f3a-9e7b-5d2c1a0f8e64"
)

// StartFakeIdP starts the SDK's fake ONES identity provider on loopback, registers a fresh
// device key with it and returns a client of it. CIBA users are approved at their first poll,
// "alice" after one pending poll, with the display name "Alice"; QR logins are approved by
// "alice" at the first poll. Close the IdP when done.
func StartFakeIdP(ctx context.Context) (*mockidp.IdP, *onesoidc.OpenIDConnectClient, error) {
	idp := mockidp.Start()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		idp.Close()
		return nil, nil, err
	}
	key, err := onesoidc.NewDeviceKey(k)
	if err != nil {
		idp.Close()
		return nil, nil, err
	}
	idp.RegisterClient(FakeClientID, key.Public(), key.Algorithm())
	idp.SetDeviceID(FakeClientID, FakeDeviceID) // QR status answers name the device
	idp.ScriptCIBA("alice", mockidp.CIBAScript{PendingPolls: 1, Interval: 2, IDTokenClaims: map[string]any{"preferred_username": "Alice"}})
	cfg := &onesoidc.DeviceConfig{ID: FakeDeviceID, ClientID: FakeClientID, Host: idp.URL, KeySecurity: "default"}
	// The fake speaks the standard CIBA shapes and issues JWT access tokens (it is not started
	// with mockidp.WithONES), so the client picks the standard form encoding.
	client, err := onesoidc.NewClient(ctx, cfg, key, onesoidc.WithHTTPClient(idp.HTTPClient()),
		onesoidc.WithStandardCIBA())
	if err != nil {
		idp.Close()
		return nil, nil, err
	}
	return idp, client, nil
}
