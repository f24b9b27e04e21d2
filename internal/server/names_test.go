package server_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/internal/auth"
	"github.com/larderfs/larder/lnp"
)

// TestNewNamesRefused: a registration, a folder, an upload or a rename
// whose new name holds a bidirectional override or a control character is
// refused with a message that says which character; an account made
// before with such a name still logs in.
func TestNewNamesRefused(t *testing.T) {
	h := newLNPHarness(t)
	ctx := context.Background()
	sig := larder.NewSignature("pw", course.CourseSalt)
	for _, name := range []string{"evil\u202etxt", "zw\u200bsp", "nfd-e\u0301"} {
		c, err := client.Dial(ctx, h.courseAddr)
		must(t, err)
		_, err = c.Register(ctx, name, sig)
		c.Close()
		if err == nil || !strings.Contains(err.Error(), "username") {
			t.Errorf("registering %q: got %v, want a refusal naming the username", name, err)
		}
	}

	s := h.login(t, "alice", h.register(t, "alice", "pw"))
	data := []byte("x")
	must(t, s.Mkdir(ctx, "ok"))
	if _, err := s.Put(ctx, "ok/f.txt", bytes.NewReader(data), 1, client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"report\u202efdp.exe", "two\nlines", "esc\x1b[2Jclear", "cafe\u0301"} {
		err := s.Mkdir(ctx, "ok/"+bad)
		wantRefusedName(t, "mkdir "+bad, err)
		_, err = s.Put(ctx, "ok/"+bad, bytes.NewReader(data), 1, client.PutOptions{})
		wantRefusedName(t, "put "+bad, err)
		err = s.Rename(ctx, "ok/f.txt", "ok/"+bad, false)
		wantRefusedName(t, "rename to "+bad, err)
	}
	if list, err := s.ListAll(ctx, "ok"); err != nil || len(list) != 1 {
		t.Errorf("the folder after the refusals: %v, %v; want f.txt alone", list, err)
	}

	// An account from before the rule keeps its name and logs in.
	hasher := auth.NewHasher(cheapHash, nil, 0)
	v, err := hasher.Hash(ctx, sig[:])
	must(t, err)
	old := "old\u202eone"
	must(t, h.users.CreateUser(ctx, &larder.User{Name: old, Verifier: v}))
	if _, err := h.dial(old, sig, 0); err != nil {
		t.Errorf("an account made before the rule, named %q, cannot log in: %v", old, err)
	}
}

func wantRefusedName(t *testing.T, what string, err error) {
	t.Helper()
	var ne *client.LNPError
	if !errors.As(err, &ne) || ne.Status != lnp.StatusBadRequest || !strings.Contains(ne.Message, "U+") && !strings.Contains(ne.Message, "NFC") {
		t.Errorf("%s: got %v, want BAD_REQUEST naming the character", what, err)
	}
}
