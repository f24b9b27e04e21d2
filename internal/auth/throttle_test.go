package auth

import (
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/larderfs/larder"
)

// newTestThrottle returns a Throttle with the limits of cfg on a manual
// clock (the clock of cache_test.go).
func newTestThrottle(cfg ThrottleConfig) (*Throttle, *clock) {
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	th := NewThrottle(cfg)
	th.now = clk.now
	th.epoch = clk.t
	return th, clk
}

var (
	addrA = netip.MustParseAddr("192.0.2.1")
	addrB = netip.MustParseAddr("198.51.100.7")
)

// addrN returns the n-th address of 10.0.0.0/8.
func addrN(n int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)})
}

func allowed() ThrottleDecision { return ThrottleDecision{} }

func refused(retry time.Duration, reason string) ThrottleDecision {
	return ThrottleDecision{Refused: true, RetryAfter: retry, Reason: reason}
}

func delayed(d time.Duration) ThrottleDecision { return ThrottleDecision{Delay: d} }

func wantCheck(t *testing.T, th *Throttle, account string, addr netip.Addr, want ThrottleDecision) {
	t.Helper()
	if got := th.Check(account, addr); got != want {
		t.Errorf("Check(%q, %v) = %+v, want %+v", account, addr, got, want)
	}
}

func failN(th *Throttle, account string, addr netip.Addr, n int) {
	for range n {
		th.Attempt(account, addr)
	}
}

// checkInvariants verifies that the indexes of every table agree and that
// no table is above its bound.
func checkInvariants(t *testing.T, th *Throttle) {
	t.Helper()
	th.mu.Lock()
	defer th.mu.Unlock()
	checkTable(t, "pairs", &th.pairs.entries)
	checkTable(t, "addrs", &th.addrs.entries)
	checkTable(t, "accounts", &th.accounts.entries)
	checkTable(t, "good", &th.good)
}

func checkTable[K comparable](t *testing.T, name string, tb *table[K]) {
	t.Helper()
	if len(tb.index) != len(tb.slots) || len(tb.slots) != len(tb.heap) {
		t.Fatalf("%s: index %d, slots %d, heap %d entries; want equal", name, len(tb.index), len(tb.slots), len(tb.heap))
	}
	if tb.max > 0 && tb.len() > tb.max {
		t.Errorf("%s: %d entries, want at most %d", name, tb.len(), tb.max)
	}
	for i, s := range tb.slots {
		if j, ok := tb.index[s.key]; !ok || int(j) != i {
			t.Fatalf("%s: slot %d is indexed at %d, %v", name, i, j, ok)
		}
		if int(tb.heap[s.at]) != i {
			t.Fatalf("%s: slot %d says heap position %d, which holds slot %d", name, i, s.at, tb.heap[s.at])
		}
	}
	for h := 1; h < len(tb.heap); h++ {
		if tb.less(h, (h-1)/2) {
			t.Fatalf("%s: heap position %d is before its parent", name, h)
		}
	}
}

