package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"log/slog"
	"net/netip"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/lnp"
)

// LNPChallenge is one channel-bound LNP/1 login in progress: made by
// StartLNP, ended by FinishLNP. It holds the account's keys, or, for a
// name with no credential, keys that match no proof.
type LNPChallenge struct {
	name string
	user *larder.User // nil: no such account
	real bool         // the account has a credential
	keys LNPKeys
	// device is the device credential of a login by StartDevice; reseal
	// says it is sealed with an older pepper.
	device *larder.Device
	reseal bool
	Salt   []byte
	KDF    Params
	Nonce  [32]byte
}

// MockKeySize is the size of the secret from which the salts shown for
// names without a credential derive.
const MockKeySize = 32

// SetMockKey sets the secret from which StartLNP derives the salt it shows
// for a name that has no LNP/1 credential. Servers sharing a store must
// share it (the settings table, larder.SettingLNPMockKey), so that every
// one shows a name the same salt. Until it is set, a random key of the
// process is used. Call it before the first login.
func (a *Authenticator) SetMockKey(key []byte) {
	a.mockKey = append([]byte(nil), key...)
}

func (a *Authenticator) mock() []byte {
	a.mockOnce.Do(func() {
		if a.mockKey == nil {
			a.mockKey = make([]byte, MockKeySize)
			rand.Read(a.mockKey)
		}
	})
	return a.mockKey
}

// mockSalt is the salt shown for name when it has no credential: stable
// for the name, as a real one is, and unpredictable without the mock key.
func (a *Authenticator) mockSalt(name string) []byte {
	m := hmac.New(sha256.New, a.mock())
	m.Write([]byte("larder LNP/1 mock salt\x00" + name))
	return m.Sum(nil)[:LNPSaltLen]
}

// StartLNP begins a channel-bound login as name: it returns the salt and
// argon2id cost with which the client derives its key, and a fresh nonce.
// A name with no account, an account not enrolled yet and a disabled
// account get a challenge like any other: a salt stable for the name,
// derived from the mock key, and the policy's cost. Only the store's
// failures are errors.
func (a *Authenticator) StartLNP(ctx context.Context, name string) (*LNPChallenge, error) {
	c := &LNPChallenge{name: name}
	rand.Read(c.Nonce[:])
	if err := larder.ValidateUsername(name); err != nil {
		return nil, err
	}
	u, err := a.store.UserByName(ctx, name)
	switch {
	case larder.ErrorCode(err) == larder.ENOTFOUND:
	case err != nil:
		return nil, err
	default:
		c.user = u
		// A store may answer a name it has cached (internal/sqlite
		// caches accounts found) sooner than one it must look for, as
		// it must for a name that does not exist: a lookup that misses,
		// of a name no account can have, makes the two take alike.
		a.store.UserByName(ctx, name+"\x00")
	}
	// Both kinds of name do the same work, whichever answers: the mock
	// salt, a credential sealed and one opened.
	mockSalt, stored := a.mockSalt(name), a.hasher.dummyLNP(name)
	c.real = c.user != nil && c.user.LNPCredential != ""
	if c.real {
		stored = c.user.LNPCredential
	}
	salt, kdf, keys, err := a.hasher.OpenLNP(name, stored)
	if c.real {
		if err != nil {
			return nil, err
		}
		c.Salt, c.KDF, c.keys = salt, kdf, keys
		return c, nil
	}
	// Keys that match no proof.
	c.Salt, c.KDF = mockSalt, a.hasher.Params()
	rand.Read(c.keys.StoredKey[:])
	return c, nil
}

// Params returns the policy: the argon2id cost of new credentials.
func (a *Authenticator) Params() Params { return a.hasher.Params() }

// dummyLNP returns a credential sealed with the current pepper, for
// StartLNP to open for a name without one.
func (h *Hasher) dummyLNP(name string) string {
	s, _ := h.SealLNP(name, make([]byte, LNPSaltLen), h.Params(), LNPKeys{})
	return s
}

// LNPResult is a successful channel-bound login.
type LNPResult struct {
	User *larder.User
	// ServerSignature proves to the client that the server holds the
	// account's credential.
	ServerSignature [32]byte
	// Renew asks the client for a fresh credential at the policy: the
	// account's is weaker in some parameter.
	Renew bool
	// Device is the device credential that logged in (FinishDevice); zero
	// for the password.
	Device [16]byte
}

