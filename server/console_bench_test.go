package server_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fleetscan/fleetscan/server"
	"github.com/fleetscan/fleetscan/server/internal/web/browsertest"
)

// BenchmarkConsoleOverview loads the console's fleet overview in headless
// Chromium, over and over, and reports how long each load took: from the
// navigation's start to the last of the overview's panels drawn, the
// console's User Timing mark. The server runs on a copy of the data
// directory FLEETSCAN_CONSOLE_BENCH_DATA; make bench-console writes the
// store benchmarks' fleet there first, 1,000 clusters with a year of daily
// scans. Target (issue 19): under a second.
func BenchmarkConsoleOverview(b *testing.B) {
	src := os.Getenv("FLEETSCAN_CONSOLE_BENCH_DATA")
	if src == "" {
		b.Skip("set FLEETSCAN_CONSOLE_BENCH_DATA to a data directory: make bench-console writes one of 1,000 clusters with a year of daily scans")
	}
	dir := b.TempDir()
	if err := copyFile(filepath.Join(src, "fleetscan.db"), filepath.Join(dir, "fleetscan.db")); err != nil {
		b.Fatal(err)
	}
	web, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	api, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, server.Config{DataDir: dir, Listener: api, WebListener: web, Plaintext: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ShutdownTimeout: 5 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()
	token, err := os.ReadFile(filepath.Join(dir, server.OperatorTokenFile))
	if err != nil {
		b.Fatal(err)
	}

	p := &page{t: b, b: browsertest.New(b), base: "http://" + web.Addr().String()}
	p.signIn(strings.TrimSpace(string(token)))
	var loads []float64
	for b.Loop() {
		// As a reader who opens the console's address again: a reload.
		p.do("reload", chromedp.Reload())
		p.until("the whole overview", `performance.getEntriesByName("fleetscan:view-settled").length > 0 && !document.querySelector("main [aria-busy]") &&
			document.querySelector("main canvas") !== null && document.querySelector("table.heat") !== null && document.querySelector("main table.data caption") !== null`)
		ms, err := strconv.ParseFloat(p.eval(`String(performance.getEntriesByName("fleetscan:view-settled").at(-1).startTime)`), 64)
		if err != nil {
			b.Fatal(err)
		}
		loads = append(loads, ms)
	}
	// Where the last load's time went: each request's start, first byte
	// and end in ms from the navigation's start, and its bytes.
	b.Logf("requests of the last load [name, start, first byte, end, bytes]: %s",
		p.eval(`JSON.stringify(performance.getEntriesByType("resource").map(e => [e.name.split("/").pop(), Math.round(e.startTime), Math.round(e.responseStart), Math.round(e.responseEnd), e.transferSize]))`))
	if errs := p.b.Errors(); len(errs) > 0 {
		b.Errorf("the browser reported: %q", errs)
	}
	slices.Sort(loads)
	b.ReportMetric(loads[len(loads)/2], "p50-ms")
	b.ReportMetric(loads[(len(loads)*99)/100], "p99-ms")
	b.ReportMetric(loads[len(loads)-1], "max-ms")
	clusters := p.eval(`[...document.querySelectorAll("main table.data caption")].map(c => c.innerText).find(t => t.includes("lowest score first"))`)
	b.Logf("the overview of %s loaded %d times: p50 %.0f ms, max %.0f ms", clusters, len(loads), loads[len(loads)/2], loads[len(loads)-1])
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
