// Package audit records every call that changes something, whoever made
// it and whatever came of it, in the store, where operators read it
// through AuditService.
package audit

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	"github.com/fleetscan/fleetscan/server/internal/auth"
)

// maxRequest bounds the request JSON kept per event.
const maxRequest = 4 << 10

// Store is where events go.
type Store interface {
	AppendAudit(ctx context.Context, r *storagev1.AuditRecord) error
}

// readPrefixes name the RPCs that only read; every other public RPC is
// audited. The worker stream is not: its jobs are recorded as jobs.
var readPrefixes = []string{"Get", "List", "Watch", "Diff", "Compare"}

// Audited reports whether calls of a full method name are recorded.
func Audited(method string) bool {
	if !strings.HasPrefix(method, "/fleetscan.v1.") {
		return false
	}
	name := method[strings.LastIndex(method, "/")+1:]
	for _, p := range readPrefixes {
		if strings.HasPrefix(name, p) {
			return false
		}
	}
	return true
}

// UnaryInterceptor records audited calls after they end. It runs before
// the authenticator, so that calls refused to a known principal
// (PermissionDenied) are recorded too; calls without a valid credential
// and calls over the rate limit are only logged, since anybody can make
// them in any number. A failure to record is logged, not returned: the
// call has happened.
func UnaryInterceptor(s Store, log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !Audited(info.FullMethod) {
			return handler(ctx, req)
		}
		ctx, who := auth.Observe(ctx)
		start := time.Now()
		resp, err := handler(ctx, req)
		record(ctx, s, log, info.FullMethod, who, start, req, err)
		return resp, err
	}
}

// StreamInterceptor records audited streaming calls (a backup) after they
// end, as UnaryInterceptor does; the request is the stream's first
// message.
func StreamInterceptor(s Store, log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if !Audited(info.FullMethod) {
			return handler(srv, ss)
		}
		ctx, who := auth.Observe(ss.Context())
		start := time.Now()
		rs := &recordingStream{ServerStream: ss, ctx: ctx}
		err := handler(srv, rs)
		record(ctx, s, log, info.FullMethod, who, start, rs.first, err)
		return err
	}
}

type recordingStream struct {
	grpc.ServerStream
	ctx   context.Context
	first any
}

func (r *recordingStream) Context() context.Context { return r.ctx }

func (r *recordingStream) RecvMsg(m any) error {
	err := r.ServerStream.RecvMsg(m)
	if err == nil && r.first == nil {
		r.first = m
	}
	return err
}

func record(ctx context.Context, s Store, log *slog.Logger, method string, who *auth.Principal, start time.Time, req any, err error) {
	switch status.Code(err) {
	case codes.Unauthenticated, codes.ResourceExhausted:
		// Not stored: anybody can send these, as fast as they like, and
		// the log must not be a way to fill the disk. The server log has
		// them.
		log.Warn("refused call", "method", method, "code", status.Code(err).String(), "principal", who.Name)
		return
	}
	rec := &storagev1.AuditRecord{
		TimeMs: start.UnixMilli(), Principal: who.Name, Role: string(who.Role), Tenant: who.Tenant,
		Method: method, Code: status.Code(err).String(),
	}
	if err != nil {
		rec.Error = status.Convert(err).Message()
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		rec.Peer = p.Addr.String()
	}
	if m, ok := req.(proto.Message); ok {
		if b, merr := protojson.Marshal(m); merr == nil {
			if len(b) > maxRequest {
				b = append(b[:maxRequest], "…"...)
			}
			rec.Request = string(b)
		}
	}
	// Recorded even when the caller has gone: the call happened.
	if aerr := s.AppendAudit(context.WithoutCancel(ctx), rec); aerr != nil {
		log.Error("audit log write failed", "method", method, "principal", rec.Principal, "err", aerr)
	}
}
