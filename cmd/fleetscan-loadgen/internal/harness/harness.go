package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"

	"github.com/fleetscan/fleetscan/client"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
	"github.com/fleetscan/fleetscan/server"
	"github.com/fleetscan/fleetscan/worker"
)

// Config is one run of the harness.
type Config struct {
	// Clusters is the number of simulated workers; Findings the findings
	// of each per scan; ChurnPct the share that resolve, and as many that
	// appear, from one round to the next.
	Clusters, Findings int
	ChurnPct           float64
	// Rounds is the number of fleet scans (default 2); every round after
	// the first is checked for the churn too.
	Rounds int
	// BatchSize is the workers' batch size (default 500).
	BatchSize int
	// Large of the clusters have LargeFindings findings each (default
	// 10,000) instead of Findings: big jobs finishing while small ones
	// ingest, whose completion latency the report shows apart.
	Large, LargeFindings int
	// Faults cuts connections at random points (CutProb of them, within
	// CutBytes) and restarts the server once, half-way through the first
	// scan.
	Faults bool
	// Realistic gives the findings the sizes of the real checks' (long
	// messages and sub-paths, some at the cap) instead of one short line.
	Realistic bool
	CutProb   float64
	CutBytes  int64
	Seed      uint64

	// Store, if set, is the PostgreSQL database (postgres://…) of the
	// server instead of a bbolt file in DataDir: it must be empty.
	Store string
	// Replicas is the number of servers sharing Store (default 1). With
	// Faults, the restart kills one of them (SIGKILL, with ServerBin)
	// half-way through the first scan and leaves it down until the scan
	// has ended: the others must finish it.
	Replicas int

	// ServerBin, if set, is a fleetscan-server binary to start (and kill,
	// for the restart) on DataDir; otherwise the server runs in process.
	ServerBin string
	// ServerArgs are added to the binary's flags.
	ServerArgs []string
	// DataDir is the server's data directory (default: a new temporary
	// directory, removed at the end unless KeepData).
	DataDir  string
	KeepData bool
	// Metrics serves the server's /metrics (with pprof) on a loopback
	// port, printed at start; MetricsAddr picks it.
	Metrics     bool
	MetricsAddr string
	// MaxRunningJobs is the server's fleet-wide cap (0: its default).
	MaxRunningJobs int
	// MaxMessageBytes is the server's receive limit (0: its default).
	MaxMessageBytes int
	// QueryPause is the pause between two ListFindings calls during a
	// scan (default 20ms).
	QueryPause time.Duration
	// QueryCommand, if set, runs the measured ListFindings calls in a
	// process of their own: the command is given --addr, --token,
	// --prefix, --clusters and --pause, calls until SIGTERM and prints
	// one latency (or "err") per call.
	QueryCommand []string
	// Timeout bounds each fleet scan (default 10m).
	Timeout time.Duration
	// Log receives progress lines; nil discards them.
	Log io.Writer
	// Notify adds a webhook notifier of new findings (any severity) and
	// failed jobs, with a receiver in this process: after each round,
	// every delivery must arrive, one new-findings event per cluster with
	// new findings, duplicates only with their own id and body.
	Notify bool
}

// Round is what one fleet scan measured.
type Round struct {
	N          int
	ScanID     string
	Findings   int64
	Duration   time.Duration
	Restarted  bool
	Query      Latency
	Verified   string
	MaxAttempt int32
	// ServerSlow and ServerCalls: of the ListFindings calls the server
	// handled during the scan, how many took over 50 ms by its own
	// measure (with --metrics only).
	ServerSlow, ServerCalls int64
	// Completion and LargeCompletion are the jobs' completion latencies
	// as their workers saw them, from sending JobDone to receiving its
	// Ack(job_done): of the small jobs and of the large ones.
	Completion, LargeCompletion Latency
	// ServerCompletion is the server's own measure of the same
	// (fleetscan_job_completion_seconds, with --metrics only), p50 and p99
	// as the upper bounds of their histogram buckets.
	ServerCompletion Latency
	// Notifications, with Config.Notify.
	Notifications *Notifications
}

// Report is what a run measured.
type Report struct {
	Clusters, FindingsPerCluster, Churn int
	Large, LargeFindings                int
	Rounds                              []Round
	PeakRSSKiB, PeakGoroutines          int64
	MeasuredOf                          string
	DBBytes                             int64
	Cuts                                int64
	Restarts                            int
	// Replicas: the servers that shared the store; Store names it.
	Replicas int
	Store    string
}

