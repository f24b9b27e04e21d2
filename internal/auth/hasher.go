package auth

import (
	"context"
	"crypto/rand"
	"fmt"
	"runtime"
	"sync/atomic"

	"github.com/larderfs/larder"
	"golang.org/x/crypto/argon2"
)

// Limits on the cost of a stored hash that Verify will compute, unless the
// hasher's own parameters are higher. A corrupted or hostile row could ask
// for up to 4 TiB and 2³² passes, bcrypt cost 31 or 2³² PBKDF2 iterations;
// without a cap one such row would exhaust the memory or hold a pool slot
// for hours. Each is a few seconds of work at most on our machines.
const (
	verifyMemoryCap = 256 << 10 // KiB: 256 MiB
	verifyTimeCap   = 16
	// bcryptCostCap is 2¹⁶ rounds: about 3.7 s (cost 10 takes 58 ms).
	bcryptCostCap = 16
	// pbkdf2IterationsCap is about 2 s of PBKDF2-HMAC-SHA256.
	pbkdf2IterationsCap = 10_000_000
)

// Hasher makes and checks password hashes in a bounded pool: at most a
// fixed number of slow hashes are computed at once, each taking up to
// Params.Memory KiB, so a flood of logins queues instead of exhausting
// memory. It is safe for concurrent use.
//
// Its policy is its Params and the current pepper of its Peppers: Hash makes
// hashes by that policy, Verify accepts every supported scheme (doc.go), and
// NeedsRehash tells which stored hashes differ from the policy. SetParams
// changes the policy while it is in use.
type Hasher struct {
	policy  atomic.Pointer[policy]
	peppers atomic.Pointer[Peppers] // nil: new hashes have no pepper
	reload  pepperReload            // see ReloadPeppers
	// sem holds one token per hash in progress; SetConcurrency replaces
	// it, and a hash gives its token back to the pool it took it from.
	sem atomic.Pointer[chan struct{}]

	// key computes an argon2id key. It is argon2.IDKey, wrapped by the
	// package's tests to observe how many run at once.
	key func(secret, salt []byte, p Params, keyLen uint32) []byte
}

// DefaultConcurrency is the number of slow hashes a Hasher computes at once
// unless told otherwise: one fewer than the cores, and at least one. A
// flood of logins then leaves a core to the users already logged in,
// whose requests need no hash: on a 2-core machine, a user's p99 during a
// flood of wrong passwords measured 55 ms with two hashes at a time and
// 2.5 ms with one, for half the rate of checks (docs/BENCHMARKS.md).
func DefaultConcurrency() int { return max(1, runtime.NumCPU()-1) }

// NewHasher returns a Hasher that makes new hashes with p and the current
// pepper of peppers, and computes at most concurrency slow hashes at once;
// concurrency ≤ 0 means DefaultConcurrency().
//
// peppers may be nil only where there is no pepper file: tests, and tools
// that check or import hashes without one. Such a Hasher makes unpeppered
// hashes, and refuses (EINTERNAL) to check any hash that names a pepper.
// A server always passes its Peppers.
//
// NewHasher panics if p is invalid or peppers holds no pepper: the caller
// validates its configuration with Params.Validate first.
func NewHasher(p Params, peppers *Peppers, concurrency int) *Hasher {
	if err := p.Validate(); err != nil {
		panic(err)
	}
	if peppers != nil && len(peppers.list) == 0 {
		panic("auth: NewHasher: Peppers holds no pepper")
	}
	if concurrency <= 0 {
		concurrency = DefaultConcurrency()
	}
	h := &Hasher{key: argon2Key}
	h.SetConcurrency(concurrency)
	h.peppers.Store(peppers)
	h.policy.Store(newPolicy(p))
	return h
}

// policy is what a Hasher derives from its Params; it is replaced whole
// by SetParams, never changed, so that one operation reads one policy.
type policy struct {
	params    Params
	maxMemory uint32 // KiB; see verifyMemoryCap
	maxTime   uint32

	// dummy is a hash by the policy of nothing at all, for VerifyDummy:
	// a random "hash" costs as much to check as a real one, and matches
	// nothing. Its keyid is set at each use.
	dummy *phc
}

func newPolicy(p Params) *policy {
	d := &phc{params: p, salt: make([]byte, saltLen), hash: make([]byte, keyLen)}
	rand.Read(d.salt)
	rand.Read(d.hash)
	return &policy{
		params:    p,
		maxMemory: max(verifyMemoryCap, p.Memory),
		maxTime:   max(verifyTimeCap, p.Time),
		dummy:     d,
	}
}

// SetParams makes p h's parameters, for every hash made from now on (new
// hashes, rehashes at login, and the dummy hash of unknown names, which
// costs what p costs); a hash being computed keeps the parameters it began
// with. It returns an error, and changes nothing, if p is invalid.
func (h *Hasher) SetParams(p Params) error {
	if err := p.Validate(); err != nil {
		return err
	}
	h.policy.Store(newPolicy(p))
	return nil
}

