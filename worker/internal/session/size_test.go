package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
)

// bigFindings produces n findings whose messages are size bytes long, as
// the checks produce them on a large cluster (a finding names what it
// saw), each with a distinct resource name.
func bigFindings(n, size int) Producer {
	return func(ctx context.Context, job *workerv1.Assign, out *Output) (Result, error) {
		for i := range n {
			f := &workerv1.Finding{
				CheckId: "SA-005", Severity: fleetscanv1.Severity_SEVERITY_HIGH, Category: "service-accounts",
				Resource: &fleetscanv1.ResourceRef{ApiVersion: "apps/v1", Kind: "Deployment", Namespace: "team-a", Name: fmt.Sprintf("app-%06d", i)},
				Message:  strings.Repeat("x", size),
			}
			if err := out.Emit(f); err != nil {
				return Result{}, err
			}
		}
		return Result{ObjectsScanned: int64(n)}, nil
	}
}

// runJob assigns job1 on a stream welcomed with w and acks every batch
// until JobDone; it returns the batches' encoded sizes (as gRPC sends
// them) and the JobDone.
func runJob(t *testing.T, h *harness, w *workerv1.Welcome) ([]int, []int, *workerv1.JobDone) {
	t.Helper()
	s, _ := h.accept(w)
	if err := s.Send(&workerv1.ConnectResponse{Msg: &workerv1.ConnectResponse_Assign{Assign: &workerv1.Assign{JobId: "job1"}}}); err != nil {
		t.Fatal(err)
	}
	var sizes, counts []int
	for {
		msg := next(t, s)
		if b := msg.GetBatch(); b != nil {
			sizes = append(sizes, proto.Size(msg))
			counts = append(counts, len(b.Findings))
			ack(t, s, &workerv1.Ack{JobId: "job1", Seq: b.Seq})
			continue
		}
		done := msg.GetJobDone()
		ack(t, s, &workerv1.Ack{JobId: "job1", JobDone: true})
		waitHeld(t, h.runner, 0)
		h.fake.ended <- nil
		return sizes, counts, done
	}
}

// TestBatchesFitTheServersLimit: whatever the findings weigh, no message
// is over the limit the server announced, and none is wasted: batches
// are closed by bytes before they are by count. This is what once made a
// 50,000-object cluster send 14 MB to a server that takes 8 MiB.
func TestBatchesFitTheServersLimit(t *testing.T) {
	const limit = 64 << 10
	h := newHarnessConfig(t, Config{ClusterID: "c1", Producer: bigFindings(500, 3000), BatchSize: 1000, MaxInflight: 4, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	sizes, counts, done := runJob(t, h, &workerv1.Welcome{Capabilities: resumeCaps, MaxMessageBytes: limit})
	total := 0
	for i, n := range sizes {
		if n > limit {
			t.Errorf("batch %d is %d bytes, over the server's %d", i+1, n, limit)
		}
		// Every batch but the last is full: one more finding would not fit.
		if i < len(sizes)-1 && n < limit-2*3100 {
			t.Errorf("batch %d is %d bytes with %d findings: closed early", i+1, n, counts[i])
		}
		total += counts[i]
	}
	if total != 500 || done.Findings != 500 || done.Batches != int64(len(sizes)) || done.Error != "" {
		t.Errorf("%d findings in %d batches, JobDone %v", total, len(sizes), done)
	}
}

// TestBatchBytesWithoutServerLimit: a server older than
// Welcome.max_message_bytes is assumed to take gRPC's default 4 MiB, and
// the worker's own cap applies below that.
func TestBatchBytesWithoutServerLimit(t *testing.T) {
	tests := []struct {
		own, server, want int
	}{
		{DefaultBatchBytes, 0, DefaultBatchBytes},
		{8 << 20, 0, DefaultMaxMessageBytes - batchOverhead},
		{8 << 20, 16 << 20, 8 << 20},
		{DefaultBatchBytes, 64 << 10, 64<<10 - batchOverhead},
	}
	for _, tt := range tests {
		if got := batchBytes(tt.own, tt.server); got != tt.want {
			t.Errorf("batchBytes(own %d, server %d) = %d, want %d", tt.own, tt.server, got, tt.want)
		}
	}
}

// TestFindingLargerThanAMessageFailsTheJob: a finding that no message can
// carry fails its job with a reason that names it, instead of a message
// the server refuses again and again.
func TestFindingLargerThanAMessageFailsTheJob(t *testing.T) {
	h := newHarnessConfig(t, Config{ClusterID: "c1", Producer: bigFindings(3, 100<<10), BatchSize: 1000, MaxInflight: 4, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	sizes, _, done := runJob(t, h, &workerv1.Welcome{Capabilities: resumeCaps, MaxMessageBytes: 64 << 10})
	if len(sizes) != 0 {
		t.Errorf("sent %d batches of a finding too large", len(sizes))
	}
	if !strings.Contains(done.GetError(), ErrFindingTooLarge.Error()) || !strings.Contains(done.GetError(), "team-a/app-000000") {
		t.Errorf("JobDone error %q, want it to name the finding too large", done.GetError())
	}
}

func TestEmitTooLargeIsErrFindingTooLarge(t *testing.T) {
	out := &Output{size: 10, maxBytes: 100, done: &workerv1.JobDone{}}
	err := out.Emit(&workerv1.Finding{CheckId: "X", Message: strings.Repeat("y", 200)})
	if !errors.Is(err, ErrFindingTooLarge) {
		t.Errorf("Emit of 200 bytes with 100 allowed: %v", err)
	}
}
