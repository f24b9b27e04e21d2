package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/larderfs/larder"
)

// SignatureSize is the length of a signature in bytes: a SHA-256 digest.
const SignatureSize = sha256.Size

// Authenticator registers users and checks their signatures. It is safe for
// concurrent use.
type Authenticator struct {
	store    larder.UserStore
	hasher   *Hasher
	cache    *Cache
	throttle *Throttle
	stats    authCounters

	mockKey  []byte // see SetMockKey
	mockOnce sync.Once

	// Logger receives a line for every hash upgraded on login; nil means
	// none.
	Logger *slog.Logger

	// Audit receives an account event (Reason "rehashed: FROM -> TO") for
	// every hash upgraded on login; nil records none.
	Audit larder.EventRecorder

	// Devices keeps device credentials; nil means the server keeps none,
	// and refuses to add one.
	Devices larder.DeviceStore
	// DeviceLifetime is how long a new device credential logs in; zero
	// means DefaultDeviceLifetime. SetDeviceLifetime changes it while a
	// is in use.
	DeviceLifetime time.Duration
	lifetime       atomic.Pointer[time.Duration] // SetDeviceLifetime's, once called
}

// New returns an Authenticator over store that hashes with hasher,
// remembers successful logins in cache and throttles guessing with
// throttle. A nil cache remembers nothing, so every login runs the slow
// hash; a nil throttle allows every attempt.
func New(store larder.UserStore, hasher *Hasher, cache *Cache, throttle *Throttle) *Authenticator {
	return &Authenticator{store: store, hasher: hasher, cache: cache, throttle: throttle}
}

// Register creates the account name with signature sig and returns it. An
// invalid name or signature is an error with code EINVALID, a taken name one
// with code ECONFLICT; a full hashing pool gives EUNAVAILABLE.
func (a *Authenticator) Register(ctx context.Context, name string, sig []byte) (*larder.User, error) {
	if err := validate(name, sig); err != nil {
		return nil, err
	}
	// A new name is held to the stricter rule; accounts named before it
	// still log in (validate).
	if err := larder.ValidateNewUsername(name); err != nil {
		return nil, err
	}
	// A cheap lookup first, so that registering a taken name (the common
	// conflict) costs no slow hash. It is no guarantee: a concurrent
	// registration can still take the name, and then CreateUser reports
	// the conflict.
	switch _, err := a.store.UserByName(ctx, name); larder.ErrorCode(err) {
	case larder.ENOTFOUND:
	case "":
		return nil, larder.Errorf(larder.ECONFLICT, "user %q already exists", name)
	default:
		return nil, err
	}
	verifier, err := a.hasher.Hash(ctx, sig)
	if err != nil {
		return nil, err
	}
	u := &larder.User{Name: name, Verifier: verifier}
	if err := a.store.CreateUser(ctx, u); err != nil {
		return nil, err
	}
	// The client's next request carries the same signature; it has just
	// been hashed, so there is no need to check it again.
	a.cache.Remember(u.Name, sig, u.Verifier)
	return u, nil
}

