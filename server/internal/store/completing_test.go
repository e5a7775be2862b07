package store

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCompletingLeavesACore: CompleteJob's CPU work runs on at most
// GOMAXPROCS-1 goroutines at once (at least one), and a caller waiting for
// a slot gives up when its context ends.
func TestCompletingLeavesACore(t *testing.T) {
	db, _, _ := openTest(t)
	want := max(1, runtime.GOMAXPROCS(0)-1)
	var running, most atomic.Int32
	var wg sync.WaitGroup
	for range 4 * want {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := db.completing(context.Background(), func() error {
				n := running.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				time.Sleep(2 * time.Millisecond)
				running.Add(-1)
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := int(most.Load()); got != want {
		t.Errorf("at most %d at once, want %d", got, want)
	}

	// Every slot taken: a caller whose context ends does not wait on.
	release := make(chan struct{})
	var held sync.WaitGroup
	for range want {
		held.Add(1)
		started := make(chan struct{})
		go func() {
			defer held.Done()
			db.completing(context.Background(), func() error { close(started); <-release; return nil })
		}()
		<-started
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	ran := false
	if err := db.completing(ctx, func() error { ran = true; return nil }); !errors.Is(err, context.DeadlineExceeded) || ran {
		t.Errorf("with every slot taken: err %v, ran %v; want the deadline and not run", err, ran)
	}
	close(release)
	held.Wait()
}
