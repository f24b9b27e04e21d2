// Package storetest is the conformance suite of larder.UserStore. Every
// implementation runs it from its own tests, so that the embedded SQLite
// store and the shared PostgreSQL store behave alike down to error codes and
// messages:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) larder.UserStore { ... })
//	}
package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/larderfs/larder"
)

// Run runs the conformance suite against the stores that open returns. It
// calls open once in each subtest, which must return an empty store of its
// own, closed in t.Cleanup. The subtests run in parallel.
func Run(t *testing.T, open func(t *testing.T) larder.UserStore) {
	tests := []struct {
		name string
		f    func(t *testing.T, s larder.UserStore)
	}{
		{"CreateAndLookup", testCreateAndLookup},
		{"CreateDisabled", testCreateDisabled},
		{"CreateInvalid", testCreateInvalid},
		{"UserByNameMissing", testUserByNameMissing},
		{"CreateDuplicate", testCreateDuplicate},
		{"ConcurrentCreates", testConcurrentCreates},
		{"NamesAreByteExact", testNamesAreByteExact},
		{"ReplaceVerifier", testReplaceVerifier},
		{"ReplaceVerifierStale", testReplaceVerifierStale},
		{"ReplaceVerifierMissing", testReplaceVerifierMissing},
		{"ConcurrentReplaces", testConcurrentReplaces},
		{"CredentialGen", testCredentialGen},
		{"LNPCredential", testLNPCredential},
		{"LNPOnly", testLNPOnly},
		{"ReplaceCredentials", testReplaceCredentials},
		{"CredentialsOfAnotherAccount", testCredentialsOfAnotherAccount},
		{"SetDisabled", testSetDisabled},
		{"DeleteUser", testDeleteUser},
		{"SetQuota", testSetQuota},
		{"RecordLogin", testRecordLogin},
		{"ListUsersEmpty", testListUsersEmpty},
		{"ListUsersPaging", testListUsersPaging},
		{"ListUsersInvalid", testListUsersInvalid},
		{"ContextCanceled", testContextCanceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.f(t, open(t))
		})
	}
}

// BenchmarkUserByName measures s.UserByName, which every request calls,
// over 1000 accounts: serially, and from GOMAXPROCS goroutines at once. s
// must be empty.
func BenchmarkUserByName(b *testing.B, s larder.UserStore) {
	ctx := context.Background()
	names := make([]string, 1000)
	for i := range names {
		names[i] = fmt.Sprint("user", i)
		if err := s.CreateUser(ctx, &larder.User{Name: names[i], Verifier: verifier}); err != nil {
			b.Fatal(err)
		}
	}
	benchLookups(b, len(names), func(i int) error {
		_, err := s.UserByName(ctx, names[i])
		return err
	})
}

// verifier is a realistic stored verifier; the stores treat it as opaque.
const verifier = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$PL01amPyeUuxG7H0vIr5X+qHkZvWnHmGBGXFYvh8z2E"

func testCreateAndLookup(t *testing.T, s larder.UserStore) {
	ctx := context.Background()
	before := time.Now()
	u := &larder.User{Name: "alice", Verifier: verifier}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatalf("CreateUser(alice): got %v, want nil", err)
	}
	after := time.Now()
	if u.ID == 0 {
		t.Errorf("ID after CreateUser: got 0, want it set")
	}
	checkNow(t, "CreatedAt after CreateUser", u.CreatedAt, before, after)
	if !u.UpdatedAt.Equal(u.CreatedAt) {
		t.Errorf("UpdatedAt after CreateUser: got %v, want CreatedAt %v", u.UpdatedAt, u.CreatedAt)
	}
	got := mustGet(t, s, "alice")
	checkUser(t, "UserByName(alice)", got, u)
	// Times come back in UTC, wherever the store or the program runs.
	if got.CreatedAt.Location() != time.UTC || got.UpdatedAt.Location() != time.UTC {
		t.Errorf("locations of CreatedAt, UpdatedAt: got %v, %v, want UTC", got.CreatedAt.Location(), got.UpdatedAt.Location())
	}
	if got.Disabled {
		t.Errorf("Disabled: got true, want false")
	}
}

func testCreateDisabled(t *testing.T, s larder.UserStore) {
	ctx := context.Background()
	for _, u := range []*larder.User{
		{Name: "off", Verifier: "v-off", Disabled: true},
		{Name: "on", Verifier: "v-on", Disabled: false},
	} {
		want := *u
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatalf("CreateUser(%q): got %v, want nil", u.Name, err)
		}
		if got := mustGet(t, s, u.Name); got.Disabled != want.Disabled {
			t.Errorf("UserByName(%q).Disabled: got %v, want %v", u.Name, got.Disabled, want.Disabled)
		}
	}
}

func testCreateInvalid(t *testing.T, s larder.UserStore) {
	ctx := context.Background()
	for _, name := range []string{"", "seventeen-bytes!!", "a\x00b", "a\nb", "\xff", "caf\xc3"} {
		err := s.CreateUser(ctx, &larder.User{Name: name, Verifier: "v"})
		checkCode(t, fmt.Sprintf("CreateUser(%q)", name), err, larder.EINVALID)
	}
	if err := s.CreateUser(ctx, &larder.User{Name: "nov"}); err == nil {
		t.Errorf("CreateUser with neither a verifier nor an LNP/1 credential: got nil, want an error")
	}
	checkError(t, "UserByName(nov)", getErr(s, "nov"), larder.ENOTFOUND, `no such user "nov"`)
}

