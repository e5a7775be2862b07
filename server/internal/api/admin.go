package api

import (
	"bufio"
	"context"
	"crypto/sha256"
	"hash"
	"io"
	"log/slog"
	"time"

	"google.golang.org/grpc"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

// BackupStore is what the AdminService needs of the store.
type BackupStore interface {
	Backup(ctx context.Context, w io.Writer) (int64, error)
}

// AdminServer implements AdminService.
type AdminServer struct {
	fleetscanv1.UnimplementedAdminServiceServer
	store BackupStore
	log   *slog.Logger
}

// NewAdminServer returns the AdminService handlers.
func NewAdminServer(s BackupStore, log *slog.Logger) *AdminServer {
	return &AdminServer{store: s, log: log}
}

// backupChunk is the most data a BackupResponse carries.
const backupChunk = 1 << 20

// Backup streams a snapshot of the database.
func (s *AdminServer) Backup(_ *fleetscanv1.BackupRequest, stream grpc.ServerStreamingServer[fleetscanv1.BackupResponse]) error {
	ctx := stream.Context()
	start := time.Now()
	sum := sha256.New()
	out := &chunkWriter{stream: stream, sum: sum}
	buf := bufio.NewWriterSize(out, backupChunk)
	n, err := s.store.Backup(ctx, buf)
	if err == nil {
		err = buf.Flush()
	}
	if err == nil {
		err = stream.Send(&fleetscanv1.BackupResponse{TotalBytes: n, Sha256: sum.Sum(nil), Last: true})
	}
	if err != nil {
		return toStatus(s.log, "Backup", err)
	}
	s.log.Info("backup sent", "bytes", n, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// chunkWriter sends what it is given as one BackupResponse per write; the
// bufio.Writer in front of it makes the writes 1 MiB.
type chunkWriter struct {
	stream grpc.ServerStreamingServer[fleetscanv1.BackupResponse]
	sum    hash.Hash
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		part := p[:min(len(p), backupChunk)]
		w.sum.Write(part)
		if err := w.stream.Send(&fleetscanv1.BackupResponse{Data: part}); err != nil {
			return 0, err
		}
		p = p[len(part):]
	}
	return n, nil
}
