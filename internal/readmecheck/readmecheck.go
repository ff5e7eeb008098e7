// Package readmecheck builds the Go snippets of the repository's README, so that every snippet
// compiles as written. The root module's test builds the snippets that need only the root
// module; the redisstore module's test builds those that need Redis.
package readmecheck

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// Snippet is one ```go block of a Markdown file.
type Snippet struct {
	// Line is the line of the opening fence.
	Line int
	// Code is the block's text.
	Code string
}

// Snippets returns the ```go blocks of the Markdown text md.
func Snippets(md string) []Snippet {
	var out []Snippet
	lines := strings.Split(md, "\n")
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "```go" {
			continue
		}
		start := i + 1
		j := start
		for j < len(lines) && strings.TrimSpace(lines[j]) != "```" {
			j++
		}
		out = append(out, Snippet{Line: i + 1, Code: strings.Join(lines[start:j], "\n")})
		i = j
	}
	return out
}

// packages are the identifiers a snippet may use without declaring them, with their import paths.
var packages = map[string]string{
	"onesoidc":     "github.com/ones-now/onesoidc",
	"onesoidctest": "github.com/ones-now/onesoidc/onesoidctest",
	"synctest":     "testing/synctest",
	"testing":      "testing",
	"weblogin":     "github.com/ones-now/onesoidc/weblogin",
	"redisstore":   "github.com/ones-now/onesoidc/redisstore",
	"redis":        "github.com/redis/go-redis/v9",
	"errors":       "errors",
	"fmt":          "fmt",
	"http":         "net/http",
	"regexp":       "regexp",
	"slog":         "log/slog",
	"time":         "time",
}

// environment is what a snippet may use without declaring it: the parameters of the function
// its statements are placed in.
const environment = `ctx context.Context, client *onesoidc.OpenIDConnectClient, mux *http.ServeMux,
	api http.Handler, resp *onesoidc.CIBAResponse, key []byte,
	onLogin func(http.ResponseWriter, *http.Request, *onesoidc.LoginResult) error,
	sessions interface {
		Start(http.ResponseWriter, *onesoidc.LoginResult) error
	}`

// Source returns the Go file that holds s: its statements form the body of a function whose
// parameters are the environment, in a package that imports what s uses. A snippet that begins
// with a function declaration (a test, in the README's testing section) stands at the top level
// of the file instead.
func Source(s Snippet) string {
	imports := []string{`"context"`, `"net/http"`, `"github.com/ones-now/onesoidc"`}
	for name, path := range packages {
		q := `"` + path + `"`
		if regexp.MustCompile(`\b`+name+`\.`).MatchString(s.Code) && !contains(imports, q) {
			if name == "redis" {
				q = "redis " + q
			}
			imports = append(imports, q)
		}
	}
	if strings.HasPrefix(s.Code, "func ") {
		return fmt.Sprintf("package snippet\n\nimport (\n\t%s\n)\n\nvar _ context.Context\nvar _ http.Handler\nvar _ onesoidc.Option\n\n//line README.md:%d\n%s\n",
			strings.Join(imports, "\n\t"), s.Line+1, s.Code)
	}
	return fmt.Sprintf("package snippet\n\nimport (\n\t%s\n)\n\nfunc snippet(%s) error {\n//line README.md:%d\n%s\n\treturn nil\n}\n",
		strings.Join(imports, "\n\t"), environment, s.Line+1, s.Code)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// notUsed matches the one compiler complaint a snippet may earn: a value it shows but does not
// use further.
var notUsed = regexp.MustCompile(`declared and not used`)

// Build compiles the snippets of readme for which want is true inside the module at moduleDir,
// in a package directory created there for the purpose ("_readme-…", which ./... ignores) and
// removed after. The go command runs with GOPROXY=off and GOFLAGS=-mod=readonly: it uses the
// module cache and never the network. It returns how many snippets were built and a problem
// for each that does not compile.
func Build(readme, moduleDir string, want func(Snippet) bool) (int, []string, error) {
	md, err := os.ReadFile(readme)
	if err != nil {
		return 0, nil, err
	}
	n := 0
	var problems []string
	for _, s := range Snippets(string(md)) {
		if !want(s) {
			continue
		}
		n++
		bad, err := build(s, moduleDir)
		if err != nil {
			return n, problems, err
		}
		if len(bad) > 0 {
			problems = append(problems, fmt.Sprintf("%s:%d: the snippet does not compile:\n%s\n--- snippet ---\n%s",
				filepath.Base(readme), s.Line, strings.Join(bad, "\n"), s.Code))
		}
	}
	return n, problems, nil
}

// build compiles one snippet and returns the compiler's complaints, if any.
func build(s Snippet, moduleDir string) ([]string, error) {
	dir, err := os.MkdirTemp(moduleDir, "_readme-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "snippet.go"), []byte(Source(s)), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command("go", "build", "-gcflags=-e", "-o", os.DevNull, "./"+filepath.Base(dir))
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=readonly", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil, nil
	}
	var bad []string
	for _, line := range strings.Split(string(bytes.TrimSpace(out)), "\n") {
		if strings.HasPrefix(line, "#") || notUsed.MatchString(line) || strings.TrimSpace(line) == "" {
			continue
		}
		bad = append(bad, line)
	}
	if len(bad) == 0 && !notUsed.Match(out) {
		bad = append(bad, strings.TrimSpace(string(out)))
	}
	return bad, nil
}
