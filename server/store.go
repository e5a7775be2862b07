package server

import (
	"context"

	"github.com/oklog/ulid/v2"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	"github.com/fleetscan/fleetscan/server/internal/api"
	"github.com/fleetscan/fleetscan/server/internal/audit"
	"github.com/fleetscan/fleetscan/server/internal/auth"
	"github.com/fleetscan/fleetscan/server/internal/history"
	"github.com/fleetscan/fleetscan/server/internal/ingest"
	"github.com/fleetscan/fleetscan/server/internal/notify"
	"github.com/fleetscan/fleetscan/server/internal/scheduler"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

// Store is the seam between the server and its database: every interface
// the server's parts declare for what they read and write, and what the
// server itself calls. The embedded bbolt store (store.DB) is one; the
// PostgreSQL store of server/internal/pgstore is growing into the other
// (issue 21, docs/postgres.md), checked method by method by the contract
// suite of server/internal/store/storetest. Where two parts want the same
// method they want the same signature, or this does not compile.
type Store interface {
	api.ClusterStore
	api.ScanStore
	api.ScheduleStore
	api.FindingStore
	api.HistoryStore
	api.TokenStore
	api.AuditStore
	api.BackupStore
	api.ExceptionStore
	api.NotifierStore
	scheduler.Store
	scheduler.ScheduleStore
	ingest.Store
	auth.TokenLookup
	audit.Store
	history.LatestReader
	notify.Outbox
	notify.WatchStore

	// What the server calls itself: its start, its loops, its metrics.
	RecoverJobs(ctx context.Context, maxAttempts int) (int, error)
	CountTokens(ctx context.Context) (int, error)
	PutToken(ctx context.Context, hash []byte, t *storagev1.TokenRecord) error
	Compact(ctx context.Context, cutoffMs int64) (int, error)
	CompactDeliveries(ctx context.Context, cutoffMs int64) (int, error)
	PendingDeliveries() (int, error)
	ClustersVersion() uint64
	PageKey() []byte
	NewID() ulid.ULID
	Size() (int64, error)
	Full() bool
	Close() error
}

// The embedded store is a Store.
var _ Store = (*store.DB)(nil)
