package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"runtime"

	"github.com/larderfs/larder"
	"golang.org/x/crypto/argon2"
)

// Limits on the cost of a stored hash that Verify will compute, unless the
// hasher's own parameters are higher. A corrupted or hostile row could ask
// for up to 4 TiB and 2³² passes; without a cap one such row would exhaust
// the memory or hold a pool slot for ever.
const (
	verifyMemoryCap = 256 << 10 // KiB: 256 MiB
	verifyTimeCap   = 16
)

// Hasher makes and checks argon2id hashes in a bounded pool: at most a fixed
// number of hashes are computed at once, each taking Params.Memory KiB, so a
// flood of logins queues instead of exhausting memory. It is safe for
// concurrent use.
type Hasher struct {
	params    Params
	sem       chan struct{} // one token per hash in progress
	maxMemory uint32        // KiB; see verifyMemoryCap
	maxTime   uint32

	// key computes an argon2id key. It is argon2.IDKey, wrapped by the
	// package's tests to observe how many run at once.
	key func(secret, salt []byte, p Params, keyLen uint32) []byte
}

// NewHasher returns a Hasher that makes new hashes with p and computes at
// most concurrency hashes at once; concurrency ≤ 0 means runtime.NumCPU().
// NewHasher panics if p is invalid: the caller validates its configuration
// with Params.Validate first.
func NewHasher(p Params, concurrency int) *Hasher {
	if err := p.Validate(); err != nil {
		panic(err)
	}
	if concurrency <= 0 {
		concurrency = runtime.NumCPU()
	}
	return &Hasher{
		params:    p,
		sem:       make(chan struct{}, concurrency),
		maxMemory: max(verifyMemoryCap, p.Memory),
		maxTime:   max(verifyTimeCap, p.Time),
		key:       argon2Key,
	}
}

func argon2Key(secret, salt []byte, p Params, keyLen uint32) []byte {
	return argon2.IDKey(secret, salt, p.Time, p.Memory, p.Threads, keyLen)
}

// Params returns the parameters with which h makes new hashes.
func (h *Hasher) Params() Params { return h.params }

// Hash returns a PHC string of an argon2id hash of secret, with a fresh
// random salt and h's parameters. If ctx ends while it waits for a slot in
// the pool, the error has code EUNAVAILABLE.
func (h *Hasher) Hash(ctx context.Context, secret []byte) (string, error) {
	salt := make([]byte, saltLen)
	rand.Read(salt) // never fails: since Go 1.24 it crashes the program instead
	key, err := h.derive(ctx, secret, salt, h.params, keyLen)
	if err != nil {
		return "", err
	}
	return (&phc{params: h.params, salt: salt, hash: key}).encode(), nil
}

// Verify reports whether secret matches the PHC string encoded. It uses the
// parameters recorded in encoded, not h's, so that hashes made before a
// change of parameters still verify. An unreadable or unsupported stored
// hash, or one that asks for far more work than h's own parameters, is an
// error with code EINTERNAL; if ctx ends while Verify waits for a slot in
// the pool, the error has code EUNAVAILABLE. A mismatch is not an error.
func (h *Hasher) Verify(ctx context.Context, encoded string, secret []byte) (bool, error) {
	stored, err := decodePHC(encoded)
	if err != nil {
		return false, &larder.Error{Code: larder.EINTERNAL, Message: "stored password hash is unreadable", Err: err}
	}
	if stored.keyID != nil {
		// A keyed (peppered) hash cannot be checked without its key; a
		// plain argon2id of the secret would just never match.
		return false, &larder.Error{Code: larder.EINTERNAL, Message: "stored password hash is unusable",
			Err: fmt.Errorf("auth: stored hash needs key %q, and this server has no keys", b64.EncodeToString(stored.keyID))}
	}
	if p := stored.params; p.Memory > h.maxMemory || p.Time > h.maxTime {
		return false, &larder.Error{Code: larder.EINTERNAL, Message: "stored password hash is unusable",
			Err: fmt.Errorf("auth: stored hash asks for %v; this server computes at most m=%d,t=%d", p, h.maxMemory, h.maxTime)}
	}
	key, err := h.derive(ctx, secret, stored.salt, stored.params, uint32(len(stored.hash)))
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(key, stored.hash) == 1, nil
}

// derive computes an argon2id key in the pool.
func (h *Hasher) derive(ctx context.Context, secret, salt []byte, p Params, n uint32) ([]byte, error) {
	// Do not spend a slot on a caller that has already gone.
	if err := ctx.Err(); err != nil {
		return nil, busy(err)
	}
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, busy(ctx.Err())
	}
	defer func() { <-h.sem }()
	return h.key(secret, salt, p, n), nil
}

func busy(err error) error {
	return &larder.Error{
		Code:    larder.EUNAVAILABLE,
		Message: "server busy: too many password checks in progress, retry later",
		Err:     err,
	}
}
