package onesoidc

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ones-now/onesoidc/onesoidctest"
)

func deviceFile(name string) string { return filepath.Join("testdata", "device", name) }

func TestLoadDeviceConfig(t *testing.T) {
	t.Parallel()
	want := DeviceConfig{
		ID:            "3f9a6c21-8d4e-4b7f-a2c5-6e1d0b9f4a87",
		ClientID:      "7c3e1f52-2b7a-4d8e-9a61-0f4b2c9d8e13",
		ConfigVersion: "1.0",
		Domain:        "ones-now.com",
		Host:          "https://identity.ones-now.com",
		InitiatedOn:   "2024-11-05 09:14:27.381204",
		IsManaged:     true,
		KeySecurity:   "default",
		KeyType:       "RSA:2048",
		Location:      "Berlin office",
		Role:          "DESKTOP",
		Title:         "Reception PC",
	}
	tests := []struct {
		name   string
		file   string
		edit   func(*DeviceConfig)
		issuer string
		alg    string
	}{
		{name: "valid", file: "valid.yml", issuer: "https://identity.ones-now.com/oidc", alg: "RS256"},
		{name: "trailing slash", file: "valid-trailing-slash.yml", issuer: "https://identity.ones-now.com/oidc", alg: "RS256",
			edit: func(c *DeviceConfig) { c.Host += "/" }},
		{name: "tpm", file: "tpm.yml", issuer: "https://identity.ones-now.com/oidc", alg: "ES256",
			edit: func(c *DeviceConfig) { c.KeySecurity, c.KeyType = "TPM", "ECC:p256" }},
		{name: "unknown keys ignored", file: "unknown-keys.yml", issuer: "https://identity.ones-now.com/oidc", alg: "RS256"},
		{name: "http host allowed", file: "http-host.yml", issuer: "http://idp.lan:8080/oidc", alg: "RS256",
			edit: func(c *DeviceConfig) { c.Host = "http://idp.lan:8080" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := deviceFile(tt.file)
			cfg, err := LoadDeviceConfig(path)
			if err != nil {
				t.Fatalf("LoadDeviceConfig: %v", err)
			}
			w := want
			w.path = path
			if tt.edit != nil {
				tt.edit(&w)
			}
			if *cfg != w {
				t.Errorf("config = %+v, want %+v", *cfg, w)
			}
			if got := cfg.IssuerURL(); got != tt.issuer {
				t.Errorf("IssuerURL = %q, want %q", got, tt.issuer)
			}
			alg, err := cfg.KeyAlgorithm()
			if err != nil || alg != tt.alg {
				t.Errorf("KeyAlgorithm = %q, %v; want %q", alg, err, tt.alg)
			}
			// The same bytes parse to the same config, without a file name.
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := ParseDeviceConfig(data)
			if err != nil {
				t.Fatalf("ParseDeviceConfig: %v", err)
			}
			w.path = ""
			if *parsed != w {
				t.Errorf("parsed = %+v, want %+v", *parsed, w)
			}
		})
	}
}

