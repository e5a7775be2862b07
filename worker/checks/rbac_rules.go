package checks

import (
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/component-helpers/auth/rbac/validation"
)

// What a rule grants is decided by the API server's own comparison of
// rules (validation.Covers, which its escalation check uses): wildcards,
// "*/subresource", resourceNames and nonResourceURLs mean exactly what
// they mean to the authorizer. "pods/*" is not a wildcard; a rule limited
// to resourceNames grants those objects, not every object of the resource.

// grants reports whether rule grants one of verbs on every object of
// resource in group.
func grants(rule rbacv1.PolicyRule, group, resource string, verbs ...string) bool {
	for _, verb := range verbs {
		if covers(rule, rbacv1.PolicyRule{Verbs: []string{verb}, APIGroups: []string{group}, Resources: []string{resource}}) {
			return true
		}
	}
	return false
}

// grantsSome is grants for permissions that are dangerous on one object
// as on all (exec into a pod, write a webhook): it also reports a rule
// limited to resourceNames, and returns those names (nil: every object).
func grantsSome(rule rbacv1.PolicyRule, group, resource string, verbs ...string) (bool, []string) {
	if grants(rule, group, resource, verbs...) {
		return true, nil
	}
	if len(rule.ResourceNames) == 0 {
		return false, nil
	}
	for _, verb := range verbs {
		if covers(rule, rbacv1.PolicyRule{Verbs: []string{verb}, APIGroups: []string{group}, Resources: []string{resource}, ResourceNames: rule.ResourceNames}) {
			return true, rule.ResourceNames
		}
	}
	return false, nil
}

// covers reports whether owner grants all that servant does, as the API
// server's escalation check (validation.Covers) decides. The checks ask
// it of one verb on one resource, for every rule of every role, so that
// case is decided here without breaking the rules down into new ones
// (at 10,000 objects Covers was 15% of a scan's allocations);
// TestCoversAsValidation holds the two equal.
func covers(owner, servant rbacv1.PolicyRule) bool {
	if len(servant.Verbs) != 1 || len(servant.APIGroups) != 1 || len(servant.Resources) != 1 || len(servant.NonResourceURLs) != 0 {
		ok, _ := validation.Covers([]rbacv1.PolicyRule{owner}, []rbacv1.PolicyRule{servant})
		return ok
	}
	if !slices.Contains(owner.Verbs, rbacv1.VerbAll) && !slices.Contains(owner.Verbs, servant.Verbs[0]) ||
		!slices.Contains(owner.APIGroups, rbacv1.APIGroupAll) && !slices.Contains(owner.APIGroups, servant.APIGroups[0]) {
		return false
	}
	if r := servant.Resources[0]; !slices.Contains(owner.Resources, rbacv1.ResourceAll) && !slices.Contains(owner.Resources, r) {
		_, sub, ok := strings.Cut(r, "/")
		if !ok || !slices.Contains(owner.Resources, "*/"+sub) {
			return false
		}
	}
	if len(owner.ResourceNames) == 0 {
		return true
	}
	if len(servant.ResourceNames) == 0 {
		return false
	}
	for _, n := range servant.ResourceNames {
		if !slices.Contains(owner.ResourceNames, n) {
			return false
		}
	}
	return true
}

// everything is what cluster-admin grants on resources.
var everything = rbacv1.PolicyRule{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}}

// grantsEverything reports whether rules grant every verb on every
// resource: a role that does is cluster-admin by effect, whatever its name.
func grantsEverything(rules []effectiveRule) bool {
	return slices.ContainsFunc(rules, func(r effectiveRule) bool { return covers(r.PolicyRule, everything) })
}

// groupResource is a resource of an API group.
type groupResource struct{ group, resource string }

// allowedOn lists the resources of which a rule grants one of verbs, on
// every object.
func allowedOn(rule rbacv1.PolicyRule, resources []groupResource, verbs ...string) []string {
	return allowedOnAs(rule, resources, false, verbs...)
}

