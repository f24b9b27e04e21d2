package main

// End-to-end tests of how larder keeps its accounts: the pepper, the hash
// policy and its upgrades, imported and wrapped legacy hashes, throttling,
// and account changes made by "larder admin" beside running servers. Each
// runs the real program: Main on 127.0.0.1:0 over temporary folders, the
// CLI through Run in-process, the wire through the codec. internal/auth
// tests the formats themselves.

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/internal/auth"
	"github.com/larderfs/larder/internal/postgres/pgtest"
)

// cheapHash is how "larder admin" describes a hash by the test servers'
// policy (testServeConfig) without its pepper.
const cheapHash = "argon2id m=64,t=1,p=1"

// TestPepperRotationMovesAccountsAsTheyLogIn rotates the pepper of a server
// with two accounts: after a restart both still log in with their p1
// hashes, each moves to p2 at its own login, and p1 can be retired only
// once no account uses it.
func TestPepperRotationMovesAccountsAsTheyLogIn(t *testing.T) {
	l := startLarder(t)
	l.put(t, "f.txt", []byte("peppered"))
	alice, bob := larder.NewSignature("alice's password", "salt-a"), larder.NewSignature("bob's password", "salt-b")
	register(t, l, "alice", alice)
	register(t, l, "bob", bob)

	out := adminOK(t, l, "", "pepper", "rotate")
	if want := "pepper p2 added to " + filepath.Join(l.data, "pepper") + " and made current"; !strings.HasPrefix(out, want) {
		t.Fatalf("pepper rotate printed %q, want %q…", out, want)
	}
	wantRetireRefused(t, l, "p1", 2)

	l = l.restart(t)
	wantHashes(t, l, map[string]string{
		"alice": cheapHash + " pepper=p1 [below policy]",
		"bob":   cheapHash + " pepper=p1 [below policy]",
	})
	wantFetch(t, l, "alice", alice, "f.txt", "peppered")
	wantHashes(t, l, map[string]string{
		"alice": cheapHash + " pepper=p2 [current]",
		"bob":   cheapHash + " pepper=p1 [below policy]",
	})
	if out := adminOK(t, l, "", "pepper", "list"); out != "p1: 1 accounts\np2 (current): 1 accounts\n" {
		t.Errorf("pepper list: got %q, want p1 used by 1 account, p2 current and used by 1", out)
	}
	wantRetireRefused(t, l, "p1", 1)

	wantFetch(t, l, "bob", bob, "f.txt", "peppered")
	wantHashes(t, l, map[string]string{
		"alice": cheapHash + " pepper=p2 [current]",
		"bob":   cheapHash + " pepper=p2 [current]",
	})
	if out := adminOK(t, l, "", "pepper", "retire", "p1"); !strings.HasPrefix(out, "pepper p1 removed from ") {
		t.Errorf("pepper retire p1 printed %q, want it removed", out)
	}
	if out := adminOK(t, l, "", "pepper", "list"); out != "p2 (current): 2 accounts\n" {
		t.Errorf("pepper list after retiring p1: got %q, want only p2, current, used by 2", out)
	}

	// Without p1 in the file, everyone still logs in.
	l = l.restart(t)
	wantFetch(t, l, "alice", alice, "f.txt", "peppered")
	wantFetch(t, l, "bob", bob, "f.txt", "peppered")
}

// wantRetireRefused checks that "admin pepper retire id" fails, saying that
// n accounts still use the pepper, and leaves it in the file.
func wantRetireRefused(t *testing.T, l *testLarder, id string, n int) {
	t.Helper()
	_, stderr, err := l.admin(t, "", "pepper", "retire", id)
	if err == nil {
		t.Fatalf("pepper retire %s succeeded while %d accounts use it\n%s", id, n, stderr)
	}
	if want := fmt.Sprintf("pepper %s is still used by %d accounts", id, n); !strings.Contains(err.Error(), want) {
		t.Errorf("pepper retire %s: got %q, want %q", id, err, want)
	}
	if code := ExitCode(err); code == exitOK || code == exitUsage {
		t.Errorf("pepper retire %s refused: got exit code %d, want a failure other than usage", id, code)
	}
	ps, err := auth.LoadPeppers(filepath.Join(l.data, "pepper"))
	must(t, err)
	if _, ok := ps.Lookup(id); !ok {
		t.Errorf("refused pepper retire %s removed it from the file anyway: %v", id, ps)
	}
}