// FinishLNP checks the client's proof for authMessage (lnp.AuthMessage of
// the exchange), as a login from the address from, and returns the
// account. Errors, by code, as Login's: EUNAUTHORIZED for a wrong proof
// and for a name without a credential alike (the same message, after the
// same work), or for a disabled account once the proof is right;
// ETHROTTLED before any check. A credential sealed with an older pepper is
// sealed again with the current one.
func (a *Authenticator) FinishLNP(ctx context.Context, c *LNPChallenge, authMessage []byte, proof [32]byte, from netip.Addr) (*LNPResult, error) {
	d := a.throttle.Attempt(c.name, from)
	a.stats.throttled(d)
	if d.Refused {
		return nil, d.Err()
	}
	if d.Delay > 0 {
		t := time.NewTimer(d.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			a.throttle.Abandoned(c.name, from)
			return nil, busy(ctx.Err())
		}
	}
	ok := lnp.VerifyProof(c.keys.StoredKey, authMessage, proof) && c.real
	a.stats.checked(!c.real, ok, nil)
	switch {
	case !ok && c.user == nil:
		return nil, larder.Errorf(larder.ENOTFOUND, "no such user %q", c.name)
	case !ok:
		return nil, larder.Errorf(larder.EUNAUTHORIZED, "no LNP/1 credential of user %q matches the proof", c.name)
	}
	// The account may have changed since the HELLO, its challenge made
	// from what it was then: a proof of the password it had does not log
	// in after a password change or a deletion, nor to an account
	// disabled meanwhile. Only a right proof pays for this lookup, so a
	// wrong one takes as long as before.
	u, err := a.admitNow(ctx, c, from, true)
	if err != nil {
		return nil, err
	}
	// A reseal replaces the credential the proof was checked against, and
	// none other (a renewal may have replaced it meanwhile).
	if u.LNPCredential == c.user.LNPCredential && a.hasher.LNPNeedsReseal(u.LNPCredential) {
		a.reseal(ctx, u, c, from)
	}
	return &LNPResult{
		User:            u,
		ServerSignature: lnp.ServerSignature(c.keys.ServerKey, authMessage),
		Renew:           a.hasher.LNPWeakerThanPolicy(c.KDF),
	}, nil
}

// admitNow reads the account of c, whose proof was right, as it is now,
// and admits it as Login does: one deleted, or replaced by another of the
// same name, since the challenge (or, if samePassword, whose password
// changed since) is refused as a wrong proof; the throttle counts the
// login as a success.
func (a *Authenticator) admitNow(ctx context.Context, c *LNPChallenge, from netip.Addr, samePassword bool) (*larder.User, error) {
	now, err := a.store.UserByName(ctx, c.name)
	switch {
	case larder.ErrorCode(err) == larder.ENOTFOUND || err == nil && now.ID != c.user.ID:
		return nil, larder.Errorf(larder.EUNAUTHORIZED, "the account %q was deleted since its challenge", c.name)
	case err == nil && samePassword && now.CredentialGen != c.user.CredentialGen:
		return nil, larder.Errorf(larder.EUNAUTHORIZED, "the password of user %q changed since its challenge", c.name)
	case err != nil:
		a.throttle.Abandoned(c.name, from) // the server's trouble, not a guess
		return nil, err
	}
	a.throttle.Succeeded(c.name, from)
	return admit(now)
}

// reseal seals u's credential again with the current pepper: best effort,
// as upgrade is.
func (a *Authenticator) reseal(ctx context.Context, u *larder.User, c *LNPChallenge, from netip.Addr) {
	from0, _ := a.hasher.DescribeLNP(u.LNPCredential)
	v, err := a.hasher.SealLNP(u.Name, c.Salt, c.KDF, c.keys)
	if err == nil {
		err = a.store.SetLNPCredential(ctx, u.Name, u.ID, u.CredentialGen, u.LNPCredential, v)
	}
	if err != nil {
		a.log(slog.LevelWarn, "LNP/1 credential not sealed again", "user", u.Name, "from", from0, "error", err)
		return
	}
	u.LNPCredential = v
	to, _ := a.hasher.DescribeLNP(v)
	a.audit(ctx, u.Name, from, "LNP/1 credential resealed: "+from0+" -> "+to)
}

// resealUnopened is reseal after a login that did not open u's
// credential (a device's): it opens it first.
func (a *Authenticator) resealUnopened(ctx context.Context, u *larder.User, from netip.Addr) {
	salt, kdf, keys, err := a.hasher.OpenLNP(u.Name, u.LNPCredential)
	if err != nil {
		a.log(slog.LevelWarn, "LNP/1 credential not sealed again", "user", u.Name, "error", err)
		return
	}
	a.reseal(ctx, u, &LNPChallenge{Salt: salt, KDF: kdf, keys: keys}, from)
}

// EnrollLNP stores a credential for u, which has just logged in with its
// course signature (LoginSignature) or with a credential below the policy
// (LNPResult.Renew): the client's salt and argon2id cost, which must be at
// least the policy's in each parameter, and the keys it derived. Once
// stored, the course signature no longer opens LNP/1 for the account.
func (a *Authenticator) EnrollLNP(ctx context.Context, u *larder.User, salt []byte, p Params, k LNPKeys, from netip.Addr) error {
	v, err := a.sealNew(u.Name, salt, p, k)
	if err != nil {
		return err
	}
	if err := a.store.SetLNPCredential(ctx, u.Name, u.ID, u.CredentialGen, u.LNPCredential, v); err != nil {
		return err
	}
	what := "LNP/1 credential enrolled: "
	if u.LNPCredential != "" {
		what = "LNP/1 credential renewed: "
	}
	u.LNPCredential = v
	label, _ := a.hasher.DescribeLNP(v)
	a.log(slog.LevelInfo, what[:len(what)-2], "user", u.Name, "credential", label)
	a.audit(ctx, u.Name, from, what+label)
	return nil
}

