package console

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

func serve(t *testing.T, h http.Handler, method, path string, header http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHandler: the page and its assets, with their content types and
// caching; nothing else; GET and HEAD only.
func TestHandler(t *testing.T) {
	h := Handler()
	index, err := os.ReadFile("dist/index.html")
	if err != nil {
		t.Fatal(err)
	}
	js, err := os.ReadFile("dist/console.js")
	if err != nil {
		t.Fatal(err)
	}
	css, err := os.ReadFile("dist/console.css")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, path string
		status       int
		contentType  string
		cache        string
		body         []byte // nil: not checked
	}{
		{"GET", "/", 200, "text/html; charset=utf-8", "no-store", index},
		{"HEAD", "/", 200, "text/html; charset=utf-8", "no-store", []byte{}},
		{"GET", "/console.js", 200, "text/javascript; charset=utf-8", "no-cache", js},
		{"HEAD", "/console.js", 200, "text/javascript; charset=utf-8", "no-cache", []byte{}},
		{"GET", "/console.css", 200, "text/css; charset=utf-8", "no-cache", css},
		{"GET", "/console.js?v=1", 200, "text/javascript; charset=utf-8", "no-cache", js},

		// Routes are in the fragment: no path but these is the console's.
		{"GET", "/index.html", 404, "text/plain; charset=utf-8", "", nil},
		{"GET", "/cluster/prod-eu-1", 404, "text/plain; charset=utf-8", "", nil},
		{"GET", "/console.js.map", 404, "text/plain; charset=utf-8", "", nil},
		{"GET", "/favicon.ico", 404, "text/plain; charset=utf-8", "", nil},
		{"GET", "/dist/console.js", 404, "text/plain; charset=utf-8", "", nil},
		{"GET", "/console.js/", 404, "text/plain; charset=utf-8", "", nil},
		{"DELETE", "/nothing", 404, "text/plain; charset=utf-8", "", nil},

		{"POST", "/", 405, "text/plain; charset=utf-8", "", nil},
		{"PUT", "/console.js", 405, "text/plain; charset=utf-8", "", nil},
		{"DELETE", "/console.css", 405, "text/plain; charset=utf-8", "", nil},
		{"OPTIONS", "/", 405, "text/plain; charset=utf-8", "", nil},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			resp := serve(t, h, tc.method, tc.path, nil)
			body := readAll(t, resp)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if got := resp.Header.Get("Content-Type"); got != tc.contentType {
				t.Errorf("Content-Type %q, want %q", got, tc.contentType)
			}
			if got := resp.Header.Get("Cache-Control"); got != tc.cache {
				t.Errorf("Cache-Control %q, want %q", got, tc.cache)
			}
			if tc.status == 405 && resp.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow %q, want GET, HEAD", resp.Header.Get("Allow"))
			}
			if resp.Header.Get("Content-Encoding") != "" {
				t.Errorf("Content-Encoding %q without Accept-Encoding", resp.Header.Get("Content-Encoding"))
			}
			if tc.body != nil && !bytes.Equal(body, tc.body) {
				t.Errorf("body: %d bytes, want %d", len(body), len(tc.body))
			}
			if tc.method == "HEAD" && resp.ContentLength <= 0 && resp.Header.Get("Content-Length") == "" {
				t.Errorf("HEAD without Content-Length")
			}
		})
	}
}

