package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
	"github.com/fleetscan/fleetscan/server/internal/api"
	"github.com/fleetscan/fleetscan/server/internal/audit"
	"github.com/fleetscan/fleetscan/server/internal/auth"
	"github.com/fleetscan/fleetscan/server/internal/devtls"
	"github.com/fleetscan/fleetscan/server/internal/history"
	"github.com/fleetscan/fleetscan/server/internal/ingest"
	"github.com/fleetscan/fleetscan/server/internal/limit"
	"github.com/fleetscan/fleetscan/server/internal/metrics"
	"github.com/fleetscan/fleetscan/server/internal/notify"
	"github.com/fleetscan/fleetscan/server/internal/pgstore"
	"github.com/fleetscan/fleetscan/server/internal/scheduler"
	"github.com/fleetscan/fleetscan/server/internal/store"
	"github.com/fleetscan/fleetscan/server/internal/web"
	"github.com/fleetscan/fleetscan/server/internal/web/console"
)

// Version of the server, reported to workers.
var Version = "0.1.0-dev"

// OperatorTokenFile is the name, in the data directory, of the file that
// holds the operator token created on first start.
const OperatorTokenFile = "operator.token"

// StorageHealthService is the name, in the standard health service, of
// the database's health: NOT_SERVING while writes fail for lack of disk
// space (the WorkerService is NOT_SERVING then too); reads go on, and the
// server as a whole ("") stays SERVING.
const StorageHealthService = "fleetscan.storage"

// DatabaseFile is the name of the bbolt database in the data directory.
const DatabaseFile = "fleetscan.db"

// Defaults are the settings of a server that Config leaves zero, and the
// defaults of fleetscan-server's flags: one place for both. Retention,
// RateLimit and RateBurst are flag defaults only, since zero means
// something there (keep everything; no limit).
var Defaults = Config{
	Listen:            "127.0.0.1:8443",
	ShutdownTimeout:   10 * time.Second,
	JobTimeout:        time.Hour,
	JobExpiry:         24 * time.Hour,
	MaxAttempts:       3,
	Heartbeat:         10 * time.Second,
	NoSpaceRetryDelay: 30 * time.Second,
	MaxMessageBytes:   ingest.DefaultMaxMessageBytes,
	RateLimit:         50,
	RateBurst:         100,
	MaxRunningJobs:    256,
	Tick:              20 * time.Second,
	Retention:         90 * 24 * time.Hour,
	NotifyRetryFor:    24 * time.Hour,
	NotifyWatch:       30 * time.Second,
}

// withDefaults fills the zero fields that have a default.
func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	d := Defaults
	setDefault(&c.Listen, d.Listen)
	setDefault(&c.ShutdownTimeout, d.ShutdownTimeout)
	setDefault(&c.JobTimeout, d.JobTimeout)
	setDefault(&c.JobExpiry, d.JobExpiry)
	setDefault(&c.MaxAttempts, d.MaxAttempts)
	setDefault(&c.Heartbeat, d.Heartbeat)
	setDefault(&c.NoSpaceRetryDelay, d.NoSpaceRetryDelay)
	setDefault(&c.MaxMessageBytes, d.MaxMessageBytes)
	setDefault(&c.MaxRunningJobs, d.MaxRunningJobs)
	setDefault(&c.Tick, d.Tick)
	setDefault(&c.NotifyRetryFor, d.NotifyRetryFor)
	setDefault(&c.NotifyWatch, d.NotifyWatch)
	return c
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// checkDataDir refuses a data directory whose operator token says a
// server ran there but whose database is missing or empty: starting afresh
// would hide the loss and overwrite the token. --init (init) says that a
// new database is what the operator wants.
func checkDataDir(dir, dbPath string, init bool) error {
	fi, err := os.Stat(dbPath)
	missing := errors.Is(err, fs.ErrNotExist)
	if err != nil && !missing {
		return fmt.Errorf("database: %w", err)
	}
	empty := err == nil && fi.Mode().IsRegular() && fi.Size() == 0
	if init {
		switch {
		case empty:
			return os.Remove(dbPath)
		case !missing:
			return fmt.Errorf("--init: %s already holds a database; move it away first if a new one is what you want", dbPath)
		}
		return nil
	}
	if !missing && !empty {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, OperatorTokenFile)); err != nil {
		return nil // a first start
	}
	state := "missing"
	if empty {
		state = "empty (0 bytes)"
	}
	return fmt.Errorf("data dir %s holds an operator token, so a server ran here, but its database %s is %s: the history is gone or --data-dir names the wrong place. Restore a backup (fleetscan-server restore), or start a new, empty database with --init", dir, dbPath, state)
}

