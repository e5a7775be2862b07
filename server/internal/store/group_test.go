package store

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
)

// TestGroupCommit: the writes queued while a transaction commits all go
// into the next one, and a write that fails gets its own error while the
// others of its group are stored.
func TestGroupCommit(t *testing.T) {
	errRefused := errors.New("refused")
	tests := []struct {
		name    string
		failing map[int]bool // of the queued writes
	}{
		{"all succeed", nil},
		{"one fails", map[int]bool{3: true}},
		{"the first and the last fail", map[int]bool{0: true, 7: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, _, _ := openTest(t)
			const queued = 8
			// The first write holds its transaction open until the others
			// wait behind it.
			release := make(chan struct{})
			first := make(chan error, 1)
			go func() {
				first <- db.batch(func(tx *txn) error {
					<-release
					return tx.bucket(bucketMeta).Put([]byte("group-first"), []byte("x"))
				})
			}()
			waitQueued(db, 1)
			var mu sync.Mutex
			txIDs := map[int]int{}
			errs := make([]error, queued)
			var wg sync.WaitGroup
			for i := range queued {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = db.batch(func(tx *txn) error {
						mu.Lock()
						txIDs[i] = tx.tx.ID()
						mu.Unlock()
						if tt.failing[i] {
							return fmt.Errorf("write %d: %w", i, errRefused)
						}
						return tx.bucket(bucketMeta).Put(fmt.Appendf(nil, "group-%d", i), []byte("x"))
					})
				}()
				// The writes queue in order.
				waitQueued(db, i+2)
			}
			close(release)
			wg.Wait()
			if err := <-first; err != nil {
				t.Fatal(err)
			}
			shared := map[int]bool{}
			for i := range queued {
				if tt.failing[i] {
					if !errors.Is(errs[i], errRefused) {
						t.Errorf("write %d: %v, want its own error", i, errs[i])
					}
					continue
				}
				if errs[i] != nil {
					t.Errorf("write %d: %v", i, errs[i])
				}
				shared[txIDs[i]] = true
			}
			if len(shared) != 1 {
				t.Errorf("the successful writes committed in transactions %v, want one", shared)
			}
			err := db.view(func(tx *txn) error {
				for i := range queued {
					if got := tx.bucket(bucketMeta).Get(fmt.Appendf(nil, "group-%d", i)) != nil; got == tt.failing[i] {
						return fmt.Errorf("write %d stored: %t", i, got)
					}
				}
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
}

// waitQueued waits until n writes are queued or committing.
func waitQueued(db *DB, n int) {
	for {
		db.group.mu.Lock()
		// The one committing has left the queue.
		k := len(db.group.queue)
		if db.group.leading {
			k++
		}
		db.group.mu.Unlock()
		if k >= n {
			return
		}
		runtime.Gosched()
	}
}
