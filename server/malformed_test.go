package server_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
)

// rawCodec sends bytes as they are, so that a test can send what no
// well-behaved client would encode.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*(v.(*[]byte)) = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "proto" }

// Hand-encoded messages: field 1, length-delimited, then the bytes.
func field1(b []byte) []byte { return append([]byte{0x0a, byte(len(b))}, b...) }

// TestMalformedMessagesAreInvalidArgument: a request the server cannot
// decode (a string that is not UTF-8, a truncated field) is the caller's
// fault: INVALID_ARGUMENT, on the API and on the worker stream, never
// INTERNAL; the server goes on answering.
func TestMalformedMessagesAreInvalidArgument(t *testing.T) {
	ts := &testServer{t: t, dataDir: t.TempDir()}
	ts.start()
	t.Cleanup(ts.shutdown)
	op := ts.client(ts.operatorToken())
	token := register(t, op, "acme-dev", "acme", nil)
	conn := ts.rawConn()
	opCtx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+ts.operatorToken())
	for name, req := range map[string][]byte{
		"cluster id not UTF-8": field1([]byte{0xff, 0xfe, 'x'}),
		"truncated field":      {0x0a, 0x10, 'a'},
		"bad wire type":        {0x0f},
	} {
		var reply []byte
		err := conn.Invoke(opCtx, "/fleetscan.v1.ClusterService/GetCluster", req, &reply, grpc.ForceCodecV2(rawCodec{}))
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "malformed") {
			t.Errorf("GetCluster, %s: %v, want InvalidArgument", name, err)
		}
	}
	if _, err := op.ClusterService.GetCluster(context.Background(), &fleetscanv1.GetClusterRequest{ClusterId: "acme-dev"}); err != nil {
		t.Errorf("a well-formed call after the malformed ones: %v", err)
	}

	// The worker stream: a Hello whose cluster id is not UTF-8.
	wctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
	desc := &grpc.StreamDesc{StreamName: "Connect", ServerStreams: true, ClientStreams: true}
	stream, err := conn.NewStream(wctx, desc, "/fleetscan.worker.v1.WorkerService/Connect", grpc.ForceCodecV2(rawCodec{}))
	if err != nil {
		t.Fatal(err)
	}
	// ConnectRequest.hello is field 1; Hello.cluster_id is field 1.
	if err := stream.SendMsg(field1(field1([]byte{0xc3, 0x28}))); err != nil {
		t.Fatal(err)
	}
	var reply []byte
	if err := stream.RecvMsg(&reply); status.Code(err) != codes.InvalidArgument {
		t.Errorf("worker stream with a Hello not in UTF-8: %v, want InvalidArgument", err)
	}
}

// TestBatchGapRefusedOnArrival: a batch numbered past the next one is
// refused when it arrives (INVALID_ARGUMENT, the stream ends), not acked
// and found missing at JobDone; the batches before it stay stored.
func TestBatchGapRefusedOnArrival(t *testing.T) {
	ts := &testServer{t: t, dataDir: t.TempDir()}
	ts.start()
	t.Cleanup(ts.shutdown)
	op := ts.client(ts.operatorToken())
	token := register(t, op, "acme-dev", "acme", nil)
	stream, _, err := ts.connectRaw(context.Background(), "acme-dev", token, "credential")
	if err != nil {
		t.Fatalf("welcome: %v", err)
	}
	send := func(m *workerv1.ConnectRequest) {
		t.Helper()
		if err := stream.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := op.ScanService.StartScan(context.Background(), &fleetscanv1.StartScanRequest{Target: &fleetscanv1.ScanTarget{ClusterIds: []string{"acme-dev"}}}); err != nil {
		t.Fatal(err)
	}
	var jobID string
	for jobID == "" {
		m, err := stream.Recv()
		if err != nil {
			t.Fatalf("waiting for the job: %v", err)
		}
		jobID = m.GetAssign().GetJobId()
	}
	batch := func(seq int64) *workerv1.ConnectRequest {
		return &workerv1.ConnectRequest{Msg: &workerv1.ConnectRequest_Batch{Batch: &workerv1.FindingBatch{JobId: jobID, Seq: seq, Findings: []*workerv1.Finding{{
			CheckId: "POD-001", Severity: fleetscanv1.Severity_SEVERITY_HIGH, Category: "pod-security",
			Resource: &fleetscanv1.ResourceRef{ApiVersion: "v1", Kind: "Pod", Namespace: "default", Name: "p"}, Message: "m",
		}}}}}
	}
	send(batch(1))
	for {
		m, err := stream.Recv()
		if err != nil {
			t.Fatalf("waiting for the ack of batch 1: %v", err)
		}
		if m.GetAck().GetSeq() == 1 {
			break
		}
	}
	send(batch(3))
	for {
		m, err := stream.Recv()
		if err == nil {
			if m.GetAck().GetSeq() == 3 {
				t.Fatal("batch 3 acked after batch 1: the gap was accepted")
			}
			continue
		}
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "batch 3 arrived after 1") {
			t.Fatalf("batch 3 after 1: %v, want InvalidArgument naming the gap", err)
		}
		break
	}
}