func argon2Key(secret, salt []byte, p Params, keyLen uint32) []byte {
	return argon2.IDKey(secret, salt, p.Time, p.Memory, p.Threads, keyLen)
}

// Params returns the parameters with which h makes new hashes.
func (h *Hasher) Params() Params { return h.policy.Load().params }

// newPHCWith returns an argon2id hash with the parameters p, a fresh
// random salt and the current pepper, and a zero hash of the standard
// length for the caller to fill in.
func (h *Hasher) newPHCWith(p Params) *phc {
	salt := make([]byte, saltLen)
	rand.Read(salt) // never fails: since Go 1.24 it crashes the program instead
	v := &phc{params: p, salt: salt, hash: make([]byte, keyLen)}
	v.keyID = h.currentKeyID()
	return v
}

// currentKeyID returns the ID of the pepper new hashes use, after a reload
// if the pepper file changed; nil if h has no peppers.
func (h *Hasher) currentKeyID() []byte {
	h.refreshPeppers()
	if ps := h.peppers.Load(); ps != nil {
		return []byte(ps.Current().ID)
	}
	return nil
}

// isCurrent reports whether v is a hash that Hash could have made now.
func (h *Hasher) isCurrent(v *phc) bool {
	return h.matchesPolicy(v, string(h.currentKeyID()))
}

// matchesPolicy reports whether v has h's parameters, the pepper pepperID
// (none if "") and the lengths that Hash uses.
func (h *Hasher) matchesPolicy(v *phc, pepperID string) bool {
	return v.params == h.Params() && string(v.keyID) == pepperID &&
		len(v.salt) == saltLen && len(v.hash) == keyLen
}

// keptAtLogin reports whether a login leaves v alone under the pepper
// pepperID (none if ""): v has that pepper and the lengths that Hash uses,
// and is at least as strong as h's parameters in each (memory, passes,
// lanes). A hash stronger than the policy in some parameter is kept, so
// that a login under a lowered policy never weakens a hash.
func (h *Hasher) keptAtLogin(v *phc, pepperID string) bool {
	p := h.Params()
	return v.params.Memory >= p.Memory && v.params.Time >= p.Time && v.params.Threads >= p.Threads &&
		string(v.keyID) == pepperID && len(v.salt) == saltLen && len(v.hash) == keyLen
}

// rehashParams returns the parameters of the hash that replaces the stored
// one at a login: in each parameter the higher of h's and the stored
// argon2id hash's (for a wrapped hash, its outer hash's and its inner
// one's, if argon2id), so that the new hash is never weaker than the old
// in any parameter. They are h's for every other scheme.
func (h *Hasher) rehashParams(encoded string) Params {
	policy := h.Params()
	p := policy
	raise := func(a *phc) {
		p.Memory = max(p.Memory, a.params.Memory)
		p.Time = max(p.Time, a.params.Time)
		p.Threads = max(p.Threads, a.params.Threads)
	}
	v, err := decodeHash(encoded)
	if err != nil {
		return p
	}
	switch v := v.(type) {
	case *phc:
		raise(v)
	case *wrapped:
		raise(v.outer)
		if a, ok := v.inner.(*phc); ok {
			raise(a)
		}
	}
	if p.Validate() != nil {
		return policy // cannot happen: each of the two was valid
	}
	return p
}

// Rehash returns a new hash of sig, just verified against the stored hash
// encoded, to replace it: by h's policy (current pepper), with in each
// parameter the higher of h's and encoded's (see rehashParams). Errors as
// Hash's.
func (h *Hasher) Rehash(ctx context.Context, encoded string, sig []byte) (string, error) {
	return h.hashWith(ctx, sig, h.rehashParams(encoded))
}

// pepper returns the pepper that keyID names; nil names none.
func (h *Hasher) pepper(keyID []byte) (*Pepper, error) {
	if keyID == nil {
		return nil, nil
	}
	ps := h.peppers.Load()
	if ps == nil {
		return nil, fmt.Errorf("auth: stored hash was made with pepper %q, and this server has no pepper file", keyID)
	}
	p, ok := ps.Lookup(string(keyID))
	if !ok {
		// Made by another process that has read a newer pepper file (an
		// administrator's command after a rotation): read it too.
		h.refreshPeppers()
		ps = h.peppers.Load()
		p, ok = ps.Lookup(string(keyID))
	}
	if !ok {
		return nil, fmt.Errorf("auth: stored hash was made with pepper %q, which is not in this server's pepper file %s (it has %s)", keyID, ps.path, ps)
	}
	return &p, nil
}

// peppered returns the input of argon2id for secret under the pepper that
// keyID names: HMAC-SHA256(pepper, secret), or secret itself for none.
func (h *Hasher) peppered(keyID, secret []byte) ([]byte, error) {
	p, err := h.pepper(keyID)
	if err != nil || p == nil {
		return secret, err
	}
	return p.mac(secret), nil
}

