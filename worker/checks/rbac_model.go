package checks

import (
	"cmp"
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/component-helpers/auth/rbac/validation"
)

// rbacView is the cluster's RBAC as the checks read it: every role with
// its effective rules, every binding, and who each binding names. It is
// resolved once per scan (reporter.rbac), not per check.
type rbacView struct {
	roles    []role
	index    map[string]*role
	bindings []binding
	// bySubject finds the bindings that may apply to a service account
	// (see bindingsBySubject).
	bySubject *subjectIndex
}

// rbac returns the inventory's rbacView, resolved once per run.
func (r *reporter) rbac(inv *Inventory) *rbacView {
	if r.rbacView == nil {
		v := &rbacView{roles: inv.roles(), bindings: inv.bindings()}
		v.index = roleIndex(v.roles)
		v.bySubject = bindingsBySubject(v.bindings)
		r.rbacView = v
	}
	return r.rbacView
}

// role is a Role or ClusterRole seen through what the RBAC checks need.
type role struct {
	Resource
	// rules are the role's effective rules: its own and, for a ClusterRole
	// with an aggregationRule, those of the ClusterRoles it aggregates.
	rules []effectiveRule
	// builtin marks the roles of Kubernetes' bootstrap policy, as it
	// defines them (see rbacDefaults.builtinRole): they are not the
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

// judged reports whether rule checks judge rule of ro: every rule of a
// role that is not built-in; of a built-in one that aggregates others,
// the rules that come from none of them (those are judged on the role they
// come from).
func (ro *role) judged(rule effectiveRule) bool {
	return !ro.builtin || (bootstrap.aggregates(ro) && rule.from == "")
}

func (inv *Inventory) roles() []role {
	effective := inv.clusterRoleRules()
	var out []role
	for i := range inv.ClusterRoles {
		o := &inv.ClusterRoles[i]
		out = append(out, role{
			Resource: resourceOf("rbac.authorization.k8s.io/v1", "ClusterRole", &o.ObjectMeta),
			rules:    effective[o.Name],
			builtin:  bootstrap.builtinClusterRole(o),
		})
	}
	for i := range inv.Roles {
		o := &inv.Roles[i]
		out = append(out, role{
			Resource: resourceOf("rbac.authorization.k8s.io/v1", "Role", &o.ObjectMeta),
			rules:    ownRules(o.Rules),
			builtin:  bootstrap.builtinRole(o),
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

type binding struct {
	Resource
	roleRef  rbacv1.RoleRef
	subjects []rbacv1.Subject
	// builtin marks the bindings of Kubernetes' bootstrap policy, as it
	// defines them.
	builtin bool
}

func (inv *Inventory) bindings() []binding {
	var out []binding
	for i := range inv.ClusterRoleBindings {
		o := &inv.ClusterRoleBindings[i]
		out = append(out, binding{
			Resource: resourceOf("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", &o.ObjectMeta),
			roleRef:  o.RoleRef, subjects: o.Subjects, builtin: bootstrap.builtinBinding("", o.Name, o.RoleRef, o.Subjects),
		})
	}
	for i := range inv.RoleBindings {
		o := &inv.RoleBindings[i]
		out = append(out, binding{
			Resource: resourceOf("rbac.authorization.k8s.io/v1", "RoleBinding", &o.ObjectMeta),
			roleRef:  o.RoleRef, subjects: o.Subjects, builtin: bootstrap.builtinBinding(o.Namespace, o.Name, o.RoleRef, o.Subjects),
		})
	}
	return out
}

// roleKey is the roleKey of the role a binding refers to: a referenced
// Role is in the binding's namespace.
func (b *binding) roleKey() string {
	return roleKey(b.roleRef.Kind, b.Namespace, b.roleRef.Name)
}

func (b *binding) qualifiedName() string {
	if b.Namespace == "" {
		return b.Name
	}
	return b.Namespace + "/" + b.Name
}

// grantsServiceAccount reports whether the binding applies to service
// account ns/name, and through which subject: the account itself, its
// user name, or a group it is in. A ServiceAccount subject without a
// namespace is in the binding's, as the authorizer reads it.
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

// subjectIndex finds the bindings that may apply to a service account:
// those that name it, and those that name a group every service account
// of its namespace is in. grantsServiceAccount decides.
type subjectIndex struct {
	index  map[string][]int // by "sa:ns/name" and "group:name", in order
	groups map[string][]int // groupsOf, by namespace
}

// bindingsBySubject indexes bindings by the service accounts and groups
// they name.
func bindingsBySubject(bindings []binding) *subjectIndex {
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
	return &subjectIndex{index: index, groups: map[string][]int{}}
}

// named returns the indexes, in order, of the bindings that name service
// account ns/name itself.
func (x *subjectIndex) named(ns, name string) []int { return x.index["sa:"+ns+"/"+name] }

// groupsOf returns the indexes, in order, of the bindings that name a
// group every service account of namespace ns is in. They are the same
// for every service account there: a check resolves them once per
// namespace, not once per workload (with 120 such bindings and 100,000
// objects, once per workload was a fifth of a scan's CPU).
func (x *subjectIndex) groupsOf(ns string) []int {
	if out, ok := x.groups[ns]; ok {
		return out
	}
	out := slices.Concat(x.index["group:system:serviceaccounts"], x.index["group:system:serviceaccounts:"+ns], x.index["group:system:authenticated"])
	slices.Sort(out)
	out = slices.Compact(out)
	x.groups[ns] = out
	return out
}

// rbacDefaults is Kubernetes' bootstrap policy: the roles and bindings the
// API server creates and re-creates at every start, as
// deploy/e2e/tools/kubernetes/rbacdefaults writes them out of the
// release's own code (make rbac-defaults), with every feature gate on.
type rbacDefaults struct {
	ClusterRoles []struct {
		Name            string                  `json:"name"`
		Rules           []rbacv1.PolicyRule     `json:"rules"`
		AggregationRule *rbacv1.AggregationRule `json:"aggregationRule"`
	} `json:"clusterRoles"`
	Roles []struct {
		Namespace string              `json:"namespace"`
		Name      string              `json:"name"`
		Rules     []rbacv1.PolicyRule `json:"rules"`
	} `json:"roles"`
	ClusterRoleBindings []defaultBinding `json:"clusterRoleBindings"`
	RoleBindings        []defaultBinding `json:"roleBindings"`

	rules       map[string][]rbacv1.PolicyRule // by roleKey
	aggregation map[string]*rbacv1.AggregationRule
	bindings    map[string]*defaultBinding // by namespace/name
}

type defaultBinding struct {
	Namespace string           `json:"namespace"`
	Name      string           `json:"name"`
	RoleRef   rbacv1.RoleRef   `json:"roleRef"`
	Subjects  []rbacv1.Subject `json:"subjects"`
}

//go:embed rbacdefaults.json
var rbacDefaultsJSON []byte

var bootstrap = func() *rbacDefaults {
	d := &rbacDefaults{rules: map[string][]rbacv1.PolicyRule{}, aggregation: map[string]*rbacv1.AggregationRule{}, bindings: map[string]*defaultBinding{}}
	if err := json.Unmarshal(rbacDefaultsJSON, d); err != nil {
		panic("checks: rbacdefaults.json: " + err.Error())
	}
	for _, r := range d.ClusterRoles {
		d.rules[roleKey("ClusterRole", "", r.Name)] = r.Rules
		if r.AggregationRule != nil {
			d.aggregation[r.Name] = r.AggregationRule
		}
	}
	for _, r := range d.Roles {
		d.rules[roleKey("Role", r.Namespace, r.Name)] = r.Rules
	}
	for _, list := range [][]defaultBinding{d.ClusterRoleBindings, d.RoleBindings} {
		for i := range list {
			d.bindings[list[i].Namespace+"/"+list[i].Name] = &list[i]
		}
	}
	return d
}()

// builtinClusterRole reports whether cr is the bootstrap policy's role of
// its name: one that aggregates with the same selectors, or one whose
// rules grant nothing the bootstrap role's do not. A "system:" name or a
// bootstrapping label proves nothing: anyone who can create ClusterRoles
// can give them.
func (d *rbacDefaults) builtinClusterRole(cr *rbacv1.ClusterRole) bool {
	rules, ok := d.rules[roleKey("ClusterRole", "", cr.Name)]
	if !ok {
		return false
	}
	if agg := d.aggregation[cr.Name]; agg != nil {
		return cr.AggregationRule != nil && equality.Semantic.DeepEqual(agg.ClusterRoleSelectors, cr.AggregationRule.ClusterRoleSelectors)
	}
	covered, _ := validation.Covers(rules, cr.Rules)
	return cr.AggregationRule == nil && covered
}

// builtinRole is builtinClusterRole for the bootstrap policy's Roles, in
// kube-system and kube-public.
func (d *rbacDefaults) builtinRole(r *rbacv1.Role) bool {
	rules, ok := d.rules[roleKey("Role", r.Namespace, r.Name)]
	if !ok {
		return false
	}
	covered, _ := validation.Covers(rules, r.Rules)
	return covered
}

// aggregates reports whether ro is a built-in role whose rules the
// aggregation controller fills (admin, edit, view).
func (d *rbacDefaults) aggregates(ro *role) bool {
	return ro.Kind == "ClusterRole" && d.aggregation[ro.Name] != nil
}

// builtinBinding reports whether a binding is the bootstrap policy's of
// its name: the same role, and no subject the policy does not name.
func (d *rbacDefaults) builtinBinding(namespace, name string, ref rbacv1.RoleRef, subjects []rbacv1.Subject) bool {
	b := d.bindings[namespace+"/"+name]
	if b == nil || b.RoleRef.Kind != ref.Kind || b.RoleRef.Name != ref.Name {
		return false
	}
	for _, s := range subjects {
		if !slices.ContainsFunc(b.Subjects, func(t rbacv1.Subject) bool {
			return t.Kind == s.Kind && t.Name == s.Name && cmp.Or(t.Namespace, namespace) == cmp.Or(s.Namespace, namespace)
		}) {
			return false
		}
	}
	return true
}

// knownClusterRole reports whether the API server creates a ClusterRole
// of this name at every start: a binding to one never dangles.
func (d *rbacDefaults) knownClusterRole(name string) bool {
	_, ok := d.rules[roleKey("ClusterRole", "", name)]
	return ok
}
