package storetest

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

// Scans and jobs: CreateScan, GetScan, ListScans, GetJob, the queue
// (DispatchPending, RequeueJobs, ResumeJob, RecoverJobs), the ends of a
// job (FailJob, CancelScan, Reap, with the outbox hook) and StageBatch.

const (
	jobPending    = fleetscanv1.JobState_JOB_STATE_PENDING
	jobDispatched = fleetscanv1.JobState_JOB_STATE_DISPATCHED
	jobRunning    = fleetscanv1.JobState_JOB_STATE_RUNNING
	jobFailed     = fleetscanv1.JobState_JOB_STATE_FAILED
	jobCancelled  = fleetscanv1.JobState_JOB_STATE_CANCELLED
)

var scanCases = []contractCase{
	{"scans/create, get, and jobs in cluster order", func(t *testing.T, ctx context.Context, db Backend) {
		createClusters(t, ctx, db, "acme", "c2", "c1", "c3")
		target := &fleetscanv1.ScanTarget{ClusterIds: []string{"c2", "c1"}}
		spec := &fleetscanv1.ScanSpec{Namespaces: []string{"prod"}}
		// Cluster ids are sorted and deduplicated.
		scan, err := db.CreateScan(ctx, target, spec, []string{"c2", "c1", "c2"})
		must(t, "CreateScan", err)
		if scan.Record.CreateMs == 0 {
			t.Fatal("CreateScan: no create time")
		}
		wantProto(t, "target", scan.Record.Target, target)
		wantProto(t, "spec", scan.Record.Spec, spec)
		if len(scan.Jobs) != 2 || len(scan.Record.JobIds) != 2 {
			t.Fatalf("CreateScan: %d jobs, %d job ids, want 2", len(scan.Jobs), len(scan.Record.JobIds))
		}
		for i, cid := range []string{"c1", "c2"} {
			j := scan.Jobs[i]
			wantProto(t, "job "+cid, j.Record, &storagev1.JobRecord{
				ScanId: scan.ID[:], ClusterId: cid, State: jobPending, CreateMs: scan.Record.CreateMs,
			})
			if string(scan.Record.JobIds[i]) != string(j.ID[:]) {
				t.Fatalf("job ids: %x, want %x", scan.Record.JobIds[i], j.ID[:])
			}
		}
		got, err := db.GetScan(ctx, scan.ID)
		must(t, "GetScan", err)
		wantScan(t, "GetScan", got, scan)
		job, err := db.GetJob(ctx, scan.Jobs[1].ID)
		must(t, "GetJob", err)
		if job.ID != scan.Jobs[1].ID {
			t.Fatalf("GetJob: id %s, want %s", job.ID, scan.Jobs[1].ID)
		}
		wantProto(t, "GetJob", job.Record, scan.Jobs[1].Record)

		// A scan of no cluster is a scan with no jobs.
		empty, err := db.CreateScan(ctx, nil, nil, nil)
		must(t, "CreateScan of none", err)
		got, err = db.GetScan(ctx, empty.ID)
		must(t, "GetScan of none", err)
		wantScan(t, "GetScan of none", got, empty)

		missing := ulid.MustNew(ulid.Now(), nil)
		_, err = db.GetScan(ctx, missing)
		wantErrText(t, "GetScan of a missing scan", err, store.ErrNotFound, "scan "+missing.String()+": not found")
		_, err = db.GetJob(ctx, missing)
		wantErrText(t, "GetJob of a missing job", err, store.ErrNotFound, "job "+missing.String()+": not found")

		// Every cluster must exist, and a scan refused leaves nothing.
		_, err = db.CreateScan(ctx, target, spec, []string{"c3", "nope", "c1", "zzz"})
		wantErrText(t, "CreateScan of a missing cluster", err, store.ErrNotFound, `cluster "nope": not found`)
		all, _, err := db.ListScans(ctx, ulid.ULID{}, 100)
		must(t, "ListScans", err)
		if len(all) != 2 {
			t.Fatalf("ListScans after a refused scan: %d scans, want 2", len(all))
		}
		if d, err := db.DispatchPending(ctx, "c3", 0); err != nil || len(d) != 0 {
			t.Fatalf("DispatchPending after a refused scan: %v, %v; want none", d, err)
		}
	}},

	{"scans/list newest first, in pages", func(t *testing.T, ctx context.Context, db Backend) {
		createClusters(t, ctx, db, "acme", "c1")
		var want []string
		for range 5 {
			s, err := db.CreateScan(ctx, &fleetscanv1.ScanTarget{AllClusters: true}, nil, []string{"c1"})
			must(t, "CreateScan", err)
			want = append([]string{s.ID.String()}, want...)
		}
		var got []string
		var before ulid.ULID
		for pages := 0; ; pages++ {
			page, more, err := db.ListScans(ctx, before, 2)
			must(t, "ListScans", err)
			for _, s := range page {
				got = append(got, s.ID.String())
				if len(s.Jobs) != 1 || s.Jobs[0].Record.ClusterId != "c1" {
					t.Fatalf("ListScans: scan %s without its job: %v", s.ID, s.Jobs)
				}
			}
			if !more {
				break
			}
			if pages > 5 {
				t.Fatal("ListScans: more pages than scans")
			}
			before = page[len(page)-1].ID
		}
		if !slices.Equal(got, want) {
			t.Fatalf("ListScans in pages: got %v, want %v", got, want)
		}
		// As ListClusters: a limit of 0 lists none and says that some follow.
		page, more, err := db.ListScans(ctx, ulid.ULID{}, 0)
		must(t, "ListScans limit 0", err)
		if len(page) != 0 || !more {
			t.Fatalf("ListScans limit 0: %d scans, more %v; want 0, true", len(page), more)
		}
		// Before the oldest: none, and no more.
		oldest := ulid.MustParse(want[len(want)-1])
		page, more, err = db.ListScans(ctx, oldest, 10)
		must(t, "ListScans before the oldest", err)
		if len(page) != 0 || more {
			t.Fatalf("ListScans before the oldest: %d scans, more %v", len(page), more)
		}
	}},

	{"scans/a scan joins its cluster's active job with the same spec", func(t *testing.T, ctx context.Context, db Backend) {
		createClusters(t, ctx, db, "acme", "c1", "c2", "c3")
		spec := &fleetscanv1.ScanSpec{IncludeChecks: []string{"POD-001"}}
		a := newScan(t, ctx, db, spec, "c1", "c2")
		b := newScan(t, ctx, db, clone(spec), "c1")
		if b.Jobs[0].ID != a.Jobs[0].ID {
			t.Fatalf("scan b queued job %s instead of joining a's %s", b.Jobs[0].ID, a.Jobs[0].ID)
		}
		want := clone(a.Jobs[0].Record)
		want.JoinedScanIds = [][]byte{b.ID[:]}
		wantProto(t, "the joined job, as CreateScan returns it", b.Jobs[0].Record, want)
		wantProto(t, "the joined job, as GetJob reads it", getJob(t, ctx, db, a.Jobs[0].ID), want)
		got, err := db.GetScan(ctx, b.ID)
		must(t, "GetScan b", err)
		wantScan(t, "GetScan b", got, b)

		// A dispatched job is still joinable; each joining scan is listed,
		// in the order they joined.
		dispatch(t, ctx, db, "c1", 0, a.Jobs[0].ID)
		c := newScan(t, ctx, db, spec, "c1")
		if c.Jobs[0].ID != a.Jobs[0].ID {
			t.Fatal("scan c did not join the dispatched job")
		}
		if j := getJob(t, ctx, db, a.Jobs[0].ID); len(j.JoinedScanIds) != 2 || string(j.JoinedScanIds[1]) != string(c.ID[:]) {
			t.Fatalf("joined scans: %x, want b then c", j.JoinedScanIds)
		}

		// Another spec queues a job of its own.
		other := newScan(t, ctx, db, &fleetscanv1.ScanSpec{IncludeChecks: []string{"POD-002"}}, "c1")
		if other.Jobs[0].ID == a.Jobs[0].ID {
			t.Fatal("a scan with another spec joined the job")
		}
		// No spec and an empty spec are the same spec.
		d := newScan(t, ctx, db, nil, "c3")
		e := newScan(t, ctx, db, &fleetscanv1.ScanSpec{}, "c3")
		if e.Jobs[0].ID != d.Jobs[0].ID {
			t.Fatal("an empty spec did not join a job of no spec")
		}
		// A job that ended is not joined.
		must(t, "FailJob", db.FailJob(ctx, a.Jobs[1].ID, "broken"))
		f := newScan(t, ctx, db, spec, "c2")
		if f.Jobs[0].ID == a.Jobs[1].ID {
			t.Fatal("a scan joined a job that ended")
		}
	}},

	{"jobs/dispatch oldest first, up to the limit", func(t *testing.T, ctx context.Context, db Backend) {
		createClusters(t, ctx, db, "acme", "c1", "c2")
		var jobs []ulid.ULID
		var specs []*fleetscanv1.ScanSpec
		for _, check := range []string{"A", "B", "C"} {
			spec := &fleetscanv1.ScanSpec{IncludeChecks: []string{check}}
			jobs = append(jobs, newScan(t, ctx, db, spec, "c1").Jobs[0].ID)
			specs = append(specs, spec)
		}
		other := newScan(t, ctx, db, nil, "c2").Jobs[0].ID

		got, err := db.DispatchPending(ctx, "c1", 2)
		must(t, "DispatchPending", err)
		if len(got) != 2 || got[0].JobID != jobs[0] || got[1].JobID != jobs[1] {
			t.Fatalf("DispatchPending limit 2: %v, want %s and %s", got, jobs[0], jobs[1])
		}
		wantProto(t, "the first job's spec", got[0].Spec, specs[0])
		wantProto(t, "the second job's spec", got[1].Spec, specs[1])
		j := getJob(t, ctx, db, jobs[0])
		if j.State != jobDispatched || j.Attempts != 1 || j.StartMs < j.CreateMs {
			t.Fatalf("dispatched job: %v", j)
		}
		dispatch(t, ctx, db, "c1", 0, jobs[2])
		dispatch(t, ctx, db, "c1", 0)
		// Other clusters' jobs wait for their own workers; a negative limit
		// is no limit.
		if j := getJob(t, ctx, db, other); j.State != jobPending {
			t.Fatalf("c2's job: %v", j.State)
		}
		dispatch(t, ctx, db, "c2", -1, other)
		dispatch(t, ctx, db, "nope", 0)
	}},

	{"jobs/requeue after a lost worker, and give up after maxAttempts", func(t *testing.T, ctx context.Context, db Backend) {
		createClusters(t, ctx, db, "acme", "c1")
		id := newScan(t, ctx, db, nil, "c1").Jobs[0].ID
		dispatch(t, ctx, db, "c1", 0, id)
		stage(t, ctx, db, id, 1, 2)
		started := getJob(t, ctx, db, id).StartMs
		must(t, "RequeueJobs", db.RequeueJobs(ctx, 3, id))
		// Back in the queue, with what it staged and its start time kept
		// (a worker that still holds it resumes it).
		j := getJob(t, ctx, db, id)
		if j.State != jobPending || j.StagedBatches != 1 || j.StagedFindings != 2 || j.StartMs != started || j.Attempts != 1 {
			t.Fatalf("requeued job: %v", j)
		}
		// A job that is not out with a worker is left alone.
		must(t, "RequeueJobs of a pending job", db.RequeueJobs(ctx, 3, id))
		if j := getJob(t, ctx, db, id); j.State != jobPending || j.Attempts != 1 {
			t.Fatalf("pending job after RequeueJobs: %v", j)
		}
		// Sent again, it starts afresh.
		dispatch(t, ctx, db, "c1", 0, id)
		if j := getJob(t, ctx, db, id); j.StagedBatches != 0 || j.StagedFindings != 0 || j.Attempts != 2 {
			t.Fatalf("redispatched job kept its staging: %v", j)
		}
		must(t, "RequeueJobs", db.RequeueJobs(ctx, 3, id))
		dispatch(t, ctx, db, "c1", 0, id)
		must(t, "RequeueJobs", db.RequeueJobs(ctx, 3, id))
		j = getJob(t, ctx, db, id)
		if j.State != jobFailed || j.Attempts != 3 || j.FinishMs == 0 ||
			j.Error != "given up after 3 attempts: the worker's connection ended each time" {
			t.Fatalf("after 3 lost attempts: %v", j)
		}
		dispatch(t, ctx, db, "c1", 0)
		must(t, "RequeueJobs of an ended job", db.RequeueJobs(ctx, 3, id))
		if j := getJob(t, ctx, db, id); j.State != jobFailed {
			t.Fatalf("ended job after RequeueJobs: %v", j.State)
		}

		// maxAttempts 0 never gives up.
		id2 := newScan(t, ctx, db, nil, "c1").Jobs[0].ID
		for range 4 {
			dispatch(t, ctx, db, "c1", 0, id2)
			must(t, "RequeueJobs", db.RequeueJobs(ctx, 0, id2))
		}
		if j := getJob(t, ctx, db, id2); j.State != jobPending || j.Attempts != 4 {
			t.Fatalf("maxAttempts 0: %v", j)
		}
		// An unknown id refuses the whole call: the job before it stays out.
		dispatch(t, ctx, db, "c1", 0, id2)
		missing := ulid.MustNew(ulid.Now(), nil)
		err := db.RequeueJobs(ctx, 0, id2, missing)
		wantErrText(t, "RequeueJobs of a missing job", err, store.ErrNotFound, "job "+missing.String()+": not found")
		if j := getJob(t, ctx, db, id2); j.State != jobDispatched {
			t.Fatalf("RequeueJobs that failed requeued a job: %v", j.State)
		}
	}},

	{"jobs/resume a job the worker still holds", func(t *testing.T, ctx context.Context, db Backend) {
		createClusters(t, ctx, db, "acme", "c1", "c2")
		id := newScan(t, ctx, db, nil, "c1").Jobs[0].ID
		resume := func(what, cluster string, id ulid.ULID, wantAcked int64, wantOK bool) {
			t.Helper()
			acked, ok, err := db.ResumeJob(ctx, cluster, id)
			must(t, what, err)
			if acked != wantAcked || ok != wantOK {
				t.Fatalf("%s: acked %d, ok %v; want %d, %v", what, acked, ok, wantAcked, wantOK)
			}
		}
		resume("ResumeJob of a job never sent", "c1", id, 0, false)
		dispatch(t, ctx, db, "c1", 0, id)
		resume("ResumeJob before any batch", "c1", id, 0, true)
		if j := getJob(t, ctx, db, id); j.State != jobDispatched {
			t.Fatalf("resumed job without batches: %v", j.State)
		}
		stage(t, ctx, db, id, 1, 1)
		stage(t, ctx, db, id, 2, 1)
		resume("ResumeJob by another cluster", "c2", id, 0, false)
		resume("ResumeJob", "c1", id, 2, true)
		if j := getJob(t, ctx, db, id); j.State != jobRunning {
			t.Fatalf("resumed job with batches: %v", j.State)
		}
		// Requeued when the worker went away, it is taken back out of the
		// queue, keeping its attempts and start time.
		before := getJob(t, ctx, db, id)
		must(t, "RequeueJobs", db.RequeueJobs(ctx, 0, id))
		resume("ResumeJob of a requeued job", "c1", id, 2, true)
		after := getJob(t, ctx, db, id)
		if after.State != jobRunning || after.Attempts != before.Attempts || after.StartMs != before.StartMs {
			t.Fatalf("resumed requeued job: %v, was %v", after, before)
		}
		dispatch(t, ctx, db, "c1", 0)
		// The worker goes on after the last batch acked.
		stage(t, ctx, db, id, 3, 1)
		resume("ResumeJob after another batch", "c1", id, 3, true)

		resume("ResumeJob of a missing job", "c1", ulid.MustNew(ulid.Now(), nil), 0, false)
		must(t, "FailJob", db.FailJob(ctx, id, "gone"))
		resume("ResumeJob of an ended job", "c1", id, 0, false)
	}},

	{"jobs/recover after a restart", func(t *testing.T, ctx context.Context, db Backend) {
		createClusters(t, ctx, db, "acme", "c1", "c2")
		a := newScan(t, ctx, db, &fleetscanv1.ScanSpec{IncludeChecks: []string{"A"}}, "c1").Jobs[0].ID
		b := newScan(t, ctx, db, &fleetscanv1.ScanSpec{IncludeChecks: []string{"B"}}, "c1").Jobs[0].ID
		dispatch(t, ctx, db, "c1", 0, a, b)
		stage(t, ctx, db, b, 1, 3)
		c := newScan(t, ctx, db, nil, "c2").Jobs[0].ID

		n, err := db.RecoverJobs(ctx, 3)
		must(t, "RecoverJobs", err)
		if n != 2 {
			t.Fatalf("RecoverJobs: %d, want 2 (a dispatched and a running job)", n)
		}
		for _, id := range []ulid.ULID{a, b} {
			if j := getJob(t, ctx, db, id); j.State != jobPending || j.Attempts != 1 {
				t.Fatalf("recovered job %s: %v", id, j)
			}
		}
		if j := getJob(t, ctx, db, b); j.StagedBatches != 1 {
			t.Fatalf("recovered job lost its staging before it was sent again: %v", j)
		}
		dispatch(t, ctx, db, "c1", 0, a, b)
		if j := getJob(t, ctx, db, b); j.StagedBatches != 0 || j.Attempts != 2 {
			t.Fatalf("redispatched recovered job: %v", j)
		}
		dispatch(t, ctx, db, "c2", 0, c)
		// Past maxAttempts they fail instead.
		n, err = db.RecoverJobs(ctx, 2)
		must(t, "RecoverJobs", err)
		if n != 3 {
			t.Fatalf("RecoverJobs: %d, want 3", n)
		}
		for id, want := range map[ulid.ULID]fleetscanv1.JobState{a: jobFailed, b: jobFailed, c: jobPending} {
			if j := getJob(t, ctx, db, id); j.State != want {
				t.Fatalf("job %s after RecoverJobs(2): %v, want %v", id, j.State, want)
			}
		}
		if j := getJob(t, ctx, db, a); j.Error != "given up after 2 attempts: the worker's connection ended each time" {
			t.Fatalf("error: %q", j.Error)
		}
		n, err = db.RecoverJobs(ctx, 2)
		must(t, "RecoverJobs", err)
		if n != 0 {
			t.Fatalf("RecoverJobs with nothing out: %d", n)
		}
	}},

	{"jobs/fail", func(t *testing.T, ctx context.Context, db Backend) {
		createClusters(t, ctx, db, "acme", "c1")
		id := newScan(t, ctx, db, nil, "c1").Jobs[0].ID
		dispatch(t, ctx, db, "c1", 0, id)
		stage(t, ctx, db, id, 1, 4)
		must(t, "FailJob", db.FailJob(ctx, id, "the worker crashed"))
		j := getJob(t, ctx, db, id)
		if j.State != jobFailed || j.Error != "the worker crashed" || j.FinishMs == 0 || j.StagedBatches != 0 || j.StagedFindings != 0 {
			t.Fatalf("failed job: %v", j)
		}
		// A job ends once.
		must(t, "FailJob again", db.FailJob(ctx, id, "another reason"))
		if again := getJob(t, ctx, db, id); !proto.Equal(again, j) {
			t.Fatalf("FailJob of an ended job changed it: %v, was %v", again, j)
		}
		err := db.StageBatch(ctx, id, &workerv1.FindingBatch{Seq: 2})
		wantErrText(t, "StageBatch of a failed job", err, store.ErrConflict, "job "+id.String()+" is JOB_STATE_FAILED: conflict")

		missing := ulid.MustNew(ulid.Now(), nil)
		wantErrText(t, "FailJob of a missing job", db.FailJob(ctx, missing, "x"), store.ErrNotFound, "job "+missing.String()+": not found")

		// A pending job fails too, and leaves the queue.
		p := newScan(t, ctx, db, nil, "c1").Jobs[0].ID
		must(t, "FailJob of a pending job", db.FailJob(ctx, p, "no"))
		dispatch(t, ctx, db, "c1", 0)
	}},

	{"scans/cancel, keeping a shared job for the scans that keep it", func(t *testing.T, ctx context.Context, db Backend) {
		createClusters(t, ctx, db, "acme", "c1", "c2", "c3")
		a := newScan(t, ctx, db, nil, "c1", "c2")
		b := newScan(t, ctx, db, nil, "c1")
		shared := a.Jobs[0].ID
		dispatch(t, ctx, db, "c1", 0, shared)

		got, clusters, err := db.CancelScan(ctx, b.ID)
		must(t, "CancelScan b", err)
		if len(clusters) != 0 {
			t.Fatalf("CancelScan b ended jobs of %q; a keeps its job", clusters)
		}
		if got.Record.CancelMs == 0 || len(got.Record.CancelledJobIds) != 1 || string(got.Record.CancelledJobIds[0]) != string(shared[:]) {
			t.Fatalf("cancelled scan's record: %v", got.Record)
		}
		// b shows the job cancelled, at its cancel time; the job runs on.
		shown := got.Jobs[0].Record
		if shown.State != jobCancelled || shown.Error != "cancelled; the job went on for another scan that shares it" ||
			shown.FinishMs != got.Record.CancelMs || shown.Findings != nil {
			t.Fatalf("the shared job as b shows it: %v", shown)
		}
		reread, err := db.GetScan(ctx, b.ID)
		must(t, "GetScan b", err)
		wantScan(t, "GetScan b after cancel", reread, got)
		if j := getJob(t, ctx, db, shared); j.State != jobDispatched {
			t.Fatalf("the shared job after b let go: %v", j.State)
		}
		if s, err := db.GetScan(ctx, a.ID); err != nil || s.Jobs[0].Record.State != jobDispatched {
			t.Fatalf("a after b let go: %v, %v", s, err)
		}

		// a was the last to want it: both its jobs end.
		got, clusters, err = db.CancelScan(ctx, a.ID)
		must(t, "CancelScan a", err)
		if !slices.Equal(clusters, []string{"c1", "c2"}) {
			t.Fatalf("CancelScan a: clusters %q, want c1, c2", clusters)
		}
		for _, j := range got.Jobs {
			if j.Record.State != jobCancelled || j.Record.Error != "cancelled" || j.Record.FinishMs == 0 {
				t.Fatalf("cancelled job: %v", j.Record)
			}
		}
		if got.Record.CancelMs != 0 || len(got.Record.CancelledJobIds) != 0 {
			t.Fatalf("a shared nothing it let go of: %v", got.Record)
		}
		// Ended as cancelled, the job shows as it ended in b too.
		reread, err = db.GetScan(ctx, b.ID)
		must(t, "GetScan b", err)
		if j := reread.Jobs[0].Record; j.State != jobCancelled || j.Error != "cancelled" || j.FinishMs != getJob(t, ctx, db, shared).FinishMs {
			t.Fatalf("b's job after a cancelled it: %v", j)
		}
		// Nothing left to cancel.
		_, clusters, err = db.CancelScan(ctx, a.ID)
		must(t, "CancelScan a again", err)
		if len(clusters) != 0 {
			t.Fatalf("CancelScan again: %q", clusters)
		}
		dispatch(t, ctx, db, "c1", 0)
		dispatch(t, ctx, db, "c2", 0)

		// The scan that queued a job lets go of it while another keeps it:
		// the job is no longer joinable (a new scan queues its own), and
		// ends when the last scan that wants it lets go.
		e := newScan(t, ctx, db, nil, "c3")
		f := newScan(t, ctx, db, nil, "c3")
		_, clusters, err = db.CancelScan(ctx, e.ID)
		must(t, "CancelScan e", err)
		if len(clusters) != 0 || getJob(t, ctx, db, e.Jobs[0].ID).State != jobPending {
			t.Fatalf("CancelScan of the owner of a shared job ended it: %q", clusters)
		}
		g := newScan(t, ctx, db, nil, "c3")
		if g.Jobs[0].ID == e.Jobs[0].ID {
			t.Fatal("a new scan joined a job its owner let go of")
		}
		_, clusters, err = db.CancelScan(ctx, f.ID)
		must(t, "CancelScan f", err)
		if !slices.Equal(clusters, []string{"c3"}) || getJob(t, ctx, db, e.Jobs[0].ID).State != jobCancelled {
			t.Fatalf("CancelScan of the last holder: %q", clusters)
		}
		dispatch(t, ctx, db, "c3", 0, g.Jobs[0].ID)

		missing := ulid.MustNew(ulid.Now(), nil)
		_, _, err = db.CancelScan(ctx, missing)
		wantErrText(t, "CancelScan of a missing scan", err, store.ErrNotFound, "scan "+missing.String()+": not found")
	}},

	{"jobs/stage batches in order", func(t *testing.T, ctx context.Context, db Backend) {
		createClusters(t, ctx, db, "acme", "c1")
		id := newScan(t, ctx, db, nil, "c1").Jobs[0].ID
		err := db.StageBatch(ctx, id, &workerv1.FindingBatch{Seq: 1})
		wantErrText(t, "StageBatch of a pending job", err, store.ErrConflict, "job "+id.String()+" is JOB_STATE_PENDING: conflict")
		dispatch(t, ctx, db, "c1", 0, id)

		err = db.StageBatch(ctx, id, &workerv1.FindingBatch{Seq: 0})
		wantErrText(t, "StageBatch seq 0", err, store.ErrConflict, "batch seq 0: conflict")
		stage(t, ctx, db, id, 1, 2)
		j := getJob(t, ctx, db, id)
		if j.State != jobRunning || j.StagedBatches != 1 || j.StagedFindings != 2 {
			t.Fatalf("after batch 1: %v", j)
		}
		stage(t, ctx, db, id, 2, 1)
		// A batch sent again replaces the one stored, and counts once. Its
		// findings are not counted again either, even when the re-sent
		// batch has another number of them (bbolt counts a batch's
		// findings when its key is new).
		stage(t, ctx, db, id, 2, 5)
		stage(t, ctx, db, id, 1, 2)
		if j := getJob(t, ctx, db, id); j.StagedBatches != 2 || j.StagedFindings != 3 {
			t.Fatalf("after re-sent batches: %d batches, %d findings; want 2, 3", j.StagedBatches, j.StagedFindings)
		}
		err = db.StageBatch(ctx, id, &workerv1.FindingBatch{Seq: 4})
		wantErrText(t, "StageBatch with a gap", err, store.ErrOutOfOrder,
			"job "+id.String()+": batch 4 arrived after 2 stored batches: batch out of order")
		stage(t, ctx, db, id, 3, 0)
		if j := getJob(t, ctx, db, id); j.StagedBatches != 3 || j.StagedFindings != 3 {
			t.Fatalf("after batch 3: %v", j)
		}
		if acked, ok, err := db.ResumeJob(ctx, "c1", id); err != nil || !ok || acked != 3 {
			t.Fatalf("ResumeJob: %d, %v, %v; want 3 batches acked", acked, ok, err)
		}

		must(t, "FailJob", db.FailJob(ctx, id, "stop"))
		err = db.StageBatch(ctx, id, &workerv1.FindingBatch{Seq: 4})
		wantErr(t, "StageBatch of an ended job", err, store.ErrConflict)
		missing := ulid.MustNew(ulid.Now(), nil)
		err = db.StageBatch(ctx, missing, &workerv1.FindingBatch{Seq: 1})
		wantErrText(t, "StageBatch of a missing job", err, store.ErrNotFound, "job "+missing.String()+": not found")
	}},
}