func testUserByNameMissing(t *testing.T, s larder.UserStore) {
	mustCreate(t, s, "present", "v")
	checkError(t, "UserByName(nobody)", getErr(s, "nobody"), larder.ENOTFOUND, `no such user "nobody"`)
	// Names that no account can have are not found either, rather than
	// being an error of the store: they come from clients.
	for _, name := range []string{"", "seventeen-bytes!!", "a\x00b", "\xff", "present\x00"} {
		checkError(t, fmt.Sprintf("UserByName(%q)", name), getErr(s, name), larder.ENOTFOUND, fmt.Sprintf("no such user %q", name))
	}
}

func testCreateDuplicate(t *testing.T, s larder.UserStore) {
	ctx := context.Background()
	first := mustCreate(t, s, "bob", "v1")
	err := s.CreateUser(ctx, &larder.User{Name: "bob", Verifier: "v2"})
	checkError(t, "second CreateUser(bob)", err, larder.ECONFLICT, `user "bob" already exists`)
	checkUser(t, "UserByName(bob) after the conflict", mustGet(t, s, "bob"), first)
}

// testConcurrentCreates: of simultaneous registrations of one name exactly
// one wins, and every other gets ECONFLICT (never a busy or serialization
// error of the database).
func testConcurrentCreates(t *testing.T, s larder.UserStore) {
	winner := race(t, "CreateUser(carol)", func(i int) error {
		return s.CreateUser(context.Background(), &larder.User{Name: "carol", Verifier: fmt.Sprint("v", i)})
	})
	if got, want := mustGet(t, s, "carol").Verifier, fmt.Sprint("v", winner); got != want {
		t.Errorf("verifier of carol: got %q, want the winner's %q", got, want)
	}
}

// byteExactNames are distinct accounts: names compare byte for byte, with
// no case folding, trimming or Unicode normalization.
var byteExactNames = []string{
	"bob", "Bob", "BOB", "bob ", " bob", "bøb", "bØb",
	"\u00e9", "e\u0301", // é precomposed and decomposed
	"日本", "日本語", "日本人",
	"ü1", "ü2", // differ only after a multibyte character
	"😀", "😁",
}

func testNamesAreByteExact(t *testing.T, s larder.UserStore) {
	for _, n := range byteExactNames {
		mustCreate(t, s, n, "v-"+n)
	}
	for _, n := range byteExactNames {
		u := mustGet(t, s, n)
		if u.Name != n || u.Verifier != "v-"+n {
			t.Errorf("UserByName(%q): got name %q with verifier %q, want its own account", n, u.Name, u.Verifier)
		}
	}
	for _, n := range []string{"bOb", "bob  ", "BØB", "日", "ü", "ü3", "e"} {
		checkCode(t, fmt.Sprintf("UserByName(%q)", n), getErr(s, n), larder.ENOTFOUND)
	}
	users, err := s.ListUsers(context.Background(), "", 100)
	if err != nil {
		t.Fatalf("ListUsers: got %v, want nil", err)
	}
	checkNames(t, "ListUsers", names(users), slices.Sorted(slices.Values(byteExactNames))) // byte order
}

func testReplaceVerifier(t *testing.T, s larder.UserStore) {
	ctx := context.Background()
	u := mustCreate(t, s, "dave", "old")
	other := mustCreate(t, s, "erin", "old")
	pause()
	if err := s.ReplaceVerifier(ctx, "dave", "old", "new"); err != nil {
		t.Fatalf("ReplaceVerifier(dave, old, new): got %v, want nil", err)
	}
	got := mustGet(t, s, "dave")
	want := *u
	want.Verifier, want.UpdatedAt, want.CredentialGen = "new", got.UpdatedAt, 1
	checkUser(t, "UserByName(dave) after ReplaceVerifier", got, &want)
	checkLater(t, "UpdatedAt after ReplaceVerifier", got.UpdatedAt, u.UpdatedAt)
	checkUser(t, "UserByName(erin), untouched", mustGet(t, s, "erin"), other)

	// Replacing with the same value is a successful swap.
	if err := s.ReplaceVerifier(ctx, "dave", "new", "new"); err != nil {
		t.Errorf("ReplaceVerifier(dave, new, new): got %v, want nil", err)
	}
	if err := s.ReplaceVerifier(ctx, "dave", "new", ""); err == nil {
		t.Errorf("ReplaceVerifier to an empty verifier: got nil, want an error")
	}
	if got := mustGet(t, s, "dave").Verifier; got != "new" {
		t.Errorf("verifier of dave: got %q, want %q", got, "new")
	}
}

func testReplaceVerifierStale(t *testing.T, s larder.UserStore) {
	ctx := context.Background()
	u := mustCreate(t, s, "frank", "reset-by-admin")
	// A login that read the account before the reset tries to rehash the
	// old verifier: it must not undo the reset.
	err := s.ReplaceVerifier(ctx, "frank", "before-reset", "rehashed")
	checkError(t, "ReplaceVerifier(frank) from a stale verifier", err, larder.ECONFLICT, `the verifier of user "frank" has changed`)
	checkUser(t, "UserByName(frank) after the conflict", mustGet(t, s, "frank"), u)
	// Byte for byte, like names.
	err = s.ReplaceVerifier(ctx, "frank", "Reset-by-admin", "rehashed")
	checkCode(t, "ReplaceVerifier(frank) from a verifier that differs in case", err, larder.ECONFLICT)
	err = s.ReplaceVerifier(ctx, "Frank", "reset-by-admin", "rehashed")
	checkCode(t, "ReplaceVerifier(Frank)", err, larder.ENOTFOUND)
	checkUser(t, "UserByName(frank) after the failures", mustGet(t, s, "frank"), u)
}

