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

// BenchmarkCompleteJob100k: CompleteJob of a job of 100,000 findings (see
// storetest.BenchCompleteJob), on a database file of each iteration's own,
// planned batch by batch as ingest does (planned) and at JobDone
// (unplanned):
//
//	go test -run '^$' -bench CompleteJob100k -benchtime 3x ./server/internal/store/
func BenchmarkCompleteJob100k(b *testing.B) {
	b.Run("planned", func(b *testing.B) { benchCompleteJob(b, true) })
	b.Run("unplanned", func(b *testing.B) { benchCompleteJob(b, false) })
}

func benchCompleteJob(b *testing.B, planAhead bool) {
	storetest.BenchCompleteJob(b, 100_000, planAhead, func(b *testing.B) storetest.Backend {
		db, err := store.Open(filepath.Join(b.TempDir(), "fleetscan.db"), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		return db
	})
}