var scanEnvCases = []envCase{
	{"jobs/reap times out jobs out too long and expires those never sent", func(t *testing.T, ctx context.Context, db Backend, e *env) {
		createClusters(t, ctx, db, "acme", "c1", "c2", "c3", "c4")
		t0 := e.clock.Now().UnixMilli()
		out := newScan(t, ctx, db, nil, "c1").Jobs[0].ID
		waiting := newScan(t, ctx, db, nil, "c2").Jobs[0].ID
		requeued := newScan(t, ctx, db, nil, "c3").Jobs[0].ID
		dispatch(t, ctx, db, "c1", 0, out)
		dispatch(t, ctx, db, "c3", 0, requeued)
		must(t, "RequeueJobs", db.RequeueJobs(ctx, 0, requeued))
		if j := getJob(t, ctx, db, out); j.CreateMs != t0 || j.StartMs != t0 {
			t.Fatalf("times from the store's clock: created %d, started %d, want %d", j.CreateMs, j.StartMs, t0)
		}
		reap := func(what string, want ...string) {
			t.Helper()
			got, err := db.Reap(ctx, time.Minute, 2*time.Minute)
			must(t, what, err)
			if !slices.Equal(got, want) {
				t.Fatalf("%s: ended jobs of %q, want %q", what, got, want)
			}
		}
		// At the timeout itself, not yet.
		e.clock.Advance(time.Minute)
		reap("Reap at the timeout")
		e.clock.Advance(time.Millisecond)
		reap("Reap past the timeout", "c1", "c3")
		now := e.clock.Now().UnixMilli()
		wantEnd(t, getJob(t, ctx, db, out), fleetscanv1.JobState_JOB_STATE_TIMED_OUT, "not done within the job timeout of 1m0s", now)
		wantEnd(t, getJob(t, ctx, db, requeued), fleetscanv1.JobState_JOB_STATE_TIMED_OUT,
			"not done within the job timeout of 1m0s: the worker went away mid-job and has not come back", now)
		if j := getJob(t, ctx, db, waiting); j.State != jobPending {
			t.Fatalf("a job waiting less than the expiry: %v", j.State)
		}
		e.clock.Advance(time.Minute - time.Millisecond)
		reap("Reap at the expiry")
		e.clock.Advance(time.Millisecond)
		reap("Reap past the expiry", "c2")
		wantEnd(t, getJob(t, ctx, db, waiting), fleetscanv1.JobState_JOB_STATE_EXPIRED,
			"the cluster's worker did not connect within 2m0s", e.clock.Now().UnixMilli())
		dispatch(t, ctx, db, "c2", 0)

		// No timeout: a job out with its worker stays out; no expiry: a
		// job waits.
		sent := newScan(t, ctx, db, nil, "c4").Jobs[0].ID
		dispatch(t, ctx, db, "c4", 0, sent)
		idle := newScan(t, ctx, db, &fleetscanv1.ScanSpec{Namespaces: []string{"x"}}, "c4").Jobs[0].ID
		e.clock.Advance(time.Hour)
		got, err := db.Reap(ctx, 0, 0)
		must(t, "Reap with no limits", err)
		if len(got) != 0 {
			t.Fatalf("Reap with no limits ended jobs of %q", got)
		}
		// An expiry is for jobs never sent: the one out only times out.
		got, err = db.Reap(ctx, 0, time.Minute)
		must(t, "Reap with an expiry", err)
		if !slices.Equal(got, []string{"c4"}) || getJob(t, ctx, db, sent).State != jobDispatched ||
			getJob(t, ctx, db, idle).State != fleetscanv1.JobState_JOB_STATE_EXPIRED {
			t.Fatalf("Reap with an expiry: %q", got)
		}
	}},

	{"jobs/a job's end goes to the outbox in its transaction", func(t *testing.T, ctx context.Context, db Backend, e *env) {
		createClusters(t, ctx, db, "acme", "c1", "c2")
		// No notifier: the hook is not asked.
		first := newScan(t, ctx, db, nil, "c1").Jobs[0].ID
		must(t, "FailJob", db.FailJob(ctx, first, "early"))
		if ev, woke := e.outbox.seen(); len(ev) != 0 || woke != 0 {
			t.Fatalf("outbox hook asked with no notifier: %d events, %d wake-ups", len(ev), woke)
		}
		n, err := db.CreateNotifier(ctx, &storagev1.NotifierRecord{Name: "ops", Kind: fleetscanv1.NotifierKind_NOTIFIER_KIND_WEBHOOK, Url: "https://ops.example/hook"})
		must(t, "CreateNotifier", err)

		failed := newScan(t, ctx, db, nil, "c1").Jobs[0].ID
		must(t, "FailJob", db.FailJob(ctx, failed, "broken"))
		cancelled := newScan(t, ctx, db, &fleetscanv1.ScanSpec{Namespaces: []string{"a"}}, "c2")
		_, _, err = db.CancelScan(ctx, cancelled.ID)
		must(t, "CancelScan", err)
		given := newScan(t, ctx, db, nil, "c2").Jobs[0].ID
		dispatch(t, ctx, db, "c2", 0, given)
		must(t, "RequeueJobs", db.RequeueJobs(ctx, 1, given))
		expired := newScan(t, ctx, db, nil, "c1").Jobs[0].ID
		e.clock.Advance(time.Hour)
		_, err = db.Reap(ctx, time.Minute, time.Minute)
		must(t, "Reap", err)

		events, woke := e.outbox.seen()
		type ended struct {
			job     ulid.ULID
			cluster string
			state   fleetscanv1.JobState
			err     string
		}
		var got []ended
		for _, ev := range events {
			if ev.Job.ClusterId != ev.Cluster.Id || ev.Job.FinishMs == 0 {
				t.Fatalf("event of job %s: cluster %q, job %v", ev.JobID, ev.Cluster.Id, ev.Job)
			}
			got = append(got, ended{ev.JobID, ev.Cluster.Id, ev.Job.State, ev.Job.Error})
		}
		want := []ended{
			{failed, "c1", jobFailed, "broken"},
			{cancelled.Jobs[0].ID, "c2", jobCancelled, "cancelled"},
			{given, "c2", jobFailed, "given up after 1 attempts: the worker's connection ended each time"},
			{expired, "c1", fleetscanv1.JobState_JOB_STATE_EXPIRED, "the cluster's worker did not connect within 1m0s"},
		}
		if !slices.Equal(got, want) {
			t.Fatalf("jobs ended to the outbox:\n got  %v\n want %v", got, want)
		}
		if woke != len(want) {
			t.Fatalf("OnOutbox heard %d commits, want %d", woke, len(want))
		}
		ds, _, err := db.ListDeliveries(ctx, store.DeliveryFilter{Notifiers: map[string]bool{n.Id: true}}, nil, 10)
		must(t, "ListDeliveries", err)
		if len(ds) != len(want) {
			t.Fatalf("deliveries: %d, want %d", len(ds), len(want))
		}
		// Newest first.
		for i, d := range ds {
			w := want[len(want)-1-i]
			if d.Record.ClusterId != w.cluster || d.Record.Summary != w.state.String() || d.Record.State != fleetscanv1.DeliveryState_DELIVERY_STATE_PENDING {
				t.Fatalf("delivery %d: %v, want one of %v", i, d.Record, w)
			}
		}
	}},
}

