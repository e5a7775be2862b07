package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

// progressPrinter shows how far a scan is: one line redrawn in place on a
// terminal, and a plain line whenever a cluster finishes or the state
// changes otherwise, so that CI logs stay short and readable.
type progressPrinter struct {
	w     io.Writer
	tty   bool
	start time.Time
	last  string // what the plain output last printed, minus counters
	drawn bool
}

func newProgressPrinter(w io.Writer) *progressPrinter {
	p := &progressPrinter{w: w, start: time.Now()}
	if f, ok := w.(*os.File); ok {
		p.tty = term.IsTerminal(int(f.Fd()))
	}
	return p
}

// scanProgress returns a scan's progress; servers from before
// ScanProgress send none, and it is counted from the jobs.
func scanProgress(s *fleetscanv1.Scan) *fleetscanv1.ScanProgress {
	if s.GetProgress() != nil {
		return s.Progress
	}
	p := &fleetscanv1.ScanProgress{ClustersTotal: int32(len(s.GetJobs())), ClustersDone: int32(jobsDone(s))}
	for _, j := range s.GetJobs() {
		p.ObjectsScanned += j.ObjectsScanned
	}
	return p
}

func (p *progressPrinter) update(s *fleetscanv1.Scan) {
	pr := scanProgress(s)
	state := enumName(s.State, "SCAN_STATE_")
	counts := fmt.Sprintf("%d/%d clusters done, %d objects, %d findings", pr.ClustersDone, pr.ClustersTotal, pr.ObjectsScanned, pr.Findings)
	if !p.tty {
		key := fmt.Sprintf("%s %d/%d", state, pr.ClustersDone, pr.ClustersTotal)
		if key != p.last {
			p.last = key
			fmt.Fprintf(p.w, "  %-9s %s\n", state, counts)
		}
		return
	}
	const width = 24
	filled := 0
	if pr.ClustersTotal > 0 {
		filled = int(pr.ClustersDone) * width / int(pr.ClustersTotal)
	}
	bar := strings.Repeat("█", filled) + strings.Repeat("░", width-filled)
	elapsed := time.Since(p.start).Round(time.Second)
	// \r and erase-line: the line is redrawn in place.
	fmt.Fprintf(p.w, "\r\033[K%s %s  %s  %v", bar, state, counts, elapsed)
	p.drawn = true
}

// finish ends the redrawn line so that what follows starts on its own.
func (p *progressPrinter) finish() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}