// TestPolicyChangeUpgradesOnlyTheAccountThatLogsIn registers two accounts
// under one hash policy, restarts under another, and checks that a login
// moves exactly that account to the new policy.
func TestPolicyChangeUpgradesOnlyTheAccountThatLogsIn(t *testing.T) {
	policyA := auth.Params{Memory: 64, Time: 1, Threads: 1}
	policyB := auth.Params{Memory: 128, Time: 1, Threads: 1}
	l := startLarder(t, withHash(policyA))
	l.put(t, "f.txt", []byte("policy"))
	alice, bob := larder.NewSignature("alice's password", "salt-a"), larder.NewSignature("bob's password", "salt-b")
	register(t, l, "alice", alice)
	register(t, l, "bob", bob)

	l = l.restart(t, withHash(policyB))
	wantHashes(t, l, map[string]string{
		"alice": "argon2id m=64,t=1,p=1 pepper=p1 [below policy]",
		"bob":   "argon2id m=64,t=1,p=1 pepper=p1 [below policy]",
	})
	wantFetch(t, l, "alice", alice, "f.txt", "policy")
	wantHashes(t, l, map[string]string{
		"alice": "argon2id m=128,t=1,p=1 pepper=p1 [current]",
		"bob":   "argon2id m=64,t=1,p=1 pepper=p1 [below policy]",
	})
	wantHashesSummary(t, l, []string{
		"1 current argon2id m=128,t=1,p=1 pepper=p1",
		"1 below policy argon2id m=64,t=1,p=1 pepper=p1",
		"2 accounts; the policy is argon2id m=128,t=1,p=1 with pepper p1",
	})
}

func withHash(p auth.Params) func(*ServeConfig) { return func(c *ServeConfig) { c.Hash = p } }

// legacyAccount is an account exported by another system, as a NAME:HASH
// line of "larder admin user import".
type legacyAccount struct {
	name  string
	sig   larder.Signature
	hash  string // as the other system stored it
	label string // as "larder admin" describes it
}

// legacyAccounts returns one account of every format that larder imports,
// each made with the reference library of its scheme over the input that
// internal/auth/doc.go specifies: bcrypt and PBKDF2 over the signature as
// 64 lowercase hex characters, course-sha256 over its raw bytes.
func legacyAccounts(t *testing.T) []legacyAccount {
	t.Helper()
	b64 := base64.RawStdEncoding.EncodeToString
	ab64 := func(b []byte) string { return strings.ReplaceAll(b64(b), "+", ".") } // passlib's
	sig := func(name string) larder.Signature { return larder.NewSignature("password of "+name, "salt of "+name) }
	hexSig := func(s larder.Signature) string { return hex.EncodeToString(s[:]) }

	var accounts []legacyAccount
	// x/crypto/bcrypt writes $2a$; for ASCII input shorter than 72 bytes
	// $2b$ and $2y$ compute the same, so the variants differ in name only.
	for _, variant := range []string{"2a", "2b", "2y"} {
		name := "bcrypt" + variant
		s := sig(name)
		h, err := bcrypt.GenerateFromPassword([]byte(hexSig(s)), bcrypt.MinCost)
		must(t, err)
		accounts = append(accounts, legacyAccount{name, s, "$" + variant + string(h[3:]), "bcrypt cost=4"})
	}

	s, salt := sig("pbkdf2"), randomData(16, 10)
	dk, err := pbkdf2.Key(sha256.New, hexSig(s), salt, 1000, 32)
	must(t, err)
	accounts = append(accounts, legacyAccount{"pbkdf2", s, "$pbkdf2-sha256$i=1000$" + b64(salt) + "$" + b64(dk), "pbkdf2-sha256 i=1000"})

	s, salt = sig("passlib"), randomData(16, 11)
	dk, err = pbkdf2.Key(sha256.New, hexSig(s), salt, 1000, 32)
	must(t, err)
	accounts = append(accounts, legacyAccount{"passlib", s, "$pbkdf2-sha256$1000$" + ab64(salt) + "$" + ab64(dk), "pbkdf2-sha256 i=1000"})

	// The course's reference server: SHA-256(raw signature ‖ server salt).
	s, salt = sig("course"), []byte("the server's salt")
	d := sha256.Sum256(append(s[:len(s):len(s)], salt...))
	accounts = append(accounts, legacyAccount{"course", s, "$course-sha256$" + b64(salt) + "$" + b64(d[:]), "course-sha256"})

	// argon2id by the current parameters, but without a pepper.
	s, salt = sig("argon2plain"), randomData(16, 12)
	key := argon2.IDKey(s[:], salt, 1, 64, 1, 32)
	accounts = append(accounts, legacyAccount{"argon2plain", s, "$argon2id$v=19$m=64,t=1,p=1$" + b64(salt) + "$" + b64(key), cheapHash})
	return accounts
}

