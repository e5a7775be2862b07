package server_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fleetscan/fleetscan/server/internal/web/browsertest"
)

// page drives the console in one browser tab.
type page struct {
	t    testing.TB
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
	deadline := time.Now().Add(2 * time.Minute)
	for {
		// The call to the browser is bounded too: a page that stopped
		// answering would hold it past the poll's own timeout.
		ctx, cancel := context.WithDeadline(p.b.Ctx, deadline.Add(10*time.Second))
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(time.Until(deadline))))
		cancel()
		if err == nil {
			return
		}
		// A poll does not survive a navigation (signing out reloads the
		// page): the page it ran in is gone, so poll the new one.
		if strings.Contains(err.Error(), "context") && time.Now().Before(deadline) {
			continue
		}
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

// signOut leaves the console, from whichever page.
func (p *page) signOut() {
	p.t.Helper()
	p.open("#/")
	p.until("the sign-out button", `[...document.querySelectorAll("button")].some(b => b.innerText === "Sign out")`)
	p.do("sign out", chromedp.Click(`//button[normalize-space()="Sign out"]`))
	p.until("the sign-in form", `document.querySelector("#token") !== null`)
}

// fill types text into the control labelled label inside the element
// that the XPath scope names.
func (p *page) fill(scope, label, text string) {
	p.t.Helper()
	p.do("fill in "+label, chromedp.SendKeys(scope+`//label[normalize-space()="`+label+`"]/following-sibling::*[self::input or self::textarea][1]`, text))
}

