package auth

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/larderfs/larder"
)

// ThrottleConfig sets the limits of a Throttle. Each limit is a token bucket
// of failed logins: it holds Failures tokens, each failure takes one, and
// one token comes back every Refill. A zero field means the value of
// DefaultThrottleConfig.
type ThrottleConfig struct {
	// PairFailures is how many failed logins one address may make against
	// one account before that address is refused for that account; after
	// that it may try once per PairRefill. A negative value turns the limit
	// off. Default 5, every 30 s: a typing owner never meets it, a guesser
	// gets 5 + 120 tries an hour.
	PairFailures int
	PairRefill   time.Duration

	// AddrFailures is how many failed logins one address may make across
	// all accounts before it is refused for every account (credential
	// stuffing); after that it may try once per AddrRefill. A negative
	// value turns the limit off. Default 30, every 10 s: higher than
	// PairFailures so that one shared address (a NAT, an office) with a
	// few clumsy users is not shut out, and 360 tries an hour at most.
	AddrFailures int
	AddrRefill   time.Duration

	// AccountFailures is how many failed logins one account may see from
	// all addresses together before its logins are delayed by AccountDelay
	// (a guesser spread over many addresses); the account is never refused,
	// so that its owner still gets in. One token comes back per
	// AccountRefill. A negative value turns the limit off. Default 20, every
	// 30 s, delayed by 1 s: the delay costs an owner one second and a
	// guesser one second per try and connection.
	AccountFailures int
	AccountRefill   time.Duration
	AccountDelay    time.Duration

	// KnownGoodTTL is how long an (account, address) pair that has logged
	// in successfully stays exempt from the per-address refusal and the
	// per-account delay; it still meets the per-pair limit. A negative
	// value turns the exemption off. Default 7 days, so an owner who logs
	// in weekly from home is never delayed by a guesser elsewhere.
	KnownGoodTTL time.Duration

	// MaxPairs, MaxAddrs, MaxAccounts and MaxKnownGood bound the number of
	// entries of each table. Defaults 100 000, 50 000, 50 000 and 50 000:
	// 25 MB when all are full (see Throttle).
	MaxPairs     int
	MaxAddrs     int
	MaxAccounts  int
	MaxKnownGood int
}

// DefaultThrottleConfig returns the default limits; the fields of
// ThrottleConfig say why each was chosen.
func DefaultThrottleConfig() ThrottleConfig {
	return ThrottleConfig{
		PairFailures:    5,
		PairRefill:      30 * time.Second,
		AddrFailures:    30,
		AddrRefill:      10 * time.Second,
		AccountFailures: 20,
		AccountRefill:   30 * time.Second,
		AccountDelay:    time.Second,
		KnownGoodTTL:    7 * 24 * time.Hour,
		MaxPairs:        100000,
		MaxAddrs:        50000,
		MaxAccounts:     50000,
		MaxKnownGood:    50000,
	}
}

// withDefaults returns c with every zero field set to its default.
func (c ThrottleConfig) withDefaults() ThrottleConfig {
	d := DefaultThrottleConfig()
	def := func(v *int, dv int) {
		if *v == 0 {
			*v = dv
		}
	}
	defPositive := func(v *int, dv int) {
		if *v <= 0 {
			*v = dv
		}
	}
	defDuration := func(v *time.Duration, dv time.Duration) {
		if *v <= 0 {
			*v = dv
		}
	}
	def(&c.PairFailures, d.PairFailures)
	def(&c.AddrFailures, d.AddrFailures)
	def(&c.AccountFailures, d.AccountFailures)
	defDuration(&c.PairRefill, d.PairRefill)
	defDuration(&c.AddrRefill, d.AddrRefill)
	defDuration(&c.AccountRefill, d.AccountRefill)
	if c.AccountDelay == 0 {
		c.AccountDelay = d.AccountDelay
	}
	if c.KnownGoodTTL == 0 {
		c.KnownGoodTTL = d.KnownGoodTTL
	}
	defPositive(&c.MaxPairs, d.MaxPairs)
	defPositive(&c.MaxAddrs, d.MaxAddrs)
	defPositive(&c.MaxAccounts, d.MaxAccounts)
	defPositive(&c.MaxKnownGood, d.MaxKnownGood)
	return c
}