// TestHandlerCaching: the page has no validator (it is not stored); an
// asset's ETag answers 304, one per encoding.
func TestHandlerCaching(t *testing.T) {
	h := Handler()
	if etag := serve(t, h, "GET", "/", nil).Header.Get("ETag"); etag != "" {
		t.Errorf("GET /: ETag %q on a page that is not stored", etag)
	}
	plain := serve(t, h, "GET", "/console.js", nil).Header.Get("ETag")
	zipped := serve(t, h, "GET", "/console.js", http.Header{"Accept-Encoding": {"gzip"}}).Header.Get("ETag")
	if plain == "" || zipped == "" || plain == zipped {
		t.Fatalf("ETags %q (identity) and %q (gzip): want two different tags", plain, zipped)
	}
	for _, tc := range []struct {
		name   string
		header http.Header
		status int
	}{
		{"same tag", http.Header{"If-None-Match": {plain}}, 304},
		{"same tag, gzip", http.Header{"If-None-Match": {zipped}, "Accept-Encoding": {"gzip"}}, 304},
		{"other encoding's tag", http.Header{"If-None-Match": {zipped}}, 200},
		{"stale tag", http.Header{"If-None-Match": {`"stale"`}}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := serve(t, h, "GET", "/console.js", tc.header)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
}

// TestHandlerGzip: an asset goes gzipped to a client that accepts it,
// and unchanged to one that does not.
func TestHandlerGzip(t *testing.T) {
	h := Handler()
	js, err := os.ReadFile("dist/console.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		acceptEncoding string
		gzipped        bool
	}{
		{"", false},
		{"gzip", true},
		{"gzip, deflate, br, zstd", true},
		{"br;q=1.0, GZIP;q=0.5", true},
		{"*", true},
		{"gzip;q=0", false},
		{"*;q=0, gzip", true},
		{"gzip;q=0, *", false},
		{"br", false},
		{"identity", false},
	} {
		t.Run(tc.acceptEncoding, func(t *testing.T) {
			resp := serve(t, h, "GET", "/console.js", http.Header{"Accept-Encoding": {tc.acceptEncoding}})
			body := readAll(t, resp)
			if got := resp.Header.Get("Vary"); got != "Accept-Encoding" {
				t.Errorf("Vary %q, want Accept-Encoding", got)
			}
			if got := resp.Header.Get("Content-Encoding") == "gzip"; got != tc.gzipped {
				t.Fatalf("gzipped %v, want %v", got, tc.gzipped)
			}
			if tc.gzipped {
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(body, js) {
				t.Errorf("body differs from dist/console.js")
			}
		})
	}
	if got := serve(t, h, "GET", "/", http.Header{"Accept-Encoding": {"gzip"}}).Header.Get("Content-Encoding"); got != "" {
		t.Errorf("GET /: Content-Encoding %q for a page too small to compress", got)
	}
}

// TestIndexKeepsToThePolicy: the page has nothing the Content-Security-
// Policy would refuse (inline scripts, style elements or attributes,
// event-handler attributes) and loads exactly the assets the handler
// serves, from the server itself.
func TestIndexKeepsToThePolicy(t *testing.T) {
	index, err := os.ReadFile("dist/index.html")
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, f := range files {
		served[f.path] = true
	}
	loaded := map[string]bool{}
	z := html.NewTokenizer(bytes.NewReader(index))
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			if !errors.Is(z.Err(), io.EOF) {
				t.Fatal(z.Err())
			}
			break
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			continue
		}
		tok := z.Token()
		attrs := map[string]string{}
		for _, a := range tok.Attr {
			attrs[a.Key] = a.Val
			if a.Key == "style" || strings.HasPrefix(a.Key, "on") {
				t.Errorf("<%s %s=...>: inline styles and handlers are refused by the CSP", tok.Data, a.Key)
			}
		}
		switch tok.Data {
		case "style":
			t.Error("<style> element: refused by the CSP; styles go in console.css")
		case "script":
			if attrs["src"] == "" {
				t.Error("inline <script>: refused by the CSP")
			}
			loaded[attrs["src"]] = true
		case "link":
			if attrs["rel"] == "stylesheet" {
				loaded[attrs["href"]] = true
			} else if href := attrs["href"]; href != "" && !strings.HasPrefix(href, "data:") {
				t.Errorf("<link rel=%q href=%q>: load nothing but the console's assets", attrs["rel"], href)
			}
		case "img", "iframe", "object", "embed", "base":
			t.Errorf("<%s>: the console's page has none", tok.Data)
		}
	}
	for path := range loaded {
		if !served[path] || path == "/" {
			t.Errorf("index.html loads %q, which the handler does not serve", path)
		}
	}
	for path := range served {
		if path != "/" && !loaded[path] {
			t.Errorf("the handler serves %q, which index.html does not load", path)
		}
	}
}
