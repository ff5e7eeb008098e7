package jose

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	gojose "github.com/go-jose/go-jose/v4"
	"github.com/ones-now/onesoidc/onesoidctest"
)

// TestB64DecodeAgreesWithStrictStdlib: the strict base64url decoder of token segments accepts
// exactly what encoding/base64's RawURLEncoding.Strict() accepts, and decodes to the same bytes
// (RFC 7515 §2, RFC 4648 §3.5), on random strings of the alphabet and a few other bytes. Line
// breaks, which encoding/base64 skips even when strict, are refused here (TestB64RefusesLineBreaks).
func TestB64DecodeAgreesWithStrictStdlib(t *testing.T) {
	t.Parallel()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/ ."
	rng := rand.New(rand.NewPCG(1, 2))
	strict := base64.RawURLEncoding.Strict()
	for range 50_000 {
		b := make([]byte, rng.IntN(12))
		for i := range b {
			if rng.IntN(20) == 0 {
				b[i] = alphabet[64+rng.IntN(len(alphabet)-64)]
			} else {
				b[i] = alphabet[rng.IntN(64)]
			}
		}
		s := string(b)
		want, err := strict.DecodeString(s)
		n := b64Len(len(s))
		got := make([]byte, max(n, 0))
		ok := n >= 0 && b64Decode(got, s)
		if ok != (err == nil) || ok && string(got) != string(want) {
			t.Fatalf("%q: decoded %v %x, encoding/base64 %v %x", s, ok, got, err, want)
		}
	}
}

// TestB64RefusesLineBreaks: a token segment holds no whitespace (RFC 7515 §2, §7.1).
func TestB64RefusesLineBreaks(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"e30\n", "e3\r\n0", "\ne30"} {
		if _, ok := DecodeJSONPart(s, nil); ok {
			t.Errorf("%q decoded", s)
		}
	}
}

// TestAppendJSONStringAgreesWithEncodingJSON: what AppendJSONString writes (RFC 8259 §7) is read
// back by encoding/json as the same string, for every byte and some UTF-8.
func TestAppendJSONStringAgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	var all strings.Builder
	for c := range 0x80 {
		all.WriteByte(byte(c))
	}
	for _, s := range []string{"", all.String(), `"\`, "é€😀", "urn:openid:params:jwt:claim:auth_req_id"} {
		var got string
		if err := json.Unmarshal(AppendJSONString(nil, s), &got); err != nil || got != s {
			t.Fatalf("%q: encoding/json read %q, %v", s, got, err)
		}
	}
}

// TestSplitRefusesOtherShapes: only three non-empty-header/payload segments of possible
// base64url lengths pass (RFC 7515 §7.1); the JSON serialization and JWE are refused.
func TestSplitRefusesOtherShapes(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]*Error{
		"": errEmpty, `{"payload":"e30"}`: errJSONSerialization, "abcd": errOneSegment, "ab.cd": errTwoSegments,
		"a.b.c.d.e": errJWE, "ab.cd.ef.gh": errTooManySegments, ".e30.": errEmptySegment, "e30..": errEmptySegment,
		"abcde.e30.": errSegmentLength, strings.Repeat("e", 11000) + ".e30.": errLongHeader,
	} {
		if _, err := Split(raw); err != want {
			t.Errorf("%.20q: %v, want %v", raw, err, want)
		}
	}
	tok, err := Split("aGVhZA.cGF5.c2ln")
	if err != nil || tok.HeaderPart() != "aGVhZA" || tok.PayloadPart() != "cGF5" || tok.SignaturePart() != "c2ln" ||
		tok.SigningInput() != "aGVhZA.cGF5" {
		t.Fatalf("%+v %v", tok, err)
	}
}

// TestDifferentialGoJOSE: a compact JWS that go-jose signs verifies with Verify, and one that
// SigningInput and AppendSignature build verifies with go-jose, for every supported algorithm
// (RFC 7518 §3.3-3.5, RFC 8037 §3.1); a token changed in one bit of its signing input does not
// verify.
func TestDifferentialGoJOSE(t *testing.T) {
	t.Parallel()
	for _, name := range AllAlgs.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			alg := ParseAlg(name)
			key := onesoidctest.NewKey(name)
			pub := publicKey(t, key.Key.(crypto.Signer).Public())
			payload := []byte(`{"iss":"https://idp.example","sub":"user-1"}`)

			s, err := gojose.NewSigner(gojose.SigningKey{Algorithm: gojose.SignatureAlgorithm(name), Key: key}, nil)
			if err != nil {
				t.Fatal(err)
			}
			obj, err := s.Sign(payload)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := obj.CompactSerialize()
			if err != nil {
				t.Fatal(err)
			}
			if !verifies(t, raw, alg, pub) {
				t.Fatal("go-jose's token does not verify")
			}
			tampered := []byte(raw)
			tampered[len(EncodeHeader(name, "JWT", ""))+3] ^= 1
			if verifies(t, string(tampered), alg, pub) {
				t.Fatal("a changed token verifies")
			}

			in := SigningInput(EncodeHeader(name, "JWT", "k1"), payload)
			sig, err := onesoidctest.Sign(key, name, in)
			if err != nil {
				t.Fatal(err)
			}
			ours := AppendSignature(in, sig)
			parsed, err := gojose.ParseSignedCompact(ours, []gojose.SignatureAlgorithm{gojose.SignatureAlgorithm(name)})
			if err != nil {
				t.Fatal(err)
			}
			got, err := parsed.Verify(key.Public())
			if err != nil || string(got) != string(payload) {
				t.Fatalf("go-jose: %q %v", got, err)
			}
			if parsed.Signatures[0].Header.KeyID != "k1" {
				t.Fatalf("kid %q", parsed.Signatures[0].Header.KeyID)
			}
		})
	}
}

func verifies(t *testing.T, raw string, alg Alg, pub *PublicKey) bool {
	t.Helper()
	tok, err := Split(raw)
	if err != nil {
		t.Fatal(err)
	}
	sig, ok := DecodeSignature(tok.SignaturePart(), nil)
	return ok && Verify(tok, sig, alg, pub, nil)
}

func publicKey(t *testing.T, k crypto.PublicKey) *PublicKey {
	t.Helper()
	switch k := k.(type) {
	case *rsa.PublicKey:
		return &PublicKey{RSA: k}
	case *ecdsa.PublicKey:
		return &PublicKey{EC: k, ECOrder: k.Curve.Params().N.FillBytes(make([]byte, (k.Curve.Params().BitSize+7)/8))}
	case ed25519.PublicKey:
		return &PublicKey{Ed: k}
	}
	t.Fatalf("key %T", k)
	return nil
}
