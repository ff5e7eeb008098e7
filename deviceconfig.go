package onesoidc

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"syscall"

	"gopkg.in/yaml.v3"
)

// defaultDeviceConfigPath is where px-device-identity writes the device configuration. LoadDeviceConfig does not fall back to it: pass it explicitly.
const defaultDeviceConfigPath = "/etc/px-device-identity/device.yml"

// defaultDeviceKeyPath is where px-device-identity writes the device private key for
// key_security "default". LoadPrivateKey does not fall back to it: pass it
// explicitly.
const defaultDeviceKeyPath = "/root/.local/share/px-device-identity/private.pem"

// maxFileSize caps every configuration and key file read.
const maxFileSize = 1 << 20

// DeviceConfig is the device identity written by px-device-identity to device.yml. Keys are
// snake_case; unknown keys are ignored. Build one with ParseDeviceConfig or LoadDeviceConfig, or
// fill it by hand: NewClient and NewClientFromMetadata check it as ParseDeviceConfig does (host
// and client_id required, ids UUIDs, host an absolute http or https URL without user info,
// query, fragment or a trailing "/oidc", a known key_security and key_type).
type DeviceConfig struct {
	// ID is the device UUID ("id").
	ID string `yaml:"id"`
	// ClientID is the OAuth client the device is registered as ("client_id", a UUID). It is
	// empty for unmanaged devices, which cannot authenticate.
	ClientID string `yaml:"client_id"`
	// ConfigVersion is the version of the file format ("config_version"), such as "0.0.3".
	ConfigVersion string `yaml:"config_version"`
	// Domain is the organisation domain ("domain").
	Domain string `yaml:"domain"`
	// Host is the identity provider base URL without "/oidc" ("host"), such as
	// "https://identity.ones-now.com". See IssuerURL.
	Host string `yaml:"host"`
	// InitiatedOn is when the device identity was created ("initiated_on"), as written.
	InitiatedOn string `yaml:"initiated_on"`
	// IsManaged reports whether the device is registered with an identity provider ("is_managed").
	IsManaged bool `yaml:"is_managed"`
	// KeySecurity is where the private key lives ("key_security"): "default" for a PEM file,
	// "tpm" for a TPM2 key used through px-device-identity-service. Compared case-insensitively
	// (px-device-identity writes "DEFAULT" and "TPM").
	KeySecurity string `yaml:"key_security"`
	// KeyType is the key kind ("key_type"): "RSA:2048", "RSA:3072", "ECC:p256", "ECC:p384" or
	// "ECC:p521". See KeyAlgorithm.
	KeyType string `yaml:"key_type"`
	// Location is a free-form device location ("location").
	Location string `yaml:"location"`
	// Role is the device type ("role"), such as "DESKTOP", "SERVER", "CLOUD" or "ENTERPRISE".
	Role string `yaml:"role"`
	// Title is a free-form device name ("title").
	Title string `yaml:"title"`

	// path is the file the configuration was loaded from, for error messages.
	path string
}

// keySecurityDefault and keySecurityTPM are the values of DeviceConfig.KeySecurity defined by
// px-device-identity, compared case-insensitively: a key in a PEM file, or a TPM2
// key used through px-device-identity-service.
const (
	keySecurityDefault = "default"
	keySecurityTPM     = "tpm"
)

// keyTypeAlgs maps each supported key_type to the JWS algorithm (RFC 7518 §3.1) it implies.
var keyTypeAlgs = []struct{ keyType, alg string }{
	{"RSA:2048", "RS256"},
	{"RSA:3072", "RS256"},
	{"ECC:p256", "ES256"},
	{"ECC:p384", "ES384"},
	{"ECC:p521", "ES512"},
}

// camelCaseKeys maps the keys of the old camelCase device.yml schema to their snake_case names.
var camelCaseKeys = map[string]string{
	"clientId":      "client_id",
	"configVersion": "config_version",
	"initiatedOn":   "initiated_on",
	"isManaged":     "is_managed",
	"keySecurity":   "key_security",
	"keyType":       "key_type",
	"deviceType":    "role",
}

// ParseDeviceConfig parses and validates a px-device-identity device.yml. The
// document must be a YAML mapping with snake_case keys; unknown keys are ignored. Errors are
// *ConfigError values naming the field.
func ParseDeviceConfig(data []byte) (*DeviceConfig, error) {
	return parseDeviceConfig(data, "")
}

// LoadDeviceConfig reads, parses and validates the device.yml at path, usually
// /etc/px-device-identity/device.yml. The file must be a regular file of at most 1 MiB. Errors
// are *ConfigError values naming the file and the field; a missing file matches fs.ErrNotExist,
// an unreadable one fs.ErrPermission.
func LoadDeviceConfig(path string) (*DeviceConfig, error) {
	data, _, err := readLimitedFile(path, "device config")
	if err != nil {
		return nil, err
	}
	return parseDeviceConfig(data, path)
}

