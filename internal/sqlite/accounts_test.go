package sqlite_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/sqlite"
)

// changeHelperEnv makes the test binary, run by TestAccountChangesSeen,
// change an account and exit: "PATH|OP|NAME".
const changeHelperEnv = "LARDER_SQLITE_CHANGE_HELPER"

// TestAccountChangesSeen: a server's lookups, cached, see at once every
// change made to the account by another process on the same file (an
// admin command; here the test binary run again), and by another handle
// in this one.
func TestAccountChangesSeen(t *testing.T) {
	if spec := os.Getenv(changeHelperEnv); spec != "" {
		runChangeHelper(t, spec)
		return
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "larder.db")
	server := sqlite.NewUserStore(open(t, path))
	other := sqlite.NewUserStore(open(t, path))
	if err := server.CreateUser(ctx, &larder.User{Name: "alice", Verifier: "v1"}); err != nil {
		t.Fatal(err)
	}
	lookup := func(what string) *larder.User {
		t.Helper()
		var u *larder.User
		for range 3 { // the first fills the cache, the others use it
			got, err := server.UserByName(ctx, "alice")
			if err != nil {
				t.Fatalf("%s: UserByName: %v", what, err)
			}
			u = got
		}
		return u
	}
	inProcess := func(op string) {
		t.Helper()
		var err error
		switch op {
		case "disable":
			err = other.SetDisabled(ctx, "alice", true)
		case "enable":
			err = other.SetDisabled(ctx, "alice", false)
		case "rehash":
			err = other.ReplaceVerifier(ctx, "alice", "v1", "v2")
		}
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
	}
	inChild := func(op string) {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^TestAccountChangesSeen$")
		cmd.Env = append(os.Environ(), changeHelperEnv+"="+path+"|"+op+"|alice")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("helper process %s: %v\n%s", op, err, out)
		}
	}

	if u := lookup("before"); u.Disabled || u.Verifier != "v1" {
		t.Fatalf("before any change: %+v", u)
	}
	inChild("disable")
	if u := lookup("disabled by another process"); !u.Disabled {
		t.Fatal("a disabling by another process is not seen")
	}
	inProcess("enable")
	if u := lookup("enabled by another handle"); u.Disabled {
		t.Fatal("an enabling by another handle is not seen")
	}
	inProcess("rehash")
	if u := lookup("rehashed"); u.Verifier != "v2" {
		t.Fatalf("verifier %q after a rehash elsewhere, want v2", u.Verifier)
	}
	first := lookup("before deletion")
	inChild("delete")
	if _, err := server.UserByName(ctx, "alice"); larder.ErrorCode(err) != larder.ENOTFOUND {
		t.Fatalf("after a deletion by another process: %v, want ENOTFOUND", err)
	}
	if err := other.CreateUser(ctx, &larder.User{Name: "alice", Verifier: "v3"}); err != nil {
		t.Fatal(err)
	}
	if u := lookup("created again"); u.ID == first.ID || u.Verifier != "v3" {
		t.Fatalf("after deletion and creation elsewhere: %+v", u)
	}

	// What a caller does to the account it got is not cached.
	u := lookup("modified copy")
	u.Disabled, u.Verifier = true, "scribbled"
	if u := lookup("after the caller's changes"); u.Disabled || u.Verifier != "v3" {
		t.Fatalf("a caller's changes to its copy leaked into the cache: %+v", u)
	}
}

func runChangeHelper(t *testing.T, spec string) {
	parts := strings.Split(spec, "|")
	ctx := context.Background()
	db, err := sqlite.Open(ctx, parts[0])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := sqlite.NewUserStore(db)
	switch parts[1] {
	case "disable":
		err = s.SetDisabled(ctx, parts[2], true)
	case "delete":
		err = s.DeleteUser(ctx, parts[2])
	default:
		t.Fatalf("unknown op %q", parts[1])
	}
	if err != nil {
		t.Fatal(err)
	}
}
