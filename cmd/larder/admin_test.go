package main

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/course"
)

// "larder admin" run in-process on the accounts of a real server; the
// account changes that must reach running servers are tested in
// security_test.go.

// TestAdminUserAddThenLogin adds accounts as an administrator does, with
// the course client's salt and with a new random one, and checks that the
// signature each user will send logs in, through the wire and the CLI;
// and, by default, an account that logs in over the native protocol only.
func TestAdminUserAddThenLogin(t *testing.T) {
	l := startLarder(t)
	l.put(t, "f.txt", []byte("added"))

	out := adminOK(t, l, "course password\n", "user", "add", "carol", "--salt", "course", "--password-stdin")
	if want := "user carol added\ncarol signs with the course client's fixed salt (larder get --salt " + course.CourseSalt + ").\n"; out != want {
		t.Errorf("user add --salt course printed %q, want %q", out, want)
	}
	wantFetch(t, l, "carol", larder.NewSignature("course password", course.CourseSalt), "f.txt", "added")
	env, stdout, stderr := testEnv(t, l.addr(), "LARDER_USER", "carol", "LARDER_PASSWORD", "course password")
	if err := run(env, "get", "f.txt", "--salt", course.CourseSalt); err != nil || stdout.String() != "added" {
		t.Errorf("larder get as carol with the course salt: got %v and %q, want the file\n%s", err, stdout, stderr)
	}

	// A new random salt, printed for the administrator to hand over.
	out = adminOK(t, l, "random password\n", "user", "add", "dave", "--course", "--password-stdin")
	m := regexp.MustCompile(`(?m)^dave's client salt, to hand over with the password: (\S+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("user add without --salt printed %q, want the new salt", out)
	}
	wantFetch(t, l, "dave", larder.NewSignature("random password", m[1]), "f.txt", "added")

	// By default the account logs in over the native protocol only: no
	// salt to hand over, no signature the course protocol takes.
	out = adminOK(t, l, "native password\n", "user", "add", "erin", "--password-stdin")
	if want := "user erin added\nerin logs in over the native protocol only (larder login)\n"; out != want {
		t.Errorf("user add printed %q, want %q", out, want)
	}
	if r := rawExchangeFrom(t, "", l.addr(), "erin", larder.NewSignature("native password", course.CourseSalt), "f.txt"); r.status != course.StatusInvalidLogin ||
		!strings.Contains(string(r.payload), "logs in over LNP/1 only") {
		t.Errorf("a course retrieval as erin: status %d %q, want INVALID_LOGIN saying the account is LNP/1 only", r.status, r.payload)
	}
	erin, stdout, stderr := testEnv(t, l.addr(), "LARDER_USER", "erin", "LARDER_PASSWORD", "native password", "LARDER_NATIVE_SERVER", l.lnpAddr())
	if err := run(erin, "whoami"); err != nil || !strings.Contains(stdout.String(), "erin") {
		t.Errorf("larder whoami as erin: %v, %q\n%s", err, stdout, stderr)
	}

	// A taken name is refused, and the account keeps its password.
	_, _, err := l.admin(t, "other password\n", "user", "add", "carol", "--salt", "course", "--password-stdin")
	if err == nil || !strings.Contains(err.Error(), `user "carol" already exists`) || ExitCode(err) == exitOK {
		t.Errorf("user add of a taken name: got %v (exit code %d), want a failure saying it exists", err, ExitCode(err))
	}
	wantFetch(t, l, "carol", larder.NewSignature("course password", course.CourseSalt), "f.txt", "added")
}

// TestAdminUserListJSON checks that "user list --json" writes one JSON
// object per account, in byte order of names, with its state and hash.
func TestAdminUserListJSON(t *testing.T) {
	start := time.Now().Add(-time.Minute) // the store's clock may round
	l := startLarder(t)
	if users := listUsers(t, l); len(users) != 0 {
		t.Fatalf("user list --json on a new server: got %+v, want nothing", users)
	}
	register(t, l, "zoe", larder.NewSignature("zoe's password", "salt-z"))
	register(t, l, "Bob", larder.NewSignature("bob's password", "salt-b"))
	adminOK(t, l, "carol's password\n", "user", "add", "carol", "--salt", "course", "--password-stdin")
	adminOK(t, l, "", "user", "disable", "carol")

	users := listUsers(t, l)
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
		if wantDisabled := u.Name == "carol"; u.Disabled != wantDisabled {
			t.Errorf("%s listed with disabled %v, want %v", u.Name, u.Disabled, wantDisabled)
		}
		if u.Hash != cheapHash+" pepper=p1" || !u.Current {
			t.Errorf("%s listed with hash %q (current %v), want %q, current", u.Name, u.Hash, u.Current, cheapHash+" pepper=p1")
		}
		if u.Created.Before(start) || u.Changed.Before(u.Created) {
			t.Errorf("%s listed as created %v and changed %v, want both since %v, in order", u.Name, u.Created, u.Changed, start)
		}
	}
	if got := strings.Join(names, " "); got != "Bob carol zoe" {
		t.Errorf("user list --json: got names %q, want %q (byte order)", got, "Bob carol zoe")
	}

	// The table is for people: a header, then one row per account.
	out := adminOK(t, l, "", "user", "list")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	// Columns are two spaces or more apart; a cell may hold one.
	cells := func(line string) []string { return regexp.MustCompile(`  +`).Split(strings.TrimSpace(line), -1) }
	if len(lines) != 4 || strings.Join(cells(lines[0]), "|") != "NAME|STATE|QUOTA (BYTES / FILES)|USED|LAST LOGIN|CREATED|CHANGED|NATIVE|HASH" {
		t.Fatalf("user list: got\n%s\nwant a header and 3 rows", out)
	}
	// An administrator's account has its native credential from the
	// start; those registered on the course port enroll at their first
	// native login.
	if f := cells(lines[2]); f[0] != "carol" || f[1] != "disabled" || f[2] != "default / default" || f[3] != "0 B / 0 files" || f[4] != "never" || f[7] != "enrolled" {
		t.Errorf("user list: got row %q, want carol, disabled, the default quota, nothing used, never logged in, enrolled for native logins", lines[2])
	}
	if f := cells(lines[3]); f[0] != "zoe" || f[7] != "no" {
		t.Errorf("user list: got row %q, want zoe, not enrolled for native logins", lines[3])
	}
	for _, u := range users {
		want := "none"
		if u.Name == "carol" {
			want = "lnp-scram m=64,t=1,p=1 pepper=p1"
		}
		if u.Native != want {
			t.Errorf("user list --json: %s's native credential %q, want %q", u.Name, u.Native, want)
		}
	}
}

// TestAdminHashesCounts checks the summary of "larder admin hashes" over
// accounts on the policy, below it and imported.
func TestAdminHashesCounts(t *testing.T) {
	l := startLarder(t)
	register(t, l, "alice", larder.NewSignature("alice's password", "salt-a"))
	register(t, l, "bob", larder.NewSignature("bob's password", "salt-b"))
	var legacy []legacyAccount
	for _, a := range legacyAccounts(t) {
		if strings.HasPrefix(a.name, "bcrypt") || a.name == "course" {
			legacy = append(legacy, a)
		}
	}
	file, _ := writeImportFile(t, legacy)
	if out := adminOK(t, l, "", "user", "import", file); out != "4 accounts imported, 0 skipped as existing, 0 lines refused\n" {
		t.Errorf("user import printed %q", out)
	}
	// Importing again skips every name, and says so.
	_, stderr, err := l.admin(t, "", "user", "import", file)
	if err != nil || strings.Count(stderr, "exists already; skipped") != 4 {
		t.Errorf("importing the same file again: got %v, want success, 4 skipped\n%s", err, stderr)
	}
	wantHashesSummary(t, l, []string{
		"3 below policy bcrypt cost=4",
		"2 current " + cheapHash + " pepper=p1",
		"1 below policy course-sha256",
		"6 accounts; the policy is " + cheapHash + " with pepper p1",
	})
}

// TestAdminCalibrateProposesParameters checks the form of calibrate's
// proposal, not the times it measures.
func TestAdminCalibrateProposesParameters(t *testing.T) {
	stdout, stderr, err := runLarder(t, "", "admin", "calibrate", "--target", "20ms", "--max-memory", "8192", "--data", t.TempDir())
	if err != nil {
		t.Fatalf("admin calibrate: %v\n%s", err, stderr)
	}
	m := regexp.MustCompile(`^proposed: --hash-memory (\d+) --hash-passes (\d+) --hash-lanes 1\n` +
		`one hash takes \S+ and \d+ MiB here; with --hash-concurrency \d+ this machine checks about \d+ passwords/s and needs \d+ MiB for hashing\n` +
		`(warning: below OWASP's minimum \(m=19456 KiB, t=2, p=1\)\n)?$`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("admin calibrate printed\n%s\nwant a proposal in the documented form", stdout)
	}
	if memory, _ := strconv.Atoi(m[1]); memory < 7168 || memory > 8192 {
		t.Errorf("admin calibrate --max-memory 8192 proposed --hash-memory %d, want 7168 (OWASP's least) to 8192", memory)
	}
	if passes, _ := strconv.Atoi(m[2]); passes < 1 {
		t.Errorf("admin calibrate proposed --hash-passes %d", passes)
	}
	// The proposal must be accepted as it is printed.
	flags := strings.Fields(strings.TrimPrefix(strings.SplitN(stdout, "\n", 2)[0], "proposed: "))
	cfg := defaultAccountConfig(func(string) string { return "" })
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.define(fs)
	if err := fs.Parse(flags); err != nil || cfg.Hash.Validate() != nil {
		t.Errorf("the proposed flags %q: %v, %v", flags, err, cfg.Hash.Validate())
	}
}

// TestAdminUsageErrors checks that a command line that cannot be
// understood fails with the usage exit code, before touching any account.
func TestAdminUsageErrors(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	for _, args := range [][]string{
		{"admin"},
		{"admin", "bogus"},
		{"admin", "user"},
		{"admin", "user", "bogus"},
		{"admin", "user", "add"},
		{"admin", "user", "add", "carol", "dave"},
		{"admin", "user", "add", "a-name-much-too-long", "--password-stdin"},
		{"admin", "user", "list", "extra"},
		{"admin", "user", "list", "--bogus"},
		{"admin", "user", "disable"},
		{"admin", "user", "import"},
		{"admin", "hashes", "extra"},
		{"admin", "hashes", "--hash-memory", "0"},
		{"admin", "hashes", "--hash-lanes", "256"},
		{"admin", "hashes", "--hash-memory", "1"},
		{"admin", "hashes", "--db", "mysql://localhost/larder"},
		{"admin", "upgrade"},
		{"admin", "upgrade", "--dry-run"},
		{"admin", "calibrate", "--max-memory", "0"},
		{"admin", "calibrate", "--target", "soon"},
		{"admin", "pepper"},
		{"admin", "pepper", "bogus"},
		{"admin", "pepper", "retire"},
		{"admin", "pepper", "rotate", "p2"},
	} {
		_, _, err := runLarder(t, "", append(args, "--data", data)...)
		if code := ExitCode(err); code != exitUsage {
			t.Errorf("larder %s: got exit code %d (%v), want %d", strings.Join(args, " "), code, err, exitUsage)
		}
	}
	if _, err := os.Stat(filepath.Join(data, "pepper")); err == nil {
		t.Errorf("a refused command line created a pepper file")
	}

	for _, args := range [][]string{{"admin", "-h"}, {"admin", "help"}, {"admin", "user", "--help"}, {"admin", "hashes", "-h"}} {
		stdout, stderr, err := runLarder(t, "", args...)
		if code := ExitCode(err); code != exitOK || !strings.Contains(stdout+stderr, "Usage: larder admin") {
			t.Errorf("larder %s: got exit code %d and\n%s%s\nwant 0 and the usage", strings.Join(args, " "), code, stdout, stderr)
		}
	}

	// An account that does not exist is no usage error, but a failure
	// that names it.
	l := startLarder(t)
	_, _, err := l.admin(t, "", "user", "disable", "nobody")
	if code := ExitCode(err); err == nil || code == exitOK || code == exitUsage || !strings.Contains(err.Error(), "nobody") {
		t.Errorf("user disable nobody: got %v (exit code %d), want a failure naming the account", err, code)
	}
}
