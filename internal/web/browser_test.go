package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/valetkey/valetkey/internal/store"
	"github.com/valetkey/valetkey/internal/testkit"
)

// browserPath finds Chromium. Without one the browser tests skip, unless
// VALETKEY_REQUIRE_BROWSER is set (CI), where a skip would hide them.
func browserPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("VALETKEY_CHROME"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("VALETKEY_REQUIRE_BROWSER") != "" {
		t.Fatal("VALETKEY_REQUIRE_BROWSER is set but no Chromium was found (apt-get install chromium)")
	}
	t.Skip("no Chromium found: install Debian's chromium (apt-get install chromium) to run the widget's browser tests")
	return ""
}

// screenshotDir is where the tests save a PNG of each screen:
// VALETKEY_SCREENSHOTS, or the test's temporary directory.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("VALETKEY_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// browser starts a headless Chromium with site isolation on (as users have
// it): a widget on another site is an out-of-process iframe target.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := browserPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1000, 900),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelT(); cancelB(); cancelA() })
	if err := chromedp.Do(ctx, focusEmulation); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return ctx
}

// attach waits for a target the page opened (iframe or popup) and returns a
// context that drives it.
func attach(t *testing.T, ctx context.Context, what string, match func(*target.Info) bool) context.Context {
	t.Helper()
	for {
		infos, err := chromedp.Targets(ctx)
		if err != nil {
			t.Fatalf("targets: %v", err)
		}
		for _, info := range infos {
			if match(info) {
				tctx, cancel := chromedp.NewContext(ctx, chromedp.WithTargetID(info.TargetID))
				t.Cleanup(cancel)
				run(t, tctx, "focus emulation", focusEmulation)
				return tctx
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no %s target appeared: %v", what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// focusEmulation makes a headless target behave as if its window had focus,
// so a focused element in an out-of-process frame keeps its focus.
var focusEmulation = chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
	_, err := cdp.Call(ctx, t, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true})
	return err
})

func run(t *testing.T, ctx context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
}

func get[T any](t *testing.T, ctx context.Context, step string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	return v
}

// css is a CSS selector (a plain string would be a text search).
func css(s string) chromedp.CSS { return chromedp.CSS(s) }

func shot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png := get(t, ctx, "screenshot "+name, chromedp.CaptureScreenshot())
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// typeInto types text into an element of a frame target: a click focuses
// it (a CDP DOM.focus alone does not move the browser's focused frame, so
// the out-of-process frame loses focus after the first key), then the keys.
func typeInto(t *testing.T, frame context.Context, sel, text string) {
	t.Helper()
	run(t, frame, "focus "+sel, chromedp.Click(css(sel)))
	run(t, frame, "type into "+sel, chromedp.KeyEvent(text))
}

// hostEvent is what embed.js hands the host page's onEvent.
type hostEvent struct {
	Type         string `json:"type"`
	Event        string `json:"event"`
	ConnectionID string `json:"connection_id"`
	ShortName    string `json:"short_name"`
}

// waitEvents polls the host page until it has received n events.
func waitEvents(t *testing.T, ctx context.Context, n int) []hostEvent {
	t.Helper()
	for {
		raw := get(t, ctx, "read host events", chromedp.Evaluate[string](`JSON.stringify(window.events || [])`))
		var evs []hostEvent
		if err := json.Unmarshal([]byte(raw), &evs); err != nil {
			t.Fatal(err)
		}
		if len(evs) >= n {
			return evs
		}
		select {
		case <-ctx.Done():
			t.Fatalf("host page has %d events, want %d: %s", len(evs), n, raw)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

var hostPage = template.Must(template.New("host").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title></head>
<body style="font-family:sans-serif;background:#eef2f7;margin:0;padding:16px">
<h1 style="font-size:18px">{{.Title}}</h1>
<button id="open" type="button">Connect an account</button>
<div id="slot" style="width:480px;height:720px;background:#fff;border-radius:12px;overflow:hidden"></div>
<script src="{{.Valetkey}}/embed.js"></script>
<script src="/app.js"></script>
</body></html>`))

// host serves a page that embeds the widget through embed.js and records
// every event; /direct embeds the widget URL with a plain iframe instead.
func host(t *testing.T, title, valetkey string, token func() string) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		_ = hostPage.Execute(w, map[string]string{"Title": title, "Valetkey": valetkey})
	})
	mux.HandleFunc("GET /done", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "<!doctype html><title>Back in the app</title>")
	})
	mux.HandleFunc("GET /app.js", func(w http.ResponseWriter, r *http.Request) {
		tok, _ := json.Marshal(token())
		w.Header().Set("Content-Type", "text/javascript")
		fmt.Fprintf(w, `window.events = []; window.messages = [];
window.addEventListener("message", (e) => window.messages.push(e.data));
const q = new URLSearchParams(location.search);
const theme = q.get("theme") || undefined;
if (q.get("mode") === "popup") {
  document.getElementById("open").addEventListener("click", () => {
    window.handle = Valetkey.open({token: %[1]s, mode: "popup", onEvent: (e) => window.events.push(e), onClose: () => { window.widgetClosed = true; }});
  });
} else {
  window.handle = Valetkey.open({token: %[1]s, container: "#slot", theme, onEvent: (e) => window.events.push(e)});
  document.querySelector("#slot iframe").addEventListener("load", () => { window.frameLoaded = true; });
}`, tok)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// onLocalhost names a loopback test server by "localhost": another site than
// 127.0.0.1, so the widget is a third-party iframe as in production.
func onLocalhost(u string) string { return strings.Replace(u, "127.0.0.1", "localhost", 1) }

func inFrame(valetkey string) func(*target.Info) bool {
	return func(i *target.Info) bool {
		return i.Type == "iframe" && strings.HasPrefix(i.URL, valetkey+"/embedded-widget")
	}
}

func TestWidgetInBrowser(t *testing.T) {
	ctx := browser(t)
	shots := screenshotDir(t)
	e := testkit.NewOAuthEnv(t, testkit.SQLiteURL(t))
	s := e.S
	r := s.Do(t, s.Key, "PUT", "/organization/branding", map[string]any{"display_name": "Acme CRM", "accent_color": "#0a7cff"})
	if r.Status != 200 {
		t.Fatalf("branding: %d %s", r.Status, r.Body)
	}

	// The team's backend mints a widget token for its user and this page.
	var op string
	{
		o, _ := s.App.Tenants.Organization(t.Context(), "default")
		a, secret, err := s.App.Embedded.CreateApplication(t.Context(), o.ID, "backend")
		if err != nil {
			t.Fatal(err)
		}
		r := s.Do(t, "", "POST", "/api/v1/account/applications/token", map[string]any{"client_id": a.ClientID, "client_secret": secret.Reveal()})
		op = r.Map(t)["access_token"].(string)
	}
	var hostOrigin string
	widgetToken := func(origin string) string {
		r := s.DoWith(t, "", "POST", "/api/v1/embedded/widget_token", map[string]any{"externalUserId": "user-42", "allowedOrigin": origin},
			http.Header{"Authorization": {"Bearer " + op}})
		if r.Status != 200 {
			t.Fatalf("widget_token: %d %s", r.Status, r.Body)
		}
		return r.Map(t)["token"].(string)
	}
	h := host(t, "Acme CRM — Integrations", s.URL, func() string { return widgetToken(hostOrigin) })
	hostOrigin = onLocalhost(h.URL)

	// 1. The grid of sources, searchable.
	run(t, ctx, "open host page", chromedp.Navigate(hostOrigin+"/"))
	w := attach(t, ctx, "widget iframe", inFrame(s.URL))
	run(t, w, "grid", chromedp.WaitVisible(css(`#grid [data-source="stripe"]`)), chromedp.WaitVisible(css(`#grid [data-source="testoauth"]`)))
	if org := get(t, w, "branding", chromedp.Text(css(`#org-name`))); org != "Acme CRM" {
		t.Fatalf("organization name = %q", org)
	}
	if get(t, w, "url", chromedp.Evaluate[bool](`location.href.includes("token")`)) {
		t.Fatal("the widget's URL carries the token")
	}
	shot(t, ctx, shots, "1-sources")
	typeInto(t, w, `#search`, "strip")
	run(t, w, "search", chromedp.WaitNotPresent(css(`#grid [data-source="testoauth"]`)),
		chromedp.WaitVisible(css(`#grid [data-source="stripe"]`)))
	shot(t, ctx, shots, "2-search")

	// 2. An API-key source: a wrong key first, its 422 message next to the field.
	const keyInput = `#f-auth_fields-api_key`
	run(t, w, "open stripe form", chromedp.Click(css(`#grid [data-source="stripe"]`)), chromedp.WaitVisible(css(keyInput)))
	typeInto(t, w, keyInput, "not-a-stripe-key")
	run(t, w, "wrong key", chromedp.Click(css(`form button[type="submit"]`)),
		chromedp.WaitVisible(css(keyInput+"-error")))
	fieldErr := get(t, w, "read field error", chromedp.Text(css(keyInput+"-error")))
	invalid := get(t, w, "aria-invalid", chromedp.AttributeValue(css(keyInput), "aria-invalid"))
	labelled := get(t, w, "labels", chromedp.Evaluate[bool](`document.querySelector('label[for="f-auth_fields-api_key"]') !== null &&
		document.getElementById("f-auth_fields-api_key").getAttribute("aria-describedby").includes("f-auth_fields-api_key-error")`))
	if !strings.Contains(fieldErr, "does not match the expected format") || invalid.Value != "true" || !labelled {
		t.Fatalf("field error %q, aria-invalid %q, labelled %v", fieldErr, invalid.Value, labelled)
	}
	shot(t, ctx, shots, "3-form-error")
	const stripeKey = "sk_test_BROWSERSECRET4242"
	get(t, w, "clear key", chromedp.Evaluate[bool](`(document.getElementById("f-auth_fields-api_key").value = "") === ""`))
	typeInto(t, w, keyInput, stripeKey)
	run(t, w, "right key", chromedp.Click(css(`form button[type="submit"]`)), chromedp.WaitVisible(css(`.connection [data-action="disconnect"]`)))
	evs := waitEvents(t, ctx, 1)
	if evs[0].Type != "valetkey:connection" || evs[0].Event != "created" || evs[0].ShortName != "stripe" || evs[0].ConnectionID == "" {
		t.Fatalf("first event = %+v", evs[0])
	}
	stripeID := evs[0].ConnectionID

	// 3. An OAuth source: consent in a popup on the authorization server.
	consentPopup := func(i *target.Info) bool {
		return i.Type == "page" && strings.HasPrefix(i.URL, e.AS.URL+"/oauth2/consent")
	}
	run(t, w, "start oauth", chromedp.Click(css(`#grid [data-source="testoauth"]`)), chromedp.WaitVisible(css(`.progress`)))
	shot(t, ctx, shots, "4-oauth-progress")
	popup := attach(t, ctx, "consent popup", consentPopup)
	run(t, popup, "consent page", chromedp.WaitVisible(css(`button[value="approve"]`)))
	shot(t, popup, shots, "5-consent")
	run(t, popup, "approve", chromedp.Click(css(`button[value="approve"]`)))
	evs = waitEvents(t, ctx, 2)
	if evs[1].Event != "created" || evs[1].ShortName != "testoauth" {
		t.Fatalf("second event = %+v", evs[1])
	}
	oauthID := evs[1].ConnectionID
	if c := s.Do(t, s.Key, "GET", "/source-connections/"+oauthID, nil).Map(t); c["status"] != "active" {
		t.Fatalf("oauth connection = %v", c)
	}
	run(t, w, "list", chromedp.WaitVisible(css(fmt.Sprintf(`.connection[data-id="%s"][data-status="active"]`, oauthID))))
	shot(t, ctx, shots, "6-connections")

	// 4. Reconnect a needs_reauth connection (dark theme this time).
	s.SetStatus(t, oauthID, store.StatusNeedsReauth)
	run(t, ctx, "reopen host page", chromedp.Navigate(hostOrigin+"/?theme=dark"))
	w = attach(t, ctx, "widget iframe", inFrame(s.URL))
	reconnect := css(fmt.Sprintf(`.connection[data-id="%s"] [data-action="reconnect"]`, oauthID))
	run(t, w, "needs reauth shown", chromedp.WaitVisible(reconnect))
	shot(t, ctx, shots, "7-needs-reauth-dark")
	run(t, w, "reconnect", chromedp.Click(reconnect))
	popup = attach(t, ctx, "consent popup", consentPopup)
	run(t, popup, "approve again", chromedp.WaitVisible(css(`button[value="approve"]`)), chromedp.Click(css(`button[value="approve"]`)))
	evs = waitEvents(t, ctx, 1)
	if evs[0].Event != "reconnected" || evs[0].ConnectionID != oauthID {
		t.Fatalf("reconnect event = %+v", evs[0])
	}
	if c := s.Do(t, s.Key, "GET", "/source-connections/"+oauthID, nil).Map(t); c["status"] != "active" {
		t.Fatalf("after reconnect = %v", c)
	}

	// 5. Disconnect (asks once more before it deletes).
	disconnect := fmt.Sprintf(`.connection[data-id="%s"] [data-action="disconnect"]`, stripeID)
	run(t, w, "disconnect", chromedp.WaitVisible(css(disconnect)), chromedp.Click(css(disconnect)), chromedp.WaitVisible(css(disconnect+".danger")))
	shot(t, ctx, shots, "8-confirm-disconnect")
	run(t, w, "confirm", chromedp.Click(css(disconnect)), chromedp.WaitNotPresent(css(fmt.Sprintf(`.connection[data-id="%s"]`, stripeID))))
	evs = waitEvents(t, ctx, 2)
	if evs[1].Event != "deleted" || evs[1].ConnectionID != stripeID || evs[1].ShortName != "stripe" {
		t.Fatalf("delete event = %+v", evs[1])
	}
	if r := s.Do(t, s.Key, "GET", "/source-connections/"+stripeID, nil); r.Status != 404 {
		t.Fatalf("deleted connection answers %d", r.Status)
	}
	page := get(t, w, "page text", chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	if strings.Contains(page, stripeKey) || strings.Contains(s.Bodies.String()+s.Logs.String(), stripeKey) {
		t.Fatal("the API key was echoed back")
	}
}

// TestWidgetRefusesOtherOrigins: a page on an origin the token does not
// name can neither frame the widget nor hear its events.
func TestWidgetRefusesOtherOrigins(t *testing.T) {
	ctx := browser(t)
	s := testkit.NewServer(t, testkit.SQLiteURL(t))
	const good = "https://app.example.com"
	r := s.Do(t, s.Key, "POST", "/connect/sessions", map[string]any{"external_user_id": "u1", "allowed_origin": good})
	if r.Status != 200 {
		t.Fatalf("session: %d %s", r.Status, r.Body)
	}
	token := r.Map(t)["token"].(string)

	// a) embed.js from another origin: the widget URL names the good origin,
	// so frame-ancestors refuses the frame and nothing is posted to the page.
	evil := host(t, "Evil", s.URL, func() string { return token })
	evilOrigin := onLocalhost(evil.URL)
	run(t, ctx, "open evil page", chromedp.Navigate(evilOrigin+"/"))
	for !get(t, ctx, "frame loaded", chromedp.Evaluate[bool](`window.frameLoaded === true`)) {
		run(t, ctx, "wait", chromedp.Sleep(50*time.Millisecond))
	}
	infos, err := chromedp.Targets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range infos {
		if i.Type == "iframe" && strings.Contains(i.URL, "/embedded-widget") {
			w, cancel := chromedp.NewContext(ctx, chromedp.WithTargetID(i.TargetID))
			t.Cleanup(cancel) // cancelling now would close the page's target
			hasWidget, err := chromedp.Run(w, chromedp.Evaluate[bool](`document.getElementById("main") !== null`))
			if err != nil {
				t.Fatalf("inspect the refused frame: %v", err)
			}
			if hasWidget {
				t.Fatalf("the widget rendered inside %s", evilOrigin)
			}
		}
	}
	if raw := get(t, ctx, "messages", chromedp.Evaluate[string](`JSON.stringify(window.messages)`)); raw != "[]" {
		t.Fatalf("evil page received %s", raw)
	}

	// b) a frame that claims the evil origin: the page frames, but the
	// session names another origin, so the widget stops and posts nothing.
	u := s.URL + "/embedded-widget?" + url.Values{"allowedOrigin": {evilOrigin}}.Encode()
	js := fmt.Sprintf(`(() => { window.messages = []; window.addEventListener("message", (e) => { window.messages.push(e.data);
  if (e.data && e.data.type === "valetkey:ready") e.source.postMessage({type: "valetkey:token", token: %q}, %q); });
document.getElementById("slot").remove();
const f = document.createElement("iframe"); f.src = %q; f.style.width = "480px"; f.style.height = "400px"; document.body.append(f); return true; })()`, token, s.URL, u)
	run(t, ctx, "claimed origin", chromedp.Navigate(evilOrigin+"/"))
	get(t, ctx, "frame it", chromedp.Evaluate[bool](js))
	w := attach(t, ctx, "widget iframe", func(i *target.Info) bool { return i.Type == "iframe" && i.URL == u })
	run(t, w, "refusal", chromedp.WaitVisible(css(`.error-box`)))
	if msg := get(t, w, "refusal text", chromedp.Text(css(`.error-box`))); !strings.Contains(msg, "does not allow") {
		t.Fatalf("widget says %q", msg)
	}
	raw := get(t, ctx, "messages", chromedp.Evaluate[string](`JSON.stringify(window.messages)`))
	if !strings.Contains(raw, "valetkey:ready") || strings.Contains(raw, "valetkey:connection") || strings.Contains(raw, "valetkey:close") {
		t.Fatalf("evil page received %s", raw)
	}
}

// TestWidgetPopupAndPage: embed.js in popup mode, and the Connect session's
// url opened as a page of its own (token in the fragment, moved to memory,
// redirect_url when done).
func TestWidgetPopupAndPage(t *testing.T) {
	ctx := browser(t)
	s := testkit.NewServer(t, testkit.SQLiteURL(t))
	var hostOrigin string
	session := func(extra map[string]any) map[string]any {
		body := map[string]any{"external_user_id": "u-popup", "allowed_origin": hostOrigin, "allowed_sources": []string{"stripe"}}
		for k, v := range extra {
			body[k] = v
		}
		r := s.Do(t, s.Key, "POST", "/connect/sessions", body)
		if r.Status != 200 {
			t.Fatalf("session: %d %s", r.Status, r.Body)
		}
		return r.Map(t)
	}
	h := host(t, "Popup host", s.URL, func() string { return session(nil)["token"].(string) })
	hostOrigin = onLocalhost(h.URL)

	run(t, ctx, "open host", chromedp.Navigate(hostOrigin+"/?mode=popup"), chromedp.WaitVisible(css(`#open`)), chromedp.Click(css(`#open`)))
	w := attach(t, ctx, "widget popup", func(i *target.Info) bool {
		return i.Type == "page" && strings.HasPrefix(i.URL, s.URL+"/embedded-widget")
	})
	run(t, w, "only the allowed source", chromedp.WaitVisible(css(`#grid [data-source="stripe"]`)))
	if n := get(t, w, "cards", chromedp.Evaluate[int](`document.querySelectorAll("#grid .card").length`)); n != 1 {
		t.Fatalf("%d sources offered, want 1", n)
	}
	run(t, w, "form", chromedp.Click(css(`#grid [data-source="stripe"]`)), chromedp.WaitVisible(css(`#f-auth_fields-api_key`)))
	typeInto(t, w, `#f-auth_fields-api_key`, "sk_live_POPUP123")
	run(t, w, "submit", chromedp.Click(css(`form button[type="submit"]`)), chromedp.WaitVisible(css(`.connection[data-status="active"]`)))
	if evs := waitEvents(t, ctx, 1); evs[0].Event != "created" || evs[0].ShortName != "stripe" {
		t.Fatalf("event = %+v", evs[0])
	}
	run(t, w, "close", chromedp.Click(css(`#close`)))
	for !get(t, ctx, "closed", chromedp.Evaluate[bool](`window.widgetClosed === true`)) {
		run(t, ctx, "wait", chromedp.Sleep(50*time.Millisecond))
	}

	// The session url as a top-level page: the token leaves the address bar
	// at once, and finishing sends the browser to redirect_url.
	m := session(map[string]any{"redirect_url": h.URL + "/done", "allowed_origin": ""})
	run(t, ctx, "open url", chromedp.Navigate(m["url"].(string)), chromedp.WaitVisible(css(`#grid [data-source="stripe"]`)))
	if href := get(t, ctx, "href", chromedp.Evaluate[string](`location.href`)); strings.Contains(href, "token") {
		t.Fatalf("the token stayed in the URL: %s", href)
	}
	run(t, ctx, "form", chromedp.Click(css(`#grid [data-source="stripe"]`)), chromedp.WaitVisible(css(`#f-auth_fields-api_key`)))
	typeInto(t, ctx, `#f-auth_fields-api_key`, "sk_live_PAGE456")
	run(t, ctx, "submit", chromedp.Click(css(`form button[type="submit"]`)))
	for {
		href := get(t, ctx, "href", chromedp.Evaluate[string](`location.href`))
		if strings.HasPrefix(href, h.URL+"/done?") {
			u, _ := url.Parse(href)
			if u.Query().Get("status") != "success" || u.Query().Get("source_connection_id") == "" {
				t.Fatalf("redirected to %s", href)
			}
			break
		}
		run(t, ctx, "wait", chromedp.Sleep(50*time.Millisecond))
	}
}