// TestKF10DeviceConfigRefused covers device.yml files that must be refused (SECURITY-CASES KF-10,
// DESIGN §4.1): each error is a *ConfigError naming the file and the field.
func TestKF10DeviceConfigRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		file   string
		field  string
		phrase string
	}{
		{"unmanaged", "unmanaged.yml", "client_id", "device is unmanaged"},
		{"no host", "no-host.yml", "host", "missing"},
		{"bad uuid", "bad-uuid.yml", "client_id", "must be a UUID"},
		{"camelCase schema", "camelcase.yml", "client_id", `old camelCase schema (key "clientId"); expected the snake_case key "client_id"`},
		{"list", "list.yml", "", "must be a YAML mapping of keys to values, found a list"},
		{"scalar", "scalar.yml", "", "must be a YAML mapping of keys to values, found a scalar value"},
		{"bad key type", "bad-key-type.yml", "key_type", `unsupported value "RSA:1024"`},
		{"query host", "query-host.yml", "host", "must not have a query"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := deviceFile(tt.file)
			_, err := LoadDeviceConfig(path)
			ce := wantConfigError(t, err, tt.phrase)
			if ce.File != path || ce.Field != tt.field {
				t.Errorf("File, Field = %q, %q; want %q, %q", ce.File, ce.Field, path, tt.field)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestParseDeviceConfigInvalid(t *testing.T) {
	t.Parallel()
	const base = "client_id: 7c3e1f52-2b7a-4d8e-9a61-0f4b2c9d8e13\nhost: https://identity.ones-now.com\n"
	tests := []struct {
		name   string
		yaml   string
		field  string
		phrase string
	}{
		{"empty", "", "", "device config is empty"},
		{"whitespace", " \n\t\n", "", "device config is empty"},
		{"null document", "~\n", "", "found null"},
		{"not yaml", "host: [unclosed\n", "", "not valid YAML"},
		{"two documents", base + "---\n" + base, "", "single YAML document"},
		{"duplicate key", base + "host: https://evil.example\n", "host", "key appears twice"},
		{"bad id", base + "id: device-1\n", "id", "must be a UUID"},
		{"id with braces", base + "id: '{3f9a6c21-8d4e-4b7f-a2c5-6e1d0b9f4a87}'\n", "id", "must be a UUID"},
		{"empty client_id", "client_id: ''\nhost: https://identity.ones-now.com\n", "client_id", "device is unmanaged"},
		{"null client_id", "client_id:\nhost: https://identity.ones-now.com\n", "client_id", "device is unmanaged"},
		{"client_id list", "client_id: [a, b]\nhost: https://identity.ones-now.com\n", "client_id", "must be a string, found a list"},
		{"is_managed string", base + "is_managed: maybe\n", "is_managed", "must be a boolean"},
		{"key_security", base + "key_security: hsm\n", "key_security", `unsupported value "hsm"`},
		{"key_type", base + "key_type: ECC:p224\n", "key_type", `unsupported value "ECC:p224"`},
		{"relative host", strings.Replace(base, "https://identity.ones-now.com", "identity.ones-now.com", 1), "host", "absolute http or https URL"},
		{"ftp host", strings.Replace(base, "https://", "ftp://", 1), "host", "absolute http or https URL"},
		{"no host name", strings.Replace(base, "https://identity.ones-now.com", "https:///oidc", 1), "host", "must name a host"},
		{"fragment", strings.Replace(base, "ones-now.com", "ones-now.com/#x", 1), "host", "must not have a fragment"},
		{"empty query", strings.Replace(base, "ones-now.com", "ones-now.com/?", 1), "host", "must not have a query"},
		{"user info", strings.Replace(base, "https://", "https://user:pw@", 1), "host", "must not contain user info"},
		{"spaces", strings.Replace(base, "https://identity.ones-now.com", "' https://identity.ones-now.com'", 1), "host", "spaces"},
		{"camelCase keyType", base + "keyType: RSA:2048\n", "key_type", "old camelCase schema"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseDeviceConfig([]byte(tt.yaml))
			ce := wantConfigError(t, err, tt.phrase)
			if ce.File != "" || ce.Field != tt.field {
				t.Errorf("File, Field = %q, %q; want \"\", %q", ce.File, ce.Field, tt.field)
			}
		})
	}
}

func TestParseDeviceConfigLenient(t *testing.T) {
	t.Parallel()
	const base = "client_id: 7C3E1F52-2B7A-4D8E-9A61-0F4B2C9D8E13\nhost: https://identity.ones-now.com\n"
	tests := []struct {
		name  string
		yaml  string
		check func(*DeviceConfig) bool
	}{
		{"minimal", base, func(c *DeviceConfig) bool { return c.ID == "" && !c.IsManaged }},
		{"unquoted version", base + "config_version: 0.0.3\n", func(c *DeviceConfig) bool { return c.ConfigVersion == "0.0.3" }},
		{"unquoted float version", base + "config_version: 1.0\n", func(c *DeviceConfig) bool { return c.ConfigVersion == "1.0" }},
		{"unquoted timestamp", base + "initiated_on: 2021-03-06T21:31:14Z\n", func(c *DeviceConfig) bool { return c.InitiatedOn == "2021-03-06T21:31:14Z" }},
		{"upper-case key security", base + "key_security: DEFAULT\nkey_type: ecc:P384\n", func(c *DeviceConfig) bool {
			alg, err := c.KeyAlgorithm()
			return c.KeySecurity == "DEFAULT" && alg == "ES384" && err == nil
		}},
		{"camelCase key next to snake_case is ignored", base + "clientId: whatever\n", func(c *DeviceConfig) bool { return c.ClientID != "whatever" }},
		{"non-string keys ignored", base + "1: one\n? [a]\n: b\n", func(c *DeviceConfig) bool { return true }},
		{"document marker", "---\n" + base, func(c *DeviceConfig) bool { return c.Host == "https://identity.ones-now.com" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := ParseDeviceConfig([]byte(tt.yaml))
			if err != nil {
				t.Fatalf("ParseDeviceConfig: %v", err)
			}
			if !tt.check(cfg) {
				t.Errorf("unexpected config %+v", *cfg)
			}
		})
	}
}

func TestDeviceConfigIssuerURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ host, want string }{
		{"https://identity.ones-now.com", "https://identity.ones-now.com/oidc"},
		{"https://identity.ones-now.com/", "https://identity.ones-now.com/oidc"},
		{"https://identity.ones-now.com//", "https://identity.ones-now.com//oidc"},
		{"https://ones-now.com/idp", "https://ones-now.com/idp/oidc"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			t.Parallel()
			c := &DeviceConfig{Host: tt.host}
			if got := c.IssuerURL(); got != tt.want {
				t.Errorf("IssuerURL = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDeviceConfigKeyAlgorithm(t *testing.T) {
	t.Parallel()
	tests := []struct{ keyType, alg, phrase string }{
		{"RSA:2048", "RS256", ""},
		{"RSA:3072", "RS256", ""},
		{"ECC:p256", "ES256", ""},
		{"ECC:p384", "ES384", ""},
		{"ECC:p521", "ES512", ""},
		{"", "", "missing"},
		{"RSA:4096", "", "unsupported value"},
		{"Ed25519", "", "unsupported value"},
	}
	for _, tt := range tests {
		t.Run(tt.keyType, func(t *testing.T) {
			t.Parallel()
			alg, err := (&DeviceConfig{KeyType: tt.keyType}).KeyAlgorithm()
			if tt.phrase == "" {
				if err != nil || alg != tt.alg {
					t.Errorf("KeyAlgorithm = %q, %v; want %q", alg, err, tt.alg)
				}
				return
			}
			if ce := wantConfigError(t, err, tt.phrase); ce.Field != "key_type" {
				t.Errorf("Field = %q, want key_type", ce.Field)
			}
		})
	}
}

func TestDeviceConfigValidateByHand(t *testing.T) {
	t.Parallel()
	c := &DeviceConfig{ClientID: "7c3e1f52-2b7a-4d8e-9a61-0f4b2c9d8e13", Host: "https://identity.ones-now.com"}
	if err := c.validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	c.ClientID = "not-a-uuid"
	wantConfigError(t, c.validate(), "must be a UUID")
	var nilCfg *DeviceConfig
	wantConfigError(t, nilCfg.validate(), "nil device config")
}

// TestKF08UnreadableFiles covers paths that are not readable device configs or key files
// (SECURITY-CASES KF-08): both loaders read through readLimitedFile.
func TestKF08UnreadableFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	fifoErr := mkfifo(fifo)
	big := filepath.Join(dir, "big")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 30); err != nil { // sparse 1 GiB
		t.Fatal(err)
	}
	f.Close()
	justOver := filepath.Join(dir, "over")
	if err := os.WriteFile(justOver, bytes.Repeat([]byte(" "), maxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	loaders := map[string]struct {
		load  func(string) error
		empty string
	}{
		"device config": {func(p string) error { _, err := LoadDeviceConfig(p); return err }, "no device config path given"},
		"private key":   {func(p string) error { _, err := LoadPrivateKey(p); return err }, "no private key file path given"},
	}
	tests := []struct{ name, path, phrase string }{
		{"missing", filepath.Join(dir, "missing"), "file does not exist"},
		{"directory", dir, "not a regular file (a directory)"},
		{"fifo", fifo, "not a regular file (a named pipe)"},
		{"dev zero", "/dev/zero", "not a regular file (a device)"},
		{"1 GiB", big, "larger than the 1048576 byte limit"},
		{"1 MiB + 1", justOver, "larger than the 1048576 byte limit"},
		{"empty path", "", ""},
	}
	for what, l := range loaders {
		for _, tt := range tests {
			t.Run(what+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				if tt.path == fifo && fifoErr != nil {
					t.Skipf("cannot make a FIFO: %v", fifoErr)
				}
				if tt.path == "/dev/zero" && runtime.GOOS == "windows" {
					t.Skip("no /dev/zero")
				}
				phrase := tt.phrase
				if phrase == "" {
					phrase = l.empty
				}
				ce := wantConfigError(t, l.load(tt.path), phrase)
				if ce.File != tt.path {
					t.Errorf("File = %q, want %q", ce.File, tt.path)
				}
			})
		}
	}
}

func FuzzParseDeviceConfig(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "device", "*.yml"))
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseDeviceConfig(data)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error is %T, not *ConfigError: %v", err, err)
			}
			return
		}
		if err := cfg.validate(); err != nil {
			t.Fatalf("parsed config does not validate: %v", err)
		}
	})
}

