package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
)

// Completion latency while other jobs ingest (issue 18, "the fleet's
// tail"): tailStreams job streams (the server's default cap on running
// jobs) of tailSmall findings run one job after
// another, as a fleet scan's would, while a job of tailLarge findings
// streams and completes, b.N times.
const (
	tailStreams = 256
	tailSmall   = 1000
	tailLarge   = 10_000
	tailBatch   = 500
)

// BenchmarkCompletionWhileIngesting: the time from a JobDone to the job
// committed complete, for the large job and for the small ones meanwhile:
// from the moment the server would receive the JobDone (as it takes the
// job's last batch, which it still stores and plans) to the end of
// CompleteJob, as fleetscan_job_completion_seconds measures it; with the batches planned as they are staged (as the
// server does) and without (the plan made at JobDone). Target: large-p99
// under 1 s on 2 cores.
func BenchmarkCompletionWhileIngesting(b *testing.B) {
	for _, ahead := range []bool{true, false} {
		name := "planned-ahead"
		if !ahead {
			name = "planned-at-jobdone"
		}
		b.Run(name, func(b *testing.B) { benchTail(b, ahead) })
	}
}

func benchTail(b *testing.B, ahead bool) {
	ctx := context.Background()
	db, clk := openBench(b, filepath.Join(b.TempDir(), "fleetscan.db"))
	defer db.Close()
	clk.advance(time.Hour)
	ids, err := createBenchClusters(ctx, db, "tail", tailStreams+1)
	if err != nil {
		b.Fatal(err)
	}
	large, small := ids[0], ids[1:]

	// One job of a cluster: staged (and planned, when ahead) batch by
	// batch, then completed; it returns the completion's latency.
	job := func(cluster string, findings []*workerv1.Finding) (time.Duration, error) {
		_, jobs, err := startJobs(ctx, db, []string{cluster})
		if err != nil {
			return 0, err
		}
		jobID := jobs[0]
		done := Completion{Findings: int64(len(findings)), ObjectsScanned: int64(len(findings))}
		if ahead {
			done.Plan = &JobPlan{}
		}
		var start time.Time
		for i := 0; i < len(findings); i += tailBatch {
			done.Batches++
			batch := &workerv1.FindingBatch{JobId: jobID.String(), Seq: done.Batches, Findings: findings[i:min(i+tailBatch, len(findings))]}
			last := i+tailBatch >= len(findings)
			if last {
				// The server receives the JobDone, which follows the last
				// batch on the stream, once it takes that batch.
				start = time.Now()
			}
			if err := db.StageBatch(ctx, jobID, batch); err != nil {
				return 0, err
			}
			if ahead {
				if last {
					done.Plan.Hurry()
				}
				if err := db.PlanBatch(ctx, jobID, done.Plan, batch); err != nil {
					return 0, err
				}
			}
		}
		err = db.CompleteJob(ctx, jobID, done)
		return time.Since(start), err
	}

	stop := make(chan struct{})
	var mu sync.Mutex
	var smallTook []time.Duration
	var streams sync.WaitGroup
	errs := make(chan error, tailStreams)
	for _, cluster := range small {
		streams.Add(1)
		go func() {
			defer streams.Done()
			// Findings of its own: encoding a record edits its resource
			// in place for a moment, as a stream's findings are its own.
			smallFindings := benchFindings(0, tailSmall)
			for {
				select {
				case <-stop:
					return
				default:
				}
				d, err := job(cluster, smallFindings)
				if err != nil {
					errs <- fmt.Errorf("cluster %s: %w", cluster, err)
					return
				}
				mu.Lock()
				smallTook = append(smallTook, d)
				mu.Unlock()
			}
		}()
	}
	var largeTook []time.Duration
	largeFindings := benchFindings(0, tailLarge)
	b.ResetTimer()
	for b.Loop() {
		d, err := job(large, largeFindings)
		if err != nil {
			b.Fatal(err)
		}
		largeTook = append(largeTook, d)
	}
	b.StopTimer()
	close(stop)
	streams.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(latencies(largeTook).pct(50), "large-p50-ms")
	b.ReportMetric(latencies(largeTook).pct(99), "large-p99-ms")
	b.ReportMetric(latencies(smallTook).pct(50), "small-p50-ms")
	b.ReportMetric(latencies(smallTook).pct(99), "small-p99-ms")
	b.ReportMetric(float64(len(smallTook)), "small-jobs")
}
