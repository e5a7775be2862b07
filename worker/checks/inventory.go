package checks

import (
	"fmt"
	"math"
	"reflect"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/fleetscan/fleetscan/worker/catalog"
)

// Inventory is what the checks read of one cluster: the objects of the
// kinds they need, typed.
type Inventory struct {
	Namespaces               []corev1.Namespace
	Pods                     []corev1.Pod
	Services                 []corev1.Service
	ServiceAccounts          []corev1.ServiceAccount
	Deployments              []appsv1.Deployment
	ReplicaSets              []appsv1.ReplicaSet
	StatefulSets             []appsv1.StatefulSet
	DaemonSets               []appsv1.DaemonSet
	Jobs                     []batchv1.Job
	CronJobs                 []batchv1.CronJob
	Roles                    []rbacv1.Role
	ClusterRoles             []rbacv1.ClusterRole
	RoleBindings             []rbacv1.RoleBinding
	ClusterRoleBindings      []rbacv1.ClusterRoleBinding
	NetworkPolicies          []networkingv1.NetworkPolicy
	ConfigMaps               []corev1.ConfigMap
	Nodes                    []corev1.Node
	LimitRanges              []corev1.LimitRange
	ResourceQuotas           []corev1.ResourceQuota
	PodDisruptionBudgets     []policyv1.PodDisruptionBudget
	Ingresses                []networkingv1.Ingress
	ValidatingWebhooks       []admissionregistrationv1.ValidatingWebhookConfiguration
	MutatingWebhooks         []admissionregistrationv1.MutatingWebhookConfiguration
	ReplicationControllers   []corev1.ReplicationController
	HorizontalPodAutoscalers []autoscalingv2.HorizontalPodAutoscaler

	// ManagedPods are the Pods that a workload controller of the
	// inventory manages outside kube-system, kept as their metadata when
	// the inventory drops what no check reads (TrimUnread): they are
	// reported through their controller's template, and the checks read
	// only their labels, annotations and owners. On a live cluster they
	// are the most numerous kind that runs anything, and a Pod's struct
	// alone is five times its metadata's.
	ManagedPods []metav1.PartialObjectMetadata
	// ManagedReplicaSets are, likewise, the ReplicaSets a Deployment
	// manages outside kube-system, kept as their metadata and their pods'
	// labels (which an autoscaler that targets one matches): a
	// Deployment keeps up to ten old ones beside the current.
	ManagedReplicaSets []ReplicaSetMeta

	// Templated are objects of other kinds that run pods from a template
	// (Argo Rollouts, OpenShift DeploymentConfigs, Knative Services, …),
	// read generically: the workload checks read their templates.
	Templated []TemplatedObject

	// Unchecked are the documents of a snapshot that no check reads,
	// each with where and why, so that a report shows them instead of a
	// count.
	Unchecked []catalog.Unchecked

	// ServerVersion is the API server's gitVersion, e.g. "v1.37.2"; empty
	// when unknown (a snapshot).
	ServerVersion string

	// Locations maps "Kind/namespace/name" to where a snapshot defines the
	// object ("file:line"), so that findings can point at source files.
	Locations map[string]string

	// WrittenAs maps "Kind/namespace/name" to the removed API version a
	// snapshot's manifest is written in, for the objects the loader read
	// in the current version instead (NS-008 reports it).
	WrittenAs map[string]string

	// Problems are what the collector could not read, each with where
	// and why (a snapshot's "file:line: reason"). A scan of an inventory
	// with problems is incomplete, whatever it finds.
	Problems []string

	// Trim is how far Add reduces objects to what the checks read (see
	// TrimMode); WholeKinds are kinds it keeps whole whatever the mode:
	// those that custom checks read (Selection.CustomKinds).
	Trim       TrimMode
	WholeKinds map[string]bool

	// intern shares equal maps between objects when Trim is TrimUnread;
	// Part hands it on, so that a collector's parts share one.
	intern *interner
}