func TestThrottleDefaults(t *testing.T) {
	d := DefaultThrottleConfig()
	want := ThrottleConfig{
		PairFailures: 5, PairRefill: 30 * time.Second,
		AddrFailures: 30, AddrRefill: 10 * time.Second,
		AccountFailures: 20, AccountRefill: 30 * time.Second, AccountDelay: time.Second,
		KnownGoodTTL: 7 * 24 * time.Hour,
		MaxPairs:     100000, MaxAddrs: 50000, MaxAccounts: 50000, MaxKnownGood: 50000,
	}
	if d != want {
		t.Errorf("DefaultThrottleConfig() = %+v, want %+v", d, want)
	}
	if got := (ThrottleConfig{}).withDefaults(); got != want {
		t.Errorf("zero config with defaults = %+v, want %+v", got, want)
	}
	partial := ThrottleConfig{PairFailures: 3, AddrRefill: time.Minute, MaxAccounts: -1}
	got := partial.withDefaults()
	wantPartial := want
	wantPartial.PairFailures, wantPartial.AddrRefill = 3, time.Minute
	if got != wantPartial {
		t.Errorf("%+v with defaults = %+v, want %+v", partial, got, wantPartial)
	}

	th := NewThrottle(ThrottleConfig{})
	for _, tc := range []struct {
		name                   string
		interval, slack, width int64
		max                    int
		b                      interface {
			params() (int64, int64, int64, int)
		}
	}{
		{"pairs", int64(30 * time.Second), int64(120 * time.Second), int64(150 * time.Second), 100000, &th.pairs},
		{"addrs", int64(10 * time.Second), int64(290 * time.Second), int64(300 * time.Second), 50000, &th.addrs},
		{"accounts", int64(30 * time.Second), int64(570 * time.Second), int64(600 * time.Second), 50000, &th.accounts},
	} {
		i, s, w, m := tc.b.params()
		if i != tc.interval || s != tc.slack || w != tc.width || m != tc.max {
			t.Errorf("%s: interval %d, slack %d, window %d, max %d; want %d, %d, %d, %d",
				tc.name, i, s, w, m, tc.interval, tc.slack, tc.width, tc.max)
		}
	}
	if th.delay != time.Second || th.goodTTL != int64(7*24*time.Hour) || th.good.max != 50000 {
		t.Errorf("delay %v, known-good TTL %v, max %d; want 1s, 168h, 50000", th.delay, time.Duration(th.goodTTL), th.good.max)
	}
}

func (b *buckets[K]) params() (interval, slack, window int64, max int) {
	return b.interval, b.slack, b.window, b.entries.max
}

// TestThrottleOff: negative values turn each mechanism off.
func TestThrottleOff(t *testing.T) {
	th, _ := newTestThrottle(ThrottleConfig{PairFailures: -1, AddrFailures: -1, AccountFailures: -1, KnownGoodTTL: -1})
	for i := range 100 {
		th.Attempt("alice", addrA)
		th.Attempt(fmt.Sprint("u", i), addrA)
		th.Attempt("alice", addrN(i))
	}
	th.Succeeded("alice", addrB)
	wantCheck(t, th, "alice", addrA, allowed())
	wantCheck(t, th, "bob", addrA, allowed())
	wantCheck(t, th, "alice", addrN(1000), allowed())
	checkInvariants(t, th)
	if n := th.pairs.entries.len() + th.addrs.entries.len() + th.accounts.entries.len() + th.good.len(); n != 0 {
		t.Errorf("%d entries with every limit off, want 0", n)
	}

	// A negative delay counts the account but does not delay it.
	th, _ = newTestThrottle(ThrottleConfig{AccountDelay: -1})
	for i := range 100 {
		th.Attempt("alice", addrN(i))
	}
	wantCheck(t, th, "alice", addrB, allowed())
}

// TestThrottlePairLimit follows one address guessing one account: five
// failures, then one attempt per 30 s, each waiting time rounded up.
func TestThrottlePairLimit(t *testing.T) {
	th, clk := newTestThrottle(ThrottleConfig{})
	for i, step := range []struct {
		advance time.Duration
		fail    int
		want    ThrottleDecision
	}{
		{0, 0, allowed()},
		{0, 4, allowed()},
		{0, 1, refused(30*time.Second, ReasonAccountAddress)},
		{0, 0, refused(30*time.Second, ReasonAccountAddress)}, // Check consumed nothing
		{29 * time.Second, 0, refused(time.Second, ReasonAccountAddress)},
		{999 * time.Millisecond, 0, refused(time.Second, ReasonAccountAddress)}, // 1 ms left
		{time.Millisecond, 0, allowed()},                                        // a token is back
		{0, 1, refused(30*time.Second, ReasonAccountAddress)},                   // and only one
		{30 * time.Second, 0, allowed()},
		{10 * time.Second, 1, refused(20*time.Second, ReasonAccountAddress)}, // a third of the next token had come back
		{150 * time.Second, 4, allowed()},                                    // full again after 5 × 30 s
		{0, 1, refused(30*time.Second, ReasonAccountAddress)},
		{0, 10, refused(30*time.Second, ReasonAccountAddress)}, // failures past zero tokens add no debt
	} {
		clk.advance(step.advance)
		failN(th, "alice", addrA, step.fail)
		if got := th.Check("alice", addrA); got != step.want {
			t.Errorf("step %d (+%v, %d failures): Check = %+v, want %+v", i, step.advance, step.fail, got, step.want)
		}
	}
}

