package auth_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/auth"
	"github.com/larderfs/larder/internal/sqlite"
)

// cheap are parameters that make hashing fast in tests.
var cheap = auth.Params{Memory: 64, Time: 1, Threads: 1}

// signature returns what the course's reference client sends for password.
func signature(password string) []byte {
	sum := sha256.Sum256([]byte(password + strings.Repeat("0123456789", 7)[:64]))
	return sum[:]
}

type env struct {
	path  string
	db    *sqlite.DB
	cache *auth.Cache
	a     *auth.Authenticator
}

// newEnv returns an Authenticator over a real database file.
func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{path: filepath.Join(t.TempDir(), "larder.db")}
	e.open(t)
	t.Cleanup(func() { e.db.Close() })
	return e
}

func (e *env) open(t testing.TB) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), e.path)
	if err != nil {
		t.Fatal(err)
	}
	e.db = db
	e.cache = auth.NewCache(0, 0)
	e.a = auth.New(sqlite.NewUserStore(db), auth.NewHasher(cheap, nil, 2), e.cache, nil)
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := larder.ErrorCode(err); got != code {
		t.Errorf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
}

func TestRegisterAndLogin(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sig := signature("hunter2")

	u, err := e.a.Register(ctx, "alice", sig)
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	if u.ID == 0 || u.Name != "alice" || !strings.HasPrefix(u.Verifier, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("Register = %+v, want an argon2id account named alice", u)
	}
	if strings.Contains(u.Verifier, string(sig)) {
		t.Error("the verifier contains the signature")
	}

	got, err := e.a.Login(ctx, "alice", sig, testAddr)
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if *got != *u {
		t.Errorf("Login = %+v, want %+v", *got, *u)
	}

	_, err = e.a.Login(ctx, "alice", signature("hunter3"), testAddr)
	wantCode(t, "Login with a wrong signature", err, larder.EUNAUTHORIZED)
	if msg, want := larder.ErrorMessage(err), `signature does not match for user "alice"`; msg != want {
		t.Errorf("message %q, want %q", msg, want)
	}

	_, err = e.a.Login(ctx, "bob", sig, testAddr)
	wantCode(t, "Login of an unknown user", err, larder.ENOTFOUND)
	if msg := larder.ErrorMessage(err); !strings.Contains(msg, `"bob"`) {
		t.Errorf("message %q does not name the user", msg)
	}
}

func TestRegisterTaken(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.a.Register(ctx, "alice", signature("one")); err != nil {
		t.Fatal(err)
	}
	_, err := e.a.Register(ctx, "alice", signature("two"))
	wantCode(t, "second Register", err, larder.ECONFLICT)
	if msg, want := larder.ErrorMessage(err), `user "alice" already exists`; msg != want {
		t.Errorf("message %q, want %q", msg, want)
	}
	// The first signature still logs in; the second does not.
	if _, err := e.a.Login(ctx, "alice", signature("one"), testAddr); err != nil {
		t.Errorf("Login with the first signature: %v", err)
	}
	_, err = e.a.Login(ctx, "alice", signature("two"), testAddr)
	wantCode(t, "Login with the rejected signature", err, larder.EUNAUTHORIZED)
	// Names are byte-exact: "Alice" is free.
	if _, err := e.a.Register(ctx, "Alice", signature("two")); err != nil {
		t.Errorf("Register(Alice): %v", err)
	}
}

func TestInvalidInput(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sig := signature("x")
	for _, tc := range []struct {
		name string
		sig  []byte
	}{
		{"", sig},
		{"a-very-long-username", sig},
		{"nul\x00", sig},
		{"alice", nil},
		{"alice", sig[:31]},
		{"alice", append(sig, 0)},
	} {
		_, err := e.a.Register(ctx, tc.name, tc.sig)
		wantCode(t, fmt.Sprintf("Register(%q, %d bytes)", tc.name, len(tc.sig)), err, larder.EINVALID)
		_, err = e.a.Login(ctx, tc.name, tc.sig, testAddr)
		wantCode(t, fmt.Sprintf("Login(%q, %d bytes)", tc.name, len(tc.sig)), err, larder.EINVALID)
	}
}