// writeImportFile writes accounts as NAME:HASH lines, after a comment and
// a blank line, with extra lines inserted after the first account. It
// returns the file and the line number of each extra line.
func writeImportFile(t *testing.T, accounts []legacyAccount, extra ...string) (string, []int) {
	t.Helper()
	lines := []string{"# exported from the old server", ""}
	var at []int
	for i, a := range accounts {
		lines = append(lines, a.name+":"+a.hash)
		if i == 0 {
			for _, e := range extra {
				lines = append(lines, e)
				at = append(at, len(lines))
			}
		}
	}
	file := filepath.Join(t.TempDir(), "accounts.txt")
	must(t, os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600))
	return file, at
}

// TestLegacyHashesVerifyAndUpgradeOnLogin imports an account of every
// legacy format, with one unreadable line among them, and checks that each
// user retrieves a file with their signature and then has a current
// peppered argon2id hash, which still verifies after a restart; a wrong
// signature is refused and upgrades nothing.
func TestLegacyHashesVerifyAndUpgradeOnLogin(t *testing.T) {
	l := startLarder(t)
	l.put(t, "f.txt", []byte("imported"))
	accounts := legacyAccounts(t)
	file, bad := writeImportFile(t, accounts, "mallory:$md5$c2FsdA$aGFzaA", "no colon here")

	stdout, stderr, err := l.admin(t, "", "user", "import", file)
	if err == nil || ExitCode(err) == exitOK {
		t.Errorf("import with refused lines: got exit code %d (%v), want a failure", ExitCode(err), err)
	}
	if want := fmt.Sprintf("%d accounts imported, 0 skipped as existing, 2 lines refused\n", len(accounts)); stdout != want {
		t.Errorf("import printed %q, want %q", stdout, want)
	}
	for _, want := range []string{
		fmt.Sprintf("%s:%d: mallory: the hash is not in a format larder reads: ", file, bad[0]),
		fmt.Sprintf("%s:%d: want NAME:HASH", file, bad[1]),
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("import's messages:\n%s\nwant one starting %q", stderr, want)
		}
	}
	if strings.Contains(stderr, "aGFzaA") {
		t.Errorf("import's messages quote the refused hash:\n%s", stderr)
	}

	imported := map[string]string{}
	upgraded := map[string]string{}
	for _, a := range accounts {
		imported[a.name] = a.label + " [below policy]"
		upgraded[a.name] = cheapHash + " pepper=p1 [current]"
	}
	wantHashes(t, l, imported) // mallory is not among them

	for _, a := range accounts {
		r := rawExchange(t, l.addr(), a.name, larder.NewSignature("wrong", "salt of "+a.name), "f.txt")
		wantStatus(t, a.name+" with a wrong signature", r, course.StatusInvalidLogin)
	}
	wantHashes(t, l, imported)

	for _, a := range accounts {
		wantFetch(t, l, a.name, a.sig, "f.txt", "imported")
	}
	wantHashes(t, l, upgraded)

	// A new server has no cached checks: the new hashes must verify.
	l = l.restart(t)
	for _, a := range accounts {
		wantFetch(t, l, a.name, a.sig, "f.txt", "imported")
	}
}

