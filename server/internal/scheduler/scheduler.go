package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"k8s.io/apimachinery/pkg/labels"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
	"github.com/fleetscan/fleetscan/worker/policy"
)

// Errors of the scheduler.
var (
	// ErrInvalid wraps a request the scheduler cannot act on.
	ErrInvalid = errors.New("invalid")
	// ErrReplaced ends a worker session when a newer connection of the same
	// cluster takes over.
	ErrReplaced = errors.New("replaced by a newer connection of the same cluster")
)

// Store is what the scheduler needs of the store.
type Store interface {
	ListClusters(ctx context.Context, after string, limit int, keep func(*storagev1.ClusterRecord) bool) ([]*storagev1.ClusterRecord, bool, error)
	CreateScan(ctx context.Context, target *fleetscanv1.ScanTarget, spec *fleetscanv1.ScanSpec, clusterIDs []string) (*store.Scan, error)
	CancelScan(ctx context.Context, id ulid.ULID) (*store.Scan, []string, error)
	Reap(ctx context.Context, timeout, expiry time.Duration) ([]string, error)
}

// Limits bound how many jobs run and how long they may wait and run.
type Limits struct {
	// MaxRunning caps the jobs dispatched at once across the fleet; 0 is no
	// cap. Clusters wait for a slot in the order they asked for one, so
	// that scanning a thousand clusters at once does not stampede the
	// server.
	MaxRunning int
	// JobTimeout ends a dispatched job as TIMED_OUT after this long.
	JobTimeout time.Duration
	// JobExpiry ends a job still waiting for its worker as EXPIRED.
	JobExpiry time.Duration
}

// Peers are the other server replicas on the same database; nil when the
// server runs alone. A cluster's worker is connected to any one of them,
// so what the scheduler wakes or disconnects here it tells them too.
type Peers interface {
	Wake(ctx context.Context, clusterIDs ...string) error
	Disconnect(ctx context.Context, clusterID string) error
	// Attached and Detached record that a worker's session started or
	// ended here.
	Attached(ctx context.Context, clusterID string) error
	Detached(ctx context.Context, clusterID string) error
	// ConnectedElsewhere reports whether the cluster's worker has a
	// session on another replica.
	ConnectedElsewhere(clusterID string) bool
}

// CancelScan cancels the jobs of a scan that have not ended and wakes the
// sessions running them, which tell their workers to stop.
func (s *Scheduler) CancelScan(ctx context.Context, id ulid.ULID) (*store.Scan, error) {
	scan, clusters, err := s.store.CancelScan(ctx, id)
	if err != nil {
		return nil, err
	}
	s.wakeEverywhere(ctx, clusters)
	return scan, nil
}

// Reap ends jobs past their timeout or expiry and wakes their sessions.
func (s *Scheduler) Reap(ctx context.Context) error {
	clusters, err := s.store.Reap(ctx, s.limits.JobTimeout, s.limits.JobExpiry)
	s.wakeEverywhere(ctx, clusters)
	return err
}

// wakeEverywhere wakes the clusters' sessions here and on the peers. What
// it changed is committed: a peer that is not told finds it when its
// session next looks (a worker's reconnection, the listener's catch-up
// after its own), so a failure to tell is logged, not returned.
func (s *Scheduler) wakeEverywhere(ctx context.Context, clusters []string) {
	for _, c := range clusters {
		s.Wake(c)
	}
	if s.Peers != nil && len(clusters) > 0 {
		if err := s.Peers.Wake(ctx, clusters...); err != nil {
			s.Log.Warn("tell the other replicas of new or ended jobs", "clusters", len(clusters), "err", err)
		}
	}
}

// Scheduler creates scans and tracks which clusters have a worker
// connected.
type Scheduler struct {
	store  Store
	limits Limits
	// Peers, if set, hear of what the scheduler wakes and disconnects.
	Peers Peers
	// Log hears what it fails to tell the peers.
	Log *slog.Logger

	mu       sync.Mutex
	sessions map[string]*session
	running  int      // slots taken
	line     []string // clusters waiting for a slot, first come first
}

// Acquire takes a fleet-wide slot for one job of the cluster. A free slot
// goes to the clusters waiting in line first, in the order they asked;
// when none is left for this cluster it joins the line and returns false,
// and is woken when its turn comes.
func (s *Scheduler) Acquire(clusterID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limits.MaxRunning <= 0 {
		s.running++
		return true
	}
	free := s.limits.MaxRunning - s.running
	pos := slices.Index(s.line, clusterID)
	switch {
	case pos >= 0 && pos < free:
		s.line = slices.Delete(s.line, pos, pos+1)
	case pos < 0 && len(s.line) < free:
	default:
		if pos < 0 {
			s.line = append(s.line, clusterID)
		}
		return false
	}
	s.running++
	return true
}

