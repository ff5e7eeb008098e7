package onesoidc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// The ONES well-known applications: the provider's list of the applications registered with it
// (servers, clients), as the ones-oidc crate reads it. The document's path is not published: it
// comes from the discovery member "ones_applications_uri", else from WithApplicationsURL.

// applicationsURIMetadataKey is the provider metadata member (OpenID Connect Discovery 1.0 §3
// allows additional members) that names the URL of the ONES application list. The name is this
// package's choice, as ONES publishes none; WithApplicationsURL configures the URL by hand.
const applicationsURIMetadataKey = "ones_applications_uri"

// Limits of the application list.
const (
	// defaultApplicationsMaxAge is how long a fetched application list is used before it is
	// fetched again (WithApplicationsMaxAge).
	defaultApplicationsMaxAge = 5 * time.Minute
	maxApplicationsMaxAge     = 24 * time.Hour
	maxApplications           = 10000
)

// ErrApplicationNotFound is returned by ApplicationByClientID when no application has the client
// identifier.
var ErrApplicationNotFound = errors.New("onesoidc: no ONES application with this client identifier")

// Application is one entry of the ONES application list. Every member is read in snake_case
// ("client_identifier") or camelCase ("clientIdentifier"); an entry that carries a member in
// both spellings, twice, or in another case ("Hostname") is refused. Numbers in text members (an id or chain id sent as a number) are
// kept as their decimal text.
type Application struct {
	// ID is the provider's identifier of the entry ("id").
	ID string `json:"id"`
	// Type is the kind of application ("type"): the ONES provider uses "server",
	// "server_matrix", "server_discourse", "server_oauth2", "server_blockchain", "client",
	// "client_oidc" and "client_kyc"; other values are kept as they come.
	Type string `json:"type"`
	// Name is the application's display name ("name").
	Name string `json:"name"`
	// Description is the application's description ("description"), or "".
	Description string `json:"description,omitempty"`
	// IPv4 is the application's IPv4 address, if listed.
	IPv4 string `json:"ipv4,omitempty"`
	// Hostname is the application's host (and port), without scheme: see ApplicationURL.
	Hostname string `json:"hostname,omitempty"`
	// ClientIdentifier is the OAuth client id of the application.
	ClientIdentifier string `json:"client_identifier,omitempty"`
	// ChainID is the chain id of a blockchain application ("chain_id"), or "".
	ChainID string `json:"chain_id,omitempty"`
	// ContractCheckBalance is the balance-check contract of a blockchain application
	// ("contract_check_balance"), or "".
	ContractCheckBalance string `json:"contract_check_balance,omitempty"`
	// IsHidden says the application is not to be listed to users.
	IsHidden bool `json:"is_hidden,omitempty"`
}

// applicationFields maps each member's snake_case name to its camelCase name.
var applicationFields = [...][2]string{
	{"id", "id"}, {"type", "type"}, {"name", "name"}, {"description", "description"}, {"ipv4", "ipv4"},
	{"hostname", "hostname"}, {"client_identifier", "clientIdentifier"}, {"chain_id", "chainId"},
	{"contract_check_balance", "contractCheckBalance"}, {"is_hidden", "isHidden"},
}

// parseApplication reads an application in either spelling of its members.
func parseApplication(data []byte, a *Application) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("application: %w", err)
	}
	if m == nil {
		return errors.New("application: null entry")
	}
	var out Application
	text := map[string]*string{"id": &out.ID, "name": &out.Name, "description": &out.Description, "ipv4": &out.IPv4,
		"hostname": &out.Hostname, "client_identifier": &out.ClientIdentifier, "chain_id": &out.ChainID,
		"contract_check_balance": &out.ContractCheckBalance}
	for _, f := range applicationFields {
		raw, snake := m[f[0]]
		if camel, ok := m[f[1]]; ok && f[1] != f[0] {
			if snake {
				return fmt.Errorf("application: %s given as %s and as %s", f[0], f[0], f[1])
			}
			raw, snake = camel, true
		}
		if !snake || string(raw) == "null" {
			continue
		}
		switch f[0] {
		case "type":
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return fmt.Errorf("application: type is not a string")
			}
			out.Type = s
		case "is_hidden":
			if err := json.Unmarshal(raw, &out.IsHidden); err != nil {
				return fmt.Errorf("application: is_hidden is not a boolean")
			}
		default:
			s, err := textOrNumber(raw)
			if err != nil {
				return fmt.Errorf("application: %s %w", f[0], err)
			}
			*text[f[0]] = s
		}
	}
	*a = out
	return nil
}

