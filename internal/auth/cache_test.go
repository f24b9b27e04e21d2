package auth

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// clock is a manual clock for the cache's expiry.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

func newTestCache(ttl time.Duration, max int) (*Cache, *clock) {
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := NewCache(ttl, max)
	c.now = clk.now
	return c, clk
}

var (
	sigA = courseSignature("a")
	sigB = courseSignature("b")
)

const verifierA = "$argon2id$v=19$m=64,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

func TestCacheDefaults(t *testing.T) {
	c := NewCache(0, -1)
	if c.ttl != DefaultCacheTTL || c.max != DefaultCacheEntries {
		t.Errorf("NewCache(0, -1) has ttl %v, max %d; want %v, %d", c.ttl, c.max, DefaultCacheTTL, DefaultCacheEntries)
	}
	if DefaultCacheTTL != 5*time.Minute || DefaultCacheEntries != 10000 {
		t.Errorf("defaults %v, %d; want 5m, 10000", DefaultCacheTTL, DefaultCacheEntries)
	}
}

func TestCacheHitAndMiss(t *testing.T) {
	c, _ := newTestCache(time.Minute, 10)
	if c.Verified("alice", sigA, verifierA) {
		t.Fatal("hit in an empty cache")
	}
	c.Remember("alice", sigA, verifierA)
	if !c.Verified("alice", sigA, verifierA) {
		t.Error("miss right after Remember")
	}
	for _, tc := range []struct {
		name     string
		user     string
		sig      []byte
		verifier string
	}{
		{"other signature", "alice", sigB, verifierA},
		{"other user", "Alice", sigA, verifierA},
		{"changed verifier", "alice", sigA, verifierA[:len(verifierA)-1] + "B"},
		{"truncated signature", "alice", sigA[:31], verifierA},
	} {
		if c.Verified(tc.user, tc.sig, tc.verifier) {
			t.Errorf("%s: hit, want a miss", tc.name)
		}
	}
}

// TestCacheKeyUnambiguous: moving bytes between fields changes the key.
func TestCacheKeyUnambiguous(t *testing.T) {
	c, _ := newTestCache(time.Minute, 10)
	c.Remember("ab", []byte("c"), "v")
	for _, tc := range []struct{ user, sig, verifier string }{
		{"a", "bc", "v"},
		{"abc", "", "v"},
		{"ab", "", "cv"},
		{"ab", "cv", ""},
	} {
		if c.Verified(tc.user, []byte(tc.sig), tc.verifier) {
			t.Errorf("(%q, %q, %q) hits the entry of (\"ab\", \"c\", \"v\")", tc.user, tc.sig, tc.verifier)
		}
	}
	// A different process key gives different keys.
	if c.key("ab", []byte("c"), "v") == NewCache(0, 0).key("ab", []byte("c"), "v") {
		t.Error("two caches derive the same key; the HMAC key is not random")
	}
}

func TestCacheExpiry(t *testing.T) {
	c, clk := newTestCache(time.Minute, 10)
	c.Remember("alice", sigA, verifierA)
	clk.advance(time.Minute - time.Nanosecond)
	if !c.Verified("alice", sigA, verifierA) {
		t.Error("miss just before the TTL")
	}
	clk.advance(time.Nanosecond)
	if c.Verified("alice", sigA, verifierA) {
		t.Error("hit at the TTL, want expired")
	}
	if n := c.Len(); n != 0 {
		t.Errorf("Len = %d after an expired lookup, want 0", n)
	}
}

// TestCacheHitDoesNotExtend: an entry used constantly still expires one TTL
// after the verification that made it.
func TestCacheHitDoesNotExtend(t *testing.T) {
	c, clk := newTestCache(time.Minute, 10)
	c.Remember("alice", sigA, verifierA)
	for range 5 {
		clk.advance(10 * time.Second)
		c.Verified("alice", sigA, verifierA)
	}
	clk.advance(10 * time.Second)
	if c.Verified("alice", sigA, verifierA) {
		t.Error("hit one TTL after Remember; hits must not extend an entry")
	}
}

