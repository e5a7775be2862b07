package checks

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// role is a Role or ClusterRole seen through what the RBAC checks need.
type role struct {
	Resource
	// rules are the role's effective rules: its own and, for a ClusterRole
	// with an aggregationRule, those of the ClusterRoles it aggregates.
	rules []effectiveRule
	// builtin marks the roles Kubernetes itself creates; they are not the
	// cluster owner's choice and are left out of rule checks.
	builtin bool
}

// effectiveRule is one rule a role grants, and where it comes from.
type effectiveRule struct {
	rbacv1.PolicyRule
	// from names the ClusterRole an aggregated rule comes from; empty for
	// the role's own rules.
	from string
}

// origin is what a message adds about where the rule comes from.
func (e effectiveRule) origin() string {
	if e.from == "" {
		return ""
	}
	return fmt.Sprintf(" (rule aggregated from ClusterRole %q)", e.from)
}

func (inv *Inventory) roles() []role {
	effective := inv.clusterRoleRules()
	var out []role
	for i := range inv.ClusterRoles {
		o := &inv.ClusterRoles[i]
		out = append(out, role{
			Resource: resourceOf("rbac.authorization.k8s.io/v1", "ClusterRole", &o.ObjectMeta),
			rules:    effective[o.Name],
			builtin:  builtinRBAC(o.Name, o.Labels),
		})
	}
	for i := range inv.Roles {
		o := &inv.Roles[i]
		out = append(out, role{
			Resource: resourceOf("rbac.authorization.k8s.io/v1", "Role", &o.ObjectMeta),
			rules:    ownRules(o.Rules),
			builtin:  builtinRBAC(o.Name, o.Labels),
		})
	}
	return out
}

func ownRules(rules []rbacv1.PolicyRule) []effectiveRule {
	out := make([]effectiveRule, len(rules))
	for i, rule := range rules {
		out[i] = effectiveRule{PolicyRule: rule}
	}
	return out
}

// clusterRoleRules computes in one pass over the inventory the effective
// rules of every ClusterRole, by name. The API server authorizes with what a
// ClusterRole stores; for one with an aggregationRule, the aggregation
// controller stores the rules of every other ClusterRole that one of its
// clusterRoleSelectors matches, selector by selector, by name, without
// duplicates, and nested aggregations resolve (admin aggregates edit, which
// aggregates view). The stored rules come first, each attributed to the
// source role that holds it too; rules of sources that are not stored yet
// (a manifest, whose rules the controller has not filled) follow. On a live
// cluster the two lists agree, so rules[i] names the stored rule.
func (inv *Inventory) clusterRoleRules() map[string][]effectiveRule {
	byName := make(map[string]*rbacv1.ClusterRole, len(inv.ClusterRoles))
	names := make([]string, 0, len(inv.ClusterRoles))
	for i := range inv.ClusterRoles {
		o := &inv.ClusterRoles[i]
		byName[o.Name] = o
		names = append(names, o.Name)
	}
	slices.Sort(names)
	done := make(map[string][]effectiveRule, len(byName))
	resolving := map[string]bool{}
	var resolve func(cr *rbacv1.ClusterRole) []effectiveRule
	resolve = func(cr *rbacv1.ClusterRole) []effectiveRule {
		if rules, ok := done[cr.Name]; ok {
			return rules
		}
		rules := ownRules(cr.Rules)
		if cr.AggregationRule == nil {
			done[cr.Name] = rules
			return rules
		}
		if resolving[cr.Name] {
			// A cycle of aggregations adds nothing beyond what is stored.
			return rules
		}
		resolving[cr.Name] = true
		defer delete(resolving, cr.Name)
		for _, sel := range cr.AggregationRule.ClusterRoleSelectors {
			s, err := metav1.LabelSelectorAsSelector(&sel)
			if err != nil {
				continue // an invalid selector selects nothing
			}
			for _, name := range names {
				src := byName[name]
				if name == cr.Name || !s.Matches(labels.Set(src.Labels)) {
					continue
				}
				for _, rule := range resolve(src) {
					from := cmp.Or(rule.from, src.Name)
					i := slices.IndexFunc(rules, func(e effectiveRule) bool { return sameRule(e.PolicyRule, rule.PolicyRule) })
					switch {
					case i < 0:
						rules = append(rules, effectiveRule{PolicyRule: rule.PolicyRule, from: from})
					case rules[i].from == "" && i < len(cr.Rules):
						rules[i].from = from // the stored copy of an aggregated rule
					}
				}
			}
		}
		done[cr.Name] = rules
		return rules
	}
	for _, name := range names {
		resolve(byName[name])
	}
	return done
}

