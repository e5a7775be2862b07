package server_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/fleetscan/fleetscan/client"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server"
	"github.com/fleetscan/fleetscan/server/internal/auth"
)

// tenantFleet is three scanned clusters: one owned by acme, one by globex,
// and one of the provider's own shared between them by namespace grants.
type tenantFleet struct {
	ts            *testServer
	acme, globex  string // tenant tokens
	fleetScan     string // a scan of all three clusters
	globexScan    string // a scan of globex-prod only
	globexFinding *fleetscanv1.Finding
	sharedGlobex  *fleetscanv1.Finding // on shared, in globex's namespace
	sharedAcme    *fleetscanv1.Finding // on shared, in acme's namespace
}

const sharedSnapshot = "acme-dev" // the shared cluster runs the acme-dev demo objects

func newTenantFleet(t *testing.T) *tenantFleet {
	t.Helper()
	return newTenantFleetWith(t, nil)
}

// newTenantFleetWith is newTenantFleet on a server configured by cfg.
func newTenantFleetWith(t *testing.T, cfg func(*server.Config)) *tenantFleet {
	t.Helper()
	ts := &testServer{t: t, dataDir: t.TempDir(), cfg: cfg}
	ts.start()
	t.Cleanup(ts.shutdown)
	op := ts.client(ts.operatorToken())
	tf := &tenantFleet{ts: ts}
	ctx := context.Background()
	for id, snap := range map[string]string{"acme-prod": "acme-prod", "globex-prod": "globex-prod", "shared": sharedSnapshot} {
		req := &fleetscanv1.RegisterClusterRequest{ClusterId: id, Labels: map[string]string{"env": "prod"}}
		switch id {
		case "acme-prod":
			req.Tenant = "acme"
		case "globex-prod":
			req.Tenant = "globex"
		default:
			req.NamespaceGrants = []*fleetscanv1.NamespaceGrant{{Tenant: "acme", Namespaces: []string{"storefront"}}, {Tenant: "globex", Namespaces: []string{"payments", "ci"}}}
		}
		resp, err := op.ClusterService.RegisterCluster(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		ts.startWorker(id, resp.JoinToken, filepath.Join(demoClusters, snap))
	}
	for _, tenant := range []string{"acme", "globex"} {
		resp, err := op.TokenService.CreateToken(ctx, &fleetscanv1.CreateTokenRequest{Name: tenant + "-ci", Role: fleetscanv1.TokenRole_TOKEN_ROLE_TENANT, Tenant: tenant})
		if err != nil {
			t.Fatal(err)
		}
		if tenant == "acme" {
			tf.acme = resp.Secret
		} else {
			tf.globex = resp.Secret
		}
	}
	tf.fleetScan = scanClusters(t, ts, "acme-prod", "globex-prod", "shared").Id
	tf.globexScan = scanClusters(t, ts, "globex-prod").Id
	for _, f := range allFindings(t, op, &fleetscanv1.ListFindingsRequest{PageSize: 1000}) {
		switch {
		case f.ClusterId == "globex-prod" && tf.globexFinding == nil:
			tf.globexFinding = f
		case f.ClusterId == "shared" && f.Resource.Namespace == "payments" && tf.sharedGlobex == nil:
			tf.sharedGlobex = f
		case f.ClusterId == "shared" && f.Resource.Namespace == "storefront" && tf.sharedAcme == nil:
			tf.sharedAcme = f
		}
	}
	if tf.globexFinding == nil || tf.sharedGlobex == nil || tf.sharedAcme == nil {
		t.Fatal("the demo clusters lack the findings this test needs")
	}
	return tf
}

// notFoundAlike asserts that err is NotFound and reads exactly like the
// error for an id that does not exist, once the ids are swapped: nothing
// tells "someone else's" from "absent".
func notFoundAlike(t *testing.T, what string, err, absentErr error, id, absentID string) {
	t.Helper()
	if status.Code(err) != codes.NotFound {
		t.Errorf("%s: %v, want NotFound", what, err)
		return
	}
	got := strings.ReplaceAll(status.Convert(err).Message(), id, "<id>")
	want := strings.ReplaceAll(status.Convert(absentErr).Message(), absentID, "<id>")
	if got != want {
		t.Errorf("%s: message %q differs from the one for an absent id, %q", what, got, want)
	}
}

// TestTenantIsolation tries every tenant-callable RPC with the other
// tenant's ids, names, scans, findings and page tokens: a tenant sees its
// own clusters and its granted namespaces of the shared cluster, and of
// everything else nothing, not even that it exists.
func TestTenantIsolation(t *testing.T) {
	tf := newTenantFleet(t)
	ctx := context.Background()
	op := tf.ts.client(tf.ts.operatorToken())
	acme := tf.ts.client(tf.acme)
	globex := tf.ts.client(tf.globex)

	t.Run("ListFindings returns the scope and only it", func(t *testing.T) {
		all := storedFindings(t, op, &fleetscanv1.ListFindingsRequest{PageSize: 1000})
		var want []string
		for _, line := range all {
			f := strings.Fields(line)
			cluster, res := f[0], f[2] // res: apiVersion/Kind/namespace/name
			parts := strings.Split(res, "/")
			ns := parts[len(parts)-2]
			if cluster == "acme-prod" || (cluster == "shared" && ns == "storefront") {
				want = append(want, line)
			}
		}
		got := storedFindings(t, acme, &fleetscanv1.ListFindingsRequest{PageSize: 7})
		if d := diffLines(got, want); d != "" {
			t.Errorf("acme's findings differ from its scope:\n%s", d)
		}
		// Another tenant's cluster is not found, alike an absent one: an
		// empty list would tell a mistyped id that all is well.
		for _, req := range []*fleetscanv1.ListFindingsRequest{
			{ClusterId: "globex-prod"},
			{Namespace: "payments", ClusterId: "globex-prod", Status: fleetscanv1.FindingStatus_FINDING_STATUS_RESOLVED},
			{CheckId: tf.globexFinding.CheckId, ClusterId: "globex-prod"},
		} {
			_, err := acme.FindingService.ListFindings(ctx, req)
			absent := proto.Clone(req).(*fleetscanv1.ListFindingsRequest)
			absent.ClusterId = "nope"
			_, absentErr := acme.FindingService.ListFindings(ctx, absent)
			notFoundAlike(t, fmt.Sprintf("ListFindings(%v)", req), err, absentErr, "globex-prod", "nope")
		}
		for _, req := range []*fleetscanv1.ListFindingsRequest{
			{ClusterId: "shared", Namespace: "payments"},
			{ClusterId: "shared", Namespace: ""}, // cluster-scoped objects of shared are the provider's
			{Namespace: "ci"},
		} {
			for _, f := range allFindings(t, acme, req) {
				if f.ClusterId != "acme-prod" && !(f.ClusterId == "shared" && f.Resource.Namespace == "storefront") {
					t.Errorf("acme listing %v got %s %s in %q", req, f.ClusterId, f.CheckId, f.Resource.Namespace)
				}
			}
		}
	})

	t.Run("page tokens are bound to the caller", func(t *testing.T) {
		page, err := acme.FindingService.ListFindings(ctx, &fleetscanv1.ListFindingsRequest{PageSize: 2})
		if err != nil || page.NextPageToken == "" {
			t.Fatalf("first page: %v", err)
		}
		_, err = globex.FindingService.ListFindings(ctx, &fleetscanv1.ListFindingsRequest{PageSize: 2, PageToken: page.NextPageToken})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("globex with acme's page token: %v, want InvalidArgument", err)
		}
	})

	t.Run("clusters", func(t *testing.T) {
		resp, err := acme.ClusterService.ListClusters(ctx, &fleetscanv1.ListClustersRequest{PageSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for c, err := range acme.ListClusters(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, c.Id)
			if c.Id == "shared" {
				if len(c.Labels) != 0 || len(c.NamespaceGrants) != 1 || c.NamespaceGrants[0].Tenant != "acme" {
					t.Errorf("acme sees of the shared cluster: labels %v, grants %v; want no labels and its own grant only", c.Labels, c.NamespaceGrants)
				}
			}
		}
		if !slices.Equal(ids, []string{"acme-prod", "shared"}) || len(resp.Clusters) != 1 {
			t.Errorf("acme lists %v, want acme-prod and shared", ids)
		}
		_, err = acme.ClusterService.GetCluster(ctx, &fleetscanv1.GetClusterRequest{ClusterId: "globex-prod"})
		_, absent := acme.ClusterService.GetCluster(ctx, &fleetscanv1.GetClusterRequest{ClusterId: "nope"})
		notFoundAlike(t, "GetCluster(globex-prod)", err, absent, "globex-prod", "nope")
	})

	t.Run("GetFinding", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			f    *fleetscanv1.Finding
		}{{"globex's cluster", tf.globexFinding}, {"globex's namespace of shared", tf.sharedGlobex}} {
			_, err := acme.FindingService.GetFinding(ctx, &fleetscanv1.GetFindingRequest{ClusterId: tc.f.ClusterId, Fingerprint: tc.f.Fingerprint})
			_, absent := acme.FindingService.GetFinding(ctx, &fleetscanv1.GetFindingRequest{ClusterId: tc.f.ClusterId, Fingerprint: strings.Repeat("0", 32)})
			notFoundAlike(t, "GetFinding of "+tc.name, err, absent, tc.f.Fingerprint, strings.Repeat("0", 32))
		}
		if _, err := acme.FindingService.GetFinding(ctx, &fleetscanv1.GetFindingRequest{ClusterId: "shared", Fingerprint: tf.sharedAcme.Fingerprint}); err != nil {
			t.Errorf("acme's own namespace of shared: %v", err)
		}
	})

	t.Run("DiffScans", func(t *testing.T) {
		const absentScan = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
		_, err := acme.FindingService.DiffScans(ctx, &fleetscanv1.DiffScansRequest{BaseScanId: tf.globexScan, HeadScanId: tf.globexScan})
		_, absent := acme.FindingService.DiffScans(ctx, &fleetscanv1.DiffScansRequest{BaseScanId: absentScan, HeadScanId: absentScan})
		notFoundAlike(t, "diff of globex's scan", err, absent, tf.globexScan, absentScan)
		for _, cluster := range []string{"globex-prod", "shared"} {
			_, err := acme.FindingService.DiffScans(ctx, &fleetscanv1.DiffScansRequest{BaseScanId: tf.fleetScan, HeadScanId: tf.fleetScan, ClusterId: cluster})
			if status.Code(err) != codes.NotFound {
				t.Errorf("acme's diff of %s in the fleet scan: %v, want NotFound", cluster, err)
			}
		}
		// Without a cluster: the one cluster of the scans acme owns.
		d, err := acme.FindingService.DiffScans(ctx, &fleetscanv1.DiffScansRequest{BaseScanId: tf.fleetScan, HeadScanId: tf.fleetScan})
		if err != nil || d.ClusterId != "acme-prod" {
			t.Errorf("acme's diff of the fleet scan: %v %v, want acme-prod", d.GetClusterId(), err)
		}
	})

	t.Run("aggregates", func(t *testing.T) {
		opSum, err := op.FindingService.GetSummary(ctx, &fleetscanv1.GetSummaryRequest{Scope: &fleetscanv1.Scope{Scope: &fleetscanv1.Scope_ClusterId{ClusterId: "acme-prod"}}})
		if err != nil {
			t.Fatal(err)
		}
		sum, err := acme.FindingService.GetSummary(ctx, &fleetscanv1.GetSummaryRequest{Scope: &fleetscanv1.Scope{Scope: &fleetscanv1.Scope_Fleet{Fleet: true}}})
		if err != nil || sum.Clusters != 1 || history(sum.Counts) != history(opSum.Counts) {
			t.Errorf("acme's fleet summary: %v %v, want acme-prod's alone (%v)", sum, err, opSum.Counts)
		}
		trend, err := acme.FindingService.GetTrend(ctx, &fleetscanv1.GetTrendRequest{Scope: &fleetscanv1.Scope{Scope: &fleetscanv1.Scope_Fleet{Fleet: true}}})
		if err != nil {
			t.Fatal(err)
		}
		last := trend.Points[len(trend.Points)-1]
		if last.Clusters != 1 || history(last.Counts) != history(opSum.Counts) {
			t.Errorf("acme's fleet trend ends with %v, want acme-prod's counts", last)
		}
		for _, scope := range []*fleetscanv1.Scope{
			{Scope: &fleetscanv1.Scope_ClusterId{ClusterId: "globex-prod"}},
			{Scope: &fleetscanv1.Scope_ClusterId{ClusterId: "shared"}},
			{Scope: &fleetscanv1.Scope_Tenant{Tenant: "globex"}},
		} {
			_, err := acme.FindingService.GetSummary(ctx, &fleetscanv1.GetSummaryRequest{Scope: scope})
			_, terr := acme.FindingService.GetTrend(ctx, &fleetscanv1.GetTrendRequest{Scope: scope})
			if status.Code(err) != codes.NotFound || status.Code(terr) != codes.NotFound {
				t.Errorf("acme's summary/trend of %v: %v / %v, want NotFound", scope, err, terr)
			}
		}
		_, err = acme.FindingService.GetSummary(ctx, &fleetscanv1.GetSummaryRequest{Scope: &fleetscanv1.Scope{Scope: &fleetscanv1.Scope_Tenant{Tenant: "globex"}}})
		_, absent := acme.FindingService.GetSummary(ctx, &fleetscanv1.GetSummaryRequest{Scope: &fleetscanv1.Scope{Scope: &fleetscanv1.Scope_Tenant{Tenant: "nobody"}}})
		notFoundAlike(t, "summary of tenant globex", err, absent, "globex", "nobody")
		cmp, err := acme.FindingService.CompareClusters(ctx, &fleetscanv1.CompareClustersRequest{})
		if err != nil || len(cmp.Clusters) != 1 || cmp.Clusters[0].ClusterId != "acme-prod" {
			t.Errorf("acme's comparison: %v %v, want acme-prod alone", cmp.GetClusters(), err)
		}
		if cmp, err := acme.FindingService.CompareClusters(ctx, &fleetscanv1.CompareClustersRequest{Tenant: "globex"}); err != nil || len(cmp.Clusters) != 0 {
			t.Errorf("acme comparing globex: %v %v, want nothing", cmp.GetClusters(), err)
		}
	})

	t.Run("operator-only RPCs are refused", func(t *testing.T) {
		for name, call := range map[string]func() error{
			"StartScan": func() error {
				_, err := acme.ScanService.StartScan(ctx, &fleetscanv1.StartScanRequest{Target: &fleetscanv1.ScanTarget{ClusterIds: []string{"acme-prod"}}})
				return err
			},
			"GetScan": func() error {
				_, err := acme.ScanService.GetScan(ctx, &fleetscanv1.GetScanRequest{ScanId: tf.fleetScan})
				return err
			},
			"ListScans": func() error { _, err := acme.ScanService.ListScans(ctx, &fleetscanv1.ListScansRequest{}); return err },
			"CancelScan": func() error {
				_, err := acme.ScanService.CancelScan(ctx, &fleetscanv1.CancelScanRequest{ScanId: tf.fleetScan})
				return err
			},
			"WatchScan": func() error {
				s, err := acme.ScanService.WatchScan(ctx, &fleetscanv1.WatchScanRequest{ScanId: tf.fleetScan})
				if err == nil {
					_, err = s.Recv()
				}
				return err
			},
			"ListSchedules": func() error {
				_, err := acme.ScanService.ListSchedules(ctx, &fleetscanv1.ListSchedulesRequest{})
				return err
			},
			"RegisterCluster": func() error {
				_, err := acme.ClusterService.RegisterCluster(ctx, &fleetscanv1.RegisterClusterRequest{ClusterId: "x", Tenant: "acme"})
				return err
			},
			"UpdateCluster": func() error {
				_, err := acme.ClusterService.UpdateCluster(ctx, &fleetscanv1.UpdateClusterRequest{Cluster: &fleetscanv1.Cluster{Id: "shared"}})
				return err
			},
			"CreateToken": func() error {
				_, err := acme.TokenService.CreateToken(ctx, &fleetscanv1.CreateTokenRequest{Name: "x", Role: fleetscanv1.TokenRole_TOKEN_ROLE_TENANT, Tenant: "globex"})
				return err
			},
			"ListTokens": func() error {
				_, err := acme.TokenService.ListTokens(ctx, &fleetscanv1.ListTokensRequest{})
				return err
			},
		} {
			if err := call(); status.Code(err) != codes.PermissionDenied {
				t.Errorf("tenant calling %s: %v, want PermissionDenied", name, err)
			}
		}
	})

	t.Run("exceptions", func(t *testing.T) {
		opExc, err := op.ExceptionService.CreateException(ctx, &fleetscanv1.CreateExceptionRequest{
			Exception: &fleetscanv1.Exception{ClusterId: "globex-prod", Reason: "accepted"}, Ttl: durationpb.New(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		list, err := acme.ExceptionService.ListExceptions(ctx, &fleetscanv1.ListExceptionsRequest{ShowExpired: true})
		if err != nil || len(list.Exceptions) != 0 {
			t.Errorf("acme lists exceptions %v %v, want none of the operator's", list.GetExceptions(), err)
		}
		if _, err := acme.ExceptionService.DeleteException(ctx, &fleetscanv1.DeleteExceptionRequest{ExceptionId: opExc.Exception.Id}); status.Code(err) != codes.PermissionDenied {
			t.Errorf("acme deleting an exception on a server without --tenant-exceptions: %v", err)
		}
		_, err = acme.ExceptionService.CreateException(ctx, &fleetscanv1.CreateExceptionRequest{
			Exception: &fleetscanv1.Exception{ClusterId: "acme-prod", Reason: "mine"}, Ttl: durationpb.New(time.Hour)})
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("acme creating an exception on a server without --tenant-exceptions: %v", err)
		}
		if _, err := op.ExceptionService.DeleteException(ctx, &fleetscanv1.DeleteExceptionRequest{ExceptionId: opExc.Exception.Id}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("notifiers", func(t *testing.T) {
		hook := func(c *client.Client, name, url, tenant string) (*fleetscanv1.CreateNotifierResponse, error) {
			return c.NotifierService.CreateNotifier(ctx, &fleetscanv1.CreateNotifierRequest{Notifier: &fleetscanv1.Notifier{
				Name: name, Kind: fleetscanv1.NotifierKind_NOTIFIER_KIND_WEBHOOK, Url: url, Tenant: tenant}})
		}
		// Nothing listens there: the operator's test delivery fails, and
		// is recorded.
		ops, err := hook(op, "ops", "http://127.0.0.1:9/hook", "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := op.NotifierService.TestNotifier(ctx, &fleetscanv1.TestNotifierRequest{NotifierId: ops.Notifier.Id}); err != nil {
			t.Fatal(err)
		}
		theirs, err := hook(globex, "globex-hook", "https://hooks.globex.example/fleetscan", "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := hook(acme, "acme-spy", "https://hooks.acme.example/fleetscan", "globex"); status.Code(err) != codes.InvalidArgument {
			t.Errorf("acme's notifier of globex's clusters: %v, want InvalidArgument", err)
		}
		mine, err := hook(acme, "acme-hook", "https://hooks.acme.example/fleetscan", "")
		if err != nil || mine.Notifier.Tenant != "acme" {
			t.Fatalf("acme's notifier: %v %v", mine, err)
		}
		list, err := acme.NotifierService.ListNotifiers(ctx, &fleetscanv1.ListNotifiersRequest{})
		if err != nil || len(list.Notifiers) != 1 || list.Notifiers[0].Id != mine.Notifier.Id {
			t.Errorf("acme lists %v %v, want its own notifier only", list.GetNotifiers(), err)
		}
		const absent = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
		for _, other := range []string{theirs.Notifier.Id, ops.Notifier.Id} {
			_, err := acme.NotifierService.DeleteNotifier(ctx, &fleetscanv1.DeleteNotifierRequest{NotifierId: other})
			_, absentErr := acme.NotifierService.DeleteNotifier(ctx, &fleetscanv1.DeleteNotifierRequest{NotifierId: absent})
			notFoundAlike(t, "DeleteNotifier of another's", err, absentErr, other, absent)
			_, err = acme.NotifierService.TestNotifier(ctx, &fleetscanv1.TestNotifierRequest{NotifierId: other})
			_, absentErr = acme.NotifierService.TestNotifier(ctx, &fleetscanv1.TestNotifierRequest{NotifierId: absent})
			notFoundAlike(t, "TestNotifier of another's", err, absentErr, other, absent)
			_, err = acme.NotifierService.ListDeliveries(ctx, &fleetscanv1.ListDeliveriesRequest{NotifierId: other})
			_, absentErr = acme.NotifierService.ListDeliveries(ctx, &fleetscanv1.ListDeliveriesRequest{NotifierId: absent})
			notFoundAlike(t, "ListDeliveries of another's", err, absentErr, other, absent)
		}
		if d, err := acme.NotifierService.ListDeliveries(ctx, &fleetscanv1.ListDeliveriesRequest{}); err != nil || len(d.Deliveries) != 0 {
			t.Errorf("acme lists deliveries %v %v, want none of the operator's", d.GetDeliveries(), err)
		}
		if d, err := op.NotifierService.ListDeliveries(ctx, &fleetscanv1.ListDeliveriesRequest{}); err != nil || len(d.Deliveries) != 1 {
			t.Errorf("the operator lists deliveries %v %v, want its test's", d.GetDeliveries(), err)
		}
		if _, err := globex.NotifierService.DeleteNotifier(ctx, &fleetscanv1.DeleteNotifierRequest{NotifierId: theirs.Notifier.Id}); err != nil {
			t.Errorf("globex deletes its own notifier: %v", err)
		}
	})

	t.Run("every tenant-callable method is covered", func(t *testing.T) {
		covered := []string{"ListFindings", "GetFinding", "DiffScans", "GetTrend", "CompareClusters", "GetSummary", "ListChecks", "ListClusters", "GetCluster",
			"CreateException", "ListExceptions", "DeleteException", "CreateNotifier", "ListNotifiers", "DeleteNotifier", "TestNotifier", "ListDeliveries"}
		for _, rule := range auth.Rules() {
			if !slices.Contains(rule.Roles, auth.RoleTenant) {
				continue
			}
			name := rule.Method[strings.LastIndex(rule.Method, "/")+1:]
			if !slices.Contains(covered, name) {
				t.Errorf("%s is open to tenants but this test does not try it", rule.Method)
			}
		}
	})
}

// TestTokenLifecycle: a token works until it expires or is revoked, is
// listed without its secret, and only its hash is stored.
func TestTokenLifecycle(t *testing.T) {
	clk := newClock()
	ts := &testServer{t: t, dataDir: t.TempDir(), cfg: func(c *server.Config) { c.Now = clk.Now }}
	ts.start()
	t.Cleanup(ts.shutdown)
	op := ts.client(ts.operatorToken())
	ctx := context.Background()
	register(t, op, "acme-prod", "acme", nil)
	short, err := op.TokenService.CreateToken(ctx, &fleetscanv1.CreateTokenRequest{Name: "short", Role: fleetscanv1.TokenRole_TOKEN_ROLE_TENANT, Tenant: "acme", Ttl: durationpb.New(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	long, err := op.TokenService.CreateToken(ctx, &fleetscanv1.CreateTokenRequest{Name: "long", Role: fleetscanv1.TokenRole_TOKEN_ROLE_TENANT, Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(long.Secret, auth.PrefixAPI) || long.Token.ExpireTime.AsTime().Sub(long.Token.CreateTime.AsTime()) != 90*24*time.Hour {
		t.Errorf("new token: %v (secret prefix %q)", long.Token, long.Secret[:4])
	}
	works := func(secret string) error {
		_, err := ts.client(secret).ClusterService.GetCluster(ctx, &fleetscanv1.GetClusterRequest{ClusterId: "acme-prod"})
		return err
	}
	if err := works(short.Secret); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	list, err := op.TokenService.ListTokens(ctx, &fleetscanv1.ListTokensRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tok := range list.Tokens {
		names = append(names, tok.Name)
	}
	if !slices.Contains(names, "short") || !slices.Contains(names, "long") || slices.ContainsFunc(names, func(n string) bool {
		return strings.HasPrefix(n, "worker of") || strings.HasPrefix(n, "join token")
	}) {
		t.Errorf("listed tokens %v: want short and long, and no worker or join tokens", names)
	}
	if _, err := op.TokenService.RevokeToken(ctx, &fleetscanv1.RevokeTokenRequest{TokenId: long.Token.Id}); err != nil {
		t.Fatal(err)
	}
	if err := works(long.Secret); status.Code(err) != codes.Unauthenticated {
		t.Errorf("revoked token: %v, want Unauthenticated", err)
	}
	clk.Advance(2 * time.Second)
	if err := works(short.Secret); status.Code(err) != codes.Unauthenticated {
		t.Errorf("expired token: %v, want Unauthenticated", err)
	}
	list, err = op.TokenService.ListTokens(ctx, &fleetscanv1.ListTokensRequest{})
	if err != nil || slices.ContainsFunc(list.Tokens, func(tok *fleetscanv1.Token) bool { return tok.Name == "short" || tok.Name == "long" }) {
		t.Errorf("live tokens after revoke and expiry: %v %v", list.GetTokens(), err)
	}
	if _, err := op.TokenService.RevokeToken(ctx, &fleetscanv1.RevokeTokenRequest{TokenId: "nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("revoking an unknown token: %v", err)
	}
}

// TestAuditLog: every call that changes something is recorded with who,
// what and the outcome, refused ones included, and never a secret.
func TestAuditLog(t *testing.T) {
	ts := startServer(t)
	op := ts.client(ts.operatorToken())
	ctx := context.Background()
	register(t, op, "acme-prod", "acme", nil)
	minted, err := op.TokenService.CreateToken(ctx, &fleetscanv1.CreateTokenRequest{Name: "acme-ci", Role: fleetscanv1.TokenRole_TOKEN_ROLE_TENANT, Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	tenant := ts.client(minted.Secret)
	if _, err := tenant.ScanService.StartScan(ctx, &fleetscanv1.StartScanRequest{Target: &fleetscanv1.ScanTarget{AllClusters: true}}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("tenant StartScan: %v", err)
	}
	if _, err := ts.client("").ClusterService.RegisterCluster(ctx, &fleetscanv1.RegisterClusterRequest{ClusterId: "sneaky"}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("anonymous RegisterCluster: %v", err)
	}
	if _, err := op.FindingService.ListFindings(ctx, &fleetscanv1.ListFindingsRequest{}); err != nil {
		t.Fatal(err)
	}
	resp, err := op.AuditService.ListAuditEvents(ctx, &fleetscanv1.ListAuditEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range resp.Events {
		got = append(got, e.Principal+" "+shortName(e.Method)+" "+e.Code)
		if strings.Contains(e.Request, minted.Secret) || strings.Contains(e.Request, "fsw_") || strings.Contains(e.Request, "fsa_") {
			t.Errorf("a secret in the audit log: %s", e.Request)
		}
		if e.Peer == "" || e.Time == nil {
			t.Errorf("event without peer or time: %v", e)
		}
	}
	// The anonymous attempt is only logged: anybody can make those in any
	// number.
	want := []string{
		"acme-ci StartScan PermissionDenied",
		"bootstrap operator CreateToken OK",
		"bootstrap operator RegisterCluster OK",
	}
	if !slices.Equal(got, want) {
		t.Errorf("audit log, newest first:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(resp.Events[2].Request, `"clusterId":"acme-prod"`) {
		t.Errorf("RegisterCluster event does not say which cluster: %s", resp.Events[2].Request)
	}
	only, err := op.AuditService.ListAuditEvents(ctx, &fleetscanv1.ListAuditEventsRequest{Method: "StartScan", PageSize: 1})
	if err != nil || len(only.Events) != 1 || only.Events[0].Principal != "acme-ci" || only.NextPageToken != "" {
		t.Errorf("filtered by method: %v %v", only.GetEvents(), err)
	}
	if _, err := tenant.AuditService.ListAuditEvents(ctx, &fleetscanv1.ListAuditEventsRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("tenant reading the audit log: %v", err)
	}
}

func shortName(method string) string { return method[strings.LastIndex(method, "/")+1:] }

// TestRateLimit: a token over its rate is refused with ResourceExhausted;
// another token is not affected.
func TestRateLimit(t *testing.T) {
	ts := &testServer{t: t, dataDir: t.TempDir(), cfg: func(c *server.Config) { c.RateLimit, c.RateBurst = 0.5, 3 }}
	ts.start()
	t.Cleanup(ts.shutdown)
	// The client would wait out the limit and send the call again: this
	// test looks at the server's refusal itself.
	op := ts.clientWith(ts.operatorToken(), client.WithRateLimitWaits(0))
	ctx := context.Background()
	minted, err := op.TokenService.CreateToken(ctx, &fleetscanv1.CreateTokenRequest{Name: "other", Role: fleetscanv1.TokenRole_TOKEN_ROLE_OPERATOR})
	if err != nil {
		t.Fatal(err)
	}
	var codesSeen []codes.Code
	for range 3 {
		_, err := op.ClusterService.ListClusters(ctx, &fleetscanv1.ListClustersRequest{})
		codesSeen = append(codesSeen, status.Code(err))
	}
	// The CreateToken call took one of the burst of 3.
	if !slices.Equal(codesSeen, []codes.Code{codes.OK, codes.OK, codes.ResourceExhausted}) {
		t.Errorf("calls over the burst: %v", codesSeen)
	}
	if _, err := ts.client(minted.Secret).ClusterService.ListClusters(ctx, &fleetscanv1.ListClustersRequest{}); err != nil {
		t.Errorf("another token is limited too: %v", err)
	}
}