// textOrNumber reads a JSON string, or a JSON number as its text.
func textOrNumber(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String(), nil
	}
	return "", errors.New("is not a string or a number")
}

// parseApplications reads the application list: a JSON array of applications, or an object
// whose "applications" member is one. That object, and each application, must not have a member
// twice, also under case folding, nor one whose name differs from a member read only in case
// ("applications", and both spellings of each application member; checkMembers).
func parseApplications(data []byte) ([]Application, error) {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '{' {
		var wrapped struct {
			Applications *json.RawMessage `json:"applications"`
		}
		if err := json.Unmarshal(data, &wrapped); err != nil {
			return nil, err
		}
		if err := checkMembers(data, []string{"applications"}); err != nil {
			return nil, err
		}
		if wrapped.Applications == nil {
			return nil, errors.New(`an object without "applications"`)
		}
		data = *wrapped.Applications
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, errors.New("not an array")
	}
	if len(raw) > maxApplications {
		return nil, fmt.Errorf("%d applications, at most %d accepted", len(raw), maxApplications)
	}
	names := make([]string, 0, 2*len(applicationFields))
	for _, f := range applicationFields {
		names = append(names, f[0], f[1])
	}
	list := make([]Application, len(raw))
	for i, r := range raw {
		if err := parseApplication(r, &list[i]); err != nil {
			return nil, err
		}
		if err := checkMembers(r, names); err != nil {
			return nil, fmt.Errorf("application %d: %w", i, err)
		}
	}
	return list, nil
}

// ApplicationURL returns the URL of app: its Hostname with the issuer's scheme, as the ones-oidc
// crate builds it ("https://" + hostname for an https issuer). Hostname must be a host name or
// IP address with an optional port, nothing else (no scheme, user info, path, query or
// fragment), else a *ConfigError.
func (c *OpenIDConnectClient) ApplicationURL(app *Application) (string, error) {
	if app == nil {
		return "", &ConfigError{Field: "application", Reason: "nil *Application"}
	}
	iss, err := url.Parse(c.issuer)
	if err != nil {
		return "", &ConfigError{Field: "issuer", Reason: "not a URL", Err: err}
	}
	if err := checkHostname(app.Hostname); err != nil {
		return "", err
	}
	return iss.Scheme + "://" + app.Hostname, nil
}

// checkHostname requires host[:port] of printable ASCII without scheme, user info or path.
func checkHostname(h string) error {
	fail := func(reason string) error {
		return &ConfigError{Field: "hostname", Reason: fmt.Sprintf("%q %s", sanitize(h, 100), reason)}
	}
	if h == "" {
		return fail("is empty: the application has no hostname")
	}
	if len(h) > 261 || strings.ContainsAny(h, "/\\@?#% \t") || !isVSChars(h) {
		return fail("is not a host name with an optional port")
	}
	host := h
	if hh, port, err := net.SplitHostPort(h); err == nil {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fail("has a bad port")
		}
		host = hh
	} else if len(h) > 2 && h[0] == '[' && h[len(h)-1] == ']' {
		host = h[1 : len(h)-1]
		if net.ParseIP(host) == nil {
			return fail("is not an IP address in brackets")
		}
	} else if strings.Contains(h, ":") {
		return fail("is not a host name with an optional port")
	}
	if host == "" || strings.ContainsAny(host, "[]") {
		return fail("is not a host name with an optional port")
	}
	return nil
}

// applicationsCache is a client's cached application list, shared by concurrent callers.
type applicationsCache struct {
	url    string        // WithApplicationsURL
	maxAge time.Duration // WithApplicationsMaxAge
	flight singleflight.Group

	mu      sync.Mutex
	list    []Application
	fetched time.Time
}