func sameRule(a, b rbacv1.PolicyRule) bool {
	return slices.Equal(a.Verbs, b.Verbs) && slices.Equal(a.APIGroups, b.APIGroups) && slices.Equal(a.Resources, b.Resources) &&
		slices.Equal(a.ResourceNames, b.ResourceNames) && slices.Equal(a.NonResourceURLs, b.NonResourceURLs)
}

// roleKey identifies a role as a roleRef names it: a ClusterRole by name, a
// Role by namespace and name.
func roleKey(kind, namespace, name string) string {
	if kind == "ClusterRole" {
		namespace = ""
	}
	return kind + "/" + namespace + "/" + name
}

// roleIndex maps roleKey to the inventory's roles.
func roleIndex(roles []role) map[string]*role {
	out := make(map[string]*role, len(roles))
	for i := range roles {
		ro := &roles[i]
		out[roleKey(ro.Kind, ro.Namespace, ro.Name)] = ro
	}
	return out
}

// binding is a RoleBinding or ClusterRoleBinding.
type binding struct {
	Resource
	roleRef  rbacv1.RoleRef
	subjects []rbacv1.Subject
	// builtin marks the bindings Kubernetes itself creates.
	builtin bool
}

func (inv *Inventory) bindings() []binding {
	var out []binding
	for i := range inv.ClusterRoleBindings {
		o := &inv.ClusterRoleBindings[i]
		out = append(out, binding{
			Resource: resourceOf("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", &o.ObjectMeta),
			roleRef:  o.RoleRef, subjects: o.Subjects, builtin: builtinRBAC(o.Name, o.Labels),
		})
	}
	for i := range inv.RoleBindings {
		o := &inv.RoleBindings[i]
		out = append(out, binding{
			Resource: resourceOf("rbac.authorization.k8s.io/v1", "RoleBinding", &o.ObjectMeta),
			roleRef:  o.RoleRef, subjects: o.Subjects, builtin: builtinRBAC(o.Name, o.Labels),
		})
	}
	return out
}

// roleKey is the key of the role the binding refers to. A RoleBinding's
// Role is in the binding's namespace.
func (b *binding) roleKey() string {
	return roleKey(b.roleRef.Kind, b.Namespace, b.roleRef.Name)
}

// qualifiedName is the binding's name with its namespace, if any.
func (b *binding) qualifiedName() string {
	if b.Namespace == "" {
		return b.Name
	}
	return b.Namespace + "/" + b.Name
}

// grantsServiceAccount returns the subject through which the binding
// applies to service account ns/name, as the RBAC authorizer matches it:
// the ServiceAccount itself (in a RoleBinding, a subject without namespace
// is in the binding's), its user name system:serviceaccount:ns:name, or a
// group every service account token carries.
func (b *binding) grantsServiceAccount(ns, name string) (rbacv1.Subject, bool) {
	for _, s := range b.subjects {
		switch s.Kind {
		case rbacv1.ServiceAccountKind:
			if s.Name == name && cmp.Or(s.Namespace, b.Namespace) == ns {
				return s, true
			}
		case rbacv1.UserKind:
			if s.Name == "system:serviceaccount:"+ns+":"+name {
				return s, true
			}
		case rbacv1.GroupKind:
			switch s.Name {
			case "system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated":
				return s, true
			}
		}
	}
	return rbacv1.Subject{}, false
}

func builtinRBAC(name string, labels map[string]string) bool {
	return strings.HasPrefix(name, "system:") || labels["kubernetes.io/bootstrapping"] == "rbac-defaults"
}

// defaultClusterRole reports the ClusterRoles the API server creates and
// re-creates at every start: a binding to one of them never dangles.
func defaultClusterRole(name string) bool {
	switch name {
	case "cluster-admin", "admin", "edit", "view":
		return true
	}
	return strings.HasPrefix(name, "system:")
}

// allows reports whether a rule grants one of verbs on resource in the
// given API group, wildcards included.
func allows(rule rbacv1.PolicyRule, group, resource string, verbs ...string) bool {
	if !matches(rule.APIGroups, group) || !matchesResource(rule.Resources, resource) {
		return false
	}
	return slices.ContainsFunc(verbs, func(v string) bool { return matches(rule.Verbs, v) })
}

func matches(list []string, want string) bool {
	return slices.Contains(list, "*") || slices.Contains(list, want)
}

// matchesResource is matches for resources, where "*/sub" also grants the
// subresource sub of every resource, as the RBAC authorizer reads it.
func matchesResource(list []string, resource string) bool {
	if matches(list, resource) {
		return true
	}
	if i := strings.IndexByte(resource, '/'); i >= 0 {
		return slices.Contains(list, "*"+resource[i:])
	}
	return false
}

