// Package auth registers and authenticates larder's users.
//
// Clients never send a password: they send a signature derived from it,
// SHA-256(password ‖ client salt), with every request. The server stores
// only argon2id(signature) with a random per-user salt, as a PHC string that
// records the algorithm and its parameters. Hashes are computed in a bounded
// pool (Hasher), and successful checks are remembered for a few minutes
// (Cache) so that the slow hash does not run on every request.
package auth

import (
	"context"
	"crypto/sha256"

	"github.com/larderfs/larder"
)

// SignatureSize is the length of a signature in bytes: a SHA-256 digest.
const SignatureSize = sha256.Size

// UserStore is the account storage that an Authenticator needs.
type UserStore interface {
	// CreateUser stores a new account and sets its ID and times; a taken
	// name is an error with code ECONFLICT.
	CreateUser(ctx context.Context, u *larder.User) error
	// UserByName returns an account; a missing one is an error with code
	// ENOTFOUND.
	UserByName(ctx context.Context, name string) (*larder.User, error)
}

// Authenticator registers users and checks their signatures. It is safe for
// concurrent use.
type Authenticator struct {
	store  UserStore
	hasher *Hasher
	cache  *Cache
}

// New returns an Authenticator over store that hashes with hasher and
// remembers successful logins in cache. A nil cache remembers nothing, so
// every login runs the slow hash.
func New(store UserStore, hasher *Hasher, cache *Cache) *Authenticator {
	return &Authenticator{store: store, hasher: hasher, cache: cache}
}

// Register creates the account name with signature sig and returns it. An
// invalid name or signature is an error with code EINVALID, a taken name one
// with code ECONFLICT; a full hashing pool gives EUNAVAILABLE.
func (a *Authenticator) Register(ctx context.Context, name string, sig []byte) (*larder.User, error) {
	if err := validate(name, sig); err != nil {
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

// Login returns the account name if sig is its signature. A missing account
// is an error with code ENOTFOUND, a wrong signature one with code
// EUNAUTHORIZED; a full hashing pool gives EUNAVAILABLE.
//
// The account is read from the store on every call, even when the check is
// cached: the lookup is cheap, and a change to the account made anywhere
// takes effect at once.
func (a *Authenticator) Login(ctx context.Context, name string, sig []byte) (*larder.User, error) {
	if err := validate(name, sig); err != nil {
		return nil, err
	}
	u, err := a.store.UserByName(ctx, name)
	if err != nil {
		return nil, err
	}
	if a.cache.Verified(u.Name, sig, u.Verifier) {
		return u, nil
	}
	ok, err := a.hasher.Verify(ctx, u.Verifier, sig)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, larder.Errorf(larder.EUNAUTHORIZED, "signature does not match for user %q", name)
	}
	a.cache.Remember(u.Name, sig, u.Verifier)
	return u, nil
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