// Latency summarizes the ListFindings calls made during a scan.
type Latency struct {
	Calls, Errors int
	P50, P99, Max time.Duration
}

type run struct {
	cfg      Config
	fleet    *fleet
	runID    string
	tgt      target
	dataDir  string
	op       *client.Client
	tenant   *client.Client // of the measured queries
	tokens   []string
	round    atomic.Int32
	produced [][]*workerv1.Finding // by finding number
	notify   *notifyCheck
	cut      *cutter
	log      func(format string, args ...any)
	// completions times every JobDone until its Ack(job_done).
	completions *completions

	// pause, when set, holds the jobs of a round at their midpoint until
	// it is closed (see scan); halfway counts the jobs that got there.
	mu      sync.Mutex
	pause   chan struct{}
	halfway chan struct{}
}

// Run runs the harness: it starts the server, registers and connects the
// fleet, runs the fleet scans, verifies each and returns what it
// measured. Any finding lost, duplicated or unexpected is an error.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Clusters <= 0 || cfg.Findings <= 0 {
		return nil, errors.New("clusters and findings: must be positive")
	}
	if cfg.Rounds <= 0 {
		cfg.Rounds = 2
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.LargeFindings <= 0 {
		cfg.LargeFindings = 10_000
	}
	if cfg.QueryPause <= 0 {
		cfg.QueryPause = 20 * time.Millisecond
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Minute
	}
	if cfg.CutProb <= 0 {
		cfg.CutProb = 0.3
	}
	if cfg.CutBytes <= 0 {
		cfg.CutBytes = 64 << 10
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	var id [3]byte
	rand.Read(id[:])
	h := &run{cfg: cfg, runID: hex.EncodeToString(id[:])}
	h.fleet = newFleet("lg-"+h.runID+"-", cfg.Clusters, cfg.Findings, cfg.ChurnPct, cfg.Realistic)
	h.fleet.large, h.fleet.largeFindings = cfg.Large, cfg.LargeFindings
	h.completions = newCompletions(cfg.Clusters)
	h.log = func(format string, args ...any) {
		fmt.Fprintf(cfg.Log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
	}
	if cfg.Faults {
		h.cut = newCutter(cfg.Seed, cfg.CutProb, cfg.CutBytes, int64(cfg.Clusters))
	}
	// Finding k is the same message in every cluster: made once.
	all := make([]*workerv1.Finding, h.fleet.span(cfg.Rounds))
	for k := range all {
		all[k] = h.fleet.finding(k)
	}
	h.produced = [][]*workerv1.Finding{all}

	h.dataDir = cfg.DataDir
	if h.dataDir != "" {
		if err := os.MkdirAll(h.dataDir, 0o700); err != nil {
			return nil, err
		}
	} else {
		dir, err := os.MkdirTemp("", "fleetscan-load-")
		if err != nil {
			return nil, err
		}
		h.dataDir = dir
		if !cfg.KeepData {
			defer os.RemoveAll(dir)
		}
	}
	if err := h.startServer(ctx); err != nil {
		return nil, err
	}
	defer h.tgt.stop()
	sampleCtx, stopSampling := context.WithCancel(ctx)
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			h.tgt.sample()
			select {
			case <-sampleCtx.Done():
				return
			case <-t.C:
			}
		}
	}()
	defer func() { stopSampling(); sampler.Wait() }()

	token, err := os.ReadFile(filepath.Join(h.dataDir, server.OperatorTokenFile))
	if err != nil {
		return nil, fmt.Errorf("operator token: %w", err)
	}
	// The operator's calls wait out a server restart; the measured
	// queries fail fast instead, and are counted as failed.
	h.op, err = client.New(h.tgt.addr(), client.WithPlaintext(), client.WithToken(strings.TrimSpace(string(token))),
		client.WithDialOptions(grpc.WithDefaultCallOptions(grpc.WaitForReady(true))))
	if err != nil {
		return nil, err
	}
	defer h.op.Close()
	h.tenant, err = client.New(h.tgt.addr(), client.WithPlaintext(), client.WithToken(strings.TrimSpace(string(token))))
	if err != nil {
		return nil, err
	}
	defer h.tenant.Close()

	seenDeliveries := map[string]bool{}
	if cfg.Notify {
		if h.notify, err = startNotifyCheck(); err != nil {
			return nil, err
		}
		defer h.notify.close()
		if err := h.createNotifier(ctx); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	if err := h.register(ctx); err != nil {
		return nil, err
	}
	h.log("registered %d clusters (%s00000…) in %v", cfg.Clusters, h.fleet.prefix, time.Since(start).Round(time.Millisecond))
	stopWorkers := h.startWorkers(ctx)
	defer stopWorkers()
	if err := h.waitConnected(ctx); err != nil {
		return nil, err
	}
	h.log("%d workers connected in %v", cfg.Clusters, time.Since(start).Round(time.Millisecond))

	rep := &Report{Clusters: cfg.Clusters, FindingsPerCluster: cfg.Findings, Churn: h.fleet.churn, Large: min(cfg.Large, cfg.Clusters), LargeFindings: cfg.LargeFindings}
	var prev string
	for r := 1; r <= cfg.Rounds; r++ {
		rd, err := h.scan(ctx, r, cfg.Faults && r == 1)
		if err != nil {
			return rep, fmt.Errorf("round %d: %w", r, err)
		}
		if h.notify != nil {
			n, err := h.checkNotifications(ctx, r, seenDeliveries)
			if err != nil {
				return rep, fmt.Errorf("round %d: notifications: %w", r, err)
			}
			rd.Notifications = &n
			h.log("round %d: %d notifications delivered, all received, %.2f s after the scan", r, n.Deliveries, n.Drained.Seconds())
		}
		if rd.Restarted {
			rep.Restarts++
		}
		if err := h.verify(ctx, r, prev, &rd); err != nil {
			return rep, fmt.Errorf("round %d: %w", r, err)
		}
		h.log("round %d verified: %s", r, rd.Verified)
		// Taken after the verification, which is long: the last acks of
		// the round may reach their workers after the scan is seen done.
		rd.Completion, rd.LargeCompletion = h.completions.round(r, h.fleet.isLarge)
		rep.Rounds = append(rep.Rounds, rd)
		prev = rd.ScanID
	}
	stopWorkers()
	if err := h.tgt.stop(); err != nil {
		return rep, err
	}
	stopSampling()
	sampler.Wait()
	rep.PeakRSSKiB, rep.PeakGoroutines, rep.MeasuredOf = h.tgt.peaks()
	rep.Replicas = max(1, cfg.Replicas)
	if cfg.Store != "" {
		rep.Store = "PostgreSQL"
		if rep.DBBytes, err = databaseSize(ctx, cfg.Store); err != nil {
			return rep, err
		}
	} else if fi, err := os.Stat(filepath.Join(h.dataDir, "fleetscan.db")); err == nil {
		rep.Store = "bbolt"
		rep.DBBytes = fi.Size()
	}
	if h.cut != nil {
		rep.Cuts = h.cut.cuts.Load()
	}
	return rep, nil
}

// databaseSize is the size of a PostgreSQL database on disk.
func databaseSize(ctx context.Context, dsn string) (int64, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, fmt.Errorf("database size: %w", err)
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&n); err != nil {
		return 0, fmt.Errorf("database size: %w", err)
	}
	return n, nil
}

