package notify

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

// WatchStore is what the Watcher reads and writes.
type WatchStore interface {
	ListNotifiers(ctx context.Context, keep func(*storagev1.NotifierRecord) bool) ([]*storagev1.NotifierRecord, error)
	ListClusters(ctx context.Context, after string, limit int, keep func(*storagev1.ClusterRecord) bool) ([]*storagev1.ClusterRecord, bool, error)
	ListExceptions(ctx context.Context, keep func(*fleetscanv1.Exception) bool) ([]*fleetscanv1.Exception, error)
	AddDeliveries(ctx context.Context, once string, out []store.Outgoing) (bool, error)
}

// Watcher finds what no commit reports: workers offline too long and
// exceptions about to expire. Each is sent once per notifier (a once key
// in the store), however often the Watcher looks and across restarts.
type Watcher struct {
	Store   WatchStore
	Builder Builder
	// Connected reports whether a cluster's worker is connected now.
	Connected func(c *storagev1.ClusterRecord) bool
	// Started is when the server started: a worker is not counted away
	// before the server could have heard from it.
	Started time.Time
	Log     *slog.Logger
}

// Run looks every interval until ctx ends.
func (w *Watcher) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := w.Look(ctx); err != nil && ctx.Err() == nil {
			w.Log.Error("look for offline workers and expiring exceptions", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Look writes the events of what it finds now.
func (w *Watcher) Look(ctx context.Context) error {
	notifiers, err := w.Store.ListNotifiers(ctx, func(n *storagev1.NotifierRecord) bool {
		return Wants(n, fleetscanv1.EventType_EVENT_TYPE_WORKER_OFFLINE) || Wants(n, fleetscanv1.EventType_EVENT_TYPE_EXCEPTION_EXPIRING)
	})
	if err != nil || len(notifiers) == 0 {
		return err
	}
	now := w.Builder.Now()
	var clusters []*storagev1.ClusterRecord
	for after := ""; ; {
		page, more, err := w.Store.ListClusters(ctx, after, 1000, func(*storagev1.ClusterRecord) bool { return true })
		if err != nil {
			return err
		}
		clusters = append(clusters, page...)
		if !more || len(page) == 0 {
			break
		}
		after = page[len(page)-1].Id
	}
	tenantOf := map[string]string{}
	for _, c := range clusters {
		tenantOf[c.Id] = c.Tenant
	}
	exceptions, err := w.Store.ListExceptions(ctx, func(e *fleetscanv1.Exception) bool {
		return store.ExceptionState(e, now.UnixMilli()) == fleetscanv1.ExceptionState_EXCEPTION_STATE_ACTIVE
	})
	if err != nil {
		return err
	}
	for _, n := range notifiers {
		if Wants(n, fleetscanv1.EventType_EVENT_TYPE_WORKER_OFFLINE) {
			threshold := time.Duration(n.OfflineAfterMs) * time.Millisecond
			if threshold <= 0 {
				threshold = DefaultOfflineAfter
			}
			for _, c := range clusters {
				if c.LastSeenMs == 0 || !covers(n, c) || w.Connected(c) {
					continue // never connected: not offline, not yet set up
				}
				lastSeen := time.UnixMilli(c.LastSeenMs)
				if now.Sub(lastSeen) <= threshold || now.Sub(w.Started) <= threshold {
					continue
				}
				once := fmt.Sprintf("offline/%s/%s/%d", n.Id, c.Id, c.LastSeenMs)
				if _, err := w.Store.AddDeliveries(ctx, once, []store.Outgoing{w.Builder.WorkerOffline(n, c, lastSeen, threshold)}); err != nil {
					return err
				}
			}
		}
		if Wants(n, fleetscanv1.EventType_EVENT_TYPE_EXCEPTION_EXPIRING) {
			warning := time.Duration(n.ExpiryWarningMs) * time.Millisecond
			if warning <= 0 {
				warning = DefaultExpiryWarning
			}
			for _, e := range exceptions {
				expire := e.GetExpireTime().AsTime()
				if e.ExpireTime == nil || expire.Sub(now) > warning || !reaches(n, e, tenantOf) {
					continue
				}
				once := fmt.Sprintf("expiring/%s/%s/%d", n.Id, e.Id, expire.UnixMilli())
				if _, err := w.Store.AddDeliveries(ctx, once, []store.Outgoing{w.Builder.ExceptionExpiring(n, e)}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// reaches reports whether a tenant's notifier hears of an exception: its
// tenant's own, and those on its tenant or its clusters. An operator's
// notifier hears of all.
func reaches(n *storagev1.NotifierRecord, e *fleetscanv1.Exception, tenantOf map[string]string) bool {
	if n.Tenant == "" {
		return true
	}
	return e.OwnerTenant == n.Tenant || e.Tenant == n.Tenant || (e.ClusterId != "" && tenantOf[e.ClusterId] == n.Tenant)
}
