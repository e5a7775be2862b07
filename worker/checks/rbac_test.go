package checks_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/fleetscan/fleetscan/worker/checks"
	"github.com/fleetscan/fleetscan/worker/internal/collect"
	"github.com/fleetscan/fleetscan/worker/policy"
)

// clusterRole and the others write manifests for the RBAC tests.
func clusterRole(name, labels, rules string) string {
	return fmt.Sprintf("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: %q, labels: {%s}}\nrules: %s\n", name, labels, rules)
}

func nsRole(ns, name, rules string) string {
	return fmt.Sprintf("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: %q, namespace: %s}\nrules: %s\n", name, ns, rules)
}

func clusterBinding(name, role, subjects string) string {
	return fmt.Sprintf("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: %q}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: %q}\nsubjects: %s\n", name, role, subjects)
}

func roleBinding(ns, name, kind, role, subjects string) string {
	return fmt.Sprintf("apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: %q, namespace: %s}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: %s, name: %q}\nsubjects: %s\n", name, ns, kind, role, subjects)
}

// bootstrapRules returns the rules of a ClusterRole of Kubernetes'
// bootstrap policy, as a flow sequence.
func bootstrapRules(t *testing.T, name string) string {
	t.Helper()
	var d struct {
		ClusterRoles []struct {
			Name  string
			Rules []json.RawMessage
		}
	}
	b, err := checksFS.ReadFile("rbacdefaults.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	for _, r := range d.ClusterRoles {
		if r.Name == name {
			parts := make([]string, len(r.Rules))
			for i, rule := range r.Rules {
				parts[i] = string(rule)
			}
			return "[" + strings.Join(parts, ", ") + "]"
		}
	}
	t.Fatalf("no bootstrap ClusterRole %q", name)
	return ""
}