// Config configures a server.
type Config struct {
	// DataDir holds the database and the first operator token.
	DataDir string
	// Init allows starting a new, empty database in a data directory
	// that holds an operator token but no database (or an empty file).
	Init bool
	// Listen is the gRPC address, e.g. "127.0.0.1:8443".
	Listen string
	// TLSCertFile and TLSKeyFile enable TLS. Without them the server
	// listens in plaintext, which it allows on loopback addresses only.
	TLSCertFile, TLSKeyFile string
	// Plaintext serves without TLS; allowed on a loopback address only,
	// and only when asked for.
	Plaintext bool
	// ClientCAFile, if set, verifies client certificates against it; a
	// verified certificate with a fleetscan:// URI SAN names its principal
	// (see auth.CertScheme).
	ClientCAFile string
	// DevTLS makes a local CA and a server certificate under
	// DATA_DIR/tls for DevTLSHosts (default localhost and 127.0.0.1) and
	// serves TLS with them; clients trust DATA_DIR/tls/ca.crt.
	DevTLS      bool
	DevTLSHosts []string
	// MetricsListen, if set, is the HTTP address of /metrics (Prometheus);
	// Pprof adds /debug/pprof/ there.
	MetricsListen string
	Pprof         bool
	// AddressFile, if set, receives the address actually listened on (useful
	// with port 0).
	AddressFile string
	// Store, if set, is the PostgreSQL database (a postgres:// URL or a
	// key=value DSN, as libpq reads them) that keeps the history instead
	// of the bbolt file in DataDir; any number of servers may share it
	// (docs/scaling.md). DataDir still holds the operator token and the
	// development TLS files.
	Store string
	// WebListen, if set, is the address of the web listener: the public
	// API over the Connect and gRPC-Web protocols, which browsers speak,
	// and the console. It is served with the API's TLS, or in plaintext
	// on a loopback address under the same rules. WebListener, if set,
	// is served instead (tests).
	WebListen   string
	WebListener net.Listener
	// WebAddressFile, if set, receives the web listener's address.
	WebAddressFile string
	// Listener, if set, is served instead of listening on Listen; tests
	// pass an in-process bufconn listener. TLS applies to it as configured;
	// without TLS it needs Plaintext, and a TCP listener a loopback
	// address.
	Listener net.Listener
	// ShutdownTimeout bounds the graceful drain of streams on shutdown.
	ShutdownTimeout time.Duration
	// JobTimeout ends a job that runs longer (default 1h); JobExpiry ends a
	// job whose worker does not connect in time (default 24h); MaxAttempts
	// is how often a job is sent before a lost connection fails it
	// (default 3).
	JobTimeout, JobExpiry time.Duration
	MaxAttempts           int
	// Heartbeat is how often workers are asked to send something when idle;
	// a worker silent for three intervals is disconnected (default 10s).
	Heartbeat time.Duration
	// NoSpaceRetryDelay is how long a worker is told to stay away when its
	// findings cannot be stored because the disk is full (default 30s).
	NoSpaceRetryDelay time.Duration
	// Now, if set, is the clock of token and exception expiry and of the
	// times the store records; tests advance it instead of sleeping.
	Now func() time.Time
	// MaxMessageBytes is the largest message the server receives, from
	// workers and API clients alike (default 8 MiB, at least 64 KiB). It is
	// one setting on both ends: workers are told it in their Welcome and
	// keep every batch under it.
	MaxMessageBytes int
	// TenantExceptions lets tenants create and delete exceptions inside
	// their scope.
	TenantExceptions bool
	// RateLimit is the calls a second each principal may make, with bursts
	// of RateBurst; zero is no limit.
	RateLimit float64
	RateBurst int
	// MaxRunningJobs caps the jobs dispatched at once across the fleet
	// (default 256; negative: no cap).
	MaxRunningJobs int
	// Tick is how often schedules and job deadlines are checked (default
	// 20s): the granularity of schedules and timeouts.
	Tick time.Duration
	// Retention is how long per-scan fingerprint sets (for diffs) and the
	// lifecycles of resolved findings are kept; job summaries and open
	// findings are kept, so trends still cover the whole history. Zero
	// keeps everything.
	Retention time.Duration
	// NotifyRetryFor is how long an event is tried before it is given up
	// (default a day).
	NotifyRetryFor time.Duration
	// NotifyBackoff bounds the wait between a delivery's attempts (default
	// 2 s to 5 min); tests shorten it.
	NotifyBackoff [2]time.Duration
	// NotifyAttemptTimeout bounds one delivery attempt (default 10s).
	NotifyAttemptTimeout time.Duration
	// NotifyWatch is how often offline workers and expiring exceptions are
	// looked for (default 30s).
	NotifyWatch time.Duration
	Logger      *slog.Logger
}

