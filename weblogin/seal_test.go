package weblogin

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ones-now/onesoidc"
	"github.com/ones-now/onesoidc/onesoidctest"
)

// sealKey returns a test key of SealKeySize bytes, each b.
func sealKey(b byte) []byte { return bytes.Repeat([]byte{b}, SealKeySize) }

// mustSealer returns the sealer of key and previous.
func mustSealer(t testing.TB, key []byte, previous ...[]byte) *sealer {
	t.Helper()
	s, err := newSealer(key, previous...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// assertNoKeyBytes fails when text holds one of the keys, raw, in hex or as Go prints a byte
// slice.
func assertNoKeyBytes(t *testing.T, text string, keys ...[]byte) {
	t.Helper()
	for _, k := range keys {
		for _, form := range []string{string(k[:4]), hex.EncodeToString(k[:4]), strings.Trim(fmt.Sprint(k[:4]), "[]")} {
			if strings.Contains(text, form) {
				t.Fatalf("key bytes %q in %q", form, text)
			}
		}
	}
}

var sealLogin = &Login{Session: "s", ID: "1", PollKey: "p"}

// TestSealOpensUnderPreviousKey: a result sealed under a key that is now in PreviousSealKeys
// opens, whatever its place in the list.
func TestSealOpensUnderPreviousKey(t *testing.T) {
	k1, k2, k3 := sealKey(0x51), sealKey(0x52), sealKey(0x53)
	rotated := mustSealer(t, k3, k2, k1)
	for i, k := range [][]byte{k3, k2, k1} {
		sealed := mustSealer(t, k).seal([]byte("tokens"), sealLogin)
		if got, err := rotated.open(sealed, sealLogin); err != nil || string(got) != "tokens" {
			t.Errorf("key %d of the list: %q %v", i, got, err)
		}
	}
}

// TestSealAlwaysUnderCurrentKey: with previous keys, results are sealed under SealKey: they open
// with SealKey alone, and not with the previous keys alone.
func TestSealAlwaysUnderCurrentKey(t *testing.T) {
	cur, prev1, prev2 := sealKey(0x61), sealKey(0x62), sealKey(0x63)
	rotated := mustSealer(t, cur, prev1, prev2)
	current, previous := mustSealer(t, cur), mustSealer(t, prev1, prev2)
	for range 3 {
		sealed := rotated.seal([]byte("tokens"), sealLogin)
		if got, err := current.open(sealed, sealLogin); err != nil || string(got) != "tokens" {
			t.Fatalf("SealKey alone: %q %v", got, err)
		}
		if _, err := previous.open(sealed, sealLogin); err == nil {
			t.Fatal("sealed under a previous key")
		}
	}
}

// TestSealUnknownKeyRefused: with previous keys, a result sealed under a key that is neither
// SealKey nor a previous one fails with errUnseal, as does a result of another login under a
// previous key, a changed result, and a result too short for a nonce and a tag.
func TestSealUnknownKeyRefused(t *testing.T) {
	cur, prev, unknown := sealKey(0x71), sealKey(0x72), sealKey(0x73)
	rotated := mustSealer(t, cur, prev)
	underPrev := mustSealer(t, prev).seal([]byte("tokens"), sealLogin)
	changed := bytes.Clone(underPrev)
	changed[len(changed)-1] ^= 1
	for _, tc := range []struct {
		name   string
		sealed []byte
		l      *Login
	}{
		{"unknown key", mustSealer(t, unknown).seal([]byte("tokens"), sealLogin), sealLogin},
		{"another login under a previous key", underPrev, &Login{Session: "s", ID: "2", PollKey: "p"}},
		{"changed byte", changed, sealLogin},
		{"short", underPrev[:12+15], sealLogin},
		{"empty", nil, sealLogin},
	} {
		got, err := rotated.open(tc.sealed, tc.l)
		if !errors.Is(err, errUnseal) || got != nil {
			t.Errorf("%s: %q %v", tc.name, got, err)
		}
	}
}

// releaseKey is the key of testdata/sealed-release.hex: a result sealed by the release before
// PreviousSealKeys (commit 5b5d8d1), for releaseLogin.
func releaseKey() []byte {
	k := make([]byte, SealKeySize)
	for i := range k {
		k[i] = byte(0xa0 + i)
	}
	return k
}

var releaseLogin = &Login{Session: "5e55104", ID: "10g1n", PollKey: "9011"}

// TestSealOpensReleaseBlob: a result sealed by the release before PreviousSealKeys, under a key
// that is now a previous one, opens and decodes: a store filled before the upgrade, or shared
// with replicas of that release, stays readable while SealKey changes.
func TestSealOpensReleaseBlob(t *testing.T) {
	data, err := os.ReadFile("testdata/sealed-release.hex")
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := mustSealer(t, sealKey(0x01), releaseKey()).open(sealed, releaseLogin)
	if err != nil {
		t.Fatal(err)
	}
	sr, tok, err := decodeResult(plain)
	if err != nil || tok.AccessToken != "at-vector" || tok.RefreshToken != "rt-vector" || sr.AuthReqID != "qr-vector" ||
		sr.Entity == nil || sr.Entity.Subject != "alice" || sr.Entity.Username != "Alice" {
		t.Fatalf("decoded %+v %+v %v", sr, tok, err)
	}
}

// TestSealFormatReadableByRelease: a result sealed with previous keys set keeps the format of
// the release before them (nonce || ciphertext || tag, the same additional data): the opener of
// that release, written out here, opens it, so its replicas collect the logins that upgraded
// replicas approved during a rolling upgrade. (A guard of the format: it passes on that release
// too.)
func TestSealFormatReadableByRelease(t *testing.T) {
	sealed := mustSealer(t, releaseKey(), sealKey(0x01)).seal([]byte("tokens"), releaseLogin)
	block, err := aes.NewCipher(releaseKey())
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	ad := "onesoidc-weblogin-v1\x00" + releaseLogin.Session + "\x00" + releaseLogin.ID + "\x00" + releaseLogin.PollKey
	plain, err := aead.Open(nil, sealed[:12], sealed[12:], []byte(ad))
	if err != nil || string(plain) != "tokens" {
		t.Fatalf("the release's opener: %q %v", plain, err)
	}
}

// TestNewConfigSealKeys: each previous key is checked like SealKey, none may repeat SealKey or
// another, and they need SealKey; the errors name the field and its index, never a key byte.
func TestNewConfigSealKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newClient(t, onesoidctest.NewInMemory())
		on := func(http.ResponseWriter, *http.Request, *onesoidc.LoginResult) error { return nil }
		k1, k2, k3 := sealKey(0x5a), sealKey(0x7e), sealKey(0xc3)
		for _, tc := range []struct {
			name     string
			store    Store
			key      []byte
			previous [][]byte
			field    string
		}{
			{"previous of 16 bytes", nil, k1, [][]byte{k2, k3[:16]}, "PreviousSealKeys[1]"},
			{"previous of 33 bytes", nil, k1, [][]byte{append(bytes.Clone(k2), 0)}, "PreviousSealKeys[0]"},
			{"nil previous", nil, k1, [][]byte{nil}, "PreviousSealKeys[0]"},
			{"previous repeats SealKey", nil, k1, [][]byte{k2, k1}, "PreviousSealKeys[1]"},
			{"previous repeated", nil, k1, [][]byte{k2, k3, k2}, "PreviousSealKeys[2]"},
			{"previous without SealKey", nil, nil, [][]byte{k2}, "PreviousSealKeys"},
			{"previous without SealKey, shared store", NewMemoryStore(), nil, [][]byte{k2}, "PreviousSealKeys"},
			{"short SealKey with previous", nil, k1[:16], [][]byte{k2}, "SealKey"},
			{"rotation", NewMemoryStore(), k1, [][]byte{k2, k3}, ""},
			{"empty list", NewMemoryStore(), k1, [][]byte{}, ""},
		} {
			_, err := New(Config{Client: c, OnLogin: on, Store: tc.store, SealKey: tc.key, PreviousSealKeys: tc.previous})
			var ce *ConfigError
			switch {
			case tc.field == "" && err != nil:
				t.Errorf("%s: %v", tc.name, err)
			case tc.field != "" && (!errors.As(err, &ce) || ce.Field != tc.field):
				t.Errorf("%s: %v, want a ConfigError of %s", tc.name, err, tc.field)
			case err != nil:
				assertNoKeyBytes(t, err.Error(), k1, k2, k3)
			}
		}
	})
}

