// Package console serves fleetscan's web console: one page and its two
// assets, built by client/console (make console) into dist/ and committed
// like generated code; make checkconsole fails when they are stale. The
// page routes with the URL's fragment (#/, #/cluster/ID), so every path
// but the page's and its assets' is 404: there is no fallback route.
//
// The page is never cached (Cache-Control: no-store), so a new server
// version's console loads at once; the assets are revalidated by ETag
// (no-cache) and sent gzipped to browsers that accept it.
package console

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// dist names its three files, so that a build that lost one does not
// compile.
//
//go:embed dist/index.html dist/console.js dist/console.css
var dist embed.FS

// files are what the console serves, by request path.
var files = []struct {
	path, name, contentType, cacheControl string
}{
	{"/", "dist/index.html", "text/html; charset=utf-8", "no-store"},
	{"/console.js", "dist/console.js", "text/javascript; charset=utf-8", "no-cache"},
	{"/console.css", "dist/console.css", "text/css; charset=utf-8", "no-cache"},
}

// minGzip is the size below which a file is sent as it is: gzip would
// save less than its own header costs.
const minGzip = 1024

type asset struct {
	body, gzipped []byte // gzipped is nil when not worth it
	contentType   string
	cacheControl  string
	etag          string // "" when the file is not cached at all
}

type handler map[string]*asset

// Handler returns the console's handler. It serves GET and HEAD only.
func Handler() http.Handler {
	h := handler{}
	for _, f := range files {
		body, err := dist.ReadFile(f.name)
		if err != nil {
			panic(fmt.Sprintf("console: %s is embedded but unreadable: %v", f.name, err))
		}
		a := &asset{body: body, contentType: f.contentType, cacheControl: f.cacheControl}
		if f.cacheControl != "no-store" {
			sum := sha256.Sum256(body)
			a.etag = base64.RawURLEncoding.EncodeToString(sum[:18])
		}
		if len(body) >= minGzip {
			a.gzipped = compress(body)
		}
		h[f.path] = a
	}
	return h
}

func compress(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // the level is valid
	zw.Write(b)                                              // a bytes.Buffer does not fail
	zw.Close()
	return buf.Bytes()
}

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a, ok := h[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", a.contentType)
	hdr.Set("Cache-Control", a.cacheControl)
	body := a.body
	if a.gzipped != nil {
		hdr.Set("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Values("Accept-Encoding")) {
			hdr.Set("Content-Encoding", "gzip")
			body = a.gzipped
		}
	}
	if a.etag != "" {
		etag := a.etag
		if len(body) != len(a.body) {
			etag += "-gz" // each encoding has its own tag
		}
		hdr.Set("ETag", `"`+etag+`"`)
	}
	// ServeContent answers If-None-Match, HEAD and ranges; the zero time
	// leaves out Last-Modified, which the ETag makes needless.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reports whether Accept-Encoding values accept gzip: named,
// or through "*", with a q-value above 0.
func acceptsGzip(values []string) bool {
	gzipQ, anyQ := -1.0, -1.0
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			name, params, _ := strings.Cut(part, ";")
			q := 1.0
			for _, p := range strings.Split(params, ";") {
				k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(k, "q") {
					if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
						q = f
					}
				}
			}
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "gzip", "x-gzip":
				gzipQ = q
			case "*":
				anyQ = q
			}
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return anyQ > 0
}
