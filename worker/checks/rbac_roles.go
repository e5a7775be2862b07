package checks

import (
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
)

// rbacRoleChecks judge what roles grant, rule by rule. Built-in roles, as
// the bootstrap policy defines them, are left out (role.judged).
var rbacRoleChecks = []*Check{
	ruleCheck("RBAC-002", wildcardRule),
	{
		ID: "RBAC-003",
		inventory: func(r *reporter, inv *Inventory) {
			for _, ro := range r.rbac(inv).roles {
				sev := high
				if ro.Kind == "Role" {
					sev = medium
				}
				for i, rule := range ro.rules {
					if !ro.judged(rule) {
						continue
					}
					if what := readsSecrets(rule.PolicyRule); what != "" {
						r.reportAt(sev, ro.Resource, fmt.Sprintf("rules[%d]", i), "%s %q %s%s", ro.Kind, ro.Name, what, rule.origin())
					}
				}
			}
		},
	},
	ruleCheck("RBAC-004", createsWorkloads),
	ruleCheck("RBAC-005", execsIntoPods),
	ruleCheck("RBAC-006", func(rule rbacv1.PolicyRule) string {
		if ok, names := grantsSome(rule, "", "pods/portforward", "create", "get"); ok {
			return "can port-forward into pods" + namedOnly(names)
		}
		return ""
	}),
	{
		ID: "RBAC-007",
		inventory: func(r *reporter, inv *Inventory) {
			for _, ro := range r.rbac(inv).roles {
				for i, rule := range ro.rules {
					if !ro.judged(rule) {
						continue
					}
					sub := fmt.Sprintf("rules[%d]", i)
					switch what, writes := escalates(rule.PolicyRule), writesRBAC(rule.PolicyRule); {
					case what != "" && writes != "":
						r.report(ro.Resource, sub, "%s %q %s, and %s%s", ro.Kind, ro.Name, what, strings.TrimPrefix(writes, "can "), rule.origin())
					case what != "":
						r.report(ro.Resource, sub, "%s %q %s%s", ro.Kind, ro.Name, what, rule.origin())
					case writes != "":
						r.reportAt(high, ro.Resource, sub, "%s %q %s%s", ro.Kind, ro.Name, writes, rule.origin())
					}
				}
			}
		},
	},
	ruleCheck("RBAC-008", func(rule rbacv1.PolicyRule) string {
		what := allowedOn(rule, append(slices.Clone(workloadResources), groupResource{"", "events"}, groupResource{"events.k8s.io", "events"}), "delete", "deletecollection")
		if len(what) == 0 {
			return ""
		}
		return "can delete " + strings.Join(what, ", ")
	}),
	clusterRuleCheck("RBAC-009", createsPersistentVolumes),
	clusterRuleCheck("RBAC-010", proxiesToNodes),
	clusterRuleCheck("RBAC-011", approvesCSRs),
	clusterRuleCheck("RBAC-012", writesWebhooks),
	ruleCheck("RBAC-013", createsTokens),
	{
		ID: "RBAC-017",
		inventory: func(r *reporter, inv *Inventory) {
			resources := []groupResource{
				{"", "services"}, {"networking.k8s.io", "ingresses"}, {"networking.k8s.io", "networkpolicies"}, {"", "configmaps"},
			}
			for _, ro := range r.rbac(inv).roles {
				for i, rule := range ro.rules {
					if !ro.judged(rule) {
						continue
					}
					// Writing one named object is enough to redirect it.
					what := allowedOnAs(rule.PolicyRule, resources, true, writeVerbs...)
					if len(what) == 0 {
						continue
					}
					sev, extra := high, ""
					if slices.ContainsFunc(what, func(w string) bool { return strings.HasPrefix(w, "configmaps") }) && (ro.Kind == "ClusterRole" || ro.Namespace == "kube-system") {
						if names := clusterConfigMaps(rule.ResourceNames); len(names) > 0 {
							sev, extra = critical, ", kube-system's "+strings.Join(names, " and ")+" included"
						}
					}
					r.reportAt(sev, ro.Resource, fmt.Sprintf("rules[%d]", i), "%s %q can write %s%s%s", ro.Kind, ro.Name, strings.Join(what, ", "), extra, rule.origin())
				}
			}
		},
	},
}

// clusterConfigMaps returns which of kube-system's cluster-critical
// ConfigMaps a rule with these resourceNames reaches: coredns (the
// cluster's DNS) and aws-auth (EKS's mapping of IAM roles to groups).
func clusterConfigMaps(resourceNames []string) []string {
	var out []string
	for _, name := range []string{"coredns", "aws-auth"} {
		if len(resourceNames) == 0 || slices.Contains(resourceNames, name) {
			out = append(out, name)
		}
	}
	return out
}

// ruleCheck builds a check that reports every effective rule of a
// non-built-in role for which bad returns a description.
func ruleCheck(id string, bad func(rbacv1.PolicyRule) string) *Check {
	return ruleCheckOf(id, false, bad)
}

// clusterRuleCheck is ruleCheck for permissions on cluster-scoped
// resources, which only ClusterRoles can grant: a Role's rules apply to the
// namespaced resources of its namespace.
func clusterRuleCheck(id string, bad func(rbacv1.PolicyRule) string) *Check {
	return ruleCheckOf(id, true, bad)
}

func ruleCheckOf(id string, clusterScoped bool, bad func(rbacv1.PolicyRule) string) *Check {
	return &Check{
		ID: id,
		inventory: func(r *reporter, inv *Inventory) {
			for _, ro := range r.rbac(inv).roles {
				if clusterScoped && ro.Kind == "Role" {
					continue
				}
				for i, rule := range ro.rules {
					if !ro.judged(rule) {
						continue
					}
					if what := bad(rule.PolicyRule); what != "" {
						r.report(ro.Resource, fmt.Sprintf("rules[%d]", i), "%s %q %s%s", ro.Kind, ro.Name, what, rule.origin())
					}
				}
			}
		},
	}
}