func (p *page) signIn(token string) {
	p.t.Helper()
	p.open("#/")
	p.until("the sign-in form or the console", `document.querySelector("#token") !== null || [...document.querySelectorAll("button")].some(b => b.innerText === "Sign out")`)
	if p.eval(`String(document.querySelector("#token") === null)`) == "true" {
		p.signOut() // an earlier subtest's token
	}
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
			// The worst movers of a week: the one cluster that got worse,
			// found among all the token sees.
			p.until("the worst movers", `[...document.querySelectorAll("h2")].some(h => h.innerText.startsWith("Worst movers") && h.parentElement.innerText.includes("lost score"))`)
			movers := p.eval(`[...document.querySelectorAll("h2")].find(h => h.innerText.startsWith("Worst movers")).parentElement.innerText`)
			if fell := slices.Contains(who.sees, hf.worsened); fell != strings.Contains(movers, hf.worsened+":") || (fell && !strings.Contains(movers, "1 lost score")) {
				t.Errorf("worst movers for %s, who sees %v:\n%s", who.name, who.sees, movers)
			}

			// The trend of one tenant, where the token sees one.
			tenant := map[string]string{"operator": "acme", "acme": "acme", "globex": "globex"}[who.name]
			p.until("the trend's scopes", `[...document.querySelectorAll("label")].some(l => l.innerText === "Trend of")`)
			if opts := p.eval(`[...document.querySelector("#" + [...document.querySelectorAll("label")].find(l => l.innerText === "Trend of").htmlFor).options].map(o => o.text).join(",")`); opts != map[string]string{"operator": "the fleet,tenant acme,tenant globex", "acme": "the fleet,tenant acme", "globex": "the fleet,tenant globex"}[who.name] {
				t.Errorf("%s may follow the trend of: %s", who.name, opts)
			}
			p.do("trend of tenant "+tenant, chromedp.Evaluate[chromedp.Void](`(() => {
				const sel = document.getElementById([...document.querySelectorAll("label")].find(l => l.innerText === "Trend of").htmlFor);
				sel.value = [...sel.options].find(o => o.text === "tenant `+tenant+`").value;
				sel.dispatchEvent(new Event("change", {bubbles: true}));
			})()`))
			p.until("the trend of tenant "+tenant, `document.querySelector(".chart")?.getAttribute("aria-label")?.includes("of tenant `+tenant+` from")`)

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

	// Who must act: each scanned cluster the token sees, with its open
	// findings by party, and none of another tenant's.
	t.Run("who must act", func(t *testing.T) {
		for _, who := range []struct {
			name, token string
			sees        []string
		}{
			{"operator", hf.ts.operatorToken(), all},
			{"acme", hf.acme, []string{"acme-dev", "acme-prod"}},
		} {
			p.t = t
			p.signIn(who.token)
			p.open("#/responsibility")
			p.until("the parties of each cluster", `document.querySelector("table.responsibility tbody tr") !== null`)
			rows := p.eval(`[...document.querySelectorAll("table.responsibility tbody tr")].map(r => r.querySelector("th").innerText.trim() + ":" + r.querySelectorAll("td.party").length).sort().join(",")`)
			var want []string
			for _, id := range who.sees {
				want = append(want, id+":3")
			}
			if rows != strings.Join(want, ",") {
				t.Errorf("%s: clusters and their party cells %q, want %q", who.name, rows, strings.Join(want, ","))
			}
			// The provider's column links to that cluster's provider findings.
			if href := p.eval(`document.querySelector("table.responsibility td.party a")?.getAttribute("href") ?? ""`); !strings.Contains(href, "party=") {
				t.Errorf("%s: a party's count links to %q, want the cluster's findings of that party", who.name, href)
			}
			if who.name == "operator" {
				p.shot("responsibility-operator", "")
			}
		}
	})

	// Compliance: the operator sees failed and not-assessable controls,
	// naming clusters; a tenant, who cannot read scans, never "passed".
	t.Run("compliance", func(t *testing.T) {
		p.t = t
		p.signIn(hf.ts.operatorToken())
		p.open("#/compliance?framework=cis")
		p.until("the CIS controls", `document.querySelector("table.compliance tbody tr") !== null`)
		count := func(status string) int {
			n, _ := strconv.Atoi(p.eval(`String(document.querySelectorAll('table.compliance tbody tr[data-status="` + status + `"]').length)`))
			return n
		}
		if count("failed") == 0 || count("not assessable") == 0 {
			t.Errorf("the operator's CIS page shows %d failed and %d not-assessable controls, want some of each:\n%s", count("failed"), count("not assessable"), p.text())
		}
		if n := count("no open finding"); n != 0 {
			t.Errorf("the operator's CIS page shows %d controls as \"no open finding\": it can read scans", n)
		}
		failed := p.eval(`document.querySelector('table.compliance tbody tr[data-status="failed"]').innerText`)
		if !slices.ContainsFunc(all, func(id string) bool { return strings.Contains(failed, id) }) {
			t.Errorf("a failed control names no cluster:\n%s", failed)
		}
		p.shot("compliance-operator", "")
		p.do("show the failed controls", chromedp.SetValue(`//label[normalize-space()="Show"]/following-sibling::select`, "failed"),
			chromedp.Evaluate[chromedp.Void](`document.querySelector("form[aria-label='Controls to show'] select").dispatchEvent(new Event("change"))`))
		if n := p.eval(`String([...document.querySelectorAll("table.compliance tbody tr")].filter(r => !r.hidden && r.dataset.status !== "failed").length)`); n != "0" {
			t.Errorf("showing the failed controls shows %s others", n)
		}
		if p.shots != "" {
			// The first of the failed controls: the list runs long.
			p.do("crop the controls", chromedp.Evaluate[chromedp.Void](`(() => { const s = document.querySelector("section:has(table.compliance)"); s.style.maxHeight = "1000px"; s.style.overflow = "hidden"; })()`))
			p.shot("compliance-failed-operator", "section:has(table.compliance)")
		}
		p.open("#/compliance?framework=pss")
		p.until("the PSS controls", `document.querySelector("nav.tabs a[aria-current=page]")?.innerText.includes("Pod Security") && document.querySelector("table.compliance tbody tr") !== null`)
		p.signOut()

		p.signIn(hf.acme)
		p.open("#/compliance?framework=cis")
		p.until("acme's CIS controls", `document.querySelector("table.compliance tbody tr") !== null`)
		if n := count("passed") + count("not assessable"); n != 0 {
			t.Errorf("a tenant's CIS page judges %d controls passed or not assessable, which needs the scans it cannot read", n)
		}
		if count("no open finding") == 0 {
			t.Errorf("a tenant's CIS page has no control with \"no open finding\":\n%s", p.text())
		}
		text := p.text()
		if strings.Contains(strings.ToLower(p.eval(`[...document.querySelectorAll("table.compliance tbody td:nth-child(2)")].map(td => td.innerText).join("\n")`)), "passed") {
			t.Errorf("a tenant's CIS page says passed")
		}
		if !strings.Contains(text, "visible to operators only") || strings.Contains(text, "globex-prod") {
			t.Errorf("acme's CIS page does not say why, or names globex's cluster:\n%s", text)
		}
		p.shot("compliance-acme", "")

		// Scans are for operators: a sentence, not an error dump.
		p.open("#/scans")
		p.until("the operators-only message", `document.querySelector("main .notice")?.innerText.includes("for operators")`)
		if n := p.eval(`String(document.querySelectorAll("main .error, main [role=alert], table.scans").length)`); n != "0" {
			t.Errorf("a tenant's scans page shows %s errors or tables:\n%s", n, p.text())
		}
		p.open("#/scan/" + hf.lastFleetScan)
		p.until("the operators-only message on a scan", `document.querySelector("main .notice")?.innerText.includes("for operators")`)
		p.signOut()
	})

	// Scans: the operator starts one from the scans page and watches it
	// to the end on its page, over WatchScan's stream.
	t.Run("scans", func(t *testing.T) {
		p.t = t
		p.signIn(hf.ts.operatorToken())
		p.open("#/scans")
		p.until("the scans", `document.querySelector("table.scans tbody tr") !== null && document.querySelector("#scan-cluster-acme-prod") !== null`)
		if !strings.Contains(p.text(), hf.lastFleetScan) {
			t.Errorf("the scans page does not list the latest scan %s", hf.lastFleetScan)
		}
		p.shot("scans-operator", "")
		p.do("choose clusters", chromedp.Click(`#target-some`), chromedp.Click(`#scan-cluster-acme-prod`), chromedp.Click(`#scan-cluster-globex-prod`))
		p.do("start the scan", chromedp.Click(`//button[normalize-space()="Start scan"]`))
		p.until("the new scan's page", `location.hash.startsWith("#/scan/") && document.querySelector("table.jobs tbody tr") !== null`)
		scanID := strings.TrimPrefix(p.eval(`decodeURIComponent(location.hash)`), "#/scan/")
		if scanID == hf.lastFleetScan || scanID == "" {
			t.Fatalf("after Start scan the page is of scan %q", scanID)
		}
		p.until("the scan to finish", `document.querySelector(".live")?.innerText.includes("ended: succeeded") && document.querySelectorAll("table.jobs tbody tr").length === 2`)
		jobs := p.eval(`document.querySelector("table.jobs tbody").innerText`)
		if strings.Contains(jobs, "acme-dev") || strings.Count(jobs, "succeeded") != 2 {
			t.Errorf("the scan of acme-prod and globex-prod shows the jobs:\n%s", jobs)
		}
		if !slices.ContainsFunc(p.b.Requests(), func(u string) bool { return strings.HasSuffix(u, "/fleetscan.v1.ScanService/WatchScan") }) {
			t.Errorf("the scan page did not call WatchScan: %q", p.b.Requests())
		}
		p.shot("scan-operator", "")
		p.signOut()
	})

	// Exceptions: the operator creates two and revokes one in two steps;
	// a tenant sees none of another tenant's, and the server's refusal of
	// its own.
	t.Run("exceptions", func(t *testing.T) {
		p.t = t
		const form = `//form[contains(@class,"create-exception")]`
		const kept, revoked = "Accepted for the console test: globex's legacy job", "Accepted for the console test: to revoke"
		create := func(cluster, check, reason string) {
			p.fill(form, "Cluster", cluster)
			if check != "" {
				p.fill(form, "Check", check)
			}
			p.fill(form, "Reason (required)", reason)
			p.do("create", chromedp.Click(form+`//button[normalize-space()="Create exception"]`))
		}
		p.signIn(hf.ts.operatorToken())
		p.open("#/exceptions")
		p.until("the exceptions form", `document.querySelector("form.create-exception") !== null && document.querySelector("main [aria-busy]") === null`)
		create("globex-prod", "POD-001", kept)
		p.until("the first exception", `document.querySelector("table.exceptions")?.innerText.includes("`+kept+`")`)
		create("acme-dev", "", revoked)
		p.until("the second exception", `document.querySelector("table.exceptions")?.innerText.includes("`+revoked+`")`)
		row := `//table[contains(@class,"exceptions")]//tr[td[normalize-space()="` + revoked + `"]]`
		p.do("revoke", chromedp.Click(row+`//button[normalize-space()="Revoke"]`))
		p.until("the confirmation", `document.activeElement?.innerText === "Yes, revoke"`)
		p.shot("exceptions-operator", "")
		p.do("confirm", chromedp.KeyEvent("\r"))
		p.until("the revocation", `document.querySelector("main p.status")?.innerText.startsWith("Revoked") && !document.querySelector("table.exceptions").innerText.includes("`+revoked+`")`)
		p.do("show deleted", chromedp.SetValue(`//label[normalize-space()="State"]/following-sibling::select`, "deleted"), chromedp.Click(`//button[normalize-space()="Show"]`))
		p.until("the revoked exception", `document.querySelector("table.exceptions")?.innerText.includes("`+revoked+`")`)
		if st := p.eval(`document.querySelector("table.exceptions tbody").innerText`); !strings.Contains(st, "deleted") || strings.Contains(st, kept) {
			t.Errorf("the deleted exceptions show:\n%s", st)
		}
		p.signOut()

		for _, who := range []struct {
			name, token string
			sees        bool
		}{{"acme", hf.acme, false}, {"globex", hf.globex, true}} {
			p.signIn(who.token)
			p.open("#/exceptions?state=all")
			p.until(who.name+"'s exceptions", `document.querySelector("form.create-exception") !== null && document.querySelector("main [aria-busy]") === null && document.querySelector("main .results p, table.exceptions") !== null`)
			list := p.eval(`document.querySelector("main .results").innerText`)
			if strings.Contains(list, kept) != who.sees || strings.Contains(list, revoked) == who.sees {
				t.Errorf("%s's exceptions list (want the one on globex-prod: %v, the revoked one on acme-dev: %v):\n%s", who.name, who.sees, !who.sees, list)
			}
			if n := p.eval(`String([...document.querySelectorAll("table.exceptions button")].length)`); n != "0" {
				t.Errorf("%s may revoke %s operator's exceptions", who.name, n)
			}
			if who.name == "acme" {
				// This server does not let tenants manage exceptions: the
				// form says what the API answered.
				create("acme-dev", "", "A tenant's try")
				p.until("the refusal", `document.querySelector("form.create-exception [role=alert]")?.innerText.includes("--tenant-exceptions")`)
				p.shot("exceptions-acme", "section:has(form.create-exception)")
			}
			p.signOut()
		}
	})

	if foreign := p.b.Foreign(hf.web); len(foreign) > 0 {
		t.Errorf("requests left the server: %q", foreign)
	}
	if errs := p.b.Errors(); len(errs) > 0 {
		t.Errorf("the pages broke their policy or threw:\n%s", strings.Join(errs, "\n"))
	}
}
