package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/fleetscan/fleetscan/cmd/internal/bytesize"
	"github.com/fleetscan/fleetscan/cmd/internal/flagset"
	"github.com/fleetscan/fleetscan/server"
)

// errProblems: check ran and found problems (exit 1, like findings).
var errProblems = errors.New("problems found")

func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flagset.New("fleetscan-server check", "FLEETSCAN_SERVER_")
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: fleetscan-server check --data-dir DIR
       fleetscan-server check --file BACKUP

Reads the whole database, read-only, and says what is wrong with it:
bbolt's consistency check (every page reachable once, keys in order),
every record's checksum and encoding, and the references between records
(every index entry names a record that is there; every finding of a
cluster's latest scan has its record). It needs the file to itself: stop
the server first, or check a backup file.

Exit status: 0 no problems, 1 problems found (listed on stdout), 2 the file
could not be checked at all.

Examples:
  fleetscan-server check --data-dir /var/lib/fleetscan
  fleetscan-server check --file fleetscan-2026-12-01.db --max-problems 0

Flags:
`)
		fs.PrintDefaults()
	}
	dataDir := fs.String("data-dir", "fleetscan-data", "data directory of the server whose database to check")
	file := fs.String("file", "", "check this database file instead (a backup, say)")
	maxProblems := fs.Int("max-problems", 100, "list at most this many problems (all are counted; 0: list none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see fleetscan-server check --help)", fs.Arg(0))
	}
	path := *file
	if path == "" {
		path = filepath.Join(*dataDir, server.DatabaseFile)
	}
	listed := 0
	st, err := server.CheckDatabase(ctx, path, func(p server.Problem) {
		if listed < *maxProblems {
			fmt.Fprintln(stdout, "PROBLEM", p)
		}
		listed++
	})
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	if st.Problems > 0 {
		if st.Problems > *maxProblems {
			fmt.Fprintf(stdout, "(%d more not listed; see --max-problems)\n", st.Problems-*maxProblems)
		}
		return fmt.Errorf("%s: %d problems in %d records of %d buckets; restore a backup (fleetscan-server restore): %w", path, st.Problems, st.Records, st.Buckets, errProblems)
	}
	fmt.Fprintf(stdout, "%s: no problems in %d records of %d buckets (%s)\n", path, st.Records, st.Buckets, bytesize.Human(st.Bytes))
	return nil
}

func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flagset.New("fleetscan-server restore", "FLEETSCAN_SERVER_")
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: fleetscan-server restore --data-dir DIR --from BACKUP

Puts a backup (made by fleetscan admin backup) in place as the database of
DIR. The server must be stopped. The backup is checked first, as
fleetscan-server check does, and refused if anything is wrong with it. The
database it replaces is kept beside it as fleetscan.db.before-restore-TIME.
Jobs that were running when the backup was taken are requeued when the
server starts; their workers send them again.

The operator token file in DIR is left alone: tokens are in the database,
so the tokens that existed when the backup was taken work again.

Exit status: 0 restored, 1 the backup has problems (listed; nothing
changed), 2 any other error (nothing changed).

Examples:
  fleetscan-server restore --data-dir /var/lib/fleetscan --from fleetscan-2026-12-06.db

Flags:
`)
		fs.PrintDefaults()
	}
	dataDir := fs.String("data-dir", "fleetscan-data", "data directory of the server to restore")
	from := fs.String("from", "", "the backup file (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see fleetscan-server restore --help)", fs.Arg(0))
	}
	if *from == "" {
		return errors.New("--from BACKUP is required (see fleetscan-server restore --help)")
	}
	problems := 0
	r, err := server.Restore(ctx, *dataDir, *from, func(p server.Problem) {
		problems++
		fmt.Fprintln(stdout, "PROBLEM", p)
	})
	if err != nil {
		if problems > 0 {
			return fmt.Errorf("%w: %w", errProblems, err)
		}
		return err
	}
	fmt.Fprintf(stdout, "restored %s (%s) into %s\n", *from, bytesize.Human(r.Bytes), *dataDir)
	if r.Previous != "" {
		fmt.Fprintf(stdout, "the database it replaced is kept at %s\n", r.Previous)
	}
	return nil
}
