package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/postgres"
	"github.com/larderfs/larder/internal/postgres/pgtest"
	"github.com/larderfs/larder/internal/storetest"
)

func open(t testing.TB, url string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

// TestConformance runs the store suite, on a new database for each test.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) larder.UserStore {
		return postgres.NewUserStore(open(t, pgtest.URL(t)))
	})
}

// TestTwoServersShareAccounts uses one database through two pools, as two
// larder servers do: what one changes, the other reads at its next lookup.
func TestTwoServersShareAccounts(t *testing.T) {
	url := pgtest.URL(t)
	a, b := postgres.NewUserStore(open(t, url)), postgres.NewUserStore(open(t, url))
	ctx := context.Background()

	u := &larder.User{Name: "alice", Verifier: "v1"}
	if err := a.CreateUser(ctx, u); err != nil {
		t.Fatalf("CreateUser on a: got %v, want nil", err)
	}
	if err := b.CreateUser(ctx, &larder.User{Name: "alice", Verifier: "v2"}); larder.ErrorCode(err) != larder.ECONFLICT {
		t.Errorf("CreateUser(alice) on b: got %v, want code %q", err, larder.ECONFLICT)
	}
	lookup := func(what string) *larder.User {
		t.Helper()
		got, err := b.UserByName(ctx, "alice")
		if err != nil {
			t.Fatalf("%s, UserByName(alice) on b: got %v, want nil", what, err)
		}
		return got
	}
	if got := lookup("after CreateUser on a"); got.ID != u.ID || got.Verifier != "v1" {
		t.Errorf("after CreateUser on a, b reads ID %d, verifier %q; want %d, %q", got.ID, got.Verifier, u.ID, "v1")
	}
	if err := a.ReplaceVerifier(ctx, "alice", "v1", "v3"); err != nil {
		t.Fatalf("ReplaceVerifier on a: got %v, want nil", err)
	}
	if got := lookup("after ReplaceVerifier on a"); got.Verifier != "v3" {
		t.Errorf("after ReplaceVerifier on a, b reads verifier %q, want %q", got.Verifier, "v3")
	}
	// b's rehash from what it read before the change must not undo it.
	if err := b.ReplaceVerifier(ctx, "alice", "v1", "v1-rehashed"); larder.ErrorCode(err) != larder.ECONFLICT {
		t.Errorf("stale ReplaceVerifier on b: got %v, want code %q", err, larder.ECONFLICT)
	}
	if err := a.SetDisabled(ctx, "alice", true); err != nil {
		t.Fatalf("SetDisabled on a: got %v, want nil", err)
	}
	if got := lookup("after SetDisabled on a"); !got.Disabled {
		t.Errorf("after SetDisabled on a, b reads Disabled false, want true")
	}
	if err := a.DeleteUser(ctx, "alice"); err != nil {
		t.Fatalf("DeleteUser on a: got %v, want nil", err)
	}
	if _, err := b.UserByName(ctx, "alice"); larder.ErrorCode(err) != larder.ENOTFOUND {
		t.Errorf("after DeleteUser on a, UserByName(alice) on b: got %v, want code %q", err, larder.ENOTFOUND)
	}
}

// TestOpenErrorsHideThePassword: the URL comes from the command line and
// its errors are logged; its password must not be.
func TestOpenErrorsHideThePassword(t *testing.T) {
	const pw = "s3cret-Pw"
	for _, connString := range []string{
		// Nothing listens on port 1: connecting fails.
		"postgres://larder:" + pw + "@127.0.0.1:1/larder?connect_timeout=5",
		"postgresql://larder:" + pw + "@127.0.0.1:1/larder?sslmode=disable&connect_timeout=5",
		"postgres://larder@127.0.0.1:1/larder?password=" + pw + "&connect_timeout=5",
		"host=127.0.0.1 port=1 user=larder password=" + pw + " dbname=larder connect_timeout=5",
		"host=127.0.0.1 port=1 user=larder password='" + pw + "' dbname=larder connect_timeout=5",
		// These do not parse.
		"postgres://larder:" + pw + "@127.0.0.1:port/larder",
		"postgres://larder:" + pw + "@[::1/larder",
		"postgres://larder:" + pw + "@127.0.0.1/larder?sslmode=bogus",
		"postgres://larder:s3cret%2DPw@127.0.0.1:port/larder",
		"host=127.0.0.1 port=x password=" + pw,
		"host=127.0.0.1 password='" + pw,
	} {
		db, err := postgres.Open(context.Background(), connString)
		if err == nil {
			db.Close()
			t.Errorf("Open(%q): got nil, want an error", connString)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%q): got error %q, want one without the password", connString, err)
		}
	}
}

func TestString(t *testing.T) {
	url := pgtest.URL(t)
	db := open(t, url)
	if got := db.String(); !strings.HasPrefix(got, "postgres://") || !strings.Contains(got, "/larder_test_") {
		t.Errorf("String: got %q, want a postgres:// URL of the test database", got)
	}
}

func BenchmarkUserByName(b *testing.B) {
	storetest.BenchmarkUserByName(b, postgres.NewUserStore(open(b, pgtest.URL(b))))
}

func BenchmarkRecordLogin(b *testing.B) {
	storetest.BenchmarkRecordLogin(b, postgres.NewUserStore(open(b, pgtest.URL(b))))
}