// TestWrapProtectsLegacyHashesUntilLogin imports legacy accounts, wraps
// them with "larder admin upgrade --wrap" (a dry run first), and checks
// that every user still logs in and is then unwrapped to a plain current
// hash.
func TestWrapProtectsLegacyHashesUntilLogin(t *testing.T) {
	l := startLarder(t)
	l.put(t, "f.txt", []byte("wrapped"))
	dave := larder.NewSignature("dave's password", "salt-d")
	register(t, l, "dave", dave) // current already: left alone
	accounts := legacyAccounts(t)
	file, _ := writeImportFile(t, accounts)
	adminOK(t, l, "", "user", "import", file)
	n := len(accounts)
	before := storedHashes(t, l)

	out := adminOK(t, l, "", "upgrade", "--wrap", "--dry-run")
	if want := fmt.Sprintf("1 accounts current, 0 already wrapped, 0 above policy (left alone), 0 on an older pepper (moved at login), 0 native only (no hash), 0 unusable, %d to wrap\n", n); out != want {
		t.Errorf("upgrade --wrap --dry-run printed %q, want %q", out, want)
	}
	if after := storedHashes(t, l); !maps.Equal(after, before) {
		t.Errorf("upgrade --wrap --dry-run changed stored hashes")
	}

	out = adminOK(t, l, "", "upgrade", "--wrap")
	wantOut := regexp.MustCompile(fmt.Sprintf(`^1 accounts current, 0 already wrapped, 0 above policy \(left alone\), 0 on an older pepper \(moved at login\), 0 native only \(no hash\), 0 unusable, %d to wrap\n`+
		`%d accounts wrapped in \S+; 0 changed meanwhile and were left alone\n$`, n, n))
	if !wantOut.MatchString(out) {
		t.Errorf("upgrade --wrap printed %q, want it to match %q", out, wantOut)
	}
	stored := storedHashes(t, l)
	wrapped := map[string]string{"dave": cheapHash + " pepper=p1 [current]"}
	summary := map[string]int{}
	for _, a := range accounts {
		if !auth.IsWrapped(stored[a.name]) {
			t.Errorf("%s's stored hash is not wrapped after upgrade --wrap", a.name)
		}
		label := "wrapped " + a.label + " in " + cheapHash + " pepper=p1"
		wrapped[a.name] = label + " [below policy]"
		summary[label]++
	}
	if stored["dave"] != before["dave"] {
		t.Errorf("upgrade --wrap changed dave's current hash")
	}
	wantHashes(t, l, wrapped)
	var lines []string
	for label, count := range summary {
		lines = append(lines, fmt.Sprintf("%d below policy %s", count, label))
	}
	lines = append(lines, "1 current "+cheapHash+" pepper=p1",
		fmt.Sprintf("%d accounts; the policy is %s with pepper p1", n+1, cheapHash))
	wantHashesSummary(t, l, lines)

	if out := adminOK(t, l, "", "upgrade", "--wrap"); out != fmt.Sprintf("1 accounts current, %d already wrapped, 0 above policy (left alone), 0 on an older pepper (moved at login), 0 native only (no hash), 0 unusable, 0 to wrap\n", n) {
		t.Errorf("a second upgrade --wrap printed %q, want every legacy account already wrapped and none to wrap", out)
	}

	current := map[string]string{"dave": cheapHash + " pepper=p1 [current]"}
	for _, a := range accounts {
		r := rawExchange(t, l.addr(), a.name, larder.NewSignature("wrong", "salt of "+a.name), "f.txt")
		wantStatus(t, a.name+" wrapped, with a wrong signature", r, course.StatusInvalidLogin)
		wantFetch(t, l, a.name, a.sig, "f.txt", "wrapped")
		current[a.name] = cheapHash + " pepper=p1 [current]"
	}
	wantHashes(t, l, current)
	for name, h := range storedHashes(t, l) {
		if auth.IsWrapped(h) {
			t.Errorf("%s's hash is still wrapped after a login", name)
		}
	}
	if out := adminOK(t, l, "", "upgrade", "--wrap"); out != fmt.Sprintf("%d accounts current, 0 already wrapped, 0 above policy (left alone), 0 on an older pepper (moved at login), 0 native only (no hash), 0 unusable, 0 to wrap\n", n+1) {
		t.Errorf("upgrade --wrap after every login printed %q, want all %d current", out, n+1)
	}

	l = l.restart(t)
	for _, a := range accounts {
		wantFetch(t, l, a.name, a.sig, "f.txt", "wrapped")
	}
}

// TestPepperFileMustBePrivate: "larder serve" refuses a pepper file that
// others can read, saying which file and how to fix it.
func TestPepperFileMustBePrivate(t *testing.T) {
	cfg := testServeConfig(t)
	cfg.PepperFile = filepath.Join(t.TempDir(), "pepper")
	_, err := auth.CreatePepperFile(cfg.PepperFile)
	must(t, err)
	must(t, os.Chmod(cfg.PepperFile, 0o644))

	wantErrorSaying(t, "Open with a pepper file of mode 0644", openMain(t, cfg), cfg.PepperFile, "0644", "chmod 600")

	// As an operator meets it. Were it not refused, it would serve until
	// the context ends, and then return no error.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err = runLarderContext(ctx, t, "", "serve", "--listen", "127.0.0.1:0", "--native-listen", "127.0.0.1:0", "--data", cfg.DataDir, "--files", cfg.FilesDir,
		"--pepper-file", cfg.PepperFile, "--hash-memory", "64", "--hash-passes", "1")
	wantErrorSaying(t, "larder serve with a pepper file of mode 0644", err, cfg.PepperFile, "chmod 600")
	if code := ExitCode(err); code != exitFailure {
		t.Errorf("larder serve with a pepper file of mode 0644: got exit code %d, want %d", code, exitFailure)
	}

	must(t, os.Chmod(cfg.PepperFile, 0o600))
	if err := openMain(t, cfg); err != nil {
		t.Fatalf("Open with the pepper file made private: %v", err)
	}
}

