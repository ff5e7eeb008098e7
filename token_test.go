package onesoidc

import (
	"errors"
	"slices"
	"testing"

	"golang.org/x/oauth2"

	"github.com/ones-now/onesoidc/internal/mockidp"
)

func TestIntrospectToken(t *testing.T) {
	t.Parallel()
	idp := startIdP(t)
	c := newTestClient(t, idp, testKey(t, "ES256"), WithDeviceTokenScope("device"))
	tok, err := c.RequestDeviceAccessToken(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.IntrospectToken(t.Context(), tok.AccessToken, "access_token")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Active || res.ClientID != testClientID || res.Scope != "device" || !slices.Contains(res.Audience, idp.Issuer) || len(res.Raw) == 0 {
		t.Errorf("introspection = %+v", res)
	}
	f := idp.Requests(mockidp.EndpointIntrospection)[0].Form
	if f.Get("token_type_hint") != "access_token" || f.Get("client_assertion") == "" {
		t.Errorf("introspection request form = %v", f)
	}

	res, err = c.IntrospectToken(t.Context(), "unknown", "")
	if err != nil || res.Active {
		t.Errorf("unknown token: %+v, %v; want Active=false and no error", res, err)
	}
}

func TestRevokeToken(t *testing.T) {
	t.Parallel()
	idp := startIdP(t)
	c := newTestClient(t, idp, testKey(t, "ES256"))
	tok, _ := c.RequestDeviceAccessToken(t.Context())
	if err := c.RevokeToken(t.Context(), tok.AccessToken, "access_token"); err != nil {
		t.Fatal(err)
	}
	res, err := c.IntrospectToken(t.Context(), tok.AccessToken, "")
	if err != nil || res.Active {
		t.Errorf("revoked token still active: %+v, %v", res, err)
	}
}

func TestRefreshToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		behaviour mockidp.RefreshBehaviour
		wantErr   bool
		rotated   bool
	}{
		{"without rotation keeps the refresh token", mockidp.RefreshBehaviour{}, false, false},
		{"CB-29 rotation keeps the newest refresh token", mockidp.RefreshBehaviour{Rotate: true}, false, true},
		{"TV-36 refreshed ID token with another subject", mockidp.RefreshBehaviour{IDTokenSubject: "mallory"}, true, false},
		{"TV-36 refreshed ID token with another issuer", mockidp.RefreshBehaviour{IDTokenIssuer: "https://evil.example/oidc"}, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			idp := startIdP(t)
			c := newTestClient(t, idp, testKey(t, "ES256"))
			idp.SetRefreshBehaviour(tc.behaviour)
			rt := idp.IssueRefreshToken(testClientID, "alice", "openid offline_access")
			idt, _ := idp.MintIDToken(testClientID, "alice", nil)
			prev := (&oauth2.Token{AccessToken: "old", RefreshToken: rt}).WithExtra(map[string]any{"id_token": idt})
			tok, err := c.RefreshToken(t.Context(), prev)
			if tc.wantErr {
				if tok != nil || !errors.As(err, new(*ValidationError)) {
					t.Fatalf("refresh = %+v, %v; want a ValidationError", tok, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.rotated == (tok.RefreshToken == rt) {
				t.Errorf("refresh token %q (old %q), rotated=%v", tok.RefreshToken, rt, tc.rotated)
			}
			if tok.Extra("scope") != "openid offline_access" || tok.Extra("id_token") == nil {
				t.Errorf("refreshed token = %+v", tok)
			}
			// The token in use works again (or, rotated, the old one fails).
			_, err = c.RefreshToken(t.Context(), tok)
			if err != nil {
				t.Errorf("second refresh with the newest token: %v", err)
			}
			if tc.rotated {
				if _, err := c.RefreshToken(t.Context(), prev); !errors.Is(err, ErrInvalidGrant) {
					t.Errorf("old rotated refresh token: %v, want invalid_grant", err)
				}
			}
		})
	}
}