func TestThrottleDecisionMessage(t *testing.T) {
	for _, tc := range []struct {
		d    ThrottleDecision
		want string
	}{
		{allowed(), ""},
		{delayed(time.Second), ""},
		{refused(30*time.Second, ReasonAccountAddress), "too many failed attempts, retry in 30 s"},
		{refused(time.Second, ReasonAccountAddress), "too many failed attempts, retry in 1 s"},
		{refused(5*time.Minute, ReasonAddress), "too many failed attempts from this address, retry in 300 s"},
	} {
		if got := tc.d.Message(); got != tc.want {
			t.Errorf("%+v.Message() = %q, want %q", tc.d, got, tc.want)
		}
		err := tc.d.Err()
		if tc.want == "" {
			if err != nil {
				t.Errorf("%+v.Err() = %v, want nil", tc.d, err)
			}
			continue
		}
		if code, msg := larder.ErrorCode(err), larder.ErrorMessage(err); code != larder.ETHROTTLED || msg != tc.want {
			t.Errorf("%+v.Err() has code %q, message %q; want %q, %q", tc.d, code, msg, larder.ETHROTTLED, tc.want)
		}
	}
}

func TestThrottleSucceededResetsPair(t *testing.T) {
	th, _ := newTestThrottle(ThrottleConfig{})
	failN(th, "alice", addrA, 5)
	wantCheck(t, th, "alice", addrA, refused(30*time.Second, ReasonAccountAddress))
	th.Succeeded("alice", addrA)
	wantCheck(t, th, "alice", addrA, allowed())
	if n := th.pairs.entries.len(); n != 0 {
		t.Errorf("%d pair entries after Succeeded, want 0", n)
	}
	failN(th, "alice", addrA, 4)
	wantCheck(t, th, "alice", addrA, allowed())
	th.Attempt("alice", addrA)
	wantCheck(t, th, "alice", addrA, refused(30*time.Second, ReasonAccountAddress))
}

// TestThrottleOtherAddressGetsIn: a refused address does not shut out the
// same account elsewhere, nor other accounts from that address.
func TestThrottleOtherAddressGetsIn(t *testing.T) {
	th, _ := newTestThrottle(ThrottleConfig{})
	failN(th, "alice", addrA, 10)
	wantCheck(t, th, "alice", addrA, refused(30*time.Second, ReasonAccountAddress))
	wantCheck(t, th, "alice", addrB, allowed())
	wantCheck(t, th, "bob", addrA, allowed())
}

// TestThrottleAddressLimit: an address that fails across many accounts is
// refused for all of them, and for accounts it never tried.
func TestThrottleAddressLimit(t *testing.T) {
	th, clk := newTestThrottle(ThrottleConfig{})
	for i := range 29 {
		th.Attempt(fmt.Sprint("u", i), addrA)
	}
	wantCheck(t, th, "somebody", addrA, allowed())
	th.Attempt("u29", addrA)
	for _, account := range []string{"u0", "u29", "somebody"} {
		wantCheck(t, th, account, addrA, refused(10*time.Second, ReasonAddress))
	}
	wantCheck(t, th, "u0", addrB, allowed())
	clk.advance(10 * time.Second)
	wantCheck(t, th, "somebody", addrA, allowed())

	// When both limits refuse, the longer wait wins.
	th, _ = newTestThrottle(ThrottleConfig{})
	failN(th, "alice", addrA, 5)
	for i := range 25 {
		th.Attempt(fmt.Sprint("u", i), addrA)
	}
	wantCheck(t, th, "alice", addrA, refused(30*time.Second, ReasonAccountAddress))
	wantCheck(t, th, "bob", addrA, refused(10*time.Second, ReasonAddress))
	th, _ = newTestThrottle(ThrottleConfig{AddrFailures: 5, AddrRefill: time.Minute})
	failN(th, "alice", addrA, 5)
	wantCheck(t, th, "alice", addrA, refused(time.Minute, ReasonAddress))
}

