package auth

import (
	"container/list"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of NewCache.
const (
	DefaultCacheTTL     = 5 * time.Minute
	DefaultCacheEntries = 10000
)

// Cache remembers successful verifications for a while, so that a client,
// which sends its signature with every request, pays for the slow hash once
// per TTL rather than once per request. It is safe for concurrent use.
//
// An entry is keyed by an HMAC, under a random per-process key, of the
// username, the signature and the stored verifier. Because the stored
// verifier is part of the key, any change to an account's hash, made here
// or by another process sharing the database, makes the old entries
// unreachable at once. The table holds no signature: the key cannot be
// attacked offline without the HMAC key, which never leaves memory.
//
// A nil *Cache is valid and remembers nothing.
type Cache struct {
	ttl time.Duration
	max int
	now func() time.Time // time.Now; tests replace it

	macs sync.Pool // of *macState

	hits, misses atomic.Int64 // for Authenticator.Stats

	mu      sync.Mutex
	entries map[cacheKey]*cacheEntry
	byUser  map[string]map[cacheKey]struct{}
	lru     list.List // of *cacheEntry, most recently used first
	byAge   list.List // of *cacheEntry, earliest expiry first
}

type cacheKey [sha256.Size]byte

type cacheEntry struct {
	key     cacheKey
	user    string
	expires time.Time
	lruElem *list.Element
	ageElem *list.Element
}

type macState struct {
	mac hash.Hash
	buf []byte
}

// NewCache returns a Cache whose entries live for ttl and which holds at
// most maxEntries of them. ttl ≤ 0 means DefaultCacheTTL, maxEntries ≤ 0
// DefaultCacheEntries.
func NewCache(ttl time.Duration, maxEntries int) *Cache {
	if ttl <= 0 {
		ttl = DefaultCacheTTL
	}
	if maxEntries <= 0 {
		maxEntries = DefaultCacheEntries
	}
	var secret [32]byte
	rand.Read(secret[:]) // never fails: since Go 1.24 it crashes the program instead
	c := &Cache{
		ttl:     ttl,
		max:     maxEntries,
		now:     time.Now,
		entries: make(map[cacheKey]*cacheEntry),
		byUser:  make(map[string]map[cacheKey]struct{}),
	}
	c.macs.New = func() any {
		return &macState{mac: hmac.New(sha256.New, secret[:]), buf: make([]byte, 0, 256)}
	}
	return c
}

// key derives the entry key of (name, sig, verifier). Each field is preceded
// by its length, so no two triples share an encoding: a long name cannot
// borrow the first bytes of the signature (the bcrypt-cache bug of Okta's
// 2024 advisory).
func (c *Cache) key(name string, sig []byte, verifier string) cacheKey {
	m := c.macs.Get().(*macState)
	b := m.buf[:0]
	b = binary.BigEndian.AppendUint32(b, uint32(len(name)))
	b = append(b, name...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(sig)))
	b = append(b, sig...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(verifier)))
	b = append(b, verifier...)
	m.mac.Reset()
	m.mac.Write(b)
	// Sum into the pooled buffer, not into k: k would escape to the heap
	// through the interface call, an allocation on every request.
	sum := m.mac.Sum(b[:0])
	var k cacheKey
	copy(k[:], sum)
	m.buf = sum[:0]
	c.macs.Put(m)
	return k
}

// Verified reports whether sig was verified against the stored verifier of
// user name less than the TTL ago.
func (c *Cache) Verified(name string, sig []byte, verifier string) bool {
	if c == nil {
		return false
	}
	k := c.key(name, sig, verifier)
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok {
		c.misses.Add(1)
		return false
	}
	if !now.Before(e.expires) {
		c.remove(e)
		c.misses.Add(1)
		return false
	}
	c.hits.Add(1)
	// A hit makes the entry recent but does not extend its life: the slow
	// check must run again at least once per TTL.
	c.lru.MoveToFront(e.lruElem)
	return true
}

// Remember records that sig matched the stored verifier of user name. Call
// it only after a successful verification.
func (c *Cache) Remember(name string, sig []byte, verifier string) {
	if c == nil {
		return
	}
	k := c.key(name, sig, verifier)
	expires := c.now().Add(c.ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[k]; ok {
		// Verified again, e.g. by two concurrent logins that both missed.
		e.expires = expires
		c.lru.MoveToFront(e.lruElem)
		c.byAge.MoveToBack(e.ageElem)
		return
	}
	c.evict()
	e := &cacheEntry{key: k, user: name, expires: expires}
	e.lruElem = c.lru.PushFront(e)
	e.ageElem = c.byAge.PushBack(e) // the TTL is fixed, so the latest expiry is last
	c.entries[k] = e
	keys := c.byUser[name]
	if keys == nil {
		keys = make(map[cacheKey]struct{}, 1)
		c.byUser[name] = keys
	}
	keys[k] = struct{}{}
}

// evict makes room for one entry: it drops the expired entries, then, if
// the table is still full, the least recently used one. Each entry is
// dropped at most once, so this is O(1) amortized. c.mu must be held.
func (c *Cache) evict() {
	now := c.now()
	for f := c.byAge.Front(); f != nil; f = c.byAge.Front() {
		e := f.Value.(*cacheEntry)
		if now.Before(e.expires) {
			break
		}
		c.remove(e)
	}
	for len(c.entries) >= c.max {
		c.remove(c.lru.Back().Value.(*cacheEntry))
	}
}

// remove drops e from every index. c.mu must be held.
func (c *Cache) remove(e *cacheEntry) {
	delete(c.entries, e.key)
	c.lru.Remove(e.lruElem)
	c.byAge.Remove(e.ageElem)
	if keys := c.byUser[e.user]; keys != nil {
		delete(keys, e.key)
		if len(keys) == 0 {
			delete(c.byUser, e.user)
		}
	}
}

// Forget drops every entry of user name, so that the next request of that
// user is verified against the store again. Call it when this process
// changes or deletes the account.
func (c *Cache) Forget(name string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.byUser[name] {
		c.remove(c.entries[k])
	}
}

// Len returns the number of entries, expired ones included until they are
// dropped.
func (c *Cache) Len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
