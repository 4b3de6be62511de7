//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/jwtd/jwtd/internal/apikey"
)

// The console in Debian's headless Chromium against a real jwtd: sign in,
// inspect a token the test minted, look up its XID, revoke it and see the
// status change, page through a phone's records, see the keys and the
// chart; a key without the admin scope sees no revoke and the API refuses
// it; no request leaves for another origin and the page logs no error.
// With JWTD_SCREENSHOTS=dir, each screen is saved there (docs/ holds them).
func TestConsoleInBrowser(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("JWTD_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatal("chromium is not installed (make test installs it), and JWTD_TEST_REQUIRE_SERVICES=1")
		}
		t.Skip("chromium is not installed (make test installs it)")
	}
	const viewerKey = "viewer-key-0123456789"
	dir := t.TempDir()
	cfg := writeFile(t, dir, "c.yaml", fmt.Sprintf(`
ratelimit: {routes: {token: [], issue: [], generate: [], verify: []}}
phone: {default_region: US}
api_keys:
  - {name: ops, sha256: %q, scopes: [admin, issue, introspect, outcome]}
  - {name: viewer, sha256: %q, scopes: [introspect]}
`, apikey.Hash(testAdminKey), apikey.Hash(viewerKey)))
	base, _ := startServe(t, nil, "--config", cfg, "--data-dir", filepath.Join(dir, "data"))
	code, tok := httpDo(t, "GET", base+"/v1/token/+14155552671/tx-console", "", "", "")
	if code != 200 {
		t.Fatalf("mint: %d %s", code, tok)
	}
	tok = strings.TrimSpace(tok)
	for i := range 12 {
		httpDo(t, "GET", fmt.Sprintf("%s/v1/token/+14155550123/tx-page-%d", base, i), "", "", "")
	}
	httpDo(t, "POST", base+"/v1/transactions/tx-console/outcome", testAdminKey, "application/json", `{"code":2400,"source":"test"}`)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profileDir(t)), chromedp.WindowSize(1200, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	defer cancelTimeout()

	var mu sync.Mutex
	var requests, problems []string
	chromedp.ListenTarget(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			requests = append(requests, ev.Request.URL)
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.APITypeError || ev.Type == runtime.APITypeWarning {
				problems = append(problems, fmt.Sprintf("console.%s %v", ev.Type, ev.Args))
			}
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+ev.ExceptionDetails.Error())
		case *log.EventEntryAdded:
			// The failures the test asks for on purpose are no problem.
			if strings.HasPrefix(ev.Entry.URL, base+"/v1/tokens/tx-unknown") || strings.HasPrefix(ev.Entry.URL, base+"/v1/tokens?phone=12&") {
				return
			}
			if ev.Entry.Level == log.LevelError || ev.Entry.Level == log.LevelWarning {
				problems = append(problems, fmt.Sprintf("log %s: %s %s", ev.Entry.Level, ev.Entry.Text, ev.Entry.URL))
			}
		}
	})
	shots := os.Getenv("JWTD_SCREENSHOTS")
	shot := func(name string) chromedp.Action {
		return chromedp.ActionFunc(func(ctx context.Context) error {
			if shots == "" {
				return nil
			}
			var png []byte
			if err := chromedp.FullScreenshot(&png, 100).Do(ctx); err != nil { // quality 100: PNG
				return err
			}
			return os.WriteFile(filepath.Join(shots, "console-"+name+".png"), png, 0o644)
		})
	}
	step := func(name string, actions ...chromedp.Action) {
		t.Helper()
		if err := chromedp.Run(ctx, actions...); err != nil {
			var page string
			_ = chromedp.Run(ctx, chromedp.Text("body", &page, chromedp.ByQuery))
			t.Fatalf("%s: %v\npage: %s", name, err, page)
		}
	}
	waitText := func(sel, want string) chromedp.Action {
		return chromedp.Poll(fmt.Sprintf(`document.querySelector(%q).textContent.includes(%q)`, sel, want), nil,
			chromedp.WithPollingTimeout(10*time.Second))
	}
	var text string

	step("sign in",
		network.Enable(), log.Enable(),
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible("#apikey", chromedp.ByID),
		chromedp.SendKeys("#apikey", testAdminKey, chromedp.ByID),
		chromedp.Click(`#signin button`, chromedp.ByQuery),
		chromedp.WaitVisible("#tabs", chromedp.ByID),
		waitText("#who", "ops"),
		chromedp.Text("#who", &text, chromedp.ByID))
	if !strings.Contains(text, "admin") {
		t.Errorf("signed in as: %q", text)
	}

	step("inspect a token",
		chromedp.SetValue("#token", tok, chromedp.ByID),
		chromedp.Click(`#inspect-form button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible("#inspect-out", chromedp.ByID),
		waitText("#verdict", "Active"),
		waitText("#times", "expires in"),
		waitText("#claims-json", "tx-console"),
		shot("inspect"))

	step("look up its XID and revoke it",
		chromedp.Click(`#tabs button[data-tab=transactions]`, chromedp.ByQuery),
		chromedp.SetValue("#xid", "tx-console", chromedp.ByID),
		chromedp.Click(`#xid-form button`, chromedp.ByQuery),
		chromedp.WaitVisible("#xid-out", chromedp.ByID),
		waitText("#xid-records", "active"),
		waitText("#outcomes", "pending"),
		shot("transaction"),
		chromedp.Click(`#xid-records button.danger`, chromedp.ByQuery),
		chromedp.Click(`#xid-records span button.danger`, chromedp.ByQuery),
		waitText("#xid-records", "revoked"))
	if code, out := httpDo(t, "POST", base+"/v1/introspect", testAdminKey, "application/x-www-form-urlencoded", "token="+tok); !strings.Contains(out, `"revoked"`) {
		t.Errorf("introspect after the console revoked it: %d %s", code, out)
	}

	step("page through a phone's records",
		chromedp.SetValue("#phone", "+14155550123", chromedp.ByID),
		chromedp.SetValue("#page-size", "10", chromedp.ByID),
		chromedp.Click(`#phone-form button`, chromedp.ByQuery),
		chromedp.WaitVisible("#phone-out", chromedp.ByID),
		waitText("#phone-summary", "page 1, 10 token(s)"),
		shot("phone"),
		chromedp.Click("#next-page", chromedp.ByID),
		waitText("#phone-summary", "page 2, 2 token(s), the last page"))

	step("see the keys and rotate the default profile's",
		chromedp.Click(`#tabs button[data-tab=keys]`, chromedp.ByQuery),
		waitText("#jwks", "ES256"),
		waitText("#key-states", "current"),
		chromedp.Click(`button[aria-label="Rotate the keys of default"]`, chromedp.ByQuery),
		chromedp.Click(`#key-states span button.danger`, chromedp.ByQuery),
		waitText("#keys-summary", "default's next key signs from"),
		waitText("#key-states", "next"),
		shot("keys"))
	// castlabs signs with an HMAC secret its clients hold: the question
	// says they need the next one, and how to get it.
	step("the rotation of a shared secret warns",
		chromedp.Click(`button[aria-label="Rotate the keys of castlabs"]`, chromedp.ByQuery),
		waitText("#key-states span", "every client that verifies castlabs tokens needs it before it starts signing"),
		waitText("#key-states span", "jwtd keys show --profile castlabs --next"),
		chromedp.Click(`#key-states span button:not(.danger)`, chromedp.ByQuery))
	if _, ok := findKey(keyList(t, base), "default", "next"); !ok {
		t.Error("the console's rotation left no next key for the default profile")
	}

	step("see the chart",
		chromedp.Click(`#tabs button[data-tab=activity]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#chart svg rect`, chromedp.ByQuery),
		waitText("#chart-label", "token(s) issued"),
		shot("activity"))

	step("see the audit trail: the revocation the console made, by ops",
		chromedp.Click(`#tabs button[data-tab=audit]`, chromedp.ByQuery),
		waitText("#audit-summary", "Page 1"),
		chromedp.SetValue("#audit-action", "token.revoke", chromedp.ByID),
		chromedp.Click(`#audit-form button`, chromedp.ByQuery),
		waitText("#audit-summary", "Page 1: 1 entry, the last page"),
		waitText("#audit-entries", "jti:"),
		waitText("#audit-entries", "count=1"),
		waitText("#audit-entries", "ops"),
		shot("audit"))

	// At phone width the records stack: the page does not scroll sideways,
	// and a jti takes at most two lines.
	var fits struct {
		PageWidth, ViewWidth int
		JTILines             float64
	}
	step("at phone width",
		chromedp.EmulateViewport(390, 844),
		chromedp.Click(`#tabs button[data-tab=transactions]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#xid-records td.jti`, chromedp.ByQuery),
		chromedp.Evaluate(`(() => {
			const td = document.querySelector('#xid-records td.jti');
			const line = parseFloat(getComputedStyle(td).lineHeight) || 1.45 * parseFloat(getComputedStyle(td).fontSize);
			return { PageWidth: document.documentElement.scrollWidth, ViewWidth: window.innerWidth,
				JTILines: (td.getBoundingClientRect().height - parseFloat(getComputedStyle(td).paddingTop) - parseFloat(getComputedStyle(td).paddingBottom)) / line };
		})()`, &fits),
		shot("phone-width"),
		chromedp.EmulateViewport(1200, 900))
	if fits.PageWidth > fits.ViewWidth || fits.JTILines > 2.1 {
		t.Errorf("at phone width: page %d px wide in a %d px view, a jti on %.1f lines", fits.PageWidth, fits.ViewWidth, fits.JTILines)
	}

	// A new question empties the screen first: an error never stands
	// under an earlier answer.
	var stale string
	step("an unknown XID after a transaction",
		chromedp.SetValue("#xid", "tx-unknown", chromedp.ByID),
		chromedp.Click(`#xid-form button`, chromedp.ByQuery),
		waitText("#error", "XID"),
		chromedp.Evaluate(staleJS("xid-out", "xid-summary", "outcomes", "xid-records"), &stale))
	if stale != "" {
		t.Errorf("after an unknown XID, the earlier transaction is still shown: %s", stale)
	}
	step("a token that is not one after a good one",
		chromedp.Click(`#tabs button[data-tab=inspect]`, chromedp.ByQuery),
		chromedp.SetValue("#token", tok, chromedp.ByID),
		chromedp.Click(`#inspect-form button[type=submit]`, chromedp.ByQuery),
		waitText("#verdict", "Not active"),
		chromedp.SetValue("#verify-key", "k", chromedp.ByID),
		chromedp.Click(`#verify-form button[type=submit]`, chromedp.ByQuery),
		waitText("#verify-out", "verif"),
		chromedp.SetValue("#token", "not.a.token", chromedp.ByID),
		chromedp.Click(`#inspect-form button[type=submit]`, chromedp.ByQuery),
		waitText("#error", "base64url"),
		chromedp.Evaluate(staleJS("inspect-out", "verdict", "header-json", "claims-json", "times", "verify-out"), &stale))
	if stale != "" {
		t.Errorf("after a token that is not one, the earlier token's answer is still shown: %s", stale)
	}
	step("a bad phone number after a page of records",
		chromedp.Click(`#tabs button[data-tab=transactions]`, chromedp.ByQuery),
		chromedp.SetValue("#phone", "12", chromedp.ByID),
		chromedp.Click(`#phone-form button`, chromedp.ByQuery),
		waitText("#error", "phone"),
		chromedp.Evaluate(staleJS("phone-out", "phone-summary", "phone-records"), &stale))
	if stale != "" {
		t.Errorf("after a bad phone number, the earlier page is still shown: %s", stale)
	}

	// A key without the admin scope: no Transactions, no revoke; the API
	// refuses it too.
	var hidden bool
	step("sign in without admin",
		chromedp.Click("#signout", chromedp.ByID),
		chromedp.SendKeys("#apikey", viewerKey, chromedp.ByID),
		chromedp.Click(`#signin button`, chromedp.ByQuery),
		waitText("#who", "viewer"),
		chromedp.Evaluate(`document.querySelector('#tabs button[data-tab=transactions]').hidden &&
			document.querySelector('#tabs button[data-tab=activity]').hidden &&
			document.querySelector('#tabs button[data-tab=audit]').hidden &&
			[...document.querySelectorAll('button.danger')].every((b) => b.offsetParent === null)`, &hidden))
	if !hidden {
		t.Error("a key without the admin scope is shown Transactions, Activity or a revoke button")
	}
	if code, _ := httpDo(t, "POST", base+"/v1/revoke", viewerKey, "application/json", `{"xid":"tx-console"}`); code != 403 {
		t.Errorf("revoke with the viewer key: %d", code)
	}

	mu.Lock()
	defer mu.Unlock()
	for _, u := range requests {
		if !strings.HasPrefix(u, base+"/") {
			t.Errorf("a request left for another origin: %s", u)
		}
	}
	if len(requests) < 10 {
		t.Errorf("only %d requests seen", len(requests))
	}
	for _, p := range problems {
		t.Errorf("the page logged: %s", p)
	}
}

// staleJS is a script that names what is still shown of an earlier answer:
// the panel visible, or text left in any of the elements (table bodies).
func staleJS(panel string, ids ...string) string {
	return fmt.Sprintf(`(() => {
		const left = [];
		if (!document.getElementById(%q).hidden) left.push(%q + " is visible");
		for (const id of %s) {
			const e = document.getElementById(id);
			const text = (e.tBodies ? e.tBodies[0] : e).textContent.trim();
			if (text) left.push(id + ": " + text.slice(0, 80));
		}
		return left.join("; ");
	})()`, panel, panel, "['"+strings.Join(ids, "','")+"']")
}

// profileDir is a directory for Chromium's profile, removed after the
// test: its helper processes may still write there for a moment after the
// browser is gone, which t.TempDir's cleanup would report as a failure.
func profileDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "jwtd-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 50 {
			if os.RemoveAll(dir) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return dir
}
