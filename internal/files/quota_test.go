//go:build linux

package files

import (
	"context"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/postgres"
	"github.com/larderfs/larder/internal/postgres/pgtest"
	"github.com/larderfs/larder/internal/sqlite"
)

// accountStores opens a new connection to one database: its records and
// its accounts, as a server has them.
type accountStores func() (larder.FileStore, larder.UserStore, func())

// TestAccountQuota: an account's own quota, set by an administrator
// through another connection to the database (another server, or the
// admin command), holds at once for a space already open on this one,
// bound by bound over the service's default, at the start of an upload
// and at its commit; reset, the default holds again. It runs on both
// stores and every backend.
func TestAccountQuota(t *testing.T) {
	stores := map[string]func(t *testing.T) accountStores{
		"sqlite": func(t *testing.T) accountStores {
			path := filepath.Join(t.TempDir(), "larder.db")
			return func() (larder.FileStore, larder.UserStore, func()) {
				db, err := sqlite.Open(context.Background(), path)
				must(t, err)
				return sqlite.NewFileStore(db), sqlite.NewUserStore(db), func() { db.Close() }
			}
		},
		"postgres": func(t *testing.T) accountStores {
			url := pgtest.URL(t)
			return func() (larder.FileStore, larder.UserStore, func()) {
				db, err := postgres.Open(context.Background(), url)
				must(t, err)
				return postgres.NewFileStore(db), postgres.NewUserStore(db), db.Close
			}
		},
	}
	for store, open := range stores {
		for backend, world := range worlds(func(t *testing.T) func() (larder.FileStore, func()) { return nil }) {
			t.Run(store+"/"+backend, func(t *testing.T) {
				w := world(t)
				testAccountQuota(t, w, open(t))
			})
		}
	}
}

func testAccountQuota(t *testing.T, w *crashWorld, open accountStores) {
	ctx := context.Background()
	records, users, closeDB := open()
	defer closeDB()
	_, admin, closeAdmin := open() // the administrator's connection
	defer closeAdmin()
	backend, closeBackend := w.newBackend()
	defer closeBackend()

	alice := &larder.User{Name: "alice", Verifier: "v"}
	must(t, users.CreateUser(ctx, alice))
	s, err := New(Config{Backend: backend, Records: records, Accounts: users, Quota: larder.Quota{Bytes: 100, Files: 2}})
	must(t, err)
	defer s.Close()
	sp, err := s.AccountSpace(alice)
	must(t, err)
	defer sp.Close()

	quota := func(want larder.Quota) {
		t.Helper()
		if got, err := sp.Quota(ctx); err != nil || got != want {
			t.Fatalf("Quota: got %+v, %v; want %+v", got, err, want)
		}
	}
	data := func(n int) []byte { return []byte(fmt.Sprintf("%0*d", n, n)) }

	quota(larder.Quota{Bytes: 100, Files: 2})
	checkCode(t, "a 150-byte file under the default quota of 100 bytes", put(ctx, sp, "a", data(150), false), larder.EQUOTA)

	setQuota(t, admin, "alice", larder.AccountQuota{Bytes: 1000, SetBytes: true})
	quota(larder.Quota{Bytes: 1000, Files: 2})
	must(t, put(ctx, sp, "a", data(150), false))
	must(t, put(ctx, sp, "b", data(150), false))
	checkCode(t, "a third file under the default 2 files", put(ctx, sp, "c", data(1), false), larder.EQUOTA)

	setQuota(t, admin, "alice", larder.AccountQuota{Bytes: 1000, SetBytes: true, SetFiles: true})
	quota(larder.Quota{Bytes: 1000})
	must(t, put(ctx, sp, "c", data(1), false))

	// Lowered while an upload is under way: refused at its commit.
	u, err := sp.StartUpload(ctx, "d", 500, false, false)
	must(t, err)
	setQuota(t, admin, "alice", larder.AccountQuota{Bytes: 400, SetBytes: true})
	b := data(500)
	if err := write(u, b); err != nil {
		t.Fatal(err)
	}
	_, err = u.Commit(ctx, sha256.Sum256(b), nil, 0, nil)
	checkCode(t, "a commit after the quota was lowered below it", err, larder.EQUOTA)
	u.Close()

	setQuota(t, admin, "alice", larder.AccountQuota{})
	quota(larder.Quota{Bytes: 100, Files: 2})
	checkCode(t, "a file once the account's quota is reset", put(ctx, sp, "e", data(1), false), larder.EQUOTA)

	// The space of an account deleted meanwhile takes nothing more.
	must(t, admin.DeleteUser(ctx, "alice"))
	checkCode(t, "an upload of a deleted account", put(ctx, sp, "f", data(1), false), larder.ENOTFOUND)
}

func checkCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := larder.ErrorCode(err); got != code {
		t.Errorf("%s: got %v (code %q), want code %q", what, err, got, code)
	}
}

// setQuota gives account name the quota q, both bounds.
func setQuota(t *testing.T, users larder.UserStore, name string, q larder.AccountQuota) {
	t.Helper()
	if _, err := users.SetQuota(context.Background(), name, q, larder.QuotaBoth); err != nil {
		t.Fatal(err)
	}
}
