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

func everyCluster(*storagev1.ClusterRecord) bool { return true }

// highs is each cluster's count of high findings in sums.
func highs(sums map[string]store.Summary) string {
	out := map[string]int64{}
	for id, s := range sums {
		out[id] = s.Counts.High
	}
	return fmt.Sprint(out)
}

var historyCases = []contractCase{
	{"history/Histories and SummariesBefore read each cluster's job summaries", func(t *testing.T, ctx context.Context, db Backend) {
		createClusters(t, ctx, db, "acme", "c1", "c2", "c3")
		createClusters(t, ctx, db, "globex", "c4")
		h := func(name string) *workerv1.Finding { return finding("POD-001", "shop", name, high) }
		j1 := jobOf(t, ctx, db, runJob(t, ctx, db, "c1", nil, h("a")))
		j2 := jobOf(t, ctx, db, runJob(t, ctx, db, "c1", nil, h("a"), h("b")))
		j3 := jobOf(t, ctx, db, runJob(t, ctx, db, "c3", nil, h("a")))
		s4 := runJob(t, ctx, db, "c2", nil, h("a"))
		j4 := jobOf(t, ctx, db, s4)
		s5 := runJob(t, ctx, db, "c1", nil, h("a"), h("b"), h("c"))
		j5 := jobOf(t, ctx, db, s5)

		for _, tc := range []struct {
			at   int64
			want string
		}{
			{0, "map[]"},
			{j1.FinishMs, "map[]"}, // strictly before
			{j1.FinishMs + 1, "map[c1:1]"},
			{j3.FinishMs, "map[c1:2]"},
			{j4.FinishMs, "map[c1:2 c3:1]"},
			{j5.FinishMs + 1, "map[c1:3 c2:1 c3:1]"},
		} {
			got, err := db.SummariesBefore(ctx, everyCluster, tc.at)
			must(t, "SummariesBefore", err)
			if highs(got) != tc.want {
				t.Fatalf("SummariesBefore(%d): %s, want %s", tc.at, highs(got), tc.want)
			}
			for id, s := range got {
				if s.FinishMs >= tc.at {
					t.Fatalf("SummariesBefore(%d): %s's summary ended at %d", tc.at, id, s.FinishMs)
				}
			}
		}
		got, err := db.SummariesBefore(ctx, func(c *storagev1.ClusterRecord) bool { return c.Id == "c2" }, j5.FinishMs+1)
		must(t, "SummariesBefore", err)
		if s, ok := got["c2"]; len(got) != 1 || !ok || s.JobID != s4.Jobs[0].ID || s.FinishMs != j4.FinishMs || s.Counts.High != 1 || s.Objects != 0 {
			t.Fatalf("SummariesBefore of c2: %+v", got)
		}

		hs, err := db.Histories(ctx, func(c *storagev1.ClusterRecord) bool { return c.Tenant == "acme" }, j2.FinishMs)
		must(t, "Histories", err)
		if len(hs) != 3 {
			t.Fatalf("Histories of acme: %d clusters, want 3", len(hs))
		}
		for _, ch := range hs {
			var got []int64
			for _, s := range ch.Summaries {
				got = append(got, s.Counts.High)
			}
			before := "none"
			if ch.Before != nil {
				before = fmt.Sprint(ch.Before.Counts.High, " at ", ch.Before.FinishMs)
			}
			var want string
			switch ch.Cluster.Id {
			case "c1": // the period starts at j2 itself: j2 is in it, j1 before
				want = fmt.Sprint([]int64{2, 3}, " ", fmt.Sprint(1, " at ", j1.FinishMs))
			case "c2":
				want = fmt.Sprint([]int64{1}, " none")
			case "c3":
				want = fmt.Sprint([]int64{1}, " none")
			}
			if g := fmt.Sprint(got, " ", before); g != want {
				t.Fatalf("history of %s: %s, want %s", ch.Cluster.Id, g, want)
			}
		}
		if hs[0].Summaries[1].JobID != s5.Jobs[0].ID || hs[0].Summaries[1].FinishMs != j5.FinishMs {
			t.Fatalf("c1's latest summary %+v, want job %s at %d", hs[0].Summaries[1], s5.Jobs[0].ID, j5.FinishMs)
		}
		hs, err = db.Histories(ctx, everyCluster, j5.FinishMs+1)
		must(t, "Histories", err)
		if len(hs) != 4 || hs[0].Cluster.Id != "c1" || len(hs[0].Summaries) != 0 || hs[0].Before == nil || hs[0].Before.Counts.High != 3 || hs[3].Before != nil {
			t.Fatalf("Histories after the last job: %+v", hs)
		}
	}},
	{"history/LatestJobs and ClustersVersion follow each cluster's latest job", func(t *testing.T, ctx context.Context, db Backend) {
		v0 := db.ClustersVersion()
		createClusters(t, ctx, db, "acme", "c2", "c1")
		v1 := db.ClustersVersion()
		if v1 == v0 {
			t.Fatalf("ClustersVersion unchanged by CreateCluster: %d", v1)
		}
		latest, err := db.LatestJobs(ctx, everyCluster)
		must(t, "LatestJobs", err)
		if len(latest) != 2 || latest[0].Cluster.Id != "c1" || latest[1].Cluster.Id != "c2" || latest[0].Job != nil || latest[1].Job != nil {
			t.Fatalf("LatestJobs before any job: %+v", latest)
		}
		s := runJob(t, ctx, db, "c2", nil, finding("POD-001", "shop", "web", high))
		v2 := db.ClustersVersion()
		if v2 == v1 {
			t.Fatalf("ClustersVersion unchanged by CompleteJob: %d", v2)
		}
		if v := db.ClustersVersion(); v != v2 {
			t.Fatalf("ClustersVersion changed without a write: %d, then %d", v2, v)
		}
		// A job that has not ended does not change the latest.
		startJob(t, ctx, db, "c2", nil)
		latest, err = db.LatestJobs(ctx, func(c *storagev1.ClusterRecord) bool { return c.Id == "c2" })
		must(t, "LatestJobs", err)
		if len(latest) != 1 || latest[0].Job == nil {
			t.Fatalf("LatestJobs of c2: %+v", latest)
		}
		want := jobOf(t, ctx, db, s)
		wantProto(t, "c2's latest job", latest[0].Job, want)
		if string(latest[0].Cluster.LastJobId) != string(s.Jobs[0].ID[:]) {
			t.Fatalf("c2's record names %x as its latest job", latest[0].Cluster.LastJobId)
		}
	}},
	{"history/Compact drops old fingerprint sets and resolved lifecycles, keeping summaries", func(t *testing.T, ctx context.Context, db Backend) {
		createClusters(t, ctx, db, "acme", "c1", "c2")
		web, api, dbf := finding("POD-001", "shop", "web", high), finding("POD-001", "shop", "api", high), finding("POD-001", "shop", "db", high)
		var scans []*store.Scan
		var finish []int64
		for day := range 5 {
			fs := []*workerv1.Finding{dbf}
			switch {
			case day == 0:
				fs = append(fs, web, api) // web resolved by day 1
			case day == 1:
				fs = append(fs, api) // api resolved by day 2
			case day >= 3:
				fs = append(fs, finding("POD-002", "shop", "new", high))
			}
			s := runJob(t, ctx, db, "c1", nil, fs...)
			scans = append(scans, s)
			finish = append(finish, jobOf(t, ctx, db, s).FinishMs)
		}
		other := runJob(t, ctx, db, "c2", nil, web)

		// Nothing ended before the first job.
		n, err := db.Compact(ctx, finish[0])
		must(t, "Compact", err)
		if n != 0 {
			t.Fatalf("Compact before everything dropped %d", n)
		}
		// Drops the sets of days 0 and 1 (ended before the cutoff; day 2's
		// ended at it and stays, rewritten in full) and web, resolved on
		// day 1; api, resolved on day 2, at the cutoff itself, stays. The
		// count is sets and lifecycles together.
		n, err = db.Compact(ctx, finish[2])
		must(t, "Compact", err)
		if n != 2+1 {
			t.Fatalf("Compact dropped %d, want 2 sets and 1 lifecycle", n)
		}
		wantList(t, "resolved after compaction", listAll(t, ctx, db, store.FindingFilter{Status: fleetscanv1.FindingStatus_FINDING_STATUS_RESOLVED}), "c1 POD-001 api")
		wantList(t, "open after compaction", listAll(t, ctx, db, store.FindingFilter{}), "c1 POD-001 db", "c1 POD-002 new", "c2 POD-001 web")
		n, err = db.Compact(ctx, finish[3])
		must(t, "Compact", err)
		if n != 1+1 {
			t.Fatalf("second Compact dropped %d, want 1 set and 1 lifecycle", n)
		}
		_, err = db.DiffScans(ctx, scans[0].ID, scans[4].ID, "c1", nil)
		wantErr(t, "DiffScans with a dropped set", err, store.ErrNotFound)
		// The oldest kept set was rewritten in full: later deltas read.
		d, err := db.DiffScans(ctx, scans[3].ID, scans[4].ID, "c1", nil)
		must(t, "DiffScans of kept scans", err)
		if d.UnchangedCount != 2 || len(d.New)+len(d.Resolved) != 0 {
			t.Fatalf("diff of kept scans: %+v", d)
		}
		hs, err := db.Histories(ctx, everyCluster, 0)
		must(t, "Histories", err)
		if len(hs) != 2 || len(hs[0].Summaries) != 5 || len(hs[1].Summaries) != 1 {
			t.Fatalf("summaries after compaction: %+v", hs)
		}
		// Sightings come from summaries, which stay.
		_, sightings, total, err := db.GetFinding(ctx, "c1", fingerprintOf("c1", dbf), 10, "")
		must(t, "GetFinding", err)
		if total != 5 || len(sightings) != 5 {
			t.Fatalf("db's sightings after compaction: %d of %d", len(sightings), total)
		}
		// Everything: the latest sets go too.
		n, err = db.Compact(ctx, time.Now().Add(time.Hour).UnixMilli())
		must(t, "Compact", err)
		if n != 3 {
			t.Fatalf("Compact of everything dropped %d, want the 3 sets left", n)
		}
		_, err = db.DiffScans(ctx, scans[3].ID, scans[4].ID, "c1", nil)
		wantErr(t, "DiffScans after everything was compacted", err, store.ErrNotFound)
		_ = other
	}},
}
