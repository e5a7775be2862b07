package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/labels"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/auth"
	"github.com/fleetscan/fleetscan/server/internal/history"
	"github.com/fleetscan/fleetscan/server/internal/store"
	"github.com/fleetscan/fleetscan/worker/catalog"
)

// HistoryStore is what the history RPCs read.
type HistoryStore interface {
	GetFinding(ctx context.Context, clusterID string, fingerprint [catalog.FingerprintSize]byte, limit int, reader string) (store.FindingView, []store.Sighting, int, error)
	DiffScans(ctx context.Context, baseScan, headScan ulid.ULID, clusterID string, keep func(*storagev1.ClusterRecord) bool) (*store.Diff, error)
	GetCluster(ctx context.Context, id string) (*storagev1.ClusterRecord, error)
	Histories(ctx context.Context, keep func(*storagev1.ClusterRecord) bool, sinceMs int64) ([]store.ClusterHistory, error)
	LatestJobs(ctx context.Context, keep func(*storagev1.ClusterRecord) bool) ([]store.Latest, error)
	SummariesBefore(ctx context.Context, keep func(*storagev1.ClusterRecord) bool, atMs int64) (map[string]store.Summary, error)
}

const (
	maxSightings = 100
	// maxDiffFindings bounds each list of a diff, so that the response
	// stays far below the clients' default 4 MiB message limit.
	maxDiffFindings = 1000
)

// GetFinding returns a finding and the scans that saw it.
func (s *FindingServer) GetFinding(ctx context.Context, req *fleetscanv1.GetFindingRequest) (*fleetscanv1.GetFindingResponse, error) {
	if req.ClusterId == "" {
		return nil, toStatus(s.log, "GetFinding", invalid("cluster_id: required"))
	}
	fp, ok := catalog.ParseFingerprint(req.Fingerprint)
	if !ok {
		return nil, toStatus(s.log, "GetFinding", invalid("fingerprint: want 32 hexadecimal digits, got %q", req.Fingerprint))
	}
	p, _ := auth.FromContext(ctx)
	cluster, err := s.history.GetCluster(ctx, req.ClusterId)
	if err != nil {
		return nil, toStatus(s.log, "GetFinding", store.NotFoundf("finding %s of cluster %q", req.Fingerprint, req.ClusterId))
	}
	access, namespaces := p.ClusterAccess(cluster)
	view, sightings, total, err := s.history.GetFinding(ctx, req.ClusterId, fp, maxSightings, readerOf(p))
	if err == nil && (access == auth.NoAccess || (access == auth.NamespaceAccess && !slices.Contains(namespaces, view.Record.GetResource().GetNamespace()))) {
		err = store.ErrNotFound // out of scope: the same as absent
	}
	if errors.Is(err, store.ErrNotFound) {
		// One message whatever was missing: the cluster, the finding or
		// the caller's right to see either.
		err = store.NotFoundf("finding %s of cluster %q", req.Fingerprint, req.ClusterId)
	}
	if err != nil {
		return nil, toStatus(s.log, "GetFinding", err)
	}
	resp := &fleetscanv1.GetFindingResponse{Finding: findingToProto(view), SightingsTotal: int64(total)}
	for _, st := range sightings {
		resp.Sightings = append(resp.Sightings, &fleetscanv1.Sighting{ScanId: st.ScanID.String(), Time: ts(st.FinishMs)})
	}
	for _, iv := range view.Record.History {
		resp.PreviousIntervals = append(resp.PreviousIntervals, &fleetscanv1.OpenInterval{
			FirstSeenTime: ts(iv.FirstSeenMs), LastSeenTime: ts(iv.LastSeenMs), ResolvedTime: ts(iv.ResolvedMs),
		})
	}
	return resp, nil
}

// DiffScans compares two scans of a cluster.
func (s *FindingServer) DiffScans(ctx context.Context, req *fleetscanv1.DiffScansRequest) (*fleetscanv1.DiffScansResponse, error) {
	base, err := parseScanID("base_scan_id", req.BaseScanId)
	if err != nil {
		return nil, toStatus(s.log, "DiffScans", err)
	}
	head, err := parseScanID("head_scan_id", req.HeadScanId)
	if err != nil {
		return nil, toStatus(s.log, "DiffScans", err)
	}
	p, _ := auth.FromContext(ctx)
	// Diffs are per cluster: a tenant diffs the clusters it owns.
	d, err := s.history.DiffScans(ctx, base, head, req.ClusterId, p.SeesAll)
	if err != nil {
		return nil, toStatus(s.log, "DiffScans", err)
	}
	resp := &fleetscanv1.DiffScansResponse{
		ClusterId: d.ClusterID, UnchangedCount: int64(d.UnchangedCount),
		NewCount: int64(len(d.New)), ResolvedCount: int64(len(d.Resolved)),
	}
	for _, v := range d.New[:min(len(d.New), maxDiffFindings)] {
		resp.New = append(resp.New, findingToProto(v))
	}
	for _, v := range d.Resolved[:min(len(d.Resolved), maxDiffFindings)] {
		resp.Resolved = append(resp.Resolved, findingToProto(v))
	}
	return resp, nil
}