// TestConcurrentRegister: of many simultaneous registrations of one name,
// which all pass the cheap lookup, exactly one wins.
func TestConcurrentRegister(t *testing.T) {
	e := newEnv(t)
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = e.a.Register(context.Background(), "carol", signature(fmt.Sprint(i)))
		})
	}
	wg.Wait()
	wins, winner := 0, -1
	for i, err := range errs {
		switch larder.ErrorCode(err) {
		case "":
			wins, winner = wins+1, i
		case larder.ECONFLICT:
		default:
			t.Errorf("Register %d: %v", i, err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d registrations succeeded, want 1", wins)
	}
	// Only the winner's signature logs in, even with the cache cleared.
	e.a.Forget("carol")
	for i := range n {
		_, err := e.a.Login(context.Background(), "carol", signature(fmt.Sprint(i)), testAddr)
		if (err == nil) != (i == winner) {
			t.Errorf("Login with signature %d: %v (winner %d)", i, err, winner)
		}
	}
}

func TestLoginCache(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sig := signature("hunter2")
	if _, err := e.a.Register(ctx, "alice", sig); err != nil {
		t.Fatal(err)
	}
	e.a.Forget("alice")
	if n := e.cache.Len(); n != 0 {
		t.Fatalf("cache holds %d entries after Forget, want 0", n)
	}

	// Failures are never remembered.
	for range 3 {
		_, err := e.a.Login(ctx, "alice", signature("wrong"), testAddr)
		wantCode(t, "Login with a wrong signature", err, larder.EUNAUTHORIZED)
	}
	if n := e.cache.Len(); n != 0 {
		t.Errorf("cache holds %d entries after failed logins, want 0", n)
	}

	if _, err := e.a.Login(ctx, "alice", sig, testAddr); err != nil {
		t.Fatal(err)
	}
	u, err := sqlite.NewUserStore(e.db).UserByName(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if n := e.cache.Len(); n != 1 || !e.cache.Verified("alice", sig, u.Verifier) {
		t.Errorf("after a successful login the cache holds %d entries, want alice's", n)
	}
	if _, err := e.a.Login(ctx, "alice", sig, testAddr); err != nil {
		t.Errorf("cached Login: %v", err)
	}
}

// TestVerifierChangedElsewhere changes the stored hash behind the
// authenticator's back, as an admin command or another server sharing the
// database would: the cached success must not survive it.
func TestVerifierChangedElsewhere(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	oldSig, newSig := signature("old"), signature("new")
	if _, err := e.a.Register(ctx, "alice", oldSig); err != nil {
		t.Fatal(err)
	}
	if _, err := e.a.Login(ctx, "alice", oldSig, testAddr); err != nil {
		t.Fatal(err)
	}

	newVerifier, err := auth.NewHasher(cheap, nil, 1).Hash(ctx, newSig)
	if err != nil {
		t.Fatal(err)
	}
	// A store of its own on the same file: another process's.
	otherDB, err := sqlite.Open(ctx, e.path)
	if err != nil {
		t.Fatal(err)
	}
	defer otherDB.Close()
	other := sqlite.NewUserStore(otherDB)
	u, err := other.UserByName(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := other.ReplaceVerifier(ctx, "alice", u.Verifier, newVerifier); err != nil {
		t.Fatal(err)
	}

	_, err = e.a.Login(ctx, "alice", oldSig, testAddr)
	wantCode(t, "Login with the old signature after the change", err, larder.EUNAUTHORIZED)
	if _, err := e.a.Login(ctx, "alice", newSig, testAddr); err != nil {
		t.Errorf("Login with the new signature: %v", err)
	}
}

// TestRestart: accounts survive closing and reopening the database, and a
// new process (new cache, new HMAC key) verifies them from scratch.
func TestRestart(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i := range 5 {
		if _, err := e.a.Register(ctx, fmt.Sprint("user", i), signature(fmt.Sprint("pw", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.db.Close(); err != nil {
		t.Fatal(err)
	}
	e.open(t)
	for i := range 5 {
		name := fmt.Sprint("user", i)
		if _, err := e.a.Login(ctx, name, signature(fmt.Sprint("pw", i)), testAddr); err != nil {
			t.Errorf("Login(%s) after restart: %v", name, err)
		}
		_, err := e.a.Register(ctx, name, signature("x"))
		wantCode(t, "Register of an existing name after restart", err, larder.ECONFLICT)
	}
}

func TestLoginCanceled(t *testing.T) {
	e := newEnv(t)
	if _, err := e.a.Register(context.Background(), "alice", signature("pw")); err != nil {
		t.Fatal(err)
	}
	e.a.Forget("alice")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.a.Login(ctx, "alice", signature("pw"), testAddr); !errors.Is(err, context.Canceled) {
		t.Errorf("Login with a canceled context: %v, want context.Canceled in the chain", err)
	}
}

// BenchmarkLoginCached is the per-request path of a client that has logged
// in before: one indexed lookup in SQLite and one cache hit.
func BenchmarkLoginCached(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	const users = 1000
	names, sigs := make([]string, users), make([][]byte, users)
	for i := range users {
		names[i], sigs[i] = fmt.Sprint("user", i), signature(fmt.Sprint("pw", i))
		if _, err := e.a.Register(ctx, names[i], sigs[i]); err != nil {
			b.Fatal(err)
		}
	}
	login := func(i int) {
		if _, err := e.a.Login(ctx, names[i%users], sigs[i%users], testAddr); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			login(i)
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				login(i)
				i++
			}
		})
	})
}

// testAddr is the client address of the tests' logins.
var testAddr = netip.MustParseAddr("192.0.2.10")

// TestThrottleHoldsOnCacheHit: while the owner's check is cached, a
// refused address is still refused with the right signature, so that its
// one right guess does not stand out among refusals.
func TestThrottleHoldsOnCacheHit(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "larder.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a := auth.New(sqlite.NewUserStore(db), auth.NewHasher(cheap, nil, 2), auth.NewCache(0, 0), auth.NewThrottle(auth.ThrottleConfig{}))
	sig := signature("right")
	if _, err := a.Register(ctx, "alice", sig); err != nil {
		t.Fatal(err)
	}
	owner, guesser := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.9")
	if _, err := a.Login(ctx, "alice", sig, owner); err != nil {
		t.Fatalf("owner's login: %v", err)
	}
	for i := range 5 {
		_, err := a.Login(ctx, "alice", signature(fmt.Sprint("guess", i)), guesser)
		wantCode(t, fmt.Sprint("guess ", i), err, larder.EUNAUTHORIZED)
	}
	_, err = a.Login(ctx, "alice", sig, guesser)
	wantCode(t, "the right guess from the refused address", err, larder.ETHROTTLED)
	if _, err := a.Login(ctx, "alice", sig, owner); err != nil {
		t.Fatalf("owner's login after the guesser was refused: %v", err)
	}
}

// TestCachedLoginFollowsRotation: after a pepper rotation, a login answered
// from the verification cache moves the account to the new pepper too
// (once the file has been looked at again), rather than leave it on the old
// one until the cache forgets it, which would hold up the old pepper's
// retirement with no way for the user to help.
func TestCachedLoginFollowsRotation(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "larder.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pepper := filepath.Join(dir, "pepper")
	ps, err := auth.CreatePepperFile(pepper)
	if err != nil {
		t.Fatal(err)
	}
	h := auth.NewHasher(cheap, ps, 1)
	a := auth.New(sqlite.NewUserStore(db), h, auth.NewCache(time.Hour, 10), nil)
	sig := signature("pw")
	if _, err := a.Register(ctx, "alice", sig); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.RotatePepper(pepper); err != nil {
		t.Fatal(err)
	}
	h.RefreshPeppers() // as a server does every second
	u, err := a.Login(ctx, "alice", sig, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	if got := h.PepperIDs(u.Verifier); !slices.Equal(got, []string{"p2"}) {
		t.Fatalf("a cached login after the rotation left alice's hash on %v", got)
	}
	if got := a.Stats().Rehashes; got != 1 {
		t.Errorf("rehashes: got %d, want 1", got)
	}
}

// TestDisabledAndDeletedCodes: a disabled or deleted account is told by a
// domain code (larder.EDISABLED, larder.ENOTFOUND), so that a protocol
// maps it without knowing this package. Only the right signature learns
// that an account is disabled.
func TestDisabledAndDeletedCodes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	users := sqlite.NewUserStore(e.db)
	sig := signature("pw")
	for _, name := range []string{"alice", "bob"} {
		if _, err := e.a.Register(ctx, name, sig); err != nil {
			t.Fatal(err)
		}
	}
	alice, err := e.a.Login(ctx, "alice", sig, testAddr)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := e.a.Login(ctx, "bob", sig, testAddr)
	if err != nil {
		t.Fatal(err)
	}

	if err := users.SetDisabled(ctx, "alice", true); err != nil {
		t.Fatal(err)
	}
	_, err = e.a.Login(ctx, "alice", sig, testAddr)
	wantCode(t, "Login of a disabled account", err, larder.EDISABLED)
	if msg, want := larder.ErrorMessage(err), `account "alice" is disabled`; msg != want {
		t.Errorf("message %q, want %q", msg, want)
	}
	_, err = e.a.Login(ctx, "alice", signature("guess"), testAddr)
	wantCode(t, "Login of a disabled account with a wrong signature", err, larder.EUNAUTHORIZED)
	wantCode(t, "Still of a session of a disabled account", e.a.Still(ctx, alice), larder.EDISABLED)

	if err := users.DeleteUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "Still of a session of a deleted account", e.a.Still(ctx, bob), larder.ENOTFOUND)
	if _, err := e.a.Register(ctx, "bob", sig); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "Still of a session of a deleted account whose name was taken again", e.a.Still(ctx, bob), larder.ENOTFOUND)
}