// Reasons of a refusal, in ThrottleDecision.Reason.
const (
	ReasonAccountAddress = "account and address" // this address failed too often for this account
	ReasonAddress        = "address"             // this address failed too often across accounts
)

// ThrottleDecision is what Throttle.Check says about a login attempt.
type ThrottleDecision struct {
	// Refused means the attempt must be answered at once with Err, without
	// computing the slow hash.
	Refused bool
	// RetryAfter is, for a refusal, the wait until an attempt will be
	// allowed, rounded up to whole seconds.
	RetryAfter time.Duration
	// Reason is, for a refusal, ReasonAccountAddress or ReasonAddress: the
	// limit that imposes the longer wait.
	Reason string
	// Delay is, for an allowed attempt, how long to wait before checking
	// the password: the account is under attack from many addresses.
	Delay time.Duration
}

// Message returns the text to show a refused client, such as "too many
// failed attempts, retry in 30 s", or "" if d is not a refusal.
func (d ThrottleDecision) Message() string {
	if !d.Refused {
		return ""
	}
	secs := int64(d.RetryAfter / time.Second)
	if d.Reason == ReasonAddress {
		return fmt.Sprintf("too many failed attempts from this address, retry in %d s", secs)
	}
	return fmt.Sprintf("too many failed attempts, retry in %d s", secs)
}

// Err returns, for a refusal, an error with code ETHROTTLED and Message as
// its text, and nil otherwise.
func (d ThrottleDecision) Err() error {
	if !d.Refused {
		return nil
	}
	return &larder.Error{Code: larder.ETHROTTLED, Message: d.Message()}
}

// Throttle slows down password guessing without locking out an account's
// owner. It counts failed logins in three token buckets: per (account,
// address) pair, per address and per account (see ThrottleConfig). The
// first two refuse the attempt quickly; the per-account one only delays it,
// since refusing it would let anyone lock an owner out by failing on
// purpose. IPv4 addresses are counted one by one, IPv6 addresses by /64
// prefix (one subscriber usually holds a whole /64); an IPv4-mapped IPv6
// address counts as its IPv4 address. The invalid (zero) netip.Addr, which
// a caller without a network address would pass, counts as one address.
//
// The login path calls Attempt before the slow hash. An attempt that may
// go ahead is counted as a failure at once, in the same step, so that ten
// logins sent at the same moment by a pair with one token left get one
// guess, not ten; then Succeeded gives the tokens back, as does Abandoned
// for an attempt that failed for the server's reasons, not the guess's.
// Check only looks. All methods take one mutex for a few map operations.
//
// Memory is bounded: each table holds at most its Max entries, of about
// 120 bytes for a pair or a known-good pair and 70 bytes for an address or
// an account (TestThrottleMemory). An entry that carries no information (a
// bucket full again, an expired known-good mark) is dropped when a new
// entry is added. When a table is full of live entries, the entry that
// will carry no information soonest is dropped: the bucket that will be
// full first, which among buckets with as many failures is the least
// recently failed, or the known-good pair that logged in longest ago. This
// is not plain LRU, on purpose: a flood of new addresses, each failing
// once, pushes out other entries with one failure, not the counters of an
// address that is being refused, which LRU would drop first. What a flood
// can do is push out fresh entries of other addresses, which then start
// again with a full bucket; each address still has its own budget, and the
// per-account bucket needs one entry per account, not per address. Finding
// that entry costs O(log n) in Failed and Succeeded; Check costs O(1). The
// maps keep the capacity of their largest size.
//
// A nil *Throttle allows everything.
type Throttle struct {
	delay   time.Duration
	goodTTL int64 // nanoseconds; 0 means no known-good pairs

	epoch time.Time        // origin of the int64 times below
	now   func() time.Time // time.Now; tests replace it

	mu       sync.Mutex
	pairs    buckets[pairKey]
	addrs    buckets[addrKey]
	accounts buckets[accountKey]
	good     table[pairKey] // until: expiry of the known-good mark
}

