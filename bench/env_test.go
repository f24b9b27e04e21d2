//go:build linux

package main

import (
	"net"
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

// TestWaitReadyOwnListener: a server whose port another process took
// before it bound it (it then exits, unable to bind) is not taken for
// ready because the other's listener accepts a connection.
func TestWaitReadyOwnListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	e, err := newEnv(t.Context(), testLog{t}, testLog{t}, commonOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	// A child that binds nothing and exits, as a server that cannot bind.
	p, err := e.startProcess("taken", ln.Addr().String(), "/bin/sh", nil, "-c", "sleep 0.5; echo 'bind: address already in use'; exit 1")
	if err == nil {
		p.Stop()
		t.Fatal("a process that never listened was taken for ready, another's listener answering on its port")
	}
	if !strings.Contains(err.Error(), "exited before accepting connections") || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("got %v; want it to say the process exited, with its log", err)
	}
	if !listens(os.Getpid(), ln.Addr().String()) {
		t.Error("listens: this process's own listener not found")
	}
}