// Part returns an empty inventory that adds objects as inv does (the same
// trim, the same whole kinds, the same shared maps), for a collector to
// fill and hand to Absorb.
func (inv *Inventory) Part() *Inventory {
	if inv.Trim == TrimUnread && inv.intern == nil {
		inv.intern = newInterner()
	}
	return &Inventory{Trim: inv.Trim, WholeKinds: inv.WholeKinds, intern: inv.intern}
}

// TrimMode says how far Inventory.Add reduces the objects it holds.
type TrimMode int

const (
	// TrimBookkeeping drops what the API server keeps for itself (see
	// Trim): managedFields' field sets, last-applied copies. The default.
	TrimBookkeeping TrimMode = iota
	// TrimNone keeps objects as they came.
	TrimNone
	// TrimUnread also drops what no built-in check reads (see
	// DropUnread): statuses, and the pod specs of what a workload
	// controller manages.
	TrimUnread
)

// Merge moves the objects of other into inv, as Absorb does, with what
// other says of them (problems, unchecked documents, locations, versions
// written). The objects are kept as other holds them, trimmed as other's
// Trim said when they were added. other must not be used afterwards.
func (inv *Inventory) Merge(other *Inventory) {
	inv.MergeExpecting(other, 1)
}

// MergeExpecting is Merge for a collector that has merged about 1/scale
// of what it will: a slice or map that must grow grows to scale times
// what it holds, once, instead of by Go's 1.25 steps, each a copy of
// every object and the old copy left to the collector (at 100,000
// objects, 7% of a scan's CPU and a peak of two copies of the largest
// kinds). With no estimate (scale 1) a slice doubles.
func (inv *Inventory) MergeExpecting(other *Inventory, scale float64) {
	inv.absorb(other, scale) // Unchecked too: it is a slice of structs
	if inv.ServerVersion == "" {
		inv.ServerVersion = other.ServerVersion
	}
	inv.Problems = append(inv.Problems, other.Problems...)
	inv.WrittenAs = mergeMap(inv.WrittenAs, other.WrittenAs, scale)
	inv.Locations = mergeMap(inv.Locations, other.Locations, scale)
}

// mergeMap adds src to dst; a nil dst takes src as it is, or a copy sized
// for scale times it.
func mergeMap(dst, src map[string]string, scale float64) map[string]string {
	if dst == nil {
		if scale <= 1 || src == nil {
			return src
		}
		dst = make(map[string]string, expected(len(src), scale))
	}
	for k, v := range src {
		dst[k] = v
	}
	return dst
}

// expected is n scaled, with 5% to spare for an uneven spread.
func expected(n int, scale float64) int {
	return int(math.Ceil(float64(n) * max(scale, 1) * 1.05))
}

// Counts returns how many objects each of inv's kinds holds, in an order
// of its own, for Expect.
func (inv *Inventory) Counts() []int {
	v := reflect.ValueOf(inv).Elem()
	out := make([]int, v.NumField())
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Slice {
			out[i] = f.Len()
		}
	}
	return out
}

// Expect makes room in an empty inventory for scale times counts (from
// Counts) objects of each kind: a collector that reads a snapshot file by
// file sizes each file's inventory from what the files before it held,
// instead of growing every kind's slice in steps.
func (inv *Inventory) Expect(counts []int, scale float64) {
	v := reflect.ValueOf(inv).Elem()
	for i := range min(v.NumField(), len(counts)) {
		f := v.Field(i)
		if f.Kind() != reflect.Slice || f.Type().Elem().Kind() != reflect.Struct || counts[i] == 0 || f.Len() != 0 {
			continue
		}
		if n := int(math.Ceil(float64(counts[i]) * scale * 1.1)); n > f.Cap() {
			f.Set(reflect.MakeSlice(f.Type(), 0, n))
		}
	}
}

// Absorb moves the objects of part into inv: a kind inv does not hold yet
// takes part's slice as it is, without a copy, so that a collector can
// read a kind into an inventory of its own and keep it only once it is
// complete. part must not be used afterwards.
func (inv *Inventory) Absorb(part *Inventory) {
	inv.absorb(part, 1)
}