// allowedOnAs is allowedOn; with named, a rule limited to resourceNames
// counts too, the names following the resource ("configmaps coredns").
func allowedOnAs(rule rbacv1.PolicyRule, resources []groupResource, named bool, verbs ...string) []string {
	var out []string
	for _, gr := range resources {
		var ok bool
		var names []string
		if named {
			ok, names = grantsSome(rule, gr.group, gr.resource, verbs...)
		} else {
			ok = grants(rule, gr.group, gr.resource, verbs...)
		}
		what := gr.resource
		if len(names) > 0 {
			what += " " + strings.Join(names, ", ")
		}
		if ok && !slices.Contains(out, what) {
			out = append(out, what)
		}
	}
	return out
}

// namedOnly says "named N, M" of a grant limited to resourceNames.
func namedOnly(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return " (named " + strings.Join(names, ", ") + ")"
}

// workloadResources are the resources whose objects run pods.
var workloadResources = []groupResource{
	{"", "pods"}, {"", "replicationcontrollers"}, {"apps", "deployments"}, {"apps", "replicasets"},
	{"apps", "statefulsets"}, {"apps", "daemonsets"}, {"batch", "jobs"}, {"batch", "cronjobs"},
}

// rbacResources are the objects that grant permissions.
var rbacResources = []groupResource{
	{"rbac.authorization.k8s.io", "roles"}, {"rbac.authorization.k8s.io", "clusterroles"},
	{"rbac.authorization.k8s.io", "rolebindings"}, {"rbac.authorization.k8s.io", "clusterrolebindings"},
}

// writeVerbs are the verbs that change objects.
var writeVerbs = []string{"create", "update", "patch", "delete", "deletecollection"}

// The permissions that RBAC rule checks flag, each as the phrase a message
// completes "<role> ..." with, or "" when the rule does not grant it.

func wildcardRule(rule rbacv1.PolicyRule) string {
	var fields []string
	for _, f := range []struct {
		name string
		list []string
	}{{"apiGroups", rule.APIGroups}, {"resources", rule.Resources}, {"verbs", rule.Verbs}} {
		if slices.Contains(f.list, "*") {
			fields = append(fields, f.name)
		}
	}
	if len(fields) == 0 {
		return ""
	}
	return "uses a wildcard in " + strings.Join(fields, ", ")
}

// readsSecrets: reading one named Secret is not reading secrets; every
// Secret, service account tokens included, is.
func readsSecrets(rule rbacv1.PolicyRule) string {
	if grants(rule, "", "secrets", "get", "list", "watch") {
		return "can read secrets"
	}
	return ""
}

func execsIntoPods(rule rbacv1.PolicyRule) string {
	var subs []string
	var names []string
	for _, sub := range []string{"pods/exec", "pods/attach"} {
		if ok, n := grantsSome(rule, "", sub, "create", "get"); ok {
			subs, names = append(subs, sub), n
		}
	}
	if len(subs) == 0 {
		return ""
	}
	return "can use " + strings.Join(subs, " and ") + namedOnly(names)
}

// escalates: bind and escalate lift the API server's escalation check;
// impersonation acts as anyone; writing roles and bindings grants what
// the writer holds to anyone, itself included, and with bind or escalate
// anything.
func escalates(rule rbacv1.PolicyRule) string {
	var what []string
	for _, res := range []string{"roles", "clusterroles"} {
		for _, verb := range []string{"bind", "escalate"} {
			if ok, names := grantsSome(rule, "rbac.authorization.k8s.io", res, verb); ok {
				what = append(what, verb+" "+res+namedOnly(names))
			}
		}
	}
	for _, gr := range []groupResource{{"", "users"}, {"", "groups"}, {"", "serviceaccounts"}, {"authentication.k8s.io", "uids"}} {
		if ok, names := grantsSome(rule, gr.group, gr.resource, "impersonate"); ok {
			what = append(what, "impersonate "+gr.resource+namedOnly(names))
		}
	}
	if len(what) == 0 {
		return ""
	}
	return "can " + strings.Join(what, ", ")
}

