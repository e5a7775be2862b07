package pgstore

import (
	"testing"

	"github.com/fleetscan/fleetscan/server/internal/store/storetest"
)

// TestContract runs the store's contract against the PostgreSQL store, on
// a database of each case's own.
func TestContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, o storetest.Options) storetest.Backend {
		db, err := Open(testContext(t), newDatabase(t), Options{Now: o.Now, Outbox: o.Outbox, OnOutbox: o.OnOutbox})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}