// SetLimits changes the throttle's limits and delay to cfg's (zero
// fields take their defaults), as a configuration reload does; the
// failures counted so far are kept, and the tables' sizes stay.
func (t *Throttle) SetLimits(cfg ThrottleConfig) {
	cfg = cfg.withDefaults()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.delay = max(cfg.AccountDelay, 0)
	t.pairs.setLimit(cfg.PairFailures, cfg.PairRefill)
	t.addrs.setLimit(cfg.AddrFailures, cfg.AddrRefill)
	t.accounts.setLimit(cfg.AccountFailures, cfg.AccountRefill)
}

// NewThrottle returns a Throttle with the limits of cfg, in which zero
// fields take their defaults.
func NewThrottle(cfg ThrottleConfig) *Throttle {
	cfg = cfg.withDefaults()
	t := &Throttle{
		delay: max(cfg.AccountDelay, 0),
		epoch: time.Now(),
		now:   time.Now,
	}
	t.pairs.init(cfg.PairFailures, cfg.PairRefill, cfg.MaxPairs)
	t.addrs.init(cfg.AddrFailures, cfg.AddrRefill, cfg.MaxAddrs)
	t.accounts.init(cfg.AccountFailures, cfg.AccountRefill, cfg.MaxAccounts)
	if cfg.KnownGoodTTL > 0 {
		t.goodTTL = int64(min(cfg.KnownGoodTTL, maxWindow))
		t.good.init(cfg.MaxKnownGood)
	}
	return t
}

// clock returns the current time in nanoseconds since t.epoch. time.Sub
// uses the monotonic clock, so a change of the wall clock neither frees nor
// blocks anyone.
func (t *Throttle) clock() int64 { return int64(t.now().Sub(t.epoch)) }

// Check reports whether a login to account from addr may go ahead, and
// after what delay, without counting anything.
func (t *Throttle) Check(account string, addr netip.Addr) ThrottleDecision {
	if t == nil {
		return ThrottleDecision{}
	}
	k := newPairKey(account, addr)
	now := t.clock()
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.decide(k, now)
}

// Attempt decides as Check does and, if the login may go ahead, counts it
// as a failure at once: Succeeded or Abandoned give the tokens back.
func (t *Throttle) Attempt(account string, addr netip.Addr) ThrottleDecision {
	if t == nil {
		return ThrottleDecision{}
	}
	k := newPairKey(account, addr)
	now := t.clock()
	t.mu.Lock()
	defer t.mu.Unlock()
	d := t.decide(k, now)
	if !d.Refused {
		t.pairs.take(k, now)
		t.addrs.take(k.addr, now)
		t.accounts.take(k.account, now)
	}
	return d
}

// decide is Check with t.mu held.
func (t *Throttle) decide(k pairKey, now int64) ThrottleDecision {
	// A pair that has logged in lately is its owner's: it skips the address
	// limit, so another user of a shared address does not shut it out, and
	// the account delay; the pair limit still holds. Looked up only when
	// it matters: usually nothing is wrong.
	good := func() bool { return t.goodTTL > 0 && t.good.live(k, now) }
	var d ThrottleDecision
	if w := t.pairs.wait(k, now); w > 0 {
		d = ThrottleDecision{Refused: true, RetryAfter: w, Reason: ReasonAccountAddress}
	}
	if w := t.addrs.wait(k.addr, now); w > d.RetryAfter && !good() {
		d = ThrottleDecision{Refused: true, RetryAfter: w, Reason: ReasonAddress}
	}
	if d.Refused {
		// Rounded up, so that a client that waits as told finds a token.
		d.RetryAfter = (d.RetryAfter + time.Second - 1).Truncate(time.Second)
		return d
	}
	if t.accounts.wait(k.account, now) > 0 && !good() {
		d.Delay = t.delay
	}
	return d
}

// Abandoned gives back the tokens of an attempt that ended for the
// server's reasons (a busy pool, a broken store), which say nothing about
// the guess.
func (t *Throttle) Abandoned(account string, addr netip.Addr) {
	if t == nil {
		return
	}
	k := newPairKey(account, addr)
	now := t.clock()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pairs.give(k, now)
	t.addrs.give(k.addr, now)
	t.accounts.give(k.account, now)
}

