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
// workers × 200 findings, two rounds with churn, in process (and once with
// two of them large). Each round
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
		large     int
		notify    bool
	}{
		// With a notifier: every cluster's new findings reported once
		// a round, every delivery received, through the restart too.
		{"clean", false, false, 20, 0, 0, true},
		{"faults", true, false, 20, 0, 0, true},
		// Findings of real sizes in batches of up to 1,000 (about 350 KB)
		// to a server that takes 64 KiB: the workers must split them by
		// size, and every finding must arrive, long ones whole.
		{"realistic-sizes", false, true, 1000, 64 << 10, 0, false},
		// Two clusters of 2,000 findings among the small ones: each
		// cluster is checked against its own size and churn.
		{"large-jobs", false, false, 100, 0, 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Run(context.Background(), Config{
				Clusters: 50, Findings: 200, ChurnPct: 5, BatchSize: tc.batch, Faults: tc.faults, Seed: 42,
				Realistic: tc.realistic, MaxMessageBytes: tc.limit, Large: tc.large, LargeFindings: 2000,
				DataDir: t.TempDir(), Log: logWriter{t}, Notify: tc.notify,
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
			for _, rd := range rep.Rounds {
				if n := rd.Notifications; tc.notify && (n == nil || n.NewFindings != 50) {
					t.Errorf("round %d: notifications %+v, want a new-findings event from each of the 50 clusters", rd.N, n)
				}
				// Without faults every JobDone is acked on the stream that
				// sent it, once: each job's completion is timed.
				if !tc.faults && (rd.Completion.Calls != 50-tc.large || rd.LargeCompletion.Calls != tc.large) {
					t.Errorf("round %d: %d small and %d large completions timed, want %d and %d", rd.N, rd.Completion.Calls, rd.LargeCompletion.Calls, 50-tc.large, tc.large)
				}
			}
			var b strings.Builder
			rep.Print(&b)
			t.Log(b.String())
		})
	}
}