func testReplaceVerifierMissing(t *testing.T, s larder.UserStore) {
	for _, name := range []string{"nobody", "", "\xff"} {
		err := s.ReplaceVerifier(context.Background(), name, "old", "new")
		checkError(t, fmt.Sprintf("ReplaceVerifier(%q)", name), err, larder.ENOTFOUND, fmt.Sprintf("no such user %q", name))
	}
	checkCode(t, "UserByName(nobody) after ReplaceVerifier", getErr(s, "nobody"), larder.ENOTFOUND)
}

// testConcurrentReplaces: of simultaneous swaps from one verifier (two
// logins rehashing at once, or a login and a reset) exactly one wins.
func testConcurrentReplaces(t *testing.T, s larder.UserStore) {
	mustCreate(t, s, "grace", "old")
	winner := race(t, "ReplaceVerifier(grace)", func(i int) error {
		return s.ReplaceVerifier(context.Background(), "grace", "old", fmt.Sprint("new", i))
	})
	if got, want := mustGet(t, s, "grace").Verifier, fmt.Sprint("new", winner); got != want {
		t.Errorf("verifier of grace: got %q, want the winner's %q", got, want)
	}
}

// testLNPCredential: the LNP/1 credential is set by a compare-and-swap
// from "" (enrollment) or an older one (a renewal), keeps the credential
// generation, survives a rehash, and goes with a password change, which
// it was made from; one made before the change is refused after it. CreateUser stores one given.
func testLNPCredential(t *testing.T, s larder.UserStore) {
	ctx := context.Background()
	u := mustCreate(t, s, "lena", "v1")
	if u.LNPCredential != "" {
		t.Errorf("LNPCredential of a new account: got %q, want none", u.LNPCredential)
	}
	pause()
	if err := s.SetLNPCredential(ctx, "lena", u.ID, 0, "", "c1"); err != nil {
		t.Fatalf("SetLNPCredential(lena, \"\", c1): got %v, want nil", err)
	}
	got := mustGet(t, s, "lena")
	want := *u
	want.LNPCredential, want.UpdatedAt = "c1", got.UpdatedAt
	checkUser(t, "UserByName(lena) after SetLNPCredential", got, &want)
	checkLater(t, "UpdatedAt after SetLNPCredential", got.UpdatedAt, u.UpdatedAt)

	err := s.SetLNPCredential(ctx, "lena", u.ID, 0, "", "c-late")
	checkError(t, "SetLNPCredential(lena) from a stale credential", err, larder.ECONFLICT, `the LNP/1 credential of user "lena" has changed`)
	checkCode(t, "SetLNPCredential(nobody)", s.SetLNPCredential(ctx, "nobody", u.ID, 0, "", "c"), larder.ENOTFOUND)
	if err := s.SetLNPCredential(ctx, "lena", u.ID, 0, "c1", "c2"); err != nil {
		t.Fatalf("SetLNPCredential(lena, c1, c2): got %v, want nil", err)
	}
	if err := s.RehashVerifier(ctx, "lena", "v1", "v1-rehashed"); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, "lena"); got.LNPCredential != "c2" || got.CredentialGen != 0 {
		t.Errorf("after a renewal and a rehash: LNPCredential %q, CredentialGen %d; want c2, 0", got.LNPCredential, got.CredentialGen)
	}
	if err := s.ReplaceVerifier(ctx, "lena", "v1-rehashed", "v2"); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, "lena"); got.LNPCredential != "" || got.CredentialGen != 1 {
		t.Errorf("after a password change: LNPCredential %q, CredentialGen %d; want none, 1", got.LNPCredential, got.CredentialGen)
	}
	// An enrollment begun before the change found the credential "" too:
	// the generation tells it that the password it was made from is gone.
	err = s.SetLNPCredential(ctx, "lena", u.ID, 0, "", "c-old-password")
	checkError(t, "SetLNPCredential(lena) of the generation before a password change", err, larder.ECONFLICT, `the LNP/1 credential of user "lena" has changed`)
	if got := mustGet(t, s, "lena"); got.LNPCredential != "" {
		t.Errorf("after an enrollment of the old password: LNPCredential %q, want none", got.LNPCredential)
	}
	if err := s.SetLNPCredential(ctx, "lena", u.ID, 1, "", "c3"); err != nil {
		t.Fatalf("SetLNPCredential(lena, 1, \"\", c3) after the password change: got %v, want nil", err)
	}

	m := &larder.User{Name: "mia", Verifier: "v", LNPCredential: "c"}
	if err := s.CreateUser(ctx, m); err != nil {
		t.Fatal(err)
	}
	checkUser(t, "UserByName(mia) created with a credential", mustGet(t, s, "mia"), m)
}

// testLNPOnly: an account may have no verifier, only an LNP/1 credential;
// ReplaceVerifier and RehashVerifier never give it one (only
// ReplaceCredentials does), so that no course-protocol path can.
func testLNPOnly(t *testing.T, s larder.UserStore) {
	ctx := context.Background()
	u := &larder.User{Name: "nora", LNPCredential: "c1"}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatalf("CreateUser(nora) with an LNP/1 credential only: got %v, want nil", err)
	}
	checkUser(t, "UserByName(nora)", mustGet(t, s, "nora"), u)
	if err := s.ReplaceVerifier(ctx, "nora", "", "v"); err == nil {
		t.Errorf("ReplaceVerifier(nora) from no verifier: got nil, want an error")
	}
	if err := s.RehashVerifier(ctx, "nora", "", "v"); err == nil {
		t.Errorf("RehashVerifier(nora) from no verifier: got nil, want an error")
	}
	checkUser(t, "UserByName(nora) after the refused swaps", mustGet(t, s, "nora"), u)
}

