package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/fleetscan/fleetscan/cmd/internal/bytesize"
)

func adminCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "admin", Short: "Maintain the server: backups"}
	cmd.AddCommand(adminBackupCommand(g))
	return cmd
}

func adminBackupCommand(g *globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "backup -o FILE",
		Short: "Copy the server's database to a file, online",
		Long: `Copy the server's database to FILE while it runs: a consistent snapshot,
taken in one read transaction while workers go on streaming. The file is
written next to FILE first and renamed only once its size and SHA-256
match what the server sent, so FILE is a whole backup or is not there.
Restore it with fleetscan-server restore; verify it with
fleetscan-server check --file FILE. Operators only; recorded in the
audit log.`,
		Example: `  fleetscan admin backup -o fleetscan-$(date +%F).db
  fleetscan-server check --file fleetscan-2026-12-06.db`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".partial-*")
			if err != nil {
				return err
			}
			defer os.Remove(tmp.Name()) // gone after the rename; cleans up after an error
			defer tmp.Close()
			start := time.Now()
			p := newByteProgress(cmd.ErrOrStderr(), "backup")
			n, err := c.Backup(cmd.Context(), tmp, p.update)
			p.finish()
			if err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			if err := tmp.Sync(); err != nil {
				return err
			}
			if err := tmp.Close(); err != nil {
				return err
			}
			if err := os.Rename(tmp.Name(), out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %s in %v\n", out, bytesize.Human(n), time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	// Shadows the global --output (a format) on this command only.
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write the backup to (required)")
	_ = cmd.MarkFlagRequired("output")
	return cmd
}

// byteProgress shows how much of a long transfer has arrived: a line
// redrawn in place on a terminal, a plain line every 64 MiB elsewhere.
type byteProgress struct {
	w      io.Writer
	what   string
	tty    bool
	drawn  time.Time
	logged int64
}

func newByteProgress(w io.Writer, what string) *byteProgress {
	p := &byteProgress{w: w, what: what}
	if f, ok := w.(*os.File); ok {
		p.tty = term.IsTerminal(int(f.Fd()))
	}
	return p
}

func (p *byteProgress) update(n int64) {
	switch {
	case p.tty && time.Since(p.drawn) >= 200*time.Millisecond:
		fmt.Fprintf(p.w, "\r\033[K%s: %s received", p.what, bytesize.Human(n))
		p.drawn = time.Now()
	case !p.tty && n-p.logged >= 64<<20:
		fmt.Fprintf(p.w, "%s: %s received\n", p.what, bytesize.Human(n))
		p.logged = n
	}
}

func (p *byteProgress) finish() {
	if !p.drawn.IsZero() {
		fmt.Fprintln(p.w)
	}
}
