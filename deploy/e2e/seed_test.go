//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

// fieldManager names the harness in managedFields.
const fieldManager = "fleetscan-e2e"

// readManifests decodes every YAML document of the .yaml files under dirs,
// in lexical order, expanding Lists.
func readManifests(dirs ...string) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil {
			return nil, err
		}
		sort.Strings(files)
		for _, f := range files {
			objs, err := decodeFile(f)
			if err != nil {
				return nil, err
			}
			out = append(out, objs...)
		}
	}
	return out, nil
}

func decodeFile(path string) ([]*unstructured.Unstructured, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec := yaml.NewYAMLOrJSONDecoder(f, 4096)
	var out []*unstructured.Unstructured
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(doc) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: doc}
		if u.IsList() {
			l, err := u.ToList()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			for i := range l.Items {
				out = append(out, &l.Items[i])
			}
			continue
		}
		out = append(out, u)
	}
}

// applyOrder applies namespaces first and pods last: a namespaced object
// needs its namespace, and the ServiceAccount admission plugin refuses a
// pod whose service account does not exist yet.
func applyOrder(kind string) int {
	switch kind {
	case "Namespace":
		return 0
	case "ServiceAccount":
		return 1
	case "Pod":
		return 3
	}
	return 2
}

// seed applies objs to the cluster with server-side apply, as kubectl
// apply --server-side would. Objects of kinds the API server does not
// serve (custom resources of components the snapshots only mention) are
// returned as skipped, "Kind namespace/name", for the caller to check.
func (cp *controlPlane) seed(ctx context.Context, objs []*unstructured.Unstructured) (skipped []string, err error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cp.admin)
	if err != nil {
		return nil, err
	}
	groups, err := restmapper.GetAPIGroupResources(dc)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	dyn, err := dynamic.NewForConfig(cp.admin)
	if err != nil {
		return nil, err
	}
	objs = slices.Clone(objs)
	slices.SortStableFunc(objs, func(a, b *unstructured.Unstructured) int {
		return applyOrder(a.GetKind()) - applyOrder(b.GetKind())
	})
	defaultSAs := false
	for _, u := range objs {
		if applyOrder(u.GetKind()) > 1 && !defaultSAs {
			// What kube-controller-manager would do, which these tests do not run.
			if err := cp.defaultServiceAccounts(ctx); err != nil {
				return nil, err
			}
			defaultSAs = true
		}
		// What an export carries that a create must not.
		for _, f := range []string{"resourceVersion", "uid", "creationTimestamp", "generation", "managedFields", "selfLink"} {
			unstructured.RemoveNestedField(u.Object, "metadata", f)
		}
		gvk := u.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if meta.IsNoMatchError(err) {
			skipped = append(skipped, fmt.Sprintf("%s %s/%s", u.GetKind(), u.GetNamespace(), u.GetName()))
			continue
		}
		if err != nil {
			return nil, err
		}
		ri := dynamic.ResourceInterface(dyn.Resource(m.Resource))
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			if u.GetNamespace() == "" {
				u.SetNamespace(corev1.NamespaceDefault)
			}
			ri = dyn.Resource(m.Resource).Namespace(u.GetNamespace())
		}
		if _, err := ri.Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
			return nil, fmt.Errorf("apply %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
		// A Node's status is what its kubelet reports, and no kubelet runs
		// here: the fixture's status stands in for it. (Other kinds keep
		// the status the API server gives them, as on a real cluster.)
		if _, ok := u.Object["status"]; ok && u.GetKind() == "Node" {
			if _, err := ri.ApplyStatus(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
				return nil, fmt.Errorf("apply the status of %s %s: %w", u.GetKind(), u.GetName(), err)
			}
		}
	}
	if !defaultSAs {
		err = cp.defaultServiceAccounts(ctx)
	}
	return skipped, err
}

// defaultServiceAccounts creates the "default" ServiceAccount in every
// namespace that lacks one, as the controller-manager does on a real
// cluster.
func (cp *controlPlane) defaultServiceAccounts(ctx context.Context) error {
	nss, err := cp.client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, ns := range nss.Items {
		_, err := cp.client.CoreV1().ServiceAccounts(ns.Name).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{FieldManager: fieldManager})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("default service account in %s: %w", ns.Name, err)
		}
	}
	return nil
}
