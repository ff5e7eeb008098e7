package onesoidc

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ones-now/onesoidc/internal/mockidp"
)

func TestApplicationsBothSpellingsAndLookup(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := cibaSetup(t)
		list, err := c.Applications(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		want := []Application{
			{ID: "1", Type: "server_oauth2", Name: "Accounts", Description: "ONES accounts", IPv4: "10.0.0.7",
				Hostname: "accounts.ones.test", ClientIdentifier: "3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b"},
			{ID: "2", Type: "client_kyc", Name: "KYC", Hostname: "kyc.ones.test:8443",
				ClientIdentifier: "9e8d7c6b-5a49-4382-b1a0-f9e8d7c6b5a4", ChainID: "5", ContractCheckBalance: "0xabc", IsHidden: true},
		}
		if len(list) != len(want) || list[0] != want[0] || list[1] != want[1] {
			t.Fatalf("list = %+v\nwant %+v", list, want)
		}
		app, err := c.ApplicationByClientID(t.Context(), "9e8d7c6b-5a49-4382-b1a0-f9e8d7c6b5a4")
		if err != nil || app.Name != "KYC" {
			t.Fatalf("ByClientID = %+v, %v", app, err)
		}
		if _, err := c.ApplicationByClientID(t.Context(), "unknown"); !errors.Is(err, ErrApplicationNotFound) {
			t.Errorf("unknown client: %v", err)
		}
		// The issuer is http://localhost/oidc: the application URL takes its scheme.
		if u, err := c.ApplicationURL(app); err != nil || u != "http://kyc.ones.test:8443" {
			t.Errorf("ApplicationURL = %q, %v", u, err)
		}
		// Cached: three calls, one request; the caller's slice is its own.
		list[0].Name = "changed"
		again, _ := c.Applications(t.Context())
		if again[0].Name != "Accounts" || idp.Count(mockidp.EndpointApplications) != 1 {
			t.Errorf("cache: name %q, %d requests", again[0].Name, idp.Count(mockidp.EndpointApplications))
		}
	})
}

func TestApplicationsCacheHasABoundedMaxAge(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		idp, c := cibaSetup(t, WithApplicationsMaxAge(time.Minute))
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				if _, err := c.Applications(t.Context()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if n := idp.Count(mockidp.EndpointApplications); n != 1 {
			t.Errorf("50 concurrent callers: %d requests, want 1", n)
		}
		time.Sleep(59 * time.Second)
		_, _ = c.Applications(t.Context())
		time.Sleep(time.Second)
		idp.SetApplications(`[{"id":"3","type":"client","name":"New","client_identifier":"c"}]`)
		list, err := c.Applications(t.Context())
		if err != nil || len(list) != 1 || list[0].Name != "New" || idp.Count(mockidp.EndpointApplications) != 2 {
			t.Errorf("after the max age: %+v, %v, %d requests", list, err, idp.Count(mockidp.EndpointApplications))
		}
	})
	for _, d := range []time.Duration{0, time.Millisecond, 25 * time.Hour} {
		if _, err := buildOptions([]Option{WithApplicationsMaxAge(d)}); !errors.As(err, new(*ConfigError)) {
			t.Errorf("WithApplicationsMaxAge(%v): %v, want a ConfigError", d, err)
		}
	}
}

func TestApplicationsURLFromMetadataElseOption(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		// Neither: a ConfigError that says how to configure it, and no request.
		idp := mockidp.NewInMemory()
		idp.EditMetadata(func(doc map[string]any) { delete(doc, applicationsURIMetadataKey) })
		c := newTestClient(t, idp, testKey(t, "ES256"))
		_, err := c.Applications(t.Context())
		var ce *ConfigError
		if !errors.Is(err, ErrNotSupportedByProvider) || !errors.As(err, &ce) || !strings.Contains(err.Error(), "WithApplicationsURL") {
			t.Errorf("no URL: %v", err)
		}
		// The option.
		c = newTestClient(t, idp, testKey(t, "ES256"), WithApplicationsURL(idp.URL+"/api/applications"))
		if list, err := c.Applications(t.Context()); err != nil || len(list) != 2 {
			t.Errorf("with WithApplicationsURL: %v, %v", list, err)
		}
		// The metadata member wins over the option.
		idp.EditMetadata(func(doc map[string]any) { doc[applicationsURIMetadataKey] = idp.URL + "/api/applications" })
		c = newTestClient(t, idp, testKey(t, "ES256"), WithApplicationsURL(idp.URL+"/elsewhere"))
		if _, err := c.Applications(t.Context()); err != nil {
			t.Errorf("metadata member: %v", err)
		}
		// A plain-http member on another host is refused before any request.
		idp.EditMetadata(func(doc map[string]any) { doc[applicationsURIMetadataKey] = "http://apps.example/list" })
		c = newTestClient(t, idp, testKey(t, "ES256"))
		if _, err := c.Applications(t.Context()); !errors.As(err, new(*ConfigError)) {
			t.Errorf("http member: %v", err)
		}
		if n := idp.Count(mockidp.EndpointApplications); n != 2 {
			t.Errorf("%d requests, want 2", n)
		}
	})
	if _, err := buildOptions([]Option{WithApplicationsURL("http://apps.example/list")}); !errors.As(err, new(*ConfigError)) {
		t.Errorf("WithApplicationsURL over http: %v", err)
	}
}

func TestApplicationsMalformedListsAreRefused(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"both spellings":        `[{"client_identifier":"a","clientIdentifier":"b"}]`,
		"type not a string":     `[{"type":1}]`,
		"is_hidden not boolean": `[{"isHidden":"yes"}]`,
		"name an object":        `[{"name":{}}]`,
		"null entry":            `[null]`,
		"not a list":            `{"id":"1"}`,
		"not JSON":              `<html>`,
		"too many entries":      "[" + strings.Repeat(`{},`, maxApplications) + "{}]",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				idp, c := cibaSetup(t)
				idp.SetApplications(body)
				if list, err := c.Applications(t.Context()); list != nil || !errors.As(err, new(*HTTPError)) {
					t.Errorf("Applications = %v, %v; want an HTTPError", list, err)
				}
			})
		})
	}
	synctest.Test(t, func(t *testing.T) {
		idp, c := cibaSetup(t)
		idp.SetApplications(`{"applications":[{"id":"9","type":"server_matrix","name":"Chat"}]}`)
		if list, err := c.Applications(t.Context()); err != nil || len(list) != 1 || list[0].Type != "server_matrix" {
			t.Errorf("wrapped list: %v, %v", list, err)
		}
	})
}

func TestApplicationURLTakesOnlyAHostname(t *testing.T) {
	t.Parallel()
	c := qrTestClient(t)
	for _, h := range []string{"", "https://evil.example", "evil.example/path", "user@evil.example", "evil.example?x",
		"evil.example#x", "evil example", "evil.example:0", "evil.example:99999", "evil.example:x", "a\x1bb", "::1"} {
		if u, err := c.ApplicationURL(&Application{Hostname: h}); err == nil {
			t.Errorf("hostname %q gave %q", h, u)
		}
	}
	for h, want := range map[string]string{
		"app.ones.test":      "https://app.ones.test",
		"app.ones.test:8443": "https://app.ones.test:8443",
		"10.0.0.7":           "https://10.0.0.7",
		"[::1]:443":          "https://[::1]:443",
		"[::1]":              "https://[::1]",
	} {
		if u, err := c.ApplicationURL(&Application{Hostname: h}); err != nil || u != want {
			t.Errorf("hostname %q: %q, %v; want %q", h, u, err, want)
		}
	}
}
