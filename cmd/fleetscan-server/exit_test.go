package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

// TestExitCodes: --help exits 0; a bad flag or a configuration the server
// refuses exits 2, as every fleetscan binary does for an error.
func TestExitCodes(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want int
	}{
		{[]string{"--help"}, 0},
		{[]string{"--frobnicate"}, 2},
		{[]string{"--max-message-size", "lots"}, 2},
		{[]string{"--data-dir", t.TempDir(), "--max-message-size", "1KiB", "--plaintext", "--listen", "127.0.0.1:0"}, 2},
		{[]string{"unexpected"}, 2},
		// Durations take days and weeks, as the README writes them.
		{[]string{"--retention", "90d", "--job-expiry", "1w", "--job-timeout", "1d12h", "--version"}, 0},
		{[]string{"--retention", "90 days", "--version"}, 2},
		// The single-dash spellings of earlier releases still work.
		{[]string{"-retention", "90d", "-job-timeout=2h", "-version"}, 0},
		{[]string{"check", "--help"}, 0},
		{[]string{"restore", "--data-dir", t.TempDir()}, 2}, // no --from
	} {
		err := run(context.Background(), tt.args, io.Discard, io.Discard)
		if code := exitCode(err); code != tt.want {
			t.Errorf("fleetscan-server %q: exit %d (%v), want %d", tt.args, code, err, tt.want)
		}
	}
}

// TestEnvironment: every flag has a variable; a bad value in one is an
// error that names it (exit 2); the command line wins.
func TestEnvironment(t *testing.T) {
	t.Setenv("FLEETSCAN_SERVER_RETENTION", "90 days")
	if err := run(context.Background(), []string{"--version"}, io.Discard, io.Discard); exitCode(err) != 2 || !strings.Contains(err.Error(), "$FLEETSCAN_SERVER_RETENTION") {
		t.Errorf("a bad $FLEETSCAN_SERVER_RETENTION: exit %d (%v), want 2 naming the variable", exitCode(err), err)
	}
	if err := run(context.Background(), []string{"--version"}, io.Discard, io.Discard); err == nil {
		t.Error("the bad variable was ignored")
	}
	t.Setenv("FLEETSCAN_SERVER_RETENTION", "90d")
	var help strings.Builder
	run(context.Background(), []string{"--help"}, io.Discard, &help)
	for _, want := range []string{"[$FLEETSCAN_SERVER_DATA_DIR]", "[$FLEETSCAN_SERVER_LISTEN]", "Examples:"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}

// TestStoreFlag: --store takes bbolt or a postgres:// URL; a database
// that cannot be reached is an error that does not show the password.
func TestStoreFlag(t *testing.T) {
	err := run(context.Background(), []string{"--store", "mysql://db/x", "--data-dir", t.TempDir()}, io.Discard, io.Discard)
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "want bbolt or a postgres:// URL") {
		t.Errorf("--store mysql://: %v", err)
	}
	// Port 1 on loopback: nothing listens there.
	err = run(context.Background(), []string{"--store", "postgres://fleetscan:s3cret@127.0.0.1:1/fleetscan?connect_timeout=5", "--data-dir", t.TempDir(), "--plaintext", "--listen", "127.0.0.1:0"}, io.Discard, io.Discard)
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "127.0.0.1") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("--store of a database that is not there: %v; want an error naming it, without the password", err)
	}
}