func (h *run) startServer(ctx context.Context) error {
	metrics := ""
	if h.cfg.Metrics {
		metrics = h.cfg.MetricsAddr
		if metrics == "" {
			var err error
			if metrics, err = freeAddr(); err != nil {
				return err
			}
		}
	}
	maxAttempts := 3
	if h.cfg.Faults {
		// A job whose Assign is lost in a cut is sent again, which counts
		// an attempt; the run must not fail a job for the cuts it makes.
		maxAttempts = 20
	}
	replicas := max(1, h.cfg.Replicas)
	if replicas > 1 && h.cfg.Store == "" {
		return errors.New("replicas share a PostgreSQL store: give --store")
	}
	var members []target
	for i := range replicas {
		dataDir, metricsAt := h.dataDir, ""
		if i == replicas-1 {
			metricsAt = metrics // the one never killed (replicaSet.metricsAddr)
		} else if metrics != "" {
			// Every replica serves its metrics: the harness asks the one
			// it kills whether it led.
			var err error
			if metricsAt, err = freeAddr(); err != nil {
				return err
			}
		}
		if i > 0 {
			// Each replica has its own data directory (the operator token
			// is written by the first).
			dataDir = filepath.Join(h.dataDir, fmt.Sprintf("replica-%d", i))
			if err := os.MkdirAll(dataDir, 0o700); err != nil {
				return err
			}
		}
		if h.cfg.ServerBin != "" {
			args := append([]string{"--max-attempts", fmt.Sprint(maxAttempts)}, h.cfg.ServerArgs...)
			if metricsAt != "" {
				args = append(args, "--pprof")
			}
			if h.cfg.MaxRunningJobs != 0 {
				args = append(args, "--max-running-jobs", fmt.Sprint(h.cfg.MaxRunningJobs))
			}
			if h.cfg.MaxMessageBytes != 0 {
				args = append(args, "--max-message-size", fmt.Sprint(h.cfg.MaxMessageBytes))
			}
			if h.cfg.Store != "" {
				args = append(args, "--store", h.cfg.Store)
			}
			members = append(members, &binary{bin: h.cfg.ServerBin, dataDir: dataDir, metrics: metricsAt, args: args})
		} else {
			members = append(members, &inProcess{cfg: server.Config{
				DataDir: dataDir, Store: h.cfg.Store, Listen: "127.0.0.1:0", Plaintext: true, MetricsListen: metricsAt, Pprof: metricsAt != "",
				MaxAttempts: maxAttempts, MaxRunningJobs: h.cfg.MaxRunningJobs, MaxMessageBytes: h.cfg.MaxMessageBytes, Logger: discardLogger(),
			}})
		}
	}
	h.tgt = members[0]
	if replicas > 1 {
		h.tgt = &replicaSet{members: members}
	}
	if err := h.tgt.start(ctx); err != nil {
		return err
	}
	if metrics != "" {
		h.log("server metrics and pprof on http://%s/", metrics)
	}
	h.log("server listening on %s, data in %s", h.tgt.addr(), h.dataDir)
	return nil
}

