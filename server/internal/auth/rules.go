package auth

import (
	"slices"
	"strings"
)

// Rule is one row of the authorization table: the roles that may call a
// method.
type Rule struct {
	// Method is the full gRPC method name, "/package.Service/Method".
	Method string
	Roles  []Role
}

// Rules returns a copy of the authorization table ordered by method. The
// API reference (docs/api.md) renders it.
func Rules() []Rule {
	rules := make([]Rule, 0, len(methodRoles))
	for method, roles := range methodRoles {
		rules = append(rules, Rule{Method: method, Roles: slices.Clone(roles)})
	}
	slices.SortFunc(rules, func(a, b Rule) int { return strings.Compare(a.Method, b.Method) })
	return rules
}