// TestPepperFileInsideServedFolderRefused: a pepper file in the served
// folder would be served to anyone, so the server does not start, whether
// the file exists, is still to be created, or is reached by a link.
func TestPepperFileInsideServedFolderRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, files string) (pepperFile string)
	}{
		{"existing", func(t *testing.T, files string) string {
			p := filepath.Join(files, "pepper")
			_, err := auth.CreatePepperFile(p)
			must(t, err)
			return p
		}},
		{"not yet created", func(t *testing.T, files string) string {
			return filepath.Join(files, "pepper")
		}},
		{"behind a link from outside", func(t *testing.T, files string) string {
			p := filepath.Join(files, "pepper")
			_, err := auth.CreatePepperFile(p)
			must(t, err)
			link := filepath.Join(t.TempDir(), "pepper")
			must(t, os.Symlink(p, link))
			return link
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testServeConfig(t)
			cfg.PepperFile = tc.setup(t, cfg.FilesDir)
			_, statErr := os.Lstat(cfg.PepperFile)
			wantErrorSaying(t, "Open", openMain(t, cfg), "pepper file "+cfg.PepperFile, "inside the served folder")
			if _, err := os.Lstat(cfg.PepperFile); errors.Is(statErr, fs.ErrNotExist) && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the refused pepper file was created in the served folder: %v", err)
			}
		})
	}
}

// TestPepperFileMissingWhileHashesUseIt: a server whose pepper file is gone
// but whose database holds peppered hashes refuses to start, naming the
// peppers, rather than create a new one that would lock everyone out; so
// do the admin commands.
func TestPepperFileMissingWhileHashesUseIt(t *testing.T) {
	l := startLarder(t)
	l.put(t, "f.txt", []byte("still here"))
	alice := larder.NewSignature("alice's password", "salt-a")
	register(t, l, "alice", alice)
	l.shutdown()
	pepper := filepath.Join(l.data, "pepper")
	must(t, os.Rename(pepper, pepper+".moved"))

	wantErrorSaying(t, "Open without the pepper file", openMain(t, l.cfg), pepper, "does not exist", "[p1]")
	_, _, err := l.admin(t, "", "user", "list")
	wantErrorSaying(t, "admin user list without the pepper file", err, pepper, "[p1]")
	if _, err := os.Stat(pepper); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a new pepper file was created beside hashes that need the old one: %v", err)
	}

	must(t, os.Rename(pepper+".moved", pepper))
	l = l.restart(t)
	wantFetch(t, l, "alice", alice, "f.txt", "still here")
}

// openMain opens and closes a Main with cfg, and returns Open's error.
func openMain(t *testing.T, cfg ServeConfig) error {
	t.Helper()
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Open(ctx); err != nil {
		return err
	}
	must(t, m.Close())
	return nil
}

// wantErrorSaying checks that err is an error whose text holds every one
// of wants.
func wantErrorSaying(t *testing.T, what string, err error, wants ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: got no error, want one saying %q", what, wants)
		return
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: got %q, want it to say %q", what, err, w)
		}
	}
}

// Throttling. The server never sees alice's signature before the tests
// below use it: she is added by the administrator, so no reply comes from
// the verification cache unless a test says so.

const attacker, owner = "127.0.0.2", "127.0.0.3"

// TestThrottledAddressRefusedWhileOwnerGetsIn: an address that guesses
// alice's signature is refused after the default five failures, quickly
// and saying when to retry, even when it then sends the right signature;
// alice, from another address, gets her file.
func TestThrottledAddressRefusedWhileOwnerGetsIn(t *testing.T) {
	l, right := startThrottled(t)
	cfg := auth.DefaultThrottleConfig()

	n, took, refusal := failUntilRefused(t, l, attacker, func(int) string { return "alice" }, course.StatusInvalidLogin)
	wantBudget(t, "wrong signatures for alice from one address", n, cfg.PairFailures, cfg.PairRefill, took)
	wantRetry(t, refusal, "too many failed attempts, retry in ", cfg.PairRefill)

	r := rawExchangeFrom(t, attacker, l.addr(), "alice", right, "f.txt")
	wantStatus(t, "alice's right signature from the refused address", r, course.StatusOther)

	wantOwnerGetsIn(t, l, right)
}

