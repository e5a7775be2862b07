package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestSharedServer: one server for the test binary, set up as the store's
// tests need it (durable commits, loopback only, not root), with a
// database per test that no other test sees.
func TestSharedServer(t *testing.T) {
	s := Shared(t)
	if again := Shared(t); again != s {
		t.Fatal("a second Shared started another server")
	}
	t.Logf("the shared server started in %v", s.Started)
	ctx := context.Background()
	conn := connect(t, s.DSN("postgres"))
	for setting, want := range map[string]string{
		"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on",
		"listen_addresses": "127.0.0.1", "unix_socket_directories": filepath.Join(s.Dir(), "sock"),
	} {
		var got string
		if err := conn.QueryRow(ctx, "SELECT current_setting($1)", setting).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s = %q, want %q", setting, got, want)
		}
	}
	if uid := processUID(t, s.PID()); os.Geteuid() == 0 {
		u, err := user.Lookup(account)
		if err != nil {
			t.Fatal(err)
		}
		if uid != u.Uid {
			t.Errorf("postgres runs as uid %s, want %s's (%s)", uid, account, u.Uid)
		}
	} else if uid != fmt.Sprint(os.Geteuid()) {
		t.Errorf("postgres runs as uid %s, want ours (%d)", uid, os.Geteuid())
	}

	// Databases of parallel tests are apart.
	t.Run("databases", func(t *testing.T) {
		for i := range 3 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				began := time.Now()
				dsn := s.CreateDatabase(t, "")
				t.Logf("created a database in %v", time.Since(began))
				conn := connect(t, dsn)
				table := fmt.Sprintf("only_in_%d", i)
				if _, err := conn.Exec(ctx, "CREATE TABLE "+table+" (x int)"); err != nil {
					t.Fatal(err)
				}
				var tables []string
				rows, _ := conn.Query(ctx, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
				tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
				if err != nil {
					t.Fatal(err)
				}
				if len(tables) != 1 || tables[0] != table {
					t.Errorf("tables %q, want only %s", tables, table)
				}
			})
		}
	})
}

// processUID returns the real uid of a process.
func processUID(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			return strings.Fields(rest)[0]
		}
	}
	t.Fatalf("/proc/%d/status has no Uid", pid)
	return ""
}

// TestStartStop: a server of a test's own is apart from the shared one,
// and once the test is over it is gone with its directory.
func TestStartStop(t *testing.T) {
	shared := Shared(t)
	var s *Server
	t.Run("own", func(t *testing.T) {
		s = Start(t)
		if s.Dir() == shared.Dir() || s.port == shared.port {
			t.Fatalf("own server at %s, port %d, like the shared one", s.Dir(), s.port)
		}
		conn := connect(t, s.CreateDatabase(t, "own"))
		if err := conn.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := os.Stat(s.Dir()); !os.IsNotExist(err) {
		t.Errorf("the stopped server's directory: %v, want it removed", err)
	}
	select {
	case <-s.proc.done:
	default:
		t.Error("postgres still runs after the test that started it ended")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if conn, err := pgx.Connect(ctx, s.DSN("postgres")); err == nil {
		conn.Close(ctx)
		t.Error("the stopped server's port still accepts connections")
	}
}

// TestStartFailureShowsLog: when postgres does not start, the error says
// why in postgres's own words, at once rather than at the deadline, and
// nothing is left behind.
func TestStartFailureShowsLog(t *testing.T) {
	_, err := start(t.Logf, []string{"-c", "no_such_setting=1"})
	if err == nil {
		t.Fatal("a server with an unknown setting started")
	}
	for _, want := range []string{"postgres did not start", "it exited", `unrecognized configuration parameter "no_such_setting"`, "postgres.log"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\nwant it to say %q", err, want)
		}
	}
	m := regexp.MustCompile(`--- (\S+)/postgres\.log ---`).FindStringSubmatch(err.Error())
	if m == nil {
		t.Fatalf("error %q names no log", err)
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("the failed server's directory %s: %v, want it removed", m[1], err)
	}
}

// TestSweepStale: a directory whose test binary is gone is removed; those
// of running test binaries, and those without an owner yet, are kept.
func TestSweepStale(t *testing.T) {
	parent := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	live, err := ownerLine()
	if err != nil {
		t.Fatal(err)
	}
	dirs := map[string]string{
		"dead":     fmt.Sprintf("%d 12345\n", dead.Process.Pid),
		"reused":   fmt.Sprintf("%d 1\n", os.Getpid()), // our pid, another start time
		"live":     live,
		"no-owner": "",
	}
	for name, owner := range dirs {
		dir := filepath.Join(parent, dirPrefix+name)
		if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
			t.Fatal(err)
		}
		if owner != "" {
			if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(owner), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	sweepStale(parent)
	for name, kept := range map[string]bool{"dead": false, "reused": false, "live": true, "no-owner": true} {
		_, err := os.Stat(filepath.Join(parent, dirPrefix+name))
		if got := err == nil; got != kept {
			t.Errorf("%s: kept %v, want %v (%v)", name, got, kept, err)
		}
	}
}

func TestIdentifier(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"TestX", "testx"},
		{"TestStore/parallel#01", "teststore_parallel_01"},
		{"9lives", "db_9lives"},
		{"", "db_"},
		{strings.Repeat("a", 80), strings.Repeat("a", 40)},
		{"Ünïcode", "_n_code"},
	} {
		if got := identifier(tc.in); got != tc.want {
			t.Errorf("identifier(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestFindBinDir: $FLEETSCAN_PG_BINDIR is used when it holds the
// programs, and named in the error when it does not.
func TestFindBinDir(t *testing.T) {
	with := t.TempDir()
	for _, name := range []string{"initdb", "postgres"} {
		if err := os.WriteFile(filepath.Join(with, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(binDirEnv, with)
	if dir, err := findBinDir(); err != nil || dir != with {
		t.Errorf("findBinDir() = %q, %v; want %q", dir, err, with)
	}
	without := t.TempDir()
	t.Setenv(binDirEnv, without)
	if dir, err := findBinDir(); err == nil || !strings.Contains(err.Error(), binDirEnv+"="+without+" has no initdb and postgres") {
		t.Errorf("findBinDir() = %q, %v; want an error naming %s", dir, err, binDirEnv)
	}
}