// MinMessageBytes is the smallest receive limit the server takes: room
// for a finding at its largest (catalog.MaxMessageBytes and the other
// fields) many times over.
const MinMessageBytes = 64 << 10

// Server is a fleetscan server.
type Server struct {
	cfg     Config
	log     *slog.Logger
	store   Store
	grpc    *grpc.Server
	health  *health.Server
	lis     net.Listener
	sched   *scheduler.Scheduler
	ingest  *ingest.Ingest
	scans   *api.ScanServer
	metrics *metrics.Metrics
	mlis    net.Listener
	web     *http.Server
	wlis    net.Listener
	webTLS  bool
	// dispatcher delivers the outbox; watcher adds what no commit reports.
	dispatcher *notify.Dispatcher
	watcher    *notify.Watcher
	// replicas is set on a PostgreSQL store, which other servers may share.
	replicas *replicas
}

// New opens the store, creates the first operator token if there is none,
// and listens. The caller must call Serve, which closes everything when it
// returns.
func New(ctx context.Context, cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if cfg.MaxMessageBytes < MinMessageBytes {
		return nil, fmt.Errorf("max message size %d bytes: the minimum is %d (64 KiB): a batch must hold at least one finding of the largest size", cfg.MaxMessageBytes, MinMessageBytes)
	}
	if cfg.DataDir == "" {
		return nil, errors.New("data dir: required")
	}
	if cfg.Pprof && cfg.MetricsListen == "" {
		return nil, errors.New("pprof: needs a metrics listener (--metrics-listen)")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if cfg.DevTLS {
		if cfg.TLSCertFile != "" {
			return nil, errors.New("tls: give --tls-cert/--tls-key or --dev-tls, not both")
		}
		hosts := cfg.DevTLSHosts
		if len(hosts) == 0 {
			hosts = []string{"localhost", "127.0.0.1", "::1"}
		}
		files, err := devtls.Ensure(filepath.Join(cfg.DataDir, "tls"), hosts)
		if err != nil {
			return nil, err
		}
		cfg.TLSCertFile, cfg.TLSKeyFile = files.Cert, files.Key
		cfg.Logger.Info("serving TLS with a development certificate; clients must trust its CA", "ca", files.CA, "hosts", hosts)
	}
	tlsConfig, err := serverTLS(cfg)
	if err != nil {
		return nil, err
	}
	var creds credentials.TransportCredentials
	if tlsConfig != nil {
		creds = credentials.NewTLS(tlsConfig)
	}
	if tlsConfig == nil {
		if a, ok := addrOf(cfg.WebListener).(*net.TCPAddr); ok && !a.IP.IsLoopback() {
			return nil, fmt.Errorf("web listener %s: plaintext is allowed on loopback only; configure TLS", a)
		}
		if cfg.WebListen != "" && cfg.WebListener == nil {
			if err := loopbackOnly("web listen address", cfg.WebListen); err != nil {
				return nil, err
			}
		}
	}
	// The metrics exist only once the store is open; damage met while
	// opening is logged all the same.
	var m *metrics.Metrics
	var hs *health.Server
	// The outbox hook runs in the store's commits, once it is open.
	var db Store
	events := notify.Builder{NewID: func() ulid.ULID { return db.NewID() }, Now: cfg.Now}
	dispatcher := &notify.Dispatcher{Sender: notify.NewSender(cfg.Now, "fleetscan-server/"+Version, cfg.NotifyAttemptTimeout), Log: cfg.Logger.With("component", "notify"),
		Now: cfg.Now, RetryFor: cfg.NotifyRetryFor, MinBackoff: cfg.NotifyBackoff[0], MaxBackoff: cfg.NotifyBackoff[1]}
	var reps *replicas
	if cfg.Store != "" {
		reps = &replicas{dispatcher: dispatcher, log: cfg.Logger.With("component", "replicas")}
		pg, err := openPostgres(ctx, cfg, events.JobEnded, reps.outboxCommitted)
		if err != nil {
			return nil, err
		}
		reps.db, db = pg, pg
	} else if db, err = openBolt(cfg, events.JobEnded, dispatcher.Wake, func() *metrics.Metrics { return m }, func() *health.Server { return hs }); err != nil {
		return nil, err
	}
	dispatcher.Outbox = db
	s := &Server{cfg: cfg, log: cfg.Logger, store: db, dispatcher: dispatcher, replicas: reps}
	if err := s.bootstrap(ctx); err != nil {
		db.Close()
		return nil, err
	}
	// A replica alone cannot tell the jobs of its previous life from
	// those of its live peers: the leader gives back those of replicas
	// that died (see recoverLoop).
	if reps == nil {
		if n, err := db.RecoverJobs(ctx, cfg.MaxAttempts); err != nil {
			db.Close()
			return nil, fmt.Errorf("recover jobs: %w", err)
		} else if n > 0 {
			s.log.Info("requeued jobs interrupted by the last shutdown", "jobs", n)
		}
	}

	sched := scheduler.New(db, scheduler.Limits{MaxRunning: cfg.MaxRunningJobs, JobTimeout: cfg.JobTimeout, JobExpiry: cfg.JobExpiry})
	sched.Log = cfg.Logger
	if reps != nil {
		reps.sched = sched
		sched.Peers = reps
	}
	s.sched = sched
	m = metrics.New(metrics.Gauges{
		WorkersConnected: func() float64 { return float64(sched.Connections()) },
		JobsRunning:      func() float64 { return float64(sched.Running()) },
		JobsWaiting:      func() float64 { return float64(sched.Waiting()) },
		StoreFull: func() float64 {
			if db.Full() {
				return 1
			}
			return 0
		},
		StoreBytes: func() float64 {
			n, _ := db.Size()
			return float64(n)
		},
		NotificationsPending: func() float64 {
			n, _ := db.PendingDeliveries()
			return float64(n)
		},
		// A scrape reads the store again only after a cluster record
		// changed: a job succeeded, a cluster was registered or changed.
		Posture: reps.leaderOnly(metrics.Cached(metrics.PostureFunc(func(ctx context.Context) ([]history.Posture, error) {
			return history.Current(ctx, db)
		}), db.ClustersVersion)),
		Leader: func() float64 {
			if reps == nil {
				return 1
			}
			return float64(reps.leading.Load())
		},
	})
	s.metrics = m
	dispatcher.OnAttempt = func(st fleetscanv1.DeliveryState) {
		m.NotificationAttempt(map[fleetscanv1.DeliveryState]string{
			fleetscanv1.DeliveryState_DELIVERY_STATE_DELIVERED: "delivered",
			fleetscanv1.DeliveryState_DELIVERY_STATE_PENDING:   "retrying",
			fleetscanv1.DeliveryState_DELIVERY_STATE_FAILED:    "failed",
		}[st])
	}
	in := ingest.New(db, sched, s.log, Version)
	in.MaxAttempts = cfg.MaxAttempts
	in.MaxMessageBytes = cfg.MaxMessageBytes
	in.Heartbeat = cfg.Heartbeat
	in.NoSpaceRetryDelay = cfg.NoSpaceRetryDelay
	in.Metrics = s.metrics
	s.ingest = in
	s.health = health.NewServer()
	hs = s.health
	s.health.SetServingStatus(StorageHealthService, healthpb.HealthCheckResponse_SERVING)
	s.health.SetServingStatus(workerv1.WorkerService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	authn := auth.New(db, store.ErrNotFound, store.ErrDataLoss)
	authn.Now = cfg.Now
	s.grpc = newGRPCServer(s.log, s.metrics, authn, db, limit.New(cfg.RateLimit, cfg.RateBurst), creds, cfg.MaxMessageBytes)
	pages := api.NewPageTokens(db.PageKey())
	fleetscanv1.RegisterClusterServiceServer(s.grpc, api.NewClusterServer(db, sched, s.log, pages))
	s.scans = api.NewScanServer(sched, db, db, in, s.log, pages)
	s.scans.JobTimeout = cfg.JobTimeout
	fleetscanv1.RegisterScanServiceServer(s.grpc, s.scans)
	fleetscanv1.RegisterFindingServiceServer(s.grpc, api.NewFindingServer(db, db, s.log, pages))
	tokens := api.NewTokenServer(db, s.log, pages)
	tokens.Now = cfg.Now
	fleetscanv1.RegisterTokenServiceServer(s.grpc, tokens)
	fleetscanv1.RegisterAuditServiceServer(s.grpc, api.NewAuditServer(db, s.log, pages))
	fleetscanv1.RegisterAdminServiceServer(s.grpc, api.NewAdminServer(db, s.log))
	exceptions := api.NewExceptionServer(db, s.log, pages)
	exceptions.TenantsMayCreate = cfg.TenantExceptions
	exceptions.Now = cfg.Now
	fleetscanv1.RegisterExceptionServiceServer(s.grpc, exceptions)
	fleetscanv1.RegisterNotifierServiceServer(s.grpc, api.NewNotifierServer(db, dispatcher.Sender, events, s.log, pages))
	s.watcher = &notify.Watcher{Store: db, Builder: events, Connected: sched.Connected, Started: cfg.Now(), Log: dispatcher.Log}
	workerv1.RegisterWorkerServiceServer(s.grpc, api.NewWorkerServer(in, s.log))
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)

	s.lis = cfg.Listener
	if s.lis == nil {
		s.lis, err = net.Listen("tcp", cfg.Listen)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("listen: %w", err)
	}
	if cfg.MetricsListen != "" {
		if s.mlis, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			s.lis.Close()
			db.Close()
			return nil, fmt.Errorf("metrics listen: %w", err)
		}
	}
	if cfg.WebListen != "" || cfg.WebListener != nil {
		if err := s.listenWeb(tlsConfig); err != nil {
			if s.mlis != nil {
				s.mlis.Close()
			}
			s.lis.Close()
			db.Close()
			return nil, err
		}
	}
	for _, f := range []struct {
		what, path string
		addr       net.Addr
	}{{"address file", cfg.AddressFile, s.lis.Addr()}, {"web address file", cfg.WebAddressFile, s.WebAddr()}} {
		if f.path == "" {
			continue
		}
		err := errors.New("no web listener (--web-listen)")
		if f.addr != nil {
			err = os.WriteFile(f.path, []byte(f.addr.String()+"\n"), 0o600)
		}
		if err != nil {
			for _, l := range []net.Listener{s.lis, s.mlis, s.wlis} {
				if l != nil {
					l.Close()
				}
			}
			db.Close()
			return nil, fmt.Errorf("%s: %w", f.what, err)
		}
	}
	return s, nil
}