func parseScanID(field, id string) (ulid.ULID, error) {
	if id == "" {
		return ulid.ULID{}, invalid("%s: required", field)
	}
	parsed, err := store.ParseID(id)
	if err != nil {
		return parsed, fmt.Errorf("%s: %w", field, err)
	}
	return parsed, nil
}

// scopeFilter turns a Scope into a cluster predicate.
func scopeFilter(scope *fleetscanv1.Scope) (func(*storagev1.ClusterRecord) bool, error) {
	switch sc := scope.GetScope().(type) {
	case *fleetscanv1.Scope_ClusterId:
		return func(c *storagev1.ClusterRecord) bool { return c.Id == sc.ClusterId }, nil
	case *fleetscanv1.Scope_Tenant:
		return func(c *storagev1.ClusterRecord) bool { return c.Tenant == sc.Tenant }, nil
	case *fleetscanv1.Scope_Fleet:
		if sc.Fleet {
			return func(*storagev1.ClusterRecord) bool { return true }, nil
		}
	}
	return nil, invalid("scope: give cluster_id, tenant or fleet")
}

// readerOf is the tenant whose view a principal reads, "" for operators.
func readerOf(p auth.Principal) string {
	if p.IsOperator() {
		return ""
	}
	return p.Tenant
}

// both is the conjunction of two cluster predicates.
func both(a, b func(*storagev1.ClusterRecord) bool) func(*storagev1.ClusterRecord) bool {
	return func(c *storagev1.ClusterRecord) bool { return a(c) && b(c) }
}

// GetTrend returns the posture over time.
func (s *FindingServer) GetTrend(ctx context.Context, req *fleetscanv1.GetTrendRequest) (*fleetscanv1.GetTrendResponse, error) {
	keep, err := scopeFilter(req.Scope)
	if err != nil {
		return nil, toStatus(s.log, "GetTrend", err)
	}
	now := time.Now()
	since := now.AddDate(0, 0, -30)
	if req.Since != nil {
		since = req.Since.AsTime()
	}
	if since.After(now) || now.Sub(since) > 5*366*24*time.Hour {
		return nil, toStatus(s.log, "GetTrend", invalid("since: must be in the last 5 years"))
	}
	bucket := 24 * time.Hour
	switch req.Bucket {
	case fleetscanv1.TrendBucket_TREND_BUCKET_UNSPECIFIED, fleetscanv1.TrendBucket_TREND_BUCKET_DAY:
	case fleetscanv1.TrendBucket_TREND_BUCKET_WEEK:
		bucket = 7 * 24 * time.Hour
	default:
		return nil, toStatus(s.log, "GetTrend", invalid("bucket: unknown value %d", req.Bucket))
	}
	p, _ := auth.FromContext(ctx)
	histories, err := s.history.Histories(ctx, both(keep, p.SeesAll), since.Add(-bucket).UnixMilli())
	if err != nil {
		return nil, toStatus(s.log, "GetTrend", err)
	}
	if len(histories) == 0 {
		return nil, toStatus(s.log, "GetTrend", notFoundScope(req.Scope))
	}
	resp := &fleetscanv1.GetTrendResponse{}
	for _, p := range history.Trend(histories, since, now, bucket) {
		point := &fleetscanv1.TrendPoint{Time: ts(p.Start.UnixMilli()), Clusters: int32(p.Clusters), Scans: int32(p.Scans)}
		if p.Clusters > 0 {
			// A gap stays a gap: no invented zero findings, score 100.
			point.Counts, point.Score = p.Counts, proto.Int32(p.Score)
		}
		resp.Points = append(resp.Points, point)
	}
	return resp, nil
}