// testReplaceCredentials: a password change that sets both credentials at
// once, guarded by the credential generation.
func testReplaceCredentials(t *testing.T, s larder.UserStore) {
	ctx := context.Background()
	u := mustCreate(t, s, "rita", "v1")
	pause()
	if err := s.ReplaceCredentials(ctx, "rita", u.ID, 0, "", "c1"); err != nil {
		t.Fatalf("ReplaceCredentials(rita, 0, \"\", c1): got %v, want nil", err)
	}
	got := mustGet(t, s, "rita")
	want := *u
	want.Verifier, want.LNPCredential, want.CredentialGen, want.UpdatedAt = "", "c1", 1, got.UpdatedAt
	checkUser(t, "UserByName(rita) after ReplaceCredentials", got, &want)
	checkLater(t, "UpdatedAt after ReplaceCredentials", got.UpdatedAt, u.UpdatedAt)

	err := s.ReplaceCredentials(ctx, "rita", u.ID, 0, "v-late", "c-late")
	checkError(t, "ReplaceCredentials(rita) of a stale generation", err, larder.ECONFLICT, `the password of user "rita" has changed meanwhile`)
	checkCode(t, "ReplaceCredentials(nobody)", s.ReplaceCredentials(ctx, "nobody", u.ID, 0, "v", "c"), larder.ENOTFOUND)
	if err := s.ReplaceCredentials(ctx, "rita", u.ID, 1, "", ""); err == nil {
		t.Errorf("ReplaceCredentials(rita) to no credential at all: got nil, want an error")
	}
	if err := s.ReplaceCredentials(ctx, "rita", u.ID, 1, "v2", "c2"); err != nil {
		t.Fatalf("ReplaceCredentials(rita, 1, v2, c2): got %v, want nil", err)
	}
	if got := mustGet(t, s, "rita"); got.Verifier != "v2" || got.LNPCredential != "c2" || got.CredentialGen != 2 {
		t.Errorf("after the second change: verifier %q, LNP/1 credential %q, CredentialGen %d; want v2, c2, 2", got.Verifier, got.LNPCredential, got.CredentialGen)
	}

	// Of concurrent changes from one generation, exactly one wins.
	rex := mustCreate(t, s, "rex", "v")
	winner := race(t, "ReplaceCredentials(rex)", func(i int) error {
		return s.ReplaceCredentials(ctx, "rex", rex.ID, 0, "", fmt.Sprint("c", i))
	})
	if got := mustGet(t, s, "rex"); got.LNPCredential != fmt.Sprint("c", winner) || got.CredentialGen != 1 {
		t.Errorf("after the race: LNP/1 credential %q, CredentialGen %d; want c%d, 1", got.LNPCredential, got.CredentialGen, winner)
	}
}

// testCredentialsOfAnotherAccount: an account deleted and its name
// registered again is another account, though it starts at the same
// credential generation with no LNP/1 credential either: neither
// SetLNPCredential nor ReplaceCredentials meant for the old one changes
// the new one (an enrollment or a password reset begun before the
// deletion would otherwise give the old owner's password to the new
// account).
func testCredentialsOfAnotherAccount(t *testing.T, s larder.UserStore) {
	ctx := context.Background()
	old := mustCreate(t, s, "olga", "v-old")
	if err := s.DeleteUser(ctx, "olga"); err != nil {
		t.Fatal(err)
	}
	u := mustCreate(t, s, "olga", "v-new")
	if u.ID == old.ID || u.CredentialGen != old.CredentialGen {
		t.Fatalf("the new olga: id %d, generation %d; the old one: id %d, generation %d", u.ID, u.CredentialGen, old.ID, old.CredentialGen)
	}
	err := s.SetLNPCredential(ctx, "olga", old.ID, old.CredentialGen, "", "c-old")
	checkCode(t, "SetLNPCredential(olga) of the deleted account", err, larder.ECONFLICT)
	err = s.ReplaceCredentials(ctx, "olga", old.ID, old.CredentialGen, "", "c-old")
	checkCode(t, "ReplaceCredentials(olga) of the deleted account", err, larder.ECONFLICT)
	checkUser(t, "UserByName(olga) after the refused changes", mustGet(t, s, "olga"), u)
}

