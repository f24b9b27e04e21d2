package auth_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/auth"
	"github.com/larderfs/larder/internal/sqlite"
)

// twoServers returns a database file, a store on it, and a function that
// returns an Authenticator over it with policy p: servers started on one
// data folder with different flags.
func twoServers(t testing.TB) (larder.UserStore, func(p auth.Params, ps *auth.Peppers) *auth.Authenticator) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "larder.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store := sqlite.NewUserStore(db)
	return store, func(p auth.Params, ps *auth.Peppers) *auth.Authenticator {
		return auth.New(store, auth.NewHasher(p, ps, 1), auth.NewCache(time.Hour, 10), nil)
	}
}

// TestLoginNeverWeakensHash: a server whose policy is weaker than a stored
// hash in some parameter never lowers that parameter at a login (logins
// must never weaken a hash); it raises only the parameters where
// the hash is weaker, and leaves alone a hash at least as strong in all.
func TestLoginNeverWeakensHash(t *testing.T) {
	ctx := context.Background()
	store, server := twoServers(t)
	sig := signature("pw")
	describe := auth.NewHasher(cheap, nil, 1)
	for k, tc := range []struct {
		name           string
		stored, policy auth.Params
		want           string
	}{
		{"stronger in all", auth.Params{Memory: 128, Time: 2, Threads: 1}, cheap, "argon2id m=128,t=2,p=1"},
		{"more memory, fewer passes", auth.Params{Memory: 128, Time: 1, Threads: 1}, auth.Params{Memory: 64, Time: 2, Threads: 1}, "argon2id m=128,t=2,p=1"},
		{"more passes, less memory", auth.Params{Memory: 64, Time: 3, Threads: 1}, auth.Params{Memory: 96, Time: 1, Threads: 1}, "argon2id m=96,t=3,p=1"},
		{"more lanes", auth.Params{Memory: 64, Time: 1, Threads: 2}, auth.Params{Memory: 64, Time: 2, Threads: 1}, "argon2id m=64,t=2,p=2"},
	} {
		user := fmt.Sprintf("olga%d", k)
		if _, err := server(tc.stored, nil).Register(ctx, user, sig); err != nil {
			t.Fatal(err)
		}
		weak := server(tc.policy, nil)
		for i := range 2 { // a full check, then one from the cache
			if _, err := weak.Login(ctx, user, sig, testAddr); err != nil {
				t.Fatalf("%s: login %d: %v", tc.name, i, err)
			}
			u, err := store.UserByName(ctx, user)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := describe.Describe(u.Verifier); got != tc.want {
				t.Errorf("%s: after login %d under %v the hash is %s, want %s", tc.name, i, tc.policy, got, tc.want)
			}
		}
	}
}

// TestRehashKeepsSessions: a rehash at login (onto a rotated pepper, or a
// stronger policy) keeps the password, so the account's other sessions go
// on (an upload in flight used to be ended with "the password changed");
// a real password change still ends them.
func TestRehashKeepsSessions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	_, server := twoServers(t)
	pepper := filepath.Join(dir, "pepper")
	ps, err := auth.CreatePepperFile(pepper)
	if err != nil {
		t.Fatal(err)
	}
	sig := signature("pw")
	first := server(cheap, ps)
	if _, err := first.Register(ctx, "vic", sig); err != nil {
		t.Fatal(err)
	}
	session, err := first.Login(ctx, "vic", sig, testAddr)
	if err != nil {
		t.Fatal(err)
	}

	// Another server on the data folder, after a rotation: its next full
	// login of vic rehashes onto the new pepper.
	if _, err := auth.RotatePepper(pepper); err != nil {
		t.Fatal(err)
	}
	rotated, err := auth.LoadPeppers(pepper)
	if err != nil {
		t.Fatal(err)
	}
	second := server(cheap, rotated)
	u, err := second.Login(ctx, "vic", sig, testAddr)
	if err != nil {
		t.Fatal(err)
	}
	if u.Verifier == session.Verifier {
		t.Fatal("the login after the rotation did not rehash")
	}
	if err := first.Still(ctx, session); err != nil {
		t.Errorf("Still after a rehash onto a new pepper: %v, want nil", err)
	}
	// And a stronger policy.
	stronger := server(auth.Params{Memory: 128, Time: 2, Threads: 1}, rotated)
	if _, err := stronger.Login(ctx, "vic", sig, testAddr); err != nil {
		t.Fatal(err)
	}
	if err := first.Still(ctx, session); err != nil {
		t.Errorf("Still after a rehash to a stronger policy: %v, want nil", err)
	}

	// A real change ends every session but the changer's.
	changed, err := second.ChangeSignature(ctx, "vic", sig, signature("new"), testAddr)
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, "Still of the other session after a password change", first.Still(ctx, session), larder.EUNAUTHORIZED)
	if err := first.Still(ctx, changed); err != nil {
		t.Errorf("Still of the changing session: %v, want nil", err)
	}
}
