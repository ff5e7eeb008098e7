package onesoidc

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	gojose "github.com/go-jose/go-jose/v4"
)

func keyFile(name string) string { return filepath.Join("testdata", "keys", name) }

func readKeyFile(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(keyFile(name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// thumbprint is the RFC 7638 thumbprint of pub as go-jose computes it.
func thumbprint(t *testing.T, pub crypto.PublicKey) string {
	t.Helper()
	tp, err := (&gojose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// verifyJWS checks sig over input with the standard library, for the JWS alg (RFC 7518 §3).
func verifyJWS(t *testing.T, pub crypto.PublicKey, alg string, input, sig []byte) {
	t.Helper()
	hashes := map[string]crypto.Hash{
		"RS256": crypto.SHA256, "PS256": crypto.SHA256,
		"ES256": crypto.SHA256, "ES384": crypto.SHA384, "ES512": crypto.SHA512,
	}
	var digest []byte
	if h, ok := hashes[alg]; ok {
		hh := h.New()
		hh.Write(input)
		digest = hh.Sum(nil)
	}
	var ok bool
	switch alg {
	case "RS256":
		ok = rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), crypto.SHA256, digest, sig) == nil
	case "PS256":
		ok = rsa.VerifyPSS(pub.(*rsa.PublicKey), crypto.SHA256, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
	case "ES256", "ES384", "ES512":
		k := pub.(*ecdsa.PublicKey)
		size := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			t.Fatalf("%s signature is %d bytes, want %d (raw R||S)", alg, len(sig), 2*size)
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		ok = ecdsa.Verify(k, digest, r, s)
	case "EdDSA":
		ok = ed25519.Verify(pub.(ed25519.PublicKey), input, sig)
	default:
		t.Fatalf("unknown alg %q", alg)
	}
	if !ok {
		t.Fatalf("%s signature does not verify", alg)
	}
}

// signAndVerify signs a JWS signing input with k and verifies it with the standard library.
func signAndVerify(t *testing.T, k *DeviceKey) {
	t.Helper()
	input := []byte("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJkZXZpY2UifQ")
	sig, err := k.SignJWS(t.Context(), input)
	if err != nil {
		t.Fatalf("SignJWS: %v", err)
	}
	verifyJWS(t, k.Public(), k.Algorithm(), input, sig)
}

// TestKF01KeysLoad loads every supported key kind (SECURITY-CASES KF-01, KF-04 positive cases).
func TestKF01KeysLoad(t *testing.T) {
	t.Parallel()
	p256 := thumbprintOfFile(t, "ec-p256-pkcs8.pem")
	tests := []struct {
		file    string
		alg     string
		pubType string
		kid     string // expected kid, when not the thumbprint
		sameAs  string // the thumbprint must equal this one
	}{
		{file: "rsa2048-pkcs1.pem", alg: "RS256", pubType: "*rsa.PublicKey"},
		{file: "rsa2048-pkcs8.pem", alg: "RS256", pubType: "*rsa.PublicKey"},
		{file: "rsa3072-pkcs1.pem", alg: "RS256", pubType: "*rsa.PublicKey"},
		{file: "ec-p256-sec1.pem", alg: "ES256", pubType: "*ecdsa.PublicKey", sameAs: p256},
		{file: "ec-p256-pkcs8.pem", alg: "ES256", pubType: "*ecdsa.PublicKey"},
		{file: "ec-p384-sec1.pem", alg: "ES384", pubType: "*ecdsa.PublicKey"},
		{file: "ec-p384-sec1-params.pem", alg: "ES384", pubType: "*ecdsa.PublicKey"},
		{file: "ec-p521-pkcs8.pem", alg: "ES512", pubType: "*ecdsa.PublicKey"},
		{file: "ed25519-pkcs8.pem", alg: "EdDSA", pubType: "ed25519.PublicKey"},
		{file: "crlf.pem", alg: "ES256", pubType: "*ecdsa.PublicKey", sameAs: p256},
		{file: "cert-and-key.pem", alg: "ES256", pubType: "*ecdsa.PublicKey", sameAs: p256},
		{file: "rsa2048.jwk.json", alg: "RS256", pubType: "*rsa.PublicKey", sameAs: thumbprintOfFile(t, "rsa2048-pkcs1.pem")},
		{file: "ec-p256.jwk.json", alg: "ES256", pubType: "*ecdsa.PublicKey", sameAs: p256},
		{file: "ed25519.jwk.json", alg: "EdDSA", pubType: "ed25519.PublicKey", kid: "device-ed25519"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			k, err := LoadPrivateKey(keyCopy(t, tt.file))
			if err != nil {
				t.Fatalf("LoadPrivateKey: %v", err)
			}
			if k.Algorithm() != tt.alg {
				t.Errorf("Algorithm = %q, want %q", k.Algorithm(), tt.alg)
			}
			if got := fmt.Sprintf("%T", k.Public()); got != tt.pubType {
				t.Errorf("Public is %s, want %s", got, tt.pubType)
			}
			if k.KeyID() != tt.kid { // none unless the private JWK names one
				t.Errorf("KeyID = %q, want %q", k.KeyID(), tt.kid)
			}
			if tt.sameAs != "" && thumbprint(t, k.Public()) != tt.sameAs {
				t.Errorf("thumbprint differs from the same key in another format")
			}
			signAndVerify(t, k)

			// ParsePrivateKey gives the same key from the same bytes.
			pk, err := ParsePrivateKey(readKeyFile(t, tt.file))
			if err != nil {
				t.Fatalf("ParsePrivateKey: %v", err)
			}
			if pk.KeyID() != k.KeyID() || pk.Algorithm() != k.Algorithm() {
				t.Errorf("ParsePrivateKey = %v, LoadPrivateKey = %v", pk, k)
			}

			// WithKeyID overrides the thumbprint (and a JWK kid).
			ck, err := LoadPrivateKey(keyCopy(t, tt.file), WithKeyID("device-key-1"))
			if err != nil {
				t.Fatalf("LoadPrivateKey WithKeyID: %v", err)
			}
			if ck.KeyID() != "device-key-1" {
				t.Errorf("KeyID with WithKeyID = %q", ck.KeyID())
			}
		})
	}
}

func thumbprintOfFile(t *testing.T, name string) string {
	t.Helper()
	k, err := ParsePrivateKey(readKeyFile(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return thumbprint(t, k.Public())
}

func TestWithRSAPSS(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"rsa2048-pkcs1.pem", "rsa2048-pkcs8.pem", "rsa3072-pkcs1.pem"} {
		t.Run(file, func(t *testing.T) {
			t.Parallel()
			k, err := LoadPrivateKey(keyCopy(t, file), WithRSAPSS())
			if err != nil {
				t.Fatalf("LoadPrivateKey: %v", err)
			}
			if k.Algorithm() != "PS256" {
				t.Fatalf("Algorithm = %q, want PS256", k.Algorithm())
			}
			signAndVerify(t, k)
		})
	}
}

func TestWithKeyIDEmpty(t *testing.T) {
	t.Parallel()
	k, err := ParsePrivateKey(readKeyFile(t, "ed25519-pkcs8.pem"), WithKeyID(""))
	if err != nil {
		t.Fatal(err)
	}
	if k.KeyID() != "" {
		t.Errorf("KeyID = %q, want none", k.KeyID())
	}
}

// TestKF02EncryptedKeysRefused: encrypted keys get an explicit error (SECURITY-CASES KF-02).
func TestKF02EncryptedKeysRefused(t *testing.T) {
	t.Parallel()
	testBadKeyFiles(t, []badKey{
		{"encrypted-pkcs8.pem", `encrypted private keys are not supported (found "ENCRYPTED PRIVATE KEY")`},
		{"legacy-encrypted.pem", "encrypted private keys are not supported (\"RSA PRIVATE KEY\" block with legacy Proc-Type/DEK-Info encryption)"},
	})
}

// TestKF03NonPrivateKeysRefused: other PEM types get an error naming the type found and the
// types expected (SECURITY-CASES KF-03).
func TestKF03NonPrivateKeysRefused(t *testing.T) {
	t.Parallel()
	testBadKeyFiles(t, []badKey{
		{"public.pem", `no private key found (found "PUBLIC KEY"); expected an unencrypted PEM "PRIVATE KEY" (PKCS#8)`},
		{"rsa-public.pem", `no private key found (found "RSA PUBLIC KEY")`},
		{"cert.pem", `no private key found (found "CERTIFICATE")`},
		{"openssh.pem", `OpenSSH private keys are not supported (found "OPENSSH PRIVATE KEY")`},
		{"pgp.pem", `OpenPGP blocks are not supported (found "PGP PRIVATE KEY BLOCK")`},
		{"public.jwk.json", `JWK is a public key (no "d" member)`},
	})
}

// TestKF04MalformedKeyFilesRefused (SECURITY-CASES KF-04).
func TestKF04MalformedKeyFilesRefused(t *testing.T) {
	t.Parallel()
	testBadKeyFiles(t, []badKey{
		{"two-keys.pem", "found 2 private key blocks"},
		{"trailing-garbage.pem", "unexpected data after the last PEM END line"},
		{"truncated.pem", "malformed PEM block"},
		{"empty.pem", "empty input"},
		{"der.bin", "no PEM block found (raw DER or not a key file?)"},
	})
}

func TestKF04InlineKeyInputs(t *testing.T) {
	t.Parallel()
	key := string(readKeyFile(t, "ec-p256-pkcs8.pem"))
	body := strings.TrimSuffix(strings.TrimPrefix(key, "-----BEGIN PRIVATE KEY-----\n"), "-----END PRIVATE KEY-----\n")
	tests := []struct {
		name   string
		input  string
		phrase string // "" means it loads
	}{
		{"explanatory text before the block", "Bag Attributes\n    friendlyName: device\n" + key, ""},
		{"surrounding whitespace", "\n\n \t" + key + "\n \n", ""},
		{"no final newline", strings.TrimSuffix(key, "\n"), ""},
		{"missing END line", strings.TrimSuffix(key, "-----END PRIVATE KEY-----\n"), "malformed PEM block"},
		{"truncated base64", "-----BEGIN PRIVATE KEY-----\n" + body[:len(body)/2] + "\n-----END PRIVATE KEY-----\n", "invalid or unsupported PKCS#8"},
		{"bad base64", "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n", "malformed PEM block"},
		{"malformed key then good key", "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n" + key, "malformed PEM block"},
		{"mismatched END", strings.Replace(key, "END PRIVATE KEY", "END RSA PRIVATE KEY", 1), "malformed PEM block"},
		{"garbage", "hello world\n", "no PEM block found"},
		{"DSA key", "-----BEGIN DSA PRIVATE KEY-----\nAAAA\n-----END DSA PRIVATE KEY-----\n", `unsupported private key type "DSA PRIVATE KEY"`},
		{"PKCS#1 label on PKCS#8 data", strings.ReplaceAll(key, "PRIVATE KEY", "RSA PRIVATE KEY"), `invalid PKCS#1 "RSA PRIVATE KEY"`},
		{"SEC1 label on PKCS#8 data", strings.ReplaceAll(key, "PRIVATE KEY", "EC PRIVATE KEY"), `invalid or unsupported SEC1 "EC PRIVATE KEY"`},
		{"certificate label only", "-----BEGIN CERTIFICATE-----\n" + body + "-----END CERTIFICATE-----\n", `found "CERTIFICATE"`},
		{"json not a JWK", `{"kty": "oct", "k": "c2VjcmV0"}`, "unsupported JWK key type"},
		{"broken json", `{"kty": "EC",`, "not valid JSON"},
		{"JWK alg mismatch", strings.Replace(string(readKeyFile(t, "rsa2048.jwk.json")), `"RS256"`, `"PS256"`, 1), `JWK "alg" is "PS256" but the key would sign RS256 (use WithRSAPSS)`},
		{"JWK wrong d size", `{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"AAAA"}`, "invalid or unsupported JWK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k, err := ParsePrivateKey([]byte(tt.input))
			if tt.phrase == "" {
				if err != nil {
					t.Fatalf("ParsePrivateKey: %v", err)
				}
				signAndVerify(t, k)
				return
			}
			wantConfigError(t, err, tt.phrase)
		})
	}
}

func TestKF04JWKWithPSS(t *testing.T) {
	t.Parallel()
	data := strings.Replace(string(readKeyFile(t, "rsa2048.jwk.json")), `"RS256"`, `"PS256"`, 1)
	k, err := ParsePrivateKey([]byte(data), WithRSAPSS())
	if err != nil {
		t.Fatal(err)
	}
	if k.Algorithm() != "PS256" {
		t.Errorf("Algorithm = %q", k.Algorithm())
	}
	signAndVerify(t, k)
}

// TestKF05WeakKeysRefused: keys below the RFC 7518 minimums or on other curves (SECURITY-CASES
// KF-05).
func TestKF05WeakKeysRefused(t *testing.T) {
	t.Parallel()
	testBadKeyFiles(t, []badKey{
		{"rsa1024.pem", "RSA key is 1024 bits; at least 2048 bits are required"},
		{"ec-p224.pem", "unsupported elliptic curve P-224"},
		{"ec-secp256k1.pem", `unsupported SEC1 "EC PRIVATE KEY"`},
	})
}

// TestKF06KeyAlgorithmMismatchRefused: a PSS request for a non-RSA key and a JWK whose private
// part does not match its public part are refused at load (SECURITY-CASES KF-06).
func TestKF06KeyAlgorithmMismatchRefused(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"ec-p256-sec1.pem", "ed25519-pkcs8.pem", "ec-p256.jwk.json"} {
		t.Run(file, func(t *testing.T) {
			t.Parallel()
			_, err := LoadPrivateKey(keyCopy(t, file), WithRSAPSS())
			wantConfigError(t, err, "PS256 was requested with WithRSAPSS but the key is not RSA")
		})
	}
	testBadKeyFiles(t, []badKey{
		{"ec-p256-mismatch.jwk.json", `private key "d" does not match its public key`},
	})
}

type badKey struct{ file, phrase string }

// testBadKeyFiles checks that each file fails to load with a *ConfigError that names the file,
// contains phrase and holds no key material, and that ParsePrivateKey fails the same way.
func testBadKeyFiles(t *testing.T, cases []badKey) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			path := keyCopy(t, tt.file)
			k, err := LoadPrivateKey(path)
			if k != nil {
				t.Errorf("got a key %v", k)
			}
			ce := wantConfigError(t, err, tt.phrase)
			if ce.File != path || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file %q", err, path)
			}
			noKeyMaterial(t, err.Error(), readKeyFile(t, tt.file))
			_, err = ParsePrivateKey(readKeyFile(t, tt.file))
			ce = wantConfigError(t, err, tt.phrase)
			if ce.File != "" {
				t.Errorf("ParsePrivateKey error names a file: %q", ce.File)
			}
		})
	}
}