func (inv *Inventory) absorb(part *Inventory, scale float64) {
	dst, src := reflect.ValueOf(inv).Elem(), reflect.ValueOf(part).Elem()
	for i := range dst.NumField() {
		d, s := dst.Field(i), src.Field(i)
		if d.Kind() != reflect.Slice || d.Type().Elem().Kind() != reflect.Struct || s.Len() == 0 {
			continue
		}
		need := d.Len() + s.Len()
		switch {
		case d.Len() == 0 && (scale <= 1 || d.Cap() >= need):
			d.Set(s)
			continue
		case d.Cap() < need:
			// Without an estimate the slice doubles, as append grows a
			// small one: growing it by a few percent for each file
			// copied it once per file, twice the inventory's bytes.
			size := 2 * need
			if scale > 1 {
				size = max(need, expected(need, scale))
			}
			grown := reflect.MakeSlice(d.Type(), d.Len(), size)
			reflect.Copy(grown, d)
			d.Set(grown)
		}
		d.Set(reflect.AppendSlice(d, s))
	}
}

// Reserve makes room for n objects of sample's kind, so that adding them
// does not grow the kind's slice again and again. Objects of kinds the
// inventory does not hold are ignored.
func (inv *Inventory) Reserve(sample runtime.Object, n int) {
	t := reflect.TypeOf(sample)
	if t.Kind() != reflect.Pointer || n <= 0 {
		return
	}
	// Most pods and ReplicaSets are kept as metadata; the few others grow
	// their slice.
	switch sample.(type) {
	case *corev1.Pod:
		if inv.compactsManaged("Pod") {
			t = reflect.TypeFor[*metav1.PartialObjectMetadata]()
		}
	case *appsv1.ReplicaSet:
		if inv.compactsManaged("ReplicaSet") {
			t = reflect.TypeFor[*ReplicaSetMeta]()
		}
	}
	v := reflect.ValueOf(inv).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() != reflect.Slice || f.Type().Elem() != t.Elem() {
			continue
		}
		if f.Cap()-f.Len() < n {
			grown := reflect.MakeSlice(f.Type(), f.Len(), f.Len()+n)
			reflect.Copy(grown, f)
			f.Set(grown)
		}
		return
	}
}

// Location returns where a snapshot defines the object, or "".
func (inv *Inventory) Location(kind, namespace, name string) string {
	return inv.Locations[kind+"/"+namespace+"/"+name]
}

// Locator answers Location for a stream of findings on one goroutine.
// Findings come resource by resource, so it keeps its last answer, and it
// builds the key in a buffer of its own: at 100,000 objects a scan asked
// half a million times, each a new string and a miss in a map too large
// for the processor's caches.
type Locator struct {
	inv                   *Inventory
	kind, namespace, name string
	location              string
	asked                 bool
	key                   []byte
}

// Locator returns a Locator over inv.
func (inv *Inventory) Locator() *Locator { return &Locator{inv: inv} }

// Location is Inventory.Location.
func (l *Locator) Location(kind, namespace, name string) string {
	if l.asked && kind == l.kind && namespace == l.namespace && name == l.name {
		return l.location
	}
	l.key = append(append(append(append(append(l.key[:0], kind...), '/'), namespace...), '/'), name...)
	l.kind, l.namespace, l.name, l.asked = kind, namespace, name, true
	l.location = l.inv.Locations[string(l.key)]
	return l.location
}

