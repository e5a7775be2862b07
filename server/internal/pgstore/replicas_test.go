package pgstore

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
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

// TestOrphanedJobs: a replica gives back only its own jobs, and the
// leader gives back those of a replica that died, once no session of it
// is seen twice in a row.
func TestOrphanedJobs(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dbs := openReplicas(t, 2)
	a, b := dbs[0], dbs[1]
	if err := a.CreateCluster(ctx, &storagev1.ClusterRecord{Id: "c1", Tenant: "t"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateScan(ctx, &fleetscanv1.ScanTarget{ClusterIds: []string{"c1"}}, &fleetscanv1.ScanSpec{}, []string{"c1"}); err != nil {
		t.Fatal(err)
	}
	got, err := a.DispatchPending(ctx, "c1", 0)
	if err != nil || len(got) != 1 {
		t.Fatalf("dispatch: %v, %v", got, err)
	}
	job := got[0].JobID
	state := func() fleetscanv1.JobState {
		t.Helper()
		j, err := a.GetJob(ctx, job)
		if err != nil {
			t.Fatal(err)
		}
		return j.Record.State
	}
	// A live replica's jobs are not orphans, however often the leader
	// looks.
	for range 2 {
		if n, err := b.RecoverOrphans(ctx, 3); err != nil || len(n) != 0 {
			t.Fatalf("recover with the owner alive: %q, %v", n, err)
		}
	}
	// The worker reconnects to b, which takes the job over; a's session
	// ends late and must not give it back.
	if _, ok, err := b.ResumeJob(ctx, "c1", job); err != nil || !ok {
		t.Fatalf("resume on b: %v, %v", ok, err)
	}
	if err := a.RequeueJobs(ctx, 3, job); err != nil {
		t.Fatal(err)
	}
	if s := state(); s != fleetscanv1.JobState_JOB_STATE_DISPATCHED {
		t.Fatalf("after a's late requeue of b's job: %v, want DISPATCHED", s)
	}
	// b dies: once the database has no session of it, the second look
	// gives its job back.
	b.Close()
	for {
		var n int
		if err := a.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, appNamePrefix+b.replica).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if !sleep(ctx, 10*time.Millisecond) {
			t.Fatal("b's sessions did not end")
		}
	}
	if n, err := a.RecoverOrphans(ctx, 3); err != nil || len(n) != 0 {
		t.Fatalf("first look at a dead replica: %q, %v; want none: it may be between connections", n, err)
	}
	if n, err := a.RecoverOrphans(ctx, 3); err != nil || !slices.Equal(n, []string{"c1"}) {
		t.Fatalf("second look at a dead replica: %q, %v; want its 1 job's cluster, c1", n, err)
	}
	if s := state(); s != fleetscanv1.JobState_JOB_STATE_PENDING {
		t.Fatalf("orphaned job: %v, want PENDING", s)
	}
	// Its own requeue still works: a dispatches it again, and gives it
	// back when its worker goes.
	if got, err := a.DispatchPending(ctx, "c1", 0); err != nil || len(got) != 1 {
		t.Fatalf("dispatch again: %v, %v", got, err)
	}
	if err := a.RequeueJobs(ctx, 3, job); err != nil {
		t.Fatal(err)
	}
	if s := state(); s != fleetscanv1.JobState_JOB_STATE_PENDING {
		t.Fatalf("after a's own requeue: %v, want PENDING", s)
	}
}

// TestWorkerSessions: each replica records its workers' sessions; a
// session of a dead replica does not count, and a claim takes over only
// rows that are missing or of dead replicas.
func TestWorkerSessions(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dbs := openReplicas(t, 3)
	a, b, c := dbs[0], dbs[1], dbs[2]
	for _, id := range []string{"c1", "c2", "c3"} {
		if err := a.CreateCluster(ctx, &storagev1.ClusterRecord{Id: id, Tenant: "t"}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	want := func(what string, w map[string]string) {
		t.Helper()
		got, err := a.WorkerSessions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(w) {
			t.Fatalf("%s: sessions %v, want %v", what, got, w)
		}
		for k, v := range w {
			if got[k] != v {
				t.Fatalf("%s: sessions %v, want %v", what, got, w)
			}
		}
	}
	for _, s := range []struct {
		db      *DB
		cluster string
	}{{a, "c1"}, {b, "c2"}, {c, "c3"}} {
		if err := s.db.SessionStarted(ctx, s.cluster); err != nil {
			t.Fatal(err)
		}
	}
	want("started", map[string]string{"c1": a.Replica(), "c2": b.Replica(), "c3": c.Replica()})
	// c2's worker moves to a; b's late end of its old session keeps a's.
	if err := a.SessionStarted(ctx, "c2"); err != nil {
		t.Fatal(err)
	}
	if err := b.SessionEnded(ctx, "c2"); err != nil {
		t.Fatal(err)
	}
	want("moved", map[string]string{"c1": a.Replica(), "c2": a.Replica(), "c3": c.Replica()})
	// c dies: its session no longer counts.
	c.Close()
	for {
		var n int
		if err := a.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, appNamePrefix+c.replica).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if !sleep(ctx, 10*time.Millisecond) {
			t.Fatal("c's sessions did not end")
		}
	}
	want("c dead", map[string]string{"c1": a.Replica(), "c2": a.Replica()})
	// b claims c1 (a live replica's: kept), c3 (a dead one's: taken) and
	// c2 after a's row was lost.
	if _, err := a.pool.Exec(ctx, `DELETE FROM worker_sessions WHERE cluster_id = 'c2'`); err != nil {
		t.Fatal(err)
	}
	if err := b.ClaimSessions(ctx, []string{"c1", "c2", "c3", "gone"}); err != nil {
		t.Fatal(err)
	}
	want("claimed", map[string]string{"c1": a.Replica(), "c2": b.Replica(), "c3": b.Replica()})
}
