package checks_test

import (
	"context"
	"os"
	goruntime "runtime"
	"testing"

	"github.com/fleetscan/fleetscan/worker/checks"
	"github.com/fleetscan/fleetscan/worker/checks/checkstest"
	"github.com/fleetscan/fleetscan/worker/policy"
)

const benchSize = 10000

// BenchmarkEngine runs every check over 10,000 mixed objects and reports
// objects per second and bytes allocated per object.
func BenchmarkEngine(b *testing.B) {
	inv := &checks.Inventory{}
	for _, o := range checkstest.Objects(benchSize) {
		inv.Add(o)
	}
	findings := 0
	b.ReportAllocs()
	var before, after goruntime.MemStats
	goruntime.ReadMemStats(&before)
	b.ResetTimer()
	for range b.N {
		findings = 0
		if _, err := checks.Run(context.Background(), inv, policy.Selection{}, func(checks.Finding) error { findings++; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	goruntime.ReadMemStats(&after)
	perOp := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(benchSize)/perOp, "objects/s")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/benchSize, "B/object")
	b.ReportMetric(float64(findings), "findings/op")
}

// TestWriteBenchSnapshot writes the benchmark's objects as YAML files, 500
// per file, into $FLEETSCAN_BENCH_SNAPSHOT, for timing the standalone scan
// (make bench does).
func TestWriteBenchSnapshot(t *testing.T) {
	dir := os.Getenv("FLEETSCAN_BENCH_SNAPSHOT")
	if dir == "" {
		t.Skip("set FLEETSCAN_BENCH_SNAPSHOT to a directory to write the benchmark snapshot")
	}
	if err := checkstest.WriteSnapshot(dir, checkstest.Objects(benchSize), 500); err != nil {
		t.Fatal(err)
	}
}