// Add stores a decoded object in the inventory. It reports false for kinds
// the checks do not read.
func (inv *Inventory) Add(obj runtime.Object) bool {
	if m, ok := obj.(metav1.Object); ok && inv.Trim != TrimNone {
		Trim(m)
		if inv.Trim == TrimUnread {
			DropUnread(obj, inv.WholeKinds)
			if inv.intern == nil {
				inv.intern = newInterner()
			}
			inv.intern.object(obj)
		}
	}
	switch o := obj.(type) {
	case *corev1.Namespace:
		inv.Namespaces = append(inv.Namespaces, *o)
	case *corev1.Pod:
		if inv.compactsManaged("Pod") && managed(&o.ObjectMeta) {
			inv.ManagedPods = append(inv.ManagedPods, metav1.PartialObjectMetadata{TypeMeta: podType, ObjectMeta: o.ObjectMeta})
		} else {
			inv.Pods = append(inv.Pods, *o)
		}
	case *metav1.PartialObjectMetadata:
		if o.Kind != "Pod" {
			return false
		}
		inv.ManagedPods = append(inv.ManagedPods, *o)
	case *corev1.Service:
		inv.Services = append(inv.Services, *o)
	case *corev1.ServiceAccount:
		inv.ServiceAccounts = append(inv.ServiceAccounts, *o)
	case *appsv1.Deployment:
		inv.Deployments = append(inv.Deployments, *o)
	case *appsv1.ReplicaSet:
		if inv.compactsManaged("ReplicaSet") && managed(&o.ObjectMeta) {
			inv.ManagedReplicaSets = append(inv.ManagedReplicaSets, ReplicaSetMeta{
				PartialObjectMetadata: metav1.PartialObjectMetadata{TypeMeta: replicaSetType, ObjectMeta: o.ObjectMeta},
				PodLabels:             o.Spec.Template.Labels,
			})
		} else {
			inv.ReplicaSets = append(inv.ReplicaSets, *o)
		}
	case *ReplicaSetMeta:
		inv.ManagedReplicaSets = append(inv.ManagedReplicaSets, *o)
	case *appsv1.StatefulSet:
		inv.StatefulSets = append(inv.StatefulSets, *o)
	case *appsv1.DaemonSet:
		inv.DaemonSets = append(inv.DaemonSets, *o)
	case *batchv1.Job:
		inv.Jobs = append(inv.Jobs, *o)
	case *batchv1.CronJob:
		inv.CronJobs = append(inv.CronJobs, *o)
	case *rbacv1.Role:
		inv.Roles = append(inv.Roles, *o)
	case *rbacv1.ClusterRole:
		inv.ClusterRoles = append(inv.ClusterRoles, *o)
	case *rbacv1.RoleBinding:
		inv.RoleBindings = append(inv.RoleBindings, *o)
	case *rbacv1.ClusterRoleBinding:
		inv.ClusterRoleBindings = append(inv.ClusterRoleBindings, *o)
	case *networkingv1.NetworkPolicy:
		inv.NetworkPolicies = append(inv.NetworkPolicies, *o)
	case *corev1.ConfigMap:
		inv.ConfigMaps = append(inv.ConfigMaps, *o)
	case *corev1.Node:
		inv.Nodes = append(inv.Nodes, *o)
	case *corev1.LimitRange:
		inv.LimitRanges = append(inv.LimitRanges, *o)
	case *corev1.ResourceQuota:
		inv.ResourceQuotas = append(inv.ResourceQuotas, *o)
	case *policyv1.PodDisruptionBudget:
		inv.PodDisruptionBudgets = append(inv.PodDisruptionBudgets, *o)
	case *networkingv1.Ingress:
		inv.Ingresses = append(inv.Ingresses, *o)
	case *admissionregistrationv1.ValidatingWebhookConfiguration:
		inv.ValidatingWebhooks = append(inv.ValidatingWebhooks, *o)
	case *admissionregistrationv1.MutatingWebhookConfiguration:
		inv.MutatingWebhooks = append(inv.MutatingWebhooks, *o)
	case *corev1.ReplicationController:
		inv.ReplicationControllers = append(inv.ReplicationControllers, *o)
	case *autoscalingv2.HorizontalPodAutoscaler:
		inv.HorizontalPodAutoscalers = append(inv.HorizontalPodAutoscalers, *o)
	case *TemplatedObject:
		inv.Templated = append(inv.Templated, *o)
	default:
		return false
	}
	return true
}

