package onesoidc

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ones-now/onesoidc/onesoidctest"
	"golang.org/x/oauth2"
)

// armMissCooldown validates, as a resource server would, an unauthenticated token that claims
// kid: it arms the JWKS miss cooldown and puts kid in the negative cache.
func armMissCooldown(t *testing.T, idp *onesoidctest.Server, c *OpenIDConnectClient, kid string) {
	t.Helper()
	wantAccept(t)(c.ValidateToken(t.Context(), mint(t, idp, nil, nil))) // the initial load
	bogus := mint(t, idp, map[string]any{"kid": kid}, nil)
	res, err := c.ValidateToken(t.Context(), bogus)
	wantReject(t, res, err, ErrUnknownKey, bogus)
	if n := idp.Count(onesoidctest.EndpointJWKS); n != 2 {
		t.Fatalf("%d JWKS requests, want 2 (load, one refetch for the made-up kid)", n)
	}
}

// TestJW04TrustedKeyMissRefetchesWithinCooldown: an attacker's made-up kid arms the miss
// cooldown (and the negative cache, here for the very kid the provider rotates to); the provider
// rotates its keys; the ID token of the SDK's own token request — CIBA poll, RFC 8628 QR poll,
// refresh — still validates, with exactly one refetch, while a token from outside with an unknown
// kid stays refused without one.
func TestJW04TrustedKeyMissRefetchesWithinCooldown(t *testing.T) {
	t.Parallel()
	flows := map[string]func(t *testing.T, idp *onesoidctest.Server, c *OpenIDConnectClient, prev *oauth2.Token) error{
		"CIBA poll": func(t *testing.T, idp *onesoidctest.Server, c *OpenIDConnectClient, _ *oauth2.Token) error {
			_, _, _, err := waitScripted(t, idp, c, onesoidctest.CIBAScript{})
			return err
		},
		"RFC 8628 QR poll": func(t *testing.T, idp *onesoidctest.Server, c *OpenIDConnectClient, _ *oauth2.Token) error {
			s, err := c.StartQRLogin(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.WaitForQRLogin(t.Context(), s)
			return err
		},
		"refresh": func(t *testing.T, idp *onesoidctest.Server, c *OpenIDConnectClient, prev *oauth2.Token) error {
			_, err := c.RefreshToken(t.Context(), prev)
			return err
		},
	}
	for name, flow := range flows {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				idp, c := cibaSetup(t, WithDeviceAuthorizationQR())
				var prev *oauth2.Token
				if name == "refresh" {
					res, _, _, err := waitScripted(t, idp, c, onesoidctest.CIBAScript{})
					if err != nil {
						t.Fatal(err)
					}
					prev = res.Token
				}
				next := onesoidctest.NewKey("ES256")
				armMissCooldown(t, idp, c, next.KeyID)
				idp.UseKey(next) // the rotation, within the cooldown
				idp.RetireOldKeys()
				time.Sleep(time.Second)
				if err := flow(t, idp, c, prev); err != nil {
					t.Fatalf("login after a rotation within the miss cooldown: %v", err)
				}
				if n := idp.Count(onesoidctest.EndpointJWKS); n != 3 {
					t.Errorf("%d JWKS requests, want 3 (one refetch for the trusted miss)", n)
				}
				// A token from outside with another unknown kid, right after: no refetch.
				outside := mint(t, idp, map[string]any{"kid": "another-made-up-kid"}, nil)
				res, err := c.ValidateToken(t.Context(), outside)
				wantReject(t, res, err, ErrUnknownKey, outside)
				if n := idp.Count(onesoidctest.EndpointJWKS); n != 3 {
					t.Errorf("%d JWKS requests after an outside miss, want still 3", n)
				}
			})
		})
	}
}

// TestTrustedKeyMissSharesFetchInFlight: concurrent trusted misses share one fetch.
func TestTrustedKeyMissSharesFetchInFlight(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp := onesoidctest.NewInMemory()
		c := newValidationClient(t, idp)
		armMissCooldown(t, idp, c, "made-up")
		idp.UseKey(onesoidctest.NewKey("ES256"))
		idp.Inject(onesoidctest.EndpointJWKS, onesoidctest.Fault{Times: 1, Delay: time.Second})
		tok := mint(t, idp, nil, nil)
		errs := make(chan error, 10)
		for range 10 {
			go func() {
				_, err := c.ValidateToken(t.Context(), tok, fromOwnRequest())
				errs <- err
			}()
		}
		for range 10 {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		if n := idp.Count(onesoidctest.EndpointJWKS); n != 3 {
			t.Errorf("%d JWKS requests, want 3 (one shared refetch)", n)
		}
	})
}