// testCredentialGen: a password change (ReplaceVerifier) raises the
// credential generation, a rehash (RehashVerifier) keeps it, so that a
// session can tell the two apart; a rehash is a compare-and-swap too, and
// nothing else touches the generation.
func testCredentialGen(t *testing.T, s larder.UserStore) {
	ctx := context.Background()
	u := mustCreate(t, s, "vic", "v1")
	if u.CredentialGen != 0 {
		t.Errorf("CredentialGen of a new account: got %d, want 0", u.CredentialGen)
	}
	checkUser(t, "UserByName(vic) after CreateUser", mustGet(t, s, "vic"), u)
	pause()
	if err := s.RehashVerifier(ctx, "vic", "v1", "v1-rehashed"); err != nil {
		t.Fatalf("RehashVerifier(vic): got %v, want nil", err)
	}
	got := mustGet(t, s, "vic")
	want := *u
	want.Verifier, want.UpdatedAt = "v1-rehashed", got.UpdatedAt
	checkUser(t, "UserByName(vic) after RehashVerifier", got, &want)
	checkLater(t, "UpdatedAt after RehashVerifier", got.UpdatedAt, u.UpdatedAt)

	err := s.RehashVerifier(ctx, "vic", "v1", "stale-rehash")
	checkError(t, "RehashVerifier(vic) from a stale verifier", err, larder.ECONFLICT, `the verifier of user "vic" has changed`)
	checkCode(t, "RehashVerifier(nobody)", s.RehashVerifier(ctx, "nobody", "v", "w"), larder.ENOTFOUND)
	if err := s.RehashVerifier(ctx, "vic", "v1-rehashed", ""); err == nil {
		t.Errorf("RehashVerifier to an empty verifier: got nil, want an error")
	}

	for i, v := range []string{"v2", "v3"} {
		prev := mustGet(t, s, "vic").Verifier
		if err := s.ReplaceVerifier(ctx, "vic", prev, v); err != nil {
			t.Fatalf("ReplaceVerifier(vic, %s): got %v, want nil", v, err)
		}
		if got := mustGet(t, s, "vic"); got.CredentialGen != int64(i+1) || got.Verifier != v {
			t.Errorf("after password change %d: CredentialGen %d, verifier %q; want %d, %q", i+1, got.CredentialGen, got.Verifier, i+1, v)
		}
	}
	if err := s.SetDisabled(ctx, "vic", true); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, "vic").CredentialGen; got != 2 {
		t.Errorf("CredentialGen after SetDisabled: got %d, want 2", got)
	}
	users, err := s.ListUsers(ctx, "", 10)
	if err != nil || len(users) != 1 || users[0].CredentialGen != 2 {
		t.Errorf("ListUsers: got %v, %v; want vic with CredentialGen 2", users, err)
	}
}

func testSetDisabled(t *testing.T, s larder.UserStore) {
	ctx := context.Background()
	u := mustCreate(t, s, "heidi", "v")
	other := mustCreate(t, s, "ivan", "v")
	prev := u
	for _, disabled := range []bool{true, true, false, false, true} {
		pause()
		if err := s.SetDisabled(ctx, "heidi", disabled); err != nil {
			t.Fatalf("SetDisabled(heidi, %v): got %v, want nil", disabled, err)
		}
		got := mustGet(t, s, "heidi")
		want := *u
		want.Disabled, want.UpdatedAt = disabled, got.UpdatedAt
		checkUser(t, fmt.Sprintf("UserByName(heidi) after SetDisabled(%v)", disabled), got, &want)
		checkLater(t, fmt.Sprintf("UpdatedAt after SetDisabled(%v)", disabled), got.UpdatedAt, prev.UpdatedAt)
		prev = got
	}
	checkUser(t, "UserByName(ivan), untouched", mustGet(t, s, "ivan"), other)
	for _, name := range []string{"nobody", "Heidi", ""} {
		err := s.SetDisabled(ctx, name, true)
		checkError(t, fmt.Sprintf("SetDisabled(%q)", name), err, larder.ENOTFOUND, fmt.Sprintf("no such user %q", name))
	}
}

func testSetQuota(t *testing.T, s larder.UserStore) {
	ctx := context.Background()
	u := mustCreate(t, s, "quinn", "v")
	other := mustCreate(t, s, "Quinn", "v")
	if u.Quota != (larder.AccountQuota{}) {
		t.Fatalf("a new account's Quota: got %+v, want the server's default (the zero value)", u.Quota)
	}
	prev := u
	for _, q := range []larder.AccountQuota{
		{Bytes: 10 << 30, SetBytes: true},
		{Bytes: 10 << 30, SetBytes: true, Files: 0, SetFiles: true}, // no limit on files, over a default
		{Files: 7, SetFiles: true},
		{Bytes: 1<<62 + 1, SetBytes: true, Files: 1 << 40, SetFiles: true},
		{},
	} {
		pause()
		stored, err := s.SetQuota(ctx, "quinn", q, larder.QuotaBoth)
		if err != nil || stored != q {
			t.Fatalf("SetQuota(quinn, %+v): got %+v, %v; want it, nil", q, stored, err)
		}
		got := mustGet(t, s, "quinn")
		want := *u
		want.Quota, want.UpdatedAt = q, got.UpdatedAt
		checkUser(t, fmt.Sprintf("UserByName(quinn) after SetQuota(%+v)", q), got, &want)
		checkLater(t, fmt.Sprintf("UpdatedAt after SetQuota(%+v)", q), got.UpdatedAt, prev.UpdatedAt)
		prev = got
		page, err := s.ListUsers(ctx, "Quinn", 1)
		if err != nil || len(page) != 1 {
			t.Fatalf("ListUsers(after Quinn, 1): got %v, %v; want quinn", page, err)
		}
		checkUser(t, "ListUsers' quinn", page[0], got)
	}
	checkUser(t, "UserByName(Quinn), untouched", mustGet(t, s, "Quinn"), other)
	for _, bad := range []larder.AccountQuota{{Bytes: -1, SetBytes: true}, {Files: -5, SetFiles: true}, {Bytes: 5}} {
		_, err := s.SetQuota(ctx, "quinn", bad, larder.QuotaBoth)
		checkCode(t, fmt.Sprintf("SetQuota(quinn, %+v)", bad), err, larder.EINVALID)
	}
	checkUser(t, "UserByName(quinn) after refused quotas", mustGet(t, s, "quinn"), prev)

	// One bound at a time: the other stays as stored, whatever q holds
	// of it, so that two administrators each changing one bound of an
	// account both have their way.
	if _, err := s.SetQuota(ctx, "quinn", larder.AccountQuota{Bytes: 100, SetBytes: true, Files: 3, SetFiles: true}, larder.QuotaBoth); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		q     larder.AccountQuota
		which larder.QuotaBounds
		want  larder.AccountQuota
	}{
		{larder.AccountQuota{Bytes: 200, SetBytes: true}, larder.QuotaBytes, larder.AccountQuota{Bytes: 200, SetBytes: true, Files: 3, SetFiles: true}},
		{larder.AccountQuota{Files: 9, SetFiles: true}, larder.QuotaFiles, larder.AccountQuota{Bytes: 200, SetBytes: true, Files: 9, SetFiles: true}},
		{larder.AccountQuota{}, larder.QuotaBytes, larder.AccountQuota{Files: 9, SetFiles: true}},
		{larder.AccountQuota{Bytes: 5, SetBytes: true}, larder.QuotaFiles, larder.AccountQuota{}},
	} {
		got, err := s.SetQuota(ctx, "quinn", c.q, c.which)
		if err != nil || got != c.want {
			t.Errorf("SetQuota(quinn, %+v, bounds %b): got %+v, %v; want %+v", c.q, c.which, got, err, c.want)
		}
		if u := mustGet(t, s, "quinn"); u.Quota != c.want {
			t.Errorf("UserByName(quinn) after SetQuota(%+v, bounds %b): quota %+v, want %+v", c.q, c.which, u.Quota, c.want)
		}
	}
	for _, name := range []string{"nobody", "QUINN", ""} {
		_, err := s.SetQuota(ctx, name, larder.AccountQuota{Files: 1, SetFiles: true}, larder.QuotaFiles)
		checkError(t, fmt.Sprintf("SetQuota(%q)", name), err, larder.ENOTFOUND, fmt.Sprintf("no such user %q", name))
	}
}