var (
	podType        = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}
	replicaSetType = metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"}
)

// ReplicaSetMeta is a managed ReplicaSet as the inventory keeps it (see
// Inventory.ManagedReplicaSets).
type ReplicaSetMeta struct {
	metav1.PartialObjectMetadata
	// PodLabels are the labels of its pod template.
	PodLabels map[string]string
}

// compactsManaged reports whether Add keeps the managed objects of kind
// (Pod, ReplicaSet) as their metadata.
func (inv *Inventory) compactsManaged(kind string) bool {
	return inv.Trim == TrimUnread && !inv.WholeKinds[kind]
}

// Len is the number of objects in the inventory.
func (inv *Inventory) Len() int {
	return len(inv.Namespaces) + len(inv.Pods) + len(inv.Services) + len(inv.ServiceAccounts) +
		len(inv.Deployments) + len(inv.ReplicaSets) + len(inv.StatefulSets) + len(inv.DaemonSets) +
		len(inv.Jobs) + len(inv.CronJobs) + len(inv.Roles) + len(inv.ClusterRoles) +
		len(inv.RoleBindings) + len(inv.ClusterRoleBindings) + len(inv.NetworkPolicies) +
		len(inv.ConfigMaps) + len(inv.Nodes) + len(inv.LimitRanges) + len(inv.ResourceQuotas) +
		len(inv.PodDisruptionBudgets) + len(inv.Ingresses) + len(inv.ValidatingWebhooks) + len(inv.MutatingWebhooks) +
		len(inv.ReplicationControllers) + len(inv.HorizontalPodAutoscalers) + len(inv.Templated) + len(inv.ManagedPods) + len(inv.ManagedReplicaSets)
}

// Workload is anything that runs pods: a controller's pod template or a bare
// Pod.
type Workload struct {
	Resource
	Meta *metav1.ObjectMeta
	// PodLabels are the labels its pods carry, for selector matching.
	PodLabels map[string]string
	// PodMeta is the metadata its pods get: the template's, or the Pod's.
	PodMeta *metav1.ObjectMeta
	Spec    *corev1.PodSpec
}

// Container is one container of a workload, of any of the three lists.
type Container struct {
	// Path names it inside the workload, e.g. "containers[app]",
	// "initContainers[setup]", "ephemeralContainers[debug]".
	Path            string
	Name            string
	Image           string
	SecurityContext *corev1.SecurityContext
	Ports           []corev1.ContainerPort
	Env             []corev1.EnvVar
	VolumeMounts    []corev1.VolumeMount
	Resources       corev1.ResourceRequirements
	// Ephemeral containers cannot have resources or probes.
	Ephemeral bool
}

