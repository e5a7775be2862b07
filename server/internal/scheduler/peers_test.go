package scheduler

import (
	"context"
	"errors"
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
	// sessions: +id when attached, -id when detached; elsewhere: the
	// clusters connected to another replica.
	sessions  []string
	elsewhere map[string]bool
}

func (p *peers) Attached(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sessions = append(p.sessions, "+"+id)
	return nil
}

func (p *peers) Detached(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sessions = append(p.sessions, "-"+id)
	return nil
}

func (p *peers) ConnectedElsewhere(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.elsewhere[id]
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

	// Sessions are recorded for the peers, the old one's end before the
	// new one's start; a worker on a peer is connected.
	_, _, detach1, err := s.Attach(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	attached := make(chan func())
	go func() {
		_, _, detach2, err := s.Attach(ctx, "a") // replaces the first
		if err != nil {
			t.Error(err)
		}
		attached <- detach2
	}()
	// The first session sees its context end (replaced) and detaches.
	detach1()
	detach2 := <-attached
	detach2()
	if want := []string{"+a", "-a", "+a", "-a"}; !slices.Equal(p.sessions, want) {
		t.Fatalf("sessions recorded %q, want %q", p.sessions, want)
	}
	p.elsewhere = map[string]bool{"b": true}
	if !s.Connected(&storagev1.ClusterRecord{Id: "b"}) || s.Connected(&storagev1.ClusterRecord{Id: "a"}) {
		t.Error("Connected does not follow the peers' sessions")
	}

	// A newer session on a peer ends this one, as replaced.
	sessCtx, _, detach3, err := s.Attach(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	defer detach3()
	s.Replaced("c")
	<-sessCtx.Done()
	if cause := context.Cause(sessCtx); !errors.Is(cause, ErrReplaced) {
		t.Errorf("a session replaced on a peer ended with %v, want ErrReplaced", cause)
	}
}
