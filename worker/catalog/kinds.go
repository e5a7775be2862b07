package catalog

import (
	"fmt"
	"maps"
	"slices"
)

// kinds are the kinds a cluster's inventory holds, each in the API version
// fleetscan reads it in. worker/checks' Inventory has a field of each; a
// test there keeps the two equal.
var kinds = map[string]string{
	"Namespace":                      "v1",
	"Pod":                            "v1",
	"Service":                        "v1",
	"ServiceAccount":                 "v1",
	"ConfigMap":                      "v1",
	"Node":                           "v1",
	"LimitRange":                     "v1",
	"ResourceQuota":                  "v1",
	"ReplicationController":          "v1",
	"Deployment":                     "apps/v1",
	"ReplicaSet":                     "apps/v1",
	"StatefulSet":                    "apps/v1",
	"DaemonSet":                      "apps/v1",
	"Job":                            "batch/v1",
	"CronJob":                        "batch/v1",
	"Role":                           "rbac.authorization.k8s.io/v1",
	"ClusterRole":                    "rbac.authorization.k8s.io/v1",
	"RoleBinding":                    "rbac.authorization.k8s.io/v1",
	"ClusterRoleBinding":             "rbac.authorization.k8s.io/v1",
	"NetworkPolicy":                  "networking.k8s.io/v1",
	"Ingress":                        "networking.k8s.io/v1",
	"PodDisruptionBudget":            "policy/v1",
	"HorizontalPodAutoscaler":        "autoscaling/v2",
	"ValidatingWebhookConfiguration": "admissionregistration.k8s.io/v1",
	"MutatingWebhookConfiguration":   "admissionregistration.k8s.io/v1",
}

// CanonicalAPIVersion returns the API version fleetscan reads a kind in,
// or "" for kinds it does not read.
func CanonicalAPIVersion(kind string) string { return kinds[kind] }

// Kinds returns the kinds fleetscan reads, sorted.
func Kinds() []string { return slices.Sorted(maps.Keys(kinds)) }

// Unchecked is a document a snapshot holds that no check reads.
type Unchecked struct {
	// Location is "file:line".
	Location   string `json:"location"`
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	Reason     string `json:"reason"`
}

// String is "file:line: apiVersion Kind namespace/name: reason".
func (u Unchecked) String() string {
	name := u.Name
	if u.Namespace != "" {
		name = u.Namespace + "/" + name
	}
	return fmt.Sprintf("%s: %s %s %s: %s", u.Location, u.APIVersion, u.Kind, name, u.Reason)
}

// Why a document is not checked.
const (
	ReasonNoChecks = "no check reads this kind"
	ReasonUnknown  = "a kind fleetscan does not know, without a pod template at spec.template, spec.jobTemplate.spec.template or template"
)