// Login returns the account name if sig is its signature, presented from
// the network address from. Errors, by code:
//   - ENOTFOUND: no such account. It costs as much as a wrong signature,
//     by a check against a dummy hash, so that timing does not tell which
//     names exist (the course protocol's status codes do; see SECURITY.md).
//   - EUNAUTHORIZED: a wrong signature, on an account disabled or not;
//     or an account that has no course signature (LNP/1 only).
//   - EDISABLED: the right signature of a disabled account (so that only
//     a caller who knows the password learns that it is disabled).
//   - ETHROTTLED: too many failed attempts for this account from this
//     address, or from this address at all; refused before any hashing.
//   - EUNAVAILABLE: the hashing pool stayed full until ctx ended.
//
// The account is asked of the store on every call, even when the check is
// cached, so that a change to the account made anywhere (a password reset,
// disabling, deletion, by an administrator or another server sharing the
// store) takes effect at once: the stores promise that UserByName sees
// such changes at once, from a cache or not. A stored hash weaker than
// the hasher's policy (see Hasher.NeedsRehash) is replaced, on success, by
// one made from sig with the current policy, never weaker than the old
// one in any parameter; the account's sessions go on (RehashVerifier).
func (a *Authenticator) Login(ctx context.Context, name string, sig []byte, from netip.Addr) (*larder.User, error) {
	if err := validate(name, sig); err != nil {
		return nil, err
	}
	u, err := a.store.UserByName(ctx, name)
	if err != nil && larder.ErrorCode(err) != larder.ENOTFOUND {
		return nil, err
	}
	if u != nil && u.Verifier == "" {
		// Nothing to guess at, so nothing hashed or throttled; the
		// course protocol's statuses tell which names exist anyway.
		return nil, errLNPOnly(name)
	}
	if u != nil && a.cache.Verified(u.Name, sig, u.Verifier) {
		// A cached check proves the signature, but a refused address must
		// still be refused: otherwise, while the owner's check is cached,
		// a guesser would see its one right guess answered among quick
		// refusals, and could guess at the speed of the network.
		if d := a.throttle.Check(name, from); d.Refused {
			a.stats.throttled(d)
			return nil, d.Err()
		}
		// The signature is proven: a hash that no longer follows the
		// policy (a rotated pepper, new parameters) is upgraded now, as
		// after a full check, rather than only once the cache forgets.
		if a.hasher.needsRehashLazily(u.Verifier) {
			a.upgrade(ctx, u, sig, from)
			a.cache.Remember(u.Name, sig, u.Verifier)
		}
		return admit(u)
	}

	d := a.throttle.Attempt(name, from)
	a.stats.throttled(d)
	if d.Refused {
		return nil, d.Err()
	}
	ok, err := a.check(ctx, u, sig, d.Delay)
	a.stats.checked(u == nil, ok, err)
	if err != nil {
		a.throttle.Abandoned(name, from) // the server's trouble, not a guess
		return nil, err
	}
	switch {
	case u == nil:
		return nil, larder.Errorf(larder.ENOTFOUND, "no such user %q", name)
	case !ok:
		return nil, larder.Errorf(larder.EUNAUTHORIZED, "signature does not match for user %q", name)
	}
	a.throttle.Succeeded(name, from)
	a.upgrade(ctx, u, sig, from)
	a.cache.Remember(u.Name, sig, u.Verifier)
	return admit(u)
}

// check runs the slow hash for a login after the throttle's delay: against
// the account's stored hash, or a dummy one if there is no account.
func (a *Authenticator) check(ctx context.Context, u *larder.User, sig []byte, delay time.Duration) (bool, error) {
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return false, busy(ctx.Err())
		}
	}
	if u == nil {
		return a.hasher.VerifyDummy(ctx, sig)
	}
	return a.hasher.Verify(ctx, u.Verifier, sig)
}

// upgrade replaces u's stored hash with one by the current policy, made
// from the signature just verified, if the stored one is weaker than the
// policy in some parameter or has another pepper or scheme (NeedsRehash);
// the new hash keeps in each parameter the higher of the old one's and
// the policy's (Rehash). It is best effort: the login succeeds anyway, and a concurrent
// change to the account (a reset) wins over the upgrade.
func (a *Authenticator) upgrade(ctx context.Context, u *larder.User, sig []byte, remote netip.Addr) {
	if !a.hasher.NeedsRehash(u.Verifier) {
		return
	}
	from, _ := a.hasher.Describe(u.Verifier)
	v, err := a.hasher.Rehash(ctx, u.Verifier, sig) // never weaker than the old one
	if err == nil {
		// The same password: the account's sessions go on.
		err = a.store.RehashVerifier(ctx, u.Name, u.Verifier, v)
	}
	if err != nil {
		a.stats.rehashFailures.Add(1)
		a.log(slog.LevelWarn, "password hash not upgraded", "user", u.Name, "from", from, "error", err)
		return
	}
	u.Verifier = v
	a.stats.rehashes.Add(1)
	to, _ := a.hasher.Describe(v)
	a.log(slog.LevelInfo, "password hash upgraded", "user", u.Name, "from", from, "to", to)
	if a.Audit != nil {
		ev := larder.Event{Kind: larder.EventAccount, User: u.Name, Reason: "rehashed: " + from + " -> " + to}
		if remote.IsValid() {
			ev.Remote = remote.String()
		}
		if err := a.Audit.Record(ctx, ev); err != nil {
			a.log(slog.LevelError, "audit event not recorded", "kind", ev.Kind, "user", ev.User, "reason", ev.Reason, "error", err)
		}
	}
}

