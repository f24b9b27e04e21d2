package server_test

import (
	"context"
	"errors"
	"testing"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/lnp"
)

// TestLNPDisabledAccountLogin: an LNP/1 login to a disabled account with
// the right signature is INVALID_LOGIN saying the account is disabled;
// with a wrong one it is the answer of any bad login, which tells nothing
// of the account. An open session of the account ends at its next request
// with DENIED.
func TestLNPDisabledAccountLogin(t *testing.T) {
	h := newLNPHarness(t)
	ctx := context.Background()
	sig := h.register(t, "alice", "pw")
	open := h.login(t, "alice", sig)
	must(t, h.users.SetDisabled(ctx, "alice", true))

	for _, tc := range []struct {
		what string
		sig  larder.Signature
		msg  string
	}{
		{"the right signature", sig, `account "alice" is disabled`},
		{"a wrong signature", larder.NewSignature("guess", "salt"), "unknown user or wrong password"},
	} {
		_, err := h.dial("alice", tc.sig, 0)
		var le *client.LNPError
		if !errors.As(err, &le) || le.Status != lnp.StatusInvalidLogin || le.Message != tc.msg {
			t.Errorf("login to a disabled account with %s: %v, want %v %q", tc.what, err, lnp.StatusInvalidLogin, tc.msg)
		}
	}
	_, err := open.Whoami(ctx)
	var le *client.LNPError
	if !errors.As(err, &le) || le.Status != lnp.StatusDenied || le.Message != "account disabled: the session is ended" {
		t.Errorf("a request of a session of the disabled account: %v, want DENIED saying the session is ended", err)
	}
}
