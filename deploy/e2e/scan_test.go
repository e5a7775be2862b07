//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"google.golang.org/protobuf/proto"

	"github.com/fleetscan/fleetscan/client"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/worker"
	"github.com/fleetscan/fleetscan/worker/checks"
	"github.com/fleetscan/fleetscan/worker/policy"
)

// fleet is a fleetscan-server process with one worker per cluster, each
// reading its API server with the worker's ServiceAccount token.
type fleet struct {
	t       *testing.T
	addr    string
	op      *client.Client
	server  *process
	workers []*process
}

// startFleet starts fleetscan-server with a development CA, so that the
// workers and the client verify it as in production, and one worker per
// cluster.
func startFleet(t *testing.T) *fleet {
	t.Helper()
	return startFleetOf(t, env.clusters)
}

// startFleetOf starts the server and one worker for each of clusters.
func startFleetOf(t *testing.T, clusters []*cluster) *fleet {
	t.Helper()
	f := &fleet{t: t}
	var dir string
	var tok []byte
	// The port is chosen free, then bound by another process: on a busy
	// machine someone may take it in between, so a collision is retried.
	for attempt := 1; ; attempt++ {
		dir = t.TempDir()
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		f.addr = fmt.Sprintf("127.0.0.1:%d", port)
		f.server = f.start("fleetscan-server", filepath.Join(dir, "server.log"), filepath.Join(env.fleetscan, "fleetscan-server"),
			"--data-dir", filepath.Join(dir, "data"), "--listen", f.addr, "--dev-tls", "--tick", "200ms")
		if tok, err = waitServer(f.server, f.addr, filepath.Join(dir, "data")); err == nil {
			break
		}
		if !strings.Contains(err.Error(), "address already in use") || attempt == 3 {
			t.Fatal(err)
		}
		f.server.stop(time.Second)
	}
	ca := filepath.Join(dir, "data", "tls", "ca.crt")
	var err error
	if f.op, err = client.New(f.addr, client.WithCAFile(ca), client.WithToken(strings.TrimSpace(string(tok)))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.op.Close() })
	ctx := context.Background()
	for _, c := range clusters {
		resp, err := f.op.ClusterService.RegisterCluster(ctx, &fleetscanv1.RegisterClusterRequest{ClusterId: c.id, Tenant: c.tenant})
		if err != nil {
			t.Fatal(err)
		}
		tokFile := filepath.Join(dir, c.id+".token")
		if err := os.WriteFile(tokFile, []byte(resp.JoinToken), 0o600); err != nil {
			t.Fatal(err)
		}
		f.workers = append(f.workers, f.start("worker "+c.id, filepath.Join(dir, c.id+".log"), filepath.Join(env.fleetscan, "fleetscan-worker"),
			"--server", f.addr, "--ca", ca, "--cluster-id", c.id, "--token-file", tokFile,
			"--credential-file", tokFile+".credential", "--kubeconfig", c.workerConf,
			"--page-size", fmt.Sprint(pageSize)))
	}
	return f
}

