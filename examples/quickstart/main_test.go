package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/ones-now/onesoidc/onesoidctest"
)

// TestQuickstart runs the README's first command in-process, against the in-memory fake IdP (onesoidctest) in
// a synctest bubble so that the CIBA waits take no real time, and checks every step happened.
func TestQuickstart(t *testing.T) {
	var out bytes.Buffer
	synctest.Test(t, func(t *testing.T) {
		if err := run(t.Context(), &out, onesoidctest.NewInMemory(onesoidctest.WithONES())); err != nil {
			t.Fatalf("quickstart failed: %v\n%s", err, &out)
		}
	})
	for _, want := range []string{
		"2. device 3f9a6c21-8d4e-4b7f-a2c5-6e1d0b9f4a87 (client 7c3e1f52-2b7a-4d8e-9a61-0f4b2c9d8e13) registered: device.yml, private.pem, public_jwk.json",
		"3. discovered issuer http://localhost/oidc",
		"4. device access token: Bearer",
		"second call served from the cache: true",
		"5. introspection: active=true client_id=7c3e1f52-2b7a-4d8e-9a61-0f4b2c9d8e13",
		"6. CIBA login for alice requested",
		"poll 3 in 1s: still pending",
		`approved: scope "openid profile"`,
		"7. QR login: scan the code with the ONES app (session ",
		"█▀▀▀▀▀█", // a finder pattern: the same in every code (the data modules vary with the session id)
		`logged in: user "alice", ID token validated (RS256, key `,
		`approved on the phone by "bob": scope "openid profile", access token validated by introspection`,
		"   alice would approve on her phone; here the fake IdP approves at the third poll",
		"   bob would scan it with the ONES app and approve; here the fake IdP approves as bob\n   poll 1 in 5s\n",
		"8. a resource server protects GET /hello with RequireToken\n" +
			`   GET /hello with device token -> 200 "hello device 7c3e1f52-2b7a-4d8e-9a61-0f4b2c9d8e13"` + "\n" +
			`   GET /hello with garbage      -> 401, WWW-Authenticate: Bearer error="invalid_token"`,
		"   GET /hello with no token     -> 401, WWW-Authenticate: Bearer\n",
		"Done: every flow ran against the fake IdP.",
		"next: examples/devicetoken",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, &out)
		}
	}
	// Every step has its own number, once, in order.
	lines := "\n" + out.String()
	for step := 1; step <= 8; step++ {
		if n := strings.Count(lines, fmt.Sprintf("\n%d. ", step)); n != 1 {
			t.Errorf("step %d numbered %d times:\n%s", step, n, &out)
		}
	}
	if strings.Contains(lines, "\n9. ") {
		t.Errorf("a step past 8:\n%s", &out)
	}
	if strings.Contains(out.String(), "eyJ") {
		t.Errorf("quickstart printed a token:\n%s", &out)
	}
}
