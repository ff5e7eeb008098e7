package onesoidctest_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/ones-now/onesoidc"
	"github.com/ones-now/onesoidc/onesoidctest"
)

// testCIBALogin is a test of a CIBA login as a user of onesoidc writes it: call it from a Test
// function (func TestCIBALogin(t *testing.T) { testCIBALogin(t) }). Inside the synctest bubble
// the provider's 5 s poll interval and the slow_down pause run on a fake clock: the login takes
// 20 s of bubble time and a few milliseconds of real time.
func testCIBALogin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The fake provider lives in memory, in the bubble, and speaks ONES.
		idp := onesoidctest.NewInMemory(onesoidctest.WithONES())
		dev, err := idp.RegisterDevice()
		if err != nil {
			t.Fatal(err)
		}
		files, err := dev.WriteFiles(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		client, err := onesoidc.NewClientFromDevice(t.Context(),
			onesoidc.DevicePaths{Config: files.Config, Key: files.Key},
			onesoidc.WithHTTPClient(idp.HTTPClient()))
		if err != nil {
			t.Fatal(err)
		}

		// alice approves at the third poll; the second is answered slow_down (+5 s).
		idp.ScriptCIBA("alice", onesoidctest.CIBAScript{PendingPolls: 1, SlowDownPolls: []int{2}})
		start := time.Now()
		ack, err := client.MakeCIBARequest(t.Context(), onesoidc.CIBARequest{
			Hint:           onesoidc.LoginHint{Kind: onesoidc.HintLogin, Value: "alice"},
			BindingMessage: "Log in to the kiosk?",
		})
		if err != nil {
			t.Fatal(err)
		}
		res, err := client.WaitForCIBA(t.Context(), ack)
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Auth.Entity.Subject; got != "alice" {
			t.Errorf("subject %q, want alice", got)
		}
		if took := time.Since(start); took != 20*time.Second {
			// Polls at 5 s (pending), 10 s (slow_down: the interval grows to 10 s), 20 s (approved).
			t.Errorf("the login took %v of bubble time", took)
		}
		if rec := idp.CIBARequests()[0]; rec.Polls != 3 {
			t.Errorf("%d polls", rec.Polls)
		}
	})
}

// A CIBA login in a user's test costs no real time: run the test in a testing/synctest bubble
// with the in-memory Server (see testCIBALogin above, the whole example).
func Example_synctest() {
	// In a _test.go file of the user's package:
	//
	//	func TestCIBALogin(t *testing.T) { testCIBALogin(t) }
}
