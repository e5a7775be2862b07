package checks_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// namespace and the others write manifests for the policy tests.
func namespace(name, labels string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata: {name: %s, labels: {%s}}\n", name, labels)
}

func deployment(ns, name, app string) string {
	return fmt.Sprintf("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: %s, namespace: %s}\nspec:\n  selector: {matchLabels: {app: %s}}\n  template:\n    metadata: {labels: {app: %s}}\n    spec: {containers: [{name: c, image: app:1}]}\n", name, ns, app, app)
}

// ingressFrom is a policy of ns that admits its pods' traffic from one
// peer.
func ingressFrom(ns, name, peer string) string {
	return fmt.Sprintf("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: %s, namespace: %s}\nspec:\n  podSelector: {}\n  ingress: [{from: [%s]}]\n", name, ns, peer)
}

// TestPolicyPeers: a peer matches nothing when no namespace its
// namespaceSelector selects (its policy's own namespace without one)
// runs a pod its podSelector selects; whatever the selectors require,
// however many policies name the same peer.
func TestPolicyPeers(t *testing.T) {
	cluster := []string{
		namespace("shop", "tier: frontend, team: a"),
		namespace("cart", "tier: frontend, team: b, env: prod"),
		namespace("ledger", "tier: data, env: staging"),
		namespace("monitoring", ""),
		deployment("shop", "web", "web"),
		deployment("cart", "gateway", "gateway"),
		deployment("ledger", "db", "db"),
		deployment("monitoring", "prometheus", "prometheus"),
	}
	const none = "NetworkPolicy %q names a peer that matches nothing: "
	for _, tc := range []struct {
		name     string
		policies []string
		want     []string
	}{{
		name: "one peer in the policies of several namespaces",
		policies: []string{
			ingressFrom("shop", "metrics", "{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}, podSelector: {matchLabels: {app: prometheus}}}"),
			ingressFrom("cart", "metrics", "{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}, podSelector: {matchLabels: {app: prometheus}}}"),
			ingressFrom("ledger", "metrics", "{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}, podSelector: {matchLabels: {app: promethues}}}"),
			ingressFrom("shop", "metrics-typo", "{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}, podSelector: {matchLabels: {app: promethues}}}"),
		},
		want: []string{
			"NET-004 LOW NetworkPolicy ledger/metrics spec.ingress[0].from[0]: " + fmt.Sprintf(none, "metrics") + "no pod in the namespaces with labels kubernetes.io/metadata.name=monitoring has labels app=promethues",
			"NET-004 LOW NetworkPolicy shop/metrics-typo spec.ingress[0].from[0]: " + fmt.Sprintf(none, "metrics-typo") + "no pod in the namespaces with labels kubernetes.io/metadata.name=monitoring has labels app=promethues",
		},
	}, {
		name: "a label of one of several values",
		policies: []string{
			ingressFrom("shop", "gateways", "{namespaceSelector: {matchExpressions: [{key: env, operator: In, values: [prod, staging]}]}, podSelector: {matchLabels: {app: gateway}}}"),
			ingressFrom("shop", "webs", "{namespaceSelector: {matchExpressions: [{key: env, operator: In, values: [prod, staging]}]}, podSelector: {matchLabels: {app: web}}}"),
		},
		want: []string{
			"NET-004 LOW NetworkPolicy shop/webs spec.ingress[0].from[0]: " + fmt.Sprintf(none, "webs") + "no pod in the namespaces with labels env in (prod,staging) has labels app=web",
		},
	}, {
		name: "requirements that name no value",
		policies: []string{
			ingressFrom("ledger", "unlabelled", "{namespaceSelector: {matchExpressions: [{key: env, operator: DoesNotExist}]}, podSelector: {matchLabels: {app: web}}}"),
			ingressFrom("ledger", "not-frontend", "{namespaceSelector: {matchExpressions: [{key: tier, operator: NotIn, values: [frontend]}]}, podSelector: {matchLabels: {app: gateway}}}"),
		},
		want: []string{
			"NET-004 LOW NetworkPolicy ledger/not-frontend spec.ingress[0].from[0]: " + fmt.Sprintf(none, "not-frontend") + "no pod in the namespaces with labels tier notin (frontend) has labels app=gateway",
		},
	}, {
		name: "every requirement holds",
		policies: []string{
			ingressFrom("ledger", "frontend-with-env", "{namespaceSelector: {matchLabels: {tier: frontend}, matchExpressions: [{key: env, operator: Exists}]}, podSelector: {matchLabels: {app: web}}}"),
			ingressFrom("ledger", "frontend", "{namespaceSelector: {matchLabels: {tier: frontend}}, podSelector: {matchLabels: {app: web}}}"),
		},
		want: []string{
			"NET-004 LOW NetworkPolicy ledger/frontend-with-env spec.ingress[0].from[0]: " + fmt.Sprintf(none, "frontend-with-env") + "no pod in the namespaces with labels env,tier=frontend has labels app=web",
		},
	}, {
		name: "no namespace selected, or all",
		policies: []string{
			ingressFrom("shop", "edge", "{namespaceSelector: {matchLabels: {tier: edge}}, podSelector: {matchLabels: {app: web}}}"),
			ingressFrom("shop", "anywhere", "{namespaceSelector: {}, podSelector: {matchLabels: {app: db}}}"),
			ingressFrom("shop", "nowhere", "{namespaceSelector: {}, podSelector: {matchLabels: {app: cache}}}"),
		},
		want: []string{
			"NET-004 LOW NetworkPolicy shop/edge spec.ingress[0].from[0]: " + fmt.Sprintf(none, "edge") + "no namespace has labels tier=edge",
			"NET-004 LOW NetworkPolicy shop/nowhere spec.ingress[0].from[0]: " + fmt.Sprintf(none, "nowhere") + "no pod in the namespaces with labels <none> has labels app=cache",
		},
	}, {
		name: "without a namespaceSelector, the policy's own namespace",
		policies: []string{
			ingressFrom("shop", "from-web", "{podSelector: {matchLabels: {app: web}}}"),
			ingressFrom("cart", "from-web", "{podSelector: {matchLabels: {app: web}}}"),
		},
		want: []string{
			"NET-004 LOW NetworkPolicy cart/from-web spec.ingress[0].from[0]: " + fmt.Sprintf(none, "from-web") + "no pod in namespace \"cart\" has labels app=web",
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := runChecks(t, slices.Concat(cluster, tc.policies), "NET-004")
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
