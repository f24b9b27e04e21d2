package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// A wrapped hash protects a weak stored hash without the password, as
// OWASP's Password Storage Cheat Sheet describes ("upgrading legacy
// hashes"): the old digest is hashed again with argon2id by the current
// policy, and only the result is kept. The signature is needed only to
// check it, never to make it, so "larder admin upgrade --wrap" can rewrap
// every account at once; each is unwrapped to a plain current hash at its
// next login, as NeedsRehash reports true for it.
//
//	$wrap$<B64(stub)>$argon2id$v=19$m=<m>,t=<t>,p=<p>[,keyid=<id>]$<salt>$<hash>
//
// The stub is the inner hash without its digest: the stored string without
// its last "$<digest>" field (for bcrypt, its first 29 characters), which
// keeps the algorithm, the parameters and the salt needed to recompute the
// digest from a signature. B64 is the PHC base64 (standard, no padding), so
// the stub's own '$' cannot be confused with the envelope's. The rest is an
// argon2id PHC string whose input is HMAC-SHA256(pepper keyid, digest), or
// the digest itself without a keyid. The digest is the stored hash's raw
// bytes: bcrypt's 23, PBKDF2's l (default 32), course-sha256's 32, and an
// argon2id hash's 32 (argon2id hashes with other output lengths cannot be
// wrapped). A wrapped hash never wraps another.

const (
	wrapPrefix = "$wrap$"
	// maxStubLen and maxWrappedLen bound the input of decodeWrapped; the
	// longest valid stub is well under the first.
	maxStubLen    = 256
	maxWrappedLen = 640
)

// Errors of Wrap for the hashes it leaves alone.
var (
	ErrAlreadyCurrent = errors.New("auth: stored hash already follows the current policy")
	ErrAlreadyWrapped = errors.New("auth: stored hash is already wrapped")
	// ErrStronger: an argon2id hash that costs more than the policy in
	// some parameter. Wrapping it would put it inside a weaker hash, and
	// have the next login replace it with one.
	ErrStronger = errors.New("auth: stored hash costs more than the policy in some parameter; wrapping would weaken it")
	// ErrOtherPepper: an argon2id hash by the policy's parameters with
	// another pepper than the current one. Wrapping it would add nothing
	// (it is peppered and as costly) and would keep its pepper in use
	// besides the current one; only a login moves it to the current
	// pepper.
	ErrOtherPepper = errors.New("auth: stored hash follows the policy with an older pepper; it moves to the current one at its next login")
	// ErrNoHash: the account has no hash for the course protocol (it logs
	// in over LNP/1 only), so there is nothing to wrap.
	ErrNoHash = errors.New("auth: the account has no hash for the course protocol")
)

// wrapped is a decoded wrapped hash.
type wrapped struct {
	inner innerHash // decoded from its stub: its stored digest is zero
	outer *phc
}

// decodeWrapped parses a wrapped hash strictly.
func decodeWrapped(s string) (*wrapped, error) {
	if len(s) > maxWrappedLen {
		return nil, fmt.Errorf("auth: wrapped hash is %d bytes long; the limit is %d", len(s), maxWrappedLen)
	}
	rest, ok := strings.CutPrefix(s, wrapPrefix)
	if !ok {
		return nil, errors.New("auth: not a wrapped hash")
	}
	enc, outer, ok := strings.Cut(rest, "$")
	if !ok {
		return nil, errors.New("auth: wrapped hash has no outer hash")
	}
	stub, err := decodeB64("wrapped inner hash", enc, 1, maxStubLen)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(string(stub), wrapPrefix) {
		return nil, errors.New("auth: wrapped hash wraps another")
	}
	w := new(wrapped)
	if w.inner, err = decodeInner(string(stub), false); err != nil {
		return nil, fmt.Errorf("auth: wrapped inner hash: %w", err)
	}
	if w.outer, err = decodePHC("$" + outer); err != nil {
		return nil, fmt.Errorf("auth: wrapped outer hash: %w", err)
	}
	return w, nil
}

func (w *wrapped) encode() string {
	return wrapPrefix + b64.EncodeToString([]byte(w.inner.stub())) + w.outer.encode()
}

