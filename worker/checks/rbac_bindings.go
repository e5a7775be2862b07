package checks

import (
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
)

// rbacBindingChecks judge who holds what: bindings and their subjects,
// and the service accounts workloads run as.
var rbacBindingChecks = []*Check{
	{
		ID: "RBAC-001",
		inventory: func(r *reporter, inv *Inventory) {
			view := r.rbac(inv)
			for _, b := range view.bindings {
				ro := view.index[b.roleKey()]
				named := b.roleRef.Kind == "ClusterRole" && b.roleRef.Name == "cluster-admin"
				switch {
				case named && (ro == nil || grantsEverything(ro.rules)):
				case ro != nil && grantsEverything(ro.rules):
				default:
					continue
				}
				var who []string
				for _, s := range b.subjects {
					if !componentSubject(s) {
						who = append(who, subjectString(s))
					}
				}
				if len(who) == 0 {
					continue
				}
				if named {
					r.report(b.Resource, "", "%s %q grants cluster-admin to %s", b.Kind, b.Name, strings.Join(who, ", "))
				} else {
					r.report(b.Resource, "", "%s %q grants %s %q, which grants every verb on every resource as cluster-admin does, to %s", b.Kind, b.Name, b.roleRef.Kind, b.roleRef.Name, strings.Join(who, ", "))
				}
			}
		},
	},
	{
		ID: "RBAC-014",
		inventory: func(r *reporter, inv *Inventory) {
			for _, b := range r.rbac(inv).bindings {
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
		ID: "RBAC-015",
		inventory: func(r *reporter, inv *Inventory) {
			for _, b := range r.rbac(inv).bindings {
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
		ID: "RBAC-016",
		inventory: func(r *reporter, inv *Inventory) {
			for _, b := range r.rbac(inv).bindings {
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
		ID: "RBAC-018",
		assessable: func(inv *Inventory) string {
			if len(inv.ClusterRoles) > 0 {
				return ""
			}
			for _, b := range inv.bindings() {
				if b.roleRef.Kind == "ClusterRole" && !bootstrap.knownClusterRole(b.roleRef.Name) {
					return "bindings refer to ClusterRoles but the inventory holds none, not even the built-in ones: it was collected without them, so whether they exist cannot be told"
				}
			}
			return ""
		},
		inventory: func(r *reporter, inv *Inventory) {
			view := r.rbac(inv)
			for _, b := range view.bindings {
				if view.index[b.roleKey()] != nil || (b.roleRef.Kind == "ClusterRole" && bootstrap.knownClusterRole(b.roleRef.Name)) {
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
		ID: "RBAC-019",
		inventory: func(r *reporter, inv *Inventory) {
			for _, b := range r.rbac(inv).bindings {
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
		ID: "SA-005",
		inventory: func(r *reporter, inv *Inventory) {
			view := r.rbac(inv)
			bindings, subjects := view.bindings, view.bySubject
			// What a binding grants depends on its role and its kind only:
			// worked out once for each, as every namespace binds the same
			// few ClusterRoles (edit, admin), whose rules grow with the
			// operators that aggregate theirs into them.
			type grant struct{ kind, role string }
			granted := map[grant][]string{}
			powers := make([][]string, len(bindings))
			for i := range bindings {
				b := &bindings[i]
				g := grant{b.Kind, b.roleKey()}
				p, ok := granted[g]
				if !ok {
					p = takeover(b, view.index)
					granted[g] = p
				}
				powers[i] = p
			}
			saAutomount := map[string]*bool{}
			for i := range inv.ServiceAccounts {
				sa := &inv.ServiceAccounts[i]
				saAutomount[sa.Namespace+"/"+sa.Name] = sa.AutomountServiceAccountToken
			}
			// The message names the worst grant and counts the others:
			// listing them all made a finding grow with the cluster's
			// group-wide bindings (66 KB each at 100,000 objects). The
			// worst is the first cluster-wide grant in the bindings'
			// order, or else the first.
			countGrants := func(ns, sa string, candidates []int, skip []int, g *grantSummary) {
				for _, i := range candidates {
					if _, dup := slices.BinarySearch(skip, i); dup {
						continue // counted among the namespace's groups
					}
					if _, ok := bindings[i].grantsServiceAccount(ns, sa); ok && len(powers[i]) > 0 {
						g.add(i, bindings[i].Kind != "RoleBinding")
					}
				}
			}
			byNamespace := map[string]grantSummary{}
			for _, w := range r.workloads(inv) {
				sa := serviceAccountName(w.Spec)
				if !tokenMounted(&w, saAutomount[w.Namespace+"/"+sa]) {
					continue
				}
				groups := subjects.groupsOf(w.Namespace)
				g, ok := byNamespace[w.Namespace]
				if !ok {
					// What the groups grant is the same for every service
					// account of the namespace: resolved once.
					countGrants(w.Namespace, sa, groups, nil, &g)
					byNamespace[w.Namespace] = g
				}
				countGrants(w.Namespace, sa, subjects.named(w.Namespace, sa), groups, &g)
				if g.count == 0 {
					continue
				}
				worst, clusterWide := g.worst()
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
				case g.count == 2:
					more = "; 1 more binding grants it such powers"
				case g.count > 2:
					more = fmt.Sprintf("; %d more bindings grant it such powers", g.count-1)
				}
				r.reportAt(sev, w.Resource, "", "pods run as service account %q, to which %s %q grants %s %q%s%s (%s)%s",
					sa, b.Kind, b.qualifiedName(), b.roleRef.Kind, b.roleRef.Name, through, scope, strings.Join(powers[worst], "; "), more)
			}
		},
	},
}

// grantSummary counts the bindings that grant a service account takeover
// powers and keeps the first of them, and the first cluster-wide one, in
// the bindings' order.
type grantSummary struct {
	count                   int
	first, firstClusterWide int
}

func (g *grantSummary) add(i int, clusterWide bool) {
	if g.count == 0 || i < g.first {
		g.first = i
	}
	if clusterWide && (g.firstClusterWide == 0 || i+1 < g.firstClusterWide) {
		g.firstClusterWide = i + 1 // 0: none
	}
	g.count++
}

// worst is the grant a finding names: the first cluster-wide one, or else
// the first.
func (g *grantSummary) worst() (int, bool) {
	if g.firstClusterWide > 0 {
		return g.firstClusterWide - 1, true
	}
	return g.first, false
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
