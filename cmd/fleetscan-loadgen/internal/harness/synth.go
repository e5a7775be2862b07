package harness

import (
	"fmt"
	"strings"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
	"github.com/fleetscan/fleetscan/worker/catalog"
)

// fleet is the synthetic fleet. The findings of a cluster in a round are
// a window of its numbered findings: round 1 has findings 0..F-1, and
// each later round moves the window by the cluster's churn, so that many
// findings resolve and as many appear. Everything is determined by
// (cluster, round), so the harness knows exactly what must be stored.
type fleet struct {
	// prefix starts every cluster id: one per run, so that runs against
	// the same server do not meet.
	prefix                    string
	clusters, findings, churn int
	churnPct                  float64
	// The first large clusters have largeFindings findings each instead
	// of findings: big jobs that finish among many small ones.
	large, largeFindings int
	catalog              []catalog.Meta
	// realistic gives findings the sizes of the real checks' (see
	// realisticFinding) instead of one short line each.
	realistic bool
}

func newFleet(prefix string, clusters, findings int, churnPct float64, realistic bool) *fleet {
	return &fleet{prefix: prefix, clusters: clusters, findings: findings, churnPct: churnPct, churn: int(float64(findings) * churnPct / 100), catalog: catalog.All(), realistic: realistic}
}

// isLarge says whether cluster i is one of the large ones.
func (f *fleet) isLarge(i int) bool { return i < f.large }

// size is how many findings cluster i has in every round.
func (f *fleet) size(i int) int {
	if f.isLarge(i) {
		return f.largeFindings
	}
	return f.findings
}

// churnOf is how many findings of cluster i resolve, and appear, from one
// round to the next.
func (f *fleet) churnOf(i int) int {
	if f.isLarge(i) {
		return int(float64(f.largeFindings) * f.churnPct / 100)
	}
	return f.churn
}

// total is the findings of the whole fleet in a round.
func (f *fleet) total() int64 {
	return int64(f.clusters-min(f.large, f.clusters))*int64(f.findings) + int64(min(f.large, f.clusters))*int64(f.largeFindings)
}

// span is the numbers of findings any cluster has in rounds 1..r: [0, hi).
func (f *fleet) span(rounds int) (hi int) {
	for _, i := range []int{0, f.clusters - 1} {
		_, h := f.window(i, rounds)
		hi = max(hi, h)
	}
	return hi
}

func (f *fleet) clusterID(i int) string { return fmt.Sprintf("%s%05d", f.prefix, i) }

func (f *fleet) tenant(i int) string { return fmt.Sprintf("tenant-%02d", i%10) }

// window returns the numbers of the findings cluster i has in round r:
// [lo, hi).
func (f *fleet) window(i, round int) (lo, hi int) {
	lo = (round - 1) * f.churnOf(i)
	return lo, lo + f.size(i)
}

// finding returns finding number k of a cluster.
func (f *fleet) finding(k int) *workerv1.Finding {
	meta := f.catalog[k%len(f.catalog)]
	ns, name := fmt.Sprintf("team-%02d", k%20), fmt.Sprintf("svc-%06d", k)
	out := &workerv1.Finding{
		CheckId: meta.ID, Severity: meta.Severity, Category: meta.Category, ResponsibleParty: meta.Party,
		Resource: &fleetscanv1.ResourceRef{ApiVersion: "apps/v1", Kind: "Deployment", Namespace: ns, Name: name, SubPath: "containers[app]"},
		Message:  fmt.Sprintf("%s: container app of Deployment %s/%s", meta.Title, ns, name),
	}
	if f.realistic {
		realisticFinding(out, k)
	}
	return out
}

// realisticFinding gives finding k the size and shape of what the real
// checks write, so that a regression in message sizes (a check that lists
// every object it saw) shows under load too. Most findings name one thing
// and where it is (about 200 bytes); one in ten names a path through RBAC
// and counts the rest, as SA-005 does (about 600 bytes); one in ten points
// into a last-applied configuration, with a long sub-path; one in a
// hundred is as long as a message may be (catalog.MaxMessageBytes: a
// custom CEL message, or a list cut short).
func realisticFinding(f *workerv1.Finding, k int) {
	r := f.Resource
	switch {
	case k%100 == 7:
		f.Message = catalog.CapMessage(strings.Repeat(fmt.Sprintf("container app of %s %s/%s mounts hostPath /var/lib/kubelet/pods/%d; ", r.Kind, r.Namespace, r.Name, k), 100))
	case k%10 == 3:
		f.Message = fmt.Sprintf(`pods run as service account "app-%d", to which ClusterRoleBinding "platform-binding-%03d" grants ClusterRole "platform-role-%03d" to group system:serviceaccounts cluster-wide (reads Secrets cluster-wide, can bind roles, escalate roles, proxy to the kubelet API of nodes, create tokens of service accounts, exec into pods, every permission on webhooks); %d more bindings grant it such powers`,
			k%7, k%40, k%40, 10+k%50)
		f.Resource.SubPath = ""
	case k%10 == 5:
		f.Resource.Kind, f.Resource.ApiVersion = "ConfigMap", "v1"
		f.Resource.SubPath = fmt.Sprintf("metadata.annotations[kubectl.kubernetes.io/last-applied-configuration].data[DATABASE_PASSWORD_%d]", k)
		f.Message = fmt.Sprintf("the last-applied-configuration annotation of ConfigMap %q still has key \"DATABASE_PASSWORD_%d\", which looks like a password assignment; anyone who can read ConfigMaps in namespace %q can read it", r.Name, k, r.Namespace)
	default:
		f.Message = fmt.Sprintf("container app of Deployment %s/%s runs image registry.example.com/%s/%s:1.%d.0 as root without a read-only root filesystem; set runAsNonRoot: true and readOnlyRootFilesystem: true in its securityContext", r.Namespace, r.Name, r.Namespace, r.Name, k%9)
	}
}

// fingerprint is the stored identity of finding k of cluster i.
func (f *fleet) fingerprint(i, k int) string {
	x := f.finding(k)
	r := x.Resource
	return catalog.FingerprintString(catalog.Fingerprint(f.clusterID(i), x.CheckId, catalog.Resource{
		APIVersion: r.ApiVersion, Kind: r.Kind, Namespace: r.Namespace, Name: r.Name, SubPath: r.SubPath,
	}))
}

// expected returns the fingerprints of the open findings of cluster i
// after round r, each with its finding number.
func (f *fleet) expected(i, round int) map[string]int {
	lo, hi := f.window(i, round)
	out := make(map[string]int, hi-lo)
	for k := lo; k < hi; k++ {
		out[f.fingerprint(i, k)] = k
	}
	return out
}

// counts returns the severity counts of cluster i in round r.
func (f *fleet) counts(i, round int) *fleetscanv1.SeverityCounts {
	c := &fleetscanv1.SeverityCounts{}
	lo, hi := f.window(i, round)
	for k := lo; k < hi; k++ {
		switch f.catalog[k%len(f.catalog)].Severity {
		case fleetscanv1.Severity_SEVERITY_CRITICAL:
			c.Critical++
		case fleetscanv1.Severity_SEVERITY_HIGH:
			c.High++
		case fleetscanv1.Severity_SEVERITY_MEDIUM:
			c.Medium++
		case fleetscanv1.Severity_SEVERITY_LOW:
			c.Low++
		default:
			c.Info++
		}
	}
	return c
}