// TestSealKeyRotationAcrossReplicas: two replicas share one MemoryStore; a login started and
// approved on one (its result sealed there) is collected on the other, both ways, at every stage
// of the rotation that PreviousSealKeys documents, the overlaps included: while step 2 rolls out,
// one replica seals under the new key and the other still under the old one. Skipping step 1, or
// dropping the old key before the logins sealed under it are collected, loses those logins (500,
// nothing logged holds a key).
func TestSealKeyRotationAcrossReplicas(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, nil) // the provider and the device the replicas share
		store := NewMemoryStore()
		oldKey, newKey, otherKey := sealKey(0x3c), sealKey(0xd5), sealKey(0x99)
		replica := func(key []byte, previous ...[]byte) *Handler {
			h, err := New(Config{Client: e.client, OnLogin: e.app.onLogin, Store: store, SealKey: key, PreviousSealKeys: previous,
				Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			if err != nil {
				t.Fatal(err)
			}
			return h
		}
		// handOver starts a login on from, which polls it and seals the approved result, and
		// answers the status request that the browser sends to to.
		handOver := func(from, to *Handler) int {
			b := newBrowser(t)
			wantStatus(t, b.post(from, "/auth/ciba/start", map[string]any{"userIdentifier": "alice"}), http.StatusOK)
			time.Sleep(5 * time.Second)
			l := b.login(&env{h: from}, "ciba")
			if _, err := from.pollOnce(t.Context(), l); err != nil {
				t.Fatal(err)
			}
			if cur, err := store.GetLogin(t.Context(), l.Session, l.ID); err != nil || cur.State != StateApproved {
				t.Fatalf("not approved on the first replica: %+v %v", cur, err)
			}
			return b.post(to, "/auth/ciba/status", nil).Code
		}
		for _, tc := range []struct {
			stage  string
			a, b   *Handler
			ab, ba int // the status of a login handed from a to b, and from b to a
		}{
			{"before", replica(oldKey), replica(oldKey), 200, 200},
			{"step 1 rolling out", replica(oldKey, newKey), replica(oldKey), 200, 200},
			{"step 1 done", replica(oldKey, newKey), replica(oldKey, newKey), 200, 200},
			{"step 2 rolling out", replica(newKey, oldKey), replica(oldKey, newKey), 200, 200},
			{"step 2 done", replica(newKey, oldKey), replica(newKey, oldKey), 200, 200},
			{"step 3 rolling out", replica(newKey), replica(newKey, oldKey), 200, 200},
			{"step 3 done", replica(newKey), replica(newKey), 200, 200},
			{"step 1 skipped", replica(newKey, oldKey), replica(oldKey), 500, 200},
			{"old key dropped before its logins ended", replica(oldKey), replica(newKey), 500, 500},
			{"unknown key", replica(otherKey), replica(newKey, oldKey), 500, 500},
		} {
			if got := handOver(tc.a, tc.b); got != tc.ab {
				t.Errorf("%s: handed from a to b: %d, want %d", tc.stage, got, tc.ab)
			}
			if got := handOver(tc.b, tc.a); got != tc.ba {
				t.Errorf("%s: handed from b to a: %d, want %d", tc.stage, got, tc.ba)
			}
		}
		if n := len(e.app.logins()); n != 14+1 {
			t.Errorf("%d logins delivered, want 15", n)
		}
		logs := e.logs.String()
		if !strings.Contains(logs, errUnseal.Error()) {
			t.Error("a result that does not open is not logged")
		}
		assertNoKeyBytes(t, logs, oldKey, newKey, otherKey)
	})
}

// BenchmarkSealOpen measures opening a result of 2 KB (a CIBA result: ID token, access and
// refresh token) by its place among the keys: each key tried before the one that fits costs one
// failed GCM tag check.
func BenchmarkSealOpen(b *testing.B) {
	keys := [][]byte{sealKey(1), sealKey(2), sealKey(3), sealKey(4)}
	s, err := newSealer(keys[0], keys[1:]...)
	if err != nil {
		b.Fatal(err)
	}
	plain := bytes.Repeat([]byte("x"), 2048)
	for i, k := range append(keys, sealKey(5)) {
		name := fmt.Sprintf("key=%d", i)
		if i == len(keys) {
			name = "key=unknown"
		}
		b.Run(name, func(b *testing.B) {
			sealed := mustSealer(b, k).seal(plain, sealLogin)
			for b.Loop() {
				_, _ = s.open(sealed, sealLogin)
			}
		})
	}
}
