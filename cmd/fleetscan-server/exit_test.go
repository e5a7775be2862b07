package main

import (
	"context"
	"io"
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
	} {
		err := run(context.Background(), tt.args, io.Discard, io.Discard)
		if code := exitCode(err); code != tt.want {
			t.Errorf("fleetscan-server %q: exit %d (%v), want %d", tt.args, code, err, tt.want)
		}
	}
}