// TestThrottleAccountDelay: a guesser spread over many addresses gets the
// account's logins delayed, never refused; its owner, from an address that
// logged in lately, is not even delayed.
func TestThrottleAccountDelay(t *testing.T) {
	th, clk := newTestThrottle(ThrottleConfig{AccountDelay: 250 * time.Millisecond})
	home := netip.MustParseAddr("2001:db8:aa:1::10")
	th.Succeeded("alice", home)
	for i := range 19 {
		th.Attempt("alice", addrN(i))
	}
	wantCheck(t, th, "alice", addrB, allowed())
	th.Attempt("alice", addrN(19))
	wantCheck(t, th, "alice", addrB, delayed(250*time.Millisecond))
	wantCheck(t, th, "alice", home, allowed())
	wantCheck(t, th, "bob", addrB, allowed())
	for i := range 1000 {
		th.Attempt("alice", addrN(100+i))
	}
	wantCheck(t, th, "alice", addrB, delayed(250*time.Millisecond))
	wantCheck(t, th, "alice", addrN(100), delayed(250*time.Millisecond))
	wantCheck(t, th, "alice", home, allowed())

	// Known-good does not lift the pair limit: the owner's address is
	// not a free pass for whoever else uses it.
	failN(th, "alice", home, 5)
	wantCheck(t, th, "alice", home, refused(30*time.Second, ReasonAccountAddress))
	th.Succeeded("alice", home)

	// It lifts the address limit: a housemate stuffing other accounts
	// does not shut the owner out.
	for i := range 30 {
		th.Attempt(fmt.Sprint("u", i), home)
	}
	wantCheck(t, th, "carol", home, refused(10*time.Second, ReasonAddress))
	wantCheck(t, th, "alice", home, allowed())

	// A week without a login from home, and home is delayed like the rest.
	clk.advance(7*24*time.Hour - time.Nanosecond)
	for i := range 20 {
		th.Attempt("alice", addrN(2000+i))
	}
	wantCheck(t, th, "alice", home, allowed())
	clk.advance(time.Nanosecond)
	wantCheck(t, th, "alice", home, delayed(250*time.Millisecond))
}