// noKeyMaterial fails if out contains any base64 line or JSON value of the key file.
func noKeyMaterial(t *testing.T, out string, file []byte) {
	t.Helper()
	for _, line := range strings.FieldsFunc(string(file), func(r rune) bool { return strings.ContainsRune("\r\n\"", r) }) {
		line = strings.TrimSpace(line)
		if len(line) >= 16 && !strings.Contains(line, "-----") && strings.Contains(out, line) {
			t.Errorf("output %q contains key file content %q", out, line)
		}
	}
}

// TestKF07KeyFilePermissions: a key file that group or others may access, that another user
// owns, or that lies in a directory others may write to is refused with a *ConfigError naming the
// mode and the fix; WithInsecureKeyFilePermissions accepts it with a warning (SECURITY-CASES
// KF-07).
func TestKF07KeyFilePermissions(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	key := readKeyFile(t, "ec-p256-sec1.pem")
	me := os.Geteuid()
	other := func() int { return me + 1 }
	tests := []struct {
		name    string
		mode    os.FileMode
		dirMode os.FileMode
		opts    []Option
		phrase  string // "" when accepted
	}{
		{"0600", 0o600, 0o700, nil, ""},
		{"0400", 0o400, 0o700, nil, ""},
		{"0640", 0o640, 0o700, nil, "key file mode 0640 lets group or others access the key; run chmod 600 "},
		{"0644", 0o644, 0o700, nil, "mode 0644"},
		{"0666", 0o666, 0o700, nil, "mode 0666"},
		{"0604", 0o604, 0o700, nil, "mode 0604"},
		{"0620 (group may write)", 0o620, 0o700, nil, "mode 0620"},
		{"owned by another uid", 0o600, 0o700, []Option{withEUID(other)}, fmt.Sprintf("not by this process's uid %d; run chown", me+1)},
		{"root reads any owner's key", 0o600, 0o700, []Option{withEUID(func() int { return 0 })}, ""},
		{"world-writable directory", 0o600, 0o777, nil, "(mode 0777) is writable by others"},
		{"sticky world-writable directory", 0o600, 0o777 | os.ModeSticky, nil, "is writable by others"},
		{"group-writable directory", 0o600, 0o770, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "keys")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "private.pem")
			if err := os.WriteFile(path, key, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tt.dirMode); err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&buf, nil))
			k, err := LoadPrivateKey(path, append(tt.opts, WithLogger(logger))...)
			if tt.phrase == "" {
				if err != nil {
					t.Fatalf("LoadPrivateKey: %v", err)
				}
				signAndVerify(t, k)
				if buf.Len() != 0 {
					t.Errorf("unexpected log output %q", buf.String())
				}
				return
			}
			ce := wantConfigError(t, err, tt.phrase)
			if k != nil || ce.File != path || !strings.Contains(err.Error(), path) {
				t.Errorf("key %v, error %q: want a refusal naming %s", k, err, path)
			}
			noKeyMaterial(t, err.Error(), key)

			k, err = LoadPrivateKey(path, append(tt.opts, WithInsecureKeyFilePermissions(), WithLogger(logger))...)
			if err != nil {
				t.Fatalf("LoadPrivateKey with WithInsecureKeyFilePermissions: %v", err)
			}
			signAndVerify(t, k)
			log := buf.String()
			if !strings.Contains(log, "level=WARN") || !strings.Contains(log, path) || strings.Contains(log, "PRIVATE") {
				t.Errorf("log %q does not warn about %s", log, path)
			}
			noKeyMaterial(t, log, key)
		})
	}
}

