package main

// Regression tests of peppers and admin tools: they never lock
// people out. Each runs a real server (Main on 127.0.0.1:0) and the admin
// commands in-process beside it, as an administrator would.

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/internal/auth"
	"github.com/larderfs/larder/internal/postgres/pgtest"
	"github.com/larderfs/larder/internal/sqlite"
)

// TestPepperRotateThenWrapBeforeRestart is an administrator's sequence:
// "pepper rotate", then "upgrade --wrap" and a password reset while the
// server still runs with the pepper file it started with. Every account
// must still log in, at once, without a restart; and retire's advice must
// not send the administrator to a command that cannot help.
func TestPepperRotateThenWrapBeforeRestart(t *testing.T) {
	// Every login checks the hash (and so upgrades it): none is
	// remembered.
	l := startLarder(t, func(c *ServeConfig) { c.AuthCacheTTL = time.Nanosecond })
	l.put(t, "f.txt", []byte("still mine"))
	alice, bob := larder.NewSignature("alice's password", "salt-a"), larder.NewSignature("bob's password", "salt-b")
	register(t, l, "alice", alice)
	register(t, l, "bob", bob)
	legacy := legacyAccounts(t)[:1] // a bcrypt account: upgrade --wrap wraps it
	file, _ := writeImportFile(t, legacy)
	adminOK(t, l, "", "user", "import", file)

	out := adminOK(t, l, "", "pepper", "rotate")
	if strings.Contains(out, "restart") {
		t.Errorf("pepper rotate printed %q: a restart is no longer needed", out)
	}
	out = adminOK(t, l, "", "upgrade", "--wrap")
	if !strings.Contains(out, "2 on an older pepper") || !strings.Contains(out, "1 to wrap") {
		t.Errorf("upgrade --wrap after the rotation printed %q, want alice and bob left on the older pepper, the bcrypt account wrapped", out)
	}
	// bob's password is reset with the new pepper, before the server has
	// made any hash with it.
	adminOK(t, l, "bob's new password\n", "user", "passwd", "bob", "--salt", "course", "--password-stdin")
	bob = larder.NewSignature("bob's new password", course.CourseSalt)

	// alice's hash names p1 until her next login: retire p1 is refused,
	// and says what does help, not upgrade --wrap, which cannot.
	_, _, err := l.admin(t, "", "pepper", "retire", "p1")
	wantErrorSaying(t, "pepper retire p1 while alice's hash uses it", err, "still used by 1 accounts (alice)", "next login", "user passwd")
	if err != nil && strings.Contains(err.Error(), "upgrade --wrap") {
		t.Errorf("pepper retire p1 advises upgrade --wrap, which cannot move a hash to another pepper: %v", err)
	}

	// The server has not been restarted: every account logs in.
	wantFetch(t, l, "alice", alice, "f.txt", "still mine")
	wantFetch(t, l, "bob", bob, "f.txt", "still mine")
	wantFetch(t, l, legacy[0].name, legacy[0].sig, "f.txt", "still mine")

	// Every login above moved its account to p2: p1 retires.
	if out, _, err := l.admin(t, "", "pepper", "retire", "p1"); err != nil {
		t.Fatalf("pepper retire p1 after every login: %v (pepper list: %s)", err, adminOK(t, l, "", "pepper", "list"))
	} else if !strings.HasPrefix(out, "pepper p1 removed") {
		t.Errorf("pepper retire p1 printed %q", out)
	}
	wantFetch(t, l, "alice", alice, "f.txt", "still mine")
	l = l.restart(t)
	wantFetch(t, l, "alice", alice, "f.txt", "still mine")
	wantFetch(t, l, "bob", bob, "f.txt", "still mine")
}

// TestServerReloadsPepperOnSIGHUP: Main.Reload, what SIGHUP does, makes a
// rotated pepper current at once.
func TestServerReloadsPepperOnSIGHUP(t *testing.T) {
	l := startLarder(t)
	adminOK(t, l, "", "pepper", "rotate")
	l.main.Reload()
	if got := l.main.accounts.hasher.Peppers().Current().ID; got != "p2" {
		t.Errorf("current pepper after Reload: %s, want p2", got)
	}
}

// TestAdminRefusesMissingDatabase: admin and audit commands
// pointed at a data folder without a database (a typo) fail, naming the
// folder and the flag, and create nothing there: no folder, no database,
// no pepper file.
func TestAdminRefusesMissingDatabase(t *testing.T) {
	commands := [][]string{
		{"admin", "user", "list"},
		{"admin", "user", "add", "carol", "--password-stdin"},
		{"admin", "user", "passwd", "carol", "--password-stdin"},
		{"admin", "user", "disable", "carol"},
		{"admin", "user", "import", "-"},
		{"admin", "hashes"},
		{"admin", "upgrade", "--wrap"},
		{"admin", "pepper", "list"},
		{"admin", "pepper", "rotate"},
		{"admin", "pepper", "retire", "p1"},
		{"admin", "storage", "check"},
		{"audit", "tail"},
		{"audit", "query", "--user", "carol"},
	}
	for _, empty := range []bool{false, true} {
		for _, args := range commands {
			data := filepath.Join(t.TempDir(), "typo-data")
			if empty {
				must(t, os.Mkdir(data, 0o700))
			}
			_, _, err := runLarder(t, "password\n", append(args, "--data", data)...)
			what := strings.Join(args, " ")
			if empty {
				what += " on an empty folder"
			}
			wantErrorSaying(t, what, err, data, "--data")
			if code := ExitCode(err); code == exitOK {
				t.Errorf("%s: exit code %d", what, code)
			}
			entries, statErr := os.ReadDir(data)
			switch {
			case !empty && !errors.Is(statErr, fs.ErrNotExist):
				t.Errorf("%s created the data folder %s", what, data)
			case empty && len(entries) > 0:
				t.Errorf("%s left %d entries in the empty folder (%s…)", what, len(entries), entries[0].Name())
			}
		}
	}
}

