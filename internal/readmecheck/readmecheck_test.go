package readmecheck

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDocSnippetsTakesTheGoBlocksOfThePackageComment: the indented blocks of the package comment
// are snippets (a blank comment line inside one included, elisions emptied, the line of the
// first code line minus one); a block of endpoints and the comments below the package clause
// are not.
func TestDocSnippetsTakesTheGoBlocksOfThePackageComment(t *testing.T) {
	t.Parallel()
	const src = "// Package p.\n" + // 1
		"//\n" + // 2
		"//\tx := 1\n" + // 3
		"//\n" + // 4
		"//\tif x > 0 { ... }\n" + // 5
		"//\t...\n" + // 6
		"//\n" + // 7
		"// Endpoints:\n" + // 8
		"//\n" + // 9
		"//\t/auth/start → 200\n" + // 10
		"package p\n" +
		"\n" +
		"//\tnot := \"package documentation\"\n"
	path := filepath.Join(t.TempDir(), "doc.go")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := DocSnippets(path)
	if err != nil {
		t.Fatal(err)
	}
	want := Snippet{File: path, Line: 2, Code: "x := 1\n\nif x > 0 {}\n"}
	if len(got) != 1 || got[0] != want {
		t.Errorf("DocSnippets = %#v, want [%#v]", got, want)
	}
}