func TestThrottleAddressKey(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"192.0.2.1", "192.0.2.1", true},
		{"192.0.2.1", "::ffff:192.0.2.1", true},
		{"192.0.2.1", "192.0.2.2", false},
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", true},
		{"2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"2001:db8:1:2::1", "2001:db9:1:2::1", false},
		{"fe80::1%eth0", "fe80::2%eth1", true},
		{"0.0.0.0", "::", false},
		{"::ffff:0.0.0.0", "::", false},
		{"::1", "", false},
		{"255.255.255.255", "", false},
		{"ffff:ffff:ffff:ffff::", "", false},
		{"", "", true},
	} {
		parse := func(s string) netip.Addr {
			if s == "" {
				return netip.Addr{}
			}
			return netip.MustParseAddr(s)
		}
		ka, kb := newAddrKey(parse(tc.a)), newAddrKey(parse(tc.b))
		if got := ka == kb; got != tc.same {
			t.Errorf("%q and %q share a key: %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}

	// The same, end to end.
	th, _ := newTestThrottle(ThrottleConfig{})
	v6 := netip.MustParseAddr("2001:db8:1:2::1")
	failN(th, "alice", v6, 5)
	failN(th, "alice", addrA, 5)
	for _, tc := range []struct {
		addr    string
		refused bool
	}{
		{"2001:db8:1:2::99", true},
		{"2001:db8:1:3::1", false},
		{"::ffff:192.0.2.1", true},
		{"192.0.2.2", false},
	} {
		if got := th.Check("alice", netip.MustParseAddr(tc.addr)).Refused; got != tc.refused {
			t.Errorf("Check(alice, %s).Refused = %v, want %v", tc.addr, got, tc.refused)
		}
	}
}

func TestThrottleAccountKey(t *testing.T) {
	long := "abcdefghijklmnopqrstuvwxyz" // past MaxUsernameLen: invalid, but must not break anything
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"ab", "abc", false},
		{"alice", "Alice", false},
		{"abcdefghijklmnop", "abcdefghijklmnopq", false},
		{long, long[:20], false},
		{"abcdefghijklmnopXYZ", "abcdefghijklmnopQRS", true}, // only invalid names collide
	} {
		if got := newPairKey(tc.a, addrA) == newPairKey(tc.b, addrA); got != tc.same {
			t.Errorf("%q and %q share a key: %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}

// TestThrottleEvictsRefilledFirst: a full table drops entries whose bucket
// is full again before any other, then the one that will be full soonest.
func TestThrottleEvictsRefilledFirst(t *testing.T) {
	th, clk := newTestThrottle(ThrottleConfig{MaxPairs: 4, AddrFailures: -1, AccountFailures: -1})
	has := func(account string) bool {
		th.mu.Lock()
		defer th.mu.Unlock()
		_, ok := th.pairs.entries.index[newPairKey(account, addrA)]
		return ok
	}
	th.Attempt("early", addrA) // full again at 30 s
	clk.advance(25 * time.Second)
	for _, u := range []string{"p2", "p3", "p4"} {
		failN(th, u, addrA, 5) // refused until 55 s, full again at 175 s
	}
	clk.advance(5 * time.Second)
	th.Attempt("p5", addrA) // full again at 60 s
	if has("early") {
		t.Error("the refilled entry was kept")
	}
	th.Attempt("p6", addrA) // the table is full of live entries: p5, closest to full, goes
	if has("p5") {
		t.Error("p5 kept, want it dropped: it is full again before p2-p4")
	}
	for _, u := range []string{"p2", "p3", "p4"} {
		wantCheck(t, th, u, addrA, refused(25*time.Second, ReasonAccountAddress))
	}
	th.Attempt("p6", addrA) // full again at 90 s, still before p2-p4
	th.Attempt("p7", addrA)
	if has("p6") || !has("p7") {
		t.Errorf("p6 kept %v, p7 kept %v; want false, true", has("p6"), has("p7"))
	}
	checkInvariants(t, th)
}

// TestThrottleFloodKeepsRefusedPair: a flood of new addresses, each failing
// once, cannot push out the counter of a refused pair.
func TestThrottleFloodKeepsRefusedPair(t *testing.T) {
	th, clk := newTestThrottle(ThrottleConfig{MaxPairs: 100, MaxAddrs: 100, MaxAccounts: 100})
	failN(th, "alice", addrA, 5)
	for i := range 10000 {
		th.Attempt(fmt.Sprint("u", i%300), addrN(i))
		if i%500 == 499 {
			clk.advance(time.Second)
		}
	}
	// 20 s later, 10 s are left of the 30 s.
	wantCheck(t, th, "alice", addrA, refused(10*time.Second, ReasonAccountAddress))
	checkInvariants(t, th)
}

// TestThrottleBounds pushes 200 000 distinct keys through the default
// tables: each stays within its bound, and the indexes agree.
func TestThrottleBounds(t *testing.T) {
	th, _ := newTestThrottle(ThrottleConfig{})
	const n = 200000
	for i := range n {
		account := fmt.Sprint("u", i%75000)
		th.Attempt(account, addrN(i))
		if i%2 == 0 {
			// Other accounts' logins, so that their refunds do not empty
			// the account table this test fills.
			th.Attempt(fmt.Sprint("g", i), addrN(i+1))
			th.Succeeded(fmt.Sprint("g", i), addrN(i+1))
		}
	}
	checkInvariants(t, th)
	th.mu.Lock()
	defer th.mu.Unlock()
	for _, tc := range []struct {
		name     string
		got, max int
	}{
		{"pairs", th.pairs.entries.len(), 100000},
		{"addrs", th.addrs.entries.len(), 50000},
		{"accounts", th.accounts.entries.len(), 50000},
		{"good", th.good.len(), 50000},
	} {
		if tc.got != tc.max {
			t.Errorf("%s: %d entries, want %d (full)", tc.name, tc.got, tc.max)
		}
	}
}

// TestThrottleRefilledEntriesGo: entries that carry no information are
// dropped when new ones come, so memory follows the attack, not history.
func TestThrottleRefilledEntriesGo(t *testing.T) {
	th, clk := newTestThrottle(ThrottleConfig{})
	for i := range 1000 {
		th.Attempt("alice", addrN(i))
	}
	clk.advance(10 * time.Minute) // every bucket is full again
	th.Attempt("bob", addrB)
	th.mu.Lock()
	defer th.mu.Unlock()
	for _, tc := range []struct {
		name string
		got  int
	}{
		{"pairs", th.pairs.entries.len()},
		{"addrs", th.addrs.entries.len()},
		{"accounts", th.accounts.entries.len()},
	} {
		if tc.got != 1 {
			t.Errorf("%s: %d entries, want 1", tc.name, tc.got)
		}
	}
}

// TestThrottleMemory measures the heap that each table takes when filled to
// its default bound, per entry and in all.
func TestThrottleMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("fills tables of 10⁵ entries")
	}
	d := DefaultThrottleConfig()
	var total uint64
	for _, tc := range []struct {
		name  string
		cfg   ThrottleConfig // with only the measured table on
		n     int
		fill  func(th *Throttle, i int)
		limit float64 // bytes per entry
	}{
		{"pair", ThrottleConfig{AddrFailures: -1, AccountFailures: -1, KnownGoodTTL: -1}, d.MaxPairs,
			func(th *Throttle, i int) { th.Attempt("alice", addrN(i)) }, 160},
		{"address", ThrottleConfig{PairFailures: -1, AccountFailures: -1, KnownGoodTTL: -1}, d.MaxAddrs,
			func(th *Throttle, i int) { th.Attempt("alice", addrN(i)) }, 120},
		{"account", ThrottleConfig{PairFailures: -1, AddrFailures: -1, KnownGoodTTL: -1}, d.MaxAccounts,
			func(th *Throttle, i int) { th.Attempt(fmt.Sprint("u", i), addrA) }, 120},
		{"known-good", ThrottleConfig{PairFailures: -1, AddrFailures: -1, AccountFailures: -1}, d.MaxKnownGood,
			func(th *Throttle, i int) { th.Succeeded("alice", addrN(i)) }, 160},
	} {
		th, _ := newTestThrottle(tc.cfg)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range tc.n {
			tc.fill(th, i)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(th)
		used := after.HeapAlloc - before.HeapAlloc
		total += used
		per := float64(used) / float64(tc.n)
		t.Logf("%s: %d entries, %.0f bytes each", tc.name, tc.n, per)
		if per > tc.limit {
			t.Errorf("%s: %.0f bytes per entry, want at most %.0f", tc.name, per, tc.limit)
		}
	}
	t.Logf("all tables full: %.1f MB", float64(total)/1e6)
}

func TestThrottleCheckDoesNotAllocate(t *testing.T) {
	th, _ := newTestThrottle(ThrottleConfig{})
	failN(th, "alice", addrA, 5)
	th.Succeeded("bob", addrB)
	for i := range 20 {
		th.Attempt("bob", addrN(i))
	}
	for _, tc := range []struct {
		account string
		addr    netip.Addr
	}{
		{"alice", addrA}, // refused
		{"bob", addrB},   // known-good
		{"bob", addrA},   // delayed
		{"carol", addrB}, // unknown
	} {
		if n := testing.AllocsPerRun(100, func() { th.Check(tc.account, tc.addr) }); n != 0 {
			t.Errorf("Check(%q, %v) allocates %v times, want 0", tc.account, tc.addr, n)
		}
	}
}

func TestNilThrottle(t *testing.T) {
	var th *Throttle
	th.Attempt("alice", addrA)
	th.Succeeded("alice", addrA)
	if got := th.Check("alice", addrA); got != allowed() {
		t.Errorf("nil Throttle: Check = %+v, want %+v", got, allowed())
	}
}

// TestThrottleConcurrent exercises every method from many goroutines on
// small tables; run it with -race.
func TestThrottleConcurrent(t *testing.T) {
	th := NewThrottle(ThrottleConfig{MaxPairs: 50, MaxAddrs: 30, MaxAccounts: 20, MaxKnownGood: 10})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				account, addr := fmt.Sprint("u", (g*7+i)%40), addrN((g+i)%60)
				switch i % 4 {
				case 0, 1:
					th.Attempt(account, addr)
				case 2:
					th.Check(account, addr)
				case 3:
					th.Succeeded(account, addr)
				}
			}
		})
	}
	wg.Wait()
	checkInvariants(t, th)
}

