package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sync"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
	"github.com/fleetscan/fleetscan/worker/checks"
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
	ListClusters(ctx context.Context, after string, limit int) ([]*storagev1.ClusterRecord, bool, error)
	CreateScan(ctx context.Context, target *fleetscanv1.ScanTarget, spec *fleetscanv1.ScanSpec, clusterIDs []string) (*store.Scan, error)
}

// Scheduler creates scans and tracks which clusters have a worker
// connected.
type Scheduler struct {
	store Store

	mu       sync.Mutex
	sessions map[string]*session
}

type session struct {
	wake   chan struct{}
	cancel context.CancelCauseFunc
}

// New returns a scheduler over the store.
func New(s Store) *Scheduler {
	return &Scheduler{store: s, sessions: map[string]*session{}}
}

// StartScan validates the request, creates the scan with one job per
// targeted cluster and wakes the sessions of those clusters.
func (s *Scheduler) StartScan(ctx context.Context, target *fleetscanv1.ScanTarget, spec *fleetscanv1.ScanSpec) (*store.Scan, error) {
	if spec == nil {
		spec = &fleetscanv1.ScanSpec{}
	}
	sel := checks.Selection{Include: spec.IncludeChecks, Exclude: spec.ExcludeChecks, Custom: spec.CustomChecks, TrustedRegistries: spec.TrustedRegistries}
	if err := sel.Validate(); err != nil {
		return nil, fmt.Errorf("%w: spec: %w", ErrInvalid, err)
	}
	var ids []string
	switch {
	case target == nil || (len(target.ClusterIds) == 0 && !target.AllClusters):
		return nil, fmt.Errorf("%w: target: give cluster_ids or all_clusters", ErrInvalid)
	case len(target.ClusterIds) > 0 && target.AllClusters:
		return nil, fmt.Errorf("%w: target: give cluster_ids or all_clusters, not both", ErrInvalid)
	case target.AllClusters:
		after := ""
		for {
			page, more, err := s.store.ListClusters(ctx, after, 1000)
			if err != nil {
				return nil, err
			}
			for _, c := range page {
				ids = append(ids, c.Id)
			}
			if !more {
				break
			}
			after = page[len(page)-1].Id
		}
		if len(ids) == 0 {
			return nil, fmt.Errorf("%w: target: no cluster is registered", ErrInvalid)
		}
	default:
		ids = target.ClusterIds
	}
	scan, err := s.store.CreateScan(ctx, target, spec, ids)
	if err != nil {
		return nil, err
	}
	for _, j := range scan.Jobs {
		s.Wake(j.Record.ClusterId)
	}
	return scan, nil
}

// Attach registers the session of a cluster's worker. wake receives a
// value whenever the cluster may have new jobs; ctx is cancelled when
// another worker of the same cluster attaches later, since the newest
// connection is the live one; detach must be called when the session ends.
func (s *Scheduler) Attach(ctx context.Context, clusterID string) (sessCtx context.Context, wake <-chan struct{}, detach func()) {
	sessCtx, cancel := context.WithCancelCause(ctx)
	sess := &session{wake: make(chan struct{}, 1), cancel: cancel}
	sess.wake <- struct{}{} // a new session dispatches what is pending
	s.mu.Lock()
	if old := s.sessions[clusterID]; old != nil {
		old.cancel(ErrReplaced)
	}
	s.sessions[clusterID] = sess
	s.mu.Unlock()
	return sessCtx, sess.wake, func() {
		cancel(nil)
		s.mu.Lock()
		if s.sessions[clusterID] == sess {
			delete(s.sessions, clusterID)
		}
		s.mu.Unlock()
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

// Connected reports whether the cluster's worker has a session.
func (s *Scheduler) Connected(clusterID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[clusterID] != nil
}

// Connections returns the number of connected workers.
func (s *Scheduler) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}