// Take takes a slot whether or not one is free: for a job that was
// already running when its worker reconnected, which must not wait in line
// behind jobs that have not started.
func (s *Scheduler) Take() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running++
}

// Release gives a slot back and wakes the clusters now first in line.
func (s *Scheduler) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running--
	s.wakeLineLocked()
}

// wakeLineLocked wakes as many clusters at the head of the line as there
// are free slots, dropping those whose session is gone (they ask again
// when they are back), so that no slot waits on a cluster that cannot
// take it.
func (s *Scheduler) wakeLineLocked() {
	free := s.limits.MaxRunning - s.running
	for i := 0; i < len(s.line) && i < free; {
		sess := s.sessions[s.line[i]]
		if sess == nil {
			s.line = slices.Delete(s.line, i, i+1)
			continue
		}
		select {
		case sess.wake <- struct{}{}:
		default:
		}
		i++
	}
}

// Waiting is the number of clusters with a job that waits for a slot
// under MaxRunning.
func (s *Scheduler) Waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.line)
}

// Running is the number of jobs holding a slot.
func (s *Scheduler) Running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running
}

type session struct {
	wake   chan struct{}
	cancel context.CancelCauseFunc
	done   chan struct{} // closed by detach
}

// New returns a scheduler over the store.
func New(s Store, limits Limits) *Scheduler {
	return &Scheduler{store: s, limits: limits, sessions: map[string]*session{}, Log: slog.Default()}
}

// StartScan validates the request, creates the scan with one job per
// targeted cluster and wakes the sessions of those clusters.
func (s *Scheduler) StartScan(ctx context.Context, target *fleetscanv1.ScanTarget, spec *fleetscanv1.ScanSpec) (*store.Scan, error) {
	if spec == nil {
		spec = &fleetscanv1.ScanSpec{}
	}
	sel := policy.Selection{Include: spec.IncludeChecks, Exclude: spec.ExcludeChecks, Custom: spec.CustomChecks, TrustedRegistries: spec.TrustedRegistries, DeniedRegistries: spec.DeniedRegistries}
	if err := sel.Validate(); err != nil {
		return nil, fmt.Errorf("%w: spec: %w", ErrInvalid, err)
	}
	ids, err := s.resolveTarget(ctx, target)
	if err != nil {
		return nil, err
	}
	scan, err := s.store.CreateScan(ctx, target, spec, ids)
	if err != nil {
		return nil, err
	}
	woken := make([]string, 0, len(scan.Jobs))
	for _, j := range scan.Jobs {
		woken = append(woken, j.Record.ClusterId)
	}
	s.wakeEverywhere(ctx, woken)
	return scan, nil
}

// validateTarget checks a target's form, not which clusters it matches.
func validateTarget(target *fleetscanv1.ScanTarget) error {
	given := 0
	for _, set := range []bool{len(target.GetClusterIds()) > 0, target.GetAllClusters(), target.GetLabelSelector() != "", target.GetTenant() != ""} {
		if set {
			given++
		}
	}
	if given != 1 {
		return fmt.Errorf("%w: target: give exactly one of cluster_ids, all_clusters, label_selector or tenant", ErrInvalid)
	}
	if target.LabelSelector != "" {
		if _, err := labels.Parse(target.LabelSelector); err != nil {
			return fmt.Errorf("%w: target.label_selector: %v", ErrInvalid, err)
		}
	}
	return nil
}

// resolveTarget lists the cluster ids a target selects.
func (s *Scheduler) resolveTarget(ctx context.Context, target *fleetscanv1.ScanTarget) ([]string, error) {
	if err := validateTarget(target); err != nil {
		return nil, err
	}
	if len(target.ClusterIds) > 0 {
		return target.ClusterIds, nil
	}
	sel := labels.Everything()
	if target.LabelSelector != "" {
		sel, _ = labels.Parse(target.LabelSelector)
	}
	var ids []string
	after := ""
	for {
		page, more, err := s.store.ListClusters(ctx, after, 1000, nil)
		if err != nil {
			return nil, err
		}
		for _, c := range page {
			if (target.Tenant == "" || c.Tenant == target.Tenant) && sel.Matches(labels.Set(c.Labels)) {
				ids = append(ids, c.Id)
			}
		}
		if !more {
			break
		}
		after = page[len(page)-1].Id
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w: target: no registered cluster matches", ErrInvalid)
	}
	return ids, nil
}