// Workloads lists the inventory's workloads. A Pod or ReplicaSet or Job
// whose controller is a workload of the inventory is left out: its
// controller is reported instead, once, rather than every replica. One
// whose controller is of a kind fleetscan does not read (an operator's
// custom resource without a pod template) is reported itself: nothing
// runs unchecked.
func (inv *Inventory) Workloads() []Workload {
	out := make([]Workload, 0, len(inv.Deployments)+len(inv.StatefulSets)+len(inv.DaemonSets)+len(inv.ReplicaSets)+
		len(inv.ReplicationControllers)+len(inv.CronJobs)+len(inv.Jobs)+len(inv.Templated)+len(inv.Pods))
	reported := inv.templateOwners()
	add := func(apiVersion, kind string, meta *metav1.ObjectMeta, tmpl *corev1.PodTemplateSpec) {
		if controlledBy(meta, reported) {
			return
		}
		out = append(out, Workload{
			Resource:  resourceOf(apiVersion, kind, meta),
			Meta:      meta,
			PodLabels: tmpl.Labels,
			PodMeta:   &tmpl.ObjectMeta,
			Spec:      &tmpl.Spec,
		})
	}
	for i := range inv.Deployments {
		o := &inv.Deployments[i]
		add("apps/v1", "Deployment", &o.ObjectMeta, &o.Spec.Template)
	}
	for i := range inv.StatefulSets {
		o := &inv.StatefulSets[i]
		add("apps/v1", "StatefulSet", &o.ObjectMeta, &o.Spec.Template)
	}
	for i := range inv.DaemonSets {
		o := &inv.DaemonSets[i]
		add("apps/v1", "DaemonSet", &o.ObjectMeta, &o.Spec.Template)
	}
	for i := range inv.ReplicaSets {
		o := &inv.ReplicaSets[i]
		add("apps/v1", "ReplicaSet", &o.ObjectMeta, &o.Spec.Template)
	}
	for i := range inv.ReplicationControllers {
		o := &inv.ReplicationControllers[i]
		if o.Spec.Template != nil {
			add("v1", "ReplicationController", &o.ObjectMeta, o.Spec.Template)
		}
	}
	for i := range inv.CronJobs {
		o := &inv.CronJobs[i]
		add("batch/v1", "CronJob", &o.ObjectMeta, &o.Spec.JobTemplate.Spec.Template)
	}
	for i := range inv.Jobs {
		o := &inv.Jobs[i]
		add("batch/v1", "Job", &o.ObjectMeta, &o.Spec.Template)
	}
	for i := range inv.Templated {
		o := &inv.Templated[i]
		add(o.APIVersion, o.Kind, &o.ObjectMeta, &o.Template)
	}
	for i := range inv.Pods {
		o := &inv.Pods[i]
		if controlledBy(&o.ObjectMeta, reported) {
			continue
		}
		out = append(out, Workload{
			Resource:  resourceOf("v1", "Pod", &o.ObjectMeta),
			Meta:      &o.ObjectMeta,
			PodLabels: o.Labels,
			PodMeta:   &o.ObjectMeta,
			Spec:      &o.Spec,
		})
	}
	return out
}

// templateOwners returns the objects of kinds fleetscan reads generically
// (Templated), as "Kind/namespace/name": what they control is reported
// through them.
func (inv *Inventory) templateOwners() map[string]bool {
	out := map[string]bool{}
	for i := range inv.Templated {
		o := &inv.Templated[i]
		out[o.Kind+"/"+o.Namespace+"/"+o.Name] = true
	}
	return out
}

// controlledBy reports whether m's pods are reported through its
// controller: one of Kubernetes' workload kinds, which a live scan always
// reads, or one of owners (see templateOwners). The mirror pods of static
// pods, which their Node owns, are the control plane's: the control-plane
// checks judge them by their flags, as before.
func controlledBy(m *metav1.ObjectMeta, owners map[string]bool) bool {
	ref := metav1.GetControllerOfNoCopy(m)
	return ref != nil && (workloadControllers[ref.Kind] || ref.Kind == "Node" || owners[ref.Kind+"/"+m.Namespace+"/"+ref.Name])
}

// Containers lists a workload's containers: init, regular, then ephemeral.
func (w *Workload) Containers() []Container {
	var out []Container
	for _, c := range w.Spec.InitContainers {
		out = append(out, fromContainer("initContainers", &c))
	}
	for _, c := range w.Spec.Containers {
		out = append(out, fromContainer("containers", &c))
	}
	for _, e := range w.Spec.EphemeralContainers {
		c := e.EphemeralContainerCommon
		out = append(out, Container{
			Path: fmt.Sprintf("ephemeralContainers[%s]", c.Name), Name: c.Name, Image: c.Image,
			SecurityContext: c.SecurityContext, Ports: c.Ports, Env: c.Env, VolumeMounts: c.VolumeMounts,
			Ephemeral: true,
		})
	}
	return out
}

func fromContainer(list string, c *corev1.Container) Container {
	return Container{
		Path: fmt.Sprintf("%s[%s]", list, c.Name), Name: c.Name, Image: c.Image,
		SecurityContext: c.SecurityContext, Ports: c.Ports, Env: c.Env, VolumeMounts: c.VolumeMounts,
		Resources: c.Resources,
	}
}

