package onesoidc

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// documentedPackages are the directories whose exported API must be documented in full: every
// exported type, function, method (Error, Unwrap and Is included), constant, variable and
// struct field. onesoidctest joins when it exists.
var documentedPackages = []string{".", "weblogin", "onesoidctest"}

// parsePackageFiles parses the non-test Go files of dir with comments; a missing directory is
// an empty package.
func parsePackageFiles(t *testing.T, dir string) (*token.FileSet, []*ast.File) {
	t.Helper()
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return fset, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return fset, files
}

// undocumented lists the exported names of files that carry no doc comment, as "file:line name".
func undocumented(fset *token.FileSet, files []*ast.File) []string {
	var missing []string
	report := func(pos token.Pos, name string) {
		p := fset.Position(pos)
		missing = append(missing, filepath.Base(p.Filename)+":"+strconv.Itoa(p.Line)+" "+name)
	}
	hasText := func(groups ...*ast.CommentGroup) bool {
		for _, g := range groups {
			if g != nil && strings.TrimSpace(g.Text()) != "" {
				return true
			}
		}
		return false
	}
	checkFields := func(typeName string, st *ast.StructType) {
		for _, f := range st.Fields.List {
			for _, n := range f.Names {
				if n.IsExported() && !hasText(f.Doc, f.Comment) {
					report(n.Pos(), typeName+"."+n.Name)
				}
			}
			if len(f.Names) == 0 && !hasText(f.Doc, f.Comment) { // an embedded field
				if id := embeddedName(f.Type); id != "" && ast.IsExported(id) {
					report(f.Pos(), typeName+"."+id)
				}
			}
		}
	}
	for _, f := range files {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() {
					continue
				}
				name := d.Name.Name
				if d.Recv != nil {
					recv := embeddedName(d.Recv.List[0].Type)
					if !ast.IsExported(recv) {
						continue // not part of the API: go doc does not show it
					}
					name = recv + "." + name
				}
				if !hasText(d.Doc) {
					report(d.Pos(), name)
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if !s.Name.IsExported() {
							continue
						}
						if !hasText(s.Doc, s.Comment, d.Doc) {
							report(s.Pos(), s.Name.Name)
						}
						if st, ok := s.Type.(*ast.StructType); ok {
							checkFields(s.Name.Name, st)
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() && !hasText(s.Doc, s.Comment, d.Doc) {
								report(n.Pos(), n.Name)
							}
						}
					}
				}
			}
		}
	}
	return missing
}

// embeddedName returns the type name of a receiver or embedded field (T, *T, pkg.T, T[P]).
func embeddedName(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.Ident:
		return t.Name
	case *ast.StarExpr:
		return embeddedName(t.X)
	case *ast.SelectorExpr:
		return t.Sel.Name
	case *ast.IndexExpr:
		return embeddedName(t.X)
	case *ast.IndexListExpr:
		return embeddedName(t.X)
	}
	return ""
}

// TestEveryExportedNameIsDocumented: go doc of the root, weblogin and onesoidctest packages shows
// no undocumented exported name, method (Error, Unwrap and Is included) or struct field.
func TestEveryExportedNameIsDocumented(t *testing.T) {
	t.Parallel()
	for _, dir := range documentedPackages {
		fset, files := parsePackageFiles(t, dir)
		for _, m := range undocumented(fset, files) {
			t.Errorf("%s: %s has no doc comment", dir, m)
		}
	}
}

// TestUndocumentedNameIsReported proves that the check above can fail: an exported type, field,
// method and constant without doc comments are each reported.
func TestUndocumentedNameIsReported(t *testing.T) {
	t.Parallel()
	const src = `package p

// T is documented.
type T struct {
	// A is documented.
	A int
	B int
}

func (T) Error() string { return "" }

const C = 1

// D is documented.
const D = 2
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(undocumented(fset, []*ast.File{f}), ", ")
	if want := "p.go:7 T.B, p.go:10 T.Error, p.go:12 C"; got != want {
		t.Errorf("undocumented = %q, want %q", got, want)
	}
}

// internalCitation matches references to documents a user of the module never sees: the design
// notes, the security case catalogue and its case ids (KF-07, CB-15 ...). Doc comments cite the
// RFC or specification section instead; test names and test comments may keep the case ids.
var internalCitation = regexp.MustCompile(`DESIGN(\.md)? ?§|SECURITY-CASES|\b[A-Z]{2}-[0-9]{2}\b`)

// TestNoInternalCitationsOutsideTests: no comment or string of a non-test Go file in the
// repository cites DESIGN §, SECURITY-CASES or a case id.
func TestNoInternalCitationsOutsideTests(t *testing.T) {
	t.Parallel()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(data), "\n") {
			if m := internalCitation.FindString(line); m != "" {
				t.Errorf("%s:%d cites %q: cite the RFC or specification section instead", path, i+1, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"// see DESIGN §5", "// (SECURITY-CASES KF-07)", "// as CB-15 requires"} {
		if !internalCitation.MatchString(line) {
			t.Errorf("the citation check misses %q", line)
		}
	}
}
