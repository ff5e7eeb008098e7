package onesoidc

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	gojose "github.com/go-jose/go-jose/v4"
)

// keyField is the ConfigError.Field of key loading errors.
const keyField = "private key"

// minRSABits is the smallest RSA modulus accepted (RFC 7518 §3.3 requires 2048).
const minRSABits = 2048

// expectedKeyTypes lists the accepted PEM types for error messages.
const expectedKeyTypes = `expected an unencrypted PEM "PRIVATE KEY" (PKCS#8), "RSA PRIVATE KEY" (PKCS#1) or "EC PRIVATE KEY" (SEC1) block`

// keyOptions are the settings of NewDeviceKey, ParsePrivateKey and LoadPrivateKey, set by the
// key options (WithRSAPSS, WithKeyID, WithInsecureKeyFilePermissions, WithRegisteredJWK) and
// WithLogger.
type keyOptions struct {
	pss           bool
	kid           string
	kidSet        bool
	insecurePerms bool
	logger        *slog.Logger
	euid          func() int // os.Geteuid; tests replace it

	registeredPath string // WithRegisteredJWK
	registeredSet  bool
}

// newKeyOptions applies opts and returns the key settings: options that do not concern keys
// are checked but have no effect here.
func newKeyOptions(opts []Option) (*keyOptions, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	k := o.key
	k.logger = o.logger
	return &k, nil
}

// WithRSAPSS makes RSA keys sign with PS256 (RSASSA-PSS with SHA-256, RFC 7518 §3.5) instead of
// the default RS256 (RFC 7518 §3.3). Using it with a non-RSA key is an error.
func WithRSAPSS() Option {
	return func(o *options) { o.key.pss = true }
}

// WithKeyID sets the JWS "kid" the key announces (RFC 7515 §4.1.4), overriding the registered
// JWK (WithRegisteredJWK). The default is the "kid" of the registered JWK, else the "kid" member
// of a private JWK, else none: a provider that finds no "kid" in the header tries every key
// registered for the client that fits "alg" (oidc-provider does), while a "kid" the
// registration lacks fails. An empty kid announces none.
func WithKeyID(kid string) Option {
	return func(o *options) { o.key.kid, o.key.kidSet = kid, true }
}

// WithInsecureKeyFilePermissions makes LoadPrivateKey accept a key file it refuses by default: one
// that group or others may access (mode & 0o077 != 0), owned by another user than the process's
// effective user (root excepted), or in a directory others may write to (as OpenSSH refuses an
// unprotected private key file). Each such finding is logged as a warning to the logger of
// WithLogger (by default nowhere). Use it only where the file system is protected otherwise, as
// in some containers.
func WithInsecureKeyFilePermissions() Option {
	return func(o *options) { o.key.insecurePerms = true }
}

// NewDeviceKey wraps an in-memory key or any other crypto.Signer (HSM, TPM) as a *DeviceKey.
// The JWS algorithm follows from key.Public() (RFC 7518 §3.1, RFC 8037 §3.1): RSA of at least
// 2048 bits signs RS256 (PS256 with WithRSAPSS), ECDSA P-256 ES256, P-384 ES384, P-521 ES512,
// and Ed25519 EdDSA. Smaller RSA keys, other curves and other key types are refused with a
// *ConfigError. The key announces no key id unless WithKeyID or
// WithRegisteredJWK gives one.
func NewDeviceKey(key crypto.Signer, opts ...Option) (*DeviceKey, error) {
	o, err := newKeyOptions(opts)
	if err != nil {
		return nil, err
	}
	return newDeviceKey(key, "", o)
}

func keyErr(reason string, err error) *ConfigError {
	return &ConfigError{Field: keyField, Reason: reason, Err: err}
}

