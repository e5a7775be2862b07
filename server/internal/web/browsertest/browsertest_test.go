package browsertest

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserReportsWhatLeavesOrIsBlocked: a page that tries to load an
// image from another site and carries an inline style under a strict
// policy renders, and the test sees both the foreign request and the
// policy's refusals, which the console's tests rely on to fail.
func TestBrowserReportsWhatLeavesOrIsBlocked(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Security-Policy", "default-src 'self'")
		w.Write([]byte(`<!DOCTYPE html><title>t</title><img src="https://example.com/a.png" alt=""><p id="p" style="color:red">hello</p>`))
	}))
	defer srv.Close()
	b := New(t)
	if err := chromedp.Do(b.Ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(b.Ctx, chromedp.Text("#p"))
	if err != nil || text != "hello" {
		t.Fatalf("page text %q, %v", text, err)
	}
	if got := b.Foreign(srv.URL); !slices.Contains(got, "https://example.com/a.png") {
		t.Errorf("foreign requests %q, want the image from example.com", got)
	}
	// The inline style and the image: two refusals.
	if errs := b.Errors(); len(errs) < 2 || !strings.Contains(strings.Join(errs, "\n"), "Content Security Policy") {
		t.Errorf("console errors: %q, want the policy's two refusals", errs)
	}
}
