package server_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server"
)

// TestPostureMetricsMatchAPI: after scans of the demo fleet, /metrics
// reports for every cluster the open findings by severity and by party,
// the score and the scan time that CompareClusters reports, and the
// tenant's and the fleet's scores that GetSummary reports; a registered
// cluster never scanned has an info series and no score or scan time.
func TestPostureMetricsMatchAPI(t *testing.T) {
	tf := newTenantFleetWith(t, func(c *server.Config) { c.MetricsListen = "127.0.0.1:0" })
	op := tf.ts.client(tf.ts.operatorToken())
	ctx := context.Background()
	register(t, op, "acme-new", "acme", nil) // never scanned
	got := parseMetrics(t, metricsOf(t, tf.ts))

	cmp, err := op.FindingService.CompareClusters(ctx, &fleetscanv1.CompareClustersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cmp.Clusters) != 4 {
		t.Fatalf("CompareClusters: %d clusters, want 4", len(cmp.Clusters))
	}
	scanned := 0
	for _, c := range cmp.Clusters {
		cl := fmt.Sprintf("cluster_id=%q,tenant=%q", c.ClusterId, c.Tenant)
		if v, ok := got["fleetscan_cluster_info"][cl]; !ok || v != 1 {
			t.Errorf("%s: fleetscan_cluster_info %v (present %v), want 1", c.ClusterId, v, ok)
		}
		score, hasScore := got["fleetscan_cluster_posture_score"][cl]
		at, hasTime := got["fleetscan_cluster_last_successful_scan_timestamp_seconds"][cl]
		if c.Score == 0 && c.ScanTime == nil {
			if hasScore || hasTime {
				t.Errorf("%s, never scanned: score %v (present %v), last scan %v (present %v); want neither", c.ClusterId, score, hasScore, at, hasTime)
			}
			for _, name := range []string{"fleetscan_cluster_open_findings", "fleetscan_cluster_open_findings_by_party"} {
				for labels := range got[name] {
					if strings.Contains(labels, fmt.Sprintf("cluster_id=%q", c.ClusterId)) {
						t.Errorf("%s, never scanned: %s{%s}", c.ClusterId, name, labels)
					}
				}
			}
			continue
		}
		scanned++
		if !hasScore || score != float64(c.Score) {
			t.Errorf("%s: fleetscan_cluster_posture_score %v (present %v), CompareClusters %d", c.ClusterId, score, hasScore, c.Score)
		}
		if want := float64(c.ScanTime.AsTime().UnixMilli()) / 1000; !hasTime || at != want {
			t.Errorf("%s: last successful scan %v (present %v), CompareClusters %v", c.ClusterId, at, hasTime, want)
		}
		open := int64(0)
		for sev, n := range map[string]int64{"critical": c.Counts.Critical, "high": c.Counts.High, "medium": c.Counts.Medium, "low": c.Counts.Low, "info": c.Counts.Info} {
			open += n
			key := fmt.Sprintf("cluster_id=%q,severity=%q,tenant=%q", c.ClusterId, sev, c.Tenant)
			if v, ok := got["fleetscan_cluster_open_findings"][key]; !ok || v != float64(n) {
				t.Errorf("%s: %s open findings %v (present %v), CompareClusters %d", c.ClusterId, sev, v, ok, n)
			}
		}
		if open == 0 {
			t.Errorf("%s: no open findings; the demo clusters have some", c.ClusterId)
		}
		byParty := map[string]int64{"provider": 0, "platform": 0, "workload": 0}
		for _, p := range c.Parties {
			pc := p.Counts
			byParty[strings.ToLower(strings.TrimPrefix(p.Party.String(), "RESPONSIBLE_PARTY_"))] += pc.Critical + pc.High + pc.Medium + pc.Low + pc.Info
		}
		for party, n := range byParty {
			key := fmt.Sprintf("cluster_id=%q,party=%q,tenant=%q", c.ClusterId, party, c.Tenant)
			if v, ok := got["fleetscan_cluster_open_findings_by_party"][key]; !ok || v != float64(n) {
				t.Errorf("%s: %s's open findings %v (present %v), CompareClusters %d", c.ClusterId, party, v, ok, n)
			}
		}
	}
	if scanned != 3 {
		t.Errorf("%d clusters scanned, want the 3 of the demo fleet", scanned)
	}

	for _, scope := range []struct {
		name, metric, labels string
		scope                *fleetscanv1.Scope
	}{
		{"fleet", "fleetscan_fleet_posture_score", "", &fleetscanv1.Scope{Scope: &fleetscanv1.Scope_Fleet{Fleet: true}}},
		{"acme", "fleetscan_tenant_posture_score", `tenant="acme"`, &fleetscanv1.Scope{Scope: &fleetscanv1.Scope_Tenant{Tenant: "acme"}}},
		{"globex", "fleetscan_tenant_posture_score", `tenant="globex"`, &fleetscanv1.Scope{Scope: &fleetscanv1.Scope_Tenant{Tenant: "globex"}}},
	} {
		s, err := op.FindingService.GetSummary(ctx, &fleetscanv1.GetSummaryRequest{Scope: scope.scope})
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := got[scope.metric][scope.labels]; !ok || v != float64(s.Score) {
			t.Errorf("%s: %s{%s} %v (present %v), GetSummary %d", scope.name, scope.metric, scope.labels, v, ok, s.Score)
		}
	}
	if tenants := slices.Sorted(maps.Keys(got["fleetscan_tenant_posture_score"])); !slices.Equal(tenants, []string{`tenant="acme"`, `tenant="globex"`}) {
		t.Errorf("tenant scores for %v, want acme and globex (the shared cluster has no tenant)", tenants)
	}
}

// parseMetrics parses a /metrics page into each family's series, keyed by
// their labels as `a="x",b="y"` in name order.
func parseMetrics(t *testing.T, page string) map[string]map[string]float64 {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(page))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	out := map[string]map[string]float64{}
	for name, f := range families {
		out[name] = map[string]float64{}
		for _, m := range f.Metric {
			var labels []string
			for _, l := range m.Label {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			slices.Sort(labels)
			var v float64
			switch {
			case m.Gauge != nil:
				v = m.Gauge.GetValue()
			case m.Counter != nil:
				v = m.Counter.GetValue()
			}
			out[name][strings.Join(labels, ",")] = v
		}
	}
	return out
}