// newDeviceKey builds the DeviceKey; jwkKID is the "kid" of a private JWK, if any.
func newDeviceKey(key crypto.Signer, jwkKID string, o *keyOptions) (*DeviceKey, error) {
	switch k := key.(type) {
	case nil:
		return nil, keyErr("no key given", nil)
	case *rsa.PrivateKey:
		if k == nil {
			return nil, keyErr("no key given", nil)
		}
	case *ecdsa.PrivateKey:
		if k == nil {
			return nil, keyErr("no key given", nil)
		}
	}
	if ek, ok := key.(ed25519.PrivateKey); ok {
		// Behind a pointer, so that not even fmt's %p of a DeviceKey value, the one verb that
		// bypasses its Format method, can print the key bytes.
		key = &ek
	}
	dk := &DeviceKey{signer: key}
	switch pub := key.Public().(type) {
	case *rsa.PublicKey:
		if pub == nil || pub.N == nil {
			return nil, keyErr("RSA key has no modulus", nil)
		}
		if bits := pub.N.BitLen(); bits < minRSABits {
			return nil, keyErr(fmt.Sprintf("RSA key is %d bits; at least %d bits are required (RFC 7518 §3.3)", bits, minRSABits), nil)
		}
		dk.alg, dk.hash, dk.pss = "RS256", crypto.SHA256, o.pss
		if o.pss {
			dk.alg = "PS256"
		}
	case *ecdsa.PublicKey:
		if pub == nil || pub.Curve == nil {
			return nil, keyErr("ECDSA key has no curve", nil)
		}
		switch pub.Curve {
		case elliptic.P256():
			dk.alg, dk.hash, dk.size = "ES256", crypto.SHA256, 32
		case elliptic.P384():
			dk.alg, dk.hash, dk.size = "ES384", crypto.SHA384, 48
		case elliptic.P521():
			dk.alg, dk.hash, dk.size = "ES512", crypto.SHA512, 66
		default:
			name := "unknown"
			if p := pub.Curve.Params(); p != nil && p.Name != "" {
				name = p.Name
			}
			return nil, keyErr(fmt.Sprintf("unsupported elliptic curve %s; expected P-256, P-384 or P-521 (RFC 7518 §3.4)", name), nil)
		}
	case ed25519.PublicKey:
		if len(pub) != ed25519.PublicKeySize {
			return nil, keyErr("Ed25519 public key has the wrong size", nil)
		}
		dk.alg = "EdDSA"
	default:
		return nil, keyErr(fmt.Sprintf("unsupported key type %T; expected RSA (2048 bits or more), ECDSA P-256/P-384/P-521 or Ed25519", pub), nil)
	}
	if o.pss && !dk.pss {
		return nil, keyErr(fmt.Sprintf("PS256 was requested with WithRSAPSS but the key is not RSA (it signs %s)", dk.alg), nil)
	}
	dk.kid = jwkKID
	if o.kidSet {
		dk.kid = o.kid
	}
	if o.registeredSet && o.registeredPath != "" {
		reg, err := loadRegisteredJWK(o.registeredPath)
		if err != nil {
			return nil, err
		}
		if err := dk.applyRegistered(reg, o, o.registeredPath); err != nil {
			return nil, err
		}
	}
	return dk, nil
}

// ParsePrivateKey parses a device private key:
// one PEM "PRIVATE KEY" (PKCS#8, RFC 5208: RSA, ECDSA or Ed25519), "RSA PRIVATE KEY" (PKCS#1,
// RFC 8017) or "EC PRIVATE KEY" (SEC1, RFC 5915; a preceding "EC PARAMETERS" block is skipped)
// block, or a private JWK (RFC 7517 §4 with "d") when the input starts with "{". CRLF line
// endings and surrounding whitespace are accepted, and so is explanatory text before a block
// (RFC 7468 §2); certificates next to the key are ignored. Encrypted keys, public keys,
// certificates alone, OpenSSH and OpenPGP keys, more than one private key, malformed blocks and
// data after the last END line are refused with a *ConfigError, which never holds key material.
// The resulting key is checked as by NewDeviceKey; its key id is the WithKeyID value, else the
// "kid" of the registered JWK (WithRegisteredJWK), else the JWK "kid" member, else none.
func ParsePrivateKey(pemBytes []byte, opts ...Option) (*DeviceKey, error) {
	o, err := newKeyOptions(opts)
	if err != nil {
		return nil, err
	}
	return parsePrivateKey(pemBytes, o)
}

