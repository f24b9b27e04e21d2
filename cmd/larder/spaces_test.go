package main

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/larderfs/larder/internal/postgres/pgtest"
)

// TestAdminUserDeleteEndsTheAccountsFiles: "admin user delete" beside a
// running server removes the account's files and records, so that whoever
// registers the name next starts empty; with --keep-files the files are
// moved to DATA/deleted/, where the command says.
func TestAdminUserDeleteEndsTheAccountsFiles(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { checkUserDelete(t, startLarder(t)) })
	t.Run("postgres", func(t *testing.T) {
		url := pgtest.URL(t)
		checkUserDelete(t, startLarder(t, func(c *ServeConfig) { c.DB = url }))
	})
}

func checkUserDelete(t *testing.T, l *testLarder) {
	env := loggedIn(t, l)
	dir := t.TempDir()
	runOK(t, env, "put", writeLocal(t, dir, "secret.txt", []byte("alice's secret")), "secret.txt")

	out := adminOK(t, l, "", "user", "delete", "alice")
	if !strings.Contains(out, "user alice deleted") || !strings.Contains(out, "its files (1 recorded, 14 bytes) are removed") {
		t.Errorf("user delete printed %q, want it to say the account and its files are gone", out)
	}
	if entries, _ := os.ReadDir(filepath.Join(l.data, "spaces")); len(entries) != 0 {
		t.Errorf("DATA/spaces after the delete: got %v, want nothing", entries)
	}

	// The next alice, from another machine (configuration folder), starts
	// empty.
	again := loggedIn(t, l)
	if out, _ := runOK(t, again, "ls"); strings.Contains(out, "secret.txt") {
		t.Errorf("the new alice's ls: got %q, want no secret.txt", out)
	}
	wantExit(t, again, exitNotFound, []string{"secret.txt"}, "get", "secret.txt", "-o", filepath.Join(dir, "got.txt"))
	if out, _ := runOK(t, again, "whoami"); !strings.Contains(out, "0 bytes") {
		t.Errorf("the new alice's whoami: got %q, want 0 bytes used", out)
	}

	// --keep-files moves them aside, and says where.
	runOK(t, again, "put", writeLocal(t, dir, "kept.txt", []byte("keep me")), "kept.txt")
	out = adminOK(t, l, "", "user", "delete", "alice", "--keep-files")
	m := regexp.MustCompile(`are kept in (\S+)\n`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("user delete --keep-files printed %q, want where the files are", out)
	}
	if !strings.HasPrefix(m[1], filepath.Join(l.data, "deleted", "alice-")) {
		t.Errorf("kept in %s, want DATA/deleted/alice-ID-TIME", m[1])
	}
	if got, err := os.ReadFile(filepath.Join(m[1], "files", "kept.txt")); err != nil || string(got) != "keep me" {
		t.Errorf("the kept file: got %q, %v", got, err)
	}
	third := loggedIn(t, l)
	if out, _ := runOK(t, third, "ls"); strings.Contains(out, "kept.txt") {
		t.Errorf("the third alice's ls: got %q, want no kept.txt", out)
	}
}

// TestRestartAdoptsSpacesKeyedByName: a data folder of an older version,
// whose spaces are named after the user's name, is adopted at start: the
// account of that name finds its files; the space of a name no account
// has (deleted before the upgrade) is set aside in DATA/deleted, not
// given to whoever registers the name later. A second start changes
// nothing.
func TestRestartAdoptsSpacesKeyedByName(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	l.shutdown()
	for name, content := range map[string]string{"alice": "alice's old file", "ghost": "a deleted user's file"} {
		legacy := filepath.Join(l.data, "spaces", "u-"+hex.EncodeToString([]byte(name)))
		must(t, os.MkdirAll(filepath.Join(legacy, "files"), 0o700))
		must(t, os.MkdirAll(filepath.Join(legacy, "uploads"), 0o700))
		must(t, os.WriteFile(filepath.Join(legacy, "files", "old.txt"), []byte(content), 0o600))
	}
	// The space alice was given at her login goes first, as an older
	// version never made it.
	must(t, os.RemoveAll(filepath.Join(l.data, "spaces", "id-1")))
	l = l.restart(t)
	l = l.restart(t)
	runOK(t, env, "login", "--server", l.lnpAddr())
	if out, _ := runOK(t, env, "get", "old.txt", "-o", "-"); out != "alice's old file" {
		t.Errorf("alice's old file after the upgrade: got %q", out)
	}
	aside, _ := filepath.Glob(filepath.Join(l.data, "deleted", "ghost-0-*", "files", "old.txt"))
	if len(aside) != 1 {
		t.Fatalf("ghost's space: got %v in DATA/deleted, want one", aside)
	}
	ghost, _, _ := testEnv(t, l.addr(), "LARDER_USER", "ghost")
	must(t, run(ghost, "register"))
	must(t, run(ghost, "login", "--server", l.lnpAddr()))
	wantExit(t, ghost, exitNotFound, []string{"old.txt"}, "get", "old.txt", "-o", filepath.Join(t.TempDir(), "x"))
}
