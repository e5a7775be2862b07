package metrics_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
	"github.com/fleetscan/fleetscan/server/internal/history"
	"github.com/fleetscan/fleetscan/server/internal/metrics"
)

const (
	critical = fleetscanv1.Severity_SEVERITY_CRITICAL
	high     = fleetscanv1.Severity_SEVERITY_HIGH
	medium   = fleetscanv1.Severity_SEVERITY_MEDIUM
	low      = fleetscanv1.Severity_SEVERITY_LOW
	info     = fleetscanv1.Severity_SEVERITY_INFO
	provider = fleetscanv1.ResponsibleParty_RESPONSIBLE_PARTY_PROVIDER
	platform = fleetscanv1.ResponsibleParty_RESPONSIBLE_PARTY_PLATFORM
	workload = fleetscanv1.ResponsibleParty_RESPONSIBLE_PARTY_WORKLOAD
)

// suppressed is f exempted by its object's annotation.
func suppressed(f *workerv1.Finding) *workerv1.Finding {
	f.SuppressionReason = "fleetscan.io/exempt: accepted"
	return f
}

// TestPostureGauges: after a scan stored for two clusters, the posture
// gauges show each one's open findings by severity and by party, its
// score and when it was scanned; a registered cluster never scanned has
// its info series and nothing else (no score of 100, no timestamp). The
// numbers are worked out by hand from docs/posture-score.md and are the
// ones CompareClusters and GetSummary compute (history.Compare and
// history.Summarize over the same read). A second scan of one cluster
// shows on the next scrape through the cache.
func TestPostureGauges(t *testing.T) {
	db := openStore(t)
	storeScans(t, db, []cluster{
		// weighted 10·2 + 5·1 = 25 over 10 objects: 100/(1+2.5/2) = 44.
		{id: "acme-prod", tenant: "acme", scanned: true, objects: 10, findings: []*workerv1.Finding{
			finding("POD-001", "web", critical, workload),
			finding("POD-001", "api", critical, platform),
			finding("CP-001", "web", high, provider),
			suppressed(finding("POD-018", "web", medium, workload)),
			finding("IMG-001", "web", info, workload),
		}},
		// weighted 3 over 3 objects: 100/(1+1/2) = 67.
		{id: "globex-prod", tenant: "globex", scanned: true, objects: 3, findings: []*workerv1.Finding{
			finding("POD-010", "a", low, workload),
			finding("POD-010", "b", low, workload),
			finding("POD-010", "c", low, workload),
		}},
		{id: "acme-dev", tenant: "acme"},
		{id: "lab"},
	})
	m := metrics.New(metrics.Gauges{Posture: metrics.Cached(storeSource(db), db.ClustersVersion)})
	h := m.Handler(quietLog)
	got := scrape(t, h)
	want := map[string]map[string]float64{
		"fleetscan_cluster_info": {
			`cluster_id="acme-dev",tenant="acme"`: 1, `cluster_id="acme-prod",tenant="acme"`: 1,
			`cluster_id="globex-prod",tenant="globex"`: 1, `cluster_id="lab",tenant=""`: 1,
		},
		"fleetscan_cluster_open_findings": {
			`cluster_id="acme-prod",severity="critical",tenant="acme"`: 2, `cluster_id="acme-prod",severity="high",tenant="acme"`: 1,
			`cluster_id="acme-prod",severity="medium",tenant="acme"`: 0, `cluster_id="acme-prod",severity="low",tenant="acme"`: 0,
			`cluster_id="acme-prod",severity="info",tenant="acme"`:         1,
			`cluster_id="globex-prod",severity="critical",tenant="globex"`: 0, `cluster_id="globex-prod",severity="high",tenant="globex"`: 0,
			`cluster_id="globex-prod",severity="medium",tenant="globex"`: 0, `cluster_id="globex-prod",severity="low",tenant="globex"`: 3,
			`cluster_id="globex-prod",severity="info",tenant="globex"`: 0,
		},
		"fleetscan_cluster_open_findings_by_party": {
			`cluster_id="acme-prod",party="provider",tenant="acme"`: 1, `cluster_id="acme-prod",party="platform",tenant="acme"`: 1,
			`cluster_id="acme-prod",party="workload",tenant="acme"`:     2,
			`cluster_id="globex-prod",party="provider",tenant="globex"`: 0, `cluster_id="globex-prod",party="platform",tenant="globex"`: 0,
			`cluster_id="globex-prod",party="workload",tenant="globex"`: 3,
		},
		"fleetscan_cluster_posture_score": {`cluster_id="acme-prod",tenant="acme"`: 44, `cluster_id="globex-prod",tenant="globex"`: 67},
		"fleetscan_cluster_last_successful_scan_timestamp_seconds": {
			`cluster_id="acme-prod",tenant="acme"`: float64(scanStart.Unix()), `cluster_id="globex-prod",tenant="globex"`: float64(scanStart.Unix()),
		},
		// acme: acme-prod alone (acme-dev was never scanned). The fleet:
		// weighted 28 over 13 objects, 100/(1+2.154/2) = 48.
		"fleetscan_tenant_posture_score":      {`tenant="acme"`: 44, `tenant="globex"`: 67},
		"fleetscan_fleet_posture_score":       {``: 48},
		"fleetscan_posture_read_errors_total": {``: 0},
	}
	for name, w := range want {
		if g := series(got, name); !maps.Equal(g, normalize(w)) {
			t.Errorf("%s:\n got %v\nwant %v", name, g, normalize(w))
		}
	}

	// The same numbers as the API's, computed by its functions.
	latest, err := db.LatestJobs(context.Background(), func(*storagev1.ClusterRecord) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	ranked, _ := history.Compare(latest)
	for _, p := range ranked {
		key := fmt.Sprintf("cluster_id=%q,tenant=%q", p.ClusterID, p.Tenant)
		score, ok := series(got, "fleetscan_cluster_posture_score")[key]
		if ok != p.Scanned || (ok && score != float64(p.Score)) {
			t.Errorf("%s: metric score %v (present %v); CompareClusters: %d (scanned %v)", p.ClusterID, score, ok, p.Score, p.Scanned)
		}
	}
	if fleet := history.Summarize(latest, 10); series(got, "fleetscan_fleet_posture_score")[""] != float64(fleet.Score) {
		t.Errorf("fleet score %v, GetSummary's %d", series(got, "fleetscan_fleet_posture_score"), fleet.Score)
	}

	// globex-prod scanned again: one low left.
	scanClusters(t, db, []cluster{{id: "globex-prod", scanned: true, objects: 3, findings: []*workerv1.Finding{finding("POD-010", "a", low, workload)}}})
	got = scrape(t, h)
	if g := series(got, "fleetscan_cluster_open_findings")[`cluster_id="globex-prod",severity="low",tenant="globex"`]; g != 1 {
		t.Errorf("after a rescan, globex-prod's open low findings read %v, want 1", g)
	}
	// weighted 1 over 3 objects: 100/(1+1/6) = 86.
	if g := series(got, "fleetscan_cluster_posture_score")[`cluster_id="globex-prod",tenant="globex"`]; g != 86 {
		t.Errorf("after a rescan, globex-prod's score reads %v, want 86", g)
	}
}

// normalize sorts the labels of want's keys the way series prints them:
// by name, as Prometheus's exposition orders them.
func normalize(want map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range want {
		parts := strings.Split(k, ",")
		slices.Sort(parts)
		out[strings.Join(parts, ",")] = v
	}
	return out
}

// TestPostureParties: a party the enum does not name, or none, is counted
// as "unspecified", present only when not zero; a scanned cluster whose
// job predates party counts has no party series rather than zeros.
func TestPostureParties(t *testing.T) {
	counts := func(n int64) *fleetscanv1.SeverityCounts { return &fleetscanv1.SeverityCounts{High: n, Suppressed: 5} }
	source := metrics.PostureFunc(func(context.Context) ([]history.Posture, error) {
		return []history.Posture{
			{ClusterID: "a", Tenant: "t", Scanned: true, Counts: counts(6), Objects: 6, Score: 50, Parties: []history.Party{
				{Party: fleetscanv1.ResponsibleParty_RESPONSIBLE_PARTY_UNSPECIFIED, Counts: counts(1)},
				{Party: workload, Counts: counts(3)},
				{Party: fleetscanv1.ResponsibleParty(9), Counts: counts(2)},
			}},
			{ClusterID: "old", Tenant: "t", Scanned: true, Counts: counts(4), Objects: 4, Score: 50},
		}, nil
	})
	got := series(scrape(t, metrics.New(metrics.Gauges{Posture: source}).Handler(quietLog)), "fleetscan_cluster_open_findings_by_party")
	want := normalize(map[string]float64{
		`cluster_id="a",tenant="t",party="provider"`: 0, `cluster_id="a",tenant="t",party="platform"`: 0,
		`cluster_id="a",tenant="t",party="workload"`: 3, `cluster_id="a",tenant="t",party="unspecified"`: 3,
	})
	if !maps.Equal(got, want) {
		t.Errorf("by party:\n got %v\nwant %v", got, want)
	}
}

// TestPostureReadError: when the read fails, the scrape still serves the
// other metrics, leaves the posture series out, counts the failure and
// logs it.
func TestPostureReadError(t *testing.T) {
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	source := metrics.PostureFunc(func(context.Context) ([]history.Posture, error) {
		return nil, errors.New("cluster record damaged")
	})
	h := metrics.New(metrics.Gauges{Posture: source, WorkersConnected: func() float64 { return 3 }}).Handler(log)
	got := scrape(t, h)
	if g := series(got, "fleetscan_workers_connected")[""]; g != 3 {
		t.Errorf("fleetscan_workers_connected %v, want 3 served despite the failed read", g)
	}
	if g := series(got, "fleetscan_posture_read_errors_total")[""]; g != 1 {
		t.Errorf("fleetscan_posture_read_errors_total %v, want 1", g)
	}
	if _, ok := got["fleetscan_cluster_info"]; ok {
		t.Error("fleetscan_cluster_info served from a failed read")
	}
	if !strings.Contains(logged.String(), "cluster record damaged") {
		t.Errorf("the failure was not logged; log: %q", logged.String())
	}
	scrape(t, h)
	if g := series(scrape(t, h), "fleetscan_posture_read_errors_total")[""]; g != 3 {
		t.Errorf("after three failed scrapes fleetscan_posture_read_errors_total reads %v, want 3", g)
	}
}

// TestCached: the cache reads again only when the version changed, and
// keeps no failed read.
func TestCached(t *testing.T) {
	var version uint64
	reads := 0
	fail := false
	source := metrics.Cached(metrics.PostureFunc(func(context.Context) ([]history.Posture, error) {
		reads++
		if fail {
			return nil, errors.New("read failed")
		}
		return []history.Posture{{ClusterID: fmt.Sprint(reads)}}, nil
	}), func() uint64 { return version })
	ctx := context.Background()
	read := func(wantID string, wantReads int) {
		t.Helper()
		ps, err := source.Postures(ctx)
		if wantID == "" {
			if err == nil {
				t.Errorf("read %d: no error", reads)
			}
		} else if err != nil || len(ps) != 1 || ps[0].ClusterID != wantID {
			t.Errorf("postures %v, %v; want cluster %s", ps, err, wantID)
		}
		if reads != wantReads {
			t.Errorf("%d reads of the source, want %d", reads, wantReads)
		}
	}
	read("1", 1)
	read("1", 1)
	version++
	read("2", 2)
	read("2", 2)
	version++
	fail = true
	read("", 3)
	fail = false
	read("4", 4)
}

// TestScrapeOfOtherMetricsReadsNoPosture: a scrape that asks for other
// metrics only, with name[], does not read the posture; one that asks
// for a posture metric, or for everything, does.
func TestScrapeOfOtherMetricsReadsNoPosture(t *testing.T) {
	reads := 0
	source := metrics.PostureFunc(func(context.Context) ([]history.Posture, error) {
		reads++
		return []history.Posture{{ClusterID: "c", Tenant: "t", Scanned: true, Counts: &fleetscanv1.SeverityCounts{}, Score: 100}}, nil
	})
	h := metrics.New(metrics.Gauges{Posture: source, JobsRunning: func() float64 { return 2 }}).Handler(quietLog)
	tests := []struct {
		query     string
		wantReads int
		want      []string
	}{
		{"?name[]=go_goroutines&name[]=fleetscan_jobs_running", 0, []string{"go_goroutines", "fleetscan_jobs_running"}},
		{"?name[]=fleetscan_fleet_posture_score", 1, []string{"fleetscan_fleet_posture_score"}},
		{"", 1, []string{"go_goroutines", "fleetscan_jobs_running", "fleetscan_fleet_posture_score", "fleetscan_cluster_info"}},
	}
	for _, tt := range tests {
		reads = 0
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics"+tt.query, nil))
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
		if err != nil {
			t.Fatalf("GET /metrics%s: %v", tt.query, err)
		}
		if reads != tt.wantReads {
			t.Errorf("GET /metrics%s read the posture %d times, want %d", tt.query, reads, tt.wantReads)
		}
		for _, name := range tt.want {
			if families[name] == nil {
				t.Errorf("GET /metrics%s lacks %s", tt.query, name)
			}
		}
		if tt.query != "" && len(families) != len(tt.want) {
			t.Errorf("GET /metrics%s served %d families, want %d", tt.query, len(families), len(tt.want))
		}
	}
}
