package app

import (
	"context"

	"github.com/ones-now/onesoidc"
	"github.com/ones-now/onesoidc/onesoidctest"
)

// Fake device identity of the example, registered with the fake IdP.
const (
	FakeClientID = "7c3e1f52-2b7a-4d8e-9a61-0f4b2c9d8e13"
	FakeDeviceID = "0b8f4a2e-6c1d-4f3a-9e7b-5d2c1a0f8e64"
)

// StartFakeIdP starts the SDK's fake ONES identity provider (onesoidctest) on loopback,
// registers the fake device with it and returns a client of it. CIBA users are approved at their
// first poll, "alice" after one pending poll, with the display name "Alice"; QR logins are
// approved by "alice" at the first poll. Close the IdP when done.
func StartFakeIdP(ctx context.Context) (*onesoidctest.Server, *onesoidc.OpenIDConnectClient, error) {
	return setUpFakeIdP(ctx, onesoidctest.NewServer())
}

// setUpFakeIdP registers the fake device with idp, scripts its users as StartFakeIdP says and
// returns a client of it; it closes idp on failure. Tests pass an in-memory idp
// (onesoidctest.NewInMemory), which testing/synctest bubbles need.
func setUpFakeIdP(ctx context.Context, idp *onesoidctest.Server) (*onesoidctest.Server, *onesoidc.OpenIDConnectClient, error) {
	dev, err := idp.RegisterDevice(onesoidctest.WithDeviceIdentity(FakeDeviceID, FakeClientID))
	if err != nil {
		idp.Close()
		return nil, nil, err
	}
	idp.ScriptCIBA("alice", onesoidctest.CIBAScript{PendingPolls: 1, Interval: 2, IDTokenClaims: map[string]any{"preferred_username": "Alice"}})
	cfg, err := onesoidc.ParseDeviceConfig(dev.Config)
	if err != nil {
		idp.Close()
		return nil, nil, err
	}
	key, err := onesoidc.NewDeviceKey(dev.Key)
	if err != nil {
		idp.Close()
		return nil, nil, err
	}
	// The fake speaks the standard CIBA shapes and issues JWT access tokens (it is not started
	// with onesoidctest.WithONES), so the client picks the standard form encoding.
	client, err := onesoidc.NewClient(ctx, cfg, key, onesoidc.WithHTTPClient(idp.HTTPClient()),
		onesoidc.WithStandardCIBA())
	if err != nil {
		idp.Close()
		return nil, nil, err
	}
	return idp, client, nil
}
