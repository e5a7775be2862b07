package pgstore

import (
	"github.com/fleetscan/fleetscan/server/internal/api"
	"github.com/fleetscan/fleetscan/server/internal/auth"
)

// The consumer interfaces this store already satisfies whole. The others
// (api.NotifierStore, …) need methods of slices to come:
// docs/postgres.md.
var (
	_ auth.TokenLookup   = (*DB)(nil)
	_ api.TokenStore     = (*DB)(nil)
	_ api.ExceptionStore = (*DB)(nil)
	_ api.ClusterStore   = (*DB)(nil)
)