// objectFunc receives one object of the inventory with its type.
type objectFunc func(apiVersion, kind string, m metav1.Object, obj runtime.Object)

// eachObject calls fn with every object of the inventory.
func (inv *Inventory) eachObject(fn objectFunc) { inv.walk(nil, fn) }

// walk calls kindFn with every kind the inventory can hold, and fn with
// every object; either may be nil. TestCatalogKinds compares the kinds with
// the catalog's.
func (inv *Inventory) walk(kindFn func(apiVersion, kind string), fn objectFunc) {
	visit(inv.Namespaces, "v1", "Namespace", kindFn, fn)
	visit(inv.Pods, "v1", "Pod", kindFn, fn)
	visit(inv.ManagedPods, "v1", "Pod", nil, fn)
	visit(inv.ManagedReplicaSets, "apps/v1", "ReplicaSet", nil, fn)
	visit(inv.Services, "v1", "Service", kindFn, fn)
	visit(inv.ServiceAccounts, "v1", "ServiceAccount", kindFn, fn)
	visit(inv.ConfigMaps, "v1", "ConfigMap", kindFn, fn)
	visit(inv.Nodes, "v1", "Node", kindFn, fn)
	visit(inv.LimitRanges, "v1", "LimitRange", kindFn, fn)
	visit(inv.ResourceQuotas, "v1", "ResourceQuota", kindFn, fn)
	visit(inv.ReplicationControllers, "v1", "ReplicationController", kindFn, fn)
	visit(inv.Deployments, "apps/v1", "Deployment", kindFn, fn)
	visit(inv.ReplicaSets, "apps/v1", "ReplicaSet", kindFn, fn)
	visit(inv.StatefulSets, "apps/v1", "StatefulSet", kindFn, fn)
	visit(inv.DaemonSets, "apps/v1", "DaemonSet", kindFn, fn)
	visit(inv.Jobs, "batch/v1", "Job", kindFn, fn)
	visit(inv.CronJobs, "batch/v1", "CronJob", kindFn, fn)
	visit(inv.Roles, "rbac.authorization.k8s.io/v1", "Role", kindFn, fn)
	visit(inv.ClusterRoles, "rbac.authorization.k8s.io/v1", "ClusterRole", kindFn, fn)
	visit(inv.RoleBindings, "rbac.authorization.k8s.io/v1", "RoleBinding", kindFn, fn)
	visit(inv.ClusterRoleBindings, "rbac.authorization.k8s.io/v1", "ClusterRoleBinding", kindFn, fn)
	visit(inv.NetworkPolicies, "networking.k8s.io/v1", "NetworkPolicy", kindFn, fn)
	visit(inv.Ingresses, "networking.k8s.io/v1", "Ingress", kindFn, fn)
	visit(inv.PodDisruptionBudgets, "policy/v1", "PodDisruptionBudget", kindFn, fn)
	visit(inv.HorizontalPodAutoscalers, "autoscaling/v2", "HorizontalPodAutoscaler", kindFn, fn)
	visit(inv.ValidatingWebhooks, "admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", kindFn, fn)
	visit(inv.MutatingWebhooks, "admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", kindFn, fn)
	// Templated objects are of many kinds, each named by the object.
	if fn != nil {
		for i := range inv.Templated {
			o := &inv.Templated[i]
			fn(o.APIVersion, o.Kind, o, o)
		}
	}
}

func visit[T any, PT interface {
	*T
	metav1.Object
	runtime.Object
}](items []T, apiVersion, kind string, kindFn func(apiVersion, kind string), fn objectFunc) {
	if kindFn != nil {
		kindFn(apiVersion, kind)
	}
	if fn == nil {
		return
	}
	for i := range items {
		p := PT(&items[i])
		fn(apiVersion, kind, p, p)
	}
}