// wantConfigError fails the test unless err is a *ConfigError whose message contains phrase.
func wantConfigError(t *testing.T, err error, phrase string) *ConfigError {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", phrase)
	}
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("error %q is %T, not a *ConfigError", err, err)
	}
	if !strings.Contains(err.Error(), phrase) {
		t.Fatalf("error %q does not contain %q", err, phrase)
	}
	if !strings.HasPrefix(err.Error(), "onesoidc: ") {
		t.Errorf("error %q lacks the onesoidc: prefix", err)
	}
	return ce
}

// TestDeviceConfigHostEndingInOIDCRefused: a host that already ends in /oidc (with or without a
// trailing slash, any case) is refused at load with the fix, instead of a later 404 at
// …/oidc/oidc.
func TestDeviceConfigHostEndingInOIDCRefused(t *testing.T) {
	t.Parallel()
	base := "client_id: 7c3e1f52-2b7a-4d8e-9a61-0f4b2c9d8e13\n"
	for _, host := range []string{"https://identity.ones-now.com/oidc", "https://identity.ones-now.com/oidc/", "https://idp.example/tenant/OIDC"} {
		t.Run(host, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "device.yml")
			if err := os.WriteFile(path, []byte(base+"host: "+host+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadDeviceConfig(path)
			ce := wantConfigError(t, err, "drop the suffix")
			trimmed := strings.TrimSuffix(host, "/")
			want := trimmed[:strings.LastIndex(trimmed, "/")]
			if ce.Field != "host" || ce.File != path || !strings.Contains(err.Error(), "host: "+want) {
				t.Errorf("error %q (field %q), want the host field and the fixed value %q", err, ce.Field, want)
			}
		})
	}
	for _, ok := range []string{"https://idp.example/oidc-tenant", "https://idp.example/myoidc", "https://oidc.example"} {
		if err := (&DeviceConfig{ClientID: "7c3e1f52-2b7a-4d8e-9a61-0f4b2c9d8e13", Host: ok}).validate(); err != nil {
			t.Errorf("host %s: %v", ok, err)
		}
	}
}