func parseDeviceConfig(data []byte, path string) (*DeviceConfig, error) {
	cfgErr := func(field, reason string, err error) error {
		return &ConfigError{File: path, Field: field, Reason: reason, Err: err}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, cfgErr("", "device config is empty", nil)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		return nil, cfgErr("", "device config is not valid YAML", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, cfgErr("", "device config must hold a single YAML document", nil)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, cfgErr("", "device config must be a YAML mapping of keys to values, found "+nodeKindName(root), nil)
	}

	cfg := &DeviceConfig{path: path}
	fields := map[string]any{
		"id":             &cfg.ID,
		"client_id":      &cfg.ClientID,
		"config_version": &cfg.ConfigVersion,
		"domain":         &cfg.Domain,
		"host":           &cfg.Host,
		"initiated_on":   &cfg.InitiatedOn,
		"is_managed":     &cfg.IsManaged,
		"key_security":   &cfg.KeySecurity,
		"key_type":       &cfg.KeyType,
		"location":       &cfg.Location,
		"role":           &cfg.Role,
		"title":          &cfg.Title,
	}
	seen := make(map[string]bool, len(root.Content)/2)
	var camel []string
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			continue // not a key of ours
		}
		name := k.Value
		if seen[name] {
			return nil, cfgErr(name, fmt.Sprintf("key appears twice (line %d)", k.Line), nil)
		}
		seen[name] = true
		if _, ok := camelCaseKeys[name]; ok {
			camel = append(camel, name)
			continue
		}
		target, ok := fields[name]
		if !ok {
			continue // unknown keys are ignored
		}
		if v.Kind != yaml.ScalarNode && v.Kind != yaml.AliasNode {
			return nil, cfgErr(name, fmt.Sprintf("must be a %s, found %s (line %d)", fieldKind(target), nodeKindName(v), v.Line), nil)
		}
		if err := v.Decode(target); err != nil {
			return nil, cfgErr(name, fmt.Sprintf("must be a %s (line %d)", fieldKind(target), v.Line), nil)
		}
	}
	for _, old := range camel {
		if snake := camelCaseKeys[old]; !seen[snake] {
			return nil, cfgErr(snake, fmt.Sprintf("file uses the old camelCase schema (key %q); expected the snake_case key %q written by current px-device-identity", old, snake), nil)
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func fieldKind(target any) string {
	if _, ok := target.(*bool); ok {
		return "boolean (true or false)"
	}
	return "string"
}

func nodeKindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return "a scalar value"
	case yaml.AliasNode:
		return "an alias"
	}
	return "no content"
}

// validate checks the configuration as ParseDeviceConfig does:
// host and client_id are required; id (when set) and client_id are UUIDs; host is an
// absolute http or https URL with a host and without user info, query, fragment or a trailing
// "/oidc", which IssuerURL adds (whether
// plain http is acceptable is decided at discovery); key_security, when set, is "default" or
// "tpm"; key_type, when set, is one of the supported types. It returns a *ConfigError naming
// the field, and the file when the configuration was loaded from one.
func (c *DeviceConfig) validate() error {
	if c == nil {
		return &ConfigError{Reason: "nil device config"}
	}
	fail := func(field, reason string) error {
		return &ConfigError{File: c.path, Field: field, Reason: reason}
	}
	if c.Host == "" {
		return fail("host", "missing: the identity provider base URL (such as https://identity.ones-now.com) is required")
	}
	if reason := checkHostURL(c.Host); reason != "" {
		return fail("host", reason)
	}
	if c.ClientID == "" {
		return fail("client_id", "missing: the device is unmanaged (not registered with a client); register it with the identity provider first")
	}
	if !isUUID(c.ClientID) {
		return fail("client_id", "must be a UUID such as d0da9a59-9f59-4f57-b9a9-1eb46bb68239")
	}
	if c.ID != "" && !isUUID(c.ID) {
		return fail("id", "must be a UUID such as b2dfd845-74eb-4674-8545-4da597e487ad")
	}
	if c.KeySecurity != "" && !strings.EqualFold(c.KeySecurity, keySecurityDefault) && !strings.EqualFold(c.KeySecurity, keySecurityTPM) {
		return fail("key_security", fmt.Sprintf("unsupported value %q; expected \"default\" or \"tpm\"", c.KeySecurity))
	}
	if c.KeyType != "" {
		if _, err := c.KeyAlgorithm(); err != nil {
			return err
		}
	}
	return nil
}

// checkHostURL returns why host is not an acceptable identity provider base URL, or "".
func checkHostURL(host string) string {
	if strings.TrimSpace(host) != host {
		return "must not have leading or trailing spaces"
	}
	u, err := url.Parse(host)
	if err != nil {
		return "is not a valid URL"
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "must be an absolute http or https URL, such as https://identity.ones-now.com"
	case u.Host == "" || u.Hostname() == "":
		return "must name a host, such as https://identity.ones-now.com"
	case u.User != nil:
		return "must not contain user info"
	case u.RawQuery != "" || u.ForceQuery:
		return "must not have a query"
	case u.Fragment != "" || strings.Contains(host, "#"):
		return "must not have a fragment"
	case strings.HasSuffix(strings.ToLower(strings.TrimSuffix(u.Path, "/")), "/oidc"):
		trimmed := strings.TrimSuffix(host, "/")
		return fmt.Sprintf("ends in /oidc, which the issuer adds itself (it would become %s/oidc); drop the suffix: host: %s",
			trimmed, trimmed[:len(trimmed)-len("/oidc")])
	}
	return ""
}