// openBolt opens the embedded store in the data directory. m and hs give
// the metrics and health, which exist only once it is open: damage met
// while opening is logged all the same.
func openBolt(cfg Config, outbox store.OutboxHook, onOutbox func(), m func() *metrics.Metrics, hs func() *health.Server) (*store.DB, error) {
	dbPath := filepath.Join(cfg.DataDir, DatabaseFile)
	if err := checkDataDir(cfg.DataDir, dbPath, cfg.Init); err != nil {
		return nil, err
	}
	return store.Open(dbPath, store.Options{Now: cfg.Now, Outbox: outbox, OnOutbox: onOutbox, OnDamage: func(d *store.DamageError) {
		cfg.Logger.Error("damaged record in the database: the call failed with DATA_LOSS; run fleetscan-server check and restore a backup",
			"file", dbPath, "bucket", d.Bucket, "key", fmt.Sprintf("%x", d.Key), "reason", d.Reason)
		m().StoreDamage(d.Bucket)
	}, OnFull: func(err error) {
		st := healthpb.HealthCheckResponse_SERVING
		if err != nil {
			st = healthpb.HealthCheckResponse_NOT_SERVING
			cfg.Logger.Error("the disk of the database is full: jobs that need space fail and workers are told to retry later; reads go on. Free space: the next scan works without a restart",
				"file", dbPath, "err", err)
		} else {
			cfg.Logger.Info("the database can write again: space was freed", "file", dbPath)
		}
		if h := hs(); h != nil {
			h.SetServingStatus(StorageHealthService, st)
			h.SetServingStatus(workerv1.WorkerService_ServiceDesc.ServiceName, st)
		}
	}})
}

