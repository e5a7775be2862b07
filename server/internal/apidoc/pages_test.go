package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/fleetscan/fleetscan/server/internal/auth"
)

// TestCodesDocumented fails when the server's code returns a status code
// (codes.X anywhere under server/) that no page documents.
func TestCodesDocumented(t *testing.T) {
	documented := map[string]bool{}
	for _, p := range fleetscanPages {
		for _, c := range p.codes {
			documented[c.code.String()] = true
		}
	}
	used := map[string]string{}
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == "codes" && sel.Sel.Name != "Code" {
					used[sel.Sel.Name] = path
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(used) < 5 {
		t.Fatalf("found only %v under %s: is the walk looking in the right place?", used, root)
	}
	for code, path := range used {
		if !documented[code] {
			t.Errorf("%s returns codes.%s, which neither page documents: add it to fleetscanPages and run 'make apidoc'", path, code)
		}
	}
	// Canceled and Internal come from the context and from toStatus'
	// fallback; the check above sees them, this keeps the test honest.
	for _, c := range []codes.Code{codes.Canceled, codes.Internal} {
		if !documented[c.String()] {
			t.Errorf("%s is not documented", c)
		}
	}
}

// TestEveryRuleDocumented fails when the authorization table has a method
// of a package that no page documents.
func TestEveryRuleDocumented(t *testing.T) {
	pkgs := map[protoreflect.FullName]bool{}
	for _, p := range fleetscanPages {
		pkgs[p.pkg] = true
	}
	for _, r := range auth.Rules() {
		svc, _, _ := strings.Cut(strings.TrimPrefix(r.Method, "/"), "/")
		if !pkgs[protoreflect.FullName(svc).Parent()] {
			t.Errorf("%s: its package has no page", r.Method)
		}
	}
}
