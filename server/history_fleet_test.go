package server_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server"
	"github.com/fleetscan/fleetscan/worker"
	"github.com/fleetscan/fleetscan/worker/checks"
	"github.com/fleetscan/fleetscan/worker/policy"
)

// historyFleet is the demo fleet with weeks of daily scans behind it, on
// a server whose clock starts that many days ago and ends now, with a
// web listener: what the console shows and its tests look at.
type historyFleet struct {
	ts            *testServer
	web           string // base URL of the web listener
	acme, globex  string // tenant tokens
	days          int
	clusters      []string
	lateCluster   string // not scanned in the first week: a gap
	improved      string // better in the last week than before: a mover
	lastFleetScan string
}

// switchSource reads whichever snapshot directory it is set to, so that
// a cluster's posture can change from one day's scan to the next.
type switchSource struct{ dir atomic.Pointer[string] }

func (s *switchSource) set(dir string) { s.dir.Store(&dir) }

func (s *switchSource) Collect(ctx context.Context, sel policy.Selection) (*checks.Inventory, error) {
	return worker.SnapshotSource(*s.dir.Load(), nil).Collect(ctx, sel)
}

func (s *switchSource) KubernetesVersion(ctx context.Context) (string, error) {
	return worker.SnapshotSource(*s.dir.Load(), nil).KubernetesVersion(ctx)
}

func newHistoryFleet(t *testing.T, days int) *historyFleet {
	t.Helper()
	clk := &clock{t: time.Now().Add(-time.Duration(days-1) * 24 * time.Hour)}
	hf := &historyFleet{days: days, clusters: []string{"acme-dev", "acme-prod", "globex-prod"}, lateCluster: "acme-dev", improved: "acme-prod"}
	hf.ts = &testServer{t: t, dataDir: t.TempDir()}
	hf.ts.cfg = withWeb(t, &hf.web, func(c *server.Config) { c.Now = clk.Now })
	hf.ts.start()
	t.Cleanup(hf.ts.shutdown)
	op := hf.ts.client(hf.ts.operatorToken())
	ctx := context.Background()
	sources := map[string]*switchSource{}
	for _, c := range []struct{ id, tenant, env string }{{"acme-dev", "acme", "dev"}, {"acme-prod", "acme", "prod"}, {"globex-prod", "globex", "prod"}} {
		token := register(t, op, c.id, c.tenant, map[string]string{"env": c.env})
		src := &switchSource{}
		src.set(filepath.Join(demoClusters, c.id))
		sources[c.id] = src
		hf.ts.startWorkerOn(c.id, token, src)
		waitConnected(t, op, c.id)
	}
	for _, tenant := range []string{"acme", "globex"} {
		resp, err := op.TokenService.CreateToken(ctx, &fleetscanv1.CreateTokenRequest{Name: tenant + "-console", Role: fleetscanv1.TokenRole_TOKEN_ROLE_TENANT, Tenant: tenant})
		if err != nil {
			t.Fatal(err)
		}
		if tenant == "acme" {
			hf.acme = resp.Secret
		} else {
			hf.globex = resp.Secret
		}
	}
	for day := range days {
		// acme-prod ran what acme-dev runs (worse) until the last week.
		if day < days-7 {
			sources["acme-prod"].set(filepath.Join(demoClusters, "acme-dev"))
		} else {
			sources["acme-prod"].set(filepath.Join(demoClusters, "acme-prod"))
		}
		ids := []string{"acme-prod", "globex-prod"}
		if day >= 7 {
			ids = append(ids, "acme-dev")
		}
		hf.lastFleetScan = scanClusters(t, hf.ts, ids...).Id
		if day < days-1 {
			clk.Advance(24 * time.Hour)
		}
	}
	return hf
}

// TestHistoryFleet holds the fixture to what the console's tests assume:
// a trend of one point a day, with the late cluster's first week a gap.
func TestHistoryFleet(t *testing.T) {
	hf := newHistoryFleet(t, 21)
	op := hf.ts.client(hf.ts.operatorToken())
	since := time.Now().Add(-time.Duration(hf.days) * 24 * time.Hour)
	late, err := op.FindingService.GetTrend(context.Background(), &fleetscanv1.GetTrendRequest{
		Scope: &fleetscanv1.Scope{Scope: &fleetscanv1.Scope_ClusterId{ClusterId: hf.lateCluster}}, Since: timestamppb.New(since)})
	if err != nil {
		t.Fatal(err)
	}
	gaps, measured := 0, 0
	for _, p := range late.Points {
		if p.Score == nil {
			gaps++
		} else {
			measured++
		}
	}
	if gaps < 7 || measured < hf.days-8 {
		t.Errorf("%s's trend: %d gaps and %d measured days of %d points, want its first week a gap and the rest measured", hf.lateCluster, gaps, measured, len(late.Points))
	}
	moved, err := op.FindingService.GetTrend(context.Background(), &fleetscanv1.GetTrendRequest{
		Scope: &fleetscanv1.Scope{Scope: &fleetscanv1.Scope_ClusterId{ClusterId: hf.improved}}, Since: timestamppb.New(since)})
	if err != nil {
		t.Fatal(err)
	}
	var first, last *int32
	for _, p := range moved.Points {
		if p.Score != nil {
			if first == nil {
				first = p.Score
			}
			last = p.Score
		}
	}
	if first == nil || *first == *last {
		t.Errorf("%s's score did not move over the history: %v → %v", hf.improved, first, last)
	}
}
