//go:build browser

package browsertest

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ones-now/onesoidc/examples/webserver/app"
	"github.com/ones-now/onesoidc/onesoidctest"
)

// site is the example server on loopback, against the fake IdP.
type site struct {
	idp *onesoidctest.Server
	url string
}

func startSite(t *testing.T) *site {
	t.Helper()
	idp, client, err := app.StartFakeIdP(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	a, err := app.New(app.Options{Client: client, APIAudience: client.Metadata().Issuer})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return &site{idp: idp, url: srv.URL}
}

// browser starts Debian's headless Chromium with a fresh profile and returns its context.
func browser(t *testing.T) context.Context {
	t.Helper()
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Fatal("chromium is not on PATH: install the Debian package chromium (.ci/run does)")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(900, 1000),
	)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	return bctx
}

// screenshot saves a full-page PNG into $BROWSERTEST_SCREENSHOTS (default: the test's temp dir).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("BROWSERTEST_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", path)
}

// TestBrowserCIBALogin logs in with CIBA through the page: the page shows the binding code the
// IdP received and a countdown, the fake IdP approves, the page shows the identity and the
// result of the protected API, and no token or session cookie is readable by the page.
func TestBrowserCIBALogin(t *testing.T) {
	s := startSite(t)
	ctx := browser(t)
	err := chromedp.Do(ctx,
		chromedp.Navigate(s.url),
		chromedp.WaitVisible(chromedp.ID("ciba-form")),
		chromedp.SendKeys(chromedp.ID("user"), "alice"),
		chromedp.Click(chromedp.ID("ciba-start")),
		chromedp.WaitVisible(chromedp.ID("ciba-code")),
	)
	if err != nil {
		t.Fatal(err)
	}
	code := text(t, ctx, "ciba-code")
	countdown := text(t, ctx, "ciba-countdown")
	recs := s.idp.CIBARequests()
	if len(recs) != 1 || recs[0].Params["binding_message"] == "" || code != recs[0].Params["binding_message"] {
		t.Fatalf("page shows %q, the phone got %q", code, recs[0].Params["binding_message"])
	}
	if !strings.HasSuffix(countdown, "s left") {
		t.Fatalf("countdown %q", countdown)
	}
	screenshot(t, ctx, "ciba-pending.png")

	err = chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.ID("signed-in")),
		chromedp.Click(chromedp.ID("call-api")),
		pollTrue(`document.getElementById("api-result").textContent.includes("hello")`),
	)
	if err != nil {
		t.Fatal(err)
	}
	who, api := text(t, ctx, "who"), text(t, ctx, "api-result")
	cookies, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`))
	if err != nil {
		t.Fatal(err)
	}
	html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		t.Fatal(err)
	}
	if who != "Alice" {
		t.Fatalf("identity shown: %q", who)
	}
	var body struct {
		Status int               `json:"status"`
		Body   map[string]string `json:"body"`
	}
	if err := json.Unmarshal([]byte(api), &body); err != nil || body.Status != 200 || body.Body["hello"] != "alice" {
		t.Fatalf("API result %q", api)
	}
	if cookies != "" {
		t.Fatalf("the page can read cookies: %q", cookies)
	}
	if strings.Contains(html, "eyJ") || strings.Contains(html, "rt-") || strings.Contains(html, recs[0].AuthReqID) {
		t.Fatal("a token or the auth_req_id reached the page")
	}
	screenshot(t, ctx, "ciba-signed-in.png")
}

// decodeQR reads the QR code of a PNG with zbarimg (Debian package zbar-tools), or reports
// false when zbarimg is not installed.
func decodeQR(t *testing.T, png []byte) (string, bool) {
	t.Helper()
	bin, err := exec.LookPath("zbarimg")
	if err != nil {
		return "", false
	}
	path := filepath.Join(t.TempDir(), "qr.png")
	if err := os.WriteFile(path, png, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--raw", "-q", path).Output()
	if err != nil {
		t.Fatalf("zbarimg found no QR code: %v", err)
	}
	return strings.TrimSpace(string(out)), true
}

// text returns the text of the element with id.
func text(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(id)))
	if err != nil {
		t.Fatalf("text of #%s: %v", id, err)
	}
	return v
}

// pollTrue waits until the JavaScript expression is true.
func pollTrue(expr string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Poll[bool](expr)(ctx, tg)
		return chromedp.Void{}, err
	}
}

// TestBrowserQRLogin starts an ONES QR login on the page: the QR code the page shows decodes to
// {"auth_req_id","deviceId"} of the session the fake IdP opened, the code beside it is shown
// with a countdown, and the fake IdP's approval signs the page in.
func TestBrowserQRLogin(t *testing.T) {
	s := startSite(t)
	ctx := browser(t)
	err := chromedp.Do(ctx,
		chromedp.Navigate(s.url),
		chromedp.WaitVisible(chromedp.ID("qr-start")),
		chromedp.Click(chromedp.ID("qr-start")),
		chromedp.WaitVisible(chromedp.ID("qr-image")),
		pollTrue(`document.getElementById("qr-image").complete && document.getElementById("qr-image").naturalWidth > 0`),
	)
	if err != nil {
		t.Fatal(err)
	}
	sessions := s.idp.QRSessions()
	if len(sessions) != 1 {
		t.Fatalf("%d QR sessions", len(sessions))
	}
	code, countdown := text(t, ctx, "qr-code"), text(t, ctx, "qr-countdown")
	if len(code) != 8 || !strings.HasSuffix(strings.ToUpper(strings.ReplaceAll(sessions[0].AuthReqID, "-", "")), code) ||
		!strings.HasSuffix(countdown, "s left") {
		t.Fatalf("code %q, countdown %q", code, countdown)
	}
	png, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.ID("qr-image")))
	if err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "qr-pending.png")
	payload, ok := decodeQR(t, png)
	if !ok {
		t.Fatal("zbarimg is not on PATH: install the Debian package zbar-tools (.ci/run does)")
	}
	var got struct {
		AuthReqID string `json:"auth_req_id"`
		DeviceID  string `json:"deviceId"`
	}
	if err := json.Unmarshal([]byte(payload), &got); err != nil || got.AuthReqID != sessions[0].AuthReqID || got.DeviceID != app.FakeDeviceID {
		t.Fatalf("QR code holds %q", payload)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("signed-in"))); err != nil {
		t.Fatal(err)
	}
	if who := text(t, ctx, "who"); who != "alice" {
		t.Fatalf("identity shown: %q", who)
	}
}
