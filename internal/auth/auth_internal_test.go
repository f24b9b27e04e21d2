package auth

import (
	"context"
	"net/netip"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/sqlite"
)

// countingAuthenticator returns an Authenticator over a real database whose
// hasher counts the argon2 computations it runs.
func countingAuthenticator(t *testing.T) (*Authenticator, *atomic.Int32) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "larder.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	h := NewHasher(cheap, nil, 1)
	var n atomic.Int32
	h.key = func(secret, salt []byte, p Params, keyLen uint32) []byte {
		n.Add(1)
		return argon2Key(secret, salt, p, keyLen)
	}
	return New(sqlite.NewUserStore(db), h, NewCache(0, 0), nil), &n
}

// TestSlowHashOnlyWhenNeeded counts the argon2 computations: none for a
// taken name or a cached login, one per registration and uncached login.
func TestSlowHashOnlyWhenNeeded(t *testing.T) {
	a, hashes := countingAuthenticator(t)
	ctx := context.Background()
	sig := courseSignature("hunter2")
	step := func(what string, want int32) {
		t.Helper()
		if got := hashes.Swap(0); got != want {
			t.Errorf("%s: %d argon2 computations, want %d", what, got, want)
		}
	}

	if _, err := a.Register(ctx, "alice", sig); err != nil {
		t.Fatal(err)
	}
	step("Register", 1)
	if _, err := a.Register(ctx, "alice", sig); larder.ErrorCode(err) != larder.ECONFLICT {
		t.Fatalf("second Register: %v, want ECONFLICT", err)
	}
	step("Register of a taken name", 0)
	for range 3 {
		if _, err := a.Login(ctx, "alice", sig, testAddr); err != nil {
			t.Fatal(err)
		}
	}
	step("three Logins right after Register", 0)
	a.Forget("alice")
	for range 3 {
		if _, err := a.Login(ctx, "alice", sig, testAddr); err != nil {
			t.Fatal(err)
		}
	}
	step("three Logins after Forget", 1)
	for range 3 {
		if _, err := a.Login(ctx, "alice", courseSignature("wrong"), testAddr); larder.ErrorCode(err) != larder.EUNAUTHORIZED {
			t.Fatalf("Login with a wrong signature: %v", err)
		}
	}
	step("three failed Logins", 3)
	if _, err := a.Login(ctx, "nobody", sig, testAddr); larder.ErrorCode(err) != larder.ENOTFOUND {
		t.Fatalf("Login of an unknown user: %v", err)
	}
	// The same work as a wrong signature, so that timing does not tell
	// which names exist.
	step("Login of an unknown user", 1)
}

// testAddr is the client address of the tests' logins.
var testAddr = netip.MustParseAddr("192.0.2.10")
