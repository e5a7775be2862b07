package worker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/fleetscan/fleetscan/internal/replicaset"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/worker/internal/session"
)

// Version of the worker, sent in Hello.
var Version = "0.1.0-dev"

// Source is where the worker reads the cluster from: its API server, or a
// snapshot directory.
type Source = session.Source

// Producer produces the findings of one job in place of collecting the
// cluster and running the checks. It is for simulators and load tests:
// a worker with a Producer speaks the real protocol (batches, acks,
// back-pressure, resume after a reconnect) about synthetic findings.
// out.Emit takes each finding and blocks while the server is behind;
// out.Progress reports objects read. It must stop when ctx ends.
type Producer = session.Producer

// Output is where a Producer puts a job's findings.
type Output = session.Output

// Result is what a Producer reports when a job ends.
type Result = session.Result

// Config configures a worker.
type Config struct {
	// Server is the server's gRPC address, host:port, or the addresses of
	// several replicas of it, comma-separated. The worker connects to one
	// of them, picked at random, and to another when that one fails; a
	// name that resolves to several addresses is used the same way.
	Server string
	// Token is the cluster's join token (from registration or rotation),
	// or the worker's own credential.
	Token string
	// CredentialFile keeps the worker's own credential, which the server
	// gives in exchange for the single-use join token on first connect. If
	// it holds a credential, that is used instead of Token; without it the
	// credential lives in memory only, and a restarted worker needs a new
	// join token ('fleetscan cluster rotate-token').
	CredentialFile string
	// ClusterID is the cluster the token was issued for.
	ClusterID string
	// Source is where jobs read the cluster from. It may be nil when
	// Producer is set.
	Source Source
	// Producer, if set, produces every job's findings instead of Source
	// and the checks (simulators and load tests).
	Producer Producer
	// CAFile, if set, verifies the server's TLS certificate against it;
	// otherwise the system roots are used. TLS is off only when Plaintext is
	// set, which is allowed for loopback servers only.
	CAFile    string
	Plaintext bool
	// CertFile and KeyFile, if set, present a client certificate (mTLS):
	// one with the SAN fleetscan://worker/CLUSTER_ID replaces the token
	// on a server with a client CA.
	CertFile, KeyFile string
	// BatchSize caps the findings per batch (default 500).
	BatchSize int
	// BatchBytes caps a batch's encoded size (default 1 MiB); the server's
	// announced message limit lowers it.
	BatchBytes int
	// MaxInflight caps batches awaiting the server's ack (default 8).
	MaxInflight int
	// Policies are local custom checks run in every job.
	Policies []*fleetscanv1.CustomCheck
	// TrustedRegistries is the registry allow-list for jobs that bring none.
	TrustedRegistries []string
	// DeniedRegistries is a registry deny-list added to every job's.
	DeniedRegistries []string
	// MinBackoff and MaxBackoff bound the wait between reconnects.
	MinBackoff, MaxBackoff time.Duration
	Logger                 *slog.Logger
	// DialOptions are added to the connection's options (tests dial
	// bufconn).
	DialOptions []grpc.DialOption
	// DrainTimeout bounds how long Run, once stopped, waits for the server
	// to confirm finished jobs (default 10s).
	DrainTimeout time.Duration
	// Capabilities overrides the protocol capabilities announced in Hello
	// (tests play an old worker with an empty, non-nil slice).
	Capabilities []string
}

// Worker connects a cluster to the server.
type Worker struct {
	cfg    Config
	conn   *grpc.ClientConn
	bearer *bearer
	// triedJoin: the join token was tried after the kept credential was
	// refused; a second refusal is final.
	triedJoin bool
}

// HasCredential reports whether path holds a kept worker credential.
func HasCredential(path string) bool {
	if path == "" {
		return false
	}
	b, err := os.ReadFile(path)
	return err == nil && strings.TrimSpace(string(b)) != ""
}

