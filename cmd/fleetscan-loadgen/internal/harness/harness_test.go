package harness

import (
	"context"
	"strings"
	"testing"
)

// logWriter sends the harness's progress lines to the test log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// TestSmallFleet runs the harness small enough for every make test: 50
// workers × 200 findings, two rounds with churn, in process. Each round
// must store exactly what the workers produced, with and without faults
// (connections cut at random points, one server restart with jobs
// half-way through their streams). Run fails on any finding lost,
// duplicated, unexpected or changed, or on a diff or trend that does not
// show the churn; nothing here depends on timing.
func TestSmallFleet(t *testing.T) {
	for _, tc := range []struct {
		name      string
		faults    bool
		realistic bool
		batch     int
		limit     int
	}{
		{"clean", false, false, 20, 0},
		{"faults", true, false, 20, 0},
		// Findings of real sizes in batches of up to 1,000 (about 350 KB)
		// to a server that takes 64 KiB: the workers must split them by
		// size, and every finding must arrive, long ones whole.
		{"realistic-sizes", false, true, 1000, 64 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Run(context.Background(), Config{
				Clusters: 50, Findings: 200, ChurnPct: 5, BatchSize: tc.batch, Faults: tc.faults, Seed: 42,
				Realistic: tc.realistic, MaxMessageBytes: tc.limit,
				DataDir: t.TempDir(), Log: logWriter{t},
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Rounds) != 2 {
				t.Fatalf("%d rounds, want 2", len(rep.Rounds))
			}
			if tc.faults && rep.Restarts != 1 {
				t.Errorf("%d server restarts, want 1", rep.Restarts)
			}
			var b strings.Builder
			rep.Print(&b)
			t.Log(b.String())
		})
	}
}