// outboxRecorder is an outbox hook that asks one delivery of every
// notifier per job that ends, and remembers what it was told.
type outboxRecorder struct {
	mu     sync.Mutex
	events []store.JobEnded
	woke   int
}

func (r *outboxRecorder) hook(e store.JobEnded, notifiers []*storagev1.NotifierRecord) []store.Outgoing {
	r.mu.Lock()
	defer r.mu.Unlock()
	kept := store.JobEnded{Cluster: clone(e.Cluster), JobID: e.JobID, Job: clone(e.Job), New: e.New}
	if e.Previous != nil {
		kept.Previous = clone(e.Previous)
	}
	r.events = append(r.events, kept)
	var out []store.Outgoing
	for _, n := range notifiers {
		out = append(out, store.Outgoing{ID: ulid.Make(), Record: &storagev1.DeliveryRecord{
			NotifierId: n.Id, ClusterId: e.Cluster.Id, Summary: e.Job.State.String(),
			State: fleetscanv1.DeliveryState_DELIVERY_STATE_PENDING, CreateMs: e.Job.FinishMs, NextAttemptMs: e.Job.FinishMs,
		}})
	}
	return out
}

func (r *outboxRecorder) wake() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.woke++
}

func (r *outboxRecorder) seen() ([]store.JobEnded, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events), r.woke
}

