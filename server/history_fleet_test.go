package server_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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
	worsened      string // worse in the last week than before: a mover
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
	hf := &historyFleet{days: days, clusters: []string{"acme-dev", "acme-prod", "globex-prod"}, lateCluster: "acme-dev", improved: "acme-prod", worsened: "acme-dev"}
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
		// Until the last week, acme-prod ran what acme-dev runs (worse)
		// and acme-dev what acme-prod runs (better).
		if day < days-7 {
			sources["acme-prod"].set(filepath.Join(demoClusters, "acme-dev"))
			sources["acme-dev"].set(filepath.Join(demoClusters, "acme-prod"))
		} else {
			sources["acme-prod"].set(filepath.Join(demoClusters, "acme-prod"))
			sources["acme-dev"].set(filepath.Join(demoClusters, "acme-dev"))
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

// TestCompareSinceBaseline: with a baseline time, CompareClusters gives
// each cluster's score as its latest scan before then found it, so that
// the fleet's movers come from one call; a cluster not scanned by then has
// none, and a tenant gets its own clusters' only.
func TestCompareSinceBaseline(t *testing.T) {
	// The late cluster's scans start on the 8th day: 16 days put its first
	// week of scans before the baseline.
	hf := newHistoryFleet(t, 16)
	ctx := context.Background()
	// Half a day clear of the daily scans, which start a week before the
	// end of the fixture's history.
	baseline := timestamppb.New(time.Now().Add(-(6*24 + 12) * time.Hour))
	op := hf.ts.client(hf.ts.operatorToken())
	cmp, err := op.FindingService.CompareClusters(ctx, &fleetscanv1.CompareClustersRequest{BaselineTime: baseline})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*fleetscanv1.ClusterPosture{}
	for _, c := range cmp.Clusters {
		got[c.ClusterId] = c
		if c.BaselineScore == nil {
			t.Errorf("%s has no baseline score, though scanned daily since before the baseline", c.ClusterId)
			continue
		}
		if !c.BaselineScanTime.AsTime().Before(baseline.AsTime()) || c.BaselineScanTime.AsTime().Before(baseline.AsTime().Add(-24*time.Hour)) {
			t.Errorf("%s's baseline scan ended %v, want the last daily scan before %v", c.ClusterId, c.BaselineScanTime.AsTime(), baseline.AsTime())
		}
	}
	if c := got[hf.worsened]; c == nil || c.BaselineScore == nil || !(*c.BaselineScore > c.Score) {
		t.Fatalf("%s, worse this week: %v", hf.worsened, c)
	}
	if c := got[hf.improved]; c == nil || c.BaselineScore == nil || !(*c.BaselineScore < c.Score) {
		t.Errorf("%s, better this week: %v", hf.improved, c)
	}
	if c := got["globex-prod"]; c == nil || c.BaselineScore == nil || *c.BaselineScore != c.Score {
		t.Errorf("globex-prod, unchanged: %v", c)
	}

	// The baseline score is the trend's score of that cluster on the day
	// of its baseline scan (the next scan came a day later).
	trend, err := op.FindingService.GetTrend(ctx, &fleetscanv1.GetTrendRequest{
		Scope: &fleetscanv1.Scope{Scope: &fleetscanv1.Scope_ClusterId{ClusterId: hf.worsened}}, Since: got[hf.worsened].GetBaselineScanTime()})
	if err != nil {
		t.Fatal(err)
	}
	if p := trend.Points[0]; p.Score == nil || *p.Score != *got[hf.worsened].BaselineScore {
		t.Errorf("trend of %s on the day of its baseline scan: %v, baseline score %d", hf.worsened, p.Score, *got[hf.worsened].BaselineScore)
	}

	// Before any scan: no cluster has a baseline.
	early, err := op.FindingService.CompareClusters(ctx, &fleetscanv1.CompareClustersRequest{BaselineTime: timestamppb.New(time.Now().Add(-time.Duration(hf.days) * 24 * time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range early.Clusters {
		if c.BaselineScore != nil || c.BaselineScanTime != nil {
			t.Errorf("%s has a baseline before its first scan: %d at %v", c.ClusterId, *c.BaselineScore, c.BaselineScanTime.AsTime())
		}
	}

	acme, err := hf.ts.client(hf.acme).FindingService.CompareClusters(ctx, &fleetscanv1.CompareClustersRequest{BaselineTime: baseline})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range acme.Clusters {
		if c.Tenant != "acme" {
			t.Errorf("tenant acme compares %s of %q", c.ClusterId, c.Tenant)
		}
	}
	if len(acme.Clusters) != 2 {
		t.Errorf("tenant acme compares %d clusters, want its 2", len(acme.Clusters))
	}

	for _, bad := range []*timestamppb.Timestamp{timestamppb.New(time.Now().Add(time.Hour)), timestamppb.New(time.Now().AddDate(-6, 0, 0)), {Seconds: 1, Nanos: -1}} {
		if _, err := op.FindingService.CompareClusters(ctx, &fleetscanv1.CompareClustersRequest{BaselineTime: bad}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("baseline %v: %v, want InvalidArgument", bad, err)
		}
	}
}