// openPostgres opens the PostgreSQL store of cfg.Store, migrating it.
func openPostgres(ctx context.Context, cfg Config, outbox store.OutboxHook, onOutbox func()) (*pgstore.DB, error) {
	if cfg.Init {
		return nil, errors.New("--init: a PostgreSQL store needs none: a new database is migrated when the server opens it")
	}
	openCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	db, err := pgstore.Open(openCtx, cfg.Store, pgstore.Options{Now: cfg.Now, Outbox: outbox, OnOutbox: onOutbox, Logger: cfg.Logger.With("component", "store")})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return db, nil
}

// The PostgreSQL store is a Store.
var _ Store = (*pgstore.DB)(nil)

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.lis.Addr() }

// Serve serves until ctx ends, then shuts down: health NOT_SERVING, drain
// streams under ShutdownTimeout, stop, close the store.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.grpc.Serve(s.lis) }()
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.log.Info("serving", "addr", s.lis.Addr().String(), "tls", s.cfg.TLSCertFile != "")

	// Background loops, owned here and stopped before the store closes.
	// What must run once runs in lead: here, or on the replica that leads.
	compactCtx, stopCompact := context.WithCancel(ctx)
	backgroundDone := make(chan struct{})
	go func() {
		defer close(backgroundDone)
		if s.replicas == nil {
			s.lead(compactCtx)
			return
		}
		s.replicas.run(compactCtx, s.lead)
	}()
	webDone := make(chan struct{})
	go func() {
		defer close(webDone)
		if s.web == nil {
			return
		}
		s.log.Info("serving the web API and console", "addr", s.wlis.Addr().String(), "tls", s.webTLS)
		var err error
		if s.webTLS {
			err = s.web.ServeTLS(s.wlis, "", "")
		} else {
			err = s.web.Serve(s.wlis)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("web listener", "err", err)
		}
	}()
	metricsDone := make(chan struct{})
	go func() {
		defer close(metricsDone)
		if s.mlis != nil {
			s.log.Info("serving metrics", "addr", s.mlis.Addr().String(), "pprof", s.cfg.Pprof)
			if err := s.metrics.Serve(compactCtx, s.mlis, s.log, s.cfg.Pprof); err != nil {
				s.log.Error("metrics listener", "err", err)
			}
		}
	}()

	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
		s.log.Info("shutting down")
		s.health.Shutdown()
		// Worker and watch streams never end by themselves: end them (the
		// workers' jobs go back to the queue and resume on the next server;
		// watchers watch again), so that GracefulStop can finish the calls
		// in progress.
		s.ingest.Close()
		s.scans.Close()
		if s.web != nil {
			// Browsers' calls run in the gRPC server's handlers: they
			// drain under the same timeout.
			webCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
			if err := s.web.Shutdown(webCtx); err != nil {
				s.web.Close()
			}
			cancel()
		}
		stopped := make(chan struct{})
		go func() { s.grpc.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(s.cfg.ShutdownTimeout):
			s.log.Warn("streams did not drain in time; closing them", "timeout", s.cfg.ShutdownTimeout)
			s.grpc.Stop()
			<-stopped
		}
		<-errc
	}
	if s.web != nil {
		s.web.Close() // when the gRPC server ended by itself
	}
	<-webDone
	stopCompact()
	<-backgroundDone
	<-metricsDone
	if err := s.store.Close(); err != nil && serveErr == nil {
		serveErr = fmt.Errorf("close store: %w", err)
	}
	return serveErr
}

