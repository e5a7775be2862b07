// Package browsertest runs headless Chromium for tests of the web
// console: Debian's chromium package, installed by the test when it is
// missing, driven with chromedp. Every request a page makes is recorded,
// and any that is not for loopback goes to a proxy that does not exist,
// so a test both sees and stops a request that would leave the machine.
package browsertest

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// Chromium returns the path of Debian's chromium, installing the package
// with apt-get when it is missing and the test runs as root (as CI
// does); otherwise the test fails saying what to install. Installs of
// several test binaries at once take turns on a lock file.
func Chromium(t testing.TB) string {
	t.Helper()
	if path, err := exec.LookPath("chromium"); err == nil {
		return path
	}
	if os.Geteuid() != 0 {
		t.Fatal("headless Chromium is needed and missing: install Debian's package (sudo apt-get install chromium), or run the tests as root to let them install it")
	}
	lock, err := os.OpenFile(os.TempDir()+"/fleetscan-chromium.lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if path, err := exec.LookPath("chromium"); err == nil {
		return path // another test binary installed it
	}
	t.Log("installing Debian's chromium package for the browser tests")
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "--no-install-recommends", "chromium"}} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("apt-get %v: %v\n%s", args, err, out)
		}
	}
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("apt-get installed chromium, but it is not on PATH: %v", err)
	}
	return path
}

// Browser is a headless Chromium tab for one test.
type Browser struct {
	// Ctx is the tab's context, for chromedp.Run.
	Ctx context.Context

	mu       sync.Mutex
	requests []string
	errors   []string
}

// New starts a browser, closed when the test ends.
func New(t testing.TB) *Browser {
	t.Helper()
	path := Chromium(t)
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests run as root in CI, where Chromium's sandbox refuses to start
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
		// Whatever is not for loopback (which Chromium never proxies)
		// goes to a port nothing listens on.
		chromedp.ProxyServer("http://127.0.0.1:9"),
		chromedp.Flag("lang", "en-US"),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	b := &Browser{Ctx: ctx}
	// Open the tab first, so that the listeners miss nothing of its start.
	err := chromedp.Do(ctx)
	if err == nil {
		err = chromedp.Listen(ctx, func(ev any) {
			if e, ok := ev.(*network.EventRequestWillBeSent); ok {
				b.mu.Lock()
				b.requests = append(b.requests, e.Request.URL)
				b.mu.Unlock()
			}
		})
	}
	if err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("start chromium (%s): %v", path, err)
	}
	messages := chromedp.Console(ctx)
	consoleDone := make(chan struct{})
	go func() {
		defer close(consoleDone)
		for m, err := range messages {
			if err != nil {
				return
			}
			// A failed response is an answer the test judges itself (the
			// API's 404 for what a token may not see).
			if m.Source == "network" {
				continue
			}
			// Errors, exceptions, and what the browser's security log says
			// (a Content-Security-Policy violation).
			if m.Type == chromedp.ConsoleError || m.IsException() || m.Source == "security" {
				b.mu.Lock()
				b.errors = append(b.errors, m.String())
				b.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		<-consoleDone
	})
	return b
}

// Requests returns the URL of every request the tab made so far.
func (b *Browser) Requests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.requests)
}

// Errors returns the uncaught exceptions and console errors of the tab's
// pages so far; a Content-Security-Policy violation is one.
func (b *Browser) Errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.errors)
}

// Foreign returns the requests that were not for origin (scheme, host and
// port), data: URLs aside.
func (b *Browser) Foreign(origin string) []string {
	var out []string
	for _, r := range b.Requests() {
		u, err := url.Parse(r)
		if err != nil || (u.Scheme != "data" && u.Scheme+"://"+u.Host != origin) {
			out = append(out, r)
		}
	}
	return out
}