func testRecordLogin(t *testing.T, s larder.UserStore) {
	ctx := context.Background()
	u := mustCreate(t, s, "lou", "v")
	other := mustCreate(t, s, "Lou", "v")
	if !u.LastLogin.IsZero() {
		t.Fatalf("a new account's LastLogin: got %v, want none", u.LastLogin)
	}
	before := time.Now()
	if err := s.RecordLogin(ctx, "lou", u.ID); err != nil {
		t.Fatalf("RecordLogin(lou): got %v, want nil", err)
	}
	first := mustGet(t, s, "lou")
	// The store's clock, PostgreSQL's, may differ a little from this one.
	if first.LastLogin.IsZero() || first.LastLogin.Before(before.Add(-time.Minute)) || first.LastLogin.After(time.Now().Add(time.Minute)) {
		t.Fatalf("LastLogin after RecordLogin at %v: got %v", before, first.LastLogin)
	}
	want := *u
	want.LastLogin = first.LastLogin
	checkUser(t, "UserByName(lou) after RecordLogin (UpdatedAt stays)", first, &want)

	// Within LastLoginResolution, a login writes nothing.
	pause()
	if err := s.RecordLogin(ctx, "lou", u.ID); err != nil {
		t.Fatalf("second RecordLogin(lou): got %v, want nil", err)
	}
	checkUser(t, "UserByName(lou) after a second RecordLogin within a minute", mustGet(t, s, "lou"), first)

	// Another account's id, a missing name: nothing recorded, no error.
	if err := s.RecordLogin(ctx, "Lou", u.ID); err != nil {
		t.Fatalf("RecordLogin(Lou, lou's id): got %v, want nil", err)
	}
	checkUser(t, "UserByName(Lou) after RecordLogin with lou's id", mustGet(t, s, "Lou"), other)
	for _, name := range []string{"nobody", ""} {
		if err := s.RecordLogin(ctx, name, u.ID); err != nil {
			t.Errorf("RecordLogin(%q): got %v, want nil", name, err)
		}
	}
	page, err := s.ListUsers(ctx, "", 10)
	if err != nil || len(page) != 2 {
		t.Fatalf("ListUsers: got %v, %v; want Lou and lou", page, err)
	}
	checkUser(t, "ListUsers' lou", page[1], first)
}

func testDeleteUser(t *testing.T, s larder.UserStore) {
	ctx := context.Background()
	u := mustCreate(t, s, "judy", "v1")
	other := mustCreate(t, s, "Judy", "v")
	if err := s.DeleteUser(ctx, "judy"); err != nil {
		t.Fatalf("DeleteUser(judy): got %v, want nil", err)
	}
	checkError(t, "UserByName(judy) after DeleteUser", getErr(s, "judy"), larder.ENOTFOUND, `no such user "judy"`)
	checkError(t, "second DeleteUser(judy)", s.DeleteUser(ctx, "judy"), larder.ENOTFOUND, `no such user "judy"`)
	checkCode(t, "ReplaceVerifier(judy) after DeleteUser", s.ReplaceVerifier(ctx, "judy", "v1", "v2"), larder.ENOTFOUND)
	checkCode(t, "SetDisabled(judy) after DeleteUser", s.SetDisabled(ctx, "judy", true), larder.ENOTFOUND)
	checkCode(t, "DeleteUser(nobody)", s.DeleteUser(ctx, "nobody"), larder.ENOTFOUND)
	checkUser(t, "UserByName(Judy), untouched", mustGet(t, s, "Judy"), other)

	// The name is free again, and the new account is a new one: an id is
	// never reused, so that records naming the old id cannot come to name
	// the new user.
	again := mustCreate(t, s, "judy", "v2")
	if again.ID == u.ID || again.ID == other.ID {
		t.Errorf("ID of the re-created judy: got %d, want one that is not %d (old judy) or %d (Judy)", again.ID, u.ID, other.ID)
	}
	checkUser(t, "UserByName(judy) after re-creating it", mustGet(t, s, "judy"), again)

	// Not even the newest id, which SQLite without AUTOINCREMENT would
	// hand out again once its row is gone.
	if err := s.DeleteUser(ctx, "judy"); err != nil {
		t.Fatal(err)
	}
	third := mustCreate(t, s, "judy", "v3")
	if third.ID <= again.ID {
		t.Errorf("ID of judy re-created after deleting the newest account: got %d, want more than %d", third.ID, again.ID)
	}
}

