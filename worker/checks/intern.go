package checks

import (
	"maps"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// interner shares equal maps between the objects of an inventory. On a
// live cluster the same label sets, selectors and resource requests recur
// on every replica, template and controller of a workload, and each came
// decoded into a map of its own: a map of two labels costs more than the
// Pod's name, namespace and owner together. The checks only read these
// maps, so one copy serves every object that carries the same content.
type interner struct {
	strs      map[string]map[string]string
	resources map[string]corev1.ResourceList
	key       strings.Builder
}

func newInterner() *interner {
	return &interner{strs: map[string]map[string]string{}, resources: map[string]corev1.ResourceList{}}
}

// stringMap returns the shared map equal to m (m itself the first time).
func (in *interner) stringMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return m
	}
	in.key.Reset()
	for _, k := range slices.Sorted(maps.Keys(m)) {
		in.key.WriteString(k)
		in.key.WriteByte(0)
		in.key.WriteString(m[k])
		in.key.WriteByte(0)
	}
	if shared, ok := in.strs[in.key.String()]; ok {
		return shared
	}
	in.strs[in.key.String()] = m
	return m
}

// resourceList returns the shared list equal to l (l itself the first
// time). Quantities compare by their canonical string, as the API server
// serialises them.
func (in *interner) resourceList(l corev1.ResourceList) corev1.ResourceList {
	if len(l) == 0 {
		return l
	}
	in.key.Reset()
	for _, k := range slices.Sorted(maps.Keys(l)) {
		q := l[k]
		in.key.WriteString(string(k))
		in.key.WriteByte(0)
		in.key.WriteString(q.String())
		in.key.WriteByte(0)
	}
	if shared, ok := in.resources[in.key.String()]; ok {
		return shared
	}
	in.resources[in.key.String()] = l
	return l
}

// object shares the maps of obj that recur: labels, selectors, the pod
// template's labels and its containers' resources.
func (in *interner) object(obj runtime.Object) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetLabels(in.stringMap(m.GetLabels()))
	}
	switch o := obj.(type) {
	case *corev1.Pod:
		in.podSpec(&o.Spec)
	case *appsv1.Deployment:
		in.selector(o.Spec.Selector)
		in.template(&o.Spec.Template)
	case *appsv1.ReplicaSet:
		in.selector(o.Spec.Selector)
		in.template(&o.Spec.Template)
	case *appsv1.StatefulSet:
		in.selector(o.Spec.Selector)
		in.template(&o.Spec.Template)
	case *appsv1.DaemonSet:
		in.selector(o.Spec.Selector)
		in.template(&o.Spec.Template)
	case *batchv1.Job:
		in.selector(o.Spec.Selector)
		in.template(&o.Spec.Template)
	case *batchv1.CronJob:
		in.selector(o.Spec.JobTemplate.Spec.Selector)
		in.template(&o.Spec.JobTemplate.Spec.Template)
	case *corev1.ReplicationController:
		o.Spec.Selector = in.stringMap(o.Spec.Selector)
		if o.Spec.Template != nil {
			in.template(o.Spec.Template)
		}
	case *corev1.Service:
		o.Spec.Selector = in.stringMap(o.Spec.Selector)
	}
}

func (in *interner) selector(s *metav1.LabelSelector) {
	if s != nil {
		s.MatchLabels = in.stringMap(s.MatchLabels)
	}
}

func (in *interner) template(t *corev1.PodTemplateSpec) {
	t.Labels = in.stringMap(t.Labels)
	in.podSpec(&t.Spec)
}

func (in *interner) podSpec(s *corev1.PodSpec) {
	s.NodeSelector = in.stringMap(s.NodeSelector)
	for _, list := range [][]corev1.Container{s.InitContainers, s.Containers} {
		for i := range list {
			r := &list[i].Resources
			r.Requests = in.resourceList(r.Requests)
			r.Limits = in.resourceList(r.Limits)
		}
	}
}
