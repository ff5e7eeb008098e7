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

// TestStringScanFindsEverySpecialByte: the string scan stops at a quote, a backslash or a
// control character wherever it falls in an eight-byte word (before, inside and after one),
// next to bytes that are neither (including bytes of 0x80 and above), as a byte-by-byte scan
// does.
func TestStringScanFindsEverySpecialByte(t *testing.T) {
	fill := []byte{'a', '!', '#', '[', ']', 0x1f + 1, 0x7f, 0x80, 0xa2, 0xdc, 0xff}
	for _, special := range []string{`"`, `\n`, `\u0041`, "\x00", "\x1f", `\x`} {
		for at := range 20 {
			for _, f := range fill {
				body := make([]byte, at)
				for i := range body {
					body[i] = f
				}
				s := `"` + string(body) + special + `tail"` + `,`
				r := jsonReader{s: s}
				got, esc := r.str()
				wantBody, wantEsc, wantOK := refScan(s)
				if r.bad == wantOK || (wantOK && (got != wantBody || esc != wantEsc)) {
					t.Errorf("%q: got %q %v bad=%v, want %q %v ok=%v", s, got, esc, r.bad, wantBody, wantEsc, wantOK)
				}
			}
		}
	}
}

// refScan is the byte-by-byte reading of the JSON string at the start of s (RFC 8259 §7).
func refScan(s string) (body string, esc, ok bool) {
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return s[1:i], esc, true
		case c < 0x20:
			return "", false, false
		case c == '\\':
			esc = true
			i++
			if i >= len(s) {
				return "", false, false
			}
			switch s[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(s) {
					return "", false, false
				}
				for _, h := range []byte(s[i+1 : i+5]) {
					if !isHex(h) {
						return "", false, false
					}
				}
				i += 4
			default:
				return "", false, false
			}
		}
	}
	return "", false, false
}
