package pgstore

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"
)

func TestPageKeySharedByReplicas(t *testing.T) {
	t.Parallel()
	dsn := newDatabase(t)
	var keys [][]byte
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range 3 {
		wg.Go(func() {
			db, err := Open(testContext(t), dsn, Options{})
			if err != nil {
				t.Error(err)
				return
			}
			defer db.Close()
			mu.Lock()
			keys = append(keys, db.PageKey())
			mu.Unlock()
		})
	}
	wg.Wait()
	again, err := Open(testContext(t), dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	keys = append(keys, again.PageKey())
	for _, k := range keys {
		if len(k) != 32 || !bytes.Equal(k, keys[0]) {
			t.Fatalf("page keys differ between replicas or restarts: %x", keys)
		}
	}
}

// leaders records who leads, as Lead's onChange reports it.
type leaders struct {
	mu      sync.Mutex
	leading map[int]bool
	// stops counts each replica's ends of leading.
	stops   map[int]int
	changed chan struct{}
}

func (l *leaders) set(i int, on bool) {
	l.mu.Lock()
	l.leading[i] = on
	if !on {
		l.stops[i]++
	}
	l.mu.Unlock()
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// who returns the replicas that lead now.
func (l *leaders) who() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []int
	for i, on := range l.leading {
		if on {
			out = append(out, i)
		}
	}
	return out
}

// await waits until exactly one replica leads, other than not, and
// returns it.
func (l *leaders) await(t *testing.T, ctx context.Context, not int) int {
	t.Helper()
	for {
		if w := l.who(); len(w) == 1 && w[0] != not {
			return w[0]
		} else if len(w) > 1 {
			t.Fatalf("replicas %v lead at once", w)
		}
		select {
		case <-l.changed:
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("no replica took the lead: %v", ctx.Err())
		}
	}
}

func TestLeadOneAtATime(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dbs := openReplicas(t, 3)
	l := &leaders{leading: map[int]bool{}, stops: map[int]int{}, changed: make(chan struct{}, 1)}
	c := Coordination{Check: 20 * time.Millisecond}
	// running counts the lead functions running at once; most is the
	// most seen.
	var mu sync.Mutex
	running, most := 0, 0
	lead := func(ctx context.Context) {
		mu.Lock()
		running++
		most = max(most, running)
		mu.Unlock()
		<-ctx.Done()
		mu.Lock()
		running--
		mu.Unlock()
	}
	stops := make([]context.CancelFunc, len(dbs))
	var wg sync.WaitGroup
	defer wg.Wait()
	for i, db := range dbs {
		rctx, stop := context.WithCancel(ctx)
		stops[i] = stop
		defer stop()
		wg.Go(func() {
			db.Lead(rctx, c, lead, func(on bool) { l.set(i, on) })
		})
	}
	first := l.await(t, ctx, -1)

	// The leader's process ends: another takes over.
	stops[first]()
	second := l.await(t, ctx, first)
	// Followers keep trying: give them a few rounds.
	for range 5 {
		if !sleep(ctx, c.Check) {
			t.Fatal(ctx.Err())
		}
	}
	mu.Lock()
	n := most
	mu.Unlock()
	if n != 1 {
		t.Fatalf("%d replicas led at once", n)
	}

	// The database ends the leader's session (a partition, an
	// administrator): it stops leading, and one leader follows.
	var pid int
	if err := dbs[0].pool.QueryRow(ctx, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND classid::bigint = ($1::bigint >> 32) AND objid::bigint = ($1::bigint & 4294967295)`, leaderLock).Scan(&pid); err != nil {
		t.Fatalf("find the leader's session: %v", err)
	}
	if _, err := dbs[0].pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	for {
		l.mu.Lock()
		stopped := l.stops[second] > 0
		l.mu.Unlock()
		if stopped {
			break
		}
		select {
		case <-l.changed:
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("the leader whose session ended did not stop")
		}
	}
	l.await(t, ctx, first)
}

func TestListenAcrossReplicas(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dbs := openReplicas(t, 2)
	type note struct{ channel, payload string }
	got := make(chan note, 100)
	lctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		dbs[0].Listen(lctx, Coordination{Retry: 10 * time.Millisecond}, []string{ChannelWake, ChannelOutbox}, func(ch, p string) { got <- note{ch, p} })
	}()
	defer func() { stop(); <-done }()
	next := func() note {
		t.Helper()
		select {
		case n := <-got:
			return n
		case <-ctx.Done():
			t.Fatal("no notification")
			return note{}
		}
	}
	// A (re)connection says "look at everything" on each channel.
	for _, want := range []note{{ChannelWake, ""}, {ChannelOutbox, ""}} {
		if n := next(); n != want {
			t.Fatalf("got %+v, want %+v", n, want)
		}
	}
	if err := dbs[1].Notify(ctx, ChannelWake, "c1", "c2"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []note{{ChannelWake, "c1"}, {ChannelWake, "c2"}} {
		if n := next(); n != want {
			t.Fatalf("got %+v, want %+v", n, want)
		}
	}
	// The listener's connection is cut: it connects again and says so.
	if _, err := dbs[1].pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND datname = current_database()`); err != nil {
		t.Fatal(err)
	}
	for _, want := range []note{{ChannelWake, ""}, {ChannelOutbox, ""}} {
		if n := next(); n != want {
			t.Fatalf("after a cut: got %+v, want %+v", n, want)
		}
	}
	if err := dbs[1].Notify(ctx, ChannelOutbox, "x"); err != nil {
		t.Fatal(err)
	}
	if n := next(); n != (note{ChannelOutbox, "x"}) {
		t.Fatalf("after a cut: got %+v", n)
	}
}