func parsePrivateKey(data []byte, o *keyOptions) (*DeviceKey, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, keyErr("empty input: no private key found; "+expectedKeyTypes, nil)
	}
	if trimmed[0] == '{' {
		return parsePrivateJWK(trimmed, o)
	}

	data = trimmed // leading spaces before the first BEGIN line would hide it from pem.Decode
	labels := pemLabels(data)
	if len(labels) == 0 {
		return nil, keyErr("no PEM block found (raw DER or not a key file?); "+expectedKeyTypes, nil)
	}
	for _, l := range labels {
		switch {
		case l == "ENCRYPTED PRIVATE KEY":
			return nil, keyErr(`encrypted private keys are not supported (found "ENCRYPTED PRIVATE KEY"); decrypt it first, for example with "openssl pkey -in key.pem -out plain.pem", and protect the file with mode 0600`, nil)
		case strings.HasPrefix(l, "PGP "):
			return nil, keyErr(fmt.Sprintf("OpenPGP blocks are not supported (found %q); %s", l, expectedKeyTypes), nil)
		}
	}

	var blocks []*pem.Block
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		blocks = append(blocks, b)
	}
	defer func() {
		for _, b := range blocks {
			clear(b.Bytes)
		}
	}()
	if len(blocks) != len(labels) {
		return nil, keyErr("malformed PEM block (truncated or invalid base64, bad headers or missing END line)", nil)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, keyErr("unexpected data after the last PEM END line", nil)
	}

	var keyBlocks []*pem.Block
	var found []string
	for _, b := range blocks {
		if _, ok := b.Headers["Proc-Type"]; ok || b.Headers["DEK-Info"] != "" {
			return nil, keyErr(fmt.Sprintf("encrypted private keys are not supported (%q block with legacy Proc-Type/DEK-Info encryption); decrypt it first and protect the file with mode 0600", b.Type), nil)
		}
		switch {
		case b.Type == "CERTIFICATE" || b.Type == "TRUSTED CERTIFICATE" || b.Type == "EC PARAMETERS":
			// Ignored: certificates of a bundle, and the curve parameters openssl writes
			// before an EC key.
		case strings.HasSuffix(b.Type, "PRIVATE KEY"):
			keyBlocks = append(keyBlocks, b)
		default:
			found = append(found, b.Type)
		}
	}
	switch len(keyBlocks) {
	case 0:
		for _, b := range blocks {
			if b.Type == "CERTIFICATE" || b.Type == "TRUSTED CERTIFICATE" {
				found = append(found, b.Type)
			}
		}
		return nil, keyErr(fmt.Sprintf("no private key found (found %s); %s", quoteList(found), expectedKeyTypes), nil)
	case 1:
	default:
		return nil, keyErr(fmt.Sprintf("found %d private key blocks; the file must hold exactly one private key", len(keyBlocks)), nil)
	}

	b := keyBlocks[0]
	var signer crypto.Signer
	switch b.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(b.Bytes)
		if err != nil {
			return nil, keyErr(`invalid PKCS#1 "RSA PRIVATE KEY"`, err)
		}
		signer = k
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(b.Bytes)
		if err != nil {
			return nil, keyErr(`invalid or unsupported SEC1 "EC PRIVATE KEY" (supported curves: P-256, P-384, P-521)`, err)
		}
		signer = k
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		if err != nil {
			return nil, keyErr(`invalid or unsupported PKCS#8 "PRIVATE KEY"`, err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, keyErr(fmt.Sprintf("unsupported PKCS#8 key type %T; expected RSA, ECDSA or Ed25519", k), nil)
		}
		signer = s
	case "OPENSSH PRIVATE KEY":
		return nil, keyErr(`OpenSSH private keys are not supported (found "OPENSSH PRIVATE KEY"); convert it with "ssh-keygen -p -m PKCS8 -f key"; `+expectedKeyTypes, nil)
	default:
		return nil, keyErr(fmt.Sprintf("unsupported private key type %q; %s", b.Type, expectedKeyTypes), nil)
	}
	return newDeviceKey(signer, "", o)
}

// pemLabels returns the label of every PEM BEGIN line at the start of a line, as pem.Decode
// finds them.
func pemLabels(data []byte) []string {
	const begin = "-----BEGIN "
	var labels []string
	for i := 0; i < len(data); {
		j := bytes.Index(data[i:], []byte(begin))
		if j < 0 {
			break
		}
		j += i
		i = j + len(begin)
		if j > 0 && data[j-1] != '\n' {
			continue
		}
		line := data[i:]
		if k := bytes.IndexByte(line, '\n'); k >= 0 {
			line = line[:k]
		}
		label, _, _ := bytes.Cut(line, []byte("-----"))
		labels = append(labels, string(label))
	}
	return labels
}

