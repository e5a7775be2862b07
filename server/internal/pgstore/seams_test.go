package pgstore

import (
	"github.com/fleetscan/fleetscan/server/internal/api"
	"github.com/fleetscan/fleetscan/server/internal/audit"
	"github.com/fleetscan/fleetscan/server/internal/auth"
	"github.com/fleetscan/fleetscan/server/internal/history"
	"github.com/fleetscan/fleetscan/server/internal/ingest"
	"github.com/fleetscan/fleetscan/server/internal/notify"
	"github.com/fleetscan/fleetscan/server/internal/scheduler"
)

// The consumer interfaces this store satisfies whole; server.Store, their
// union, in seams_server_test.go.
var (
	_ auth.TokenLookup        = (*DB)(nil)
	_ api.TokenStore          = (*DB)(nil)
	_ api.ExceptionStore      = (*DB)(nil)
	_ api.ClusterStore        = (*DB)(nil)
	_ api.NotifierStore       = (*DB)(nil)
	_ notify.Outbox           = (*DB)(nil)
	_ notify.WatchStore       = (*DB)(nil)
	_ audit.Store             = (*DB)(nil)
	_ api.AuditStore          = (*DB)(nil)
	_ api.ScheduleStore       = (*DB)(nil)
	_ scheduler.ScheduleStore = (*DB)(nil)
	_ scheduler.Store         = (*DB)(nil)
	_ ingest.Store            = (*DB)(nil)
	_ api.ScanStore           = (*DB)(nil)
	_ api.FindingStore        = (*DB)(nil)
	_ api.HistoryStore        = (*DB)(nil)
	_ history.LatestReader    = (*DB)(nil)
)
