package checks

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/fleetscan/fleetscan/worker/catalog"
	"github.com/fleetscan/fleetscan/worker/policy"
)

// customCheck runs a custom check compiled by worker/policy on the
// inventory's objects, in their unstructured form.
type customCheck struct {
	*policy.Custom

	// Evaluation failures: counted and reported as not assessable.
	failures int
	first    string
}

// check wraps the compiled custom check in a Check for the engine.
func (c *customCheck) check() *Check {
	meta := c.Meta()
	return &Check{ID: meta.ID, meta: meta, inventory: func(r *reporter, inv *Inventory) {
		inv.eachObject(func(apiVersion, kind string, m metav1.Object, obj runtime.Object) {
			if !c.Matches(kind, m.GetNamespace(), m.GetLabels()) || r.err != nil {
				return
			}
			res := Resource{Resource: catalog.Resource{APIVersion: apiVersion, Kind: kind, Namespace: m.GetNamespace(), Name: m.GetName()}, annotations: m.GetAnnotations()}
			u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
			if err != nil {
				c.fail(res, err)
				return
			}
			u["apiVersion"], u["kind"] = apiVersion, kind
			pass, msg, err := c.Eval(u)
			if err != nil {
				c.fail(res, err)
				return
			}
			if !pass {
				r.report(res, "", "%s", msg)
			}
		})
	}}
}

func (c *customCheck) fail(res Resource, err error) {
	if c.failures == 0 {
		c.first = fmt.Sprintf("%s %s/%s: %v", res.Kind, res.Namespace, res.Name, err)
	}
	c.failures++
}

// unassessed reports a custom check whose expression failed on some
// objects: those objects were neither passed nor failed.
func (c *customCheck) unassessed() (NotAssessable, bool) {
	if c.failures == 0 {
		return NotAssessable{}, false
	}
	return NotAssessable{CheckID: c.Def.Id, Reason: fmt.Sprintf("the expression failed on %d object(s); first: %s", c.failures, c.first)}, true
}