// TestThrottledUnknownNamesLikeKnownOnes: guessing names is not free. An
// unknown name is refused after as many failures as a real one, and an
// address that tries many names is refused for all of them, a real account
// included, while its owner elsewhere gets in.
func TestThrottledUnknownNamesLikeKnownOnes(t *testing.T) {
	l, right := startThrottled(t)
	cfg := auth.DefaultThrottleConfig()

	n, took, refusal := failUntilRefused(t, l, "127.0.0.4", func(int) string { return "nobody" }, course.StatusUserMissing)
	wantBudget(t, "guesses for one unknown name from one address", n, cfg.PairFailures, cfg.PairRefill, took)
	wantRetry(t, refusal, "too many failed attempts, retry in ", cfg.PairRefill)

	const enumerator = "127.0.0.5"
	n, took, refusal = failUntilRefused(t, l, enumerator, func(i int) string { return fmt.Sprint("user", i) }, course.StatusUserMissing)
	wantBudget(t, "guesses for new names from one address", n, cfg.AddrFailures, cfg.AddrRefill, took)
	wantRetry(t, refusal, "too many failed attempts from this address, retry in ", cfg.AddrRefill)
	r := rawExchangeFrom(t, enumerator, l.addr(), "alice", right, "f.txt")
	wantStatus(t, "alice's right signature from the enumerating address", r, course.StatusOther)

	wantOwnerGetsIn(t, l, right)
}

// TestThrottledAddressRefusedAfterOwnersLogin: once alice has logged in,
// her check is cached; a refused address must still be refused with her
// right signature. Otherwise the guesser, whose wrong guesses are refused
// without any hashing, can go on at wire speed and recognise the right
// one as the only reply that is not a refusal, for as long as the cache
// remembers her (SECURITY.md promises at most 5 + 120 guesses an hour).
func TestThrottledAddressRefusedAfterOwnersLogin(t *testing.T) {
	l, right := startThrottled(t)
	cfg := auth.DefaultThrottleConfig()
	n, took, _ := failUntilRefused(t, l, attacker, func(int) string { return "alice" }, course.StatusInvalidLogin)
	wantBudget(t, "wrong signatures for alice from one address", n, cfg.PairFailures, cfg.PairRefill, took)

	wantOwnerGetsIn(t, l, right)

	r := rawExchangeFrom(t, attacker, l.addr(), "alice", guess(1000), "f.txt")
	wantStatus(t, "a wrong guess from the refused address", r, course.StatusOther)
	r = rawExchangeFrom(t, attacker, l.addr(), "alice", right, "f.txt")
	wantStatus(t, "the right guess from the refused address, alice's check being cached", r, course.StatusOther)
}

// startThrottled starts a server with the default throttle, serving
// f.txt, with alice added by "larder admin user add"; it returns her
// signature.
func startThrottled(t *testing.T) (*testLarder, larder.Signature) {
	t.Helper()
	l := startLarder(t)
	l.put(t, "f.txt", []byte("alice's file"))
	adminOK(t, l, "alice's password\n", "user", "add", "alice", "--salt", "course", "--password-stdin")
	return l, larder.NewSignature("alice's password", course.CourseSalt)
}

// wantOwnerGetsIn checks that alice, from her own address, retrieves her
// file with her signature right.
func wantOwnerGetsIn(t *testing.T, l *testLarder, right larder.Signature) {
	t.Helper()
	r := rawExchangeFrom(t, owner, l.addr(), "alice", right, "f.txt")
	wantStatus(t, "alice from her own address", r, course.StatusOK)
	if string(r.payload) != "alice's file" {
		t.Errorf("alice from her own address: got %q, want her file", r.payload)
	}
}

func guess(i int) larder.Signature {
	return larder.NewSignature(fmt.Sprint("guess ", i), course.CourseSalt)
}

// failUntilRefused sends wrong signatures from src for the names that
// name(i) gives until the server refuses one (status OTHER). Each before
// must have status fail. It returns how many failed, how long that took,
// and the refusal.
func failUntilRefused(t *testing.T, l *testLarder, src string, name func(int) string, fail course.Status) (int, time.Duration, wireReply) {
	t.Helper()
	start := time.Now()
	for i := range 100 {
		r := rawExchangeFrom(t, src, l.addr(), name(i), guess(i), "f.txt")
		switch r.status {
		case fail:
		case course.StatusOther:
			return i, time.Since(start), r
		default:
			t.Fatalf("guess %d from %s for %s: got status %v (%q), want %v or a refusal", i+1, src, name(i), r.status, r.payload, fail)
		}
	}
	t.Fatalf("100 wrong guesses from %s, none refused", src)
	return 0, 0, wireReply{}
}