// revokedTokens returns the tokens the IdP was asked to revoke, with their hints.
func revokedTokens(idp *onesoidctest.Server) (tokens, hints []string) {
	for _, r := range idp.Requests(onesoidctest.EndpointRevocation) {
		tokens = append(tokens, r.Form.Get("token"))
		hints = append(hints, r.Form.Get("token_type_hint"))
	}
	return tokens, hints
}

// wantIncomplete checks a *LoginIncompleteError that wraps a token error of type T.
func wantIncomplete[T error](t *testing.T, err error, revoked bool) *LoginIncompleteError {
	t.Helper()
	var le *LoginIncompleteError
	if !errors.As(err, &le) {
		t.Fatalf("err = %v, want a *LoginIncompleteError", err)
	}
	if !errors.As(err, new(T)) {
		t.Errorf("err = %v, want it to wrap a %T", err, *new(T))
	}
	if le.Revoked != revoked {
		t.Errorf("Revoked = %v (%v), want %v", le.Revoked, le.RevokeErr, revoked)
	}
	if !strings.Contains(err.Error(), "approved but could not be completed") {
		t.Errorf("message %q does not say the login was approved but not completed", err)
	}
	return le
}

// TestRedeemedLoginRefusedIsRevokedAndReported: tokens issued for an approved CIBA or RFC 8628 QR
// login whose ID token fails validation are revoked at the provider (refresh token, then access
// token, RFC 7009) and the caller gets a *LoginIncompleteError saying why; the access token is
// then inactive. The revocation runs even when the caller's context ended during validation.
func TestRedeemedLoginRefusedIsRevokedAndReported(t *testing.T) {
	t.Parallel()
	for _, flow := range []string{"CIBA", "RFC 8628 QR"} {
		t.Run(flow, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				idp, c := cibaSetup(t, WithDeviceAuthorizationQR())
				script := onesoidctest.CIBAScript{IDTokenClaims: map[string]any{"aud": "someone-else"}}
				var err error
				if flow == "CIBA" {
					_, _, _, err = waitScripted(t, idp, c, script)
				} else {
					idp.ScriptDeviceFlow(script)
					s, serr := c.StartQRLogin(t.Context())
					if serr != nil {
						t.Fatal(serr)
					}
					_, err = c.WaitForQRLogin(t.Context(), s)
				}
				wantIncomplete[*LoginTokenError](t, err, true)
				if !errors.Is(err, ErrInvalidAudience) {
					t.Errorf("err = %v, want it to say why (ErrInvalidAudience)", err)
				}
				tokens, hints := revokedTokens(idp)
				if !slices.Equal(hints, []string{"refresh_token", "access_token"}) || slices.Contains(tokens, "") {
					t.Fatalf("revocations %v, want the refresh token and the access token", hints)
				}
				ir, ierr := c.IntrospectToken(t.Context(), tokens[1], "")
				if ierr != nil || ir.Active {
					t.Errorf("access token after the revocation: %+v, %v", ir, ierr)
				}
				for _, tok := range tokens {
					if strings.Contains(err.Error(), tok) {
						t.Error("the error holds a token")
					}
				}
			})
		})
	}
}

// TestRedeemedLoginRevocationFailureReported: without a revocation endpoint (or when the
// revocation fails), the error says that the tokens stay valid.
func TestRedeemedLoginRevocationFailureReported(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp := onesoidctest.NewInMemory()
		idp.EditMetadata(func(d map[string]any) { delete(d, "revocation_endpoint") })
		c := newTestClient(t, idp, testKey(t, "ES256"))
		_, _, _, err := waitScripted(t, idp, c, onesoidctest.CIBAScript{OmitIDToken: true})
		le := wantIncomplete[*LoginTokenError](t, err, false)
		if !errors.As(le.RevokeErr, new(*ConfigError)) || !strings.Contains(err.Error(), "stay valid") {
			t.Errorf("RevokeErr %v, message %q", le.RevokeErr, err)
		}
		idp2, c2 := cibaSetup(t)
		idp2.Inject(onesoidctest.EndpointRevocation, onesoidctest.Fault{Status: 503})
		_, _, _, err = waitScripted(t, idp2, c2, onesoidctest.CIBAScript{OmitIDToken: true})
		if le := wantIncomplete[*LoginTokenError](t, err, false); !errors.As(le.RevokeErr, new(*HTTPError)) {
			t.Errorf("RevokeErr %v, want the *HTTPError", le.RevokeErr)
		}
	})
}

