package server_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server"
)

func countFindings(t *testing.T, ts *testServer, token string, req *fleetscanv1.ListFindingsRequest) int {
	t.Helper()
	return len(allFindings(t, ts.client(token), req))
}

// TestExceptions: an exception suppresses the findings it covers (they
// stay stored, SUPPRESSED, with the reason), counts follow from the next
// scan, and a deleted or expired exception stops applying. Tenants, when
// the server lets them, make exceptions inside their scope only.
func TestExceptions(t *testing.T) {
	clk := newClock()
	ts := &testServer{t: t, dataDir: t.TempDir(), cfg: func(c *server.Config) { c.TenantExceptions, c.Now = true, clk.Now }}
	ts.start()
	t.Cleanup(ts.shutdown)
	op := ts.client(ts.operatorToken())
	ctx := context.Background()
	for id, tenant := range map[string]string{"acme-prod": "acme", "globex-prod": "globex"} {
		ts.startWorker(id, register(t, op, id, tenant, nil), filepath.Join(demoClusters, id))
	}
	shared, err := op.ClusterService.RegisterCluster(ctx, &fleetscanv1.RegisterClusterRequest{ClusterId: "shared",
		NamespaceGrants: []*fleetscanv1.NamespaceGrant{{Tenant: "acme", Namespaces: []string{"storefront"}}, {Tenant: "globex", Namespaces: []string{"storefront"}}}})
	if err != nil {
		t.Fatal(err)
	}
	ts.startWorker("shared", shared.JoinToken, filepath.Join(demoClusters, "acme-dev"))
	scanClusters(t, ts, "acme-prod", "globex-prod", "shared")
	opTok := ts.operatorToken()

	// The check with the most open findings on acme-prod.
	byCheck := map[string]int{}
	for _, f := range allFindings(t, op, &fleetscanv1.ListFindingsRequest{ClusterId: "acme-prod"}) {
		byCheck[f.CheckId]++
	}
	check, n := "", 0
	for c, k := range byCheck {
		if k > n || (k == n && c < check) {
			check, n = c, k
		}
	}
	openBefore := countFindings(t, ts, opTok, &fleetscanv1.ListFindingsRequest{ClusterId: "acme-prod"})

	exc, err := op.ExceptionService.CreateException(ctx, &fleetscanv1.CreateExceptionRequest{
		Exception: &fleetscanv1.Exception{ClusterId: "acme-prod", CheckId: check, Reason: "compensating control: node-level policy"},
		Ttl:       durationpb.New(2 * time.Second),
	})
	if err != nil {
		t.Fatal(err)
	}
	if exc.Exception.Author != "bootstrap operator" || exc.Exception.State != fleetscanv1.ExceptionState_EXCEPTION_STATE_ACTIVE {
		t.Errorf("new exception: %v", exc.Exception)
	}
	if got := countFindings(t, ts, opTok, &fleetscanv1.ListFindingsRequest{ClusterId: "acme-prod"}); got != openBefore-n {
		t.Errorf("open findings with the exception: %d, want %d - %d", got, openBefore, n)
	}
	suppressed := allFindings(t, op, &fleetscanv1.ListFindingsRequest{ClusterId: "acme-prod", CheckId: check, Status: fleetscanv1.FindingStatus_FINDING_STATUS_SUPPRESSED})
	if len(suppressed) != n || suppressed[0].ExceptionId != exc.Exception.Id || !strings.Contains(suppressed[0].SuppressionReason, "compensating control") {
		t.Fatalf("suppressed findings: %d (want %d), first %v", len(suppressed), n, suppressed[0])
	}
	// Acme's team reads why, not which operator decided it.
	acmeReader, err := op.TokenService.CreateToken(ctx, &fleetscanv1.CreateTokenRequest{Name: "acme-reader", Role: fleetscanv1.TokenRole_TOKEN_ROLE_TENANT, Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	seen := allFindings(t, ts.client(acmeReader.Secret), &fleetscanv1.ListFindingsRequest{ClusterId: "acme-prod", CheckId: check, Status: fleetscanv1.FindingStatus_FINDING_STATUS_SUPPRESSED})
	if len(seen) != n || !strings.Contains(seen[0].SuppressionReason, " by operator ") || strings.Contains(seen[0].SuppressionReason, "bootstrap operator") {
		t.Errorf("a tenant's suppressed findings: %d (want %d), reason %q: want the approver as a role", len(seen), n, seen[0].GetSuppressionReason())
	}
	if got := countFindings(t, ts, opTok, &fleetscanv1.ListFindingsRequest{ClusterId: "globex-prod"}); got == 0 {
		t.Error("the exception reached another cluster")
	}
	// Counts follow from the next scan.
	scan := scanClusters(t, ts, "acme-prod")
	if got := scan.Jobs[0].Findings.GetSuppressed(); got < int64(n) {
		t.Errorf("rescan with the exception counts %d suppressed, want at least %d", got, n)
	}

	clk.Advance(3 * time.Second)
	if got := countFindings(t, ts, opTok, &fleetscanv1.ListFindingsRequest{ClusterId: "acme-prod"}); got != openBefore {
		t.Errorf("open findings after the exception expired: %d, want %d", got, openBefore)
	}
	list, err := op.ExceptionService.ListExceptions(ctx, &fleetscanv1.ListExceptionsRequest{ShowExpired: true})
	if err != nil || len(list.Exceptions) != 1 || list.Exceptions[0].State != fleetscanv1.ExceptionState_EXCEPTION_STATE_EXPIRED {
		t.Errorf("expired exception listed as %v %v", list.GetExceptions(), err)
	}
	if active, _ := op.ExceptionService.ListExceptions(ctx, &fleetscanv1.ListExceptionsRequest{}); len(active.GetExceptions()) != 0 {
		t.Errorf("an expired exception is listed as active")
	}

	// Validation.
	for name, req := range map[string]*fleetscanv1.CreateExceptionRequest{
		"no reason":    {Exception: &fleetscanv1.Exception{ClusterId: "acme-prod"}, Ttl: durationpb.New(time.Hour)},
		"no expiry":    {Exception: &fleetscanv1.Exception{ClusterId: "acme-prod", Reason: "r"}},
		"two years":    {Exception: &fleetscanv1.Exception{ClusterId: "acme-prod", Reason: "r"}, Ttl: durationpb.New(2 * 365 * 24 * time.Hour)},
		"no scope":     {Exception: &fleetscanv1.Exception{Reason: "r"}, Ttl: durationpb.New(time.Hour)},
		"bogus check":  {Exception: &fleetscanv1.Exception{CheckId: "nope", Reason: "r"}, Ttl: durationpb.New(time.Hour)},
		"name no kind": {Exception: &fleetscanv1.Exception{ClusterId: "acme-prod", ResourceName: "web", Reason: "r"}, Ttl: durationpb.New(time.Hour)},
	} {
		if _, err := op.ExceptionService.CreateException(ctx, req); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}

	// Tenants, inside their scope only.
	minted, err := op.TokenService.CreateToken(ctx, &fleetscanv1.CreateTokenRequest{Name: "acme-sec", Role: fleetscanv1.TokenRole_TOKEN_ROLE_TENANT, Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	acme := ts.client(minted.Secret)
	hour := durationpb.New(time.Hour)
	for name, tc := range map[string]struct {
		e    *fleetscanv1.Exception
		want codes.Code
	}{
		"own cluster":              {&fleetscanv1.Exception{ClusterId: "acme-prod", Namespace: "payments", Reason: "r"}, codes.OK},
		"granted namespace":        {&fleetscanv1.Exception{ClusterId: "shared", Namespace: "storefront", Reason: "r"}, codes.OK},
		"another namespace":        {&fleetscanv1.Exception{ClusterId: "shared", Namespace: "payments", Reason: "r"}, codes.InvalidArgument},
		"shared, whole cluster":    {&fleetscanv1.Exception{ClusterId: "shared", Reason: "r"}, codes.InvalidArgument},
		"another tenant's cluster": {&fleetscanv1.Exception{ClusterId: "globex-prod", Reason: "r"}, codes.NotFound},
		"another tenant":           {&fleetscanv1.Exception{ClusterId: "acme-prod", Tenant: "globex", Reason: "r"}, codes.InvalidArgument},
		"no cluster":               {&fleetscanv1.Exception{CheckId: check, Reason: "r"}, codes.InvalidArgument},
	} {
		_, err := acme.ExceptionService.CreateException(ctx, &fleetscanv1.CreateExceptionRequest{Exception: tc.e, Ttl: hour})
		if status.Code(err) != tc.want {
			t.Errorf("tenant exception, %s: %v, want %v", name, err, tc.want)
		}
	}
	// A tenant's exception on a shared namespace is its own view only: the
	// provider and globex, granted the same namespace, still see the
	// findings open; and it ends with acme's grant.
	globexTok, err := op.TokenService.CreateToken(ctx, &fleetscanv1.CreateTokenRequest{Name: "globex-sec", Role: fleetscanv1.TokenRole_TOKEN_ROLE_TENANT, Tenant: "globex"})
	if err != nil {
		t.Fatal(err)
	}
	storefront := &fleetscanv1.ListFindingsRequest{ClusterId: "shared", Namespace: "storefront"}
	acmeOpen, opOpen, globexOpen := countFindings(t, ts, minted.Secret, storefront), countFindings(t, ts, opTok, storefront), countFindings(t, ts, globexTok.Secret, storefront)
	if acmeOpen != 0 || opOpen == 0 || globexOpen != opOpen {
		t.Errorf("acme's exception on shared/storefront: open for acme %d (want 0), operator %d (want > 0), globex %d (want the operator's)", acmeOpen, opOpen, globexOpen)
	}
	if _, err := op.ClusterService.UpdateCluster(ctx, &fleetscanv1.UpdateClusterRequest{
		Cluster:    &fleetscanv1.Cluster{Id: "shared", NamespaceGrants: []*fleetscanv1.NamespaceGrant{{Tenant: "globex", Namespaces: []string{"storefront"}}}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"namespace_grants"}}}); err != nil {
		t.Fatal(err)
	}
	scan = scanClusters(t, ts, "shared")
	if got := scan.Jobs[0].Findings.GetSuppressed(); got != 0 {
		t.Errorf("a tenant's exception on a shared namespace entered the cluster's counts: %d suppressed", got)
	}
	if got := countFindings(t, ts, globexTok.Secret, storefront); got != opOpen {
		t.Errorf("globex's open findings in storefront after acme lost its grant: %d, want %d", got, opOpen)
	}
	// A tenant sees its own exceptions and the operator's that reach its
	// findings (the one on acme-prod), with the approver as a role only;
	// it may delete its own only.
	mine, err := acme.ExceptionService.ListExceptions(ctx, &fleetscanv1.ListExceptionsRequest{ShowExpired: true})
	if err != nil {
		t.Fatal(err)
	}
	var own []string
	var operators []*fleetscanv1.Exception
	for _, e := range mine.Exceptions {
		if e.OwnerTenant == "acme" {
			own = append(own, e.Id)
		} else {
			operators = append(operators, e)
		}
	}
	if len(own) != 2 || len(operators) != 1 || operators[0].Id != exc.Exception.Id || operators[0].Author != "operator" {
		t.Errorf("acme lists its own %d (want 2) and the operator's %v (want %s, author shown as \"operator\")", len(own), operators, exc.Exception.Id)
	}
	theirs, err := ts.client(globexTok.Secret).ExceptionService.ListExceptions(ctx, &fleetscanv1.ListExceptionsRequest{ShowExpired: true})
	if err != nil || slices.ContainsFunc(theirs.Exceptions, func(e *fleetscanv1.Exception) bool { return e.ClusterId == "acme-prod" || e.OwnerTenant == "acme" }) {
		t.Errorf("globex lists acme's exceptions: %v %v", theirs.GetExceptions(), err)
	}
	if _, err := acme.ExceptionService.DeleteException(ctx, &fleetscanv1.DeleteExceptionRequest{ExceptionId: exc.Exception.Id}); status.Code(err) != codes.NotFound {
		t.Errorf("acme deleting the operator's exception: %v, want NotFound", err)
	}
	if _, err := acme.ExceptionService.DeleteException(ctx, &fleetscanv1.DeleteExceptionRequest{ExceptionId: own[0]}); err != nil {
		t.Errorf("acme deleting its own exception: %v", err)
	}
}
