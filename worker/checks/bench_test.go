package checks_test

import (
	"context"
	"math"
	"os"
	"reflect"
	goruntime "runtime"
	"testing"
	"time"

	"github.com/fleetscan/fleetscan/worker/catalog"
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

// scalingSizes are the clusters BenchmarkCheckScaling compares: ten times
// the objects, in ten times the namespaces.
var scalingSizes = [2]int{5_000, 50_000}

// scalingSelection runs one check, with the settings the checks that
// need settings need.
func scalingSelection(id string) policy.Selection {
	return policy.Selection{Include: []string{id}, TrustedRegistries: []string{"registry.example.com"}, DeniedRegistries: []string{"docker.io/library/busybox"}}
}

// BenchmarkCheckScaling runs every check alone on Cluster(5,000) and
// Cluster(50,000) and reports, for each, the time per object at 50,000
// over the time per object at 5,000: about 1 for a check that is linear
// in objects, about 10 for one that is quadratic (issue 18). A figure to
// read, not a test: run it with -benchtime 1x.
func BenchmarkCheckScaling(b *testing.B) {
	var invs [len(scalingSizes)]*checks.Inventory
	for i, n := range scalingSizes {
		invs[i] = &checks.Inventory{}
		for _, o := range checkstest.Cluster(n) {
			invs[i].Add(o)
		}
	}
	worst, worstID := 0.0, ""
	for _, meta := range catalog.All() {
		if meta.NotAssessable != "" {
			continue
		}
		b.Run("check="+meta.ID, func(b *testing.B) {
			fastest := fastestRuns(b, invs, meta.ID)
			var perObject [len(scalingSizes)]float64
			for i, inv := range invs {
				perObject[i] = fastest[i].Seconds() / float64(inv.Len())
			}
			ratio := perObject[1] / perObject[0]
			b.ReportMetric(ratio, "per-object-50k/5k")
			b.ReportMetric(perObject[1]*1e9, "ns/object-50k")
			if ratio > worst {
				worst, worstID = ratio, meta.ID
			}
		})
	}
	b.Run("worst", func(b *testing.B) {
		b.Logf("worst: %s", worstID)
		b.ReportMetric(worst, "per-object-50k/5k")
	})
}

// fastestRuns runs check id on each inventory in turn, in rounds, and
// returns each one's fastest run. The fastest damps what else the
// machine does (it has two cores, shared); taking turns makes every run
// start on caches the other inventory filled, so that the small one is
// not measured in a warm cache the large one does not fit in, and both
// see the same minutes of the machine. At least scalingRounds rounds, and
// more while they take under scalingBudget in all.
func fastestRuns(b *testing.B, invs [len(scalingSizes)]*checks.Inventory, id string) [len(scalingSizes)]time.Duration {
	const scalingRounds, scalingBudget = 3, 500 * time.Millisecond
	var fastest [len(scalingSizes)]time.Duration
	for i := range fastest {
		fastest[i] = math.MaxInt64
	}
	goruntime.GC() // the previous check's garbage is not this one's
	spent := time.Duration(0)
	for round := 0; round < max(scalingRounds, b.N) || (spent < scalingBudget && round < 100); round++ {
		for i, inv := range invs {
			start := time.Now()
			skipped, err := checks.Run(context.Background(), inv, scalingSelection(id), func(checks.Finding) error { return nil })
			took := time.Since(start)
			if err != nil {
				b.Fatal(err)
			}
			if len(skipped) > 0 {
				b.Fatalf("%s not assessable on the corpus: %s", id, skipped[0].Reason)
			}
			fastest[i], spent = min(fastest[i], took), spent+took
		}
	}
	return fastest
}

// TestClusterCorpus holds Cluster to what BenchmarkCheckScaling needs of
// it: every kind the inventory holds (but the forms a trimmed or generic
// collector makes) and every check assessable, so that no check's cost
// goes unmeasured.
func TestClusterCorpus(t *testing.T) {
	inv := &checks.Inventory{}
	for _, o := range checkstest.Cluster(1_000) {
		if !inv.Add(o) {
			t.Errorf("Cluster made a %T, which the inventory does not hold", o)
		}
	}
	notMade := map[string]bool{"ManagedPods": true, "ManagedReplicaSets": true, "Templated": true, "Unchecked": true, "Problems": true}
	v := reflect.ValueOf(inv).Elem()
	for i := range v.NumField() {
		if name := v.Type().Field(i).Name; v.Field(i).Kind() == reflect.Slice && !notMade[name] && v.Field(i).Len() == 0 {
			t.Errorf("Cluster made no object of the inventory's %s", name)
		}
	}
	for _, meta := range catalog.All() {
		if meta.NotAssessable != "" {
			continue
		}
		skipped, err := checks.Run(context.Background(), inv, scalingSelection(meta.ID), func(checks.Finding) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		for _, na := range skipped {
			t.Errorf("%s not assessable on Cluster: %s", na.CheckID, na.Reason)
		}
	}
	if a, b := checkstest.Cluster(1_000), checkstest.Cluster(1_000); !reflect.DeepEqual(a, b) {
		t.Error("Cluster(1000) differs from one call to the next")
	}
}
