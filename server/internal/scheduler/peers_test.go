package scheduler

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

// peers records what the scheduler tells the other replicas.
type peers struct {
	mu           sync.Mutex
	woken        []string
	disconnected []string
}

func (p *peers) Wake(_ context.Context, ids ...string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.woken = append(p.woken, ids...)
	return nil
}

func (p *peers) Disconnect(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.disconnected = append(p.disconnected, id)
	return nil
}

// TestPeersHearWhatWakesSessions: a worker may be connected to another
// replica, so what wakes or ends a session here is told to the peers.
func TestPeersHearWhatWakesSessions(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, id := range []string{"a", "b"} {
		if err := db.CreateCluster(ctx, &storagev1.ClusterRecord{Id: id, Tenant: "t"}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	p := &peers{}
	s := New(db, Limits{JobExpiry: time.Hour})
	s.Peers = p

	scan, err := s.StartScan(ctx, &fleetscanv1.ScanTarget{AllClusters: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Sort(p.woken); !slices.Equal(p.woken, []string{"a", "b"}) {
		t.Fatalf("a new scan woke %q on the peers, want a and b", p.woken)
	}
	p.woken = nil
	if _, err := s.CancelScan(ctx, scan.ID); err != nil {
		t.Fatal(err)
	}
	if slices.Sort(p.woken); !slices.Equal(p.woken, []string{"a", "b"}) {
		t.Fatalf("a cancelled scan woke %q on the peers, want a and b", p.woken)
	}
	s.Disconnect("a")
	if !slices.Equal(p.disconnected, []string{"a"}) {
		t.Fatalf("peers told to disconnect %q, want a", p.disconnected)
	}

	// Connected counts a worker seen lately as connected to a peer.
	s.SeenWithin = time.Minute
	if !s.Connected(&storagev1.ClusterRecord{Id: "a", LastSeenMs: time.Now().Add(-30 * time.Second).UnixMilli()}) {
		t.Error("a worker seen 30s ago, within SeenWithin, is not connected")
	}
	if s.Connected(&storagev1.ClusterRecord{Id: "a", LastSeenMs: time.Now().Add(-2 * time.Minute).UnixMilli()}) {
		t.Error("a worker last seen 2m ago is connected")
	}
	s.Peers = nil
	if s.Connected(&storagev1.ClusterRecord{Id: "a", LastSeenMs: time.Now().UnixMilli()}) {
		t.Error("without peers, a worker with no session here is connected")
	}
}