// TestRedeemedLoginRevokedAfterCallerGaveUp: the caller's context ends while the ID token's key
// is being fetched; the tokens are still revoked, within a bounded time.
func TestRedeemedLoginRevokedAfterCallerGaveUp(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := cibaSetup(t)
		idp.ScriptCIBA("alice", onesoidctest.CIBAScript{IDTokenKey: onesoidctest.NewKey("ES256")}) // an unpublished key
		resp, err := c.MakeCIBARequest(t.Context(), aliceRequest())
		if err != nil {
			t.Fatal(err)
		}
		idp.Inject(onesoidctest.EndpointJWKS, onesoidctest.Fault{Hang: true})
		ctx, cancel := context.WithTimeout(t.Context(), resp.Interval+time.Second)
		defer cancel()
		_, err = c.WaitForCIBA(ctx, resp)
		if err == nil {
			t.Fatal("accepted")
		}
		if _, hints := revokedTokens(idp); len(hints) != 2 {
			t.Errorf("%d revocations, want 2", len(hints))
		}
		time.Sleep(time.Minute) // the hanging JWKS fetch ends at the request timeout
	})
}

// TestONESQRLoginRefusedTokenIsRevoked: an approved ONES QR login whose access token fails
// introspection is revoked and reported through the same rule.
func TestONESQRLoginRefusedTokenIsRevoked(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c, s := onesQRSession(t, onesoidctest.QRScript{InactiveToken: true})
		_, err := c.WaitForQRLogin(t.Context(), s)
		wantIncomplete[*LoginTokenError](t, err, true)
		tokens, hints := revokedTokens(idp)
		recs := idp.QRSessions()
		if len(recs) != 1 || !slices.Equal(tokens, []string{recs[0].AccessToken}) || hints[0] != "access_token" {
			t.Errorf("revoked %d tokens (%v), want the session's access token", len(tokens), hints)
		}
	})
}

// TestRefreshKeys: RefreshKeys fetches the set now whatever the cooldown, installs it, and on
// failure keeps the last good keys and returns the error.
func TestRefreshKeys(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp := onesoidctest.NewInMemory()
		c := newValidationClient(t, idp)
		armMissCooldown(t, idp, c, "made-up")
		old := idp.SigningKey()
		oldTok := mint(t, idp, nil, nil)
		idp.UseKey(onesoidctest.NewKey("ES256"))
		idp.RemoveKey(old.KeyID)
		newTok := mint(t, idp, nil, nil)
		if err := c.RefreshKeys(t.Context()); err != nil {
			t.Fatal(err)
		}
		if n := idp.Count(onesoidctest.EndpointJWKS); n != 3 {
			t.Errorf("%d JWKS requests, want 3", n)
		}
		wantAccept(t)(c.ValidateToken(t.Context(), newTok))
		res, err := c.ValidateToken(t.Context(), oldTok)
		wantReject(t, res, err, ErrUnknownKey, oldTok)
		// A failed refresh keeps the keys and says why.
		idp.Inject(onesoidctest.EndpointJWKS, onesoidctest.Fault{Times: 2, Status: 500})
		err = c.RefreshKeys(t.Context())
		var he *HTTPError
		if !errors.As(err, &he) || he.StatusCode != 500 {
			t.Errorf("RefreshKeys against a 500: %v, want the *HTTPError", err)
		}
		// Within the retry delay of that failure, RefreshKeys still fetches.
		if err := c.RefreshKeys(t.Context()); !errors.As(err, &he) {
			t.Errorf("second RefreshKeys: %v", err)
		}
		if n := idp.Count(onesoidctest.EndpointJWKS); n != 5 {
			t.Errorf("%d JWKS requests, want 5", n)
		}
		wantAccept(t)(c.ValidateToken(t.Context(), newTok))
		// Concurrent calls share one fetch.
		idp.Inject(onesoidctest.EndpointJWKS, onesoidctest.Fault{Times: 1, Delay: time.Second})
		errs := make(chan error, 5)
		for range 5 {
			go func() { errs <- c.RefreshKeys(t.Context()) }()
		}
		for range 5 {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		if n := idp.Count(onesoidctest.EndpointJWKS); n != 6 {
			t.Errorf("%d JWKS requests after 5 concurrent calls, want 6", n)
		}
		// A context that ends first returns its error.
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := c.RefreshKeys(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled RefreshKeys: %v", err)
		}
	})
}

