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
