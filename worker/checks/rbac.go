package checks

import (
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
)

// role is a Role or ClusterRole seen through what the RBAC checks need.
type role struct {
	Resource
	rules []rbacv1.PolicyRule
	// builtin marks the roles Kubernetes itself creates; they are not the
	// cluster owner's choice and are left out of rule checks.
	builtin bool
}

func (inv *Inventory) roles() []role {
	var out []role
	for i := range inv.ClusterRoles {
		o := &inv.ClusterRoles[i]
		out = append(out, role{
			Resource: resourceOf("rbac.authorization.k8s.io/v1", "ClusterRole", &o.ObjectMeta),
			rules:    o.Rules,
			builtin:  builtinRBAC(o.Name, o.Labels),
		})
	}
	for i := range inv.Roles {
		o := &inv.Roles[i]
		out = append(out, role{
			Resource: resourceOf("rbac.authorization.k8s.io/v1", "Role", &o.ObjectMeta),
			rules:    o.Rules,
			builtin:  builtinRBAC(o.Name, o.Labels),
		})
	}
	return out
}

// binding is a RoleBinding or ClusterRoleBinding.
type binding struct {
	Resource
	roleRef  rbacv1.RoleRef
	subjects []rbacv1.Subject
}

func (inv *Inventory) bindings() []binding {
	var out []binding
	for i := range inv.ClusterRoleBindings {
		o := &inv.ClusterRoleBindings[i]
		out = append(out, binding{
			Resource: resourceOf("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", &o.ObjectMeta),
			roleRef:  o.RoleRef, subjects: o.Subjects,
		})
	}
	for i := range inv.RoleBindings {
		o := &inv.RoleBindings[i]
		out = append(out, binding{
			Resource: resourceOf("rbac.authorization.k8s.io/v1", "RoleBinding", &o.ObjectMeta),
			roleRef:  o.RoleRef, subjects: o.Subjects,
		})
	}
	return out
}

func builtinRBAC(name string, labels map[string]string) bool {
	return strings.HasPrefix(name, "system:") || labels["kubernetes.io/bootstrapping"] == "rbac-defaults"
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

// ruleCheck builds a check that reports every rule of a non-built-in role
// for which bad returns a description.
func ruleCheck(meta Meta, bad func(rbacv1.PolicyRule) string) *Check {
	meta.Category, meta.Party = CategoryRBAC, partyPlatform
	return &Check{
		Meta: meta,
		inventory: func(r *reporter, inv *Inventory) {
			for _, ro := range inv.roles() {
				if ro.builtin {
					continue
				}
				for i, rule := range ro.rules {
					if what := bad(rule); what != "" {
						r.report(ro.Resource, fmt.Sprintf("rules[%d]", i), "%s %q %s", ro.Kind, ro.Name, what)
					}
				}
			}
		},
	}
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
	}, func(rule rbacv1.PolicyRule) string {
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
	}),
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
					if allows(rule, "", "secrets", "get", "list", "watch") {
						r.reportAt(sev, ro.Resource, fmt.Sprintf("rules[%d]", i), "%s %q can read secrets", ro.Kind, ro.Name)
					}
				}
			}
		},
	},
	ruleCheck(Meta{
		ID: "RBAC-005", Title: "exec or attach into pods", Severity: high,
		Description: "create on pods/exec or pods/attach runs commands inside any pod in scope, with that pod's identity and secrets.",
		Remediation: "Remove pods/exec and pods/attach; grant them only to break-glass roles.",
		Frameworks:  []string{"MITRE Execution"},
	}, func(rule rbacv1.PolicyRule) string {
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
	}),
	ruleCheck(Meta{
		ID: "RBAC-007", Title: "bind, escalate or impersonate", Severity: critical,
		Description: "bind and escalate on roles, or impersonate on users, groups or service accounts, let a subject grant itself any permission.",
		Remediation: "Remove bind, escalate and impersonate verbs from the role.",
		Frameworks:  []string{"CIS 5.1.8", "MITRE Privilege escalation"},
	}, func(rule rbacv1.PolicyRule) string {
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
	}),
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
