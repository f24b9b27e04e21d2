package server_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/internal/server"
	"github.com/larderfs/larder/lnp"
)

// TestLNPPasswdBothCredentials: a PASSWD that carries the new password's
// LNP/1 credential changes both at once, so the new password logs in to
// LNP/1 at once even with the window for course signatures closed (a
// PASSWD without it leaves the account with no LNP/1 credential, which
// then cannot log in until the window opens), and the course protocol
// takes the new signature.
func TestLNPPasswdBothCredentials(t *testing.T) {
	h := newLNPHarness(t, func(s *server.Server) { s.CloseSignatureLogins = true })
	ctx := context.Background()
	sig := larder.NewSignature("pw", course.CourseSalt)
	s, err := client.Register(ctx, h.tlsConn(t), "alice", sig, "pw", cheapLogin())
	must(t, err)
	s.Close()

	s, err = h.loginPassword(t, "alice", "pw")
	must(t, err)
	newSig := larder.NewSignature("new pw", course.CourseSalt)
	if err := s.ChangePassword(ctx, sig, newSig, "new pw"); err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}
	if w, err := s.Whoami(ctx); err != nil || w.User != "alice" {
		t.Fatalf("the session that changed the password: %+v, %v", w, err)
	}
	s.Close()
	s, err = h.loginPassword(t, "alice", "new pw")
	if err != nil {
		t.Fatalf("the new password over LNP/1, window closed: %v", err)
	}
	s.Close()
	_, err = h.loginPassword(t, "alice", "pw")
	wantBadLogin(t, "the old password", err)
	c, err := client.Dial(ctx, h.courseAddr)
	must(t, err)
	defer c.Close()
	must(t, os.WriteFile(filepath.Join(h.files, "f.txt"), []byte("course"), 0o644))
	var got bytes.Buffer
	if _, err := c.Retrieve(ctx, "alice", newSig, "f.txt", &got); err != nil || got.String() != "course" {
		t.Errorf("the new signature on the course protocol: %q, %v", got.String(), err)
	}

	// A wrong old signature changes nothing; a credential below the
	// policy is refused before anything changes.
	s, err = h.loginPassword(t, "alice", "new pw")
	must(t, err)
	defer s.Close()
	var ne *client.LNPError
	if err := s.ChangePassword(ctx, sig, larder.NewSignature("x", course.CourseSalt), "x"); !errors.As(err, &ne) || ne.Status != lnp.StatusInvalidLogin {
		t.Errorf("ChangePassword with a wrong old signature: got %v, want INVALID_LOGIN", err)
	}
	if _, err := h.loginPassword(t, "alice", "new pw"); err != nil {
		t.Errorf("after a refused change: %v", err)
	}
}
