package api

import (
	"log/slog"

	"google.golang.org/grpc"

	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
	"github.com/fleetscan/fleetscan/server/internal/auth"
	"github.com/fleetscan/fleetscan/server/internal/ingest"
)

// WorkerServer implements fleetscan.worker.v1.WorkerService.
type WorkerServer struct {
	workerv1.UnimplementedWorkerServiceServer
	ingest *ingest.Ingest
	log    *slog.Logger
}

// NewWorkerServer returns the WorkerService handler.
func NewWorkerServer(in *ingest.Ingest, log *slog.Logger) *WorkerServer {
	return &WorkerServer{ingest: in, log: log}
}

// Connect serves one worker's stream for the cluster its token names.
func (s *WorkerServer) Connect(stream grpc.BidiStreamingServer[workerv1.ConnectRequest, workerv1.ConnectResponse]) error {
	p, _ := auth.FromContext(stream.Context())
	caller := ingest.Caller{ClusterID: p.ClusterID}
	if p.Role == auth.RoleJoin {
		caller.JoinTokenHash = p.TokenHash
	} else {
		caller.TokenHash = p.TokenHash
	}
	return toStatus(s.log, "Connect", s.ingest.Serve(stream.Context(), caller, stream))
}
