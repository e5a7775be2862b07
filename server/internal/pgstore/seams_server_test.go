package pgstore_test

import (
	"github.com/fleetscan/fleetscan/server"
	"github.com/fleetscan/fleetscan/server/internal/pgstore"
)

// The server's store seam, whole. From outside the package, so that the
// server may import pgstore (for --store) without an import cycle here.
var _ server.Store = (*pgstore.DB)(nil)