// TestAdminUsesServersPolicy: a server with a policy above
// the defaults in one parameter records it; admin commands without hash
// flags use it (its hashes are current, nothing is wrapped), refuse flags
// that disagree, never wrap a hash stronger than the policy, and refuse to
// guess on a database where no server recorded one.
func TestAdminUsesServersPolicy(t *testing.T) {
	policy := auth.Params{Memory: 64, Time: 3, Threads: 1} // more passes than the default
	l := startLarder(t, withHash(policy))
	l.put(t, "f.txt", []byte("strong"))
	alice := larder.NewSignature("alice's password", "salt-a")
	register(t, l, "alice", alice)
	before := storedHashes(t, l)["alice"]

	admin := func(args ...string) (string, error) {
		all := append(append([]string{"admin"}, args...), "--data", l.data)
		out, _, err := runLarder(t, "", all...)
		return out, err
	}
	out, err := admin("hashes")
	if err != nil || !strings.Contains(out, "current") || strings.Contains(out, "below policy") ||
		!strings.Contains(out, "the policy is argon2id m=64,t=3,p=1") {
		t.Errorf("admin hashes without flags: %v\n%s\nwant alice current under the server's policy m=64,t=3,p=1", err, out)
	}
	out, err = admin("upgrade", "--wrap")
	if err != nil || !strings.HasPrefix(out, "1 accounts current") || !strings.Contains(out, "0 to wrap") {
		t.Errorf("admin upgrade --wrap without flags: %v\n%s\nwant alice current, nothing wrapped", err, out)
	}
	if after := storedHashes(t, l)["alice"]; after != before {
		t.Errorf("upgrade --wrap changed alice's hash by the server's policy:\n%s\n%s", before, after)
	}
	_, err = admin("hashes", "--hash-memory", "19456", "--hash-passes", "2")
	wantErrorSaying(t, "admin hashes with flags against the recorded policy", err, "m=19456,t=2,p=1", "m=64,t=3,p=1")
	if code := ExitCode(err); code != exitUsage {
		t.Errorf("disagreeing flags: exit code %d, want %d", code, exitUsage)
	}
	_, err = admin("hashes", "--hash-passes", "2")
	wantErrorSaying(t, "admin hashes with one flag against the recorded policy", err, "m=64,t=3,p=1")
	if _, err := admin("hashes", "--hash-passes", "3"); err != nil {
		t.Errorf("admin hashes with one flag that agrees: %v", err)
	}

	// A hash above the policy in one parameter is never wrapped.
	strong := legacyAccount{name: "dora", sig: larder.NewSignature("dora's password", "salt-d")}
	{
		h := auth.NewHasher(auth.Params{Memory: 128, Time: 1, Threads: 1}, nil, 1)
		v, err := h.Hash(context.Background(), strong.sig[:])
		must(t, err)
		strong.hash = v
	}
	file, _ := writeImportFile(t, []legacyAccount{strong})
	if _, _, err := runLarder(t, "", "admin", "user", "import", file, "--data", l.data); err != nil {
		t.Fatal(err)
	}
	out, err = admin("upgrade", "--wrap")
	if err != nil || !strings.Contains(out, "1 above policy") || !strings.Contains(out, "0 to wrap") {
		t.Errorf("upgrade --wrap with a hash above the policy in memory: %v\n%s", err, out)
	}
	if got := storedHashes(t, l)["dora"]; got != strong.hash {
		t.Errorf("upgrade --wrap changed a hash above the policy:\n%s\n%s", strong.hash, got)
	}
	out, _ = admin("hashes")
	if !strings.Contains(out, "above policy") {
		t.Errorf("admin hashes does not call dora's hash above policy:\n%s", out)
	}
	wantFetch(t, l, "dora", strong.sig, "f.txt", "strong")

	// A database no server of this version has recorded a policy in.
	data := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(data, "larder.db"))
	must(t, err)
	must(t, sqlite.NewUserStore(db).CreateUser(context.Background(), &larder.User{Name: "erin", Verifier: before}))
	must(t, db.Close())
	_, err = auth.CreatePepperFile(filepath.Join(data, "pepper"))
	must(t, err)
	for _, args := range [][]string{{"hashes"}, {"upgrade", "--wrap"}, {"user", "add", "fred", "--password-stdin"}} {
		_, _, err := runLarder(t, "pw\n", append(append([]string{"admin"}, args...), "--data", data)...)
		wantErrorSaying(t, strings.Join(args, " ")+" without a recorded policy", err, "records no password-hash policy", "--hash-memory")
	}
	if _, _, err := runLarder(t, "", "admin", "hashes", "--data", data, "--hash-memory", "64", "--hash-passes", "3"); err == nil {
		t.Errorf("admin hashes with a policy given in part (lanes guessed): no error")
	}
	if _, _, err := runLarder(t, "", "admin", "hashes", "--data", data, "--hash-memory", "64", "--hash-passes", "3", "--hash-lanes", "1"); err != nil {
		t.Errorf("admin hashes with the policy given by flags: %v", err)
	}
	if _, _, err := runLarder(t, "", "admin", "user", "list", "--data", data); err != nil {
		t.Errorf("admin user list needs no policy: %v", err)
	}
}

