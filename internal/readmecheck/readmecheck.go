// Package readmecheck builds the Go snippets of the repository's README and of its packages' doc
// comments, so that every snippet compiles as written. The root module's tests build the
// snippets that need only the root module; the redisstore module's tests build those that need
// Redis.
package readmecheck

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"
)

// Snippet is one ```go block of a Markdown file, or one code block of a package doc comment.
type Snippet struct {
	// File is the file that holds the snippet ("" is README.md).
	File string
	// Line is the line of the opening fence (the line before the first line of code).
	Line int
	// Code is the block's text.
	Code string
}

// DocSnippets returns the Go code blocks of the package doc comment in the Go file at path: the
// indented lines of the comment above the package clause. Blocks that do not begin with a letter
// or "_" (a list of endpoints, of Redis keys) are not Go and are left out. Elisions become
// empty: a line "..." and a body "{ ... }".
func DocSnippets(path string) ([]Snippet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(string(data), "\n")
	var out []Snippet
	var cur *Snippet
	var code []string
	flush := func() {
		if cur != nil {
			first := strings.TrimSpace(code[0])
			if first != "" && (unicode.IsLetter(rune(first[0])) || first[0] == '_') {
				cur.Code = strings.Join(code, "\n")
				out = append(out, *cur)
			}
		}
		cur, code = nil, nil
	}
	for i, line := range lines {
		if strings.HasPrefix(line, "package ") {
			break
		}
		switch {
		case strings.HasPrefix(line, "//\t"):
			if cur == nil {
				cur = &Snippet{File: path, Line: i}
			}
			text := strings.TrimPrefix(line, "//\t")
			if strings.TrimSpace(text) == "..." {
				text = ""
			}
			code = append(code, strings.ReplaceAll(text, "{ ... }", "{}"))
		case strings.TrimSpace(line) == "//" && cur != nil && i+1 < len(lines) && strings.HasPrefix(lines[i+1], "//\t"):
			code = append(code, "") // a blank line inside the block
		default:
			flush()
		}
	}
	flush()
	return out, nil
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
const environment = `ctx context.Context, t *testing.T, client *onesoidc.OpenIDConnectClient, mux *http.ServeMux,
	api http.Handler, resp *onesoidc.CIBAResponse, key []byte,
	onLogin, setSession, setAppSession func(http.ResponseWriter, *http.Request, *onesoidc.LoginResult) error,
	show func(onesoidc.PollProgress),
	sessions interface {
		Start(http.ResponseWriter, *onesoidc.LoginResult) error
	}`

// Source returns the Go file that holds s: its statements form a block in the body of a function
// whose parameters are the environment (so that a snippet may declare a client of its own), in a
// package that imports what s uses. A snippet that begins with a function declaration (a test,
// in the README's testing section) stands at the top level of the file instead.
func Source(s Snippet) string {
	imports := []string{`"context"`, `"net/http"`, `"testing"`, `"github.com/ones-now/onesoidc"`}
	for name, path := range packages {
		q := `"` + path + `"`
		if regexp.MustCompile(`\b`+name+`\.`).MatchString(s.Code) && !contains(imports, q) {
			if name == "redis" {
				q = "redis " + q
			}
			imports = append(imports, q)
		}
	}
	file := s.File
	if file == "" {
		file = "README.md"
	}
	if strings.HasPrefix(s.Code, "func ") {
		return fmt.Sprintf("package snippet\n\nimport (\n\t%s\n)\n\nvar _ context.Context\nvar _ http.Handler\nvar _ *testing.T\nvar _ onesoidc.Option\n\n//line %s:%d\n%s\n",
			strings.Join(imports, "\n\t"), file, s.Line+1, s.Code)
	}
	return fmt.Sprintf("package snippet\n\nimport (\n\t%s\n)\n\nfunc snippet(%s) error {\n\t{\n//line %s:%d\n%s\n\t}\n\treturn nil\n}\n",
		strings.Join(imports, "\n\t"), environment, file, s.Line+1, s.Code)
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
	var snippets []Snippet
	for _, s := range Snippets(string(md)) {
		if want(s) {
			s.File = readme
			snippets = append(snippets, s)
		}
	}
	return BuildSnippets(snippets, moduleDir)
}

// BuildSnippets compiles snippets as Build does, all in one run of the go command: each in a
// package directory of its own, the compiler's complaints told apart by the package headers of
// its output.
func BuildSnippets(snippets []Snippet, moduleDir string) (int, []string, error) {
	if len(snippets) == 0 {
		return 0, nil, nil
	}
	args := []string{"build", "-gcflags=-e"}
	index := map[string]int{} // package directory → snippet
	for i, s := range snippets {
		dir, err := os.MkdirTemp(moduleDir, "_readme-")
		if err != nil {
			return 0, nil, err
		}
		defer os.RemoveAll(dir)
		if err := os.WriteFile(filepath.Join(dir, "snippet.go"), []byte(Source(s)), 0o600); err != nil {
			return 0, nil, err
		}
		index[filepath.Base(dir)] = i
		args = append(args, "./"+filepath.Base(dir))
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=readonly", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err == nil {
		return len(snippets), nil, nil
	}
	bad := make([][]string, len(snippets))
	cur := -1 // the snippet whose package header came last; -1 before any
	var other []string
	for _, line := range strings.Split(string(bytes.TrimSpace(out)), "\n") {
		if pkg, ok := strings.CutPrefix(line, "# "); ok {
			cur = -1
			if i, ok := index[path.Base(pkg)]; ok {
				cur = i
			}
			continue
		}
		if notUsed.MatchString(line) || strings.TrimSpace(line) == "" {
			continue
		}
		if cur < 0 {
			other = append(other, line)
			continue
		}
		bad[cur] = append(bad[cur], line)
	}
	var problems []string
	for i, s := range snippets {
		if len(bad[i]) > 0 {
			problems = append(problems, fmt.Sprintf("%s:%d: the snippet does not compile:\n%s\n--- snippet ---\n%s",
				s.File, s.Line, strings.Join(bad[i], "\n"), s.Code))
		}
	}
	if len(other) > 0 {
		problems = append(problems, "go build: "+strings.Join(other, "\n"))
	}
	return len(snippets), problems, nil
}