func (a *Authenticator) log(level slog.Level, msg string, args ...any) {
	if a.Logger != nil {
		a.Logger.Log(context.Background(), level, msg, args...)
	}
}

// RecordLogin records that u, just logged in, did so now
// (larder.User.LastLogin). u as the login read it says when the last
// login recorded was: one within larder.LastLoginResolution costs no
// write, so that a burst of logins (the course protocol logs in for each
// file) writes once. A failure is logged: the login stands.
func (a *Authenticator) RecordLogin(ctx context.Context, u *larder.User) {
	if time.Since(u.LastLogin) < larder.LastLoginResolution {
		return
	}
	if err := a.store.RecordLogin(ctx, u.Name, u.ID); err != nil {
		a.log(slog.LevelWarn, "auth: last login not recorded", "user", u.Name, "err", err)
	}
}

// admit returns u, or an error with code EDISABLED if the account is
// disabled.
func admit(u *larder.User) (*larder.User, error) {
	if u.Disabled {
		return nil, errDisabled(u.Name)
	}
	return u, nil
}

// ErrLNPOnly is in the chain of Login's error for an account that has no
// course signature, so that the course protocol can say so.
var ErrLNPOnly = errors.New("auth: the account logs in over LNP/1 only")

func errLNPOnly(name string) error {
	return &larder.Error{Code: larder.EUNAUTHORIZED, Err: ErrLNPOnly,
		Message: fmt.Sprintf("user %q has no password for the course protocol: it logs in over LNP/1 only", name)}
}

func errDisabled(name string) error {
	return larder.Errorf(larder.EDISABLED, "account %q is disabled", name)
}

// Forget drops what the Authenticator remembers about user name. Call it
// after changing or deleting the account.
func (a *Authenticator) Forget(name string) {
	a.cache.Forget(name)
}

func validate(name string, sig []byte) error {
	if err := larder.ValidateUsername(name); err != nil {
		return err
	}
	if len(sig) != SignatureSize {
		return larder.Errorf(larder.EINVALID, "signature is %d bytes long, want %d", len(sig), SignatureSize)
	}
	return nil
}

// Still reports whether the account that logged in as u is unchanged:
// not deleted, not disabled, and its password the one it logged in with
// (its CredentialGen; a rehash, which keeps the password, changes the
// verifier but not that). A session checks it before every request, so
// that a password change, a disabling or a deletion made anywhere ends it
// at its next request. The error says what changed, by its code:
// ENOTFOUND, the account was deleted (even if its name was registered
// again since); EDISABLED, it is disabled; EUNAUTHORIZED, its password
// changed.
func (a *Authenticator) Still(ctx context.Context, u *larder.User) error {
	cur, err := a.store.UserByName(ctx, u.Name)
	switch {
	case larder.ErrorCode(err) == larder.ENOTFOUND, err == nil && cur.ID != u.ID:
		return larder.Errorf(larder.ENOTFOUND, "account %q was deleted", u.Name)
	case err != nil:
		return err
	case cur.Disabled:
		return errDisabled(u.Name)
	case cur.CredentialGen != u.CredentialGen:
		return larder.Errorf(larder.EUNAUTHORIZED, "the password of %q changed: log in again", u.Name)
	}
	return nil
}

// ChangeSignature replaces the signature of account name with newSig if
// oldSig is right, checked as a login from the address from (so guessing
// through it is throttled), and forgets every remembered check of the
// user. It returns the account as it now is.
func (a *Authenticator) ChangeSignature(ctx context.Context, name string, oldSig, newSig []byte, from netip.Addr) (*larder.User, error) {
	if err := validate(name, newSig); err != nil {
		return nil, err
	}
	u, err := a.Login(ctx, name, oldSig, from)
	if err != nil {
		return nil, err
	}
	v, err := a.hasher.Hash(ctx, newSig)
	if err != nil {
		return nil, err
	}
	if err := a.store.ReplaceVerifier(ctx, name, u.Verifier, v); err != nil {
		return nil, err
	}
	a.Forget(name)
	// The swap from u.Verifier succeeded, so the generation was u's.
	u.Verifier = v
	u.CredentialGen++
	return u, nil
}
