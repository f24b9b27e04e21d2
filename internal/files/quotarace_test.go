//go:build linux

package files

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/postgres"
	"github.com/larderfs/larder/internal/postgres/pgtest"
)

// TestAccountQuotaTwoServers: two servers on one PostgreSQL database and
// one disk, each uploading to one account at once, store exactly what
// the account's own quota allows, never more.
func TestAccountQuotaTwoServers(t *testing.T) {
	url := pgtest.URL(t)
	w := worlds(func(t *testing.T) func() (larder.FileStore, func()) { return nil })["disk"](t)
	ctx := context.Background()
	type server struct{ sp *Space }
	var servers []server
	var alice *larder.User
	for i := range 2 {
		db, err := postgres.Open(ctx, url)
		must(t, err)
		t.Cleanup(db.Close)
		users := postgres.NewUserStore(db)
		if i == 0 {
			alice = &larder.User{Name: "alice", Verifier: "v"}
			must(t, users.CreateUser(ctx, alice))
			setQuota(t, users, "alice", larder.AccountQuota{Bytes: 1000, SetBytes: true, Files: 7, SetFiles: true})
		}
		backend, closeBackend := w.newBackend()
		t.Cleanup(closeBackend)
		s, err := New(Config{Backend: backend, Records: postgres.NewFileStore(db), Accounts: users})
		must(t, err)
		t.Cleanup(func() { s.Close() })
		sp, err := s.AccountSpace(alice)
		must(t, err)
		t.Cleanup(func() { sp.Close() })
		servers = append(servers, server{sp})
	}
	for round := range 3 {
		var wg sync.WaitGroup
		for i := range 16 {
			sp := servers[i%2].sp
			wg.Go(func() {
				data := []byte(fmt.Sprintf("%0*d", 150, i))
				err := put(ctx, sp, fmt.Sprintf("r%d-%d", round, i), data, false)
				if code := larder.ErrorCode(err); err != nil && code != larder.EQUOTA {
					t.Errorf("upload %d: %v, want done or EQUOTA", i, err)
				}
			})
		}
		wg.Wait()
		u, _, err := servers[0].sp.Usage(ctx, "")
		must(t, err)
		if u.Bytes > 1000 || u.Files > 7 {
			t.Fatalf("round %d: %d bytes in %d files stored under a quota of 1000 bytes, 7 files", round, u.Bytes, u.Files)
		}
		// Fewer than the 6 that fit may commit: an upload refused at
		// its start holds its part for a moment, which others count.
		if u.Files == 0 {
			t.Errorf("round %d: no upload committed", round)
		}
		t.Logf("round %d: %d files of 150 bytes stored (1000 bytes allow 6)", round, u.Files)
		for i := range 16 {
			servers[i%2].sp.Delete(ctx, fmt.Sprintf("r%d-%d", round, i))
		}
	}
}