// New validates the configuration and prepares the connection; nothing is
// dialled until Run.
func New(cfg Config) (*Worker, error) {
	switch {
	case cfg.Server == "":
		return nil, errors.New("server address: required")
	case cfg.Token == "" && cfg.CertFile == "" && !HasCredential(cfg.CredentialFile):
		return nil, errors.New("token: required (the join token printed by 'fleetscan cluster register')")
	case cfg.ClusterID == "":
		return nil, errors.New("cluster id: required")
	case cfg.Source == nil && cfg.Producer == nil:
		return nil, errors.New("source: give a kubeconfig, run in a cluster, or give a snapshot directory")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.MaxInflight <= 0 {
		cfg.MaxInflight = 8
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 10 * time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	creds, err := transportCredentials(cfg)
	if err != nil {
		return nil, err
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
	}
	token := cfg.Token
	if HasCredential(cfg.CredentialFile) {
		b, _ := os.ReadFile(cfg.CredentialFile)
		token = strings.TrimSpace(string(b))
	}
	b := &bearer{token: token, secure: !cfg.Plaintext}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(b))
	}
	target, dial := replicaset.Dial(cfg.Server)
	opts = append(opts, dial...)
	opts = append(opts, cfg.DialOptions...)
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("server address %q: %w", cfg.Server, err)
	}
	return &Worker{cfg: cfg, conn: conn, bearer: b}, nil
}

func transportCredentials(cfg Config) (credentials.TransportCredentials, error) {
	if cfg.Plaintext {
		if len(cfg.DialOptions) == 0 && slices.ContainsFunc(replicaset.Addrs(cfg.Server), func(a string) bool { return !loopback(a) }) {
			return nil, fmt.Errorf("server %q: plaintext is allowed to loopback addresses only; give the server's CA with --ca", cfg.Server)
		}
		return insecure.NewCredentials(), nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca %s: no PEM certificate in it", cfg.CAFile)
		}
	}
	if cfg.CertFile != "" || cfg.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return credentials.NewTLS(tc), nil
}

func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// bearer sends the worker's token with every call; the join token until
// the server has exchanged it.
type bearer struct {
	mu     sync.Mutex
	token  string
	secure bool
}

func (b *bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b *bearer) RequireTransportSecurity() bool { return b.secure }

func (b *bearer) get() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.token
}

func (b *bearer) set(token string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.token = token
}

// joinTokenPrefix marks a join token (fleetscan cluster register or
// rotate-token).
const joinTokenPrefix = "fsj_"

// fallBackToJoinToken handles a kept credential that the server refuses,
// as after 'fleetscan cluster rotate-token': when the worker was also given
// a join token, it forgets the credential and connects once with the join
// token, which gets it a new one. It reports whether to try again.
func (w *Worker) fallBackToJoinToken(log *slog.Logger) bool {
	if w.triedJoin || !strings.HasPrefix(w.cfg.Token, joinTokenPrefix) || w.bearer.get() == w.cfg.Token {
		return false
	}
	w.triedJoin = true
	log.Warn("the server refused the kept credential (rotated?); connecting with the join token instead", "file", w.cfg.CredentialFile)
	if w.cfg.CredentialFile != "" {
		if err := os.Remove(w.cfg.CredentialFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			log.Error("cannot remove the refused credential", "err", err)
		}
	}
	w.bearer.set(w.cfg.Token)
	return true
}

// keepCredential switches to the worker's own credential and stores it in
// CredentialFile (atomically, mode 0600) for the next start.
func (w *Worker) keepCredential(log *slog.Logger, token string) {
	w.bearer.set(token)
	if w.cfg.CredentialFile == "" {
		log.Warn("got a worker credential in exchange for the join token, but there is no --credential-file to keep it in: after a restart this worker needs a new join token")
		return
	}
	tmp := w.cfg.CredentialFile + ".tmp"
	err := os.WriteFile(tmp, []byte(token+"\n"), 0o600)
	if err == nil {
		err = os.Rename(tmp, w.cfg.CredentialFile)
	}
	if err != nil {
		log.Error("cannot keep the worker credential; it works until this worker stops", "file", w.cfg.CredentialFile, "err", err)
		return
	}
	log.Info("join token exchanged; the worker's credential is kept", "file", w.cfg.CredentialFile)
}

