package metrics_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
	"github.com/fleetscan/fleetscan/server/internal/history"
	"github.com/fleetscan/fleetscan/server/internal/metrics"
	"github.com/fleetscan/fleetscan/worker/catalog"
)

// benchClusters is the fleet the scrape is measured on.
const benchClusters = 1000

// BenchmarkPostureScrape: GET /metrics of a server with 1,000 clusters of
// ten tenants, each scanned once with one finding of every check in the
// catalog: the most check counts a job can hold, so the largest job record
// a scrape decodes per cluster. How many findings a cluster has does not
// matter to a scrape: it reads one cluster record and one job record per
// cluster.
//
//   - read: the store read alone (LatestJobs and history.Postures), ms/read;
//   - uncached: a scrape that reads the store every time, ms/scrape, with
//     the bytes and the series served (Go and process collectors
//     included), the posture's apart;
//   - cached: a scrape of an unchanged fleet through metrics.Cached, as
//     the server serves it.
func BenchmarkPostureScrape(b *testing.B) {
	var findings []*workerv1.Finding
	for i, m := range catalog.All() {
		findings = append(findings, finding(m.ID, fmt.Sprintf("app-%d", i), m.Severity, m.Party))
	}
	clusters := make([]cluster, benchClusters)
	for i := range clusters {
		clusters[i] = cluster{id: fmt.Sprintf("cluster-%04d", i), tenant: fmt.Sprintf("tenant-%d", i%10), scanned: true, findings: findings, objects: 2500}
	}
	db := openStore(b)
	storeScans(b, db, clusters)
	source := storeSource(db)
	b.Run("read", func(b *testing.B) {
		for b.Loop() {
			ps, err := history.Current(context.Background(), db)
			if err != nil || len(ps) != benchClusters || !ps[0].Scanned {
				b.Fatalf("%d postures, %v", len(ps), err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/read")
	})
	for _, bc := range []struct {
		name   string
		source metrics.PostureSource
	}{
		{"uncached", source},
		{"cached", metrics.Cached(source, db.ClustersVersion)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := metrics.New(metrics.Gauges{Posture: bc.source}).Handler(quietLog)
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			var page string
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
				}
				page = rec.Body.String()
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/scrape")
			b.ReportMetric(float64(len(page)), "bytes/scrape")
			// A series is a line of the text format that is not a comment.
			all, posture := 0, 0
			for line := range strings.Lines(page) {
				if line == "\n" || strings.HasPrefix(line, "#") {
					continue
				}
				all++
				for _, prefix := range []string{"fleetscan_cluster_", "fleetscan_tenant_", "fleetscan_fleet_", "fleetscan_posture_"} {
					if strings.HasPrefix(line, prefix) {
						posture++
					}
				}
			}
			b.ReportMetric(float64(all), "series")
			b.ReportMetric(float64(posture), "posture_series")
		})
	}
}
