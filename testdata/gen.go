//go:build ignore

// Command gen writes the key files under testdata/keys. It was run once; the files are committed.
// Run it again only to replace them all:
//
//	go run testdata/gen.go -out testdata/keys
package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"flag"
	"log"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"
)

var out = flag.String("out", "testdata/keys", "output directory")

func main() {
	flag.Parse()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}

	rsa2048 := must(rsa.GenerateKey(rand.Reader, 2048))
	rsa3072 := must(rsa.GenerateKey(rand.Reader, 3072))
	rsa1024 := must(rsa.GenerateKey(rand.Reader, 1024))
	p256 := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	p384 := must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader))
	p521 := must(ecdsa.GenerateKey(elliptic.P521(), rand.Reader))
	p224 := must(ecdsa.GenerateKey(elliptic.P224(), rand.Reader))
	p256b := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	_, ed := must2(ed25519.GenerateKey(rand.Reader))

	pkcs1 := func(k *rsa.PrivateKey) []byte { return block("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k)) }
	pkcs8 := func(k any) []byte { return block("PRIVATE KEY", must(x509.MarshalPKCS8PrivateKey(k))) }
	sec1 := func(k *ecdsa.PrivateKey) []byte { return block("EC PRIVATE KEY", must(x509.MarshalECPrivateKey(k))) }

	// Good keys (SECURITY-CASES KF-01).
	write("rsa2048-pkcs1.pem", pkcs1(rsa2048))
	write("rsa2048-pkcs8.pem", pkcs8(rsa2048))
	write("rsa3072-pkcs1.pem", pkcs1(rsa3072))
	write("ec-p256-sec1.pem", sec1(p256))
	write("ec-p256-pkcs8.pem", pkcs8(p256))
	write("ec-p384-sec1.pem", sec1(p384))
	write("ec-p521-pkcs8.pem", pkcs8(p521))
	write("ed25519-pkcs8.pem", pkcs8(ed))
	// As "openssl ecparam -genkey" writes it: the curve OID first, then the key.
	write("ec-p384-sec1-params.pem", cat(block("EC PARAMETERS", must(asn1.Marshal(asn1.ObjectIdentifier{1, 3, 132, 0, 34}))), sec1(p384)))
	// Windows line endings and surrounding whitespace (KF-04).
	write("crlf.pem", cat([]byte("\r\n  \r\n"), bytes.ReplaceAll(sec1(p256), []byte("\n"), []byte("\r\n")), []byte("\r\n\r\n")))
	// A bundle: certificate, key, certificate (KF-04).
	cert := selfSigned(p256)
	write("cert-and-key.pem", cat(cert, pkcs8(p256), selfSigned(p384)))

	// Private JWKs (KF-01, KF-06).
	write("rsa2048.jwk.json", jwkJSON(rsaJWK(rsa2048)))
	write("ec-p256.jwk.json", jwkJSON(ecJWK(p256, p256)))
	write("ed25519.jwk.json", jwkJSON(map[string]string{"kty": "OKP", "crv": "Ed25519", "kid": "device-ed25519", "x": b64(ed.Public().(ed25519.PublicKey)), "d": b64(ed.Seed())}))
	write("ec-p256-mismatch.jwk.json", jwkJSON(ecJWK(p256, p256b)))
	pub := ecJWK(p256, p256)
	delete(pub, "d")
	write("public.jwk.json", jwkJSON(pub))

	// Weak or unsupported keys (KF-05).
	write("rsa1024.pem", pkcs1(rsa1024))
	write("ec-p224.pem", sec1(p224))
	write("ec-secp256k1.pem", block("EC PRIVATE KEY", secp256k1SEC1()))

	// Encrypted keys (KF-02): a PBES2 (PBKDF2, AES-256-CBC) EncryptedPrivateKeyInfo as in RFC 5958
	// §3 with random ciphertext, and legacy OpenSSL header encryption with a random body.
	write("encrypted-pkcs8.pem", block("ENCRYPTED PRIVATE KEY", encryptedPKCS8()))
	write("legacy-encrypted.pem", pem.EncodeToMemory(&pem.Block{
		Type:    "RSA PRIVATE KEY",
		Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC," + strings.ToUpper(hex.EncodeToString(random(16)))},
		Bytes:   random(1200),
	}))

	// Not private keys (KF-03).
	write("public.pem", block("PUBLIC KEY", must(x509.MarshalPKIXPublicKey(&rsa2048.PublicKey))))
	write("rsa-public.pem", block("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rsa2048.PublicKey)))
	write("cert.pem", cert)
	write("openssh.pem", block("OPENSSH PRIVATE KEY", cat([]byte("openssh-key-v1\x00"), random(380))))
	write("pgp.pem", []byte("-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n"+
		wrap(base64.StdEncoding.EncodeToString(random(300)))+"=Qm4t\n-----END PGP PRIVATE KEY BLOCK-----\n"))

	// Malformed files (KF-04).
	write("two-keys.pem", cat(pkcs8(p256), pkcs1(rsa2048)))
	write("trailing-garbage.pem", cat(pkcs8(p256), []byte("this is not part of the key\n")))
	full := pkcs8(rsa2048)
	write("truncated.pem", full[:len(full)/2])
	write("empty.pem", nil)
	write("der.bin", must(x509.MarshalPKCS8PrivateKey(p256)))
}

func block(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func write(name string, data []byte) {
	if err := os.WriteFile(filepath.Join(*out, name), data, 0o644); err != nil {
		log.Fatal(err)
	}
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func wrap(s string) string {
	var b strings.Builder
	for len(s) > 64 {
		b.WriteString(s[:64] + "\n")
		s = s[64:]
	}
	b.WriteString(s + "\n")
	return b.String()
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func selfSigned(k *ecdsa.PrivateKey) []byte {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "onesoidc test device"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(10 * 365 * 24 * time.Hour),
	}
	return block("CERTIFICATE", must(x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)))
}

func rsaJWK(k *rsa.PrivateKey) map[string]string {
	k.Precompute()
	return map[string]string{
		"kty": "RSA", "alg": "RS256",
		"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes()), "d": b64(k.D.Bytes()),
		"p": b64(k.Primes[0].Bytes()), "q": b64(k.Primes[1].Bytes()),
		"dp": b64(k.Precomputed.Dp.Bytes()), "dq": b64(k.Precomputed.Dq.Bytes()), "qi": b64(k.Precomputed.Qinv.Bytes()),
	}
}

// ecJWK returns the JWK of pub's public point with priv's private scalar.
func ecJWK(pub, priv *ecdsa.PrivateKey) map[string]string {
	point := must(pub.PublicKey.ECDH()).Bytes() // 0x04 || X || Y
	size := (len(point) - 1) / 2
	return map[string]string{
		"kty": "EC", "crv": "P-256", "alg": "ES256",
		"x": b64(point[1 : 1+size]), "y": b64(point[1+size:]), "d": b64(must(priv.ECDH()).Bytes()),
	}
}

func jwkJSON(m map[string]string) []byte {
	return append(must(json.MarshalIndent(m, "", "  ")), '\n')
}

// secp256k1SEC1 returns an RFC 5915 ECPrivateKey on secp256k1, which Go does not support.
func secp256k1SEC1() []byte {
	type ecPrivateKey struct {
		Version    int
		PrivateKey []byte
		Curve      asn1.ObjectIdentifier `asn1:"optional,explicit,tag:0"`
	}
	return must(asn1.Marshal(ecPrivateKey{Version: 1, PrivateKey: random(32), Curve: asn1.ObjectIdentifier{1, 3, 132, 0, 10}}))
}

// encryptedPKCS8 returns an EncryptedPrivateKeyInfo (RFC 5958 §3) with PBES2 parameters
// (RFC 8018 §A.4) and random ciphertext.
func encryptedPKCS8() []byte {
	type algID struct {
		Algorithm  asn1.ObjectIdentifier
		Parameters asn1.RawValue `asn1:"optional"`
	}
	type pbkdf2Params struct {
		Salt       []byte
		Iterations int
		PRF        algID
	}
	type pbes2Params struct {
		KDF algID
		Enc algID
	}
	type encryptedInfo struct {
		Alg  algID
		Data []byte
	}
	raw := func(v any) asn1.RawValue { return asn1.RawValue{FullBytes: must(asn1.Marshal(v))} }
	null := asn1.RawValue{Tag: asn1.TagNull}
	kdf := algID{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}, raw(pbkdf2Params{random(8), 2048, algID{asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}, null}})}
	enc := algID{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}, raw(random(16))}
	return must(asn1.Marshal(encryptedInfo{
		Alg:  algID{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}, raw(pbes2Params{kdf, enc})},
		Data: random(1232),
	}))
}

func must[T any](v T, err error) T {
	if err != nil {
		log.Fatal(err)
	}
	return v
}

func must2[A, B any](a A, b B, err error) (A, B) {
	if err != nil {
		log.Fatal(err)
	}
	return a, b
}
