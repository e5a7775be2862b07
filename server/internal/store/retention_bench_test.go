package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
)

// BenchmarkRetentionGrowth scans one 10,000-finding cluster daily for 240
// days with 2% churn (1% of findings resolved, 1% new) and compacts with a
// 90-day retention, as the server does. It reports the database size (the
// pages in use, bbolt's tx.Size) at days 90, 165 and 240: with compaction
// it levels off once the retention window is full.
func BenchmarkRetentionGrowth(b *testing.B) {
	for range b.N {
		clk := &clock{t: time.Date(2026, 1, 1, 6, 0, 0, 0, time.UTC)}
		path := filepath.Join(b.TempDir(), "fleetscan.db")
		db, err := Open(path, Options{Now: clk.now})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		if err := db.CreateCluster(ctx, &storagev1.ClusterRecord{Id: "c1", Tenant: "t"}, nil, nil); err != nil {
			b.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		names := make([]int, 10000)
		for i := range names {
			names[i] = i
		}
		next := len(names)
		sizes := map[int]int64{}
		for day := 1; day <= 240; day++ {
			clk.t = clk.t.Add(24 * time.Hour)
			if day > 1 {
				for range len(names) / 100 {
					names[rng.IntN(len(names))] = next // one resolved, one new
					next++
				}
			}
			scan, err := db.CreateScan(ctx, &fleetscanv1.ScanTarget{AllClusters: true}, nil, []string{"c1"})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := db.DispatchPending(ctx, "c1", 0); err != nil {
				b.Fatal(err)
			}
			job := scan.Jobs[0].ID
			var batches int64
			for i := 0; i < len(names); i += 1000 {
				batches++
				batch := &workerv1.FindingBatch{Seq: batches}
				for _, n := range names[i:min(i+1000, len(names))] {
					batch.Findings = append(batch.Findings, &workerv1.Finding{
						CheckId: "POD-018", Severity: fleetscanv1.Severity_SEVERITY_MEDIUM, Category: "pod-security",
						ResponsibleParty: fleetscanv1.ResponsibleParty_RESPONSIBLE_PARTY_WORKLOAD,
						Resource:         &fleetscanv1.ResourceRef{ApiVersion: "apps/v1", Kind: "Deployment", Namespace: fmt.Sprintf("team-%d", n%50), Name: fmt.Sprintf("app-%d", n), SubPath: "containers[app]"},
						Message:          fmt.Sprintf("container \"app\" of app-%d has a writable root filesystem", n),
					})
				}
				if err := db.StageBatch(ctx, job, batch); err != nil {
					b.Fatal(err)
				}
			}
			if err := db.CompleteJob(ctx, job, Completion{Batches: batches, Findings: int64(len(names)), ObjectsScanned: 20000}); err != nil {
				b.Fatal(err)
			}
			if _, err := db.Compact(ctx, clk.t.Add(-90*24*time.Hour).UnixMilli()); err != nil {
				b.Fatal(err)
			}
			if day == 90 || day == 165 || day == 240 {
				size, _ := db.Size()
				sizes[day] = size
			}
		}
		db.Close()
		b.ReportMetric(float64(sizes[90])/(1<<20), "MiB@day90")
		b.ReportMetric(float64(sizes[165])/(1<<20), "MiB@day165")
		b.ReportMetric(float64(sizes[240])/(1<<20), "MiB@day240")
		b.ReportMetric(float64(sizes[240]-sizes[165])/75/10000, "B/finding/day@165-240")
	}
}
