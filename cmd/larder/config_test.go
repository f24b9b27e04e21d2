package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestNoStoredSalt checks what a course command says when no salt is
// stored for the account: who, where, the file it looked in and what to
// do, under the general exit code (a missing salt is not a missing file).
// The server is running: one that is not is reported first
// (TestConnectionErrorsFirst).
func TestNoStoredSalt(t *testing.T) {
	l := startLarder(t)
	env, _, _ := testEnv(t, l.addr())
	salts := filepath.Join(env.Getenv("LARDER_CONFIG_DIR"), "salts.json")
	wantExit(t, env, exitFailure, []string{`"alice"`, l.addr(), salts, "register from this machine", "--salt"}, "get", "f")
	// LNP/1's channel-bound login needs no salt: it asks the server
	// first, so a server that is not there is what it reports.
	wantExit(t, env, exitNetwork, []string{"127.0.0.1:2", "connection refused"}, "whoami", "--server", "127.0.0.1:2")
	if _, err := os.Stat(env.Getenv("LARDER_CONFIG_DIR")); !os.IsNotExist(err) {
		t.Errorf("looking a salt up created the configuration folder (%v)", err)
	}
}