// runChecks runs the checks of ids on manifests and returns "ID SEVERITY
// Kind ns/name sub-path: message" per finding.
func runChecks(t *testing.T, manifests []string, ids ...string) []string {
	t.Helper()
	inv := &checks.Inventory{}
	stats, err := collect.DecodeManifests(strings.NewReader(strings.Join(manifests, "---\n")), "rbac.yaml", inv)
	if err != nil || len(stats.Problems) > 0 {
		t.Fatalf("decode: %v %q", err, stats.Problems)
	}
	var got []string
	_, err = checks.Run(t.Context(), inv, policy.Selection{Include: ids}, func(f checks.Finding) error {
		got = append(got, fmt.Sprintf("%s %s %s %s/%s %s: %s", f.CheckID, strings.TrimPrefix(f.Severity.String(), "SEVERITY_"), f.Resource.Kind, f.Resource.Namespace, f.Resource.Name, f.Resource.SubPath, f.Message))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	return got
}

// TestRBACSemantics: what a rule grants is what the API server's
// authorizer grants, and a role is built-in only as the bootstrap policy
// defines it. Each case lists the findings' prefixes it expects, in
// order; none means no finding.
func TestRBACSemantics(t *testing.T) {
	everything := `[{apiGroups: ["*"], resources: ["*"], verbs: ["*"]}]`
	for _, tc := range []struct {
		name      string
		manifests []string
		ids       []string
		want      []string
	}{{
		name:      "one named secret is not every secret",
		manifests: []string{nsRole("app", "tls-reader", `[{apiGroups: [""], resources: [secrets], verbs: [get], resourceNames: [app-tls]}]`)},
		ids:       []string{"RBAC-003"},
	}, {
		name:      "list of secrets reads them all",
		manifests: []string{nsRole("app", "lister", `[{apiGroups: [""], resources: [secrets], verbs: [list], resourceNames: [app-tls]}, {apiGroups: [""], resources: [secrets], verbs: [list]}]`)},
		ids:       []string{"RBAC-003"},
		want:      []string{"RBAC-003 MEDIUM Role app/lister rules[1]: "},
	}, {
		name:      "pods/* is not a wildcard",
		manifests: []string{clusterRole("subs", "", `[{apiGroups: [""], resources: ["pods/*"], verbs: [create]}]`)},
		ids:       []string{"RBAC-005"},
	}, {
		name:      "*/exec is every resource's exec",
		manifests: []string{clusterRole("subs", "", `[{apiGroups: [""], resources: ["*/exec"], verbs: [create]}]`)},
		ids:       []string{"RBAC-005"},
		want:      []string{"RBAC-005 HIGH ClusterRole /subs rules[0]: ClusterRole \"subs\" can use pods/exec"},
	}, {
		name:      "exec into named pods is still exec, and says so",
		manifests: []string{nsRole("app", "debugger", `[{apiGroups: [""], resources: [pods/exec], verbs: [create], resourceNames: [api-0]}]`)},
		ids:       []string{"RBAC-005"},
		want:      []string{"RBAC-005 HIGH Role app/debugger rules[0]: Role \"debugger\" can use pods/exec (named api-0)"},
	}, {
		name:      "a system: name is not proof",
		manifests: []string{clusterRole("system:evil", "", everything), clusterBinding("evil", "system:evil", `[{kind: User, apiGroup: rbac.authorization.k8s.io, name: mallory}]`)},
		ids:       []string{"RBAC-001", "RBAC-002"},
		want: []string{
			"RBAC-001 HIGH ClusterRoleBinding /evil : ClusterRoleBinding \"evil\" grants ClusterRole \"system:evil\", which grants every verb on every resource as cluster-admin does, to User mallory",
			"RBAC-002 HIGH ClusterRole /system:evil rules[0]: ",
		},
	}, {
		name:      "nor is the bootstrapping label",
		manifests: []string{clusterRole("admin-ish", "kubernetes.io/bootstrapping: rbac-defaults", `[{apiGroups: [""], resources: [secrets], verbs: [get]}]`)},
		ids:       []string{"RBAC-003"},
		want:      []string{"RBAC-003 HIGH ClusterRole /admin-ish rules[0]: "},
	}, {
		name:      "the bootstrap role as Kubernetes defines it is built-in",
		manifests: []string{clusterRole("system:kube-controller-manager", "kubernetes.io/bootstrapping: rbac-defaults", bootstrapRules(t, "system:kube-controller-manager"))},
		ids:       []string{"RBAC-003", "RBAC-002", "RBAC-004"},
	}, {
		name: "a bootstrap role with a rule added is not",
		manifests: []string{clusterRole("system:kube-scheduler", "kubernetes.io/bootstrapping: rbac-defaults",
			strings.TrimSuffix(bootstrapRules(t, "system:kube-scheduler"), "]")+`, {apiGroups: [""], resources: [secrets], verbs: [list]}]`)},
		ids:  []string{"RBAC-003"},
		want: []string{"RBAC-003 HIGH ClusterRole /system:kube-scheduler rules["},
	}, {
		name:      "cluster-admin by effect, through a RoleBinding too",
		manifests: []string{clusterRole("superuser", "", everything), roleBinding("app", "ops", "ClusterRole", "superuser", `[{kind: Group, apiGroup: rbac.authorization.k8s.io, name: ops}]`)},
		ids:       []string{"RBAC-001"},
		want:      []string{"RBAC-001 HIGH RoleBinding app/ops : RoleBinding \"ops\" grants ClusterRole \"superuser\", which grants every verb"},
	}, {
		name:      "writing bindings is an escalation path, bind a worse one",
		manifests: []string{nsRole("app", "binder", `[{apiGroups: [rbac.authorization.k8s.io], resources: [rolebindings], verbs: [create]}, {apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [bind]}]`)},
		ids:       []string{"RBAC-007"},
		want: []string{
			"RBAC-007 CRITICAL Role app/binder rules[1]: Role \"binder\" can bind clusterroles",
			"RBAC-007 HIGH Role app/binder rules[0]: Role \"binder\" can create, update or patch rolebindings",
		},
	}, {
		name: "a rule aggregated into a built-in role is judged where it comes from",
		manifests: []string{
			"apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: admin, labels: {kubernetes.io/bootstrapping: rbac-defaults}}\naggregationRule:\n  clusterRoleSelectors: [{matchLabels: {rbac.authorization.k8s.io/aggregate-to-admin: \"true\"}}]\nrules: []\n",
			clusterRole("vendor-admin", `rbac.authorization.k8s.io/aggregate-to-admin: "true"`, `[{apiGroups: [""], resources: [secrets], verbs: [list]}]`),
		},
		ids:  []string{"RBAC-003"},
		want: []string{"RBAC-003 HIGH ClusterRole /vendor-admin rules[0]: "},
	}, {
		name: "creating pods hands over every service account of the namespace",
		manifests: []string{
			nsRole("ci", "deployer", `[{apiGroups: [apps], resources: [deployments], verbs: [create, update]}]`),
			roleBinding("ci", "runner-deploys", "Role", "deployer", `[{kind: ServiceAccount, name: runner, namespace: ci}]`),
			"apiVersion: v1\nkind: Pod\nmetadata: {name: runner, namespace: ci}\nspec: {serviceAccountName: runner, containers: [{name: r, image: runner:1}]}\n",
		},
		ids:  []string{"SA-005"},
		want: []string{"SA-005 MEDIUM Pod ci/runner : pods run as service account \"runner\", to which RoleBinding \"ci/runner-deploys\" grants Role \"deployer\" in namespace \"ci\" (can create deployments)"},
	}, {
		// Grants through groups are the namespace's, resolved once for
		// all its service accounts; a binding that names both the account
		// and its group counts once; the worst named is the first
		// cluster-wide grant, whichever way it came.
		name: "service accounts granted through groups and by name, each binding counted once",
		manifests: []string{
			nsRole("ci", "deployer", `[{apiGroups: [apps], resources: [deployments], verbs: [create]}]`),
			roleBinding("ci", "a-by-name", "Role", "deployer", `[{kind: ServiceAccount, name: runner, namespace: ci}]`),
			roleBinding("ci", "b-both", "Role", "deployer", `[{kind: ServiceAccount, name: runner, namespace: ci}, {kind: Group, apiGroup: rbac.authorization.k8s.io, name: "system:serviceaccounts:ci"}]`),
			clusterRole("pod-maker", "", `[{apiGroups: [""], resources: [pods], verbs: [create]}]`),
			"apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: c-every-sa}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pod-maker}\nsubjects: [{kind: Group, apiGroup: rbac.authorization.k8s.io, name: \"system:serviceaccounts\"}]\n",
			"apiVersion: v1\nkind: Pod\nmetadata: {name: runner, namespace: ci}\nspec: {serviceAccountName: runner, containers: [{name: r, image: runner:1}]}\n",
			"apiVersion: v1\nkind: Pod\nmetadata: {name: other, namespace: ci}\nspec: {serviceAccountName: other, containers: [{name: r, image: runner:1}]}\n",
			"apiVersion: v1\nkind: Pod\nmetadata: {name: elsewhere, namespace: web}\nspec: {serviceAccountName: runner, containers: [{name: r, image: runner:1}]}\n",
		},
		ids: []string{"SA-005"},
		want: []string{
			"SA-005 HIGH Pod ci/other : pods run as service account \"other\", to which ClusterRoleBinding \"c-every-sa\" grants ClusterRole \"pod-maker\" to group system:serviceaccounts cluster-wide (can create pods); 1 more binding grants it such powers",
			"SA-005 HIGH Pod ci/runner : pods run as service account \"runner\", to which ClusterRoleBinding \"c-every-sa\" grants ClusterRole \"pod-maker\" to group system:serviceaccounts cluster-wide (can create pods); 2 more bindings grant it such powers",
			"SA-005 HIGH Pod web/elsewhere : pods run as service account \"runner\", to which ClusterRoleBinding \"c-every-sa\" grants ClusterRole \"pod-maker\" to group system:serviceaccounts cluster-wide (can create pods)",
		},
	}, {
		// What a ClusterRole grants through a RoleBinding is its
		// namespaced part only, whichever binding of it comes first.
		name: "one ClusterRole bound in namespaces and cluster-wide",
		manifests: []string{
			clusterRole("pv-maker", "", `[{apiGroups: [""], resources: [pods, persistentvolumes], verbs: [create]}]`),
			roleBinding("a", "makers", "ClusterRole", "pv-maker", `[{kind: ServiceAccount, name: x, namespace: a}]`),
			clusterBinding("makers", "pv-maker", `[{kind: ServiceAccount, name: y, namespace: b}]`),
			roleBinding("c", "makers", "ClusterRole", "pv-maker", `[{kind: ServiceAccount, name: z}]`),
			"apiVersion: v1\nkind: Pod\nmetadata: {name: x, namespace: a}\nspec: {serviceAccountName: x, containers: [{name: r, image: runner:1}]}\n",
			"apiVersion: v1\nkind: Pod\nmetadata: {name: y, namespace: b}\nspec: {serviceAccountName: y, containers: [{name: r, image: runner:1}]}\n",
			"apiVersion: v1\nkind: Pod\nmetadata: {name: z, namespace: c}\nspec: {serviceAccountName: z, containers: [{name: r, image: runner:1}]}\n",
		},
		ids: []string{"SA-005"},
		want: []string{
			"SA-005 HIGH Pod b/y : pods run as service account \"y\", to which ClusterRoleBinding \"makers\" grants ClusterRole \"pv-maker\" cluster-wide (can create pods; can create persistentvolumes)",
			"SA-005 MEDIUM Pod a/x : pods run as service account \"x\", to which RoleBinding \"a/makers\" grants ClusterRole \"pv-maker\" in namespace \"a\" (can create pods)",
			"SA-005 MEDIUM Pod c/z : pods run as service account \"z\", to which RoleBinding \"c/makers\" grants ClusterRole \"pv-maker\" in namespace \"c\" (can create pods)",
		},
	}, {
		// Every binding that names a namespace's default account, by
		// account or by user name, from any namespace, once each, in the
		// bindings' order (cluster-wide first); the groups it is in
		// concern every account, not it.
		name: "the bindings of a default service account",
		manifests: []string{
			"apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, namespace: shop}\nautomountServiceAccountToken: false\n",
			"apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, namespace: quiet}\nautomountServiceAccountToken: false\n",
			roleBinding("shop", "a-view", "ClusterRole", "view", `[{kind: ServiceAccount, name: default}]`),
			clusterBinding("b-user", "view", `[{kind: User, apiGroup: rbac.authorization.k8s.io, name: "system:serviceaccount:shop:default"}, {kind: ServiceAccount, name: default, namespace: shop}]`),
			roleBinding("other", "c-from-elsewhere", "ClusterRole", "edit", `[{kind: ServiceAccount, name: default, namespace: shop}, {kind: ServiceAccount, name: default, namespace: billing}]`),
			roleBinding("quiet", "d-groups", "ClusterRole", "view", `[{kind: Group, apiGroup: rbac.authorization.k8s.io, name: "system:serviceaccounts:quiet"}, {kind: User, apiGroup: rbac.authorization.k8s.io, name: "system:serviceaccount:quiet:default-reader"}]`),
			clusterBinding("e-billing", "view", `[{kind: User, apiGroup: rbac.authorization.k8s.io, name: "system:serviceaccount:billing:default"}]`),
		},
		ids: []string{"SA-003"},
		want: []string{
			"SA-003 MEDIUM ServiceAccount billing/default : the default service account of namespace \"billing\" is bound by ClusterRoleBinding \"e-billing\", RoleBinding \"other/c-from-elsewhere\"",
			"SA-003 MEDIUM ServiceAccount shop/default : the default service account of namespace \"shop\" is bound by ClusterRoleBinding \"b-user\", RoleBinding \"shop/a-view\", RoleBinding \"other/c-from-elsewhere\"",
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := runChecks(t, tc.manifests, tc.ids...)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d findings, want %d:\n%s", len(got), len(tc.want), strings.Join(got, "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Errorf("finding %d:\n got %s\nwant %s…", i, got[i], tc.want[i])
				}
			}
		})
	}
}