func testListUsersEmpty(t *testing.T, s larder.UserStore) {
	users, err := s.ListUsers(context.Background(), "", 10)
	if err != nil || len(users) != 0 {
		t.Errorf("ListUsers on an empty store: got %d users, %v; want 0, nil", len(users), err)
	}
}

// testListUsersPaging pages through 250 accounts 100 at a time, in byte
// order, with names that a collation other than bytes would sort
// differently.
func testListUsersPaging(t *testing.T, s larder.UserStore) {
	ctx := context.Background()
	var all []string
	for i := range 200 {
		all = append(all, fmt.Sprintf("user%03d", i))
	}
	all = append(all, byteExactNames...)
	all = append(all, "Zed", "zed", "_x", "a", "ab", "a b", "Ärger", "arg", "Ångström", "Ω", "ω", "ß", "ss",
		"🦊", "~", "9", "10", "user", "user1", "user10", "userZ", "User", "éclair", "eclair", "Eclair",
		"ñ", "n", "中", "한국어", "עברית", "العربية", "ⅰ", "ﬁ", "fi")
	for len(all) < 250 {
		all = append(all, fmt.Sprintf("zz%02d", len(all)))
	}
	byName := map[string]*larder.User{}
	for i, n := range all {
		// Some disabled, to see the field come back from a list.
		u := &larder.User{Name: n, Verifier: "v-" + n, Disabled: i%7 == 0}
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatalf("CreateUser(%q): got %v, want nil", n, err)
		}
		byName[n] = u
	}
	want := slices.Sorted(slices.Values(all))

	var got []string
	after := ""
	for page := 0; ; page++ {
		users, err := s.ListUsers(ctx, after, 100)
		if err != nil {
			t.Fatalf("ListUsers(%q, 100): got %v, want nil", after, err)
		}
		if wantLen := min(100, len(want)-len(got)); len(users) != wantLen {
			t.Fatalf("page %d, ListUsers(%q, 100): got %d users, want %d", page, after, len(users), wantLen)
		}
		for _, u := range users {
			w, ok := byName[u.Name]
			if !ok {
				t.Fatalf("page %d: got user %q, which was never created", page, u.Name)
			}
			checkUser(t, fmt.Sprintf("page %d, user %q", page, u.Name), u, w)
		}
		got = append(got, names(users)...)
		if len(users) < 100 {
			break
		}
		after = users[len(users)-1].Name
	}
	checkNames(t, "names over all pages", got, want)

	// after need not be a name that exists; the limit is honoured; paging
	// past the end gives nothing.
	for _, tc := range []struct {
		after string
		limit int
	}{
		{"user0995", 3}, {"user", 2}, {"Ä", 5}, {"日", 4}, {"\U0010FFFF", 10}, {want[len(want)-1], 10}, {"", 1},
	} {
		users, err := s.ListUsers(ctx, tc.after, tc.limit)
		if err != nil {
			t.Fatalf("ListUsers(%q, %d): got %v, want nil", tc.after, tc.limit, err)
		}
		i, _ := slices.BinarySearch(want, tc.after)
		if i < len(want) && want[i] == tc.after {
			i++
		}
		checkNames(t, fmt.Sprintf("ListUsers(%q, %d)", tc.after, tc.limit), names(users), want[i:min(i+tc.limit, len(want))])
	}
}

func testListUsersInvalid(t *testing.T, s larder.UserStore) {
	mustCreate(t, s, "kim", "v")
	ctx := context.Background()
	for _, limit := range []int{0, -1} {
		_, err := s.ListUsers(ctx, "", limit)
		checkError(t, fmt.Sprintf("ListUsers(\"\", %d)", limit), err, larder.EINVALID, fmt.Sprintf("list users: limit %d is not positive", limit))
	}
	for _, after := range []string{"\xff", "a\x00"} {
		_, err := s.ListUsers(ctx, after, 10)
		checkError(t, fmt.Sprintf("ListUsers(%q, 10)", after), err, larder.EINVALID, fmt.Sprintf("list users: %q cannot be a username", after))
	}
}

func testContextCanceled(t *testing.T, s larder.UserStore) {
	mustCreate(t, s, "leo", "v")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for op, err := range map[string]error{
		"CreateUser":      s.CreateUser(ctx, &larder.User{Name: "mia", Verifier: "v"}),
		"UserByName":      func() error { _, err := s.UserByName(ctx, "leo"); return err }(),
		"ReplaceVerifier": s.ReplaceVerifier(ctx, "leo", "v", "w"),
		"RehashVerifier":  s.RehashVerifier(ctx, "leo", "v", "w"),
		"SetDisabled":     s.SetDisabled(ctx, "leo", true),
		"DeleteUser":      s.DeleteUser(ctx, "leo"),
		"ListUsers":       func() error { _, err := s.ListUsers(ctx, "", 10); return err }(),
	} {
		if err == nil {
			t.Errorf("%s with a canceled context: got nil, want an error", op)
		}
	}
}

// Helpers.