// groupResource is a resource of an API group.
type groupResource struct{ group, resource string }

// allowedOn lists the resources of which a rule grants one of verbs.
func allowedOn(rule rbacv1.PolicyRule, resources []groupResource, verbs ...string) []string {
	var out []string
	for _, gr := range resources {
		if allows(rule, gr.group, gr.resource, verbs...) && !slices.Contains(out, gr.resource) {
			out = append(out, gr.resource)
		}
	}
	return out
}

// workloadResources are the resources whose objects run pods.
var workloadResources = []groupResource{
	{"", "pods"}, {"", "replicationcontrollers"}, {"apps", "deployments"}, {"apps", "replicasets"},
	{"apps", "statefulsets"}, {"apps", "daemonsets"}, {"batch", "jobs"}, {"batch", "cronjobs"},
}

// writeVerbs are the verbs that change objects.
var writeVerbs = []string{"create", "update", "patch", "delete", "deletecollection"}

// ruleCheck builds a check that reports every effective rule of a
// non-built-in role for which bad returns a description.
func ruleCheck(meta Meta, bad func(rbacv1.PolicyRule) string) *Check {
	return ruleCheckOf(meta, false, bad)
}

// clusterRuleCheck is ruleCheck for permissions on cluster-scoped
// resources, which only ClusterRoles can grant: a Role's rules apply to the
// namespaced resources of its namespace.
func clusterRuleCheck(meta Meta, bad func(rbacv1.PolicyRule) string) *Check {
	return ruleCheckOf(meta, true, bad)
}

func ruleCheckOf(meta Meta, clusterScoped bool, bad func(rbacv1.PolicyRule) string) *Check {
	meta.Category, meta.Party = CategoryRBAC, partyPlatform
	return &Check{
		Meta: meta,
		inventory: func(r *reporter, inv *Inventory) {
			for _, ro := range inv.roles() {
				if ro.builtin || (clusterScoped && ro.Kind == "Role") {
					continue
				}
				for i, rule := range ro.rules {
					if what := bad(rule.PolicyRule); what != "" {
						r.report(ro.Resource, fmt.Sprintf("rules[%d]", i), "%s %q %s%s", ro.Kind, ro.Name, what, rule.origin())
					}
				}
			}
		},
	}
}

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

func readsSecrets(rule rbacv1.PolicyRule) string {
	if allows(rule, "", "secrets", "get", "list", "watch") {
		return "can read secrets"
	}
	return ""
}

func execsIntoPods(rule rbacv1.PolicyRule) string {
	var subs []string
	for _, sub := range []string{"pods/exec", "pods/attach"} {
		if allows(rule, "", sub, "create", "get") {
			subs = append(subs, sub)
		}
	}
	if len(subs) == 0 {
		return ""
	}
	return "can use " + strings.Join(subs, " and ")
}

func escalates(rule rbacv1.PolicyRule) string {
	var what []string
	for _, res := range []string{"roles", "clusterroles"} {
		for _, verb := range []string{"bind", "escalate"} {
			if allows(rule, "rbac.authorization.k8s.io", res, verb) {
				what = append(what, verb+" "+res)
			}
		}
	}
	for _, res := range []string{"users", "groups", "serviceaccounts"} {
		if allows(rule, "", res, "impersonate") {
			what = append(what, "impersonate "+res)
		}
	}
	if len(what) == 0 {
		return ""
	}
	return "can " + strings.Join(what, ", ")
}

func proxiesToNodes(rule rbacv1.PolicyRule) string {
	if matches(rule.APIGroups, "") && matchesResource(rule.Resources, "nodes/proxy") && len(rule.Verbs) > 0 {
		return "can use nodes/proxy"
	}
	return ""
}

func writesWebhooks(rule rbacv1.PolicyRule) string {
	what := allowedOn(rule, []groupResource{
		{"admissionregistration.k8s.io", "validatingwebhookconfigurations"},
		{"admissionregistration.k8s.io", "mutatingwebhookconfigurations"},
	}, writeVerbs...)
	if len(what) == 0 {
		return ""
	}
	return "can write " + strings.Join(what, " and ")
}

