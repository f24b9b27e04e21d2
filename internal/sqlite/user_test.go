package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/sqlite"
	"github.com/larderfs/larder/internal/storetest"
)

func open(t testing.TB, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	return db
}

func newStore(t testing.TB) (*sqlite.UserStore, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "larder.db")
	db := open(t, path)
	t.Cleanup(func() { db.Close() })
	return sqlite.NewUserStore(db), path
}

// TestConformance runs the store suite, on a new database file for each
// test.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) larder.UserStore {
		s, _ := newStore(t)
		return s
	})
}

// TestConcurrentWritersTwoHandles registers distinct names through two DBs
// on one file, as two server processes or a server and an admin command
// would: the busy timeout and BEGIN IMMEDIATE must keep SQLITE_BUSY away.
func TestConcurrentWritersTwoHandles(t *testing.T) {
	s1, path := newStore(t)
	db2 := open(t, path)
	defer db2.Close()
	s2 := sqlite.NewUserStore(db2)

	const n = 25
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		for j, s := range []*sqlite.UserStore{s1, s2} {
			wg.Go(func() {
				errs <- s.CreateUser(context.Background(), &larder.User{Name: fmt.Sprintf("u%d-%d", j, i), Verifier: "v"})
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("CreateUser: %v", err)
		}
	}
	for i := range n {
		for j, s := range []*sqlite.UserStore{s2, s1} { // each reads the other's writes
			if _, err := s.UserByName(context.Background(), fmt.Sprintf("u%d-%d", j, i)); err != nil {
				t.Errorf("UserByName: %v", err)
			}
		}
	}
}

// TestReopenKeepsAccounts is a restart: every account registered before
// Close is there after Open.
func TestReopenKeepsAccounts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "larder.db")
	ctx := context.Background()
	db := open(t, path)
	s := sqlite.NewUserStore(db)
	want := map[string]*larder.User{}
	for i := range 50 {
		u := &larder.User{Name: fmt.Sprint("user", i), Verifier: fmt.Sprint("verifier", i)}
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		want[u.Name] = u
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	db = open(t, path)
	defer db.Close()
	s = sqlite.NewUserStore(db)
	for name, w := range want {
		got, err := s.UserByName(ctx, name)
		if err != nil {
			t.Fatalf("after reopen, UserByName(%q): %v", name, err)
		}
		if *got != *w {
			t.Errorf("after reopen, UserByName(%q) = %+v, want %+v", name, *got, *w)
		}
	}
	// New ids continue after the old ones.
	u := &larder.User{Name: "late", Verifier: "v"}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if u.ID <= 50 {
		t.Errorf("new user after reopen got id %d, want > 50", u.ID)
	}
}

func BenchmarkUserByName(b *testing.B) {
	s, _ := newStore(b)
	storetest.BenchmarkUserByName(b, s)
}

func BenchmarkRecordLogin(b *testing.B) {
	s, _ := newStore(b)
	storetest.BenchmarkRecordLogin(b, s)
}
