package metrics_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	dto "github.com/prometheus/client_model/go"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
	"github.com/fleetscan/fleetscan/server/internal/history"
	"github.com/fleetscan/fleetscan/server/internal/metrics"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

// scanStart is when the test clusters' scans end (the store's clock).
var scanStart = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// openStore opens a store in a temporary directory on a fixed clock.
func openStore(tb testing.TB) *store.DB {
	tb.Helper()
	db, err := store.Open(filepath.Join(tb.TempDir(), "fleetscan.db"), store.Options{Now: func() time.Time { return scanStart }})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// cluster is one test cluster: its tenant and, if scanned, the findings
// and object count of its one succeeded job.
type cluster struct {
	id, tenant string
	scanned    bool
	findings   []*workerv1.Finding
	objects    int64
}

// storeScans registers the clusters and runs one scan of those scanned.
func storeScans(tb testing.TB, db *store.DB, clusters []cluster) {
	tb.Helper()
	for _, c := range clusters {
		if err := db.CreateCluster(context.Background(), &storagev1.ClusterRecord{Id: c.id, Tenant: c.tenant}, nil, nil); err != nil {
			tb.Fatal(err)
		}
	}
	scanClusters(tb, db, clusters)
}

// scanClusters runs one scan of the clusters marked scanned, each job
// staged in one batch and completed, as the server does.
func scanClusters(tb testing.TB, db *store.DB, clusters []cluster) {
	tb.Helper()
	ctx := context.Background()
	var scanned []string
	for _, c := range clusters {
		if c.scanned {
			scanned = append(scanned, c.id)
		}
	}
	if len(scanned) == 0 {
		return
	}
	scan, err := db.CreateScan(ctx, &fleetscanv1.ScanTarget{ClusterIds: scanned}, nil, scanned)
	if err != nil {
		tb.Fatal(err)
	}
	jobOf := map[string]store.Job{}
	for _, j := range scan.Jobs {
		jobOf[j.Record.ClusterId] = j
	}
	for _, c := range clusters {
		if !c.scanned {
			continue
		}
		if _, err := db.DispatchPending(ctx, c.id, 0); err != nil {
			tb.Fatal(err)
		}
		id := jobOf[c.id].ID
		done := store.Completion{Findings: int64(len(c.findings)), ObjectsScanned: c.objects}
		if len(c.findings) > 0 {
			done.Batches = 1
			if err := db.StageBatch(ctx, id, &workerv1.FindingBatch{JobId: id.String(), Seq: 1, Findings: c.findings}); err != nil {
				tb.Fatal(err)
			}
		}
		if err := db.CompleteJob(ctx, id, done); err != nil {
			tb.Fatal(err)
		}
	}
}

// finding is a finding of check on Deployment name in namespace shop.
func finding(check, name string, sev fleetscanv1.Severity, party fleetscanv1.ResponsibleParty) *workerv1.Finding {
	return &workerv1.Finding{
		CheckId: check, Severity: sev, Category: "pod-security", ResponsibleParty: party,
		Resource: &fleetscanv1.ResourceRef{ApiVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: name},
		Message:  check + " on " + name,
	}
}

// storeSource is the posture source the server builds over its store.
func storeSource(db *store.DB) metrics.PostureSource {
	return metrics.PostureFunc(func(ctx context.Context) ([]history.Posture, error) { return history.Current(ctx, db) })
}

// quietLog discards what it is told.
var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// scrape serves one GET /metrics from h and parses it.
func scrape(tb testing.TB, h http.Handler) map[string]*dto.MetricFamily {
	tb.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		tb.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		tb.Fatalf("parse /metrics: %v", err)
	}
	return families
}

// series maps each series of a family to its value, keyed by its labels
// as `a="x",b="y"` in the order the family declares them.
func series(families map[string]*dto.MetricFamily, name string) map[string]float64 {
	out := map[string]float64{}
	f := families[name]
	if f == nil {
		return out
	}
	for _, m := range f.Metric {
		var labels []string
		for _, l := range m.Label {
			labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
		}
		var v float64
		switch {
		case m.Gauge != nil:
			v = m.Gauge.GetValue()
		case m.Counter != nil:
			v = m.Counter.GetValue()
		case m.Untyped != nil:
			v = m.Untyped.GetValue()
		}
		out[strings.Join(labels, ",")] = v
	}
	return out
}
