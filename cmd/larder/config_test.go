package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestNoStoredSalt checks what a command says when no salt is stored for
// the account: who, where, the file it looked in and what to do, under the
// general exit code (a missing salt is not a missing file).
func TestNoStoredSalt(t *testing.T) {
	env, _, _ := testEnv(t, "127.0.0.1:1")
	salts := filepath.Join(env.Getenv("LARDER_CONFIG_DIR"), "salts.json")
	wantExit(t, env, exitFailure, []string{`"alice"`, "127.0.0.1:1", salts, "register from this machine", "--salt"}, "get", "f")
	wantExit(t, env, exitFailure, []string{`"alice"`, "127.0.0.1:2", salts, "register from this machine", "--salt", "or run 'larder login' first"},
		"whoami", "--server", "127.0.0.1:2")
	if _, err := os.Stat(env.Getenv("LARDER_CONFIG_DIR")); !os.IsNotExist(err) {
		t.Errorf("looking a salt up created the configuration folder (%v)", err)
	}
}