// TestImportRefusesUncheckableHashes: no admin command stores a hash that
// no server could check: import refuses one naming a pepper the file does
// not hold, and one asking for more work than a server computes.
func TestImportRefusesUncheckableHashes(t *testing.T) {
	l := startLarder(t)
	good := legacyAccounts(t)[0]
	file, _ := writeImportFile(t, []legacyAccount{good},
		"p9user:$argon2id$v=19$m=64,t=1,p=1,keyid=cDk$c29tZXNhbHRzb21lc2FsdA$PL01amPyeUuxG7H0vIr5X+qHkZvWnHmGBGXFYvh8z2E",
		"huge:$argon2id$v=19$m=1048576,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$PL01amPyeUuxG7H0vIr5X+qHkZvWnHmGBGXFYvh8z2E")
	_, stderr, err := l.admin(t, "", "user", "import", file)
	if err == nil || !strings.Contains(stderr, `pepper "p9"`) || !strings.Contains(stderr, "huge") {
		t.Errorf("import of uncheckable hashes: %v\n%s\nwant both refused, saying why", err, stderr)
	}
	stored := storedHashes(t, l)
	if _, ok := stored["p9user"]; ok {
		t.Error("a hash naming a pepper not in the file was stored")
	}
	if _, ok := stored["huge"]; ok {
		t.Error("a hash asking for 1 GiB was stored")
	}
	if _, ok := stored[good.name]; !ok {
		t.Errorf("the good line was not imported")
	}
}

// TestAdminRefusesEmptyPostgres: admin and audit commands pointed at a
// PostgreSQL database where no server has run refuse it, and create no
// schema there.
func TestAdminRefusesEmptyPostgres(t *testing.T) {
	url := pgtest.URL(t)
	data := t.TempDir()
	_, err := auth.CreatePepperFile(filepath.Join(data, "pepper"))
	must(t, err)
	for _, args := range [][]string{
		{"admin", "user", "list", "--db", url, "--data", data},
		{"admin", "hashes", "--db", url, "--data", data},
		{"audit", "tail", "--audit-db", url, "--data", data},
	} {
		_, _, err := runLarder(t, "", args...)
		wantErrorSaying(t, strings.Join(args[:2], " ")+" on an empty database", err, "holds no larder database", "--db")
	}
	// Still empty: a server then starts on it as on any new database.
	l := startLarder(t, func(c *ServeConfig) { c.DB = url })
	if _, _, err := l.admin(t, "", "user", "list"); err != nil {
		t.Errorf("admin user list once a server ran: %v", err)
	}
}

// TestPepperFilesMustAgree: a server or admin command whose pepper file
// calls another key by an ID the others use is refused, before it makes a
// hash the others could not check.
func TestPepperFilesMustAgree(t *testing.T) {
	l := startLarder(t)
	alice := larder.NewSignature("alice's password", "salt-a")
	register(t, l, "alice", alice)
	other := filepath.Join(t.TempDir(), "pepper")
	_, err := auth.CreatePepperFile(other) // its own p1
	must(t, err)

	_, _, err = runLarder(t, "pw\n", "admin", "user", "add", "bob", "--password-stdin", "--data", l.data, "--pepper-file", other)
	wantErrorSaying(t, "admin user add with another p1", err, "pepper p1 of "+other, "fingerprint differs", "--pepper-file")
	if _, ok := storedHashes(t, l)["bob"]; ok {
		t.Error("bob was added with a pepper the server does not have")
	}
	cfg := l.cfg
	cfg.PepperFile = other
	cfg.FilesDir = t.TempDir()
	wantErrorSaying(t, "a second server with another p1", openMain(t, cfg), "pepper p1 of "+other, "fingerprint differs")

	// A rotation records the new pepper; a copy of the file passes.
	adminOK(t, l, "", "pepper", "rotate")
	data, err := os.ReadFile(filepath.Join(l.data, "pepper"))
	must(t, err)
	must(t, os.WriteFile(other, data, 0o600))
	if _, _, err := runLarder(t, "", "admin", "pepper", "list", "--data", l.data, "--pepper-file", other); err != nil {
		t.Errorf("admin with a copy of the servers' pepper file: %v", err)
	}
}
