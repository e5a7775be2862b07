package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Restored says what Restore did.
type Restored struct {
	Bytes int64
	// Previous is where the database that was in place now is; empty when
	// there was none.
	Previous string
}

// Restore puts the backup file from in place as the database of dataDir.
// It checks the backup first (as CheckDatabase does) and refuses one with
// problems; it refuses while a server holds the data directory; it keeps
// the database it replaces next to it (fleetscan.db.before-restore-TIME),
// never deletes it. The new file is written beside the old, synced, and
// renamed over it, so a crash leaves one or the other, whole.
func Restore(ctx context.Context, dataDir, from string, report func(Problem)) (Restored, error) {
	var r Restored
	st, err := CheckDatabase(ctx, from, report)
	if err != nil {
		return r, fmt.Errorf("backup %s: %w", from, err)
	}
	if st.Problems > 0 {
		return r, fmt.Errorf("backup %s has %d problems: not restored (fleetscan-server check --file %s lists them)", from, st.Problems, from)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return r, err
	}
	dbPath := filepath.Join(dataDir, DatabaseFile)
	// Holding the live file's lock keeps a server from starting on it
	// meanwhile, and tells that one is running.
	if _, err := os.Stat(dbPath); err == nil {
		live, err := bolt.Open(dbPath, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
		if errors.Is(err, berrors.ErrTimeout) {
			return r, fmt.Errorf("%s is in use: stop the server on %s first", dbPath, dataDir)
		}
		if err == nil {
			defer live.Close()
		}
		// A damaged live file does not open; it is replaced all the same.
	} else if !errors.Is(err, fs.ErrNotExist) {
		return r, err
	}
	tmp, err := os.CreateTemp(dataDir, "."+DatabaseFile+".restoring-*")
	if err != nil {
		return r, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	src, err := os.Open(from)
	if err != nil {
		return r, err
	}
	defer src.Close()
	if r.Bytes, err = io.Copy(tmp, src); err != nil {
		return r, fmt.Errorf("copy %s: %w", from, err)
	}
	if err := tmp.Sync(); err != nil {
		return r, err
	}
	if err := tmp.Close(); err != nil {
		return r, err
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return r, err
	}
	if _, err := os.Stat(dbPath); err == nil {
		r.Previous = dbPath + ".before-restore-" + time.Now().UTC().Format("20060102T150405Z")
		if err := os.Link(dbPath, r.Previous); err != nil {
			return r, fmt.Errorf("keep the database being replaced: %w", err)
		}
	}
	if err := os.Rename(tmp.Name(), dbPath); err != nil {
		return r, err
	}
	if d, err := os.Open(dataDir); err == nil {
		_ = d.Sync() // the rename is durable once the directory is
		d.Close()
	}
	return r, nil
}
