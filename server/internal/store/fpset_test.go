package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"testing"
	"time"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
)

func randomSet(n int) []fp {
	out := make([]fp, n)
	for i := range out {
		rand.Read(out[i][:])
	}
	slices.SortFunc(out, func(a, b fp) int { return bytes.Compare(a[:], b[:]) })
	return out
}

func TestDiffAndApply(t *testing.T) {
	base := randomSet(100)
	head := slices.Concat(base[:40], base[60:], randomSet(5))
	slices.SortFunc(head, func(a, b fp) int { return bytes.Compare(a[:], b[:]) })
	added, removed := diffSorted(base, head)
	if len(added) != 5 || len(removed) != 20 {
		t.Fatalf("added %d removed %d, want 5 and 20", len(added), len(removed))
	}
	if got := applyDelta(base, added, removed); !slices.Equal(got, head) {
		t.Error("applyDelta(base, diff) != head")
	}
}

// TestSetEncoding: an unchanged set costs a fixed few bytes; chains are
// cut at maxDeltaDepth; a bigger change falls back to the full form.
func TestSetEncoding(t *testing.T) {
	db, _, _ := openTest(t)
	set := randomSet(10000)
	var prev [16]byte
	depth := 0
	err := db.update(func(tx *txn) error {
		b := tx.bucket(bucketJobFingerprints)
		for i := range maxDeltaDepth + 2 {
			id := db.NewID()
			var base []fp
			if i > 0 {
				var err error
				if base, depth, err = getSetTx(tx, prev); err != nil {
					return err
				}
			}
			enc := encodeSet(set, prev, base, depth)
			switch {
			case i == 0 && len(enc) != 1+len(set)*fpSize:
				t.Errorf("first set: %d bytes, want the full form", len(enc))
			case i > 0 && i <= maxDeltaDepth && len(enc) > 20:
				t.Errorf("unchanged set %d: %d bytes, want a delta of a few bytes", i, len(enc))
			case i == maxDeltaDepth+1 && enc[0] != setFull:
				t.Errorf("set %d: chain not cut at depth %d", i, maxDeltaDepth)
			}
			if err := b.Put(id[:], enc); err != nil {
				return err
			}
			got, _, err := getSetTx(tx, id)
			if err != nil {
				return err
			}
			if !slices.Equal(got, set) {
				t.Fatalf("set %d does not read back", i)
			}
			prev = id
		}
		changed := randomSet(10000)
		if enc := encodeSet(changed, prev, set, 0); enc[0] != setFull {
			t.Error("a delta larger than the set was chosen over the full form")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCompactKeepsNewerSetsReadable: dropping old sets rewrites the oldest
// kept one in full, so deltas after it still read, and trends still see
// every summary.
func TestCompactKeepsNewerSetsReadable(t *testing.T) {
	db, clk, _ := openTest(t)
	register(t, db, "c1")
	var scans []*Scan
	for day := range 5 {
		clk.t = clk.t.Add(24 * time.Hour)
		fs := []*workerv1.Finding{finding("POD-001", "shop", "web", fleetscanv1.Severity_SEVERITY_HIGH)}
		if day >= 3 {
			fs = append(fs, finding("POD-002", "shop", "api", fleetscanv1.Severity_SEVERITY_HIGH))
		}
		scans = append(scans, runJob(t, db, "c1", fs...))
	}
	ctx := context.Background()
	cutoff := clk.t.Add(-36 * time.Hour) // keeps the last two days
	n, err := db.Compact(ctx, cutoff.UnixMilli())
	if err != nil || n != 3 {
		t.Fatalf("Compact dropped %d sets (%v), want 3", n, err)
	}
	if _, err := db.DiffScans(ctx, scans[0].ID, scans[4].ID, "c1", nil); err == nil {
		t.Error("diff with a compacted scan succeeded")
	}
	d, err := db.DiffScans(ctx, scans[3].ID, scans[4].ID, "c1", nil)
	if err != nil || d.UnchangedCount != 2 || len(d.New)+len(d.Resolved) != 0 {
		t.Errorf("diff of kept scans: %+v %v", d, err)
	}
	hs, err := db.Histories(ctx, func(*storagev1.ClusterRecord) bool { return true }, 0)
	if err != nil || len(hs) != 1 || len(hs[0].Summaries) != 5 {
		t.Errorf("summaries after compaction: %+v %v", hs, err)
	}
}

// TestCompactDropsOldResolvedLifecycles: a lifecycle resolved before the
// cutoff is dropped, one resolved after it and open ones stay.
func TestCompactDropsOldResolvedLifecycles(t *testing.T) {
	db, clk, _ := openTest(t)
	register(t, db, "c1")
	ctx := context.Background()
	web := finding("POD-001", "shop", "web", fleetscanv1.Severity_SEVERITY_HIGH)
	api := finding("POD-001", "shop", "api", fleetscanv1.Severity_SEVERITY_HIGH)
	db2 := finding("POD-001", "shop", "db", fleetscanv1.Severity_SEVERITY_HIGH)
	runJob(t, db, "c1", web, api, db2)
	clk.t = clk.t.Add(24 * time.Hour)
	runJob(t, db, "c1", api, db2) // web resolved on day 1
	clk.t = clk.t.Add(24 * time.Hour)
	runJob(t, db, "c1", db2) // api resolved on day 2
	n, err := db.compactResolved(ctx, clk.t.Add(-12*time.Hour).UnixMilli())
	if err != nil || n != 1 {
		t.Fatalf("compactResolved dropped %d (%v), want 1", n, err)
	}
	if got := listAll(t, db, FindingFilter{Status: fleetscanv1.FindingStatus_FINDING_STATUS_RESOLVED}); fmt.Sprint(got) != "[c1 POD-001 api]" {
		t.Errorf("resolved after compaction: %q", got)
	}
	if got := listAll(t, db, FindingFilter{}); fmt.Sprint(got) != "[c1 POD-001 db]" {
		t.Errorf("open after compaction: %q", got)
	}
}

// TestSummariesBefore: each cluster's state at a time is its latest job
// that ended strictly before it; a cluster with none by then is absent,
// however many jobs it had afterwards, and so is one no predicate keeps.
func TestSummariesBefore(t *testing.T) {
	db, clk, _ := openTest(t)
	register(t, db, "c1", "c2", "c3")
	high := func(name string) *workerv1.Finding {
		return finding("POD-001", "shop", name, fleetscanv1.Severity_SEVERITY_HIGH)
	}
	start := clk.t
	runJob(t, db, "c1", high("a"))            // day 0: 1 high
	clk.t = clk.t.Add(24 * time.Hour)         //
	runJob(t, db, "c1", high("a"), high("b")) // day 1: 2 high
	runJob(t, db, "c3", high("a"))            // day 1
	clk.t = clk.t.Add(24 * time.Hour)         //
	runJob(t, db, "c2", high("a"))            // day 2: c2's first
	runJob(t, db, "c1", high("a"), high("b"), high("c"))
	all := func(*storagev1.ClusterRecord) bool { return true }
	ctx := context.Background()
	tests := []struct {
		at   time.Time
		want string
	}{
		{start, "map[]"}, // nothing ended before the first job
		{start.Add(time.Millisecond), "map[c1:1]"},
		{start.Add(36 * time.Hour), "map[c1:2 c3:1]"},
		{clk.t.Add(time.Hour), "map[c1:3 c2:1 c3:1]"},
	}
	for _, tc := range tests {
		got, err := db.SummariesBefore(ctx, all, tc.at.UnixMilli())
		if err != nil {
			t.Fatal(err)
		}
		highs := map[string]int64{}
		for id, s := range got {
			highs[id] = s.Counts.High
			if s.FinishMs >= tc.at.UnixMilli() {
				t.Errorf("at %v: %s's summary ended at %d, not before", tc.at, id, s.FinishMs)
			}
		}
		if fmt.Sprint(highs) != tc.want {
			t.Errorf("at %v: high findings %v, want %s", tc.at, highs, tc.want)
		}
	}
	got, err := db.SummariesBefore(ctx, func(c *storagev1.ClusterRecord) bool { return c.Id == "c2" }, clk.t.Add(time.Hour).UnixMilli())
	if err != nil || len(got) != 1 || got["c2"].Counts.High != 1 {
		t.Errorf("only c2: %v %v", got, err)
	}
}
