package api

import (
	"context"
	"fmt"
	"log/slog"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/auth"
	"github.com/fleetscan/fleetscan/server/internal/store"
	"github.com/fleetscan/fleetscan/worker/catalog"
)

// FindingStore is what FindingServer reads.
type FindingStore interface {
	ListFindings(ctx context.Context, f store.FindingFilter, after []byte, limit int) ([]store.FindingView, []byte, error)
}

// FindingServer implements fleetscan.v1.FindingService.
type FindingServer struct {
	fleetscanv1.UnimplementedFindingServiceServer
	store   FindingStore
	history HistoryStore
	log     *slog.Logger
	pages   *PageTokens
}

// NewFindingServer returns the FindingService handlers.
func NewFindingServer(s FindingStore, h HistoryStore, log *slog.Logger, pages *PageTokens) *FindingServer {
	return &FindingServer{pages: pages, store: s, history: h, log: log}
}

// ListFindings pages through findings matching the filters.
func (s *FindingServer) ListFindings(ctx context.Context, req *fleetscanv1.ListFindingsRequest) (*fleetscanv1.ListFindingsResponse, error) {
	size, err := pageSize(req.PageSize, defaultPageSize, maxPageSize)
	if err != nil {
		return nil, toStatus(s.log, "ListFindings", err)
	}
	if _, ok := fleetscanv1.Severity_name[int32(req.MinSeverity)]; !ok {
		return nil, toStatus(s.log, "ListFindings", invalid("min_severity: unknown value %d", req.MinSeverity))
	}
	if _, ok := fleetscanv1.FindingStatus_name[int32(req.Status)]; !ok {
		return nil, toStatus(s.log, "ListFindings", invalid("status: unknown value %d", req.Status))
	}
	if req.CheckId != "" && !catalog.ValidID(req.CheckId) {
		return nil, toStatus(s.log, "ListFindings", invalid("check_id: %q is neither a check of the catalog nor a custom check id (like ORG-001)", req.CheckId))
	}
	if _, ok := fleetscanv1.ResponsibleParty_name[int32(req.ResponsibleParty)]; !ok {
		return nil, toStatus(s.log, "ListFindings", invalid("responsible_party: unknown value %d", req.ResponsibleParty))
	}
	filter := store.FindingFilter{
		ClusterID: req.ClusterId, MinSeverity: req.MinSeverity, CheckID: req.CheckId, Status: req.Status,
		Namespace: req.Namespace, Category: req.Category, Party: req.ResponsibleParty,
	}
	if req.FirstSeenAfter != nil {
		filter.FirstSeenAfterMs = req.FirstSeenAfter.AsTime().UnixMilli()
	}
	if req.FirstSeenBefore != nil {
		filter.FirstSeenBeforeMs = req.FirstSeenBefore.AsTime().UnixMilli()
	}
	p, _ := auth.FromContext(ctx)
	bind := s.pages.bind(p, "ListFindings", fmt.Sprintf("%+v", filter))
	filter.Reader = readerOf(p)
	filter.Visible = func(c *storagev1.ClusterRecord) (bool, []string) {
		a, namespaces := p.ClusterAccess(c)
		return a != auth.NoAccess, namespaces
	}
	after, err := decodePageToken(req.PageToken, bind)
	if err != nil {
		return nil, toStatus(s.log, "ListFindings", err)
	}
	views, next, err := s.store.ListFindings(ctx, filter, after, size)
	if err != nil {
		return nil, toStatus(s.log, "ListFindings", err)
	}
	resp := &fleetscanv1.ListFindingsResponse{NextPageToken: encodePageToken(next, bind)}
	for _, v := range views {
		resp.Findings = append(resp.Findings, findingToProto(v))
	}
	return resp, nil
}

// ListChecks returns the catalog.
func (s *FindingServer) ListChecks(context.Context, *fleetscanv1.ListChecksRequest) (*fleetscanv1.ListChecksResponse, error) {
	resp := &fleetscanv1.ListChecksResponse{}
	for _, m := range catalog.All() {
		resp.Checks = append(resp.Checks, checkToProto(m))
	}
	return resp, nil
}
