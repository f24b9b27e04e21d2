//go:build linux

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestModulePath(t *testing.T) {
	tests := []struct{ gomod, want string }{
		{"module github.com/larderfs/larder\n\ngo 1.26.0\n", larderModule},
		{"// the server\nmodule \"github.com/larderfs/larder\" // quoted, with a comment\n", larderModule},
		{"module\tgithub.com/larderfs/larder/bench\n", "github.com/larderfs/larder/bench"},
		{"modules github.com/larderfs/larder\n", ""},
		{"go 1.26.0\n", ""},
	}
	for _, tt := range tests {
		if got := modulePath([]byte(tt.gomod)); got != tt.want {
			t.Errorf("modulePath(%q) = %q, want %q", tt.gomod, got, tt.want)
		}
	}
}

// TestRepoRoot: from the bench's folder, or any below the checkout's root,
// the root is the folder of larder's go.mod, not the bench's own; outside
// a checkout it is an error that says what to do.
func TestRepoRoot(t *testing.T) {
	root := t.TempDir()
	write := func(path, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "go.mod"), "module "+larderModule+"\n")
	write(filepath.Join(root, "bench", "go.mod"), "module "+larderModule+"/bench\n")
	deep := filepath.Join(root, "bench", "report", "x")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{root, filepath.Join(root, "bench"), deep} {
		t.Chdir(dir)
		got, err := repoRoot()
		if err != nil || got != root {
			t.Errorf("in %s: repoRoot() = %q, %v; want %q", dir, got, err, root)
		}
	}

	t.Chdir(t.TempDir())
	if got, err := repoRoot(); err == nil || !strings.Contains(err.Error(), "run the bench inside a larder checkout") {
		t.Errorf("outside a checkout: repoRoot() = %q, %v; want an error saying to run it inside one", got, err)
	}
}
