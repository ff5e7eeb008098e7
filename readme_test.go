package onesoidc

import (
	"go/ast"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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

// TestREADMESnippetThatDoesNotCompileFails proves that the build above can fail, and names the
// snippet that does not compile, not the ones built with it.
func TestREADMESnippetThatDoesNotCompileFails(t *testing.T) {
	t.Parallel()
	src := readmecheck.Source(readmecheck.Snippet{Line: 1, Code: "client.NoSuchMethod(ctx)"})
	if !strings.Contains(src, "client.NoSuchMethod(ctx)") {
		t.Fatalf("source lacks the snippet:\n%s", src)
	}
	readme := filepath.Join(t.TempDir(), "README.md")
	md := "```go\n_ = client.ClientID()\n```\n\n```go\nclient.NoSuchMethod(ctx)\n```\n\n```go\nx := 1\n```\n"
	if err := os.WriteFile(readme, []byte(md), 0o600); err != nil {
		t.Fatal(err)
	}
	n, problems, err := readmecheck.Build(readme, ".", func(readmecheck.Snippet) bool { return true })
	if err != nil || n != 3 || len(problems) != 1 || !strings.Contains(problems[0], "NoSuchMethod") ||
		!strings.HasPrefix(problems[0], readme+":5:") {
		t.Errorf("a snippet calling a missing method between two that build: %d built, problems %q, %v", n, problems, err)
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

// TestREADMEInstallCommandsWork runs the README's commands for using the module from a checkout,
// as written, in a new module beside a checkout (a symbolic link to this one stands for the
// `git clone`), offline (GOPROXY=off, the module cache only), then loads a program that imports
// the package as the go command does by default (-mod=readonly: go.mod must require it). A
// `go get` of the module without the replacement's version fails it: offline the go command
// falls back to the replacement, but a module proxy that refuses the unpublished path (this
// machine's answers 403) makes the bare path fail.
func TestREADMEInstallCommandsWork(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	commands := readmeInstallCommands(string(data))
	if len(commands) < 3 {
		t.Fatalf("README.md shows %d install commands (%q), want the clone, the replace and the go get", len(commands), commands)
	}
	repo, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	svc := filepath.Join(dir, "svc")
	if err := os.Mkdir(svc, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(svc, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeFile("go.mod", "module example.com/svc\n\ngo 1.26\n")
	writeFile("main.go", "package main\n\nimport \"github.com/ones-now/onesoidc\"\n\nfunc main() { println(onesoidc.Version) }\n")
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = svc
		cmd.Env = append(os.Environ(), "GOPROXY=off", "GOWORK=off", "GOFLAGS=") // the go command as a user runs it
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for _, c := range commands {
		args := strings.Fields(c)
		if len(args) > 2 && args[0] == "go" && args[1] == "get" && slices.Contains(args, "github.com/ones-now/onesoidc") {
			t.Errorf("%q: go get of the unpublished module needs the replacement's version (@v0.0.0-00010101000000-000000000000)", c)
		}
		if args[0] == "git" && len(args) > 1 && args[1] == "clone" {
			// git clone <this repository> <dir>: this checkout stands for the clone.
			if err := os.Symlink(repo, filepath.Join(svc, args[len(args)-1])); err != nil {
				t.Fatal(err)
			}
			continue
		}
		run(args...)
	}
	// -mod=readonly, the default: every import is required by go.mod (and go.sum); compiling
	// would rebuild the package from a new path on every run.
	run("go", "list", "-deps", ".")
}

// readmeInstallCommands returns the commands of the README's code block that installs the module
// from a checkout (the one with `go mod edit -replace`), without their comments.
func readmeInstallCommands(md string) []string {
	for _, block := range strings.Split(md, "\n```\n") {
		if !strings.Contains(block, "go mod edit -replace") {
			continue
		}
		var commands []string
		for _, line := range strings.Split(block, "\n") {
			line, _, _ = strings.Cut(line, "#")
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "```") {
				commands = append(commands, line)
			}
		}
		return commands
	}
	return nil
}

// TestPackageDocSnippetsCompile builds the Go code blocks of the package documentation (what
// go doc shows first) of the root package, weblogin and onesoidctest, as written, offline.
// redisstore's TestPackageDocSnippetsCompile builds its own.
func TestPackageDocSnippetsCompile(t *testing.T) {
	t.Parallel()
	for file, want := range map[string]int{"doc.go": 5, "weblogin/doc.go": 1, "onesoidctest/doc.go": 1} {
		snippets, err := readmecheck.DocSnippets(file)
		if err != nil {
			t.Fatal(err)
		}
		if len(snippets) != want {
			t.Errorf("%s: %d Go code blocks, want %d (a block that stopped being Go, or a new one: update the count)", file, len(snippets), want)
		}
		_, problems, err := readmecheck.BuildSnippets(snippets, ".")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Error(p)
		}
	}
}

// goNameInProse matches the Go names README.md mentions outside its snippets that are sure to be
// package-level Go names (the table of Rust names holds none of these shapes): options,
// sentinel errors, verify options and constructors.
var goNameInProse = regexp.MustCompile(`\b(?:With|Err|Expect|Insecure|New|Load|Parse|Mint)[A-Z][A-Za-z0-9]*\b`)

// otherPackageQualifier matches the end of a text that qualifies the name after it with a package
// other than the module's (fs.ErrNotExist, context.WithTimeout).
var otherPackageQualifier = regexp.MustCompile(`\b([a-z][a-z0-9]*)\.$`)

// missingREADMENames returns the names of md that goNameInProse matches, that no other package
// qualifies, and that names does not hold.
func missingREADMENames(md string, names map[string]bool) []string {
	ours := []string{"onesoidc", "weblogin", "onesoidctest", "redisstore"}
	var missing []string
	for _, loc := range goNameInProse.FindAllStringIndex(md, -1) {
		if q := otherPackageQualifier.FindStringSubmatch(md[max(0, loc[0]-20):loc[0]]); q != nil && !slices.Contains(ours, q[1]) {
			continue
		}
		if n := md[loc[0]:loc[1]]; !names[n] && !slices.Contains(missing, n) {
			missing = append(missing, n)
		}
	}
	return missing
}

// TestREADMENamesExist: every option, sentinel error, verify option and constructor README.md
// names in its prose and tables (the snippets are built by TestREADMESnippetsCompile) is declared
// by the root package, weblogin, onesoidctest or redisstore.
func TestREADMENamesExist(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, dir := range []string{".", "weblogin", "onesoidctest", "redisstore"} {
		_, files := parsePackageFiles(t, dir)
		for _, f := range files {
			for name := range f.Scope.Objects {
				names[name] = true
			}
			for _, d := range f.Decls {
				if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv != nil {
					names[fd.Name.Name] = true // methods, such as Handler.NotificationHandler
				}
			}
		}
	}
	if len(names) < 100 {
		t.Fatalf("found %d declared names, want the packages'", len(names))
	}
	for _, n := range missingREADMENames(string(data), names) {
		t.Errorf("README.md names %s, which no package declares", n)
	}
	const text = "`WithLeeway`, `WithNoSuchOption(d)`, ErrNoSuchError, fs.ErrNotExist, onesoidc.ErrNoSuchSentinel"
	if got := missingREADMENames(text, names); !slices.Equal(got, []string{"WithNoSuchOption", "ErrNoSuchError", "ErrNoSuchSentinel"}) {
		t.Errorf("the check finds %q in a text with three made-up names", got)
	}
}
