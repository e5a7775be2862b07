package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Deadlines of a server's start and stop. They are generous: they only
// bound a wait for an event (a connection accepted, the process gone) on
// a slow or loaded machine, and are never slept out.
const (
	readyTimeout = 2 * time.Minute
	stopTimeout  = time.Minute
	// bindAttempts: the port is picked free, but another process may take
	// it before postgres binds it; then a new port is tried.
	bindAttempts = 3
)

// superuser is the role initdb creates, which the tests connect as.
const superuser = "postgres"

// Server is a running PostgreSQL server.
type Server struct {
	dir  string // removed when the server stops: data/, sock/, postgres.log
	port int
	proc *process
	// admin connects to the postgres database, to create the tests'.
	admin *pgxpool.Pool
	seq   atomic.Int64
	// Started is how long the start took, initdb and readiness included.
	Started time.Duration
}

// Start starts a server of the test's own, stopped and removed when the
// test ends. Most tests should share one instead (Shared).
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := start(t.Logf, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return s
}

// Launch starts a server for a program that is not a test (the load
// harness): the caller must Stop it. logf hears of installs and the
// start.
func Launch(logf func(string, ...any)) (*Server, error) { return start(logf, nil) }

// Stop stops a server from Launch and removes its directory.
func (s *Server) Stop() error { return s.stop() }

// NewDatabase creates a database named name on the server and returns
// its DSN; it lives as long as the server.
func (s *Server) NewDatabase(ctx context.Context, name string) (string, error) {
	db := identifier(name)
	if _, err := s.admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()); err != nil {
		return "", fmt.Errorf("pgtest: create database %s: %w", db, err)
	}
	return s.DSN(db), nil
}

var shared struct {
	sync.Mutex
	running bool // Main is running the tests
	tried   bool
	s       *Server
	err     error
}

// Shared returns the server that the tests of this test binary share,
// starting it on first use; a start that failed fails every test that
// asks. The package's TestMain must run its tests through Main, which
// stops the server when they are done.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if !shared.running {
		t.Fatal("pgtest.Shared needs the package's TestMain to run its tests through pgtest.Main, which stops the shared server at the end: func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }")
	}
	if !shared.tried {
		shared.tried = true
		shared.s, shared.err = start(t.Logf, nil)
	}
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.s
}

// Main runs the tests of m and then stops the shared server, if one was
// started, and returns the exit code for os.Exit.
func Main(m interface{ Run() int }) int {
	return Wrap(m).Run()
}

// Wrap returns m with a Run that stops the shared server after the tests,
// for a TestMain that hands m on, e.g. to goleak.VerifyTestMain.
func Wrap(m interface{ Run() int }) interface{ Run() int } {
	return wrapped{m}
}

type wrapped struct{ m interface{ Run() int } }

func (w wrapped) Run() int {
	shared.Lock()
	shared.running = true
	shared.Unlock()
	code := w.m.Run()
	shared.Lock()
	defer shared.Unlock()
	shared.running = false
	if shared.s != nil {
		if err := shared.s.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
		shared.s = nil
	}
	return code
}

// DSN returns the URL of database db on the server, for pgx, as the
// superuser.
func (s *Server) DSN(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(superuser),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Dir is the server's directory; its data directory is Dir()/data.
func (s *Server) Dir() string { return s.dir }

// PID is the postmaster's process id.
func (s *Server) PID() int { return s.proc.cmd.Process.Pid }

// CreateDatabase creates a database for the test alone and returns its
// DSN; it is dropped when the test ends. Its name is name (the test's
// when empty), made a plain identifier, with a number unique on the
// server appended.
func (s *Server) CreateDatabase(t testing.TB, name string) string {
	t.Helper()
	if name == "" {
		name = t.Name()
	}
	db := fmt.Sprintf("%s_%d", identifier(name), s.seq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database %s: %v", db, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// FORCE: connections the test left open are ended.
		if _, err := s.admin.Exec(ctx, "DROP DATABASE "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", db, err)
		}
	})
	return s.DSN(db)
}

// identifier turns a test's name into lowercase letters, digits and
// underscores, short enough to leave room for a number within
// PostgreSQL's 63 bytes.
func identifier(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if b.Len() == 40 {
			break
		}
		if ('a' <= r && r <= 'z') || ('0' <= r && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 || ('0' <= b.String()[0] && b.String()[0] <= '9') {
		return "db_" + b.String()
	}
	return b.String()
}

// start installs what is missing, then initialises and starts a server.
// extra are more arguments for postgres (a test's).
func start(logf func(string, ...any), extra []string) (*Server, error) {
	began := time.Now()
	bin, err := binDir(logf)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	cred, err := credential()
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	sweepStale(os.TempDir())
	s := &Server{}
	if s.dir, err = os.MkdirTemp("", dirPrefix+"*"); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if err := s.initdb(bin, cred); err != nil {
		os.RemoveAll(s.dir)
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	for attempt := 1; ; attempt++ {
		err = s.run(bin, cred, extra)
		if err == nil || !errors.Is(err, errPortTaken) || attempt == bindAttempts {
			break
		}
	}
	if err != nil {
		os.RemoveAll(s.dir)
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s.Started = time.Since(began)
	logf("pgtest: PostgreSQL (%s) started on 127.0.0.1:%d in %v, in %s", bin, s.port, s.Started.Round(time.Millisecond), s.dir)
	return s, nil
}

// initdb writes the owner file, hands the directory to the server's user
// and initialises the data directory in it.
func (s *Server) initdb(bin string, cred *syscall.Credential) error {
	owner, err := ownerLine()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(s.dir, ownerFile), []byte(owner), 0o644); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(s.dir, "sock"), 0o700); err != nil {
		return err
	}
	if cred != nil {
		for _, p := range []string{s.dir, filepath.Join(s.dir, "sock")} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				return err
			}
		}
	}
	var out bytes.Buffer
	cmd := exec.Command(filepath.Join(bin, "initdb"),
		"--pgdata", filepath.Join(s.dir, "data"),
		"--username", superuser,
		// Only loopback listens (listen_addresses below); the socket is
		// in a directory only the server's user can enter.
		"--auth", "trust",
		"--encoding", "UTF8", "--locale", "C",
		// initdb's own fsync of the new files is not what the tests
		// test; the server runs with fsync on.
		"--no-sync", "--no-instructions")
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = s.dir, childEnv(s.dir), &out, &out
	p, err := launch(cmd, cred)
	if err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	<-p.done
	if p.err != nil {
		return fmt.Errorf("initdb: %v\n%s", p.err, out.Bytes())
	}
	return nil
}