// Succeeded records a successful login to account from addr: the attempt
// is no longer counted, the pair's count starts again, and the pair is
// known-good for KnownGoodTTL. The address's and account's earlier
// failures stay: a guesser that finds one password does not get a fresh
// budget for the others, nor clear the account's.
func (t *Throttle) Succeeded(account string, addr netip.Addr) {
	if t == nil {
		return
	}
	k := newPairKey(account, addr)
	now := t.clock()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pairs.entries.remove(k)
	t.addrs.give(k.addr, now)
	t.accounts.give(k.account, now)
	if t.goodTTL > 0 {
		t.good.set(k, now+t.goodTTL, now)
	}
}

// Keys. An account name has at most larder.MaxUsernameLen bytes; a longer
// one (invalid, rejected later) is keyed by its first bytes and its length.

type accountKey struct {
	name [larder.MaxUsernameLen]byte
	n    uint8
}

type addrKey [16]byte

type pairKey struct {
	account accountKey
	addr    addrKey
}

func newPairKey(account string, addr netip.Addr) pairKey {
	var k pairKey
	copy(k.account.name[:], account)
	k.account.n = uint8(min(len(account), 255))
	k.addr = newAddrKey(addr)
	return k
}

// newAddrKey returns the key of addr: an IPv4 address in its IPv4-mapped
// form (bytes 0-9 zero), an IPv6 one reduced to its /64 prefix (bytes 8-15
// zero), the invalid address all ones; no two kinds can meet. The zone is
// dropped.
func newAddrKey(addr netip.Addr) addrKey {
	addr = addr.Unmap()
	if !addr.IsValid() {
		var k addrKey
		for i := range k {
			k[i] = 0xff
		}
		return k
	}
	k := addrKey(addr.As16())
	if addr.Is6() {
		clear(k[8:])
	}
	return k
}

// maxWindow caps Failures × Refill so that times stay far from overflow.
const maxWindow = 100 * 365 * 24 * time.Hour

// buckets is a bounded table of token buckets that share one size and
// refill rate. A bucket is stored as the time at which it will be full
// again (GCRA): one int64, and a bucket without an entry is full.
type buckets[K comparable] struct {
	off      bool  // the limit is turned off
	interval int64 // nanoseconds per token
	slack    int64 // (burst-1) × interval: while until-now ≤ slack, a token is left
	window   int64 // burst × interval: until-now never exceeds it (no debt below zero tokens)
	entries  table[K]
}

func (b *buckets[K]) init(burst int, refill time.Duration, maxEntries int) {
	b.setLimit(burst, refill)
	b.entries.init(maxEntries)
}

// setLimit sets the buckets' size and refill rate; a negative burst turns
// them off. The buckets keep what they hold: a bucket is the time it will
// be full, which the new rate reads as fewer or more tokens.
func (b *buckets[K]) setLimit(burst int, refill time.Duration) {
	b.off = burst < 0
	if b.off {
		return
	}
	refill = min(refill, maxWindow)
	burst = max(1, min(burst, int(maxWindow/refill)))
	b.interval = int64(refill)
	b.window = int64(burst) * b.interval
	b.slack = b.window - b.interval
}

// wait returns how long until the bucket of k holds a token, or 0 if it
// holds one now.
func (b *buckets[K]) wait(k K, now int64) time.Duration {
	if b.off {
		return 0
	}
	until, ok := b.entries.get(k)
	if !ok {
		return 0
	}
	return time.Duration(max(until-now-b.slack, 0))
}

// take removes a token from the bucket of k; a bucket with less than one
// token is emptied, and never owes more.
func (b *buckets[K]) take(k K, now int64) {
	if b.off {
		return
	}
	until, ok := b.entries.get(k)
	if !ok || until < now {
		until = now
	}
	b.entries.set(k, min(until+b.interval, now+b.window), now)
}