// writesRBAC lists what a rule may write of roles and bindings.
func writesRBAC(rule rbacv1.PolicyRule) string {
	what := allowedOnAs(rule, rbacResources, true, "create", "update", "patch")
	if len(what) == 0 {
		return ""
	}
	return "can create, update or patch " + strings.Join(what, ", ")
}

func proxiesToNodes(rule rbacv1.PolicyRule) string {
	if ok, names := grantsSome(rule, "", "nodes/proxy", "get", "create", "update", "patch", "delete"); ok {
		return "can use nodes/proxy" + namedOnly(names)
	}
	return ""
}

func writesWebhooks(rule rbacv1.PolicyRule) string {
	what := allowedOnAs(rule, []groupResource{
		{"admissionregistration.k8s.io", "validatingwebhookconfigurations"},
		{"admissionregistration.k8s.io", "mutatingwebhookconfigurations"},
	}, true, writeVerbs...)
	if len(what) == 0 {
		return ""
	}
	return "can write " + strings.Join(what, " and ")
}

func createsTokens(rule rbacv1.PolicyRule) string {
	if ok, names := grantsSome(rule, "", "serviceaccounts/token", "create"); ok {
		return "can create service account tokens" + namedOnly(names)
	}
	return ""
}

func createsWorkloads(rule rbacv1.PolicyRule) string {
	if what := allowedOn(rule, workloadResources, "create"); len(what) > 0 {
		return "can create " + strings.Join(what, ", ")
	}
	return ""
}

func createsPersistentVolumes(rule rbacv1.PolicyRule) string {
	if grants(rule, "", "persistentvolumes", "create") {
		return "can create persistentvolumes"
	}
	return ""
}

func approvesCSRs(rule rbacv1.PolicyRule) string {
	if ok, names := grantsSome(rule, "certificates.k8s.io", "certificatesigningrequests/approval", "update", "patch"); ok {
		return "can approve certificate signing requests" + namedOnly(names)
	}
	return ""
}

// power is a permission that hands a cluster, or a namespace, to whoever
// holds it.
type power struct {
	// clusterScoped powers are over cluster-scoped resources, which a
	// RoleBinding cannot grant.
	clusterScoped bool
	grants        func(rbacv1.PolicyRule) string
}

// takeoverPowers are what RBAC-002, 003, 004, 005, 007, 009, 010, 011, 012
// and 013 flag: creating pods in a namespace runs them as any of its
// service accounts, so it is as good as holding all their permissions.
var takeoverPowers = []power{
	{false, wildcardRule}, {false, readsSecrets}, {false, execsIntoPods}, {false, escalates}, {false, writesRBAC},
	{false, createsWorkloads}, {true, createsPersistentVolumes}, {true, proxiesToNodes}, {true, approvesCSRs},
	{true, writesWebhooks}, {false, createsTokens},
}

// takeover describes what a binding grants of takeoverPowers, or nil.
// Through a RoleBinding it grants only namespaced resources, and no
// non-resource URL.
func takeover(b *binding, roles map[string]*role) []string {
	ro := roles[b.roleKey()]
	if ro == nil {
		if b.roleRef.Kind == "ClusterRole" && b.roleRef.Name == "cluster-admin" {
			return []string{"every permission"} // the built-in role, not in the input
		}
		return nil
	}
	if grantsEverything(ro.rules) {
		return []string{"every permission"}
	}
	namespaced := b.Kind == "RoleBinding"
	var what []string
	for _, rule := range ro.rules {
		if namespaced && len(rule.Resources) == 0 {
			continue
		}
		for _, p := range takeoverPowers {
			if namespaced && p.clusterScoped {
				continue
			}
			if d := p.grants(rule.PolicyRule); d != "" && !slices.Contains(what, d) {
				what = append(what, d)
			}
		}
	}
	return what
}
