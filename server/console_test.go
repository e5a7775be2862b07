package server_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fleetscan/fleetscan/server/internal/web/browsertest"
)

// page drives the console in one browser tab.
type page struct {
	t    *testing.T
	b    *browsertest.Browser
	base string
	// shots, if set, is where each view's screenshot goes.
	shots string
}

func (p *page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.b.Ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

// until waits for a JavaScript expression to be truthy: a page waits on
// the API, and the test waits on the page, not on a clock.
func (p *page) until(what, expr string) {
	p.t.Helper()
	// The timeout is there to fail with the page's state rather than hang;
	// a page that shows nothing in two minutes is broken, not slow.
	if _, err := chromedp.Run(p.b.Ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(2*time.Minute))); err != nil {
		p.t.Fatalf("waiting for %s: %v\nthe page (%s) shows:\n%s\nbrowser errors: %q", what, err, p.eval(`location.href`), p.text(), p.b.Errors())
	}
}

func (p *page) eval(expr string) string {
	p.t.Helper()
	v, err := chromedp.Run(p.b.Ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// text is everything the page shows.
func (p *page) text() string { return p.eval(`document.body.innerText`) }

func (p *page) open(hash string) {
	p.t.Helper()
	p.do("open "+hash, chromedp.Navigate(p.base+"/"+hash))
}

// shot saves the view (the top of the page, as a reader first sees it)
// or, with a selector, the part of it that the selector names.
func (p *page) shot(name, selector string) {
	p.t.Helper()
	if p.shots == "" {
		return
	}
	var img []byte
	var err error
	if selector == "" {
		p.do("scroll to the top", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
		img, err = chromedp.Run(p.b.Ctx, chromedp.CaptureScreenshot())
	} else {
		img, err = chromedp.Run(p.b.Ctx, chromedp.Screenshot(selector))
	}
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(p.shots, name+".png"), img, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

func (p *page) signIn(token string) {
	p.t.Helper()
	p.open("#/")
	p.until("the sign-in form", `document.querySelector("#token") !== null`)
	p.do("sign in", chromedp.SendKeys("#token", token), chromedp.Click(`form.signin button[type=submit]`))
	p.until("the fleet overview", `document.querySelector("main table.data caption") !== null && !document.querySelector("form.signin")`)
}

// TestConsoleInBrowser signs in to the console in headless Chromium as
// the operator and as each tenant of a fleet with three weeks of daily
// scans, and checks what each view shows and hides, that filters, paging,
// the diff of two scans and keyboard navigation work, that the token
// stays out of the address and goes at sign-out, and that no request
// leaves the server and nothing breaks the page's security policy. With
// FLEETSCAN_CONSOLE_SCREENSHOTS=DIR it saves each view there (the
// screenshots of docs/console.md come from it).
func TestConsoleInBrowser(t *testing.T) {
	hf := newHistoryFleet(t, 21)
	p := &page{t: t, b: browsertest.New(t), base: hf.web, shots: os.Getenv("FLEETSCAN_CONSOLE_SCREENSHOTS")}
	all := hf.clusters
	for _, who := range []struct {
		name, token string
		sees        []string
	}{
		{"operator", hf.ts.operatorToken(), all},
		{"acme", hf.acme, []string{"acme-dev", "acme-prod"}},
		{"globex", hf.globex, []string{"globex-prod"}},
	} {
		t.Run(who.name, func(t *testing.T) {
			p.t = t
			defer func() { p.t = nil }()
			p.signIn(who.token)
			if loc := p.eval(`location.href`); strings.Contains(loc, who.token) {
				t.Errorf("the token is in the address: %s", loc)
			}

			// The overview names the clusters the token sees, and no other.
			p.until("the trend chart", `document.querySelector("canvas") !== null`)
			overview := p.text()
			for _, id := range all {
				if shown, want := strings.Contains(overview, id), slices.Contains(who.sees, id); shown != want {
					t.Errorf("overview shows %s: %v, want %v", id, shown, want)
				}
			}
			if who.name != "globex" {
				p.shot("overview-"+who.name, "")
			}
			if who.name == "operator" {
				p.until("the check by cluster matrix", `document.querySelector("table.heat") !== null`)
				p.shot("trend-operator", "section:has(canvas)")
				p.shot("matrix-operator", "section:has(table.heat)")
			}

			// A cluster it sees: findings, filtered and paged by the API.
			id := who.sees[len(who.sees)-1]
			p.open("#/cluster/" + id + "?severity=high&size=25")
			p.until("the findings of "+id, `document.querySelector("table.findings tbody tr") !== null`)
			sevs := p.eval(`[...document.querySelectorAll("table.findings tbody tr td:first-child")].map(td => td.innerText.trim().toLowerCase()).join(",")`)
			for _, s := range strings.Split(sevs, ",") {
				if s != "high" && s != "critical" {
					t.Errorf("%s filtered to high or worse shows a %q finding", id, s)
				}
			}
			if who.name == "operator" {
				p.shot("cluster-operator", "")
				p.shot("findings-operator", "section:has(table.findings)")
			}
			if rows := p.eval(`String(document.querySelectorAll("table.findings tbody tr").length)`); rows == "25" {
				p.do("next page", chromedp.Click(`//button[normalize-space()="Next page"]`))
				p.until("page 2", `document.querySelector("table.findings caption")?.innerText.includes("page 2")`)
			}
			page1 := p.text()
			for _, other := range all {
				if other != id && strings.Contains(page1, other) && !slices.Contains(who.sees, other) {
					t.Errorf("the page of %s names %s, which %s may not see", id, other, who.name)
				}
			}

			// A cluster it does not see: nothing of it, whatever the address.
			for _, other := range all {
				if slices.Contains(who.sees, other) {
					continue
				}
				p.open("#/cluster/" + other)
				p.until("the answer for "+other, `document.querySelector("main [role=alert], main .error") !== null`)
				if n := p.eval(`String(document.querySelectorAll("table.findings tbody tr").length)`); n != "0" {
					t.Errorf("%s sees %s findings of %s", who.name, n, other)
				}
			}

			// Sign-out forgets the token.
			p.open("#/")
			p.until("the sign-out button", `[...document.querySelectorAll("button")].some(b => b.innerText === "Sign out")`)
			p.do("sign out", chromedp.Click(`//button[normalize-space()="Sign out"]`))
			p.until("the sign-in form", `document.querySelector("#token") !== null`)
			if n := p.eval(`String(sessionStorage.length + localStorage.length)`); n != "0" {
				t.Errorf("after sign-out the browser still stores %s item(s)", n)
			}
		})
	}

	t.Run("keyboard and diff", func(t *testing.T) {
		p.t = t
		p.signIn(hf.ts.operatorToken())
		// Tab from the page's start to the first cluster of the ranking
		// and press Enter: the keyboard reaches every view.
		p.do("focus the page start", chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`))
		reached := false
		for range 60 {
			p.do("tab", chromedp.KeyEvent("\t"))
			if p.eval(`document.activeElement?.closest("table.data") ? document.activeElement.getAttribute("href") ?? "" : ""`) != "" {
				reached = true
				break
			}
		}
		if !reached {
			t.Fatal("60 presses of Tab did not reach the clusters' table")
		}
		p.do("enter", chromedp.KeyEvent("\r"))
		p.until("a cluster page", `location.hash.startsWith("#/cluster/")`)

		// The diff of the cluster's first and last scans.
		p.open("#/cluster/" + hf.improved)
		p.until("the scans to compare", `document.querySelectorAll("select").length >= 2 && [...document.querySelectorAll("select")].some(s => s.options.length >= 2 && /scan/i.test(s.labels?.[0]?.innerText ?? ""))`)
		p.do("choose the scans", chromedp.Evaluate[chromedp.Void](`(() => {
			const sel = [...document.querySelectorAll("select")].filter(s => /scan/i.test(s.labels?.[0]?.innerText ?? ""));
			const [base, head] = sel;
			base.value = base.options[base.options.length - 1].value;
			head.value = head.options[0].value;
			base.dispatchEvent(new Event("change", {bubbles: true}));
			head.dispatchEvent(new Event("change", {bubbles: true}));
		})()`))
		p.do("show changes", chromedp.Click(`//button[normalize-space()="Show changes"]`))
		p.until("the diff", `document.querySelector(".diff-counts") !== null`)
		if diff := p.eval(`document.querySelector(".diff").innerText`); !strings.Contains(strings.ToLower(diff), "resolved") && !strings.Contains(strings.ToLower(diff), "new") {
			t.Errorf("the diff of %s's first and last scans says:\n%s", hf.improved, diff)
		}
		if p.shots != "" {
			// The top of the diff: the lists below run long.
			p.do("crop the diff", chromedp.Evaluate[chromedp.Void](`(() => { const s = document.querySelector("section:has(.diff-counts)"); s.style.maxHeight = "900px"; s.style.overflow = "hidden"; })()`))
			p.shot("diff-operator", "section:has(.diff-counts)")
		}
	})

	if foreign := p.b.Foreign(hf.web); len(foreign) > 0 {
		t.Errorf("requests left the server: %q", foreign)
	}
	if errs := p.b.Errors(); len(errs) > 0 {
		t.Errorf("the pages broke their policy or threw:\n%s", strings.Join(errs, "\n"))
	}
}