// withEUID replaces the process's effective uid in the owner check.
func withEUID(f func() int) Option { return func(o *options) { o.key.euid = f } }

// keyCopy copies a key file of testdata/keys into a private (0600) file of a private directory,
// as LoadPrivateKey requires; a checkout leaves the originals 0644.
func keyCopy(t testing.TB, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, readKeyFile(t, name), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestKF09NoKeyMaterialInOutput: formatting a key prints its algorithm and kid only
// (SECURITY-CASES KF-09).
func TestKF09NoKeyMaterialInOutput(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"rsa2048-pkcs1.pem", "ec-p256-sec1.pem", "ed25519-pkcs8.pem"} {
		t.Run(file, func(t *testing.T) {
			t.Parallel()
			k, err := LoadPrivateKey(keyCopy(t, file))
			if err != nil {
				t.Fatal(err)
			}
			out := fmt.Sprintf("%v %+v %#v %s", k, k, k, k)
			want := fmt.Sprintf("DeviceKey{alg: %s, kid: %s}", k.Algorithm(), k.KeyID())
			if strings.ReplaceAll(out, want, "") != "   " {
				t.Errorf("formatted key = %q, want only %q", out, want)
			}
			for _, secret := range privateParts(t, k.signer) {
				if strings.Contains(out, secret) {
					t.Errorf("formatted key contains private key material")
				}
			}
		})
	}
}

