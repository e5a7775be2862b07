package server

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetscan/fleetscan/server/internal/history"
	"github.com/fleetscan/fleetscan/server/internal/metrics"
	"github.com/fleetscan/fleetscan/server/internal/notify"
	"github.com/fleetscan/fleetscan/server/internal/pgstore"
	"github.com/fleetscan/fleetscan/server/internal/scheduler"
)

// replicas is what a server on a PostgreSQL store does so that any number
// of them can share it: each holds the sessions of the workers connected
// to it, and they tell each other, through the database, what those
// sessions must act on. One of them, the leader, runs what must run once.
//
// What crosses replicas, and how:
//   - a scan started, a scan cancelled or a job timed out on one replica
//     wakes the clusters' sessions on all (NOTIFY fleetscan_wake);
//   - a cluster's credentials rotated on one ends its worker's session
//     wherever it is (fleetscan_disconnect);
//   - deliveries committed on any wake the leader's dispatcher
//     (fleetscan_outbox);
//   - a worker connected to one is "connected" on all: each replica
//     records its workers' sessions in the database as they start and
//     end, and a session of a replica that died does not count
//     (pgstore.WorkerSessions);
//   - the leader (an advisory lock, pgstore.Lead) runs schedules, job
//     timeouts, retention, the notification dispatcher and watcher, and
//     gives the jobs of replicas that died back to the queue.
//
// Scan progress needs nothing of this: WatchScan and the console read the
// jobs' stored progress, which every replica writes as batches arrive.
type replicas struct {
	db         *pgstore.DB
	sched      *scheduler.Scheduler
	dispatcher *notify.Dispatcher
	log        *slog.Logger
	coord      pgstore.Coordination
	// leading is 1 while this replica leads.
	leading atomic.Int32

	// sessions caches the workers' sessions on every replica, read at
	// most every sessionsFor: a page of clusters asks for each.
	sessionsMu  sync.Mutex
	sessions    map[string]string
	sessionsErr error
	sessionsAt  time.Time
}

// sessionsFor is how long a read of the workers' sessions serves.
const sessionsFor = time.Second

// Wake tells every replica that the clusters may have new or ended jobs.
func (r *replicas) Wake(ctx context.Context, clusterIDs ...string) error {
	return r.db.Notify(ctx, pgstore.ChannelWake, clusterIDs...)
}

// Disconnect tells every replica to end the cluster's worker session.
func (r *replicas) Disconnect(ctx context.Context, clusterID string) error {
	return r.db.Notify(ctx, pgstore.ChannelDisconnect, clusterID)
}

// Attached records that a worker's session started here, and ends the
// cluster's older session on any other replica: a worker that reconnected
// here left a stream there that may look alive for a while, and must not
// be given jobs.
func (r *replicas) Attached(ctx context.Context, clusterID string) error {
	if err := r.db.SessionStarted(ctx, clusterID); err != nil {
		return err
	}
	return r.db.Notify(ctx, pgstore.ChannelAttached, r.db.Replica()+" "+clusterID)
}

// Detached records that a worker's session here ended.
func (r *replicas) Detached(ctx context.Context, clusterID string) error {
	return r.db.SessionEnded(ctx, clusterID)
}

// ConnectedElsewhere reports whether the cluster's worker has a session on
// another live replica. The sessions are read at most every sessionsFor
// (a page of clusters asks for each), under the lock, so that callers at
// once read them once. A read that failed says yes for sessionsFor, and
// is logged: the watcher must not report every worker offline because the
// database was slow.
func (r *replicas) ConnectedElsewhere(clusterID string) bool {
	r.sessionsMu.Lock()
	defer r.sessionsMu.Unlock()
	if time.Since(r.sessionsAt) > sessionsFor {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s, err := r.db.WorkerSessions(ctx)
		cancel()
		if err != nil {
			r.log.Warn("read the workers' sessions on other replicas; counting every worker connected until a read succeeds", "err", err)
			s = nil
		}
		r.sessions, r.sessionsErr, r.sessionsAt = s, err, time.Now()
	}
	if r.sessionsErr != nil {
		return true
	}
	on, ok := r.sessions[clusterID]
	return ok && on != r.db.Replica()
}