// register registers the fleet, a few calls at a time.
func (h *run) register(ctx context.Context) error {
	h.tokens = make([]string, h.cfg.Clusters)
	return parallel(ctx, h.cfg.Clusters, 8, func(ctx context.Context, i int) error {
		resp, err := h.op.ClusterService.RegisterCluster(ctx, &fleetscanv1.RegisterClusterRequest{
			ClusterId: h.clusterID(i), Tenant: h.fleet.tenant(i), Labels: map[string]string{"loadgen-run": h.runID},
		})
		if err != nil {
			return fmt.Errorf("register cluster %d: %w", i, err)
		}
		h.tokens[i] = resp.JoinToken
		return nil
	})
}

func (h *run) clusterID(i int) string { return h.fleet.clusterID(i) }

// startWorkers starts one real worker per cluster, each with its own
// connection; the returned func stops them and waits.
func (h *run) startWorkers(ctx context.Context) func() {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range h.cfg.Clusters {
		dial := []grpc.DialOption{grpc.WithStreamInterceptor(h.completions.interceptor(i, &h.round))}
		if h.cut != nil {
			dial = append(dial, grpc.WithContextDialer(h.cut.dial))
		}
		w, err := worker.New(worker.Config{
			Server: h.tgt.addr(), Token: h.tokens[i], ClusterID: h.clusterID(i), Plaintext: true,
			Producer: h.producer(i), BatchSize: h.cfg.BatchSize,
			MinBackoff: 20 * time.Millisecond, MaxBackoff: time.Second, DrainTimeout: time.Second,
			DialOptions: dial, Logger: discardLogger(),
		})
		if err != nil {
			panic(err) // the configuration is the harness's own
		}
		wg.Add(1)
		go func() { defer wg.Done(); w.Run(ctx) }()
	}
	var once sync.Once
	return func() { once.Do(func() { cancel(); wg.Wait() }) }
}

// producer produces the findings of cluster i in the current round: its
// window of numbered findings.
func (h *run) producer(i int) worker.Producer {
	return func(ctx context.Context, _ *workerv1.Assign, out *worker.Output) (worker.Result, error) {
		lo, hi := h.fleet.window(i, int(h.round.Load()))
		objects := int64(2 * (hi - lo))
		out.Progress(objects)
		for k, f := range h.produced[0][lo:hi] {
			if k == (hi-lo)/2 {
				h.midpoint(ctx)
			}
			if err := out.Emit(f); err != nil {
				return worker.Result{}, err
			}
		}
		return worker.Result{ObjectsScanned: objects}, nil
	}
}

func (h *run) setPause(pause, halfway chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if pause == nil && h.pause != nil {
		close(h.pause)
	}
	h.pause, h.halfway = pause, halfway
}