// wantBudget checks that n failures were allowed: budget, plus one per
// refill interval that passed meanwhile (on a very slow machine).
func wantBudget(t *testing.T, what string, n, budget int, refill, took time.Duration) {
	t.Helper()
	if most := budget + int(took/refill); n < budget || n > most {
		t.Errorf("%s: got %d answered before the refusal, want %d (in %v)", what, n, budget, took.Round(time.Millisecond))
	}
}

// wantRetry checks that a refusal's message is prefix followed by "N s",
// N between 1 and the refill interval.
func wantRetry(t *testing.T, r wireReply, prefix string, refill time.Duration) {
	t.Helper()
	msg := string(r.payload)
	rest, ok := strings.CutPrefix(msg, prefix)
	secs, err := strconv.Atoi(strings.TrimSuffix(rest, " s"))
	if !ok || !strings.HasSuffix(rest, " s") || err != nil || secs < 1 || time.Duration(secs)*time.Second > refill {
		t.Errorf("refusal: got %q, want %q followed by 1 to %d and \" s\"", msg, prefix, int(refill/time.Second))
	}
}

// TestDisableTakesEffectOnNextRequest: the admin commands act on the store
// beside running servers, and every change counts from the next request,
// on every server sharing the store, cached checks included.
func TestDisableTakesEffectOnNextRequest(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		l := startLarder(t)
		checkAccountChanges(t, l, []*testLarder{l})
	})
	t.Run("postgres", func(t *testing.T) {
		url := pgtest.URL(t)
		// Two servers, each with its own data and served folders, sharing
		// the database and the pepper file.
		pepper := filepath.Join(t.TempDir(), "pepper")
		shared := func(c *ServeConfig) { c.DB, c.PepperFile = url, pepper }
		a := startLarder(t, shared)
		b := startLarder(t, shared)
		checkAccountChanges(t, a, []*testLarder{a, b})
	})
}

// checkAccountChanges registers alice on the first of servers, logs in on
// each, then disables, enables, resets and deletes her account with the
// admin commands on admin's accounts, checking each change on every server
// at the very next request.
func checkAccountChanges(t *testing.T, admin *testLarder, servers []*testLarder) {
	for _, s := range servers {
		s.put(t, "f.txt", []byte("alice's file"))
	}
	old := larder.NewSignature("old password", "salt-a")
	register(t, servers[0], "alice", old)
	each := func(what string, sig larder.Signature, want course.Status, message string) {
		t.Helper()
		for i, s := range servers {
			r := rawExchange(t, s.addr(), "alice", sig, "f.txt")
			wantStatus(t, fmt.Sprintf("%s, on server %d", what, i+1), r, want)
			if !strings.Contains(string(r.payload), message) {
				t.Errorf("%s, on server %d: got %q, want it to say %q", what, i+1, r.payload, message)
			}
		}
	}
	each("alice's first login", old, course.StatusOK, "alice's file") // now cached on every server

	if out := adminOK(t, admin, "", "user", "disable", "alice"); out != "user alice disabled\n" {
		t.Errorf("user disable printed %q", out)
	}
	each("alice disabled", old, course.StatusInvalidLogin, `account "alice" is disabled`)
	// Only the right signature learns that the account is disabled.
	each("alice disabled, a wrong signature", larder.NewSignature("wrong", "salt-a"), course.StatusInvalidLogin, "Signature hashes do not match")
	for i, s := range servers {
		r := rawExchange(t, s.addr(), "alice", larder.NewSignature("wrong", "salt-a"), "f.txt")
		if strings.Contains(string(r.payload), "disabled") {
			t.Errorf("alice disabled, a wrong signature, on server %d: got %q, which tells that the account is disabled", i+1, r.payload)
		}
	}

	if out := adminOK(t, admin, "", "user", "enable", "alice"); out != "user alice enabled\n" {
		t.Errorf("user enable printed %q", out)
	}
	each("alice enabled again", old, course.StatusOK, "alice's file")

	adminOK(t, admin, "new password\n", "user", "passwd", "alice", "--salt", "course", "--password-stdin")
	renewed := larder.NewSignature("new password", course.CourseSalt)
	each("alice's old password after a reset", old, course.StatusInvalidLogin, "Signature hashes do not match")
	each("alice's new password", renewed, course.StatusOK, "alice's file")

	if out := adminOK(t, admin, "", "user", "delete", "alice"); !strings.HasPrefix(out, "user alice deleted (account id ") {
		t.Errorf("user delete printed %q", out)
	}
	each("alice deleted", renewed, course.StatusUserMissing, "Cannot serve non-registered user 'alice'")
}