// outboxCommitted wakes the dispatcher, here and (through the database)
// on the leader, after deliveries were committed.
func (r *replicas) outboxCommitted() {
	r.dispatcher.Wake()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.db.Notify(ctx, pgstore.ChannelOutbox, ""); err != nil {
		// The leader's dispatcher finds them all the same at its next
		// look for due deliveries.
		r.log.Warn("tell the leader of new deliveries", "err", err)
	}
}

// heard acts on another replica's notification (or this one's own: they
// come back too, and acting twice is harmless). An empty payload means
// that notifications may have been missed: look at everything.
func (r *replicas) heard(channel, payload string) {
	switch channel {
	case pgstore.ChannelWake:
		if payload == "" {
			r.sched.WakeAll()
		} else {
			r.sched.Wake(payload)
		}
	case pgstore.ChannelDisconnect:
		if payload != "" {
			r.sched.DisconnectHere(payload)
		}
	case pgstore.ChannelOutbox:
		r.dispatcher.Wake()
	case pgstore.ChannelAttached:
		if on, cluster, ok := strings.Cut(payload, " "); ok && on != r.db.Replica() {
			r.sched.Replaced(cluster)
		}
	}
}

// run listens to the other replicas, refreshes the last-seen times of
// this one's workers and, while it leads, runs lead; it returns when ctx
// ends and all of it has stopped.
func (r *replicas) run(ctx context.Context, lead func(context.Context)) {
	done := make(chan struct{}, 3)
	go func() {
		defer func() { done <- struct{}{} }()
		r.db.Listen(ctx, r.coord, []string{pgstore.ChannelWake, pgstore.ChannelDisconnect, pgstore.ChannelOutbox, pgstore.ChannelAttached}, r.heard)
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		r.db.Lead(ctx, r.coord, lead, func(on bool) {
			if on {
				r.leading.Store(1)
				r.log.Info("this replica leads: it runs schedules, job timeouts, retention and notifications")
			} else {
				r.leading.Store(0)
				r.log.Info("this replica no longer leads")
			}
		})
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		r.claimLoop(ctx)
	}()
	for range 3 {
		<-done
	}
}

// claimEvery is how often a replica makes the record of its workers'
// sessions right again.
const claimEvery = 30 * time.Second

// claimLoop records this replica's sessions where the record lost them
// (a write that failed, a database that lost the row).
func (r *replicas) claimLoop(ctx context.Context) {
	t := time.NewTicker(claimEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := r.db.ClaimSessions(ctx, r.sched.ConnectedHere()); err != nil && ctx.Err() == nil {
			r.log.Warn("record this replica's worker sessions", "err", err)
		}
	}
}

// leaderOnly exports the posture gauges on the leader only, so that sums
// over every replica's scrape count each cluster once. A server alone
// (r nil) always exports them.
func (r *replicas) leaderOnly(src metrics.PostureSource) metrics.PostureSource {
	if r == nil {
		return src
	}
	return metrics.PostureFunc(func(ctx context.Context) ([]history.Posture, error) {
		if r.leading.Load() == 0 {
			return nil, nil
		}
		return src.Postures(ctx)
	})
}

// recoverEvery is how often the leader looks for the jobs of replicas
// that died.
const recoverEvery = 10 * time.Second

// recoverLoop gives the jobs that replicas which died were running back
// to the queue (or fails them after their attempts), as a server alone
// does with its own at start. A worker that reconnected to a live replica
// took its job back before (ResumeJob makes it that replica's), so only
// jobs that no live replica holds are touched: a replica is dead when no
// session of the database carries its id, at two looks in a row
// (pgstore.RecoverOrphans), so a job of a replica killed mid-scan that no
// worker took back (its Assign was lost with the replica) is sent again
// within 10–20 s of the replica's death, plus the time for another
// replica to take the lead if the dead one led.
func (s *Server) recoverLoop(ctx context.Context) {
	t := time.NewTicker(recoverEvery)
	defer t.Stop()
	for {
		clusters, err := s.replicas.db.RecoverOrphans(ctx, s.cfg.MaxAttempts)
		if err != nil && ctx.Err() == nil {
			s.log.Error("recover the jobs of replicas that died", "err", err)
		}
		if len(clusters) > 0 {
			s.log.Info("requeued the jobs of replicas that died", "jobs", len(clusters))
			// Their workers' sessions are attached already, here or on
			// another replica: they look again when woken.
			if err := s.replicas.Wake(ctx, clusters...); err != nil {
				s.log.Warn("wake the sessions of requeued jobs", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
