package api

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/oklog/ulid/v2"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/auth"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

// ScanStarter creates and cancels scans.
type ScanStarter interface {
	StartScan(ctx context.Context, target *fleetscanv1.ScanTarget, spec *fleetscanv1.ScanSpec) (*store.Scan, error)
	CancelScan(ctx context.Context, id ulid.ULID) (*store.Scan, error)
}

// ScanStore is what ScanServer reads.
type ScanStore interface {
	GetScan(ctx context.Context, id ulid.ULID) (*store.Scan, error)
	ListScans(ctx context.Context, before ulid.ULID, limit int) ([]*store.Scan, bool, error)
}

// ScanServer implements fleetscan.v1.ScanService.
type ScanServer struct {
	fleetscanv1.UnimplementedScanServiceServer
	starter   ScanStarter
	store     ScanStore
	schedules ScheduleStore
	live      LiveProgress
	log       *slog.Logger
	pages     *PageTokens

	// WatchInterval is how often WatchScan looks for changes.
	WatchInterval time.Duration
	// JobTimeout is the server's --job-timeout, told to clients in every
	// Scan so that they know how long waiting makes sense.
	JobTimeout time.Duration

	closing   chan struct{}
	closeOnce sync.Once
}

// Close ends every WatchScan stream with Unavailable, so that a graceful
// stop need not wait for scans to end; clients watch again on the next
// server.
func (s *ScanServer) Close() { s.closeOnce.Do(func() { close(s.closing) }) }

// NewScanServer returns the ScanService handlers; live may be nil.
func NewScanServer(starter ScanStarter, s ScanStore, schedules ScheduleStore, live LiveProgress, log *slog.Logger, pages *PageTokens) *ScanServer {
	return &ScanServer{pages: pages, starter: starter, store: s, schedules: schedules, live: live, log: log, WatchInterval: 250 * time.Millisecond, closing: make(chan struct{})}
}

// StartScan creates a scan of the target.
func (s *ScanServer) StartScan(ctx context.Context, req *fleetscanv1.StartScanRequest) (*fleetscanv1.StartScanResponse, error) {
	scan, err := s.starter.StartScan(ctx, req.Target, req.Spec)
	if err != nil {
		return nil, toStatus(s.log, "StartScan", err)
	}
	p, _ := auth.FromContext(ctx)
	s.log.Info("scan started", "scan", scan.ID, "clusters", len(scan.Jobs), "by", p.Name)
	return &fleetscanv1.StartScanResponse{Scan: s.scanProto(scan)}, nil
}

// GetScan returns a scan with its jobs.
func (s *ScanServer) GetScan(ctx context.Context, req *fleetscanv1.GetScanRequest) (*fleetscanv1.GetScanResponse, error) {
	if req.ScanId == "" {
		return nil, toStatus(s.log, "GetScan", invalid("scan_id: required"))
	}
	id, err := store.ParseID(req.ScanId)
	if err != nil {
		return nil, toStatus(s.log, "GetScan", fmt.Errorf("scan_id: %w", err))
	}
	scan, err := s.store.GetScan(ctx, id)
	if err != nil {
		return nil, toStatus(s.log, "GetScan", err)
	}
	return &fleetscanv1.GetScanResponse{Scan: s.scanProto(scan)}, nil
}

// WatchScan sends the scan now and whenever it changes, until it ends.
// It polls the store, which sees every change whatever made it (a worker,
// the reaper, a cancel, another server process reading the same file
// later), at a cost of one GetScan per interval per watcher.
func (s *ScanServer) WatchScan(req *fleetscanv1.WatchScanRequest, stream grpc.ServerStreamingServer[fleetscanv1.WatchScanResponse]) error {
	if req.ScanId == "" {
		return toStatus(s.log, "WatchScan", invalid("scan_id: required"))
	}
	id, err := store.ParseID(req.ScanId)
	if err != nil {
		return toStatus(s.log, "WatchScan", fmt.Errorf("scan_id: %w", err))
	}
	ctx := stream.Context()
	tick := time.NewTicker(s.WatchInterval)
	defer tick.Stop()
	var last *fleetscanv1.Scan
	for {
		scan, err := s.store.GetScan(ctx, id)
		if err != nil {
			return toStatus(s.log, "WatchScan", err)
		}
		cur := s.scanProto(scan)
		if last == nil || !proto.Equal(cur, last) {
			if err := stream.Send(&fleetscanv1.WatchScanResponse{Scan: cur}); err != nil {
				return err
			}
			last = cur
		}
		if isFinalScan(cur.State) {
			return nil
		}
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-s.closing:
			return status.Error(codes.Unavailable, "the server is shutting down; watch again")
		case <-tick.C:
		}
	}
}

func isFinalScan(st fleetscanv1.ScanState) bool {
	switch st {
	case fleetscanv1.ScanState_SCAN_STATE_SUCCEEDED, fleetscanv1.ScanState_SCAN_STATE_FAILED, fleetscanv1.ScanState_SCAN_STATE_CANCELLED:
		return true
	}
	return false
}

// scanProto is the API form of a scan, with the server's job timeout.
func (s *ScanServer) scanProto(scan *store.Scan) *fleetscanv1.Scan {
	out := scanToProto(scan, s.live)
	if s.JobTimeout > 0 {
		out.JobTimeout = durationpb.New(s.JobTimeout)
	}
	return out
}

// ListScans pages through scans, newest first.
func (s *ScanServer) ListScans(ctx context.Context, req *fleetscanv1.ListScansRequest) (*fleetscanv1.ListScansResponse, error) {
	size, err := pageSize(req.PageSize, 50, 500)
	if err != nil {
		return nil, toStatus(s.log, "ListScans", err)
	}
	p, _ := auth.FromContext(ctx)
	bind := s.pages.bind(p, "ListScans")
	after, err := decodePageToken(req.PageToken, bind)
	if err != nil {
		return nil, toStatus(s.log, "ListScans", err)
	}
	var before ulid.ULID
	if after != nil {
		if len(after) != len(before) {
			return nil, toStatus(s.log, "ListScans", invalid("page_token: malformed"))
		}
		copy(before[:], after)
	}
	scans, more, err := s.store.ListScans(ctx, before, size)
	if err != nil {
		return nil, toStatus(s.log, "ListScans", err)
	}
	resp := &fleetscanv1.ListScansResponse{}
	for _, sc := range scans {
		resp.Scans = append(resp.Scans, s.scanProto(sc))
	}
	if more {
		last := scans[len(scans)-1].ID
		resp.NextPageToken = encodePageToken(last[:], bind)
	}
	return resp, nil
}

// CancelScan stops the jobs of a scan that have not ended.
func (s *ScanServer) CancelScan(ctx context.Context, req *fleetscanv1.CancelScanRequest) (*fleetscanv1.CancelScanResponse, error) {
	if req.ScanId == "" {
		return nil, toStatus(s.log, "CancelScan", invalid("scan_id: required"))
	}
	id, err := store.ParseID(req.ScanId)
	if err != nil {
		return nil, toStatus(s.log, "CancelScan", fmt.Errorf("scan_id: %w", err))
	}
	scan, err := s.starter.CancelScan(ctx, id)
	if err != nil {
		return nil, toStatus(s.log, "CancelScan", err)
	}
	p, _ := auth.FromContext(ctx)
	s.log.Info("scan cancelled", "scan", id, "by", p.Name)
	return &fleetscanv1.CancelScanResponse{Scan: s.scanProto(scan)}, nil
}
