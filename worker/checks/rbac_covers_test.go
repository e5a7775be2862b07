package checks

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/component-helpers/auth/rbac/validation"
)

// TestCoversAsValidation: covers decides as the API server's escalation
// check, on every owner rule built from wildcards, subresources and
// resource names against every one-verb, one-resource question.
func TestCoversAsValidation(t *testing.T) {
	verbSets := [][]string{nil, {"get"}, {"get", "list"}, {"*"}, {"create"}}
	groupSets := [][]string{nil, {""}, {"apps"}, {"*"}, {"", "apps"}}
	resourceSets := [][]string{nil, {"pods"}, {"pods/exec"}, {"*/exec"}, {"*"}, {"pods", "secrets"}, {"deployments/scale"}, {"*/scale"}}
	nameSets := [][]string{nil, {"a"}, {"a", "b"}}
	urlSets := [][]string{nil, {"/healthz"}}
	var owners []rbacv1.PolicyRule
	for _, v := range verbSets {
		for _, g := range groupSets {
			for _, r := range resourceSets {
				for _, n := range nameSets {
					for _, u := range urlSets {
						owners = append(owners, rbacv1.PolicyRule{Verbs: v, APIGroups: g, Resources: r, ResourceNames: n, NonResourceURLs: u})
					}
				}
			}
		}
	}
	var servants []rbacv1.PolicyRule
	for _, v := range []string{"get", "create", "*"} {
		for _, g := range []string{"", "apps", "*"} {
			for _, r := range []string{"pods", "pods/exec", "secrets", "deployments/scale", "*", "*/exec"} {
				for _, n := range nameSets {
					servants = append(servants, rbacv1.PolicyRule{Verbs: []string{v}, APIGroups: []string{g}, Resources: []string{r}, ResourceNames: n})
				}
			}
		}
	}
	servants = append(servants, rbacv1.PolicyRule{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"pods"}})
	checked := 0
	for _, o := range owners {
		for _, s := range servants {
			want, _ := validation.Covers([]rbacv1.PolicyRule{o}, []rbacv1.PolicyRule{s})
			if got := covers(o, s); got != want {
				t.Errorf("covers(%+v, %+v) = %v, validation.Covers says %v", o, s, got, want)
			}
			checked++
		}
	}
	t.Logf("%d pairs compared", checked)
}
