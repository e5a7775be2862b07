package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fleetscan/fleetscan/server"
)

// serveOnce starts the server on dir, waits until it listens, and stops
// it: what a first start leaves behind.
func serveOnce(t *testing.T, dir string, extra ...string) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrFile := filepath.Join(t.TempDir(), "addr")
	done := make(chan error, 1)
	args := append([]string{"--data-dir", dir, "--plaintext", "--listen", "127.0.0.1:0", "--address-file", addrFile}, extra...)
	go func() { done <- run(ctx, args, io.Discard, io.Discard) }()
	for {
		select {
		case err := <-done:
			return err
		default:
		}
		if _, err := os.Stat(addrFile); err == nil {
			cancel()
			return <-done
		}
		time.Sleep(10 * time.Millisecond) // polling for the file; no time limit
	}
}

// TestDataDirWithoutDatabase: a data directory that holds an operator
// token but no database, or an empty one, is refused with an error that
// says what to do; --init starts a new database there and a new token.
func TestDataDirWithoutDatabase(t *testing.T) {
	for _, lose := range []struct {
		name string
		do   func(path string) error
	}{
		{"missing", os.Remove},
		{"empty", func(path string) error { return os.Truncate(path, 0) }},
	} {
		t.Run(lose.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := serveOnce(t, dir); err != nil {
				t.Fatalf("first start: %v", err)
			}
			oldToken, _ := os.ReadFile(filepath.Join(dir, server.OperatorTokenFile))
			if err := lose.do(filepath.Join(dir, server.DatabaseFile)); err != nil {
				t.Fatal(err)
			}
			err := serveOnce(t, dir)
			if exitCode(err) != 2 || !strings.Contains(fmtErr(err), "--init") || !strings.Contains(fmtErr(err), lose.name) {
				t.Fatalf("start without the database: exit %d (%v); want 2 and an error that says the database is %s and names --init", exitCode(err), err, lose.name)
			}
			if token, _ := os.ReadFile(filepath.Join(dir, server.OperatorTokenFile)); !bytes.Equal(token, oldToken) {
				t.Fatal("the refused start overwrote the operator token")
			}
			if err := serveOnce(t, dir, "--init"); err != nil {
				t.Fatalf("start with --init: %v", err)
			}
			if token, _ := os.ReadFile(filepath.Join(dir, server.OperatorTokenFile)); bytes.Equal(token, oldToken) {
				t.Error("--init kept the old token, which the new database does not know")
			}
			if err := serveOnce(t, dir, "--init"); exitCode(err) != 2 {
				t.Errorf("--init over a database: exit %d (%v), want 2", exitCode(err), err)
			}
		})
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestCheckCommand: check says "no problems" (exit 0) of a database the
// server wrote, lists the damaged record (exit 1) after damage, and exits
// 2 for a file it cannot check.
func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	if err := serveOnce(t, dir); err != nil {
		t.Fatal(err)
	}
	check := func(args ...string) (string, int) {
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"check"}, args...), &out, io.Discard)
		return out.String() + fmtErr(err), exitCode(err)
	}
	if out, code := check("--data-dir", dir); code != 0 || !strings.Contains(out, "no problems") {
		t.Fatalf("check of a healthy database: exit %d\n%s", code, out)
	}
	path := filepath.Join(dir, server.DatabaseFile)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("tokens"))
		k, v := b.Cursor().First()
		v = bytes.Clone(v)
		v[0] ^= 1
		return b.Put(bytes.Clone(k), v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if out, code := check("--file", path); code != 1 || !strings.Contains(out, "PROBLEM tokens") || !strings.Contains(out, "checksum") {
		t.Errorf("check of a damaged token: exit %d\n%s", code, out)
	}
	if out, code := check("--file", filepath.Join(dir, "no-such.db")); code != 2 {
		t.Errorf("check of a missing file: exit %d\n%s", code, out)
	}
	if out, code := check("--data-dir", dir, "extra"); code != 2 {
		t.Errorf("check with an extra argument: exit %d\n%s", code, out)
	}
}