// WithApplicationsURL sets the URL of the ONES application list, for providers whose metadata
// does not name one ("ones_applications_uri", which wins when present). It must be https, or
// http on a loopback host. Default: none.
func WithApplicationsURL(u string) Option {
	return func(o *options) {
		if err := checkEndpoint("WithApplicationsURL", u, false); err != nil {
			o.errs = append(o.errs, err)
			return
		}
		o.applicationsURL = u
	}
}

// WithApplicationsMaxAge sets how long the fetched application list is used before it is
// fetched again (default 5 minutes; between 1 s and 24 hours).
func WithApplicationsMaxAge(d time.Duration) Option {
	return func(o *options) {
		if d < time.Second || d > maxApplicationsMaxAge {
			o.fail("WithApplicationsMaxAge", "max age must be between 1s and 24h, got %v", d)
			return
		}
		o.applicationsMaxAge = d
	}
}

// applicationsURL returns where the list lives: the metadata member, else WithApplicationsURL.
func (c *OpenIDConnectClient) applicationsURL() (string, error) {
	if u := c.meta.ApplicationsURI; u != "" {
		if err := checkEndpoint(applicationsURIMetadataKey, u, false); err != nil {
			return "", err
		}
		return u, nil
	}
	if c.apps.url != "" {
		return c.apps.url, nil
	}
	return "", &ConfigError{Field: applicationsURIMetadataKey, Err: ErrNotSupportedByProvider,
		Reason: "the provider metadata does not list " + applicationsURIMetadataKey + "; pass WithApplicationsURL(url of the application list) to NewClient"}
}

// Applications returns the ONES application list (ONES well-known applications), fetched with
// GET from the URL in the provider metadata member "ones_applications_uri", else from
// WithApplicationsURL; with neither, a *ConfigError that wraps ErrNotSupportedByProvider and
// says how to configure it. The request carries no credentials. The list is cached per client for
// WithApplicationsMaxAge (default 5 minutes), fetched by one request for any number of
// concurrent callers; a failed refresh returns the error (a stale list is not served). The
// answer is a JSON array of applications or an object with an "applications" array, at most
// 1 MiB and 10000 entries. The returned slice is the caller's.
func (c *OpenIDConnectClient) Applications(ctx context.Context) ([]Application, error) {
	if list := c.cachedApplications(); list != nil {
		return cloneApplications(list), nil
	}
	u, err := c.applicationsURL()
	if err != nil {
		return nil, err
	}
	ch := c.apps.flight.DoChan("", func() (any, error) {
		// A caller that found the cache empty may arrive here after another fetch has just
		// filled it: that list is fresh, so no second request.
		if list := c.cachedApplications(); list != nil {
			return list, nil
		}
		return c.fetchApplications(context.WithoutCancel(ctx), u)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return cloneApplications(res.Val.([]Application)), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *OpenIDConnectClient) fetchApplications(ctx context.Context, u string) ([]Application, error) {
	resp, err := c.http.exchange(ctx, request{op: "applications", method: "GET", url: u, limit: maxDocumentBody})
	if err != nil {
		return nil, err
	}
	list, err := parseApplications(resp.body)
	if err != nil {
		return nil, resp.invalid("invalid application list", err)
	}
	c.apps.mu.Lock()
	c.apps.list, c.apps.fetched = list, c.now()
	c.apps.mu.Unlock()
	return list, nil
}

// cachedApplications returns the cached list while it is within its max age, else nil.
func (c *OpenIDConnectClient) cachedApplications() []Application {
	c.apps.mu.Lock()
	defer c.apps.mu.Unlock()
	if c.apps.list != nil && c.now().Sub(c.apps.fetched) < c.apps.maxAge {
		return c.apps.list
	}
	return nil
}

func cloneApplications(l []Application) []Application { return append([]Application(nil), l...) }

// ApplicationByClientID returns the application of the list (Applications) whose client
// identifier is clientID, or an error that matches ErrApplicationNotFound.
func (c *OpenIDConnectClient) ApplicationByClientID(ctx context.Context, clientID string) (*Application, error) {
	list, err := c.Applications(ctx)
	if err != nil {
		return nil, err
	}
	for i := range list {
		if clientID != "" && list[i].ClientIdentifier == clientID {
			return &list[i], nil
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrApplicationNotFound, sanitize(clientID, 100))
}