// privateParts returns decimal and hex renderings of the private scalars of s.
func privateParts(t *testing.T, s crypto.Signer) []string {
	var ints []*big.Int
	switch k := s.(type) {
	case *rsa.PrivateKey:
		ints = append(ints, k.D, k.Primes[0], k.Primes[1])
	case *ecdsa.PrivateKey:
		b, err := k.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		ints = append(ints, new(big.Int).SetBytes(b))
	case ed25519.PrivateKey:
		return []string{fmt.Sprintf("%x", k.Seed()), fmt.Sprint([]byte(k.Seed()))}
	case *ed25519.PrivateKey:
		return privateParts(t, *k)
	}
	var out []string
	for _, i := range ints {
		out = append(out, i.String(), i.Text(16))
	}
	return out
}

// opaqueSigner hides the concrete key type behind crypto.Signer, as an HSM or TPM would, so
// SignJWS takes its generic path (ASN.1 ECDSA signatures converted to raw R||S).
type opaqueSigner struct {
	key crypto.Signer
}

func (o opaqueSigner) Public() crypto.PublicKey { return o.key.Public() }

func (o opaqueSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return o.key.Sign(r, digest, opts)
}

func TestNewDeviceKeyCustomSigner(t *testing.T) {
	t.Parallel()
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := ParsePrivateKey(readKeyFile(t, "rsa2048-pkcs1.pem"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		key  crypto.Signer
		opts []Option
		alg  string
	}{
		{"P-256", p256, nil, "ES256"},
		{"P-384", p384, nil, "ES384"},
		{"P-521", p521, nil, "ES512"},
		{"Ed25519", ed, nil, "EdDSA"},
		{"RSA", rsaKey.signer, nil, "RS256"},
		{"RSA PSS", rsaKey.signer, []Option{WithRSAPSS()}, "PS256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, s := range []crypto.Signer{tt.key, opaqueSigner{tt.key}} {
				k, err := NewDeviceKey(s, tt.opts...)
				if err != nil {
					t.Fatalf("NewDeviceKey(%T): %v", s, err)
				}
				if k.Algorithm() != tt.alg {
					t.Errorf("Algorithm = %q, want %q", k.Algorithm(), tt.alg)
				}
				if k.KeyID() != "" {
					t.Errorf("KeyID = %q, want none by default", k.KeyID())
				}
				signAndVerify(t, k)
			}
		})
	}
}