// Attach registers the session of a cluster's worker. wake receives a
// value whenever the cluster may have new jobs; ctx is cancelled when
// another worker of the same cluster attaches later, since the newest
// connection is the live one; detach must be called when the session ends.
// An older session of the cluster is ended first, and Attach waits until
// it has detached, so that the new session finds the jobs of the old one
// back in the queue rather than racing it for them.
func (s *Scheduler) Attach(ctx context.Context, clusterID string) (sessCtx context.Context, wake <-chan struct{}, detach func(), err error) {
	sessCtx, cancel := context.WithCancelCause(ctx)
	sess := &session{wake: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	sess.wake <- struct{}{} // a new session dispatches what is pending
	for {
		s.mu.Lock()
		old := s.sessions[clusterID]
		if old == nil {
			s.sessions[clusterID] = sess
			s.mu.Unlock()
			if s.Peers != nil {
				if err := s.Peers.Attached(ctx, clusterID); err != nil {
					s.Log.Warn("record a worker's session for the other replicas", "cluster", clusterID, "err", err)
				}
			}
			break
		}
		s.mu.Unlock()
		old.cancel(ErrReplaced)
		select {
		case <-old.done:
		case <-ctx.Done():
			cancel(nil)
			return nil, nil, nil, ctx.Err()
		}
	}
	return sessCtx, sess.wake, func() {
		cancel(nil)
		s.mu.Lock()
		current := s.sessions[clusterID] == sess
		s.mu.Unlock()
		// Recorded before the session is gone here: a newer session of
		// the cluster waits for that (sess.done), so it records itself
		// after. Its session stays current meanwhile for the same reason.
		if current && s.Peers != nil {
			if err := s.Peers.Detached(context.WithoutCancel(ctx), clusterID); err != nil {
				s.Log.Warn("record the end of a worker's session for the other replicas", "cluster", clusterID, "err", err)
			}
		}
		s.mu.Lock()
		if s.sessions[clusterID] == sess {
			delete(s.sessions, clusterID)
			// Its place in line goes to the next cluster.
			if i := slices.Index(s.line, clusterID); i >= 0 {
				s.line = slices.Delete(s.line, i, i+1)
				if s.limits.MaxRunning > 0 {
					s.wakeLineLocked()
				}
			}
		}
		s.mu.Unlock()
		close(sess.done)
	}, nil
}

// WakeAll wakes every session, to look for new jobs and for their jobs'
// ends: what a replica does when it may have missed its peers' news.
func (s *Scheduler) WakeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sess := range s.sessions {
		select {
		case sess.wake <- struct{}{}:
		default:
		}
	}
}

// Wake tells the cluster's session, if any, to look for new jobs.
func (s *Scheduler) Wake(clusterID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess := s.sessions[clusterID]; sess != nil {
		select {
		case sess.wake <- struct{}{}:
		default: // already woken
		}
	}
}

// ErrDisconnected ends a worker session on the operator's request.
var ErrDisconnected = errors.New("disconnected: the cluster's credentials were rotated")

// Disconnect ends the session of the cluster's worker, here or on a peer.
func (s *Scheduler) Disconnect(clusterID string) {
	s.DisconnectHere(clusterID)
	if s.Peers != nil {
		if err := s.Peers.Disconnect(context.Background(), clusterID); err != nil {
			s.Log.Warn("tell the other replicas to disconnect a worker", "cluster", clusterID, "err", err)
		}
	}
}

// Replaced ends the cluster's session here because its worker has a newer
// one on another replica.
func (s *Scheduler) Replaced(clusterID string) { s.endHere(clusterID, ErrReplaced) }

// WakeEverywhere wakes the cluster's session, here or on a peer: after
// jobs went back to the queue because a session here ended, the worker's
// newer session may be on another replica.
func (s *Scheduler) WakeEverywhere(ctx context.Context, clusterID string) {
	s.wakeEverywhere(ctx, []string{clusterID})
}

// DisconnectHere ends the session of the cluster's worker if it is
// connected to this server.
func (s *Scheduler) DisconnectHere(clusterID string) { s.endHere(clusterID, ErrDisconnected) }

// endHere ends the cluster's session here, if any, for cause.
func (s *Scheduler) endHere(clusterID string, cause error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess := s.sessions[clusterID]; sess != nil {
		sess.cancel(cause)
	}
}

// Connected reports whether the cluster's worker has a session here or on
// a peer.
func (s *Scheduler) Connected(c *storagev1.ClusterRecord) bool {
	s.mu.Lock()
	here := s.sessions[c.GetId()] != nil
	s.mu.Unlock()
	return here || (s.Peers != nil && s.Peers.ConnectedElsewhere(c.GetId()))
}

// ConnectedHere returns the clusters whose workers have a session here.
func (s *Scheduler) ConnectedHere() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.sessions))
	for id := range s.sessions {
		out = append(out, id)
	}
	return out
}

// Connections returns the number of connected workers.
func (s *Scheduler) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}
