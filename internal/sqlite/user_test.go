package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/auth"
	"github.com/larderfs/larder/internal/sqlite"
)

// The store satisfies what the authenticator consumes.
var _ auth.UserStore = (*sqlite.UserStore)(nil)

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

func TestCreateAndLookup(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()

	u := &larder.User{Name: "alice", Verifier: "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if u.ID == 0 || u.CreatedAt.IsZero() || !u.UpdatedAt.Equal(u.CreatedAt) {
		t.Errorf("after CreateUser: ID=%d CreatedAt=%v UpdatedAt=%v, want ID set and equal times", u.ID, u.CreatedAt, u.UpdatedAt)
	}
	if u.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt location = %v, want UTC", u.CreatedAt.Location())
	}

	got, err := s.UserByName(ctx, "alice")
	if err != nil {
		t.Fatalf("UserByName: %v", err)
	}
	if *got != *u {
		t.Errorf("UserByName = %+v, want %+v", *got, *u)
	}
}

func TestUserByNameMissing(t *testing.T) {
	s, _ := newStore(t)
	_, err := s.UserByName(context.Background(), "nobody")
	if code := larder.ErrorCode(err); code != larder.ENOTFOUND {
		t.Fatalf("UserByName(nobody) error = %v (code %q), want code %q", err, code, larder.ENOTFOUND)
	}
	if msg, want := larder.ErrorMessage(err), `no such user "nobody"`; msg != want {
		t.Errorf("message = %q, want %q", msg, want)
	}
}

func TestCreateDuplicate(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	if err := s.CreateUser(ctx, &larder.User{Name: "bob", Verifier: "v1"}); err != nil {
		t.Fatal(err)
	}
	err := s.CreateUser(ctx, &larder.User{Name: "bob", Verifier: "v2"})
	if code := larder.ErrorCode(err); code != larder.ECONFLICT {
		t.Fatalf("second CreateUser(bob) error = %v (code %q), want code %q", err, code, larder.ECONFLICT)
	}
	if msg, want := larder.ErrorMessage(err), `user "bob" already exists`; msg != want {
		t.Errorf("message = %q, want %q", msg, want)
	}
	u, err := s.UserByName(ctx, "bob")
	if err != nil || u.Verifier != "v1" {
		t.Errorf("after the conflict UserByName(bob) = %+v, %v; want the first account", u, err)
	}
}

// TestNamesAreByteExact: the course protocol treats "Bob" and "bob" as two
// users, and so does every byte of a UTF-8 name.
func TestNamesAreByteExact(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	names := []string{"bob", "Bob", "BOB", "bøb", "bob "}
	for _, n := range names {
		if err := s.CreateUser(ctx, &larder.User{Name: n, Verifier: "v-" + n}); err != nil {
			t.Fatalf("CreateUser(%q): %v", n, err)
		}
	}
	for _, n := range names {
		u, err := s.UserByName(ctx, n)
		if err != nil {
			t.Fatalf("UserByName(%q): %v", n, err)
		}
		if u.Name != n || u.Verifier != "v-"+n {
			t.Errorf("UserByName(%q) = %q with verifier %q, want its own account", n, u.Name, u.Verifier)
		}
	}
	if _, err := s.UserByName(ctx, "bOb"); larder.ErrorCode(err) != larder.ENOTFOUND {
		t.Errorf("UserByName(bOb) error = %v, want ENOTFOUND", err)
	}
}

func TestCreateInvalid(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	for _, n := range []string{"", "seventeen-bytes!!", "a\x00b", "\xff"} {
		err := s.CreateUser(ctx, &larder.User{Name: n, Verifier: "v"})
		if code := larder.ErrorCode(err); code != larder.EINVALID {
			t.Errorf("CreateUser(%q) error = %v (code %q), want code %q", n, err, code, larder.EINVALID)
		}
	}
	if err := s.CreateUser(ctx, &larder.User{Name: "nov"}); err == nil {
		t.Error("CreateUser with an empty verifier succeeded, want an error")
	}
}

// TestConcurrentDuplicates: of many simultaneous registrations of one name,
// exactly one wins and every other gets ECONFLICT (never SQLITE_BUSY).
func TestConcurrentDuplicates(t *testing.T) {
	s, _ := newStore(t)
	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = s.CreateUser(context.Background(), &larder.User{Name: "carol", Verifier: fmt.Sprint("v", i)})
		})
	}
	close(start)
	wg.Wait()
	wins := 0
	for i, err := range errs {
		switch larder.ErrorCode(err) {
		case "":
			wins++
		case larder.ECONFLICT:
		default:
			t.Errorf("goroutine %d: %v, want nil or ECONFLICT", i, err)
		}
	}
	if wins != 1 {
		t.Errorf("%d registrations of one name succeeded, want exactly 1", wins)
	}
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

func TestContextCanceled(t *testing.T) {
	s, _ := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.UserByName(ctx, "alice"); err == nil {
		t.Error("UserByName with a canceled context succeeded, want an error")
	}
	if err := s.CreateUser(ctx, &larder.User{Name: "alice", Verifier: "v"}); err == nil {
		t.Error("CreateUser with a canceled context succeeded, want an error")
	}
}

func BenchmarkUserByName(b *testing.B) {
	s, _ := newStore(b)
	ctx := context.Background()
	names := make([]string, 1000)
	for i := range names {
		names[i] = fmt.Sprint("user", i)
		if err := s.CreateUser(ctx, &larder.User{Name: names[i], Verifier: "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$PL01amPyeUuxG7H0vIr5X+qHkZvWnHmGBGXFYvh8z2E"}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := s.UserByName(ctx, names[i%len(names)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := s.UserByName(ctx, names[i%len(names)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	})
}