// Helpers of the tests above.

// register registers name with sig on l.
func register(t *testing.T, l *testLarder, name string, sig larder.Signature) {
	t.Helper()
	wantStatus(t, "register "+name, rawExchange(t, l.addr(), name, sig, ""), course.StatusOK)
}

// wantFetch retrieves path from l as user, and checks that it comes back
// with want.
func wantFetch(t *testing.T, l *testLarder, user string, sig larder.Signature, path, want string) {
	t.Helper()
	r := rawExchange(t, l.addr(), user, sig, path)
	wantStatus(t, user+" retrieving "+path, r, course.StatusOK)
	if string(r.payload) != want {
		t.Fatalf("%s retrieving %s: got %q, want %q", user, path, r.payload, want)
	}
}

func wantStatus(t *testing.T, what string, r wireReply, want course.Status) {
	t.Helper()
	if r.status != want {
		t.Fatalf("%s: got status %v (%q), want %v", what, r.status, r.payload, want)
	}
}

// adminOK runs "larder admin ARGS" on l's accounts, fails t if it fails,
// and returns what it printed on stdout.
func adminOK(t *testing.T, l *testLarder, stdin string, args ...string) string {
	t.Helper()
	stdout, stderr, err := l.admin(t, stdin, args...)
	if err != nil {
		t.Fatalf("larder admin %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return stdout
}

// listedUser is one line of "larder admin user list --json".
type listedUser struct {
	Name     string    `json:"name"`
	Disabled bool      `json:"disabled"`
	Created  time.Time `json:"created"`
	Changed  time.Time `json:"changed"`
	Hash     string    `json:"hash"`
	Current  bool      `json:"hash_current"`
	Native   string    `json:"native"`

	QuotaBytes *int64     `json:"quota_bytes"`
	QuotaFiles *int64     `json:"quota_files"`
	BytesUsed  int64      `json:"bytes_used"`
	FilesUsed  int64      `json:"files_used"`
	LastLogin  *time.Time `json:"last_login"`
}

// listUsers returns the accounts of l as "larder admin user list --json"
// lists them, in its order.
func listUsers(t *testing.T, l *testLarder) []listedUser {
	t.Helper()
	out := adminOK(t, l, "", "user", "list", "--json")
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	var users []listedUser
	for {
		var u listedUser
		if err := dec.Decode(&u); err == io.EOF {
			return users
		} else if err != nil {
			t.Fatalf("user list --json: %v in\n%s", err, out)
		}
		users = append(users, u)
	}
}

// wantHashes checks the hash of every account of l, as "larder admin user
// list --json" describes it: the label, then [current] or [below policy].
func wantHashes(t *testing.T, l *testLarder, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for _, u := range listUsers(t, l) {
		state := "below policy"
		if u.Current {
			state = "current"
		}
		got[u.Name] = u.Hash + " [" + state + "]"
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		if got[name] != want[name] {
			t.Errorf("%s's hash: got %q, want %q", name, got[name], want[name])
		}
	}
	if !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want))) {
		t.Errorf("accounts: got %q, want %q", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
}

// wantHashesSummary checks that "larder admin hashes" prints exactly the
// lines want after its header, in any order, spaces collapsed.
func wantHashesSummary(t *testing.T, l *testLarder, want []string) {
	t.Helper()
	out := adminOK(t, l, "", "hashes")
	var got []string
	for i, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		fields := strings.Fields(line)
		if i == 0 {
			if h := strings.Join(fields, " "); h != "ACCOUNTS POLICY HASH" {
				t.Errorf("admin hashes header: got %q, want ACCOUNTS POLICY HASH", h)
			}
			continue
		}
		got = append(got, strings.Join(fields, " "))
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Errorf("admin hashes: got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// storedHashes returns every account's stored hash, read from l's store
// as the admin commands read it.
func storedHashes(t *testing.T, l *testLarder) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := l.cfg.AccountConfig
	a, err := openAccounts(ctx, &cfg)
	must(t, err)
	defer a.Close()
	hashes := map[string]string{}
	must(t, eachUser(ctx, a.store, func(u *larder.User) error {
		hashes[u.Name] = u.Verifier
		return nil
	}))
	return hashes
}