// sealNew seals a credential a client made, if its cost is at least the
// policy's in each parameter and within what the server allows.
func (a *Authenticator) sealNew(name string, salt []byte, p Params, k LNPKeys) (string, error) {
	if a.hasher.LNPWeakerThanPolicy(p) {
		return "", larder.Errorf(larder.EINVALID, "an LNP/1 credential at %v is below the server's policy %v", p, a.hasher.Params())
	}
	lanes := max(lnpLanesCap, a.hasher.Params().Threads)
	if pol := a.hasher.policy.Load(); p.Memory > pol.maxMemory || p.Time > pol.maxTime || p.Threads > lanes {
		return "", larder.Errorf(larder.EINVALID, "an LNP/1 credential at %v is above what this server allows (m=%d,t=%d,p=%d)", p, pol.maxMemory, pol.maxTime, lanes)
	}
	return a.hasher.SealLNP(name, salt, p, k)
}

// lnpLanesCap is the most lanes an LNP/1 credential may have beyond the
// policy's: the most larder's client computes (client.DefaultMaxKDF). A
// credential with more would be stored, and its account could then never
// log in again: every client would refuse its challenge.
const lnpLanesCap = 16

// Available reports whether name may be registered: a valid new name
// (larder.ValidateNewUsername, code EINVALID) that no account has (code
// ECONFLICT otherwise). It is a cheap check before the client does the
// work of a credential; RegisterLNP decides.
func (a *Authenticator) Available(ctx context.Context, name string) error {
	if err := larder.ValidateNewUsername(name); err != nil {
		return err
	}
	switch _, err := a.store.UserByName(ctx, name); larder.ErrorCode(err) {
	case larder.ENOTFOUND:
		return nil
	case "":
		return larder.Errorf(larder.ECONFLICT, "user %q already exists", name)
	default:
		return err
	}
}

// RegisterLNP creates the account name with the LNP/1 credential the
// client made (at least at the policy), and, if sig is not nil, a verifier
// of sig for the course protocol, made here as Register makes it; without
// sig the account logs in over LNP/1 only. Errors as Register's, and
// EINVALID for a credential below the policy.
func (a *Authenticator) RegisterLNP(ctx context.Context, name string, sig []byte, salt []byte, p Params, k LNPKeys) (*larder.User, error) {
	if err := larder.ValidateUsername(name); err != nil {
		return nil, err
	}
	if sig != nil {
		if err := validate(name, sig); err != nil {
			return nil, err
		}
	}
	if err := a.Available(ctx, name); err != nil {
		return nil, err
	}
	cred, err := a.sealNew(name, salt, p, k)
	if err != nil {
		return nil, err
	}
	u := &larder.User{Name: name, LNPCredential: cred}
	if sig != nil {
		if u.Verifier, err = a.hasher.Hash(ctx, sig); err != nil {
			return nil, err
		}
	}
	if err := a.store.CreateUser(ctx, u); err != nil {
		return nil, err
	}
	return u, nil
}

// LoginSignature logs in to LNP/1 with the course signature: only an
// account that has no LNP/1 credential yet, and only while the server
// takes signatures on LNP/1 at all (open). Any other account is refused
// as a wrong signature is, after the same work, so that neither the answer
// nor the time tells an enrolled account from a wrong signature or from a
// name that does not exist.
func (a *Authenticator) LoginSignature(ctx context.Context, name string, sig []byte, from netip.Addr, open bool) (*larder.User, error) {
	if err := validate(name, sig); err != nil {
		return nil, err
	}
	u, err := a.store.UserByName(ctx, name)
	if err != nil && larder.ErrorCode(err) != larder.ENOTFOUND {
		return nil, err
	}
	if u == nil || (open && u.LNPCredential == "") {
		return a.Login(ctx, name, sig, from)
	}
	d := a.throttle.Attempt(name, from)
	a.stats.throttled(d)
	if d.Refused {
		return nil, d.Err()
	}
	if _, err := a.check(ctx, nil, sig, d.Delay); err != nil {
		a.throttle.Abandoned(name, from)
		return nil, err
	}
	return nil, larder.Errorf(larder.EUNAUTHORIZED, "the course signature does not open LNP/1 for user %q", name)
}

func (a *Authenticator) audit(ctx context.Context, user string, from netip.Addr, reason string) {
	if a.Audit == nil {
		return
	}
	ev := larder.Event{Kind: larder.EventAccount, User: user, Reason: reason}
	if from.IsValid() {
		ev.Remote = from.String()
	}
	if err := a.Audit.Record(ctx, ev); err != nil {
		a.log(slog.LevelError, "audit event not recorded", "kind", ev.Kind, "user", ev.User, "reason", ev.Reason, "error", err)
	}
}