func notFoundScope(scope *fleetscanv1.Scope) error {
	if id := scope.GetClusterId(); id != "" {
		return store.NotFoundf("cluster %q", id)
	}
	if t := scope.GetTenant(); t != "" {
		return store.NotFoundf("tenant %q", t)
	}
	return store.NotFoundf("clusters")
}

// CompareClusters ranks clusters and builds the check matrix.
func (s *FindingServer) CompareClusters(ctx context.Context, req *fleetscanv1.CompareClustersRequest) (*fleetscanv1.CompareClustersResponse, error) {
	sel, err := labels.Parse(req.LabelSelector)
	if err != nil {
		return nil, toStatus(s.log, "CompareClusters", invalid("label_selector: %v", err))
	}
	if req.BaselineTime != nil {
		if err := req.BaselineTime.CheckValid(); err != nil {
			return nil, toStatus(s.log, "CompareClusters", invalid("baseline_time: %v", err))
		}
		if at := req.BaselineTime.AsTime(); at.After(time.Now()) || time.Since(at) > 5*366*24*time.Hour {
			return nil, toStatus(s.log, "CompareClusters", invalid("baseline_time: must be in the last 5 years"))
		}
	}
	p, _ := auth.FromContext(ctx)
	keep := func(c *storagev1.ClusterRecord) bool {
		return p.SeesAll(c) && (req.Tenant == "" || c.Tenant == req.Tenant) && sel.Matches(labels.Set(c.Labels))
	}
	latest, err := s.history.LatestJobs(ctx, keep)
	if err != nil {
		return nil, toStatus(s.log, "CompareClusters", err)
	}
	var before map[string]store.Summary
	if req.BaselineTime != nil {
		if before, err = s.history.SummariesBefore(ctx, keep, req.BaselineTime.AsTime().UnixMilli()); err != nil {
			return nil, toStatus(s.log, "CompareClusters", err)
		}
	}
	ranked, matrix := history.Compare(latest)
	resp := &fleetscanv1.CompareClustersResponse{}
	for _, p := range ranked {
		cp := &fleetscanv1.ClusterPosture{ClusterId: p.ClusterID, Tenant: p.Tenant, Counts: p.Counts, ObjectsScanned: p.Objects}
		if p.Scanned {
			cp.Score, cp.ScanTime = p.Score, ts(p.ScanMs)
			cp.Parties = partiesToProto(p.Parties)
		}
		if b, ok := before[p.ClusterID]; ok {
			// The trend's score of the same summary, so that a mover's
			// "before" is the point GetTrend draws for that day.
			cp.BaselineScore, cp.BaselineScanTime = proto.Int32(history.Score(b.Counts, b.Objects)), ts(b.FinishMs)
		}
		resp.Clusters = append(resp.Clusters, cp)
	}
	for _, r := range matrix {
		resp.Checks = append(resp.Checks, &fleetscanv1.CheckRow{CheckId: r.CheckID, Counts: r.Counts, Total: r.Total})
	}
	return resp, nil
}

// GetSummary returns the current posture of a scope.
func (s *FindingServer) GetSummary(ctx context.Context, req *fleetscanv1.GetSummaryRequest) (*fleetscanv1.GetSummaryResponse, error) {
	keep, err := scopeFilter(req.Scope)
	if err != nil {
		return nil, toStatus(s.log, "GetSummary", err)
	}
	p, _ := auth.FromContext(ctx)
	latest, err := s.history.LatestJobs(ctx, both(keep, p.SeesAll))
	if err != nil {
		return nil, toStatus(s.log, "GetSummary", err)
	}
	if len(latest) == 0 {
		return nil, toStatus(s.log, "GetSummary", notFoundScope(req.Scope))
	}
	sum := history.Summarize(latest, 10)
	resp := &fleetscanv1.GetSummaryResponse{Counts: sum.Counts, Score: sum.Score, Clusters: int32(sum.Clusters), ClustersScanned: int32(sum.ClustersScanned),
		Parties: partiesToProto(sum.Parties), PartiesClusters: int32(sum.PartiesClusters)}
	for _, r := range sum.TopChecks {
		resp.TopChecks = append(resp.TopChecks, &fleetscanv1.CheckCount{CheckId: r.CheckID, Count: r.Total})
	}
	return resp, nil
}

func partiesToProto(ps []history.Party) []*fleetscanv1.PartyCounts {
	var out []*fleetscanv1.PartyCounts
	for _, p := range ps {
		out = append(out, &fleetscanv1.PartyCounts{Party: p.Party, Counts: p.Counts})
	}
	return out
}
