package server_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/lnp"
)

// TestLNPAccountQuota: the quota an administrator sets for one account,
// from another process on the database, holds at once in that account's
// live session (WHOAMI and uploads), over the server's default bound by
// bound, and no other account's.
func TestLNPAccountQuota(t *testing.T) {
	h := newLNPHarnessFiles(t, func(p *fileParts) { p.quota = larder.Quota{Bytes: mib, Files: 10} })
	ctx := context.Background()
	alice := h.login(t, "alice", h.register(t, "alice", "pw"))
	bob := h.login(t, "bob", h.register(t, "bob", "pw"))
	admin, _ := h.otherStore(t)
	data := randomBytes(2*mib, 301)

	whoami := func(s *client.Session, bytes, files uint64) {
		t.Helper()
		w, err := s.Whoami(ctx)
		if err != nil || w.BytesQuota != bytes || w.FilesQuota != files {
			t.Fatalf("whoami: got %+v, %v; want quotas %d bytes, %d files", w, err, bytes, files)
		}
	}
	whoami(alice, mib, 10)
	_, err := alice.Put(ctx, "big.bin", bytes.NewReader(data), int64(len(data)), client.PutOptions{})
	wantLNPStatus(t, "2 MiB under the default quota of 1 MiB", err, lnp.StatusQuotaExceeded)

	mustSetQuota(t, admin, "alice", larder.AccountQuota{Bytes: 10 * mib, SetBytes: true, SetFiles: true})
	alice = h.login(t, "alice", larder.NewSignature("pw", course.CourseSalt))
	whoami(alice, 10*mib, 0)
	whoami(bob, mib, 10)
	if _, err := alice.Put(ctx, "big.bin", bytes.NewReader(data), int64(len(data)), client.PutOptions{}); err != nil {
		t.Fatalf("2 MiB under alice's own quota of 10 MiB: %v", err)
	}
	_, err = bob.Put(ctx, "big.bin", bytes.NewReader(data), int64(len(data)), client.PutOptions{})
	wantLNPStatus(t, "bob's 2 MiB under the default quota", err, lnp.StatusQuotaExceeded)

	mustSetQuota(t, admin, "alice", larder.AccountQuota{})
	bob = h.login(t, "bob", larder.NewSignature("pw", course.CourseSalt))
	whoami(alice, mib, 10)
}

// TestLastLoginRecorded: a login over either protocol records the
// account's last login, and logins within a minute of it write nothing.
func TestLastLoginRecorded(t *testing.T) {
	h := newLNPHarness(t)
	ctx := context.Background()
	admin, _ := h.otherStore(t)
	// As 'larder admin user list' reads them: the other process's cache
	// of accounts may show a last login older by up to its lifetime.
	account := func(name string) (*larder.User, error) {
		page, err := admin.ListUsers(ctx, "", 10)
		for _, u := range page {
			if u.Name == name {
				return u, nil
			}
		}
		return nil, fmt.Errorf("no %s in %v (%v)", name, page, err)
	}
	sig := h.register(t, "alice", "pw")
	if u, err := account("alice"); err != nil || !u.LastLogin.IsZero() {
		t.Fatalf("after registering: got %v, %v; want no login", u, err)
	}
	before := time.Now().Add(-time.Second)
	h.login(t, "alice", sig).Close()
	u, err := account("alice")
	if err != nil || u.LastLogin.Before(before) || u.LastLogin.After(time.Now()) {
		t.Fatalf("after an LNP/1 login at %v: got %+v, %v", before, u, err)
	}
	first := u.LastLogin
	h.login(t, "alice", sig).Close()
	if u, err := account("alice"); err != nil || !u.LastLogin.Equal(first) {
		t.Fatalf("a second login within a minute: LastLogin got %v, %v; want %v kept", u.LastLogin, err, first)
	}

	bob := h.register(t, "bob", "pw")
	c, err := client.Dial(ctx, h.courseAddr)
	must(t, err)
	defer c.Close()
	// A missing file: the login succeeded all the same.
	c.Retrieve(ctx, "bob", bob, "nothing.txt", new(bytes.Buffer))
	if u, err := account("bob"); err != nil || u.LastLogin.IsZero() {
		t.Fatalf("after a course-protocol login: got %+v, %v; want a last login", u, err)
	}
}

// mustSetQuota gives account name the quota q, both bounds.
func mustSetQuota(t *testing.T, admin larder.UserStore, name string, q larder.AccountQuota) {
	t.Helper()
	if _, err := admin.SetQuota(context.Background(), name, q, larder.QuotaBoth); err != nil {
		t.Fatal(err)
	}
}