// waitServer waits until the server listens and has written its first
// operator token, which it returns.
func waitServer(p *process, addr, dataDir string) ([]byte, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			if tok, err := os.ReadFile(filepath.Join(dataDir, "operator.token")); err == nil {
				return tok, nil
			}
		}
		if p.exited() || time.Now().After(deadline) {
			return nil, fmt.Errorf("fleetscan-server did not start:\n%s", p.tail(30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (f *fleet) start(name, log, bin string, args ...string) *process {
	f.t.Helper()
	p, err := startProcess(name, log, bin, args...)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() {
		p.stop(10 * time.Second)
		if f.t.Failed() {
			f.t.Logf("--- %s:\n%s", p.name, p.tail(25))
		}
	})
	return p
}

// scan runs a scan of the given clusters (all when none) to its end.
func (f *fleet) scan(clusterIDs ...string) *fleetscanv1.Scan {
	f.t.Helper()
	target := &fleetscanv1.ScanTarget{AllClusters: len(clusterIDs) == 0, ClusterIds: clusterIDs}
	resp, err := f.op.ScanService.StartScan(context.Background(), &fleetscanv1.StartScanRequest{Target: target})
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := f.op.WaitScan(ctx, resp.Scan.Id, 200*time.Millisecond, nil)
	if err != nil {
		f.t.Fatalf("scan %s: %v", resp.Scan.Id, err)
	}
	if s.State != fleetscanv1.ScanState_SCAN_STATE_SUCCEEDED {
		f.t.Fatalf("scan %s ended %v: %v", s.Id, s.State, s.Jobs)
	}
	return s
}

// stored is every finding of the cluster's latest scan, as lines.
func (f *fleet) stored(clusterID string) []string {
	f.t.Helper()
	var out []string
	for _, st := range []fleetscanv1.FindingStatus{fleetscanv1.FindingStatus_FINDING_STATUS_OPEN, fleetscanv1.FindingStatus_FINDING_STATUS_SUPPRESSED} {
		for fd, err := range f.op.Findings(context.Background(), &fleetscanv1.ListFindingsRequest{ClusterId: clusterID, Status: st, PageSize: 1000}) {
			if err != nil {
				f.t.Fatal(err)
			}
			r := fd.Resource
			out = append(out, findingLine(fd.CheckId, fd.Severity, r.Kind, r.Namespace, r.Name, r.SubPath, fd.Message, fd.SuppressionReason))
		}
	}
	slices.Sort(out)
	return out
}

// findingLine is one finding as the golden files hold it.
func findingLine(check string, sev fleetscanv1.Severity, kind, ns, name, sub, msg, suppressed string) string {
	obj := kind + " " + ns + "/" + name
	if ns == "" {
		obj = kind + " " + name
	}
	if sub != "" {
		obj += " " + sub
	}
	line := fmt.Sprintf("%s %s %s: %s", check, strings.TrimPrefix(sev.String(), "SEVERITY_"), obj, msg)
	if suppressed != "" {
		line += " [suppressed: " + suppressed + "]"
	}
	return line
}

// expected runs the checks in process on an admin listing of the whole
// cluster in one page per kind: what the worker, paging with its own
// least-privilege token, must have reported.
func expected(t *testing.T, c *cluster) (lines []string, inv *checks.Inventory) {
	t.Helper()
	ctx := context.Background()
	inv, err := worker.KubeSource(c.client, 1_000_000, nil).Collect(ctx, policy.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = checks.Run(ctx, inv, policy.Selection{}, func(fd checks.Finding) error {
		r := fd.Resource
		lines = append(lines, findingLine(fd.CheckID, fd.Severity, r.Kind, r.Namespace, r.Name, r.SubPath, fd.Message, fd.Suppressed))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(lines)
	return lines, inv
}

// objectCounts is "objects: Kind N" for each kind the inventory holds, for
// the golden files: the seed a golden file describes, pinned.
func objectCounts(inv *checks.Inventory) []string {
	var out []string
	v := reflect.ValueOf(inv).Elem()
	for i := range v.NumField() {
		name := v.Type().Field(i).Name
		if f := v.Field(i); f.Kind() == reflect.Slice && !strings.HasPrefix(name, "Managed") && f.Len()+asMetadata(inv, name) > 0 {
			out = append(out, fmt.Sprintf("objects: %s %d", name, f.Len()+asMetadata(inv, name)))
		}
	}
	return out
}

// asMetadata counts, with the Pods and ReplicaSets, those the inventory
// keeps as their metadata (Inventory.ManagedPods, ManagedReplicaSets):
// pods and ReplicaSets all the same.
func asMetadata(inv *checks.Inventory, field string) int {
	switch field {
	case "Pods":
		return len(inv.ManagedPods)
	case "ReplicaSets":
		return len(inv.ManagedReplicaSets)
	}
	return 0
}

// golden compares lines with testdata/golden/NAME, or rewrites it with -update.
func golden(t *testing.T, name string, lines []string) {
	t.Helper()
	path := filepath.Join("testdata/golden", name)
	got := strings.Join(lines, "\n") + "\n"
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run 'make e2e E2E_FLAGS=-update' to write it)", err)
	}
	if want := string(b); got != want {
		t.Errorf("findings differ from %s (-missing +unexpected):\n%s", path, lineDiff(strings.Split(strings.TrimSuffix(want, "\n"), "\n"), lines))
	}
}

// lineDiff lists the lines only in want (-) and only in got (+).
func lineDiff(want, got []string) string {
	var b strings.Builder
	count := func(ls []string) map[string]int {
		m := map[string]int{}
		for _, l := range ls {
			m[l]++
		}
		return m
	}
	w, g := count(want), count(got)
	for _, l := range want {
		if g[l] < w[l] {
			fmt.Fprintf(&b, "- %s\n", l)
			w[l]--
		}
	}
	for _, l := range got {
		if w[l] < g[l] {
			fmt.Fprintf(&b, "+ %s\n", l)
			g[l]--
		}
	}
	return b.String()
}

func jobOf(t *testing.T, s *fleetscanv1.Scan, clusterID string) *fleetscanv1.Job {
	t.Helper()
	for _, j := range s.Jobs {
		if j.ClusterId == clusterID {
			return j
		}
	}
	t.Fatalf("scan %s has no job for %s", s.Id, clusterID)
	return nil
}

func total(c *fleetscanv1.SeverityCounts) int64 {
	return c.GetCritical() + c.GetHigh() + c.GetMedium() + c.GetLow() + c.GetInfo() + c.GetSuppressed()
}

// TestFleetScan scans both clusters through a real fleetscan-server and
// two real workers, compares the findings with the golden files and with
// the checks run on an admin listing, then changes one cluster and checks
// the diff and the trend of the rescan.
func TestFleetScan(t *testing.T) {
	f := startFleet(t)
	start := time.Now()
	// The audit log of beta from here on holds this scan's List calls only.
	auditFrom := fileSize(t, env.clusters[1].auditLog)
	first := f.scan()
	t.Logf("fleet scan of %d clusters: %s", len(env.clusters), time.Since(start).Round(time.Millisecond))

	for _, c := range env.clusters {
		t.Run("findings/"+c.id, func(t *testing.T) {
			job := jobOf(t, first, c.id)
			got := f.stored(c.id)
			want, inv := expected(t, c)
			objects := inv.Len()
			if d := lineDiff(want, got); d != "" {
				t.Errorf("stored findings differ from the checks on an admin listing (-missing +unexpected):\n%s", d)
			}
			// Every object listed once: a page read twice or skipped would
			// change the count, and findings sent twice would outnumber
			// the stored ones.
			if job.ObjectsScanned != int64(objects) {
				t.Errorf("objects scanned: %d, the cluster holds %d", job.ObjectsScanned, objects)
			}
			if total(job.Findings) != int64(len(got)) {
				t.Errorf("the job counts %d findings, %d are stored", total(job.Findings), len(got))
			}
			var documented []string
			for _, l := range got {
				if !strings.Contains(l, " "+bulkNamespace+"/") {
					documented = append(documented, l)
				}
			}
			var na []string
			for _, n := range job.NotAssessable {
				na = append(na, "not assessable: "+n.CheckId+": "+n.Reason)
			}
			golden(t, c.id+".txt", slices.Concat(objectCounts(inv), documented, na))
			t.Logf("%s: %d objects, %d findings (%d outside %q), %d checks not assessable",
				c.id, objects, len(got), len(documented), bulkNamespace, len(na))
		})
	}

	t.Run("pagination", func(t *testing.T) {
		// Every bulk pod, listed over four pages, has the same findings,
		// once each: a page skipped would miss pods, a page read twice
		// would have shown in the object count above.
		c := env.clusters[1]
		perPod := map[string][]string{}
		for _, l := range f.stored(c.id) {
			check, rest, _ := strings.Cut(l, " ")
			if _, obj, ok := strings.Cut(rest, " Pod "+bulkNamespace+"/"); ok {
				name := strings.TrimSuffix(strings.Fields(obj)[0], ":")
				perPod[name] = append(perPod[name], check)
			}
		}
		if len(perPod) != bulkPods {
			t.Fatalf("findings on %d bulk pods, want %d", len(perPod), bulkPods)
		}
		// Pinned: a hardened pod with a mutable tag, in a namespace
		// without NetworkPolicy, not owned by a controller, on the
		// default service account, without AppArmor.
		want := []string{"IMG-001", "NET-002", "NET-003", "POD-020", "RES-007", "SA-002"}
		for name, got := range perPod {
			if !slices.Equal(got, want) {
				t.Errorf("%s has findings %v, want %v", name, got, want)
			}
		}
		// The worker really paged: its List calls, in beta's audit log,
		// asked for pages of pageSize and followed continue tokens.
		for _, res := range []string{"pods", "configmaps"} {
			n := adminCount(t, c, res)
			want := (n + pageSize - 1) / pageSize
			if want < 4 {
				t.Fatalf("%s: %d objects fit in %d pages of %d: the bulk seed no longer tests paging", res, n, want, pageSize)
			}
			calls := workerLists(t, c, res, auditFrom)
			if int64(len(calls)) != want {
				t.Errorf("%s: the worker made %d List calls for %d objects, want %d pages of %d:\n%s", res, len(calls), n, want, pageSize, strings.Join(calls, "\n"))
				continue
			}
			for i, uri := range calls {
				q, err := url.ParseQuery(uri[strings.IndexByte(uri, '?')+1:])
				if err != nil || q.Get("limit") != fmt.Sprint(pageSize) || (i > 0) != (q.Get("continue") != "") {
					t.Errorf("%s: List call %d is %s: want limit=%d and, after the first, a continue token", res, i, uri, pageSize)
				}
			}
		}
		t.Logf("%d bulk pods with %d findings each (%v); %d objects scanned in pages of %d", len(perPod), len(want), want, jobOf(t, first, c.id).ObjectsScanned, pageSize)
	})

	// Fix two problems in alpha and introduce one, then rescan.
	alpha := env.clusters[0]
	before, _ := expected(t, alpha)
	changeAlpha(t, alpha)
	after, _ := expected(t, alpha)
	second := f.scan(alpha.id)

	t.Run("diff", func(t *testing.T) {
		resp, err := f.op.FindingService.DiffScans(context.Background(), &fleetscanv1.DiffScansRequest{BaseScanId: first.Id, HeadScanId: second.Id, ClusterId: alpha.id})
		if err != nil {
			t.Fatal(err)
		}
		lines := func(fs []*fleetscanv1.Finding) []string {
			var out []string
			for _, fd := range fs {
				r := fd.Resource
				out = append(out, findingLine(fd.CheckId, fd.Severity, r.Kind, r.Namespace, r.Name, r.SubPath, fd.Message, fd.SuppressionReason))
			}
			slices.Sort(out)
			return out
		}
		gotNew, gotResolved := lines(resp.New), lines(resp.Resolved)
		wantNew, wantResolved := setMinus(after, before), setMinus(before, after)
		if d := lineDiff(wantNew, gotNew); d != "" {
			t.Errorf("new findings (-missing +unexpected):\n%s", d)
		}
		if d := lineDiff(wantResolved, gotResolved); d != "" {
			t.Errorf("resolved findings (-missing +unexpected):\n%s", d)
		}
		if resp.NewCount != int64(len(wantNew)) || resp.ResolvedCount != int64(len(wantResolved)) {
			t.Errorf("counts: %d new, %d resolved; want %d, %d", resp.NewCount, resp.ResolvedCount, len(wantNew), len(wantResolved))
		}
		var diff []string
		for _, l := range gotNew {
			diff = append(diff, "new: "+l)
		}
		for _, l := range gotResolved {
			diff = append(diff, "resolved: "+l)
		}
		golden(t, "alpha-diff.txt", diff)
	})

	t.Run("trend", func(t *testing.T) {
		resp, err := f.op.FindingService.GetTrend(context.Background(), &fleetscanv1.GetTrendRequest{Scope: &fleetscanv1.Scope{Scope: &fleetscanv1.Scope_ClusterId{ClusterId: alpha.id}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Points) == 0 {
			t.Fatal("no trend points")
		}
		last := resp.Points[len(resp.Points)-1]
		want := jobOf(t, second, alpha.id).Findings
		if !proto.Equal(last.Counts, want) {
			t.Errorf("latest trend point %v, the rescan counted %v", last.Counts, want)
		}
		if firstTotal := total(jobOf(t, first, alpha.id).Findings); total(last.Counts) != firstTotal+int64(len(setMinus(after, before))-len(setMinus(before, after))) {
			t.Errorf("trend total %d, want first scan's %d plus new minus resolved", total(last.Counts), firstTotal)
		}
	})
}

// adminCount counts the objects of a core resource in the whole cluster.
func adminCount(t *testing.T, c *cluster, resource string) int64 {
	t.Helper()
	var n int
	var err error
	switch resource {
	case "pods":
		var l *corev1.PodList
		l, err = c.client.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{})
		if err == nil {
			n = len(l.Items)
		}
	case "configmaps":
		var l *corev1.ConfigMapList
		l, err = c.client.CoreV1().ConfigMaps("").List(context.Background(), metav1.ListOptions{})
		if err == nil {
			n = len(l.Items)
		}
	default:
		t.Fatalf("adminCount: %s", resource)
	}
	if err != nil {
		t.Fatal(err)
	}
	return int64(n)
}

// workerLists returns the request URIs of the cluster-wide List calls the
// fleetscan-worker binary made for resource, in order, from the API
// server's audit log.
func workerLists(t *testing.T, c *cluster, resource string, from int64) []string {
	t.Helper()
	b, err := os.ReadFile(c.auditLog)
	if err != nil {
		t.Fatal(err)
	}
	b = b[from:]
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var ev struct {
			Stage, Verb, RequestURI, UserAgent string
			ObjectRef                          struct{ Resource, Namespace string }
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("audit log: %v", err)
		}
		if ev.Stage == "ResponseComplete" && ev.Verb == "list" && ev.ObjectRef.Resource == resource &&
			ev.ObjectRef.Namespace == "" && strings.HasPrefix(ev.UserAgent, "fleetscan-worker/") {
			out = append(out, ev.RequestURI)
		}
	}
	return out
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func setMinus(a, b []string) []string {
	in := map[string]bool{}
	for _, l := range b {
		in[l] = true
	}
	var out []string
	for _, l := range a {
		if !in[l] {
			out = append(out, l)
		}
	}
	return out
}

// changeAlpha fixes two problems in e2e-alpha and introduces one:
//   - fixed: the privileged debug pod in sandbox is deleted;
//   - fixed: namespace ci gets a default-deny NetworkPolicy;
//   - new: a group of contractors is bound to cluster-admin.
//
// A cleanup undoes them, so that alpha matches its golden file again for
// whatever runs next (-count=2, a test added later).
func changeAlpha(t *testing.T, c *cluster) {
	t.Helper()
	ctx := context.Background()
	t.Cleanup(func() {
		c.client.RbacV1().ClusterRoleBindings().Delete(ctx, "contractors-admin", metav1.DeleteOptions{})
		c.client.NetworkingV1().NetworkPolicies("ci").Delete(ctx, "default-deny", metav1.DeleteOptions{})
		objs, err := readManifests(c.seedDirs...)
		if err != nil {
			t.Error(err)
			return
		}
		objs = slices.DeleteFunc(objs, func(u *unstructured.Unstructured) bool {
			return u.GetKind() != "Pod" || u.GetNamespace() != "sandbox" || u.GetName() != "debug-toolbox"
		})
		if len(objs) != 1 {
			t.Errorf("debug-toolbox is %d objects of the seed, want 1", len(objs))
		}
		if _, err := c.seed(ctx, objs); err != nil {
			t.Errorf("restore debug-toolbox: %v", err)
		}
	})
	if err := c.client.CoreV1().Pods("sandbox").Delete(ctx, "debug-toolbox", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "default-deny", Namespace: "ci"},
		Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}},
	}
	if _, err := c.client.NetworkingV1().NetworkPolicies("ci").Create(ctx, np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "contractors-admin"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "Group", Name: "contractors"}},
	}
	if _, err := c.client.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A deleted pod without a kubelet is gone at once (grace period 0);
	// wait until the listing no longer shows it all the same.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := c.client.CoreV1().Pods("sandbox").Get(ctx, "debug-toolbox", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("debug-toolbox still there: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
