package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// TestDurationFlagsTakeDaysAndWeeks: every duration flag of the CLI reads
// the spellings the docs use (--ttl 90d, --jitter 15m, --timeout 2w),
// and refuses nonsense as a usage error (exit 2) that names the flag.
func TestDurationFlagsTakeDaysAndWeeks(t *testing.T) {
	offline := []string{"--server", "127.0.0.1:1", "--plaintext", "--token", "x"}
	for _, tc := range []struct {
		args []string
		bad  bool
	}{
		{args: []string{"token", "create", "--name", "ci", "--role", "operator", "--ttl", "90d"}},
		{args: []string{"token", "create", "--name", "ci", "--role", "operator", "--ttl", "1w3d"}},
		{args: []string{"exception", "create", "--cluster", "c", "--check", "POD-001", "--reason", "r", "--ttl", "30d"}},
		{args: []string{"schedule", "create", "0 3 * * *", "--all", "--jitter", "15m"}},
		{args: []string{"scan", "watch", "01H", "--timeout", "2w"}},
		{args: []string{"notifier", "create", "n", "--webhook", "https://a.example/", "--offline-after", "1h", "--expiry-warning", "1w"}},
		{args: []string{"token", "create", "--name", "ci", "--role", "operator", "--ttl", "90 days"}, bad: true},
		{args: []string{"notifier", "create", "n", "--webhook", "https://a.example/", "--expiry-warning", "a week"}, bad: true},
		{args: []string{"schedule", "create", "0 3 * * *", "--all", "--jitter", "soon"}, bad: true},
	} {
		// A command that waits (scan watch) would wait on the unreachable
		// server for its --timeout: what is tested is only that the flag
		// parsed, so the wait is cut short.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := run(ctx, append(tc.args, offline...), io.Discard, io.Discard)
		cancel()
		// The good ones fail only for want of a server.
		parseErr := err != nil && strings.Contains(err.Error(), "flag")
		if parseErr != tc.bad || (tc.bad && !strings.Contains(err.Error(), "invalid argument")) {
			t.Errorf("fleetscan %q: %v; want a flag error: %v", tc.args, err, tc.bad)
		}
		if tc.bad && exitCode(err) != 2 {
			t.Errorf("fleetscan %q: exit %d, want 2", tc.args, exitCode(err))
		}
	}
}