// lead runs, until ctx ends, what must run once however many servers
// share the store: schedules and job deadlines, retention, notifications
// and, on a shared store, the recovery of the jobs of replicas that died.
func (s *Server) lead(ctx context.Context) {
	loops := []func(context.Context){
		s.compactLoop,
		func(ctx context.Context) { s.sched.Loop(ctx, s.store, s.cfg.Tick, s.log) },
		s.dispatcher.Run,
		func(ctx context.Context) { s.watcher.Run(ctx, s.cfg.NotifyWatch) },
	}
	if s.replicas != nil {
		loops = append(loops, s.recoverLoop)
	}
	var wg sync.WaitGroup
	for _, loop := range loops {
		wg.Go(func() { loop(ctx) })
	}
	wg.Wait()
}

// compactLoop drops per-scan sets older than the retention, at start and
// then every compactEvery, until ctx ends.
func (s *Server) compactLoop(ctx context.Context) {
	if s.cfg.Retention <= 0 {
		return
	}
	t := time.NewTicker(compactEvery)
	defer t.Stop()
	for {
		cutoff := time.Now().Add(-s.cfg.Retention)
		if n, err := s.store.Compact(ctx, cutoff.UnixMilli()); err != nil {
			s.log.Error("compaction", "err", err)
		} else if n > 0 {
			s.log.Info("compacted scan history", "records_dropped", n, "older_than", cutoff.Format(time.RFC3339))
		}
		// Ended deliveries are kept a month for notifier deliveries, or
		// the retention if shorter.
		deliveries := time.Now().Add(-min(s.cfg.Retention, deliveryRetention))
		if n, err := s.store.CompactDeliveries(ctx, deliveries.UnixMilli()); err != nil {
			s.log.Error("compaction of deliveries", "err", err)
		} else if n > 0 {
			s.log.Info("dropped ended deliveries", "deliveries", n, "older_than", deliveries.Format(time.RFC3339))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

const compactEvery = 6 * time.Hour

// deliveryRetention is how long ended deliveries stay listed.
const deliveryRetention = 30 * 24 * time.Hour

// bootstrap creates an operator token on first start and writes it to a
// file only the server's user can read.
func (s *Server) bootstrap(ctx context.Context) error {
	n, err := s.store.CountTokens(ctx)
	if err != nil {
		return err
	}
	path := filepath.Join(s.cfg.DataDir, OperatorTokenFile)
	if n > 0 {
		return nil
	}
	token, hash := auth.NewToken(auth.PrefixAPI)
	// Written before the hash is stored: a crash in between leaves a
	// useless file, never a stored token nobody can read.
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return fmt.Errorf("write operator token: %w", err)
	}
	if err := s.store.PutToken(ctx, hash, &storagev1.TokenRecord{Name: "bootstrap operator", Role: string(auth.RoleOperator)}); err != nil {
		return err
	}
	s.log.Info("created the first operator token", "file", path)
	return nil
}

// serverTLS is the TLS configuration of the API and web listeners, nil
// for plaintext, which it allows on loopback only.
func serverTLS(cfg Config) (*tls.Config, error) {
	if (cfg.TLSCertFile == "") != (cfg.TLSKeyFile == "") {
		return nil, errors.New("tls: give both a certificate and a key")
	}
	if cfg.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		// Go's defaults pick TLS 1.3 when the client has it and only
		// AEAD suites with forward secrecy for 1.2.
		tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if cfg.ClientCAFile != "" {
			pem, err := os.ReadFile(cfg.ClientCAFile)
			if err != nil {
				return nil, fmt.Errorf("client ca: %w", err)
			}
			tc.ClientCAs = x509.NewCertPool()
			if !tc.ClientCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("client ca %s: no PEM certificate in it", cfg.ClientCAFile)
			}
			// Tokens keep working: a certificate is one way in, not the only.
			tc.ClientAuth = tls.VerifyClientCertIfGiven
		}
		return tc, nil
	}
	if cfg.ClientCAFile != "" {
		return nil, errors.New("client ca: client certificates need TLS; give --tls-cert and --tls-key (or --dev-tls)")
	}
	if !cfg.Plaintext {
		return nil, errors.New("no TLS: give --tls-cert and --tls-key, or --dev-tls for a local CA; plaintext needs --plaintext and a loopback address")
	}
	if cfg.Listener != nil {
		// An in-process listener (bufconn, a pipe) never leaves the
		// process; a TCP one must be on loopback like Listen.
		if a, ok := cfg.Listener.Addr().(*net.TCPAddr); ok && !a.IP.IsLoopback() {
			return nil, fmt.Errorf("listener %s: plaintext is allowed on loopback only; configure TLS", a)
		}
		return nil, nil
	}
	return nil, loopbackOnly("listen address", cfg.Listen)
}