func createsTokens(rule rbacv1.PolicyRule) string {
	if allows(rule, "", "serviceaccounts/token", "create") {
		return "can create service account tokens"
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

// takeoverPowers are what RBAC-002, 003, 005, 007, 010, 012 and 013 flag.
var takeoverPowers = []power{
	{false, wildcardRule}, {false, readsSecrets}, {false, execsIntoPods}, {false, escalates},
	{true, proxiesToNodes}, {true, writesWebhooks}, {false, createsTokens},
}

// takeover describes what a binding grants of takeoverPowers, or nil.
// Through a RoleBinding it grants only namespaced resources, and no
// non-resource URL.
func takeover(b *binding, roles map[string]*role) []string {
	if b.roleRef.Kind == "ClusterRole" && b.roleRef.Name == "cluster-admin" {
		return []string{"every permission"}
	}
	ro := roles[b.roleKey()]
	if ro == nil {
		return nil
	}
	namespaced := b.Kind == "RoleBinding"
	var what []string
	for _, rule := range ro.rules {
		if namespaced && len(rule.Resources) == 0 {
			continue
		}
		if slices.Contains(rule.APIGroups, "*") && slices.Contains(rule.Resources, "*") && slices.Contains(rule.Verbs, "*") {
			return []string{"every permission"}
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

var rbacChecks = []*Check{
	{
		Meta: Meta{
			ID: "RBAC-001", Title: "cluster-admin bound", Severity: high, Category: CategoryRBAC, Party: partyPlatform,
			Description: "cluster-admin grants every verb on every resource; each binding of it is an account that can take over the cluster.",
			Remediation: "Bind a role with only the permissions the subject needs; keep cluster-admin for break-glass accounts.",
			Frameworks:  []string{"CIS 5.1.1", "MITRE Privilege escalation"},
		},
		inventory: func(r *reporter, inv *Inventory) {
			for _, b := range inv.bindings() {
				if b.roleRef.Kind != "ClusterRole" || b.roleRef.Name != "cluster-admin" {
					continue
				}
				var who []string
				for _, s := range b.subjects {
					if !componentSubject(s) {
						who = append(who, subjectString(s))
					}
				}
				if len(who) > 0 {
					r.report(b.Resource, "", "%s %q grants cluster-admin to %s", b.Kind, b.Name, strings.Join(who, ", "))
				}
			}
		},
	},
	ruleCheck(Meta{
		ID: "RBAC-002", Title: "Wildcard in RBAC rule", Severity: high,
		Description: "A '*' in verbs, resources or apiGroups grants everything, including what is added to the API later.",
		Remediation: "List the verbs, resources and API groups explicitly.",
		Frameworks:  []string{"CIS 5.1.3"},
	}, wildcardRule),
	{
		Meta: Meta{
			ID: "RBAC-003", Title: "Secrets readable", Severity: high, Category: CategoryRBAC, Party: partyPlatform,
			Description: "get, list or watch on secrets reads every secret in scope, service account tokens included. A ClusterRole grants it cluster-wide (HIGH), a Role in one namespace (MEDIUM).",
			Remediation: "Remove secrets from the rule; mount the one secret a workload needs instead of reading it through the API.",
			Frameworks:  []string{"CIS 5.1.2", "MITRE Credential access"},
		},
		inventory: func(r *reporter, inv *Inventory) {
			for _, ro := range inv.roles() {
				if ro.builtin {
					continue
				}
				sev := high
				if ro.Kind == "Role" {
					sev = medium
				}
				for i, rule := range ro.rules {
					if what := readsSecrets(rule.PolicyRule); what != "" {
						r.reportAt(sev, ro.Resource, fmt.Sprintf("rules[%d]", i), "%s %q %s%s", ro.Kind, ro.Name, what, rule.origin())
					}
				}
			}
		},
	},
	ruleCheck(Meta{
		ID: "RBAC-004", Title: "Can create pods / workloads", Severity: medium,
		Description: "Whoever can create pods, or the controllers that create them, can run any image with any service account of the namespace, and mount its secrets: the permissions of every service account in scope are theirs.",
		Remediation: "Grant create on pods and workload controllers only to deployment pipelines and operators that need it; keep people on read access.",
		Frameworks:  []string{"CIS 5.1.4"},
	}, func(rule rbacv1.PolicyRule) string {
		if what := allowedOn(rule, workloadResources, "create"); len(what) > 0 {
			return "can create " + strings.Join(what, ", ")
		}
		return ""
	}),
	ruleCheck(Meta{
		ID: "RBAC-005", Title: "exec or attach into pods", Severity: high,
		Description: "create on pods/exec or pods/attach runs commands inside any pod in scope, with that pod's identity and secrets.",
		Remediation: "Remove pods/exec and pods/attach; grant them only to break-glass roles.",
		Frameworks:  []string{"MITRE Execution"},
	}, execsIntoPods),
	ruleCheck(Meta{
		ID: "RBAC-006", Title: "port-forward", Severity: medium,
		Description: "pods/portforward opens a tunnel from the caller to any port of any pod in scope, past Services, Ingresses and NetworkPolicies. Over WebSockets the request is a get, so get is flagged as well as create.",
		Remediation: "Remove pods/portforward from the role; expose what must be reached through a Service.",
	}, func(rule rbacv1.PolicyRule) string {
		if allows(rule, "", "pods/portforward", "create", "get") {
			return "can port-forward into pods"
		}
		return ""
	}),
	ruleCheck(Meta{
		ID: "RBAC-007", Title: "bind, escalate or impersonate", Severity: critical,
		Description: "bind and escalate on roles, or impersonate on users, groups or service accounts, let a subject grant itself any permission.",
		Remediation: "Remove bind, escalate and impersonate verbs from the role.",
		Frameworks:  []string{"CIS 5.1.8", "MITRE Privilege escalation"},
	}, escalates),
	ruleCheck(Meta{
		ID: "RBAC-008", Title: "Destructive rights", Severity: medium,
		Description: "delete or deletecollection on pods and workload controllers takes applications down; on events it erases the trail of what happened.",
		Remediation: "Keep delete and deletecollection to the pipelines and operators that manage the objects; nobody needs to delete events.",
		Frameworks:  []string{"MITRE Impact", "MITRE Defense evasion"},
	}, func(rule rbacv1.PolicyRule) string {
		what := allowedOn(rule, append(slices.Clone(workloadResources), groupResource{"", "events"}, groupResource{"events.k8s.io", "events"}), "delete", "deletecollection")
		if len(what) == 0 {
			return ""
		}
		return "can delete " + strings.Join(what, ", ")
	}),
	clusterRuleCheck(Meta{
		ID: "RBAC-009", Title: "Create PersistentVolumes", Severity: medium,
		Description: "A PersistentVolume can be a hostPath of any node directory: whoever creates one and a claim to it mounts the node's filesystem, whatever the pod security policy of the namespace.",
		Remediation: "Leave PersistentVolumes to the storage provisioner; let users create PersistentVolumeClaims of a StorageClass.",
		Frameworks:  []string{"CIS 5.1.9"},
	}, func(rule rbacv1.PolicyRule) string {
		if allows(rule, "", "persistentvolumes", "create") {
			return "can create persistentvolumes"
		}
		return ""
	}),
	clusterRuleCheck(Meta{
		ID: "RBAC-010", Title: "nodes/proxy", Severity: high,
		Description: "nodes/proxy reaches the kubelet API of every node: it runs commands in any pod of the node, bypassing admission and the audit log of the API server.",
		Remediation: "Remove nodes/proxy; read metrics through the metrics API, or give monitoring agents nodes/metrics and nodes/stats.",
		Frameworks:  []string{"CIS 5.1.10"},
	}, proxiesToNodes),
	clusterRuleCheck(Meta{
		ID: "RBAC-011", Title: "CSR approval", Severity: high,
		Description: "update on certificatesigningrequests/approval approves certificate requests: with a signer's approve permission it issues client certificates for any user or group, system:masters included.",
		Remediation: "Leave CSR approval to the controller manager and to the node-bootstrap approver; grant it to no person or workload.",
		Frameworks:  []string{"CIS 5.1.11"},
	}, func(rule rbacv1.PolicyRule) string {
		if allows(rule, "certificates.k8s.io", "certificatesigningrequests/approval", "update", "patch") {
			return "can approve certificate signing requests"
		}
		return ""
	}),
	clusterRuleCheck(Meta{
		ID: "RBAC-012", Title: "Webhook configuration write", Severity: critical,
		Description: "Who writes validating or mutating webhook configurations receives every object sent to the API server, secrets included, and can rewrite or block them; deleting one switches off a security policy.",
		Remediation: "Grant write on webhook configurations only to the operators that own them; resourceNames does not make it safe, since rewriting one's own webhook is enough.",
		Frameworks:  []string{"CIS 5.1.12"},
	}, writesWebhooks),
	ruleCheck(Meta{
		ID: "RBAC-013", Title: "Token creation", Severity: high,
		Description: "create on serviceaccounts/token mints a token of any service account in scope: its permissions become the caller's.",
		Remediation: "Remove serviceaccounts/token; a pod gets its own token by projection, without this permission.",
		Frameworks:  []string{"CIS 5.1.13"},
	}, createsTokens),
	{
		Meta: Meta{
			ID: "RBAC-014", Title: "Anonymous access bound", Severity: critical, Category: CategoryRBAC, Party: partyPlatform,
			Description: "A binding to system:anonymous or system:unauthenticated gives its permissions to anyone who can reach the API server.",
			Remediation: "Delete the binding, or bind the role to authenticated subjects only.",
		},
		inventory: func(r *reporter, inv *Inventory) {
			for _, b := range inv.bindings() {
				// Kubernetes binds its read-only public-info role to anonymous
				// users by default: /version, /healthz. That one is expected.
				if b.roleRef.Kind == "ClusterRole" && b.roleRef.Name == "system:public-info-viewer" {
					continue
				}
				for _, s := range b.subjects {
					if (s.Kind == rbacv1.UserKind && s.Name == "system:anonymous") || (s.Kind == rbacv1.GroupKind && s.Name == "system:unauthenticated") {
						r.report(b.Resource, "", "%s %q grants %s %q to %s", b.Kind, b.Name, b.roleRef.Kind, b.roleRef.Name, s.Name)
						break
					}
				}
			}
		},
	},
	{
		Meta: Meta{
			ID: "RBAC-015", Title: "system:authenticated elevated", Severity: critical, Category: CategoryRBAC, Party: partyPlatform,
			Description: "Every user and every service account of the cluster is in system:authenticated; on clusters with external identity providers, often anyone with an account at the provider. Kubernetes grants that group discovery only.",
			Remediation: "Bind the role to the groups that need it instead of system:authenticated.",
		},
		inventory: func(r *reporter, inv *Inventory) {
			for _, b := range inv.bindings() {
				if b.roleRef.Kind == "ClusterRole" && discoveryRoles[b.roleRef.Name] {
					continue
				}
				for i, s := range b.subjects {
					if s.Kind == rbacv1.GroupKind && s.Name == "system:authenticated" {
						r.report(b.Resource, fmt.Sprintf("subjects[%d]", i), "%s %q grants %s %q to every authenticated user and service account", b.Kind, b.Name, b.roleRef.Kind, b.roleRef.Name)
						break
					}
				}
			}
		},
	},
	{
		Meta: Meta{
			ID: "RBAC-016", Title: "system:masters binding", Severity: critical, Category: CategoryRBAC, Party: partyPlatform,
			Description: "Members of system:masters bypass authorization altogether and cannot be revoked short of rotating the cluster CA; a binding naming the group shows it is in use beyond the default cluster-admin binding.",
			Remediation: "Do not issue credentials in system:masters; bind people and automation to named groups, and remove the binding.",
			Frameworks:  []string{"CIS 5.1.7"},
		},
		inventory: func(r *reporter, inv *Inventory) {
			for _, b := range inv.bindings() {
				if b.builtin {
					continue
				}
				for i, s := range b.subjects {
					if s.Kind == rbacv1.GroupKind && s.Name == "system:masters" {
						r.report(b.Resource, fmt.Sprintf("subjects[%d]", i), "%s %q names the group system:masters", b.Kind, b.Name)
						break
					}
				}
			}
		},
	},
	{
		Meta: Meta{
			ID: "RBAC-017", Title: "Manage networking / configmaps", Severity: high, Category: CategoryRBAC, Party: partyPlatform,
			Description: "Writing Services, Ingresses or NetworkPolicies redirects or opens traffic between workloads; writing ConfigMaps changes the configuration of what reads them. Writing kube-system's coredns or aws-auth ConfigMaps poisons the cluster's DNS or grants cluster-admin on EKS (CRITICAL).",
			Remediation: "Keep write access to networking objects and ConfigMaps to the pipelines that deploy them, limited with resourceNames; nobody else should write kube-system's ConfigMaps.",
			Frameworks:  []string{"MITRE Lateral movement"},
		},
		inventory: func(r *reporter, inv *Inventory) {
			resources := []groupResource{
				{"", "services"}, {"networking.k8s.io", "ingresses"}, {"networking.k8s.io", "networkpolicies"}, {"", "configmaps"},
			}
			for _, ro := range inv.roles() {
				if ro.builtin {
					continue
				}
				for i, rule := range ro.rules {
					what := allowedOn(rule.PolicyRule, resources, writeVerbs...)
					if len(what) == 0 {
						continue
					}
					sev, extra := high, ""
					if slices.Contains(what, "configmaps") && (ro.Kind == "ClusterRole" || ro.Namespace == "kube-system") {
						if names := clusterConfigMaps(rule.ResourceNames); len(names) > 0 {
							sev, extra = critical, ", kube-system's "+strings.Join(names, " and ")+" included"
						}
					}
					r.reportAt(sev, ro.Resource, fmt.Sprintf("rules[%d]", i), "%s %q can write %s%s%s", ro.Kind, ro.Name, strings.Join(what, ", "), extra, rule.origin())
				}
			}
		},
	},
	{
		Meta: Meta{
			ID: "RBAC-018", Title: "Dangling binding", Severity: low, Category: CategoryRBAC, Party: partyPlatform,
			Description: "A binding to a Role or ClusterRole that does not exist grants nothing today, and whatever a role of that name will grant tomorrow, to whoever creates it.",
			Remediation: "Delete the binding, or create the role it was meant for.",
		},
		assessable: func(inv *Inventory) string {
			if len(inv.ClusterRoles) > 0 {
				return ""
			}
			for _, b := range inv.bindings() {
				if b.roleRef.Kind == "ClusterRole" && !defaultClusterRole(b.roleRef.Name) {
					return "bindings refer to ClusterRoles but the inventory holds none, not even the built-in ones: it was collected without them, so whether they exist cannot be told"
				}
			}
			return ""
		},
		inventory: func(r *reporter, inv *Inventory) {
			roles := roleIndex(inv.roles())
			for _, b := range inv.bindings() {
				if roles[b.roleKey()] != nil || (b.roleRef.Kind == "ClusterRole" && defaultClusterRole(b.roleRef.Name)) {
					continue
				}
				where := "in the cluster"
				if b.roleRef.Kind == "Role" {
					where = fmt.Sprintf("in namespace %q", b.Namespace)
				}
				r.report(b.Resource, "roleRef", "%s %q refers to %s %q, which does not exist %s", b.Kind, b.Name, b.roleRef.Kind, b.roleRef.Name, where)
			}
		},
	},
	{
		Meta: Meta{
			ID: "RBAC-019", Title: "Dashboard access", Severity: low, Category: CategoryRBAC, Party: partyPlatform,
			Description: "The Dashboard acts with its own service account for whoever reaches it: permissions bound to that account are open to the Dashboard's users, and subjects bound to the Dashboard's roles read what it reads.",
			Remediation: "Bind nothing beyond its own roles to the Dashboard's service accounts, let users log in with their own tokens, and bind the Dashboard's roles to the Dashboard only.",
			Frameworks:  []string{"MITRE Discovery"},
		},
		inventory: func(r *reporter, inv *Inventory) {
			for _, b := range inv.bindings() {
				dashboardRole := strings.HasPrefix(b.roleRef.Name, dashboardPrefix)
				for i, s := range b.subjects {
					dashboardSA := s.Kind == rbacv1.ServiceAccountKind && strings.HasPrefix(s.Name, dashboardPrefix)
					switch {
					case dashboardSA && !dashboardRole:
						r.report(b.Resource, fmt.Sprintf("subjects[%d]", i), "%s %q grants %s %q to the Dashboard's service account %s", b.Kind, b.Name, b.roleRef.Kind, b.roleRef.Name, s.Name)
					case dashboardRole && !dashboardSA:
						r.report(b.Resource, fmt.Sprintf("subjects[%d]", i), "%s %q grants the Dashboard's %s %q to %s", b.Kind, b.Name, b.roleRef.Kind, b.roleRef.Name, subjectString(s))
					default:
						continue
					}
					break
				}
			}
		},
	},
	{
		Meta: Meta{
			ID: "SA-005", Title: "Workload SA is admin / can take over cluster", Severity: high, Category: CategoryServiceAccounts, Party: partyWorkload,
			Description: "The pods' service account token, mounted in every container, carries what the account is bound to: cluster-admin, or permissions that RBAC-002, 003, 005, 007, 010, 012 or 013 flag (wildcards, secrets, exec, escalation, nodes/proxy, webhooks, tokens). Bindings of its name, of its user name and of the groups system:serviceaccounts[:namespace] and system:authenticated count, aggregated ClusterRoles included. Cluster-wide (HIGH); only in namespaces through RoleBindings (MEDIUM). Pods that do not mount the token are left out.",
			Remediation: "Run the workload as a service account bound to only what it needs, and set automountServiceAccountToken: false when it does not call the API.",
			Frameworks:  []string{"CIS 5.1.1", "MITRE Credential access"},
		},
		inventory: func(r *reporter, inv *Inventory) {
			roles := roleIndex(inv.roles())
			bindings := inv.bindings()
			candidates := bindingsBySubject(bindings)
			powers := make([][]string, len(bindings))
			for i := range bindings {
				powers[i] = takeover(&bindings[i], roles)
			}
			saAutomount := map[string]*bool{}
			for i := range inv.ServiceAccounts {
				sa := &inv.ServiceAccounts[i]
				saAutomount[sa.Namespace+"/"+sa.Name] = sa.AutomountServiceAccountToken
			}
			for _, w := range r.workloads(inv) {
				sa := serviceAccountName(w.Spec)
				if !tokenMounted(&w, saAutomount[w.Namespace+"/"+sa]) {
					continue
				}
				// The message names the worst grant and counts the others:
				// listing them all made a finding grow with the cluster's
				// group-wide bindings (66 KB each at 100,000 objects).
				worst, grants, clusterWide := -1, 0, false
				for _, i := range candidates(w.Namespace, sa) {
					if _, ok := bindings[i].grantsServiceAccount(w.Namespace, sa); !ok || len(powers[i]) == 0 {
						continue
					}
					grants++
					if cw := bindings[i].Kind != "RoleBinding"; worst < 0 || (cw && !clusterWide) {
						worst, clusterWide = i, cw
					}
				}
				if grants == 0 {
					continue
				}
				b := &bindings[worst]
				s, _ := b.grantsServiceAccount(w.Namespace, sa)
				through, scope, sev := "", " cluster-wide", high
				if s.Kind == rbacv1.GroupKind {
					through = " to group " + s.Name
				}
				if !clusterWide {
					scope, sev = fmt.Sprintf(" in namespace %q", b.Namespace), medium
				}
				more := ""
				switch {
				case grants == 2:
					more = "; 1 more binding grants it such powers"
				case grants > 2:
					more = fmt.Sprintf("; %d more bindings grant it such powers", grants-1)
				}
				r.reportAt(sev, w.Resource, "", "pods run as service account %q, to which %s %q grants %s %q%s%s (%s)%s",
					sa, b.Kind, b.qualifiedName(), b.roleRef.Kind, b.roleRef.Name, through, scope, strings.Join(powers[worst], ", "), more)
			}
		},
	},
}

// bindingsBySubject indexes bindings by the service accounts and groups
// they name, and returns the indexes, in order, of those that may apply to
// service account ns/name; grantsServiceAccount decides.
func bindingsBySubject(bindings []binding) func(ns, name string) []int {
	index := map[string][]int{}
	for i := range bindings {
		b := &bindings[i]
		for _, s := range b.subjects {
			var key string
			switch s.Kind {
			case rbacv1.ServiceAccountKind:
				key = "sa:" + cmp.Or(s.Namespace, b.Namespace) + "/" + s.Name
			case rbacv1.UserKind:
				ns, name, ok := strings.Cut(strings.TrimPrefix(s.Name, "system:serviceaccount:"), ":")
				if !ok || !strings.HasPrefix(s.Name, "system:serviceaccount:") {
					continue
				}
				key = "sa:" + ns + "/" + name
			case rbacv1.GroupKind:
				key = "group:" + s.Name
			}
			if list := index[key]; len(list) == 0 || list[len(list)-1] != i {
				index[key] = append(list, i)
			}
		}
	}
	return func(ns, name string) []int {
		out := slices.Concat(index["sa:"+ns+"/"+name], index["group:system:serviceaccounts"],
			index["group:system:serviceaccounts:"+ns], index["group:system:authenticated"])
		slices.Sort(out)
		return slices.Compact(out)
	}
}

// discoveryRoles are the ClusterRoles Kubernetes binds to
// system:authenticated itself: they read API discovery, the version and
// the caller's own permissions.
var discoveryRoles = map[string]bool{
	"system:discovery": true, "system:basic-user": true, "system:public-info-viewer": true,
}

// dashboardPrefix starts the names of the Kubernetes Dashboard's service
// accounts and roles, in its manifests (v2) and Helm chart (v7).
const dashboardPrefix = "kubernetes-dashboard"

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

// tokenMounted reports whether the workload's pods hold a token of their
// service account: automounted unless the pod, or else its
// ServiceAccount (saAutomount), turns it off; or projected into a volume.
func tokenMounted(w *Workload, saAutomount *bool) bool {
	for _, v := range w.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, src := range v.Projected.Sources {
			if src.ServiceAccountToken != nil {
				return true
			}
		}
	}
	mount := w.Spec.AutomountServiceAccountToken
	if mount == nil {
		mount = saAutomount
	}
	return mount == nil || *mount
}

// componentSubject reports the identities of Kubernetes' own components,
// such as the group system:masters or the user system:kube-scheduler, which
// are expected to hold cluster-admin. The other system: groups name whole
// populations (system:authenticated, system:unauthenticated,
// system:serviceaccounts[:ns]), system:anonymous is anyone, and
// system:serviceaccount:ns:name is a workload's service account: none of
// them is a component.
func componentSubject(s rbacv1.Subject) bool {
	switch s.Kind {
	case rbacv1.GroupKind:
		return s.Name == "system:masters"
	case rbacv1.UserKind:
		return strings.HasPrefix(s.Name, "system:") && s.Name != "system:anonymous" &&
			!strings.HasPrefix(s.Name, "system:serviceaccount:")
	}
	return false
}

func subjectString(s rbacv1.Subject) string {
	if s.Kind == rbacv1.ServiceAccountKind {
		return fmt.Sprintf("ServiceAccount %s/%s", s.Namespace, s.Name)
	}
	return s.Kind + " " + s.Name
}