// midpoint holds a job half-way while the round's restart waits for jobs
// to be in the middle of their stream.
func (h *run) midpoint(ctx context.Context) {
	h.mu.Lock()
	pause, halfway := h.pause, h.halfway
	h.mu.Unlock()
	if pause == nil {
		return
	}
	select {
	case halfway <- struct{}{}:
	case <-pause:
		return
	case <-ctx.Done():
		return
	}
	select {
	case <-pause:
	case <-ctx.Done():
	}
}

func (h *run) waitConnected(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	prefix := h.fleet.prefix
	for {
		n := 0
		for c, err := range h.op.ListClusters(ctx) {
			if err != nil {
				return fmt.Errorf("list clusters: %w", err)
			}
			if strings.HasPrefix(c.Id, prefix) && c.GetWorker().GetConnected() {
				n++
			}
		}
		if n == h.cfg.Clusters {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d workers connected: %w", n, h.cfg.Clusters, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// scan runs one fleet scan and measures it, with ListFindings calls
// going on meanwhile; restart restarts the server half-way.
func (h *run) scan(ctx context.Context, round int, restart bool) (rd Round, err error) {
	h.round.Store(int32(round))
	rd.N = round
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	qctx, stopQueries := context.WithCancel(ctx)
	queried := make(chan Latency, 1)
	go func() { queried <- h.query(qctx) }()
	before := h.listFindingsHistogram()
	completedBefore := h.completionHistogram()
	defer func() {
		stopQueries()
		rd.Query = <-queried
		if after := h.listFindingsHistogram(); after != nil && before != nil {
			rd.ServerCalls = after["+Inf"] - before["+Inf"]
			rd.ServerSlow = rd.ServerCalls - (after["0.05"] - before["0.05"])
		}
		if after := h.completionHistogram(); after != nil && completedBefore != nil {
			rd.ServerCompletion = bucketLatency(completedBefore, after)
		}
	}()

	if restart {
		h.setPause(make(chan struct{}), make(chan struct{}))
	}
	start := time.Now()
	resp, err := h.op.ScanService.StartScan(ctx, &fleetscanv1.StartScanRequest{Target: &fleetscanv1.ScanTarget{LabelSelector: "loadgen-run=" + h.runID}})
	if err != nil {
		return rd, fmt.Errorf("start scan: %w", err)
	}
	rd.ScanID = resp.Scan.Id
	h.log("round %d: scan %s of %d clusters started", round, rd.ScanID, len(resp.Scan.Jobs))
	var restarting sync.WaitGroup
	var restartErr error
	if restart {
		// The server restarts once `hold` jobs are half-way through their
		// findings, held there until it is back: the restart always hits
		// jobs in the middle of their streams.
		hold := max(1, min(h.cfg.Clusters/10, 100))
		restarting.Add(1)
		go func() {
			defer restarting.Done()
			defer h.setPause(nil, nil)
			for range hold {
				select {
				case <-h.halfway:
				case <-ctx.Done():
					return
				}
			}
			if rs, ok := h.tgt.(*replicaSet); ok {
				h.log("round %d: killing replica %d of %d (leader: %s) with %d jobs half-way; it stays down until the scan ends", round, rs.victim, len(rs.members), rs.leads(rs.victim), hold)
				restartErr = h.tgt.restart(ctx)
				rd.Restarted = true
				return
			}
			h.log("round %d: restarting the server with %d jobs half-way", round, hold)
			restartErr = h.tgt.restart(ctx)
			rd.Restarted = true
			h.log("round %d: server restarted", round)
		}()
	}
	lastLog := time.Now()
	final, err := h.op.WaitScan(ctx, rd.ScanID, 500*time.Millisecond, func(s *fleetscanv1.Scan) {
		p := s.GetProgress()
		if time.Since(lastLog) > 2*time.Second {
			lastLog = time.Now()
			h.log("round %d: %d/%d clusters done, %d findings", round, p.GetClustersDone(), p.GetClustersTotal(), p.GetFindings())
		}
	})
	restarting.Wait()
	rd.Duration = time.Since(start)
	if restartErr != nil {
		return rd, fmt.Errorf("restart: %w", restartErr)
	}
	if rs, ok := h.tgt.(*replicaSet); ok && rs.down.Load() {
		if err := rs.revive(ctx); err != nil {
			return rd, fmt.Errorf("start the killed replica again: %w", err)
		}
		h.log("round %d: replica %d started again", round, rs.victim)
	}
	if err != nil {
		return rd, fmt.Errorf("wait for scan %s: %w", rd.ScanID, err)
	}
	if final.State != fleetscanv1.ScanState_SCAN_STATE_SUCCEEDED {
		return rd, fmt.Errorf("scan %s ended %s", rd.ScanID, final.State)
	}
	for _, j := range final.Jobs {
		rd.Findings += total64(j.Findings)
		rd.MaxAttempt = max(rd.MaxAttempt, j.Attempts)
	}
	h.log("round %d: scan done in %v", round, rd.Duration.Round(time.Millisecond))
	return rd, nil
}

func total64(c *fleetscanv1.SeverityCounts) int64 {
	return c.GetCritical() + c.GetHigh() + c.GetMedium() + c.GetLow() + c.GetInfo() + c.GetSuppressed()
}

// listFindingsHistogram returns the server's latency histogram of
// ListFindings, or nil without metrics.
func (h *run) listFindingsHistogram() map[string]int64 {
	addr := h.tgt.metricsAddr()
	if addr == "" {
		return nil
	}
	hist, err := histogram("http://"+addr+"/metrics", "fleetscan_rpc_duration_seconds", `method="/fleetscan.v1.FindingService/ListFindings"`, `code="OK"`)
	if err != nil || len(hist) == 0 {
		return map[string]int64{}
	}
	return hist
}

// completionHistogram returns the server's histogram of job completion
// latency, or nil without metrics.
func (h *run) completionHistogram() map[string]int64 {
	addr := h.tgt.metricsAddr()
	if addr == "" {
		return nil
	}
	hist, err := histogram("http://"+addr+"/metrics", "fleetscan_job_completion_seconds")
	if err != nil {
		return map[string]int64{}
	}
	return hist
}

// query measures ListFindings calls during a scan: in a process of their
// own when QueryCommand is set, as a tenant's client would be, otherwise
// in this one, which the simulated workers keep busy.
func (h *run) query(ctx context.Context) Latency {
	if len(h.cfg.QueryCommand) == 0 {
		var took []time.Duration
		errs := 0
		QueryLoop(ctx, h.tenant, h.fleet.prefix, h.cfg.Clusters, h.cfg.QueryPause, func(d time.Duration, err error) {
			if err != nil {
				errs++
			} else {
				took = append(took, d)
			}
		})
		return summarize(took, errs)
	}
	token, _ := os.ReadFile(filepath.Join(h.dataDir, server.OperatorTokenFile))
	cmd := exec.Command(h.cfg.QueryCommand[0], append(slices.Clone(h.cfg.QueryCommand[1:]),
		"--addr", h.tgt.addr(), "--token", strings.TrimSpace(string(token)), "--prefix", h.fleet.prefix,
		"--clusters", fmt.Sprint(h.cfg.Clusters), "--pause", h.cfg.QueryPause.String())...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, h.cfg.Log
	if err := cmd.Start(); err != nil {
		h.log("query process: %v", err)
		return Latency{}
	}
	<-ctx.Done()
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		h.log("query process: %v", err)
	}
	var took []time.Duration
	errs := 0
	for _, line := range strings.Fields(out.String()) {
		if line == "err" {
			errs++
		} else if d, err := time.ParseDuration(line); err == nil {
			took = append(took, d)
		}
	}
	return summarize(took, errs)
}

// QueryLoop calls ListFindings for one cluster after another, as tenants
// looking at their clusters would, pausing between calls, until ctx ends;
// it reports each call's latency or error.
func QueryLoop(ctx context.Context, c *client.Client, prefix string, clusters int, pause time.Duration, record func(time.Duration, error)) {
	f := &fleet{prefix: prefix}
	for i := 0; ctx.Err() == nil; i++ {
		start := time.Now()
		_, err := c.FindingService.ListFindings(ctx, &fleetscanv1.ListFindingsRequest{ClusterId: f.clusterID((i * 7919) % clusters)})
		d := time.Since(start)
		if ctx.Err() == nil {
			record(d, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
}

func summarize(took []time.Duration, errs int) Latency {
	slices.Sort(took)
	l := Latency{Calls: len(took), Errors: errs}
	if n := len(took); n > 0 {
		l.P50, l.P99, l.Max = took[n/2], took[min(n-1, n*99/100)], took[n-1]
	}
	return l
}

// parallel runs f for 0..n-1 on width goroutines and returns the first
// error.
func parallel(ctx context.Context, n, width int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range min(width, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(ctx, i); err != nil {
					cancel(err)
				}
			}
		}()
	}
	wg.Wait()
	return context.Cause(ctx)
}