// weirdSigner has a public key of a type NewDeviceKey does not support.
type weirdSigner struct{ pub crypto.PublicKey }

func (w weirdSigner) Public() crypto.PublicKey { return w.pub }
func (w weirdSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("no")
}

func TestNewDeviceKeyRefused(t *testing.T) {
	t.Parallel()
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		key    crypto.Signer
		phrase string
	}{
		{"nil", nil, "no key given"},
		{"nil RSA", (*rsa.PrivateKey)(nil), "no key given"},
		{"nil ECDSA", (*ecdsa.PrivateKey)(nil), "no key given"},
		{"P-224", opaqueSigner{p224}, "unsupported elliptic curve P-224"},
		{"string public key", weirdSigner{"key"}, "unsupported key type string"},
		{"nil public key", weirdSigner{nil}, "unsupported key type <nil>"},
		{"RSA without modulus", weirdSigner{&rsa.PublicKey{}}, "RSA key has no modulus"},
		{"short Ed25519", weirdSigner{ed25519.PublicKey{1, 2, 3}}, "Ed25519 public key has the wrong size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k, err := NewDeviceKey(tt.key)
			if k != nil {
				t.Errorf("got a key %v", k)
			}
			wantConfigError(t, err, tt.phrase)
		})
	}
}

// TestDeviceKeyConcurrentUse signs from many goroutines at once (run with -race).
func TestDeviceKeyConcurrentUse(t *testing.T) {
	t.Parallel()
	k, err := LoadPrivateKey(keyCopy(t, "ec-p256-sec1.pem"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := k.SignJWS(t.Context(), []byte("a.b")); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

func FuzzParsePrivateKey(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "keys", "*"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\n"))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParsePrivateKey(data)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error is %T, not *ConfigError: %v", err, err)
			}
			return
		}
		switch k.Algorithm() {
		case "RS256", "ES256", "ES384", "ES512", "EdDSA":
		default:
			t.Fatalf("unexpected algorithm %q", k.Algorithm())
		}
	})
}
