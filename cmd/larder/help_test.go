package main

import (
	"context"
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
