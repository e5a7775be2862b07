package store

import (
	"context"
	"testing"

	"google.golang.org/protobuf/proto"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
)

// FuzzIngestBatch: whatever a worker sends in a batch that decodes, the
// store stages it, completes the job and lists what it stored, without
// panicking or corrupting the database.
func FuzzIngestBatch(f *testing.F) {
	seed, _ := proto.Marshal(&workerv1.FindingBatch{Seq: 1, Findings: []*workerv1.Finding{
		finding("POD-001", "shop", "web", fleetscanv1.Severity_SEVERITY_HIGH),
		{CheckId: "ORG-1", Message: "\x01\x02", Resource: &fleetscanv1.ResourceRef{Kind: "Pod"}},
	}})
	f.Add(seed)
	db, _, _ := openTest(f)
	register(f, db, "c1")
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		batch := &workerv1.FindingBatch{}
		if proto.Unmarshal(data, batch) != nil || len(batch.Findings) > 1000 {
			return // the gRPC layer refuses what does not decode
		}
		batch.Seq = 1
		scan, err := db.CreateScan(ctx, &fleetscanv1.ScanTarget{AllClusters: true}, nil, []string{"c1"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.DispatchPending(ctx, "c1", 0); err != nil {
			t.Fatal(err)
		}
		if err := db.StageBatch(ctx, scan.Jobs[0].ID, batch); err != nil {
			t.Fatal(err)
		}
		if err := db.CompleteJob(ctx, scan.Jobs[0].ID, Completion{Batches: 1, Findings: int64(len(batch.Findings))}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.ListFindings(ctx, FindingFilter{}, nil, 1000); err != nil {
			t.Fatal(err)
		}
	})
}
