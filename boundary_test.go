package onesoidc

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestTokenBytesOnlyInJOSE keeps internal/jose the one door for token bytes. It parses every
// non-test .go file of the root package and fails when one
//   - imports encoding/base64 (base64url belongs to internal/jose: jose.EncodeBase64URL and the
//     strict decoders of token segments), or
//   - calls a function that splits or searches text (strings/bytes Split*, Cut*, Index*,
//     LastIndex*, Count) or reads JSON (encoding/json Unmarshal, NewDecoder, Valid) anywhere but
//     in the functions listed below, each of which reads something that is not a token (an HTTP
//     answer, a PEM file, a header) and says so.
//
// A new such call fails here until it is moved into internal/jose (if it reads a token) or listed
// with its reason (if it does not). TestJOSEImportsOnlyTheStandardLibrary checks the other side.
func TestTokenBytesOnlyInJOSE(t *testing.T) {
	t.Parallel()
	allowed := map[string]string{
		"answer.go:response.decode:json.Unmarshal":            "a provider answer body: discovery, token, backchannel, device authorization, ONES QR, signing service",
		"cibanotify.go:decodeJSONBody:json.NewDecoder":        "CIBA notification request body",
		"client.go:parseOAuthError:json.Unmarshal":            "OAuth error answer body",
		"handlers.go:bearerToken:strings.Cut":                 "Authorization header: scheme and credentials",
		"client.go:request.secrets:strings.Cut":               "Authorization header of an outgoing request: its credentials, to redact",
		"jwks.go:parseJWKS:json.Unmarshal":                    "JWKS document",
		"jwks.go:parseJWK:json.Unmarshal":                     "one JWK of the JWKS",
		"keys.go:pemLabels:bytes.IndexByte":                   "PEM key file lines",
		"keys.go:pemLabels:bytes.Index":                       "PEM key file: the BEGIN line",
		"keys.go:pemLabels:bytes.Cut":                         "PEM key file labels",
		"keys.go:parsePrivateJWK:json.Valid":                  "JWK key file",
		"token.go:stringOrList:json.Unmarshal":                "aud or scope member of an answer body",
		"token.go:parseIntrospection:json.Unmarshal":          "introspection answer body",
		"loginincomplete.go:issuedTokens:json.NewDecoder":     "token answer body, for the tokens to revoke",
		"applications.go:parseApplications:json.Unmarshal":    "ONES application list body",
		"applications.go:parseApplication:json.Unmarshal":     "one entry of the ONES application list",
		"applications.go:textOrNumber:json.Unmarshal":         "one member of an ONES application list entry",
		"introspection.go:introspector.claims:json.Unmarshal": "introspection answer body: role, acr, preferred_username",
		"introcache.go:packAnswer:strings.Index":              "introspection answer body: where a string of the result lies in it",
		"registeredjwk.go:parseRegisteredJWK:json.Valid":      "registered public JWK file (public_jwk.json)",
		"registeredjwk.go:parseRegisteredJWK:json.Unmarshal":  "registered public JWK file: alg and d members",
		"registeredjwk.go:withoutAlg:json.Unmarshal":          "registered public JWK file, alg removed for go-jose",
	}
	watched := map[string]func(string) bool{
		"strings": textSearch, "bytes": textSearch,
		"json": func(f string) bool { return f == "Unmarshal" || f == "NewDecoder" || f == "Valid" },
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	used := map[string]bool{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == "encoding/base64" {
				t.Errorf("%s imports encoding/base64: base64url is internal/jose's", name)
			}
		}
		for _, decl := range f.Decls {
			fn := declName(decl)
			ast.Inspect(decl, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				pkg, ok := sel.X.(*ast.Ident)
				if !ok || watched[pkg.Name] == nil || !watched[pkg.Name](sel.Sel.Name) {
					return true
				}
				key := fmt.Sprintf("%s:%s:%s.%s", name, fn, pkg.Name, sel.Sel.Name)
				if _, ok := allowed[key]; !ok {
					t.Errorf("%s: %s.%s in %s: token bytes are split and read only in internal/jose "+
						"(if this is not a token, list %q with its reason)", fset.Position(call.Pos()), pkg.Name,
						sel.Sel.Name, fn, key)
				}
				used[key] = true
				return true
			})
		}
	}
	for key := range allowed {
		if !used[key] {
			t.Errorf("%s is listed but no longer used: drop it from the list", key)
		}
	}
}

// textSearch reports the strings and bytes functions that split or search text.
func textSearch(f string) bool {
	for _, p := range []string{"Split", "Cut", "Index", "LastIndex"} {
		if strings.HasPrefix(f, p) {
			return true
		}
	}
	return f == "Count"
}

// declName names a top-level declaration: the function, Type.Method, or "var"/"const"/"type".
func declName(d ast.Decl) string {
	fd, ok := d.(*ast.FuncDecl)
	if !ok {
		return d.(*ast.GenDecl).Tok.String()
	}
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	typ := fd.Recv.List[0].Type
	if s, ok := typ.(*ast.StarExpr); ok {
		typ = s.X
	}
	if id, ok := typ.(*ast.Ident); ok {
		return id.Name + "." + fd.Name.Name
	}
	return fd.Name.Name
}

// TestJOSEImportsOnlyTheStandardLibrary: internal/jose knows nothing of the SDK (or of anything
// outside the standard library), so that no change to a flow reaches into the parser.
// .ci/run checks the same on `go list -deps ./internal/jose`.
func TestJOSEImportsOnlyTheStandardLibrary(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("internal", "jose")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	n := 0
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		n++
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if first, _, _ := strings.Cut(p, "/"); strings.Contains(first, ".") {
				t.Errorf("%s imports %s: internal/jose imports the standard library only", name, p)
			}
		}
	}
	if n == 0 || !slices.ContainsFunc(entries, func(e os.DirEntry) bool { return e.Name() == "compact.go" }) {
		t.Fatalf("found %d files in %s, not the jose package", n, dir)
	}
}
