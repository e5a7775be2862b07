// Package metrics holds the server's Prometheus metrics and serves them,
// with pprof when asked, on an HTTP listener of their own, apart from the
// gRPC API.
package metrics

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the server's instruments. The zero value is not usable; a
// nil *Metrics records nothing, so tests and callers need not care.
type Metrics struct {
	reg *prometheus.Registry
	// serverOnly, when there are posture metrics (postureNames), has the
	// others only: a scrape that asks for others only (name[]) does not
	// read the store.
	serverOnly       *prometheus.Registry
	postureNames     []string
	findingsIngested prometheus.Counter
	batchesAcked     prometheus.Counter
	jobsEnded        *prometheus.CounterVec
	jobDuration      prometheus.Histogram
	jobCompletion    prometheus.Histogram
	rpcDuration      *prometheus.HistogramVec
	storeDamage      *prometheus.CounterVec
	notifyAttempts   *prometheus.CounterVec
}

// Gauges are read when Prometheus scrapes.
type Gauges struct {
	WorkersConnected func() float64
	JobsRunning      func() float64
	JobsWaiting      func() float64
	StoreBytes       func() float64
	StoreFull        func() float64
	// NotificationsPending counts the deliveries not yet made.
	NotificationsPending func() float64
	// Leader is 1 while this server leads the replicas that share its
	// store, else 0.
	Leader func() float64
	// Posture, if set, is read for the posture gauges (see posture.go).
	Posture PostureSource
}

// New registers the metrics.
func New(g Gauges) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		findingsIngested: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fleetscan_findings_ingested_total", Help: "Findings received from workers and durably staged.",
		}),
		batchesAcked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fleetscan_batches_acked_total", Help: "Finding batches stored and acknowledged.",
		}),
		jobsEnded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetscan_jobs_ended_total", Help: "Jobs that ended, by final state.",
		}, []string{"state"}),
		jobDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "fleetscan_job_duration_seconds", Help: "From assignment to a worker to JobDone, for succeeded jobs.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 16),
		}),
		jobCompletion: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "fleetscan_job_completion_seconds", Help: "From a worker's JobDone reaching the server to the job committed (succeeded or failed) and its Ack(job_done) queued.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 18),
		}),
		rpcDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fleetscan_rpc_duration_seconds", Help: "Duration of unary API calls, by method and status code.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "code"}),
		storeDamage: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetscan_store_damage_total", Help: "Reads that met a damaged record or page, by bucket; each failed with DATA_LOSS. Run fleetscan-server check.",
		}, []string{"bucket"}),
		notifyAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetscan_notification_attempts_total", Help: "Attempts to deliver a notification, by outcome: delivered, retrying (failed, tried again later) or failed (given up).",
		}, []string{"outcome"}),
	}
	for _, o := range []string{"delivered", "retrying", "failed"} {
		m.notifyAttempts.WithLabelValues(o) // every outcome from the first scrape: rate() needs no gap
	}
	server := []prometheus.Collector{m.findingsIngested, m.batchesAcked, m.jobsEnded, m.jobDuration, m.jobCompletion, m.rpcDuration, m.storeDamage, m.notifyAttempts,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}
	for name, f := range map[string]struct {
		help string
		fn   func() float64
	}{
		"fleetscan_workers_connected":     {"Workers holding a stream to this server.", g.WorkersConnected},
		"fleetscan_jobs_running":          {"Jobs dispatched to workers and not ended.", g.JobsRunning},
		"fleetscan_jobs_waiting":          {"Clusters whose connected worker has a job waiting for a slot under --max-running-jobs.", g.JobsWaiting},
		"fleetscan_store_bytes":           {"Size of the database: the bbolt file, or the PostgreSQL database as pg_database_size counts it.", g.StoreBytes},
		"fleetscan_replica_leader":        {"1 on the server that leads the replicas sharing its store (it runs schedules, job timeouts, retention and notifications, and exports the posture gauges), else 0; a server alone always leads.", g.Leader},
		"fleetscan_store_full":            {"1 while writes to the database fail for lack of disk space (jobs fail, workers are told to retry later), else 0.", g.StoreFull},
		"fleetscan_notifications_pending": {"Notifications not yet delivered: waiting for their next attempt or being sent.", g.NotificationsPending},
	} {
		if f.fn != nil {
			server = append(server, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: f.help}, f.fn))
		}
	}
	m.reg.MustRegister(server...)
	if g.Posture != nil {
		c := newPostureCollector(g.Posture)
		m.reg.MustRegister(c)
		m.serverOnly = prometheus.NewRegistry()
		m.serverOnly.MustRegister(server...)
		m.postureNames = c.names
	}
	return m
}

// NotificationAttempt counts an attempt to deliver a notification by its
// outcome: "delivered", "retrying" or "failed".
func (m *Metrics) NotificationAttempt(outcome string) {
	if m != nil {
		m.notifyAttempts.WithLabelValues(outcome).Inc()
	}
}

// FindingsStaged counts a stored batch of n findings.
func (m *Metrics) FindingsStaged(n int) {
	if m != nil {
		m.findingsIngested.Add(float64(n))
		m.batchesAcked.Inc()
	}
}

// JobEnded counts a job that ended in state, after d when it succeeded.
func (m *Metrics) JobEnded(state string, d time.Duration) {
	if m != nil {
		m.jobsEnded.WithLabelValues(state).Inc()
		if d > 0 {
			m.jobDuration.Observe(d.Seconds())
		}
	}
}

// JobCompleted records how long a JobDone took to be committed and
// acknowledged.
func (m *Metrics) JobCompleted(d time.Duration) {
	if m != nil {
		m.jobCompletion.Observe(d.Seconds())
	}
}

// StoreDamage counts a read that met damage in bucket.
func (m *Metrics) StoreDamage(bucket string) {
	if m != nil {
		m.storeDamage.WithLabelValues(bucket).Inc()
	}
}

// RPC records a unary call.
func (m *Metrics) RPC(method, code string, d time.Duration) {
	if m != nil {
		m.rpcDuration.WithLabelValues(method, code).Observe(d.Seconds())
	}
}

// Handler serves the metrics in Prometheus's formats. A collector that
// fails (the posture's read of the store) is logged to log and left out of
// that scrape; the other metrics are served. A scrape may ask for some
// metrics only, with name[] parameters (promhttp's filter); one that asks
// for no posture metric does not read the posture at all, so a tool that
// polls one gauge often (fleetscan-loadgen reads go_goroutines five times
// a second) costs nothing per cluster.
func (m *Metrics) Handler(log *slog.Logger) http.Handler {
	opts := promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	}
	all := promhttp.HandlerFor(m.reg, opts)
	if m.serverOnly == nil {
		return all
	}
	server := promhttp.HandlerFor(m.serverOnly, opts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		names := r.URL.Query()["name[]"]
		if len(names) > 0 && !slices.ContainsFunc(names, func(n string) bool { return slices.Contains(m.postureNames, n) }) {
			server.ServeHTTP(w, r)
			return
		}
		all.ServeHTTP(w, r)
	})
}

// Serve serves /metrics (and /debug/pprof/ when pprofOn) on lis until ctx
// ends.
func (m *Metrics) Serve(ctx context.Context, lis net.Listener, log *slog.Logger, pprofOn bool) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler(log))
	if pprofOn {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		err := srv.Shutdown(shutdownCtx)
		if serveErr := <-errc; !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
			err = serveErr
		}
		return err
	}
}
