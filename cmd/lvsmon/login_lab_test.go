//go:build lab

package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"

	"github.com/lvsmon/lvsmon/internal/testutil"
)

// TestBrowserLoginAndDrain: an operator signs in on the login page,
// drains a real server from its page (confirmation, comment), and the
// fake kernel gives it weight 0; the page and the event log say who.
func TestBrowserLoginAndDrain(t *testing.T) {
	t.Parallel()
	chrome := chromium(t)
	h, _ := bcrypt.GenerateFromPassword([]byte("wonderland"), bcrypt.MinCost)
	web := filepath.Join(t.TempDir(), "web.yml")
	os.WriteFile(web, []byte("basic_auth_users:\n  alice: "+string(h)+"\n"), 0o600)
	d := startDaemon(t, "demo", "--listen", "127.0.0.1:0", "--step", "1s", "--speed", "1", "--web.config.file", web)
	base := d.url(t)

	// The status, read as a script would: with basic auth.
	type server struct {
		ID     string `json:"id"`
		Weight *int32 `json:"weight"`
		Sorry  bool   `json:"sorry_server"`
	}
	status := func() (out []server) {
		req, _ := http.NewRequest("GET", base+"/api/v1/status?service=web", nil)
		req.SetBasicAuth("alice", "wonderland")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st struct {
			Services []struct {
				RealServers []server `json:"real_servers"`
			} `json:"virtual_services"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || len(st.Services) != 1 {
			t.Fatalf("status: %v %+v", err, st)
		}
		return st.Services[0].RealServers
	}
	var target string
	testutil.WaitFor(t, "a web server with a weight", func() bool {
		for _, s := range status() {
			if !s.Sorry && s.Weight != nil && *s.Weight > 0 {
				target = s.ID
				return true
			}
		}
		return false
	})

	ctx := browser(t, chrome, 90*time.Second)
	fail := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("browser, %s: %v\nlog:\n%s", what, err, d.logText())
		}
	}
	// The server's page sends the browser to the login page first.
	fail("login page", chromedp.Do(ctx, chromedp.Navigate(base+"/server/"+target), chromedp.WaitVisible(chromedp.CSS(`#password`))))
	fail("sign in", chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#user`), "alice"), chromedp.SendKeys(chromedp.CSS(`#password`), "wonderland"),
		chromedp.Submit(chromedp.CSS(`#password`)), chromedp.WaitVisible(chromedp.CSS(`#state`))))
	account, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`.account`)))
	fail("account", err)
	if !strings.Contains(account, "signed in as alice") {
		t.Errorf("after sign-in the page says %q", account)
	}
	fail("drain", chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`form[action$="/drain"] button`)), chromedp.WaitVisible(chromedp.CSS(`#comment`))))
	fail("confirm", chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`#comment`), "replacing a disk"),
		chromedp.Click(chromedp.CSS(`main form[action$="/drain"] button`)), chromedp.WaitVisible(chromedp.CSS(`#state`))))
	state, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#state`)))
	fail("state", err)
	if !strings.Contains(state, "drained by alice (web, 127.0.0.1)") || !strings.Contains(state, "“replacing a disk”") {
		t.Errorf("the server page after the drain: %q", state)
	}
	testutil.WaitFor(t, "weight 0 in the kernel", func() bool {
		for _, s := range status() {
			if s.ID == target {
				return s.Weight != nil && *s.Weight == 0
			}
		}
		return false
	})
	events, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#recent`)))
	fail("events", err)
	if !strings.Contains(events, "alice (web, 127.0.0.1)") || !strings.Contains(events, "replacing a disk") {
		t.Errorf("the server's events do not say who and why: %q", events)
	}
}
