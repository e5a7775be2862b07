package server

import (
	"context"

	"github.com/fleetscan/fleetscan/server/internal/store"
)

// Problem is one thing CheckDatabase found wrong in a database file.
type Problem = store.Problem

// CheckStats counts what CheckDatabase read.
type CheckStats = store.CheckStats

// CheckDatabase reads the database file at path, read-only, and reports
// every problem: bbolt's consistency check, record checksums and
// encodings, and the references between records. The file must not be in
// use by a server. The error is for a file it cannot check at all.
func CheckDatabase(ctx context.Context, path string, report func(Problem)) (CheckStats, error) {
	return store.Check(ctx, path, report)
}
