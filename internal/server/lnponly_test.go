package server_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/lnp"
)

// registerLNPOnly makes an account over LNP/1 that has no course
// signature.
func (h *lnpHarness) registerLNPOnly(t *testing.T, user, password string) {
	t.Helper()
	s, err := client.RegisterLNP(context.Background(), h.tlsConn(t), user, password, cheapLogin())
	if err != nil {
		t.Fatalf("RegisterLNP(%s): %v", user, err)
	}
	s.Close()
}

// TestLNPRegisterLNPOnly: an account registered with MethodRegisterLNP
// has no verifier; it logs in over LNP/1 with its password, and the course
// protocol refuses every signature for it, saying why, with nothing
// hashed.
func TestLNPRegisterLNPOnly(t *testing.T) {
	h := newLNPHarness(t)
	ctx := context.Background()
	h.registerLNPOnly(t, "nora", "pw")
	u, err := h.users.UserByName(ctx, "nora")
	must(t, err)
	if u.Verifier != "" || u.LNPCredential == "" {
		t.Fatalf("nora: verifier %q, LNP/1 credential %q; want none and one", u.Verifier, u.LNPCredential)
	}
	s, err := h.loginPassword(t, "nora", "pw")
	if err != nil {
		t.Fatalf("the password over LNP/1: %v", err)
	}
	s.Close()

	must(t, os.WriteFile(filepath.Join(h.files, "f.txt"), []byte("shared"), 0o644))
	c, err := client.Dial(ctx, h.courseAddr)
	must(t, err)
	defer c.Close()
	// Not even the signature of the right password with the course salt:
	// the account has no course password at all.
	_, err = c.Retrieve(ctx, "nora", larder.NewSignature("pw", course.CourseSalt), "f.txt", new(bytes.Buffer))
	if err == nil || !strings.Contains(err.Error(), `user "nora" has no password for the course protocol: it logs in over LNP/1 only`) {
		t.Errorf("a course retrieval as nora: got %v, want a refusal that says the account is LNP/1 only", err)
	}
	// Nor does a course signature enroll it on LNP/1.
	_, err = h.enroll(t, "nora", larder.NewSignature("pw", course.CourseSalt), "pw")
	wantBadLogin(t, "an enrollment of nora with a course signature", err)
}

// TestLNPPasswdLNPOnly: an LNP/1-only account changes its password with a
// PASSWD that carries the new credential and no signatures; the session
// must have logged in with the password, not with a device credential,
// and a PASSWD without the credential is refused, saying why.
func TestLNPPasswdLNPOnly(t *testing.T) {
	h := newLNPHarness(t)
	ctx := context.Background()
	h.registerLNPOnly(t, "nora", "pw")

	s, err := h.loginPassword(t, "nora", "pw")
	must(t, err)
	secret := client.NewDeviceSecret()
	dev, err := s.AddDevice(ctx, "laptop", secret)
	must(t, err)
	err = s.Passwd(ctx, larder.Signature{}, larder.Signature{})
	wantLNPStatus(t, "a PASSWD of an LNP/1-only account without a credential", err, lnp.StatusBadRequest)
	if !strings.Contains(err.Error(), "logs in over LNP/1 only") {
		t.Errorf("its message: %v, want it to say the account is LNP/1 only", err)
	}
	s.Close()

	// A device credential proves no password: its session cannot change
	// one, whatever the PASSWD carries.
	d, err := h.loginDevice(t, "nora", dev.ID, secret)
	must(t, err)
	err = d.Passwd(ctx, larder.Signature{}, larder.Signature{})
	wantLNPStatus(t, "a PASSWD over a device session", err, lnp.StatusDenied)
	d.Close()

	s, err = h.loginPassword(t, "nora", "pw")
	must(t, err)
	if err := s.ChangePassword(ctx, larder.Signature{}, larder.Signature{}, "new pw"); err != nil {
		t.Fatalf("ChangePassword of an LNP/1-only account: %v", err)
	}
	if w, err := s.Whoami(ctx); err != nil || w.User != "nora" {
		t.Errorf("the session that changed the password: %+v, %v", w, err)
	}
	s.Close()
	_, err = h.loginPassword(t, "nora", "pw")
	wantBadLogin(t, "the old password", err)
	s, err = h.loginPassword(t, "nora", "new pw")
	if err != nil {
		t.Fatalf("the new password: %v", err)
	}
	s.Close()
	if u, err := h.users.UserByName(ctx, "nora"); err != nil || u.Verifier != "" {
		t.Errorf("after the change: %+v, %v; want still no verifier", u, err)
	}
}

// TestLNPPasswdWithoutSignatures: an account that has a course password
// too is told, when a PASSWD carries no signatures, that it needs them;
// the account's password and its throttle are untouched.
func TestLNPPasswdWithoutSignatures(t *testing.T) {
	h := newLNPHarness(t)
	ctx := context.Background()
	sig := larder.NewSignature("pw", course.CourseSalt)
	s, err := client.Register(ctx, h.tlsConn(t), "alice", sig, "pw", cheapLogin())
	must(t, err)
	err = s.ChangePassword(ctx, larder.Signature{}, larder.Signature{}, "new pw")
	wantLNPStatus(t, "a PASSWD with no signatures for an account with a course password", err, lnp.StatusBadRequest)
	if !strings.Contains(err.Error(), "also has a password for the course protocol") {
		t.Errorf("its message: %v", err)
	}
	s.Close()
	s, err = h.loginPassword(t, "alice", "pw")
	if err != nil {
		t.Fatalf("the unchanged password: %v", err)
	}
	s.Close()
}