func quoteList(items []string) string {
	if len(items) == 0 {
		return "nothing"
	}
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// parsePrivateJWK parses a private JWK (RFC 7517 §4, RFC 7518 §6, RFC 8037 §2) and checks that
// its private and public parts belong together.
func parsePrivateJWK(data []byte, o *keyOptions) (*DeviceKey, error) {
	if !json.Valid(data) {
		return nil, keyErr("input starts with \"{\" but is not valid JSON; expected a private JWK or "+expectedKeyTypes, nil)
	}
	var jwk gojose.JSONWebKey
	if err := jwk.UnmarshalJSON(data); err != nil {
		return nil, keyErr("invalid or unsupported JWK", errors.New(sanitizeJOSEError(err)))
	}
	if jwk.IsPublic() {
		return nil, keyErr(`JWK is a public key (no "d" member); a private JWK is required`, nil)
	}
	var signer crypto.Signer
	switch k := jwk.Key.(type) {
	case *rsa.PrivateKey:
		if err := k.Validate(); err != nil {
			return nil, keyErr("RSA JWK is inconsistent", nil)
		}
		signer = k
	case *ecdsa.PrivateKey:
		priv, err := k.ECDH()
		if err != nil {
			return nil, keyErr("ECDSA JWK has an invalid private key", nil)
		}
		pub, err := k.PublicKey.ECDH()
		if err != nil || !priv.PublicKey().Equal(pub) {
			return nil, keyErr(`ECDSA JWK private key "d" does not match its public key`, nil)
		}
		signer = k
	case ed25519.PrivateKey:
		if len(k) != ed25519.PrivateKeySize || !ed25519.NewKeyFromSeed(k.Seed()).Equal(k) {
			return nil, keyErr(`Ed25519 JWK private key "d" does not match its public key "x"`, nil)
		}
		signer = k
	default:
		return nil, keyErr(fmt.Sprintf("unsupported JWK key type %T; expected RSA, EC or OKP (Ed25519)", jwk.Key), nil)
	}
	dk, err := newDeviceKey(signer, jwk.KeyID, o)
	if err != nil {
		return nil, err
	}
	if jwk.Algorithm != "" && jwk.Algorithm != dk.alg {
		hint := ""
		if jwk.Algorithm == "PS256" && dk.alg == "RS256" {
			hint = " (use WithRSAPSS)"
		}
		return nil, keyErr(fmt.Sprintf("JWK \"alg\" is %q but the key would sign %s%s", jwk.Algorithm, dk.alg, hint), nil)
	}
	return dk, nil
}

// sanitizeJOSEError keeps go-jose's error text only when it cannot echo input: go-jose messages
// are fixed strings prefixed "go-jose/go-jose:", but JSON syntax errors are replaced.
func sanitizeJOSEError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	if errors.As(err, &se) || errors.As(err, &te) {
		return "malformed JWK JSON"
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "go-jose/go-jose") || len(msg) > 200 {
		return "unsupported JWK"
	}
	return msg
}

// LoadPrivateKey reads and parses the device private key at path, usually
// /root/.local/share/px-device-identity/private.pem. The file must be a regular file of at most
// 1 MiB. A file that group or others may access (mode & 0o077 != 0), that another user owns
// (unless the process runs as root), or whose directory others may write to is refused with a
// *ConfigError naming the mode and the fix, such as "chmod 600 <file>", unless
// WithInsecureKeyFilePermissions accepts it. Parsing is as ParsePrivateKey. Errors are
// *ConfigError values naming the file (a missing file matches fs.ErrNotExist, an unreadable one
// fs.ErrPermission); neither errors nor log records hold key material.
//
// When the public JWK px-device-identity registered lies beside the key (public_jwk.json
// in the same directory; WithRegisteredJWK names another file or none), the key must be its
// private half, and the key signs with the JWK's "alg" and announces its "kid", or none when it
// has none: what the provider registered for the device.
func LoadPrivateKey(path string, opts ...Option) (*DeviceKey, error) {
	o, err := newKeyOptions(opts)
	if err != nil {
		return nil, err
	}
	if !o.registeredSet && path != "" {
		reg := registeredJWKBeside(path)
		if _, err := os.Stat(reg); err == nil {
			o.registeredPath, o.registeredSet = reg, true
		}
	}
	data, fi, err := readLimitedFile(path, keyField+" file")
	if err != nil {
		return nil, err
	}
	defer clear(data)
	if err := checkKeyFile(path, fi, o); err != nil {
		return nil, err
	}
	dk, err := parsePrivateKey(data, o)
	if err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) && ce.File == "" {
			ce.File = path
		}
		return nil, err
	}
	return dk, nil
}
