package policy

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/worker/catalog"
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

// celEnv is the CEL environment of custom checks: the standard library,
// Kubernetes' usual extensions, and one variable, object.
var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("object", cel.DynType),
		cel.OptionalTypes(), ext.Strings(), ext.Lists(), ext.Sets(), ext.Regex(), ext.Encoders(),
		cel.CrossTypeNumericComparisons(true),
	)
})

// Custom is a compiled custom check. It evaluates objects in their
// unstructured form, as maps, so that compiling and validating one needs
// no Kubernetes types; worker/checks converts the objects it reads.
type Custom struct {
	Def       *fleetscanv1.CustomCheck
	namespace map[string]bool
	exclude   map[string]bool
	kinds     map[string]bool
	program   cel.Program
	message   cel.Program
}

// Compile checks a custom check's definition and compiles its expressions.
// source names where it came from in error messages, e.g.
// "policies/team.yaml".
func Compile(def *fleetscanv1.CustomCheck, source string) (*Custom, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %s (%s): %s", ErrInvalidPolicy, def.GetId(), source, fmt.Sprintf(format, args...))
	}
	switch {
	case !catalog.CustomID(def.GetId()):
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
	if _, builtin := catalog.Lookup(def.GetId()); builtin {
		return nil, bad("id is a built-in check's")
	}
	c := &Custom{Def: def, kinds: set(def.GetMatch().GetKinds()), namespace: set(def.GetMatch().GetNamespaces()), exclude: set(def.GetMatch().GetExcludeNamespaces())}
	for k := range c.kinds {
		if catalog.CanonicalAPIVersion(k) == "" {
			return nil, bad("match.kinds: fleetscan does not read %q objects (it reads %s)", k, strings.Join(catalog.Kinds(), ", "))
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

// Meta is the catalog entry of the custom check, defaults filled in.
func (c *Custom) Meta() catalog.Meta {
	d := c.Def
	meta := catalog.Meta{
		ID: d.Id, Title: d.Title, Description: d.Description, Severity: d.Severity, Category: d.Category,
		Party: d.ResponsibleParty, Remediation: d.Remediation,
	}
	if meta.Category == "" {
		meta.Category = CategoryCustom
	}
	if meta.Party == fleetscanv1.ResponsibleParty_RESPONSIBLE_PARTY_UNSPECIFIED {
		meta.Party = fleetscanv1.ResponsibleParty_RESPONSIBLE_PARTY_WORKLOAD
	}
	return meta
}

// Matches reports whether the check reads an object of kind in namespace
// with labels.
func (c *Custom) Matches(kind, namespace string, labels map[string]string) bool {
	if !c.kinds[kind] || c.exclude[namespace] || (c.namespace != nil && !c.namespace[namespace]) {
		return false
	}
	for k, v := range c.Def.GetMatch().GetLabels() {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// Eval evaluates the check on an object in its unstructured form, with
// apiVersion and kind set. It returns whether the object passes and, when
// it does not, the finding's message.
func (c *Custom) Eval(object map[string]any) (pass bool, message string, err error) {
	vars := map[string]any{"object": object}
	out, _, err := c.program.Eval(vars)
	if err != nil {
		return false, "", err
	}
	pass, isBool := out.Value().(bool)
	if !isBool {
		return false, "", fmt.Errorf("expression gave %s, not a bool", out.Type())
	}
	if pass {
		return true, "", nil
	}
	message = c.Def.Title
	if c.message != nil {
		if m, _, err := c.message.Eval(vars); err == nil && m.Type() == types.StringType {
			message = m.Value().(string)
		}
	}
	return false, message, nil
}
