package auth

import (
	"sync/atomic"

	"github.com/larderfs/larder"
)

// Stats is a snapshot of what an Authenticator has done, for monitoring.
// Every field is read atomically, but not all at one instant.
type Stats struct {
	// Password checks that Login ran (the slow hash, or an imported fast
	// one), by result: the signature matched, it did not, a check against
	// the dummy hash for an unknown user, the hashing pool stayed full
	// until the request's deadline, or the stored hash could not be
	// checked (unreadable, too costly, made with an unknown pepper). A
	// login answered from the Cache runs none.
	ChecksOK, ChecksMismatch, ChecksDummy, ChecksBusy, ChecksFailed int64

	// Logins that the Throttle refused, by the limit that refused them
	// (ReasonAccountAddress, ReasonAddress), and those it delayed by the
	// per-account limit before their check.
	RefusedAccountAddress, RefusedAddress, Delayed int64

	// Stored hashes replaced on login by one made with the current policy,
	// and replacements that failed (the login succeeded anyway).
	Rehashes, RehashFailures int64

	// Logins of existing accounts that the Cache answered, and those it did
	// not, and the entries it holds (expired ones included until they are
	// dropped). All zero without a Cache.
	CacheHits, CacheMisses int64
	CacheEntries           int

	// The Hasher's pool: how many hashes it computes at once, and how many
	// it is computing now.
	HashSlots, HashSlotsBusy int
}

// Stats returns a snapshot of a's counters and of its cache and hashing
// pool. It takes no lock that a login holds for long: the cache's mutex
// for a moment, to count its entries.
func (a *Authenticator) Stats() Stats {
	c := &a.stats
	s := Stats{
		ChecksOK:              c.checksOK.Load(),
		ChecksMismatch:        c.checksMismatch.Load(),
		ChecksDummy:           c.checksDummy.Load(),
		ChecksBusy:            c.checksBusy.Load(),
		ChecksFailed:          c.checksFailed.Load(),
		RefusedAccountAddress: c.refusedAccountAddress.Load(),
		RefusedAddress:        c.refusedAddress.Load(),
		Delayed:               c.delayed.Load(),
		Rehashes:              c.rehashes.Load(),
		RehashFailures:        c.rehashFailures.Load(),
		HashSlots:             cap(*a.hasher.sem.Load()),
		HashSlotsBusy:         len(*a.hasher.sem.Load()),
	}
	if a.cache != nil {
		s.CacheHits, s.CacheMisses = a.cache.hits.Load(), a.cache.misses.Load()
		s.CacheEntries = a.cache.Len()
	}
	return s
}

// authCounters are an Authenticator's statistics: each event costs one
// atomic add.
type authCounters struct {
	checksOK, checksMismatch, checksDummy, checksBusy, checksFailed atomic.Int64
	refusedAccountAddress, refusedAddress, delayed                  atomic.Int64
	rehashes, rehashFailures                                        atomic.Int64
}

// throttled counts a decision of the Throttle that Login acted on.
func (c *authCounters) throttled(d ThrottleDecision) {
	switch {
	case d.Refused && d.Reason == ReasonAddress:
		c.refusedAddress.Add(1)
	case d.Refused:
		c.refusedAccountAddress.Add(1)
	case d.Delay > 0:
		c.delayed.Add(1)
	}
}

// checked counts a password check: against the dummy hash if dummy.
func (c *authCounters) checked(dummy, ok bool, err error) {
	switch {
	case err != nil && larder.ErrorCode(err) == larder.EUNAVAILABLE:
		c.checksBusy.Add(1)
	case err != nil:
		c.checksFailed.Add(1)
	case dummy:
		c.checksDummy.Add(1)
	case ok:
		c.checksOK.Add(1)
	default:
		c.checksMismatch.Add(1)
	}
}
