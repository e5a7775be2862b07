package server_test

import (
	"context"
	"testing"

	"google.golang.org/protobuf/proto"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	posture "github.com/fleetscan/fleetscan/server/internal/history"
)

// TestPartiesAddUp: a cluster's open findings by responsible party add up
// to its open findings, in CompareClusters and in GetSummary, for the
// operator and for a tenant, and the demo clusters have findings for more
// than one party (the shared-responsibility view's data).
func TestPartiesAddUp(t *testing.T) {
	tf := newTenantFleet(t)
	ctx := context.Background()
	for who, token := range map[string]string{"operator": tf.ts.operatorToken(), "acme": tf.acme} {
		c := tf.ts.client(token)
		cmp, err := c.FindingService.CompareClusters(ctx, &fleetscanv1.CompareClustersRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, cl := range cmp.Clusters {
			sum := &fleetscanv1.SeverityCounts{}
			for _, p := range cl.Parties {
				posture.Add(sum, p.Counts)
			}
			sum.Suppressed = cl.Counts.GetSuppressed()
			if !proto.Equal(sum, cl.Counts) {
				t.Errorf("%s, %s: parties add up to %v, open findings are %v", who, cl.ClusterId, sum, cl.Counts)
			}
			if len(cl.Parties) < 2 {
				t.Errorf("%s, %s: findings of %d parties, want the demo's several", who, cl.ClusterId, len(cl.Parties))
			}
		}
		s, err := c.FindingService.GetSummary(ctx, &fleetscanv1.GetSummaryRequest{Scope: &fleetscanv1.Scope{Scope: &fleetscanv1.Scope_Fleet{Fleet: true}}})
		if err != nil {
			t.Fatal(err)
		}
		sum := &fleetscanv1.SeverityCounts{}
		for _, p := range s.Parties {
			posture.Add(sum, p.Counts)
		}
		sum.Suppressed = s.Counts.GetSuppressed()
		if !proto.Equal(sum, s.Counts) || s.PartiesClusters != s.ClustersScanned {
			t.Errorf("%s: the fleet's parties add up to %v over %d clusters; open findings are %v over %d", who, sum, s.PartiesClusters, s.Counts, s.ClustersScanned)
		}
	}
}