// errPortTaken: postgres could not bind its port.
var errPortTaken = errors.New("port taken")

// run starts postgres on a free port and waits until it accepts a
// connection.
func (s *Server) run(bin string, cred *syscall.Credential, extra []string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	logPath := filepath.Join(s.dir, "postgres.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close() // postgres has its own descriptor
	args := append([]string{
		"-D", filepath.Join(s.dir, "data"),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "port=" + strconv.Itoa(port),
		"-c", "unix_socket_directories=" + filepath.Join(s.dir, "sock"),
		// Durable commits, as in production: the store's tests rely on
		// what a commit means.
		"-c", "fsync=on",
		"-c", "synchronous_commit=on",
		"-c", "full_page_writes=on",
		// Many tests at once, each with a pool.
		"-c", "max_connections=300",
		"-c", "logging_collector=off",
	}, extra...)
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = s.dir, childEnv(s.dir), logFile, logFile
	p, err := launch(cmd, cred)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	s.port, s.proc = port, p
	if err := s.waitReady(); err != nil {
		p.halt()
		log, _ := os.ReadFile(logPath)
		if bytes.Contains(log, []byte("could not bind")) || bytes.Contains(log, []byte("could not create any TCP/IP sockets")) {
			err = fmt.Errorf("%w: %w", errPortTaken, err)
		}
		return fmt.Errorf("postgres did not start: %w\n--- %s ---\n%s", err, logPath, log)
	}
	cfg, err := pgxpool.ParseConfig(s.DSN("postgres"))
	if err != nil {
		return err
	}
	cfg.MaxConns = 4
	if s.admin, err = pgxpool.NewWithConfig(context.Background(), cfg); err != nil {
		p.halt()
		return err
	}
	return nil
}

// waitReady waits until the server accepts a connection on its socket,
// it exits, or readyTimeout passes, and checks that its TCP port is its
// own. The socket's directory is the server's alone, whereas a port
// picked free may have been taken meanwhile by another test's server,
// which would accept our connections as well; postgres exits when it
// cannot bind the port, but not at once.
func (s *Server) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	retry := time.NewTicker(20 * time.Millisecond)
	defer retry.Stop()
	socket := fmt.Sprintf("host=%s port=%d user=%s dbname=postgres", filepath.Join(s.dir, "sock"), s.port, superuser)
	for {
		// A connection that hangs is not waited for beyond a few seconds.
		attempt, cancelAttempt := context.WithTimeout(ctx, 5*time.Second)
		conn, err := pgx.Connect(attempt, socket)
		cancelAttempt()
		if err == nil {
			conn.Close(ctx)
			break
		}
		select {
		case <-s.proc.done:
			return fmt.Errorf("it exited: %v", s.proc.err)
		case <-ctx.Done():
			return fmt.Errorf("no connection within %v: %w", readyTimeout, err)
		case <-retry.C:
		}
	}
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return fmt.Errorf("connect over TCP: %w", err)
	}
	defer conn.Close(ctx)
	var dataDir string
	if err := conn.QueryRow(ctx, "SHOW data_directory").Scan(&dataDir); err != nil {
		return fmt.Errorf("connect over TCP: %w", err)
	}
	if want := filepath.Join(s.dir, "data"); dataDir != want {
		return fmt.Errorf("%w: 127.0.0.1:%d is the server of %s", errPortTaken, s.port, dataDir)
	}
	return nil
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// childEnv is the environment of initdb and postgres: nothing of ours
// (a PGDATA or PGPORT would change what they do).
func childEnv(dir string) []string {
	return []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + dir, "LC_ALL=C", "TZ=UTC"}
}

// stop shuts the server down (fast: open sessions are ended) and removes
// its directory.
func (s *Server) stop() error {
	if s.admin != nil {
		s.admin.Close()
	}
	s.proc.signal(syscall.SIGINT)
	var err error
	select {
	case <-s.proc.done:
	case <-time.After(stopTimeout):
		s.proc.halt()
		log, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
		err = fmt.Errorf("postgres did not stop within %v of a fast shutdown\n%s", stopTimeout, log)
	}
	if rmErr := os.RemoveAll(s.dir); rmErr != nil && err == nil {
		err = rmErr
	}
	return err
}
