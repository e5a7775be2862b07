package api

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/auth"
	"github.com/fleetscan/fleetscan/server/internal/scheduler"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

// noConn: no worker is ever connected.
type noConn struct{}

func (noConn) Connected(*storagev1.ClusterRecord) bool { return false }
func (noConn) Disconnect(string)                       {}

// refusals are the codes a bad request may get; Internal, Unknown or a
// panic is a bug.
var refusals = map[codes.Code]bool{
	codes.OK: true, codes.InvalidArgument: true, codes.NotFound: true, codes.AlreadyExists: true,
	codes.FailedPrecondition: true, codes.PermissionDenied: true,
}

// FuzzRequests feeds arbitrary bytes, decoded as each request type, to the
// real handlers over a real store, as an operator and as a tenant: no
// input may crash the server or be answered with anything but a clear
// refusal (or success).
func FuzzRequests(f *testing.F) {
	seeds := []proto.Message{
		&fleetscanv1.ListFindingsRequest{ClusterId: "c1", PageSize: 5, MinSeverity: fleetscanv1.Severity_SEVERITY_HIGH},
		&fleetscanv1.RegisterClusterRequest{ClusterId: "c2", Tenant: "acme", NamespaceGrants: []*fleetscanv1.NamespaceGrant{{Tenant: "globex", Namespaces: []string{"shop"}}}},
		&fleetscanv1.StartScanRequest{Target: &fleetscanv1.ScanTarget{LabelSelector: "env in (prod"}},
		&fleetscanv1.CreateExceptionRequest{Exception: &fleetscanv1.Exception{ClusterId: "c1", Reason: "r"}},
		&fleetscanv1.CreateTokenRequest{Name: "x", Role: fleetscanv1.TokenRole_TOKEN_ROLE_TENANT, Tenant: "acme"},
		&fleetscanv1.GetTrendRequest{Scope: &fleetscanv1.Scope{Scope: &fleetscanv1.Scope_Tenant{Tenant: "acme"}}},
	}
	for i, m := range seeds {
		b, _ := proto.Marshal(m)
		f.Add(uint8(i), b, false)
	}
	db, err := store.Open(filepath.Join(f.TempDir(), "db"), store.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	if err := db.CreateCluster(context.Background(), &storagev1ClusterForFuzz, nil, nil); err != nil {
		f.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sched := scheduler.New(db, scheduler.Limits{})
	pages := NewPageTokens(db.PageKey())
	clusters := NewClusterServer(db, noConn{}, log, pages)
	scans := NewScanServer(sched, db, db, nil, log, pages)
	findings := NewFindingServer(db, db, log, pages)
	tokens := NewTokenServer(db, log, pages)
	exceptions := NewExceptionServer(db, log, pages)
	exceptions.TenantsMayCreate = true
	audits := NewAuditServer(db, log, pages)

	type call struct {
		req    func() proto.Message
		invoke func(context.Context, proto.Message) error
	}
	calls := []call{
		{func() proto.Message { return &fleetscanv1.ListFindingsRequest{} }, func(ctx context.Context, m proto.Message) error {
			_, err := findings.ListFindings(ctx, m.(*fleetscanv1.ListFindingsRequest))
			return err
		}},
		{func() proto.Message { return &fleetscanv1.RegisterClusterRequest{} }, func(ctx context.Context, m proto.Message) error {
			_, err := clusters.RegisterCluster(ctx, m.(*fleetscanv1.RegisterClusterRequest))
			return err
		}},
		{func() proto.Message { return &fleetscanv1.StartScanRequest{} }, func(ctx context.Context, m proto.Message) error {
			_, err := scans.StartScan(ctx, m.(*fleetscanv1.StartScanRequest))
			return err
		}},
		{func() proto.Message { return &fleetscanv1.CreateExceptionRequest{} }, func(ctx context.Context, m proto.Message) error {
			_, err := exceptions.CreateException(ctx, m.(*fleetscanv1.CreateExceptionRequest))
			return err
		}},
		{func() proto.Message { return &fleetscanv1.CreateTokenRequest{} }, func(ctx context.Context, m proto.Message) error {
			_, err := tokens.CreateToken(ctx, m.(*fleetscanv1.CreateTokenRequest))
			return err
		}},
		{func() proto.Message { return &fleetscanv1.GetTrendRequest{} }, func(ctx context.Context, m proto.Message) error {
			_, err := findings.GetTrend(ctx, m.(*fleetscanv1.GetTrendRequest))
			return err
		}},
		{func() proto.Message { return &fleetscanv1.UpdateClusterRequest{} }, func(ctx context.Context, m proto.Message) error {
			_, err := clusters.UpdateCluster(ctx, m.(*fleetscanv1.UpdateClusterRequest))
			return err
		}},
		{func() proto.Message { return &fleetscanv1.DiffScansRequest{} }, func(ctx context.Context, m proto.Message) error {
			_, err := findings.DiffScans(ctx, m.(*fleetscanv1.DiffScansRequest))
			return err
		}},
		{func() proto.Message { return &fleetscanv1.GetFindingRequest{} }, func(ctx context.Context, m proto.Message) error {
			_, err := findings.GetFinding(ctx, m.(*fleetscanv1.GetFindingRequest))
			return err
		}},
		{func() proto.Message { return &fleetscanv1.ListAuditEventsRequest{} }, func(ctx context.Context, m proto.Message) error {
			_, err := audits.ListAuditEvents(ctx, m.(*fleetscanv1.ListAuditEventsRequest))
			return err
		}},
	}
	operator := auth.WithPrincipal(context.Background(), auth.Principal{Role: auth.RoleOperator, Name: "fuzz"})
	tenant := auth.WithPrincipal(context.Background(), auth.Principal{Role: auth.RoleTenant, Tenant: "acme", Name: "fuzz-tenant"})

	f.Fuzz(func(t *testing.T, which uint8, data []byte, asTenant bool) {
		c := calls[int(which)%len(calls)]
		req := c.req()
		if proto.Unmarshal(data, req) != nil {
			return // gRPC refuses what does not decode before any handler runs
		}
		ctx := operator
		if asTenant {
			ctx = tenant
		}
		err := c.invoke(ctx, req)
		if st, ok := status.FromError(err); !ok || !refusals[st.Code()] {
			t.Fatalf("%T %v: got %v, want a clear refusal", req, req, err)
		}
	})
}

var storagev1ClusterForFuzz = storagev1.ClusterRecord{Id: "c1", Tenant: "acme"}
