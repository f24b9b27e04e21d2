package auth_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/auth"
	"github.com/larderfs/larder/internal/sqlite"
)

// newStatsEnv returns an Authenticator over a real database, with a cache
// and a throttle of cfg, and its store.
func newStatsEnv(t *testing.T, p auth.Params, cfg auth.ThrottleConfig) (*auth.Authenticator, *sqlite.UserStore) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "larder.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store := sqlite.NewUserStore(db)
	return auth.New(store, auth.NewHasher(p, nil, 2), auth.NewCache(0, 0), auth.NewThrottle(cfg)), store
}

// TestStats drives logins through every outcome that Stats counts.
func TestStats(t *testing.T) {
	ctx := context.Background()
	a, _ := newStatsEnv(t, cheap, auth.ThrottleConfig{
		PairFailures: 2, PairRefill: time.Hour, // the third failure is refused...
		AddrFailures: 3, AddrRefill: time.Minute, // ...by this pair's limit, which waits longer
		AccountFailures: 1, AccountDelay: time.Millisecond,
	})
	right, wrong := signature("right"), signature("wrong")
	login := func(name string, sig []byte, code string) {
		t.Helper()
		_, err := a.Login(ctx, name, sig, testAddr)
		wantCode(t, "Login "+name, err, code)
	}
	for _, name := range []string{"alice", "carol", "dave"} {
		if _, err := a.Register(ctx, name, right); err != nil {
			t.Fatal(err)
		}
	}
	a.Forget("dave")
	login("dave", right, "")                    // miss, check ok
	login("alice", right, "")                   // hit
	login("bob", right, larder.ENOTFOUND)       // dummy check; the address's 1st failure
	login("alice", wrong, larder.EUNAUTHORIZED) // miss, mismatch; empties alice's account bucket
	login("alice", wrong, larder.EUNAUTHORIZED) // miss, delayed, mismatch; empties the pair and the address
	login("alice", wrong, larder.ETHROTTLED)    // miss, refused by the pair
	login("alice", right, larder.ETHROTTLED)    // hit, refused by the pair all the same
	login("carol", right, larder.ETHROTTLED)    // hit, refused by the address

	want := auth.Stats{
		ChecksOK: 1, ChecksMismatch: 2, ChecksDummy: 1,
		RefusedAccountAddress: 2, RefusedAddress: 1, Delayed: 1,
		CacheHits: 3, CacheMisses: 4, CacheEntries: 3,
		HashSlots: 2,
	}
	if got := a.Stats(); got != want {
		t.Errorf("Stats() =\n%+v\nwant\n%+v", got, want)
	}
}

// TestStatsBusyAndFailed: a check that outlives its request's deadline is
// busy, one of an unreadable stored hash an error.
func TestStatsBusyAndFailed(t *testing.T) {
	ctx := context.Background()
	a, store := newStatsEnv(t, cheap, auth.ThrottleConfig{AccountFailures: 1, AccountDelay: time.Hour})
	if _, err := a.Register(ctx, "alice", signature("right")); err != nil {
		t.Fatal(err)
	}
	carol, err := a.Register(ctx, "carol", signature("right"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Login(ctx, "alice", signature("wrong"), testAddr)
	wantCode(t, "wrong signature", err, larder.EUNAUTHORIZED)
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = a.Login(short, "alice", signature("wrong"), testAddr) // delayed past its deadline
	wantCode(t, "delayed login", err, larder.EUNAVAILABLE)

	if err := store.ReplaceVerifier(ctx, "carol", carol.Verifier, "$argon2id$garbage"); err != nil {
		t.Fatal(err)
	}
	_, err = a.Login(ctx, "carol", signature("right"), testAddr)
	wantCode(t, "unreadable stored hash", err, larder.EINTERNAL)

	got := a.Stats()
	if got.ChecksMismatch != 1 || got.ChecksBusy != 1 || got.ChecksFailed != 1 || got.Delayed != 1 || got.ChecksOK != 0 {
		t.Errorf("mismatch, busy, failed, delayed, ok = %d, %d, %d, %d, %d; want 1, 1, 1, 1, 0",
			got.ChecksMismatch, got.ChecksBusy, got.ChecksFailed, got.Delayed, got.ChecksOK)
	}
}

// TestStatsRehash: a login whose stored hash differs from the policy
// replaces it, and is counted.
func TestStatsRehash(t *testing.T) {
	ctx := context.Background()
	old, store := newStatsEnv(t, cheap, auth.ThrottleConfig{})
	if _, err := old.Register(ctx, "alice", signature("right")); err != nil {
		t.Fatal(err)
	}
	stronger := cheap
	stronger.Time++
	a := auth.New(store, auth.NewHasher(stronger, nil, 1), nil, nil)
	for range 2 { // the second login finds the hash upgraded
		if _, err := a.Login(ctx, "alice", signature("right"), testAddr); err != nil {
			t.Fatal(err)
		}
	}
	if got := a.Stats(); got.Rehashes != 1 || got.RehashFailures != 0 || got.ChecksOK != 2 || got.CacheHits+got.CacheMisses != 0 || got.HashSlots != 1 {
		t.Errorf("Stats() = %+v, want 1 rehash, 2 checks ok, no cache, 1 hash slot", got)
	}
}
