package auth

import (
	"context"
	"net/netip"

	"github.com/larderfs/larder"
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
	if err := a.store.SetLNPCredential(ctx, name, u.CredentialGen, "", cred); err != nil {
		return u, err
	}
	u.LNPCredential = cred
	return u, nil
}