func BenchmarkThrottleCheck(b *testing.B) {
	th := NewThrottle(ThrottleConfig{})
	// Realistic tables: many entries, and the checked key in each.
	for i := range 50000 {
		th.Attempt(fmt.Sprint("u", i%20000), addrN(i))
	}
	failN(th, "alice", addrA, 3)
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if th.Check("alice", addrA).Refused {
				b.Fatal("refused")
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if th.Check("alice", addrA).Refused {
					b.Fatal("refused")
				}
			}
		})
	})
}

func BenchmarkThrottleFailed(b *testing.B) {
	b.Run("existing", func(b *testing.B) {
		th := NewThrottle(ThrottleConfig{})
		for i := range 50000 {
			th.Attempt(fmt.Sprint("u", i%20000), addrN(i))
		}
		b.ReportAllocs()
		for b.Loop() {
			th.Attempt("alice", addrA)
		}
	})
	b.Run("new-full", func(b *testing.B) {
		// Every call adds a pair, an address and an account to full
		// tables, so each evicts.
		th := NewThrottle(ThrottleConfig{})
		accounts := make([]string, 1<<16)
		for i := range accounts {
			accounts[i] = fmt.Sprint("u", i)
		}
		for i := range 200000 {
			th.Attempt(accounts[i%len(accounts)], addrN(i))
		}
		i := 200000
		b.ReportAllocs()
		for b.Loop() {
			th.Attempt(accounts[i%len(accounts)], addrN(i))
			i++
		}
	})
}

