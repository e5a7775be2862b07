package store_test

import (
	"path/filepath"
	"testing"

	"github.com/fleetscan/fleetscan/server/internal/store"
	"github.com/fleetscan/fleetscan/server/internal/store/storetest"
)

// TestContract runs the store's contract against the bbolt store, on a
// database file of each case's own.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o storetest.Options) storetest.Backend {
		db, err := store.Open(filepath.Join(t.TempDir(), "fleetscan.db"), store.Options{Now: o.Now, Outbox: o.Outbox, OnOutbox: o.OnOutbox})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := db.Close(); err != nil {
				t.Error(err)
			}
		})
		return db
	})
}