func newScan(t *testing.T, ctx context.Context, db Backend, spec *fleetscanv1.ScanSpec, clusters ...string) *store.Scan {
	t.Helper()
	s, err := db.CreateScan(ctx, &fleetscanv1.ScanTarget{ClusterIds: clusters}, spec, clusters)
	must(t, "CreateScan", err)
	return s
}

func getJob(t *testing.T, ctx context.Context, db Backend, id ulid.ULID) *storagev1.JobRecord {
	t.Helper()
	j, err := db.GetJob(ctx, id)
	must(t, "GetJob", err)
	return j.Record
}

// dispatch dispatches the cluster's pending jobs and fails t unless they
// are want, in order.
func dispatch(t *testing.T, ctx context.Context, db Backend, cluster string, limit int, want ...ulid.ULID) {
	t.Helper()
	got, err := db.DispatchPending(ctx, cluster, limit)
	must(t, "DispatchPending "+cluster, err)
	ids := make([]ulid.ULID, 0, len(got))
	for _, a := range got {
		ids = append(ids, a.JobID)
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("DispatchPending %s: %v, want %v", cluster, ids, want)
	}
}

// stage stages batch seq of a job with n findings.
func stage(t *testing.T, ctx context.Context, db Backend, id ulid.ULID, seq int64, n int) {
	t.Helper()
	b := &workerv1.FindingBatch{JobId: id.String(), Seq: seq}
	for i := range n {
		b.Findings = append(b.Findings, &workerv1.Finding{CheckId: "POD-001", Message: string(rune('a' + i))})
	}
	must(t, "StageBatch", db.StageBatch(ctx, id, b))
}

