package onesoidctest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// readOnlyTables are the package-level variables of the package: lookup tables and a compiled
// regular expression that nothing writes after initialisation, and defaultKey, the RSA key made
// once per process because RSA key generation is slow. Any other package-level variable would
// be state shared between Servers.
var readOnlyTables = []string{"paths", "bindingMessageRule", "cibaParamNames", "onesFormKeys", "onesClaims",
	"onesRequired", "keyTypes", "assertionAlgs", "defaultKey"}

// TestSpeaksHTTPOnlyAndHoldsNoGlobalState: the fake IdP imports nothing of the SDK (so that it
// tests the SDK from outside, as the real provider does), has no init function and no
// package-level variable but the read-only tables.
func TestSpeaksHTTPOnlyAndHoldsNoGlobalState(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	files := 0
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		files++
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "github.com/ones-now/onesoidc") {
				t.Errorf("%s imports %s", name, path)
			}
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil && d.Name.Name == "init" {
					t.Errorf("%s has an init function", name)
				}
			case *ast.GenDecl:
				if d.Tok != token.VAR {
					continue
				}
				for _, spec := range d.Specs {
					for _, id := range spec.(*ast.ValueSpec).Names {
						if !slices.Contains(readOnlyTables, id.Name) {
							t.Errorf("%s: package-level variable %s", name, id.Name)
						}
					}
				}
			}
		}
	}
	if files < 5 {
		t.Fatalf("read only %d files", files)
	}
}