// give puts back a token that take removed; a bucket that is full again
// carries no information and is dropped.
func (b *buckets[K]) give(k K, now int64) {
	if b.off {
		return
	}
	until, ok := b.entries.get(k)
	if !ok {
		return
	}
	if until -= b.interval; until <= now {
		b.entries.remove(k)
		return
	}
	b.entries.set(k, until, now)
}

// table maps keys to a time, until, after which the entry carries no
// information. It holds at most max entries; a min-heap on until finds the
// entry to drop in O(log n), and slots hold the entries at stable
// positions, so a heap move never touches the map.
type table[K comparable] struct {
	max   int
	index map[K]int32 // key → position in slots
	slots []slot[K]
	heap  []int32 // positions in slots, ordered by until
}

type slot[K comparable] struct {
	until int64 // nanoseconds since Throttle.epoch
	at    int32 // position in heap
	key   K
}

func (tb *table[K]) init(maxEntries int) {
	tb.max = min(maxEntries, 1<<31-1)
	tb.index = make(map[K]int32)
}

func (tb *table[K]) len() int { return len(tb.heap) }

func (tb *table[K]) get(k K) (until int64, ok bool) {
	i, ok := tb.index[k]
	if !ok {
		return 0, false
	}
	return tb.slots[i].until, true
}

// live reports whether k has an entry that has not expired.
func (tb *table[K]) live(k K, now int64) bool {
	until, ok := tb.get(k)
	return ok && until > now
}

// set gives k the time until, adding k if needed. Before adding, it drops
// the entries that have expired and, if the table is still full, the one
// that expires first.
func (tb *table[K]) set(k K, until, now int64) {
	if i, ok := tb.index[k]; ok {
		tb.slots[i].until = until
		tb.fix(int(tb.slots[i].at))
		return
	}
	for len(tb.heap) > 0 && (len(tb.heap) >= tb.max || tb.slots[tb.heap[0]].until <= now) {
		tb.removeAt(0)
	}
	i, h := int32(len(tb.slots)), int32(len(tb.heap))
	tb.slots = append(tb.slots, slot[K]{until: until, at: h, key: k})
	tb.heap = append(tb.heap, i)
	tb.index[k] = i
	tb.up(int(h))
}

func (tb *table[K]) remove(k K) {
	if i, ok := tb.index[k]; ok {
		tb.removeAt(int(tb.slots[i].at))
	}
}

// removeAt drops the entry at heap position h.
func (tb *table[K]) removeAt(h int) {
	i := tb.heap[h]
	last := len(tb.heap) - 1
	tb.swap(h, last)
	tb.heap = tb.heap[:last]
	if h < last {
		tb.fix(h)
	}
	// Fill the hole in slots with the last slot.
	delete(tb.index, tb.slots[i].key)
	if j := int32(len(tb.slots) - 1); i != j {
		moved := tb.slots[j]
		tb.slots[i] = moved
		tb.index[moved.key] = i
		tb.heap[moved.at] = i
	}
	tb.slots = tb.slots[:len(tb.slots)-1]
}

func (tb *table[K]) less(a, b int) bool {
	return tb.slots[tb.heap[a]].until < tb.slots[tb.heap[b]].until
}

func (tb *table[K]) swap(a, b int) {
	tb.heap[a], tb.heap[b] = tb.heap[b], tb.heap[a]
	tb.slots[tb.heap[a]].at = int32(a)
	tb.slots[tb.heap[b]].at = int32(b)
}

// fix restores the heap order after the until at position h changed.
func (tb *table[K]) fix(h int) {
	if !tb.down(h) {
		tb.up(h)
	}
}

func (tb *table[K]) up(h int) {
	for h > 0 {
		parent := (h - 1) / 2
		if !tb.less(h, parent) {
			return
		}
		tb.swap(h, parent)
		h = parent
	}
}

// down moves the entry at h towards the leaves and reports whether it moved.
func (tb *table[K]) down(h int) bool {
	start, n := h, len(tb.heap)
	for {
		c := 2*h + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && tb.less(r, c) {
			c = r
		}
		if !tb.less(c, h) {
			break
		}
		tb.swap(h, c)
		h = c
	}
	return h > start
}