func TestCacheLRUBound(t *testing.T) {
	c, clk := newTestCache(time.Hour, 3)
	for _, u := range []string{"a", "b", "c"} {
		c.Remember(u, sigA, verifierA)
		clk.advance(time.Second)
	}
	c.Verified("a", sigA, verifierA) // a is now more recent than b
	c.Remember("d", sigA, verifierA)
	if n := c.Len(); n != 3 {
		t.Errorf("Len = %d, want 3", n)
	}
	for u, want := range map[string]bool{"a": true, "b": false, "c": true, "d": true} {
		if got := c.Verified(u, sigA, verifierA); got != want {
			t.Errorf("after eviction, %s present = %v, want %v", u, got, want)
		}
	}
	for i := range 100 {
		c.Remember(fmt.Sprint("u", i), sigA, verifierA)
	}
	if n := c.Len(); n != 3 {
		t.Errorf("Len = %d after 100 more, want 3", n)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lru.Len() != 3 || c.byAge.Len() != 3 || len(c.byUser) != 3 {
		t.Errorf("indexes hold lru %d, byAge %d, users %d; want 3 each", c.lru.Len(), c.byAge.Len(), len(c.byUser))
	}
}

// TestCacheEvictsExpiredFirst: when full, an expired entry goes before the
// least recently used live one, even if it was used more recently.
func TestCacheEvictsExpiredFirst(t *testing.T) {
	c, clk := newTestCache(time.Minute, 3)
	c.Remember("old", sigA, verifierA)
	clk.advance(50 * time.Second)
	c.Remember("b", sigA, verifierA)
	c.Remember("c", sigA, verifierA)
	clk.advance(5 * time.Second)
	c.Verified("old", sigA, verifierA) // most recently used, and about to expire
	clk.advance(5 * time.Second)       // now old has expired; b is the LRU live entry
	c.Remember("d", sigA, verifierA)
	for u, want := range map[string]bool{"b": true, "c": true, "d": true} {
		if got := c.Verified(u, sigA, verifierA); got != want {
			t.Errorf("%s present = %v, want %v", u, got, want)
		}
	}
	if n := c.Len(); n != 3 {
		t.Errorf("Len = %d, want 3", n)
	}
}

func TestCacheForget(t *testing.T) {
	c, _ := newTestCache(time.Hour, 10)
	c.Remember("alice", sigA, verifierA)
	c.Remember("alice", sigB, verifierA) // two devices with two signatures
	c.Remember("alice", sigA, "older verifier")
	c.Remember("bob", sigA, verifierA)
	c.Forget("alice")
	c.Forget("nobody")
	if c.Verified("alice", sigA, verifierA) || c.Verified("alice", sigB, verifierA) {
		t.Error("hit for alice after Forget")
	}
	if !c.Verified("bob", sigA, verifierA) {
		t.Error("Forget(alice) dropped bob's entry")
	}
	if n := c.Len(); n != 1 {
		t.Errorf("Len = %d, want 1", n)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byUser["alice"]; ok || len(c.byUser) != 1 {
		t.Errorf("per-user index %v, want only bob", c.byUser)
	}
}

func TestCacheRememberTwice(t *testing.T) {
	c, clk := newTestCache(time.Minute, 10)
	c.Remember("alice", sigA, verifierA)
	clk.advance(50 * time.Second)
	c.Remember("alice", sigA, verifierA) // verified again: a fresh TTL
	clk.advance(50 * time.Second)
	if !c.Verified("alice", sigA, verifierA) {
		t.Error("miss after a second Remember renewed the entry")
	}
	if n := c.Len(); n != 1 {
		t.Errorf("Len = %d, want 1", n)
	}
}

func TestNilCache(t *testing.T) {
	var c *Cache
	c.Remember("alice", sigA, verifierA)
	if c.Verified("alice", sigA, verifierA) || c.Len() != 0 {
		t.Error("a nil cache remembered")
	}
	c.Forget("alice")
}

// TestCacheConcurrent exercises every method from many goroutines; run it
// with -race.
func TestCacheConcurrent(t *testing.T) {
	c := NewCache(time.Minute, 50)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				u := fmt.Sprint("u", (g*7+i)%80)
				switch i % 4 {
				case 0, 1:
					c.Remember(u, sigA, verifierA)
				case 2:
					c.Verified(u, sigA, verifierA)
				case 3:
					c.Forget(u)
				}
			}
		})
	}
	wg.Wait()
	if n := c.Len(); n > 50 {
		t.Errorf("Len = %d, want at most 50", n)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	users := 0
	for _, keys := range c.byUser {
		users += len(keys)
	}
	if c.lru.Len() != len(c.entries) || c.byAge.Len() != len(c.entries) || users != len(c.entries) {
		t.Errorf("indexes disagree: entries %d, lru %d, byAge %d, per-user %d", len(c.entries), c.lru.Len(), c.byAge.Len(), users)
	}
}

func BenchmarkCacheHit(b *testing.B) {
	c := NewCache(0, 0)
	c.Remember("alice", sigA, verifierA)
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !c.Verified("alice", sigA, verifierA) {
				b.Fatal("miss")
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if !c.Verified("alice", sigA, verifierA) {
					b.Fatal("miss")
				}
			}
		})
	})
}