// TestRedeemedLoginUnusableTokenResponseRevoked: a token response to a CIBA poll that cannot be
// used (token_type not Bearer, expires_in out of range) still issued tokens: those it names are
// revoked and the error says the login was approved but not completed.
func TestRedeemedLoginUnusableTokenResponseRevoked(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"token_type mac":     `{"access_token":"at-1","refresh_token":"rt-1","token_type":"mac","expires_in":60}`,
		"expires_in 0":       `{"access_token":"at-1","refresh_token":"rt-1","token_type":"Bearer","expires_in":0}`,
		"expires_in string":  `{"access_token":"at-1","refresh_token":"rt-1","token_type":"Bearer","expires_in":"60"}`,
		"refresh not string": `{"access_token":"at-1","refresh_token":7,"token_type":"mac"}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				idp, c := cibaSetup(t)
				idp.Inject(onesoidctest.EndpointToken, onesoidctest.Fault{Times: 1, Status: 200, ContentType: "application/json", Body: []byte(body)})
				_, _, _, err := waitScripted(t, idp, c, onesoidctest.CIBAScript{})
				wantIncomplete[*HTTPError](t, err, true)
				want := []string{"rt-1", "at-1"}
				if name == "refresh not string" {
					want = want[1:]
				}
				if tokens, _ := revokedTokens(idp); !slices.Equal(tokens, want) {
					t.Errorf("revoked %v, want %v", tokens, want)
				}
			})
		})
	}
}

// TestTrustedKeyMissAfterJoiningStaleFetch: a trusted miss that joins a fetch started before the
// provider rotated (so its answer lacks the new key) starts one fetch of its own.
func TestTrustedKeyMissAfterJoiningStaleFetch(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp := onesoidctest.NewInMemory()
		c := newValidationClient(t, idp)
		wantAccept(t)(c.ValidateToken(t.Context(), mint(t, idp, nil, nil)))
		idp.Inject(onesoidctest.EndpointJWKS, onesoidctest.Fault{Times: 1, Delay: 2 * time.Second, Status: 200,
			ContentType: "application/json", Body: idp.JWKS()}) // the set before the rotation
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = c.ValidateToken(t.Context(), mint(t, idp, map[string]any{"kid": "made-up"}, nil))
		}()
		time.Sleep(time.Second) // the outside miss's fetch is in flight
		idp.UseKey(onesoidctest.NewKey("ES256"))
		wantAccept(t)(c.ValidateToken(t.Context(), mint(t, idp, nil, nil), fromOwnRequest()))
		<-done
		if n := idp.Count(onesoidctest.EndpointJWKS); n != 3 {
			t.Errorf("%d JWKS requests, want 3 (load, the stale shared fetch, one of its own)", n)
		}
	})
}

// TestTrustedLookupRetriesFailedLoadAtOnce: after a failed initial load, a token from outside
// waits out the retry delay, while a trusted one fetches at once.
func TestTrustedLookupRetriesFailedLoadAtOnce(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp := onesoidctest.NewInMemory()
		c := newValidationClient(t, idp)
		idp.Inject(onesoidctest.EndpointJWKS, onesoidctest.Fault{Times: 1, Status: 503})
		tok := mint(t, idp, nil, nil)
		res, err := c.ValidateToken(t.Context(), tok)
		wantReject(t, res, err, ErrKeySetUnavailable, tok)
		res, err = c.ValidateToken(t.Context(), tok)
		wantReject(t, res, err, ErrKeySetUnavailable, tok)
		if n := idp.Count(onesoidctest.EndpointJWKS); n != 1 {
			t.Fatalf("%d JWKS requests within the retry delay, want 1", n)
		}
		wantAccept(t)(c.ValidateToken(t.Context(), tok, fromOwnRequest()))
		if n := idp.Count(onesoidctest.EndpointJWKS); n != 2 {
			t.Errorf("%d JWKS requests, want 2", n)
		}
	})
}
