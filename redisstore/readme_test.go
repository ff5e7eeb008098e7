package redisstore

import (
	"strings"
	"testing"

	"github.com/ones-now/onesoidc/internal/readmecheck"
)

// TestREADMERedisSnippetsCompile builds the ```go snippets of the repository's README.md that
// use Redis, as written and offline, in this module (the root module's TestREADMESnippetsCompile
// builds the others).
func TestREADMERedisSnippetsCompile(t *testing.T) {
	t.Parallel()
	n, problems, err := readmecheck.Build("../README.md", ".", func(s readmecheck.Snippet) bool {
		return strings.Contains(s.Code, "redisstore.") || strings.Contains(s.Code, "redis.")
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	if n == 0 {
		t.Error("README.md has no Redis snippet: the replicas section shows one")
	}
}

// TestPackageDocSnippetsCompile builds the Go code blocks of this package's documentation, as
// written and offline.
func TestPackageDocSnippetsCompile(t *testing.T) {
	t.Parallel()
	snippets, err := readmecheck.DocSnippets("store.go")
	if err != nil {
		t.Fatal(err)
	}
	if len(snippets) != 1 {
		t.Errorf("store.go: %d Go code blocks, want 1 (the keys block is not Go)", len(snippets))
	}
	_, problems, err := readmecheck.BuildSnippets(snippets, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}
