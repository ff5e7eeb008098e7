package weblogin

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ones-now/onesoidc/onesoidctest"
)

// TestConfigPrintsItsSettingsButNoSealKeyByte: %v, %+v and %#v of a Config show its settings as
// fmt shows a struct, with the seal keys as "[redacted: …]"; no verb, nesting or slog handler
// shows a key byte; an empty key prints as "[]".
func TestConfigPrintsItsSettingsButNoSealKeyByte(t *testing.T) {
	t.Parallel()
	key, old := bytes.Repeat([]byte{0xA7}, SealKeySize), bytes.Repeat([]byte{0x5C}, SealKeySize)
	cfg := Config{SealKey: key, PreviousSealKeys: [][]byte{old, key}, Prefix: "/login", MaxPending: 7,
		Scope: []string{"openid", "email"}, RetryAfter: 3 * time.Second}
	for verb, want := range map[string][]string{
		"%+v": {"SealKey:[redacted: 32 bytes]", "PreviousSealKeys:[redacted: 2 keys]", "Prefix:/login", "MaxPending:7",
			"Scope:[openid email]", "RetryAfter:3s", "Client:OpenIDConnectClient(nil)"},
		"%v":  {"[redacted: 32 bytes]", "/login", " 7 "},
		"%#v": {"weblogin.Config{", `Prefix:"/login"`, "SealKey:[redacted: 32 bytes]"},
	} {
		got := fmt.Sprintf(verb, cfg)
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("%s = %s, want it to hold %q", verb, got, w)
			}
		}
	}
	var outs []string
	for _, v := range []any{cfg, &cfg, []any{cfg}, []*Config{&cfg}, struct{ C *Config }{&cfg}, cfg.SealKey, cfg.PreviousSealKeys} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%o", "%b", "%c", "%U", "%t"} {
			outs = append(outs, fmt.Sprintf(verb, v))
		}
		var buf bytes.Buffer
		for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
			slog.New(h).Info("config", "v", v, slog.Group("g", "v", v))
		}
		outs = append(outs, buf.String())
	}
	for _, out := range outs {
		for _, k := range [][]byte{key, old} {
			for _, form := range []string{string(k), hex.EncodeToString(k), strings.ToUpper(hex.EncodeToString(k)),
				strings.Trim(fmt.Sprint(k), "[]"), "0xa7, 0xa7", "0x5c, 0x5c", "167 167", "92 92"} {
				if strings.Contains(out, form) {
					t.Fatalf("output shows a seal key: %s", out)
				}
			}
		}
	}
	if got := fmt.Sprint(Config{}.SealKey, Config{}.PreviousSealKeys); got != "[] []" {
		t.Errorf("empty keys print %q", got)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "cfg", cfg)
	if !strings.Contains(buf.String(), `"seal_key":"[redacted: 32 bytes]"`) || !strings.Contains(buf.String(), `"prefix":"/login"`) {
		t.Errorf("JSON log %s", buf.String())
	}
}

// TestLoginPrintsEveryFieldButItsSecrets: a Login prints every field under its JSON name (so that
// a field added later must be described too), with the auth_req_id redacted and the session and
// poll key hashes cut to 8 digits; slog logs it the same way.
func TestLoginPrintsEveryFieldButItsSecrets(t *testing.T) {
	t.Parallel()
	const authReqID = "auth-req-id-1f6b2c9e8d7a"
	l := Login{Session: hashHex("cookie value"), ID: "login-id", Kind: KindCIBA, AuthReqID: authReqID, PollKey: hashHex(authReqID),
		NotifyHash: bytes.Repeat([]byte{0xEE}, 32), Binding: "K7QM-2XPA", State: StatePending, ErrCode: "none"}
	text := fmt.Sprintf("%+v", l)
	typ := reflect.TypeFor[Login]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if !strings.Contains(text, name+": ") {
			t.Errorf("%%+v = %s, which does not name %s", text, name)
		}
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("login", "login", &l)
	for _, out := range []string{text, fmt.Sprintf("%#v", &l), fmt.Sprintf("%s", []*Login{&l}), buf.String()} {
		for _, secret := range []string{authReqID, l.Session, l.PollKey, hex.EncodeToString(l.NotifyHash), "238 238"} {
			if strings.Contains(out, secret) {
				t.Errorf("%s shows a secret", out)
			}
		}
		if !strings.Contains(out, l.Session[:8]) || !strings.Contains(out, "login-id") {
			t.Errorf("%s does not show the session's start or the login id", out)
		}
	}
}

// TestHandlerAndStorePrintNoSecret: a Handler prints its settings, never its seal keys, which fmt
// would otherwise reach through its unexported Config; a MemoryStore prints how many logins it
// holds, never a login or sealed result.
func TestHandlerAndStorePrintNoSecret(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{0xC3}, SealKeySize)
	store := NewMemoryStore()
	h, err := New(Config{Client: newClient(t, onesoidctest.NewInMemory()), OnLogin: (&app{}).onLogin, Store: store, SealKey: key, Prefix: "/in"})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.FinishLogin(t.Context(), &Login{Session: "s", ID: "i"}, []byte("sealed-result-bytes"), time.Now()); err == nil {
		t.Fatal("finished a login that does not exist")
	}
	if err := store.CreateLogin(t.Context(), &Login{Session: "s", ID: "i", AuthReqID: "auth-req-id-55aa", KeepUntil: time.Now().Add(time.Hour)}, time.Now(), Limits{1, 1}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []any{h, []any{h}, struct{ H *Handler }{h}, store, []any{store}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
			out := fmt.Sprintf(verb, v)
			for _, secret := range []string{string(key), hex.EncodeToString(key), "195 195", "0xc3", "auth-req-id-55aa"} {
				if strings.Contains(out, secret) {
					t.Fatalf("%s of %T shows a secret: %s", verb, v, out)
				}
			}
		}
	}
	if got := fmt.Sprint(h); !strings.Contains(got, "prefix: /in") || !strings.Contains(got, "*weblogin.MemoryStore") {
		t.Errorf("Handler prints %q", got)
	}
	if got := fmt.Sprint(store); got != "weblogin.MemoryStore{logins: 1}" {
		t.Errorf("MemoryStore prints %q", got)
	}
}