// IssuerURL returns the OpenID Provider issuer of the device: Host with one trailing "/"
// removed, followed by "/oidc". It does not check Host; NewClient does.
func (c *DeviceConfig) IssuerURL() string {
	return strings.TrimSuffix(c.Host, "/") + "/oidc"
}

// checkKey refuses a key that disagrees with KeyType, naming both: the RSA modulus
// size or the curve when the signer exposes its public key (a *DeviceKey does, a *RemoteSigner
// when it was given one), else the algorithm family. An empty KeyType checks nothing.
func (c *DeviceConfig) checkKey(signer Signer) error {
	if c.KeyType == "" {
		return nil
	}
	fail := func(has string) error {
		return &ConfigError{File: c.path, Field: "key_type", Reason: fmt.Sprintf(
			"key_type %q does not match the device key (%s); fix key_type or use the device's own key", c.KeyType, has)}
	}
	want := strings.ToUpper(c.KeyType)
	var pub crypto.PublicKey
	if p, ok := signer.(interface{ Public() crypto.PublicKey }); ok {
		pub = p.Public()
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if has := fmt.Sprintf("RSA:%d", k.N.BitLen()); want != has {
			return fail(fmt.Sprintf("RSA of %d bits", k.N.BitLen()))
		}
		return nil
	case *ecdsa.PublicKey:
		if k.Curve == nil || k.Curve.Params() == nil {
			return fail("EC on an unknown curve")
		}
		name := k.Curve.Params().Name // P-256 ...
		if has := "ECC:P" + strings.TrimPrefix(name, "P-"); want != has {
			return fail("EC " + name)
		}
		return nil
	case ed25519.PublicKey:
		return fail("Ed25519")
	}
	alg, err := c.KeyAlgorithm()
	if err != nil {
		return err
	}
	has := signer.Algorithm()
	if has == "PS256" {
		has = "RS256" // the same RSA key
	}
	if has != alg {
		return fail("it signs " + signer.Algorithm())
	}
	return nil
}

// KeyAlgorithm returns the JWS algorithm (RFC 7518 §3.1) implied by KeyType: "RS256" for
// "RSA:2048" and "RSA:3072", "ES256" for "ECC:p256", "ES384" for "ECC:p384" and "ES512" for
// "ECC:p521" (compared case-insensitively). It returns a *ConfigError when KeyType is empty or
// unknown. The algorithm a loaded key actually signs with is DeviceKey.Algorithm.
func (c *DeviceConfig) KeyAlgorithm() (string, error) {
	if c.KeyType == "" {
		return "", &ConfigError{File: c.path, Field: "key_type", Reason: "missing"}
	}
	for _, kt := range keyTypeAlgs {
		if strings.EqualFold(c.KeyType, kt.keyType) {
			return kt.alg, nil
		}
	}
	return "", &ConfigError{File: c.path, Field: "key_type",
		Reason: fmt.Sprintf("unsupported value %q; expected RSA:2048, RSA:3072, ECC:p256, ECC:p384 or ECC:p521", c.KeyType)}
}

// isUUID reports whether s has the textual UUID form of RFC 9562 §4
// (8-4-4-4-12 hexadecimal digits, either case).
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// readLimitedFile reads a regular file of at most maxFileSize bytes. It opens without blocking
// so a FIFO cannot hang, and refuses anything that is not a regular file (directories, pipes,
// devices such as /dev/zero). what names the file's role in errors.
func readLimitedFile(path, what string) ([]byte, fs.FileInfo, error) {
	fail := func(reason string, err error) error {
		return &ConfigError{File: path, Reason: reason, Err: err}
	}
	if path == "" {
		return nil, nil, &ConfigError{Reason: "no " + what + " path given"}
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is already in the ConfigError
		}
		switch {
		case errors.Is(err, fs.ErrNotExist): // "file does not exist"; errors.Is holds
			return nil, nil, fail("cannot open "+what, fs.ErrNotExist)
		case errors.Is(err, fs.ErrPermission): // "permission denied"
			return nil, nil, fail("cannot open "+what, fs.ErrPermission)
		}
		return nil, nil, fail("cannot open "+what, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fail("cannot stat "+what, err)
	}
	mode := fi.Mode()
	if !mode.IsRegular() {
		return nil, nil, fail(what+" is not a regular file ("+fileKind(mode)+")", nil)
	}
	if fi.Size() > maxFileSize {
		return nil, nil, fail(fmt.Sprintf("%s is larger than the %d byte limit", what, maxFileSize), nil)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, nil, fail("cannot read "+what, err)
	}
	if len(data) > maxFileSize {
		return nil, nil, fail(fmt.Sprintf("%s is larger than the %d byte limit", what, maxFileSize), nil)
	}
	return data, fi, nil
}

func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0, m&fs.ModeCharDevice != 0:
		return "a device"
	}
	return "mode " + m.String()
}
