package server_test

import (
	"errors"
	"testing"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/lnp"
)

// TestLNPLoginFailuresAlike: LNP/1 answers a login for a name that
// has no account exactly as one with a wrong password, so that it does
// not tell which names exist (SECURITY.md). Both cost a password hash:
// internal/auth checks an unknown name against a dummy hash.
func TestLNPLoginFailuresAlike(t *testing.T) {
	h := newLNPHarness(t)
	h.register(t, "alice", "pw")
	welcome := func(user string) *client.LNPError {
		t.Helper()
		_, err := h.dial(user, larder.NewSignature("wrong", course.CourseSalt), 0)
		var ne *client.LNPError
		if !errors.As(err, &ne) {
			t.Fatalf("login as %s with a wrong password: got %v, want a refusal", user, err)
		}
		return ne
	}
	wrong, unknown := welcome("alice"), welcome("nobody")
	if wrong.Status != lnp.StatusInvalidLogin || unknown.Status != wrong.Status || unknown.Message != wrong.Message {
		t.Errorf("a wrong password is answered %v %q, an unknown user %v %q; want both %v with one message",
			wrong.Status, wrong.Message, unknown.Status, unknown.Message, lnp.StatusInvalidLogin)
	}
}