// Hash returns a PHC string of an argon2id hash of sig by h's policy: a
// fresh random salt, h's parameters and, if h has peppers, HMAC-SHA256 of
// sig under the current pepper, whose ID is recorded as the keyid. If ctx
// ends while it waits for a slot in the pool, the error has code
// EUNAVAILABLE.
func (h *Hasher) Hash(ctx context.Context, sig []byte) (string, error) {
	return h.hashWith(ctx, sig, h.Params())
}

// hashWith is Hash with the parameters p.
func (h *Hasher) hashWith(ctx context.Context, sig []byte, p Params) (string, error) {
	v := h.newPHCWith(p)
	release, err := h.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	d, err := v.digest(h, sig)
	if err != nil {
		return "", err // cannot happen: the current pepper is h's
	}
	v.hash = d
	return v.encode(), nil
}

// Verify reports whether sig matches the stored hash encoded, of any
// supported scheme (doc.go). It uses the scheme and parameters recorded in
// encoded, not h's, so that hashes made before a change of policy still
// verify. An unreadable stored hash, one that asks for far more work than
// h allows or one made with a pepper that h does not have is an error with
// code EINTERNAL; if ctx ends while Verify waits for a slot in the pool,
// the error has code EUNAVAILABLE. A mismatch is not an error.
func (h *Hasher) Verify(ctx context.Context, encoded string, sig []byte) (bool, error) {
	v, err := decodeHash(encoded)
	if err != nil {
		return false, unreadable(err)
	}
	if err := v.usable(h); err != nil {
		return false, unusable(err)
	}
	return h.verify(ctx, v, sig)
}

// verify checks sig against v, which is usable, in the pool if v is slow.
func (h *Hasher) verify(ctx context.Context, v storedHash, sig []byte) (bool, error) {
	if v.slow() {
		release, err := h.acquire(ctx)
		if err != nil {
			return false, err
		}
		defer release()
	}
	ok, err := v.verify(h, sig)
	if err != nil {
		return false, unusable(err)
	}
	return ok, nil
}

// VerifyDummy does the work of Verify against a hash by h's policy that
// matches no signature, and reports false, or an error if ctx ends while
// it waits for a slot in the pool (code EUNAVAILABLE). A login for an
// unknown user calls it, so that it costs as much as one with a wrong
// signature and the time taken does not tell which names exist.
func (h *Hasher) VerifyDummy(ctx context.Context, sig []byte) (bool, error) {
	if _, err := h.verify(ctx, h.dummyHash(), sig); err != nil {
		return false, err
	}
	return false, nil
}

// dummyHash returns the policy's dummy hash under the current pepper,
// which may have changed since the policy was set (and the dummy's may
// have been retired).
func (h *Hasher) dummyHash() *phc {
	d := *h.policy.Load().dummy
	d.keyID = h.currentKeyID()
	return &d
}

// NeedsRehash reports whether the stored hash encoded is weaker than h's
// policy, so that the caller, having just verified the signature, should
// replace it with Rehash's: it is false for a plain argon2id hash with h's
// current pepper (or none if h has no peppers), the salt and output
// lengths that Hash uses, and in each parameter (memory, passes, lanes) at
// least h's. A hash stronger than the policy is kept: unlike PHP's
// password_needs_rehash, a policy lowered (say, for a smaller machine, or
// by a mistyped flag) never weakens a stored hash; it applies to new
// hashes only. Every other scheme, a wrapped hash and an unreadable string
// need a rehash.
func (h *Hasher) NeedsRehash(encoded string) bool {
	if encoded == "" {
		return false // no hash: nothing to rehash (LNP/1 only)
	}
	v, err := decodeHash(encoded)
	if err != nil {
		return true
	}
	a, ok := v.(*phc)
	return !ok || !h.keptAtLogin(a, string(h.currentKeyID()))
}

// acquire takes a slot of the pool, waiting for one until ctx ends, and
// returns the function that gives it back.
func (h *Hasher) acquire(ctx context.Context) (release func(), err error) {
	// Do not spend a slot on a caller that has already gone.
	if err := ctx.Err(); err != nil {
		return nil, busy(err)
	}
	sem := *h.sem.Load()
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, nil
	case <-ctx.Done():
		return nil, busy(ctx.Err())
	}
}

// SetConcurrency sets how many slow hashes h computes at once, n ≤ 0
// meaning DefaultConcurrency(), while h is in use (a server's reload): the
// hashes that start from then on share n slots; those in progress, and
// those already waiting for a slot, finish under the bound they began
// with, so that for a while both bounds may run at once.
func (h *Hasher) SetConcurrency(n int) {
	if n <= 0 {
		n = DefaultConcurrency()
	}
	sem := make(chan struct{}, n)
	h.sem.Store(&sem)
}

func busy(err error) error {
	return &larder.Error{
		Code:    larder.EUNAVAILABLE,
		Message: "server busy: too many password checks in progress, retry later",
		Err:     err,
	}
}

func unreadable(err error) error {
	return &larder.Error{Code: larder.EINTERNAL, Message: "stored password hash is unreadable", Err: err}
}

func unusable(err error) error {
	return &larder.Error{Code: larder.EINTERNAL, Message: "stored password hash is unusable", Err: err}
}
