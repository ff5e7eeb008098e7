package onesoidc

import (
	"go/ast"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ones-now/onesoidc/internal/readmecheck"
)

// needsRedis reports whether a README snippet needs the redisstore module (built by its test).
func needsRedis(s readmecheck.Snippet) bool {
	return strings.Contains(s.Code, "redisstore.") || strings.Contains(s.Code, "redis.")
}

// TestREADMESnippetsCompile builds every ```go snippet of README.md that needs only this module,
// as written (inside a function whose parameters are ctx, client, mux ...), offline.
// redisstore's TestREADMERedisSnippetsCompile builds the others.
func TestREADMESnippetsCompile(t *testing.T) {
	t.Parallel()
	n, problems, err := readmecheck.Build("README.md", ".", func(s readmecheck.Snippet) bool { return !needsRedis(s) })
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	if n < 4 {
		t.Errorf("built %d README snippets, want the quick start, CIBA, errors and web login ones", n)
	}
}

// TestREADMESnippetThatDoesNotCompileFails proves that the build above can fail.
func TestREADMESnippetThatDoesNotCompileFails(t *testing.T) {
	t.Parallel()
	src := readmecheck.Source(readmecheck.Snippet{Line: 1, Code: "client.NoSuchMethod(ctx)"})
	if !strings.Contains(src, "client.NoSuchMethod(ctx)") {
		t.Fatalf("source lacks the snippet:\n%s", src)
	}
	readme := filepath.Join(t.TempDir(), "README.md")
	if err := os.WriteFile(readme, []byte("```go\nclient.NoSuchMethod(ctx)\n```\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n, problems, err := readmecheck.Build(readme, ".", func(readmecheck.Snippet) bool { return true })
	if err != nil || n != 1 || len(problems) != 1 || !strings.Contains(problems[0], "NoSuchMethod") {
		t.Errorf("a snippet calling a missing method: %d built, problems %q, %v", n, problems, err)
	}
}

// TestREADMEErrorSwitchCoversEverySentinel: the error switch of README.md names every exported
// sentinel error (Err...) of the package.
func TestREADMEErrorSwitchCoversEverySentinel(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	md := string(data)
	var errSwitch string
	for _, s := range readmecheck.Snippets(md) {
		if strings.Contains(s.Code, "switch {") && strings.Contains(s.Code, "errors.Is") {
			errSwitch = s.Code
		}
	}
	if errSwitch == "" {
		t.Fatal("README.md has no error switch")
	}
	_, files := parsePackageFiles(t, ".")
	sentinel := regexp.MustCompile(`^Err[A-Z]`)
	n := 0
	for _, f := range files {
		for name, obj := range f.Scope.Objects {
			if obj.Kind != ast.Var || !sentinel.MatchString(name) {
				continue
			}
			n++
			if !strings.Contains(errSwitch, "onesoidc."+name+")") {
				t.Errorf("the README error switch does not cover %s", name)
			}
		}
	}
	if n < 10 {
		t.Errorf("found %d sentinels, want the package's", n)
	}
}