// TestThrottleAttemptCountsAtOnce: logins sent at the same moment by a pair
// with one token left get one guess, not one each, because Attempt counts
// the attempt in the same step as it lets it through.
func TestThrottleAttemptCountsAtOnce(t *testing.T) {
	th, _ := newTestThrottle(ThrottleConfig{})
	failN(th, "alice", addrA, 4)
	var through atomic.Int32
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if !th.Attempt("alice", addrA).Refused {
				through.Add(1)
			}
		})
	}
	wg.Wait()
	if got := through.Load(); got != 1 {
		t.Fatalf("%d of 10 simultaneous attempts went through, want 1", got)
	}
}

// TestThrottleGivesBack: a success or an abandoned attempt costs nothing.
func TestThrottleGivesBack(t *testing.T) {
	th, _ := newTestThrottle(ThrottleConfig{})
	for range 50 {
		if d := th.Attempt("alice", addrA); d.Refused {
			t.Fatalf("attempt refused after abandoned ones: %+v", d)
		}
		th.Abandoned("alice", addrA)
	}
	for range 50 {
		th.Attempt("bob", addrB)
		th.Succeeded("bob", addrB)
	}
	wantCheck(t, th, "alice", addrA, ThrottleDecision{})
	wantCheck(t, th, "bob", addrB, ThrottleDecision{})
	th.mu.Lock()
	defer th.mu.Unlock()
	if n := th.addrs.entries.len() + th.accounts.entries.len() + th.pairs.entries.len(); n != 0 {
		t.Fatalf("%d bucket entries left after attempts that all gave back, want 0", n)
	}
}