func (w *wrapped) label() string { return "wrapped " + w.inner.label() + " in " + w.outer.label() }
func (w *wrapped) slow() bool    { return true }

func (w *wrapped) usable(h *Hasher) error {
	if err := w.inner.usable(h); err != nil {
		return err
	}
	return w.outer.usable(h)
}

// verify recomputes the inner digest from sig, then the outer hash from it.
func (w *wrapped) verify(h *Hasher, sig []byte) (bool, error) {
	d, err := w.inner.digest(h, sig)
	if err != nil {
		return false, err
	}
	return w.outer.verify(h, d)
}

// Wrap returns stored wrapped in argon2id by h's policy (current parameters
// and pepper), without the signature: see the format above. It wraps
// bcrypt, PBKDF2 and course-sha256 hashes, and argon2id hashes that cost
// less than h's policy, or as much without a pepper. It never makes a hash
// weaker: it returns ErrAlreadyCurrent for a hash that follows the policy,
// ErrStronger for an argon2id hash above the policy in some parameter,
// ErrOtherPepper for one by the policy with an older pepper,
// ErrAlreadyWrapped for a wrapped one, and an error with code
// EINTERNAL for one that is unreadable or that h could not check (too
// costly, or made with a pepper that h does not have), since the wrapped
// hash could not be checked either. If ctx ends while it waits for a slot
// in the pool, the error has code EUNAVAILABLE.
func (h *Hasher) Wrap(ctx context.Context, stored string) (string, error) {
	inner, err := h.wrappable(stored)
	if err != nil {
		return "", err
	}
	w := &wrapped{inner: inner, outer: h.newPHCWith(h.Params())}
	release, err := h.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	if w.outer.hash, err = w.outer.digest(h, inner.storedDigest()); err != nil {
		return "", unusable(err) // cannot happen: the current pepper is h's
	}
	return w.encode(), nil
}

// WrapCheck returns the error Wrap would return for stored without
// computing anything: nil if Wrap would wrap it.
func (h *Hasher) WrapCheck(stored string) error {
	_, err := h.wrappable(stored)
	return err
}

// wrappable decodes stored if Wrap may wrap it, and says why not otherwise.
func (h *Hasher) wrappable(stored string) (innerHash, error) {
	if stored == "" {
		return nil, ErrNoHash
	}
	v, err := decodeHash(stored)
	if err != nil {
		return nil, unreadable(err)
	}
	inner, ok := v.(innerHash)
	if !ok {
		return nil, ErrAlreadyWrapped
	}
	a, isArgon := v.(*phc)
	if isArgon {
		if h.isCurrent(a) {
			return nil, ErrAlreadyCurrent
		}
		if len(a.hash) != keyLen {
			return nil, unusable(fmt.Errorf("auth: an argon2id hash of %d bytes cannot be wrapped; the wrap format holds %d-byte ones", len(a.hash), keyLen))
		}
	}
	if isArgon {
		if p := h.Params(); a.params.Memory > p.Memory || a.params.Time > p.Time || a.params.Threads > p.Threads {
			return nil, ErrStronger
		}
	}
	if err := inner.usable(h); err != nil {
		return nil, unusable(err)
	}
	if isArgon && a.params == h.Params() && a.keyID != nil {
		return nil, ErrOtherPepper
	}
	return inner, nil
}

// Usable returns an error, with code EINTERNAL, if h could not check the
// stored hash: it is unreadable, asks for more work than h computes, or
// names a pepper that h's pepper file does not hold. A tool that stores a
// hash made elsewhere ("larder admin user import") calls it first, so that
// it never stores one that no server could check.
func (h *Hasher) Usable(stored string) error {
	v, err := decodeHash(stored)
	if err != nil {
		return unreadable(err)
	}
	if err := v.usable(h); err != nil {
		return unusable(err)
	}
	return nil
}

// IsWrapped reports whether stored is a wrapped hash, which Wrap leaves
// alone and the next login unwraps.
func IsWrapped(stored string) bool {
	v, err := decodeHash(stored)
	_, ok := v.(*wrapped)
	return err == nil && ok
}
