package pgstore

import (
	"context"
	"testing"
	"time"

	"github.com/fleetscan/fleetscan/internal/pgtest"
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

// BenchmarkCompleteJob100k: CompleteJob of a job of 100,000 findings (see
// storetest.BenchCompleteJob), on a database of each iteration's own:
//
//	go test -run '^$' -bench CompleteJob100k -benchtime 3x ./server/internal/pgstore/
func BenchmarkCompleteJob100k(b *testing.B) {
	// Planned ahead or not is the same here: PlanBatch plans nothing.
	storetest.BenchCompleteJob(b, 100_000, true, func(b *testing.B) storetest.Backend {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		b.Cleanup(cancel)
		db, err := Open(ctx, pgtest.Shared(b).CreateDatabase(b, "bench_complete"), Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		return db
	})
}
