package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHelpCommand: "larder help CMD" prints CMD's own help on stdout, for
// every command, and runs nothing.
func TestHelpCommand(t *testing.T) {
	for _, c := range commands() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		stdout, _, err := runLarderContext(ctx, t, "", "help", c.name)
		cancel()
		if err != nil || !strings.HasPrefix(stdout, "Usage: larder "+c.name) {
			t.Errorf("larder help %s: %v, printed %.80q; want its usage", c.name, err, stdout)
		}
	}
	stdout, _, err := runLarder(t, "", "help", "admin", "user", "add")
	if err != nil || !strings.HasPrefix(stdout, "Usage: larder admin user add") {
		t.Errorf("larder help admin user add: %v, printed %.80q", err, stdout)
	}
	if _, _, err := runLarder(t, "", "help", "nope"); ExitCode(err) != exitUsage {
		t.Errorf("larder help nope: %v, want a usage error", err)
	}
}

// TestREADMECommandReference: the README's command reference is the one
// made from the program's commands and flags (commandTable), every
// command and every flag of each.
func TestREADMECommandReference(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- commands: made by commandTable in cmd/larder/describe.go -->\n", "<!-- end of commands -->"
	_, rest, ok := strings.Cut(string(b), begin)
	table, _, ok2 := strings.Cut(rest, end)
	if !ok || !ok2 {
		t.Fatalf("README.md has no command reference between %q and %q", begin, end)
	}
	specs, err := describeAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := commandTable(specs); table != want {
		t.Errorf("README.md's command reference differs from the program's commands; replace it with:\n%s", want)
	}
}