// race calls op(i) for i in [0, 20) in as many goroutines at once, checks
// that exactly one call succeeds and every other fails with ECONFLICT, and
// returns the i of the one.
func race(t *testing.T, what string, op func(i int) error) (winner int) {
	t.Helper()
	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = op(i)
		})
	}
	close(start)
	wg.Wait()
	winner = -1
	for i, err := range errs {
		switch larder.ErrorCode(err) {
		case "":
			if winner >= 0 {
				t.Errorf("%s in goroutines %d and %d: both got nil, want one code %q", what, winner, i, larder.ECONFLICT)
			}
			winner = i
		case larder.ECONFLICT:
		default:
			t.Errorf("%s in goroutine %d: got %v, want nil or code %q", what, i, err, larder.ECONFLICT)
		}
	}
	if winner < 0 {
		t.Fatalf("successful %s calls: got 0, want 1", what)
	}
	return winner
}

func mustCreate(t *testing.T, s larder.UserStore, name, verifier string) *larder.User {
	t.Helper()
	u := &larder.User{Name: name, Verifier: verifier}
	if err := s.CreateUser(context.Background(), u); err != nil {
		t.Fatalf("CreateUser(%q): got %v, want nil", name, err)
	}
	return u
}

func mustGet(t *testing.T, s larder.UserStore, name string) *larder.User {
	t.Helper()
	u, err := s.UserByName(context.Background(), name)
	if err != nil {
		t.Fatalf("UserByName(%q): got %v, want nil", name, err)
	}
	return u
}

func getErr(s larder.UserStore, name string) error {
	_, err := s.UserByName(context.Background(), name)
	return err
}

func names(users []*larder.User) []string {
	var ns []string
	for _, u := range users {
		ns = append(ns, u.Name)
	}
	return ns
}

// checkNames compares lists of names, showing where they first differ.
func checkNames(t *testing.T, what string, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	from := max(0, i-2)
	t.Errorf("%s: %d names, first difference at %d:\n\tgot  …%q…\n\twant …%q… (%d names)",
		what, len(got), i, got[from:min(i+4, len(got))], want[from:min(i+4, len(want))], len(want))
}

// checkUser compares accounts field by field. Times compare truncated to
// the microsecond, which is what PostgreSQL keeps.
func checkUser(t *testing.T, what string, got, want *larder.User) {
	t.Helper()
	var diffs []string
	if got.ID != want.ID {
		diffs = append(diffs, fmt.Sprintf("ID: got %d, want %d", got.ID, want.ID))
	}
	if got.Name != want.Name {
		diffs = append(diffs, fmt.Sprintf("Name: got %q, want %q", got.Name, want.Name))
	}
	if got.Verifier != want.Verifier {
		diffs = append(diffs, fmt.Sprintf("Verifier: got %q, want %q", got.Verifier, want.Verifier))
	}
	if got.Disabled != want.Disabled {
		diffs = append(diffs, fmt.Sprintf("Disabled: got %v, want %v", got.Disabled, want.Disabled))
	}
	if got.CredentialGen != want.CredentialGen {
		diffs = append(diffs, fmt.Sprintf("CredentialGen: got %d, want %d", got.CredentialGen, want.CredentialGen))
	}
	if got.LNPCredential != want.LNPCredential {
		diffs = append(diffs, fmt.Sprintf("LNPCredential: got %q, want %q", got.LNPCredential, want.LNPCredential))
	}
	if got.Quota != want.Quota {
		diffs = append(diffs, fmt.Sprintf("Quota: got %+v, want %+v", got.Quota, want.Quota))
	}
	if !micro(got.LastLogin).Equal(micro(want.LastLogin)) {
		diffs = append(diffs, fmt.Sprintf("LastLogin: got %v, want %v", got.LastLogin, want.LastLogin))
	}
	if !micro(got.CreatedAt).Equal(micro(want.CreatedAt)) {
		diffs = append(diffs, fmt.Sprintf("CreatedAt: got %v, want %v", got.CreatedAt, want.CreatedAt))
	}
	if !micro(got.UpdatedAt).Equal(micro(want.UpdatedAt)) {
		diffs = append(diffs, fmt.Sprintf("UpdatedAt: got %v, want %v", got.UpdatedAt, want.UpdatedAt))
	}
	if len(diffs) > 0 {
		t.Errorf("%s:\n\t%s", what, strings.Join(diffs, "\n\t"))
	}
}

func micro(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

// checkNow checks that a time a store set lies between before and after,
// read from the clock around the call.
func checkNow(t *testing.T, what string, got, before, after time.Time) {
	t.Helper()
	if g := micro(got); g.Before(micro(before)) || g.After(after) {
		t.Errorf("%s: got %v, want between %v and %v", what, got, before, after)
	}
}

// checkLater checks that a time moved forward.
func checkLater(t *testing.T, what string, got, prev time.Time) {
	t.Helper()
	if !micro(got).After(micro(prev)) {
		t.Errorf("%s: got %v, want after %v", what, got, prev)
	}
}

// pause lets the clock move on by more than the microsecond that a store
// may round times to, so that an update's time differs from the last.
func pause() { time.Sleep(2 * time.Millisecond) }

func checkCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := larder.ErrorCode(err); got != code {
		t.Errorf("%s: got error %v (code %q), want code %q", what, err, got, code)
	}
}

func checkError(t *testing.T, what string, err error, code, msg string) {
	t.Helper()
	checkCode(t, what, err, code)
	if got := larder.ErrorMessage(err); err != nil && got != msg {
		t.Errorf("%s: got message %q, want %q", what, got, msg)
	}
}