// Run holds a stream to the server until ctx ends, reconnecting with
// jittered exponential backoff whenever it breaks; jobs go on meanwhile
// and resume on the next stream. It returns early only when the server
// refuses the worker's credential, which retrying cannot fix. When ctx
// ends, jobs still running stop, and jobs that finished get up to
// DrainTimeout to reach the server.
func (w *Worker) Run(ctx context.Context) error {
	defer w.conn.Close()
	log := w.cfg.Logger.With("cluster", w.cfg.ClusterID, "server", w.cfg.Server)
	runner := session.NewRunner(session.Config{
		ClusterID: w.cfg.ClusterID, WorkerVersion: Version, Source: w.cfg.Source, Producer: w.cfg.Producer,
		BatchSize: w.cfg.BatchSize, BatchBytes: w.cfg.BatchBytes, MaxInflight: w.cfg.MaxInflight, Policies: w.cfg.Policies,
		TrustedRegistries: w.cfg.TrustedRegistries, DeniedRegistries: w.cfg.DeniedRegistries, Capabilities: w.cfg.Capabilities, Log: log,
		OnCredential: func(token string) { w.keepCredential(log, token) },
	})
	// Streams outlive ctx by the drain.
	streamCtx, stopStreams := context.WithCancel(context.WithoutCancel(ctx))
	// Jobs stop with ctx, or when Run returns early (a refused credential).
	jobsCtx, stopJobs := context.WithCancel(ctx)
	var bg sync.WaitGroup
	defer bg.Wait()
	defer stopStreams()
	defer stopJobs()
	bg.Add(2)
	go func() { defer bg.Done(); runner.Start(jobsCtx) }()
	go func() {
		defer bg.Done()
		select {
		case <-streamCtx.Done():
			return
		case <-ctx.Done():
		}
		drainCtx, cancel := context.WithTimeout(streamCtx, w.cfg.DrainTimeout)
		defer cancel()
		if !runner.Drain(drainCtx) {
			log.Warn("stopping before the server confirmed every finished job; it runs them again", "held", len(runner.Held()))
		}
		stopStreams()
	}()
	retry := &backoff{min: w.cfg.MinBackoff, max: w.cfg.MaxBackoff}
	for {
		var welcomedAt time.Time
		var progressed atomic.Bool
		err := runner.Serve(streamCtx, w.conn, session.Events{
			Welcomed:   func() { welcomedAt = time.Now() },
			Progressed: func() { progressed.Store(true) },
		})
		if ctx.Err() != nil {
			return nil
		}
		switch status.Code(err) {
		case codes.Unauthenticated, codes.PermissionDenied:
			if w.fallBackToJoinToken(log) {
				continue
			}
			return fmt.Errorf("the server refused this worker: %w", err)
		}
		var up time.Duration
		if !welcomedAt.IsZero() {
			up = time.Since(welcomedAt)
		}
		wait := max(retry.after(progressed.Load(), up), retryDelay(err))
		log.Warn("disconnected from the server; reconnecting", "err", err, "retry_in", wait.Round(time.Millisecond), "jobs_held", len(runner.Held()))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// retryDelay is how long the server asked the worker to stay away (a
// RetryInfo detail: its disk is full, say), zero when it did not say. It is
// capped at ten minutes, so that a wrong value cannot park a worker.
func retryDelay(err error) time.Duration {
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return min(ri.GetRetryDelay().AsDuration(), 10*time.Minute)
		}
	}
	return 0
}

// backoff is the wait between reconnects. It doubles with every stream
// that ends without progress, up to max, and is back at min after one
// that made progress (the server acked or assigned something) or stayed
// up at least max. A Welcome alone does not reset it: a server that
// accepts the worker and then refuses what it sends (a message too
// large, a batch it cannot store) would otherwise be hammered at the
// shortest interval for ever.
type backoff struct {
	min, max, cur time.Duration
}

// after returns how long to wait after a stream that ended, jittered
// over the upper half of the current interval.
func (b *backoff) after(progressed bool, up time.Duration) time.Duration {
	if b.cur == 0 || progressed || up >= b.max {
		b.cur = b.min
	}
	wait := b.cur/2 + rand.N(b.cur/2+1)
	b.cur = min(2*b.cur, b.max)
	return wait
}
