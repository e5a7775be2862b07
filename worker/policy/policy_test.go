package policy_test

import (
	"errors"
	"strings"
	"testing"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/worker/catalog"
	"github.com/fleetscan/fleetscan/worker/policy"
)

// TestSelectionValidate: what the server accepts of a scan's selection,
// before any worker compiles it again.
func TestSelectionValidate(t *testing.T) {
	custom := &fleetscanv1.CustomCheck{
		Id: "ORG-001", Title: "t", Severity: fleetscanv1.Severity_SEVERITY_LOW,
		Match: &fleetscanv1.CustomCheckMatch{Kinds: []string{"Deployment"}}, Expression: "true",
	}
	for _, tt := range []struct {
		name string
		sel  policy.Selection
		want error
	}{
		{"everything", policy.Selection{}, nil},
		{"built-in ids", policy.Selection{Include: []string{"POD-001", "RBAC-002"}, Exclude: []string{"HOST-001"}}, nil},
		{"a custom check's id", policy.Selection{Include: []string{"ORG-001"}, Custom: []*fleetscanv1.CustomCheck{custom}}, nil},
		{"unknown include", policy.Selection{Include: []string{"NOPE-1"}}, catalog.ErrUnknownCheck},
		{"unknown exclude", policy.Selection{Exclude: []string{"POD-001", "NOPE-1"}}, catalog.ErrUnknownCheck},
		{"custom id without its check", policy.Selection{Include: []string{"ORG-001"}}, catalog.ErrUnknownCheck},
		{"custom check that does not compile", policy.Selection{Custom: []*fleetscanv1.CustomCheck{{Id: "ORG-002"}}}, policy.ErrInvalidPolicy},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.sel.Validate(); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("Validate() = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestCustomCheckErrors(t *testing.T) {
	valid := func() *fleetscanv1.CustomCheck {
		return &fleetscanv1.CustomCheck{
			Id: "ORG-001", Title: "t", Severity: fleetscanv1.Severity_SEVERITY_LOW,
			Match: &fleetscanv1.CustomCheckMatch{Kinds: []string{"Deployment"}}, Expression: "true",
		}
	}
	tests := []struct {
		name   string
		change func(*fleetscanv1.CustomCheck)
		want   string
	}{
		{"lower-case id", func(c *fleetscanv1.CustomCheck) { c.Id = "org-1" }, "id must be"},
		{"built-in id", func(c *fleetscanv1.CustomCheck) { c.Id = "POD-001" }, "built-in"},
		{"no kinds", func(c *fleetscanv1.CustomCheck) { c.Match = nil }, "match.kinds"},
		{"unknown kind", func(c *fleetscanv1.CustomCheck) { c.Match.Kinds = []string{"Secret"} }, `does not read "Secret"`},
		{"syntax error with position", func(c *fleetscanv1.CustomCheck) { c.Expression = "object.metadata.name ==" }, "expression:1:24"},
		{"undeclared variable", func(c *fleetscanv1.CustomCheck) { c.Expression = "request.name == 'x'" }, "undeclared reference to 'request'"},
		{"not a bool", func(c *fleetscanv1.CustomCheck) { c.Expression = "'yes'" }, "must evaluate to bool"},
		{"message not a string", func(c *fleetscanv1.CustomCheck) { c.MessageExpression = "1 + 1" }, "must evaluate to string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			def := valid()
			tt.change(def)
			err := policy.Selection{Custom: []*fleetscanv1.CustomCheck{def}}.Validate()
			if !errors.Is(err, policy.ErrInvalidPolicy) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want ErrInvalidPolicy mentioning %q", err, tt.want)
			}
		})
	}
	if err := (policy.Selection{Custom: []*fleetscanv1.CustomCheck{valid(), valid()}}).Validate(); err == nil {
		t.Error("two custom checks with one id accepted")
	}
}

func TestParsePolicies(t *testing.T) {
	for _, tt := range []struct{ name, doc, want string }{
		{"wrong kind", "apiVersion: fleetscan.io/v1alpha1\nkind: Policy\nspec: {}\n", "want apiVersion"},
		{"unknown field", "apiVersion: fleetscan.io/v1alpha1\nkind: CheckPolicy\nspec: {id: ORG-1, expresion: 'true'}\n", "expresion"},
		{"bad severity", "apiVersion: fleetscan.io/v1alpha1\nkind: CheckPolicy\nspec: {id: ORG-1, severity: URGENT}\n", "SEVERITY_URGENT"},
		{"compile error names the file", "apiVersion: fleetscan.io/v1alpha1\nkind: CheckPolicy\nspec: {id: ORG-1, title: t, severity: low, match: {kinds: [Pod]}, expression: 'object.'}\n", "team.yaml (document 1): expression:1:"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policy.ParsePolicies(strings.NewReader(tt.doc), "team.yaml")
			if !errors.Is(err, policy.ErrInvalidPolicy) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want ErrInvalidPolicy mentioning %q", err, tt.want)
			}
		})
	}
}
