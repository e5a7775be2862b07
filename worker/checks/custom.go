package checks

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

// ErrInvalidPolicy wraps every problem of a custom check definition.
var ErrInvalidPolicy = errors.New("invalid custom check")

// CategoryCustom is the default category of custom checks.
const CategoryCustom = "custom"

// CostLimit bounds the work of one evaluation of a custom check's
// expressions, in CEL cost units (about one per value visited): a policy
// cannot stall a worker, whatever the object.
const CostLimit = 1_000_000

// maxExpressionLength bounds an expression's source.
const maxExpressionLength = 10_000

var customID = regexp.MustCompile(`^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$`)

// ValidID reports whether id is a built-in check's id or has the form of a
// custom check's.
func ValidID(id string) bool {
	_, builtin := Lookup(id)
	return builtin || customID.MatchString(id)
}

// celEnv is the CEL environment of custom checks: the standard library,
// Kubernetes' usual extensions, and one variable, object.
var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("object", cel.DynType),
		cel.OptionalTypes(), ext.Strings(), ext.Lists(), ext.Sets(), ext.Regex(), ext.Encoders(),
		cel.CrossTypeNumericComparisons(true),
	)
})

// customCheck is a compiled custom check.
type customCheck struct {
	def       *fleetscanv1.CustomCheck
	namespace map[string]bool
	exclude   map[string]bool
	kinds     map[string]bool
	program   cel.Program
	message   cel.Program

	// Evaluation failures: counted and reported as not assessable.
	failures int
	first    string
}

// CompileCustom checks a custom check's definition and compiles its
// expressions. source names where it came from in error messages, e.g.
// "policies/team.yaml".
func CompileCustom(def *fleetscanv1.CustomCheck, source string) (*customCheck, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %s (%s): %s", ErrInvalidPolicy, def.GetId(), source, fmt.Sprintf(format, args...))
	}
	switch {
	case !customID.MatchString(def.GetId()):
		return nil, bad("id must be upper-case words joined by '-', e.g. ACME-001")
	case def.GetTitle() == "":
		return nil, bad("title is required")
	case def.GetSeverity() == fleetscanv1.Severity_SEVERITY_UNSPECIFIED:
		return nil, bad("severity is required: INFO, LOW, MEDIUM, HIGH or CRITICAL")
	case len(def.GetMatch().GetKinds()) == 0:
		return nil, bad("match.kinds is required, e.g. [Deployment, StatefulSet]")
	case def.GetExpression() == "":
		return nil, bad("expression is required")
	}
	if _, builtin := Lookup(def.GetId()); builtin {
		return nil, bad("id is a built-in check's")
	}
	c := &customCheck{def: def, kinds: set(def.GetMatch().GetKinds()), namespace: set(def.GetMatch().GetNamespaces()), exclude: set(def.GetMatch().GetExcludeNamespaces())}
	for k := range c.kinds {
		if !knownKinds[k] {
			return nil, bad("match.kinds: fleetscan does not read %q objects (it reads %s)", k, strings.Join(sortedKeys(knownKinds), ", "))
		}
	}
	var err error
	if c.program, err = compileExpr(def.GetExpression(), source+": expression", cel.BoolType); err != nil {
		return nil, bad("%v", err)
	}
	if def.GetMessageExpression() != "" {
		if c.message, err = compileExpr(def.GetMessageExpression(), source+": messageExpression", cel.StringType); err != nil {
			return nil, bad("%v", err)
		}
	}
	return c, nil
}

func compileExpr(expr, where string, want *cel.Type) (cel.Program, error) {
	if len(expr) > maxExpressionLength {
		return nil, fmt.Errorf("%s: longer than %d characters", where, maxExpressionLength)
	}
	env, err := celEnv()
	if err != nil {
		return nil, err
	}
	ast, iss := env.CompileSource(common.NewStringSource(expr, where))
	if iss.Err() != nil {
		return nil, iss.Err()
	}
	if out := ast.OutputType(); !out.IsExactType(want) && !out.IsExactType(cel.DynType) {
		return nil, fmt.Errorf("%s: must evaluate to %s, not %s", where, want, out)
	}
	return env.Program(ast, cel.CostLimit(CostLimit), cel.InterruptCheckFrequency(100))
}

func set(items []string) map[string]bool {
	if len(items) == 0 {
		return nil
	}
	m := make(map[string]bool, len(items))
	for _, it := range items {
		m[it] = true
	}
	return m
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// check wraps the compiled custom check in a Check for the engine.
func (c *customCheck) check() *Check {
	d := c.def
	meta := Meta{
		ID: d.Id, Title: d.Title, Description: d.Description, Severity: d.Severity, Category: d.Category,
		Party: d.ResponsibleParty, Remediation: d.Remediation,
	}
	if meta.Category == "" {
		meta.Category = CategoryCustom
	}
	if meta.Party == fleetscanv1.ResponsibleParty_RESPONSIBLE_PARTY_UNSPECIFIED {
		meta.Party = partyWorkload
	}
	return &Check{Meta: meta, inventory: func(r *reporter, inv *Inventory) {
		inv.eachObject(func(apiVersion, kind string, m metav1.Object, obj runtime.Object) {
			if !c.matches(kind, m) || r.err != nil {
				return
			}
			res := Resource{APIVersion: apiVersion, Kind: kind, Namespace: m.GetNamespace(), Name: m.GetName(), annotations: m.GetAnnotations()}
			u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
			if err != nil {
				c.fail(res, err)
				return
			}
			u["apiVersion"], u["kind"] = apiVersion, kind
			vars := map[string]any{"object": u}
			out, _, err := c.program.Eval(vars)
			if err != nil {
				c.fail(res, err)
				return
			}
			ok, isBool := out.Value().(bool)
			if !isBool {
				c.fail(res, fmt.Errorf("expression gave %s, not a bool", out.Type()))
				return
			}
			if ok {
				return
			}
			msg := d.Title
			if c.message != nil {
				if m, _, err := c.message.Eval(vars); err == nil && m.Type() == types.StringType {
					msg = m.Value().(string)
				}
			}
			r.report(res, "", "%s", msg)
		})
	}}
}

func (c *customCheck) matches(kind string, m metav1.Object) bool {
	if !c.kinds[kind] || c.exclude[m.GetNamespace()] || (c.namespace != nil && !c.namespace[m.GetNamespace()]) {
		return false
	}
	labels := m.GetLabels()
	for k, v := range c.def.GetMatch().GetLabels() {
		if labels[k] != v {
			return false
		}
	}
	return true
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
	return NotAssessable{CheckID: c.def.Id, Reason: fmt.Sprintf("the expression failed on %d object(s); first: %s", c.failures, c.first)}, true
}

// knownKinds are the kinds an Inventory holds, by Kind.
var knownKinds = func() map[string]bool {
	m := map[string]bool{}
	(&Inventory{}).eachKind(func(kind string) { m[kind] = true })
	return m
}()