func addrOf(l net.Listener) net.Addr {
	if l == nil {
		return nil
	}
	return l.Addr()
}

// loopbackOnly refuses a plaintext listen address off loopback.
func loopbackOnly(what, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s %q: %w", what, addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%s %q: plaintext is allowed on loopback only; give --tls-cert and --tls-key, or listen on 127.0.0.1", what, addr)
	}
	return nil
}

// webServices are the services the web listener serves: the public API.
var webServices = []string{
	fleetscanv1.ClusterService_ServiceDesc.ServiceName,
	fleetscanv1.ScanService_ServiceDesc.ServiceName,
	fleetscanv1.FindingService_ServiceDesc.ServiceName,
	fleetscanv1.TokenService_ServiceDesc.ServiceName,
	fleetscanv1.AuditService_ServiceDesc.ServiceName,
	fleetscanv1.AdminService_ServiceDesc.ServiceName,
	fleetscanv1.ExceptionService_ServiceDesc.ServiceName,
	fleetscanv1.NotifierService_ServiceDesc.ServiceName,
}

// listenWeb opens the web listener, with tc's TLS when it is not nil: the
// public API for browsers, and the console at "/".
func (s *Server) listenWeb(tc *tls.Config) error {
	h, err := web.NewHandler(s.grpc, web.Options{Services: webServices, MaxMessageBytes: s.cfg.MaxMessageBytes, Console: console.Handler()})
	if err != nil {
		return err
	}
	s.wlis = s.cfg.WebListener
	if s.wlis == nil {
		if s.wlis, err = net.Listen("tcp", s.cfg.WebListen); err != nil {
			return fmt.Errorf("web listen: %w", err)
		}
	}
	s.web = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		// No write timeout: a scan's watch streams for as long as the
		// scan runs.
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if tc != nil {
		s.web.TLSConfig = tc.Clone()
		s.webTLS = true
	}
	return nil
}

