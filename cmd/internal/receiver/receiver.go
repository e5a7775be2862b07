// Package receiver is the webhook receiver of fleetscan notifier receive,
// for trying notifiers out: it verifies each request against the
// notifier's secret, answers as a receiver should, and prints one line per
// event, marking the ids it has seen before (delivery is at least once).
package receiver

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/fleetscan/fleetscan/client/webhook"
)

// Config is what a Handler needs.
type Config struct {
	// Secret returns the notifier's secret ("whsec_..."). It is called at
	// each request: the secret may be written after the receiver starts,
	// and changes when the notifier is created again.
	Secret func() (string, error)
	// Out gets one line per event (and per finding of new findings); Log
	// gets one line per request refused.
	Out, Log io.Writer
	// FailFirst is how many verified requests are answered 500, to see
	// the server try them again.
	FailFirst int
	// Now is the clock signatures' timestamps are checked against
	// (default time.Now), within Tolerance (default 5 minutes).
	Now       func() time.Time
	Tolerance time.Duration
}

// Handler receives events. It is safe for concurrent requests.
type Handler struct {
	cfg Config

	mu sync.Mutex
	// failed counts the requests answered 500 for FailFirst.
	failed int
	// seen holds the ids printed, to mark those that come again.
	seen map[string]bool
}

// maxBody bounds a request's body: the server's largest event is far
// smaller.
const maxBody = 1 << 20

// New returns a Handler with cfg's defaults filled in.
func New(cfg Config) *Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Tolerance <= 0 {
		cfg.Tolerance = webhook.DefaultTolerance
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	return &Handler{cfg: cfg, seen: map[string]bool{}}
}

// ServeHTTP answers 204 to an event it verified and printed; 401 with the
// reason to a request whose signature does not verify; 503 while it cannot
// read the secret, and 500 to the first FailFirst verified requests, both
// of which the server tries again.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := h.cfg.Now()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.refuse(w, r, now, http.StatusMethodNotAllowed, "only POST is received")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		code := http.StatusBadRequest
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			code = http.StatusRequestEntityTooLarge
		}
		h.refuse(w, r, now, code, "reading the body: "+err.Error())
		return
	}
	secret, err := h.cfg.Secret()
	if err != nil {
		h.refuse(w, r, now, http.StatusServiceUnavailable, "cannot verify yet: "+err.Error())
		return
	}
	if err := webhook.Verify(secret, r.Header, body, now, h.cfg.Tolerance); err != nil {
		h.refuse(w, r, now, http.StatusUnauthorized, err.Error())
		return
	}
	id := r.Header.Get(webhook.HeaderID)
	e, err := webhook.Parse(body)
	if err != nil {
		h.refuse(w, r, now, http.StatusBadRequest, err.Error())
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failed < h.cfg.FailFirst {
		h.failed++
		fmt.Fprintf(h.cfg.Out, "%s  %s  %s  answered 500 (--fail-first: %d of %d)\n", now.Format(time.TimeOnly), id, e.Type, h.failed, h.cfg.FailFirst)
		http.Error(w, fmt.Sprintf("failing on purpose: --fail-first, %d of %d", h.failed, h.cfg.FailFirst), http.StatusInternalServerError)
		return
	}
	again := h.seen[id]
	h.seen[id] = true
	io.WriteString(h.cfg.Out, Format(now, id, again, e))
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, now time.Time, code int, reason string) {
	fmt.Fprintf(h.cfg.Log, "%s  refused a request from %s (%d): %s\n", now.Format(time.TimeOnly), r.RemoteAddr, code, reason)
	http.Error(w, reason, code)
}

// Format is the lines printed for an event: its time of arrival, id
// (marked "(again)" when it came before), type, subject and summary; for
// new findings, then the worst of them, one per line.
func Format(at time.Time, id string, again bool, e *webhook.Event) string {
	var b strings.Builder
	if again {
		id += " (again)"
	}
	fmt.Fprintf(&b, "%s  %s  %s  %s", at.Format(time.TimeOnly), id, e.Type, orDash(e.Subject))
	s, ok := e.Data.(interface{ Summary() string })
	if !ok {
		b.WriteString("  (data of a type this version of fleetscan does not know)\n")
		return b.String()
	}
	// The summary names the cluster the subject already named.
	summary, _ := strings.CutPrefix(s.Summary(), e.Subject+": ")
	fmt.Fprintf(&b, "  %s\n", summary)
	if d, ok := e.Data.(webhook.NewFindingsData); ok {
		for _, f := range d.Findings {
			where := f.Name
			if f.Namespace != "" {
				where = f.Namespace + "/" + f.Name
			}
			if f.SubPath != "" {
				where += " " + f.SubPath
			}
			fmt.Fprintf(&b, "    %-8s  %s  %s %s: %s\n", f.Severity, f.CheckID, f.Kind, where, f.Message)
		}
		if more := d.Total - len(d.Findings); more > 0 {
			fmt.Fprintf(&b, "    … and %d more\n", more)
		}
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
