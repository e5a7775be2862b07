package api

import (
	"context"
	"log/slog"
	"strings"

	"github.com/oklog/ulid/v2"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/auth"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

// AuditStore is what AuditServer reads.
type AuditStore interface {
	ListAudit(ctx context.Context, before ulid.ULID, sinceMs int64, limit int, keep func(*storagev1.AuditRecord) bool) ([]store.AuditEvent, bool, error)
}

// AuditServer implements fleetscan.v1.AuditService.
type AuditServer struct {
	fleetscanv1.UnimplementedAuditServiceServer
	store AuditStore
	log   *slog.Logger
	pages *PageTokens
}

// NewAuditServer returns the AuditService handlers.
func NewAuditServer(s AuditStore, log *slog.Logger, pages *PageTokens) *AuditServer {
	return &AuditServer{pages: pages, store: s, log: log}
}

// ListAuditEvents pages through the audit log, newest first.
func (s *AuditServer) ListAuditEvents(ctx context.Context, req *fleetscanv1.ListAuditEventsRequest) (*fleetscanv1.ListAuditEventsResponse, error) {
	size, err := pageSize(req.PageSize, defaultPageSize, maxPageSize)
	if err != nil {
		return nil, toStatus(s.log, "ListAuditEvents", err)
	}
	var sinceMs int64
	if req.Since != nil {
		sinceMs = req.Since.AsTime().UnixMilli()
	}
	p, _ := auth.FromContext(ctx)
	bind := s.pages.bind(p, "ListAuditEvents", req.Principal, req.Method, req.GetSince().String())
	after, err := decodePageToken(req.PageToken, bind)
	if err != nil {
		return nil, toStatus(s.log, "ListAuditEvents", err)
	}
	var before ulid.ULID
	if len(after) == len(before) {
		copy(before[:], after)
	} else if after != nil {
		return nil, toStatus(s.log, "ListAuditEvents", invalid("page_token: malformed"))
	}
	keep := func(r *storagev1.AuditRecord) bool {
		if req.Principal != "" && r.Principal != req.Principal {
			return false
		}
		if req.Method != "" && r.Method != req.Method && !strings.HasSuffix(r.Method, "/"+req.Method) {
			return false
		}
		return true
	}
	events, more, err := s.store.ListAudit(ctx, before, sinceMs, size, keep)
	if err != nil {
		return nil, toStatus(s.log, "ListAuditEvents", err)
	}
	resp := &fleetscanv1.ListAuditEventsResponse{}
	for _, e := range events {
		r := e.Record
		resp.Events = append(resp.Events, &fleetscanv1.AuditEvent{
			Id: e.ID.String(), Time: ts(r.TimeMs), Principal: r.Principal, Role: r.Role, Tenant: r.Tenant,
			Method: r.Method, Peer: r.Peer, Request: r.Request, Code: r.Code, Error: r.Error,
		})
	}
	if more {
		last := events[len(events)-1].ID
		resp.NextPageToken = encodePageToken(last[:], bind)
	}
	return resp, nil
}
