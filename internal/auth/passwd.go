package auth

import (
	"context"
	"net/netip"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/lnp"
)

// ChangePassword is ChangeSignature that also gives the account the
// LNP/1 credential the client made from the new password (salt, p, k),
// so that both credentials change in one request. The credential is
// checked against the policy before anything changes; if storing it then
// fails, the signature has changed and the account has no LNP/1
// credential, as after ChangeSignature alone (the client enrolls it at
// its next login while the window is open).
func (a *Authenticator) ChangePassword(ctx context.Context, name string, oldSig, newSig []byte, salt []byte, p Params, k LNPKeys, from netip.Addr) (*larder.User, error) {
	cred, err := a.sealNew(name, salt, p, k)
	if err != nil {
		return nil, err
	}
	u, err := a.ChangeSignature(ctx, name, oldSig, newSig, from)
	if err != nil {
		return nil, err
	}
	// ReplaceVerifier dropped the old password's credential.
	u.LNPCredential = ""
	if err := a.store.SetLNPCredential(ctx, name, u.ID, u.CredentialGen, "", cred); err != nil {
		return u, err
	}
	u.LNPCredential = cred
	return u, nil
}

// ChangeLNPPassword gives u, an account that logs in over LNP/1 only, the
// credential the client made from a new password (salt, p, k). The caller
// has proved the current password on this connection (a password login,
// not a device credential): an LNP/1-only account has no signature to
// check again. If the password changed since u logged in, the error has
// code EUNAUTHORIZED and nothing changes. It returns the account as it now
// is.
func (a *Authenticator) ChangeLNPPassword(ctx context.Context, u *larder.User, salt []byte, p Params, k LNPKeys) (*larder.User, error) {
	cred, err := a.sealNew(u.Name, salt, p, k)
	if err != nil {
		return nil, err
	}
	err = a.store.ReplaceCredentials(ctx, u.Name, u.ID, u.CredentialGen, "", cred)
	if larder.ErrorCode(err) == larder.ECONFLICT {
		return nil, larder.Errorf(larder.EUNAUTHORIZED, "the password of %q changed meanwhile: log in again", u.Name)
	}
	if err != nil {
		return nil, err
	}
	a.Forget(u.Name)
	n := *u
	n.Verifier, n.LNPCredential, n.CredentialGen = "", cred, u.CredentialGen+1
	return &n, nil
}

// NewLNPCredential makes the LNP/1 credential of password for the account
// name at the policy, as a client would, sealed with the current pepper:
// for an administrator who sets a password. It runs argon2id here.
func (h *Hasher) NewLNPCredential(name, password string) (string, error) {
	p := h.Params()
	c := lnp.NewCredential(password, lnp.KDF{Memory: p.Memory, Time: p.Time, Threads: p.Threads})
	return h.SealLNP(name, c.Salt, p, LNPKeys{StoredKey: c.StoredKey, ServerKey: c.ServerKey})
}
