package sqlite

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/larderfs/larder"
)

// accountCacheTTL bounds how long an account read stays in the cache
// whatever the stamp says: the time a change can go unseen if the process
// that made it died between its commit and its stamp.
const accountCacheTTL = time.Second

// accountCacheMax bounds the entries; a lookup of a name not cached when
// it is full drops an arbitrary entry.
const accountCacheMax = 10000

// accountCache keeps the accounts UserByName read, so that the lookup
// every request makes costs the read of eight bytes rather than a query
// (measured: a sixth of the server's work for small retrievals).
//
// It stays right across processes. Every change to an account, by this
// process or another on the same database file (an admin command, a
// second server), writes a fresh random stamp into a file beside the
// database once it has committed; an entry is used only while the stamp
// is the one read before the entry was fetched. A stamp is random rather
// than counted so that writers need no lock: a value once replaced never
// comes back, and a read torn by a concurrent write only misses.
type accountCache struct {
	stamps *os.File
	mapped []byte // the stamp file's first eight bytes, mapped; nil if not
	ttl    time.Duration

	closeOnce sync.Once

	mu      sync.RWMutex
	entries map[string]cachedAccount
}

type cachedAccount struct {
	user    larder.User
	stamp   uint64
	expires time.Time
}

// stampSize is the size of a stamp, and of the stamp file.
const stampSize = 8

// openAccountCache opens, or creates, the stamp file at path, and maps it
// into memory where it can: reading the stamp is then a load from memory
// rather than a system call (measured: the call was 5 % of the server's
// work for small requests).
func openAccountCache(path string) (*accountCache, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	mapped, err := mapStamps(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("map %s: %w", path, err)
	}
	return &accountCache{stamps: f, mapped: mapped, ttl: accountCacheTTL, entries: make(map[string]cachedAccount)}, nil
}

// close unmaps and closes the stamp file; closing it again does nothing,
// as closing a DB twice does nothing. A stamp read after it faults, which
// mappedStamp recovers from.
func (c *accountCache) close() error {
	var err error
	c.closeOnce.Do(func() {
		if c.mapped != nil {
			err = unmapStamps(c.mapped)
		}
		err = errors.Join(err, c.stamps.Close())
	})
	return err
}

// stamp reads the current stamp; ok is false if it cannot be read, and
// then the cache must not be used. A file no change has stamped yet
// reads as 0.
func (c *accountCache) stamp() (stamp uint64, ok bool) {
	if c.mapped != nil {
		return c.mappedStamp()
	}
	var b [stampSize]byte
	n, err := c.stamps.ReadAt(b[:], 0)
	switch {
	case n == len(b):
		return binary.LittleEndian.Uint64(b[:]), true
	case n == 0 && errors.Is(err, io.EOF):
		return 0, true
	}
	return 0, false
}

// mappedStamp reads the stamp from the mapped file, as a whole word:
// stamps are only ever compared for equality, so its byte order does not
// matter. Should the file have been cut short behind larder's back, the
// read faults; that is turned into a panic, recovered here, rather than a
// crash of the server, and the cache is then not used.
func (c *accountCache) mappedStamp() (stamp uint64, ok bool) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if recover() != nil {
			stamp, ok = 0, false
		}
	}()
	return atomic.LoadUint64((*uint64)(unsafe.Pointer(&c.mapped[0]))), true
}

// get returns a copy of the account called name if it was cached under
// stamp and has not expired.
func (c *accountCache) get(name string, stamp uint64) (*larder.User, bool) {
	c.mu.RLock()
	e, ok := c.entries[name]
	c.mu.RUnlock()
	if !ok || e.stamp != stamp || time.Now().After(e.expires) {
		return nil, false
	}
	u := e.user
	return &u, true
}

// put caches a copy of u, read from the database after stamp was.
func (c *accountCache) put(u *larder.User, stamp uint64) {
	e := cachedAccount{user: *u, stamp: stamp, expires: time.Now().Add(c.ttl)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[u.Name]; !ok && len(c.entries) >= accountCacheMax {
		for name := range c.entries {
			delete(c.entries, name)
			break
		}
	}
	c.entries[u.Name] = e
}

// loggedIn brings the LastLogin of the entry of account id, called name,
// if there is one, up to at: RecordLogin's change, which needs no new
// stamp.
func (c *accountCache) loggedIn(name string, id int64, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[name]; ok && e.user.ID == id {
		e.user.LastLogin = at
		c.entries[name] = e
	}
}

// changed records that an account changed, after the change committed
// (or failed: a failure may come after the commit). This process forgets
// every entry at once; the others see a new stamp. Should writing the
// stamp fail, the others see the change within the TTL.
func (c *accountCache) changed() {
	c.mu.Lock()
	clear(c.entries)
	c.mu.Unlock()
	var b [stampSize]byte
	rand.Read(b[:]) // never fails: since Go 1.24 it crashes the program instead
	c.stamps.WriteAt(b[:], 0)
}
