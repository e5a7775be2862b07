package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

// BenchCompleteJob times CompleteJob of one cluster's job of n findings,
// on a fresh store from open each iteration: a first job, whose every
// lifecycle is new, then a rescan that sees them all again unchanged, and
// one where a tenth changed, a tenth is gone and a tenth is new. Batches
// of 500 findings are staged (and planned, as ingest does) before the
// clock starts: what is timed is a JobDone's wait for its commit. With
// planAhead false, the completion carries no plan, and the store plans at
// JobDone. It reports each as ms/first, ms/rescan and ms/churn.
func BenchCompleteJob(b *testing.B, n int, planAhead bool, open func(b *testing.B) Backend) {
	ctx := context.Background()
	job := func(seed int, gone, changed int) []*workerv1.Finding {
		out := make([]*workerv1.Finding, 0, n)
		for i := range n {
			name := i
			if i < gone {
				name = n*seed + i // a tenth replaced by new objects
			}
			f := &workerv1.Finding{
				CheckId: fmt.Sprintf("K%03d", i%40), Severity: fleetscanv1.Severity(1 + i%5), Category: "pod-security",
				ResponsibleParty: fleetscanv1.ResponsibleParty_RESPONSIBLE_PARTY_WORKLOAD,
				Resource: &fleetscanv1.ResourceRef{ApiVersion: "apps/v1", Kind: "Deployment",
					Namespace: fmt.Sprintf("ns-%03d", i%200), Name: fmt.Sprintf("deploy-%06d", name)},
				Message: fmt.Sprintf("container app of deploy-%06d runs as root", name),
			}
			if i >= gone && i < gone+changed {
				f.Message += " (changed)"
			}
			out = append(out, f)
		}
		return out
	}
	var first, rescan, churn time.Duration
	for range b.N {
		b.StopTimer()
		db := open(b)
		if err := db.CreateCluster(ctx, &storagev1.ClusterRecord{Id: "c1", Tenant: "acme"}, nil, nil); err != nil {
			b.Fatal(err)
		}
		for i, round := range []struct {
			fs  []*workerv1.Finding
			dur *time.Duration
		}{{job(0, 0, 0), &first}, {job(0, 0, 0), &rescan}, {job(1, n/10, n/10), &churn}} {
			scan, err := db.CreateScan(ctx, &fleetscanv1.ScanTarget{ClusterIds: []string{"c1"}}, nil, []string{"c1"})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := db.DispatchPending(ctx, "c1", 0); err != nil {
				b.Fatal(err)
			}
			id := scan.Jobs[0].ID
			plan := &store.JobPlan{}
			var seq int64
			for j := 0; j < len(round.fs); j += 500 {
				seq++
				batch := &workerv1.FindingBatch{JobId: id.String(), Seq: seq, Findings: round.fs[j:min(j+500, len(round.fs))]}
				if err := db.StageBatch(ctx, id, batch); err != nil {
					b.Fatal(err)
				}
				if err := db.PlanBatch(ctx, id, plan, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.StartTimer()
			start := time.Now()
			done := store.Completion{Batches: seq, Findings: int64(len(round.fs))}
			if planAhead {
				done.Plan = plan
			}
			err = db.CompleteJob(ctx, id, done)
			*round.dur += time.Since(start)
			b.StopTimer()
			if err != nil {
				b.Fatalf("job %d: %v", i, err)
			}
		}
	}
	ms := func(d time.Duration) float64 { return float64(d.Milliseconds()) / float64(b.N) }
	b.ReportMetric(ms(first), "ms/first")
	b.ReportMetric(ms(rescan), "ms/rescan")
	b.ReportMetric(ms(churn), "ms/churn")
	b.ReportMetric(0, "ns/op")
}