// TestDeviceConfigKeyTypeMustMatchKey: a key_type that disagrees with the key given to
// NewClientFromMetadata is refused, naming both.
func TestDeviceConfigKeyTypeMustMatchKey(t *testing.T) {
	t.Parallel()
	rsa3072, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		t.Fatal(err)
	}
	k3072, err := NewDeviceKey(rsa3072)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]*DeviceKey{
		"RSA 2048": testKey(t, "RS256"), "RSA 2048 PSS": testKey(t, "PS256"), "RSA 3072": k3072,
		"P-256": testKey(t, "ES256"), "P-384": testKey(t, "ES384"), "P-521": testKey(t, "ES512"), "Ed25519": testKey(t, "EdDSA"),
	}
	cases := []struct {
		keyType, key string
		phrase       string // "" when accepted
	}{
		{"RSA:2048", "RSA 2048", ""},
		{"RSA:2048", "RSA 2048 PSS", ""},
		{"RSA:3072", "RSA 3072", ""},
		{"ECC:p256", "P-256", ""},
		{"ecc:P384", "P-384", ""},
		{"ECC:p521", "P-521", ""},
		{"RSA:2048", "P-256", `key_type "RSA:2048" does not match the device key (EC P-256)`},
		{"RSA:2048", "RSA 3072", `key_type "RSA:2048" does not match the device key (RSA of 3072 bits)`},
		{"RSA:3072", "RSA 2048", "RSA of 2048 bits"},
		{"ECC:p256", "P-384", `key_type "ECC:p256" does not match the device key (EC P-384)`},
		{"ECC:p384", "RSA 2048", "RSA of 2048 bits"},
		{"ECC:p256", "Ed25519", "Ed25519"},
	}
	idp := onesoidctest.NewInMemory()
	meta, err := Discover(t.Context(), idp.Issuer, WithHTTPClient(idp.HTTPClient()))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		cfg := testConfig(idp)
		cfg.KeyType = tc.keyType
		_, err := NewClientFromMetadata(cfg, keys[tc.key], meta)
		if tc.phrase == "" {
			if err != nil {
				t.Errorf("%s with %s: %v", tc.keyType, tc.key, err)
			}
			continue
		}
		if ce := wantConfigError(t, err, tc.phrase); ce.Field != "key_type" {
			t.Errorf("%s with %s: field %q", tc.keyType, tc.key, ce.Field)
		}
	}
	// A remote signer without a public key is checked by its algorithm.
	rs, err := NewRemoteSigner(testDeviceID, "ES256")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(idp)
	cfg.KeyType = "RSA:2048"
	_, err = NewClientFromMetadata(cfg, rs, meta)
	wantConfigError(t, err, `key_type "RSA:2048" does not match the device key (it signs ES256)`)
}