// WebAddr is the address of the web listener, or nil.
func (s *Server) WebAddr() net.Addr {
	if s.wlis == nil {
		return nil
	}
	return s.wlis.Addr()
}

// newGRPCServer assembles the interceptors (recovery, logging, auth, in
// that order) and the server options.
// newGRPCServer chains the interceptors: the audit log runs before the
// authenticator, so that refused calls are recorded too, and the rate
// limit after it, since it counts per principal.
func newGRPCServer(log *slog.Logger, m *metrics.Metrics, authn *auth.Authenticator, audits audit.Store, limiter *limit.Limiter, creds credentials.TransportCredentials, maxMessage int) *grpc.Server {
	opts := []grpc.ServerOption{
		grpc.ForceServerCodecV2(newLenientCodec()),
		grpc.ChainUnaryInterceptor(recoverUnary(log), logUnary(log, m), malformedUnary, audit.UnaryInterceptor(audits, log), authn.UnaryInterceptor, limiter.UnaryInterceptor),
		grpc.ChainStreamInterceptor(recoverStream(log), logStream(log), malformedStream, audit.StreamInterceptor(audits, log), authn.StreamInterceptor, limiter.StreamInterceptor),
		grpc.MaxRecvMsgSize(maxMessage),
		grpc.MaxConcurrentStreams(1024),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		// A dead peer is found within Time+Timeout even when nothing is sent.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
	}
	if creds != nil {
		opts = append(opts, grpc.Creds(creds))
	}
	return grpc.NewServer(opts...)
}

func recoverUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("panic in handler", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
				err = status.Error(codes.Internal, "internal error")
			}
		}()
		return handler(ctx, req)
	}
}

func recoverStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("panic in handler", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
				err = status.Error(codes.Internal, "internal error")
			}
		}()
		return handler(srv, ss)
	}
}

func logUnary(log *slog.Logger, m *metrics.Metrics) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		took, code := time.Since(start), status.Code(err).String()
		log.Debug("rpc", "method", info.FullMethod, "code", code, "duration", took)
		m.RPC(info.FullMethod, code, took)
		return resp, err
	}
}

// MetricsAddr is the address of the metrics listener, or nil.
func (s *Server) MetricsAddr() net.Addr {
	if s.mlis == nil {
		return nil
	}
	return s.mlis.Addr()
}

func logStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		err := handler(srv, ss)
		log.Debug("stream", "method", info.FullMethod, "code", status.Code(err).String(), "duration", time.Since(start))
		return err
	}
}
