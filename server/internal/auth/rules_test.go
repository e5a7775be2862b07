package auth

import (
	"slices"
	"testing"
)

func TestRules(t *testing.T) {
	rules := Rules()
	if len(rules) != len(methodRoles) {
		t.Fatalf("Rules() has %d rows, the table %d", len(rules), len(methodRoles))
	}
	if !slices.IsSortedFunc(rules, func(a, b Rule) int {
		if a.Method < b.Method {
			return -1
		}
		return 1
	}) {
		t.Error("Rules() is not ordered by method")
	}
	for _, r := range rules {
		for _, role := range r.Roles {
			if err := Allowed(Principal{Role: role}, r.Method); err != nil {
				t.Errorf("Rules() lets %s call %s, Allowed does not: %v", role, r.Method, err)
			}
		}
	}
	// The rows are copies: changing them changes nothing.
	rules[0].Roles[0] = "nobody"
	if Rules()[0].Roles[0] == "nobody" {
		t.Error("Rules() returns the table itself, not a copy")
	}
}
