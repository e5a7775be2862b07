package harness

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

// verify checks what the server stored after round r against what the
// fleet produced: for every cluster, the open findings are exactly the
// round's (none lost, none twice, none unexpected, each as produced), and
// from round 2 on the resolved findings, the diff with the previous scan
// and the trend reflect the churn.
func (h *run) verify(ctx context.Context, round int, prevScan string, rd *Round) error {
	var mu sync.Mutex
	var problems []string
	var lost, dup, unexpected, changed int
	var open int64
	report := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	err := parallel(ctx, h.cfg.Clusters, 4, func(ctx context.Context, i int) error {
		id := h.clusterID(i)
		lo, _ := h.fleet.window(i, round)
		want := h.fleet.expected(i, round)
		seen := make(map[string]int, len(want))
		var l, d, u, c int
		for f, err := range h.op.Findings(ctx, &fleetscanv1.ListFindingsRequest{ClusterId: id, PageSize: 1000}) {
			if err != nil {
				return fmt.Errorf("list findings of %s: %w", id, err)
			}
			seen[f.Fingerprint]++
			k, ok := want[f.Fingerprint]
			switch {
			case !ok:
				u++
			case seen[f.Fingerprint] > 1:
				d++
			default:
				exp := h.produced[0][k]
				if f.CheckId != exp.CheckId || f.Message != exp.Message || f.Severity != exp.Severity || !proto.Equal(f.Resource, exp.Resource) {
					c++
				}
			}
		}
		for fp := range want {
			if seen[fp] == 0 {
				l++
			}
		}
		if l+d+u+c > 0 {
			report("%s: %d lost, %d duplicated, %d unexpected, %d changed of %d", id, l, d, u, c, len(want))
		}
		mu.Lock()
		lost, dup, unexpected, changed = lost+l, dup+d, unexpected+u, changed+c
		open += int64(len(seen))
		mu.Unlock()
		if round == 1 {
			return nil
		}
		// Resolved: every finding that left the window so far.
		resolved := 0
		for f, err := range h.op.Findings(ctx, &fleetscanv1.ListFindingsRequest{ClusterId: id, PageSize: 1000, Status: fleetscanv1.FindingStatus_FINDING_STATUS_RESOLVED}) {
			if err != nil {
				return fmt.Errorf("list resolved findings of %s: %w", id, err)
			}
			resolved++
			if _, ok := want[f.Fingerprint]; ok {
				report("%s: finding %s both open and resolved", id, f.Fingerprint)
			}
		}
		if resolved != lo {
			report("%s: %d resolved findings, want %d", id, resolved, lo)
		}
		diff, err := h.op.FindingService.DiffScans(ctx, &fleetscanv1.DiffScansRequest{BaseScanId: prevScan, HeadScanId: rd.ScanID, ClusterId: id})
		if err != nil {
			return fmt.Errorf("diff scans of %s: %w", id, err)
		}
		churn, size := int64(h.fleet.churnOf(i)), int64(h.fleet.size(i))
		if diff.NewCount != churn || diff.ResolvedCount != churn || diff.UnchangedCount != size-churn {
			report("%s: diff new %d resolved %d unchanged %d, want %d, %d, %d", id, diff.NewCount, diff.ResolvedCount, diff.UnchangedCount, churn, churn, size-churn)
		}
		for _, f := range diff.New {
			if _, ok := want[f.Fingerprint]; !ok {
				report("%s: diff lists %s as new, which the worker did not produce", id, f.Fingerprint)
			}
		}
		trend, err := h.op.FindingService.GetTrend(ctx, &fleetscanv1.GetTrendRequest{Scope: &fleetscanv1.Scope{Scope: &fleetscanv1.Scope_ClusterId{ClusterId: id}}})
		if err != nil {
			return fmt.Errorf("trend of %s: %w", id, err)
		}
		pts := trend.GetPoints()
		if want := h.fleet.counts(i, round); len(pts) == 0 || !proto.Equal(pts[len(pts)-1].Counts, want) {
			report("%s: trend ends with %v, want %v", id, lastCounts(pts), want)
		}
		return nil
	})
	if err != nil {
		return err
	}
	rd.Verified = fmt.Sprintf("%d clusters, %d open findings: %d lost, %d duplicated, %d unexpected, %d changed", h.cfg.Clusters, open, lost, dup, unexpected, changed)
	if round > 1 {
		rd.Verified += fmt.Sprintf("; resolved, diffs (%d new, %d resolved per cluster) and trends as churned", h.fleet.churn, h.fleet.churn)
	}
	if want := h.fleet.total(); rd.Findings != want {
		problems = append(problems, fmt.Sprintf("the scan's jobs count %d findings, want %d", rd.Findings, want))
	}
	if len(problems) > 0 {
		return errors.New("verification failed: " + rd.Verified + "\n  " + strings.Join(problems, "\n  "))
	}
	return nil
}

func lastCounts(pts []*fleetscanv1.TrendPoint) *fleetscanv1.SeverityCounts {
	if len(pts) == 0 {
		return nil
	}
	return pts[len(pts)-1].Counts
}
