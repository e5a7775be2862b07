package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fleetscan/fleetscan/server"
)

// target is the server under load: in this process, or a binary the
// harness starts and measures.
type target interface {
	// start starts the server, on the address of the previous start if
	// there was one.
	start(ctx context.Context) error
	// restart ends the server abruptly (a binary is killed) or gracefully
	// (in process) and starts it again on the same data.
	restart(ctx context.Context) error
	// crash ends it as restart does, without starting it again.
	crash() error
	stop() error
	addr() string
	// metricsAddr is the address of /metrics, or "".
	metricsAddr() string
	// sample records the peak RSS (KiB) and goroutines seen so far.
	sample()
	peaks() (rssKiB, goroutines int64, rssOf string)
}

type peakTracker struct {
	mu               sync.Mutex
	rssKiB, routines int64
}

func (p *peakTracker) note(rss, routines int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rssKiB, p.routines = max(p.rssKiB, rss), max(p.routines, routines)
}

func (p *peakTracker) get() (int64, int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rssKiB, p.routines
}

// inProcess runs server.Server in this process. Its RSS and goroutines
// are those of the whole process, simulated workers included.
type inProcess struct {
	cfg    server.Config
	cancel context.CancelFunc
	done   chan error
	peakTracker
}

func (p *inProcess) start(ctx context.Context) error {
	srv, err := server.New(ctx, p.cfg)
	if err != nil {
		return err
	}
	p.cfg.Listen = srv.Addr().String()
	if m := srv.MetricsAddr(); m != nil {
		p.cfg.MetricsListen = m.String()
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.cancel, p.done = cancel, make(chan error, 1)
	go func() { p.done <- srv.Serve(sctx) }()
	return nil
}

func (p *inProcess) stop() error {
	if p.cancel == nil {
		return nil
	}
	p.cancel()
	p.cancel = nil
	return <-p.done
}

func (p *inProcess) crash() error { return p.stop() }

func (p *inProcess) restart(ctx context.Context) error {
	if err := p.stop(); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	return p.start(ctx)
}

func (p *inProcess) addr() string { return p.cfg.Listen }

func (p *inProcess) metricsAddr() string { return p.cfg.MetricsListen }

func (p *inProcess) sample() {
	p.note(vmHWM("self"), int64(runtime.NumGoroutine()))
}

func (p *inProcess) peaks() (int64, int64, string) {
	rss, g := p.get()
	return rss, g, "the harness process: server and simulated workers"
}

// binary runs a fleetscan-server binary; restart kills it (SIGKILL).
type binary struct {
	bin, dataDir string
	args         []string
	listen       string
	metrics      string // host:port of /metrics, or ""
	cmd          *exec.Cmd
	exited       chan struct{}
	waitErr      error // set before exited is closed
	log          *os.File
	peakTracker
}

func (b *binary) start(ctx context.Context) error {
	addrFile := filepath.Join(b.dataDir, "address")
	os.Remove(addrFile)
	if b.listen == "" {
		b.listen = "127.0.0.1:0"
	}
	// The harness is one operator polling hard: no per-token rate limit.
	args := append([]string{"--data-dir", b.dataDir, "--listen", b.listen, "--plaintext", "--rate-limit", "0", "--address-file", addrFile, "--log-level", "warn"}, b.args...)
	if b.metrics != "" {
		args = append(args, "--metrics-listen", b.metrics)
	}
	if b.log == nil {
		var err error
		if b.log, err = os.Create(filepath.Join(b.dataDir, "server.log")); err != nil {
			return err
		}
	}
	cmd := exec.Command(b.bin, args...)
	cmd.Stdout, cmd.Stderr = b.log, b.log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", b.bin, err)
	}
	b.cmd, b.exited = cmd, make(chan struct{})
	go func() { b.waitErr = cmd.Wait(); close(b.exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if a, err := os.ReadFile(addrFile); err == nil && strings.HasSuffix(string(a), "\n") {
			b.listen = strings.TrimSpace(string(a))
			return nil
		}
		select {
		case <-b.exited:
			return fmt.Errorf("%s exited at start; see %s", b.bin, b.log.Name())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not listen within 30s", b.bin)
		}
	}
}

func (b *binary) end(sig syscall.Signal) error {
	if b.cmd == nil {
		return nil
	}
	b.sample()
	b.cmd.Process.Signal(sig)
	select {
	case <-b.exited:
	case <-time.After(30 * time.Second):
		b.cmd.Process.Kill()
		<-b.exited
	}
	b.cmd = nil
	if sig == syscall.SIGTERM && b.waitErr != nil {
		return fmt.Errorf("%s did not shut down cleanly (%v); see %s", b.bin, b.waitErr, b.log.Name())
	}
	return nil
}

func (b *binary) crash() error { return b.end(syscall.SIGKILL) }

func (b *binary) restart(ctx context.Context) error {
	if err := b.end(syscall.SIGKILL); err != nil {
		return err
	}
	return b.start(ctx)
}

func (b *binary) stop() error {
	err := b.end(syscall.SIGTERM)
	if b.log != nil {
		b.log.Close()
	}
	return err
}

func (b *binary) addr() string { return b.listen }

func (b *binary) metricsAddr() string { return b.metrics }

func (b *binary) sample() {
	if b.cmd == nil {
		return
	}
	rss := vmHWM(strconv.Itoa(b.cmd.Process.Pid))
	var routines int64
	if b.metrics != "" {
		routines, _ = scrapeGauge("http://"+b.metrics+"/metrics", "go_goroutines")
	}
	b.note(rss, routines)
}

func (b *binary) peaks() (int64, int64, string) {
	rss, g := b.get()
	return rss, g, "the server process (" + filepath.Base(b.bin) + ")"
}

// replicaSet is several servers on one PostgreSQL database. Workers and
// the harness's clients are given every replica's address. Its restart
// kills one replica (crash) and leaves it down: the scan must finish on
// the others; revive starts it again, on its address, after the scan.
type replicaSet struct {
	members []target
	// victim is the member restart kills (the first, which most likely
	// leads: it started first); down while it is, which the sampler reads
	// too.
	victim int
	down   atomic.Bool
}

func (r *replicaSet) start(ctx context.Context) error {
	// In order: the first creates the operator token, in its data
	// directory, on a new database.
	for i, m := range r.members {
		if err := m.start(ctx); err != nil {
			return fmt.Errorf("replica %d: %w", i, err)
		}
	}
	return nil
}

func (r *replicaSet) restart(context.Context) error {
	r.down.Store(true)
	return r.members[r.victim].crash()
}

func (r *replicaSet) crash() error { return r.restart(context.Background()) }

// revive starts the member restart killed again.
func (r *replicaSet) revive(ctx context.Context) error {
	if !r.down.Load() {
		return nil
	}
	if err := r.members[r.victim].start(ctx); err != nil {
		return err
	}
	r.down.Store(false)
	return nil
}

func (r *replicaSet) stop() error {
	var errs []error
	for i, m := range r.members {
		if i == r.victim && r.down.Load() {
			continue
		}
		errs = append(errs, m.stop())
	}
	return errors.Join(errs...)
}

func (r *replicaSet) addr() string {
	addrs := make([]string, len(r.members))
	for i, m := range r.members {
		addrs[i] = m.addr()
	}
	return strings.Join(addrs, ",")
}

// metricsAddr is the last member's: one that is never killed, so that its
// histograms cover the whole run. They are that replica's alone.
func (r *replicaSet) metricsAddr() string { return r.members[len(r.members)-1].metricsAddr() }

// leads reports whether member i leads, from its fleetscan_replica_leader
// (unknown without its metrics).
func (r *replicaSet) leads(i int) string {
	addr := r.members[i].metricsAddr()
	if addr == "" {
		return "unknown"
	}
	v, err := scrapeGauge("http://"+addr+"/metrics", "fleetscan_replica_leader")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return map[bool]string{true: "yes", false: "no"}[v == 1]
}

func (r *replicaSet) sample() {
	for i, m := range r.members {
		if i != r.victim || !r.down.Load() {
			m.sample()
		}
	}
}

// peaks are the largest of any one replica's.
func (r *replicaSet) peaks() (int64, int64, string) {
	var rss, routines int64
	of := ""
	for _, m := range r.members {
		a, b, c := m.peaks()
		rss, routines, of = max(rss, a), max(routines, b), c
	}
	return rss, routines, fmt.Sprintf("the largest of %d replicas, each %s", len(r.members), of)
}

// vmHWM returns the peak resident set of a process in KiB, 0 when
// unknown.
func vmHWM(pid string) int64 {
	f, err := os.Open("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

var metricsClient = &http.Client{Timeout: 2 * time.Second}

// scrapeGauge reads one unlabelled gauge from a /metrics page, asking for
// that metric only (name[]): the server then skips the rest, its posture
// gauges among them, whose cost grows with the clusters.
func scrapeGauge(page, name string) (int64, error) {
	resp, err := metricsClient.Get(page + "?name[]=" + url.QueryEscape(name))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return int64(v), err
		}
	}
	return 0, errors.New(name + ": not in the metrics")
}

// histogram reads the cumulative buckets of one labelled histogram
// series from a Prometheus text page: upper bound → count.
func histogram(url, name string, labels ...string) (map[string]int64, error) {
	resp, err := metricsClient.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), name+"_bucket{")
		if !ok || !containsAll(line, labels) {
			continue
		}
		i := strings.Index(line, `le="`)
		j := strings.LastIndex(line, `"}`)
		if i < 0 || j < i {
			continue
		}
		v, _ := strconv.ParseFloat(strings.TrimSpace(line[j+2:]), 64)
		out[line[i+4:j]] = int64(v)
	}
	return out, sc.Err()
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