func wantScan(t *testing.T, what string, got, want *store.Scan) {
	t.Helper()
	if got.ID != want.ID {
		t.Fatalf("%s: id %s, want %s", what, got.ID, want.ID)
	}
	wantProto(t, what+": record", got.Record, want.Record)
	if len(got.Jobs) != len(want.Jobs) {
		t.Fatalf("%s: %d jobs, want %d", what, len(got.Jobs), len(want.Jobs))
	}
	for i := range got.Jobs {
		if got.Jobs[i].ID != want.Jobs[i].ID {
			t.Fatalf("%s: job %d is %s, want %s", what, i, got.Jobs[i].ID, want.Jobs[i].ID)
		}
		wantProto(t, what+": job "+got.Jobs[i].ID.String(), got.Jobs[i].Record, want.Jobs[i].Record)
	}
}

func wantEnd(t *testing.T, j *storagev1.JobRecord, state fleetscanv1.JobState, reason string, at int64) {
	t.Helper()
	if j.State != state || j.Error != reason || j.FinishMs != at {
		t.Fatalf("ended job: %v %q at %d, want %v %q at %d", j.State, j.Error, j.FinishMs, state, reason, at)
	}
}

// wantErrText fails t unless err is target and reads text, as the API
// shows it.
func wantErrText(t *testing.T, what string, err, target error, text string) {
	t.Helper()
	wantErr(t, what, err, target)
	if err.Error() != text {
		t.Fatalf("%s: error %q, want %q", what, err, text)
	}
}
