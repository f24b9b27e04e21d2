package disk

import (
	"container/list"
	"crypto/sha256"
	"fmt"
	"io"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// fileKey identifies one version of a file's content: the same inode with
// the same size and timestamps. The change time (ctime) cannot be set by a
// user, so a rewrite that restores the modification time still changes the
// key.
type fileKey struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // nanoseconds
}

// defaultRacyWindow is how recently a file may have changed for its digest still
// to be cached. Linux stamps files from a coarse clock, so two writes a few
// milliseconds apart can leave identical timestamps; a digest taken between
// them would be cached for content that no longer exists. Git calls this
// the "racy clean" problem and solves it the same way: do not trust
// timestamps that are too close to the moment of reading.
const defaultRacyWindow = 2 * time.Second

// digestCache remembers the SHA-256 of recently served files, so that a
// file fetched again is not read twice (the course protocol needs the hash
// before the first block).
type digestCache struct {
	max    int
	racy   time.Duration // see defaultRacyWindow
	flight singleflight.Group

	mu    sync.Mutex
	byKey map[fileKey]*list.Element
	lru   list.List // of *digestEntry, most recent at the front
}

type digestEntry struct {
	key fileKey
	sum [32]byte
}

func newDigestCache(max int) *digestCache {
	if max <= 0 {
		max = 4096
	}
	return &digestCache{max: max, racy: defaultRacyWindow, byKey: make(map[fileKey]*list.Element)}
}

func (c *digestCache) get(k fileKey) ([32]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[k]
	if !ok {
		return [32]byte{}, false
	}
	c.lru.MoveToFront(e)
	return e.Value.(*digestEntry).sum, true
}

func (c *digestCache) put(k fileKey, sum [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[k]; ok {
		c.lru.MoveToFront(e)
		return
	}
	c.byKey[k] = c.lru.PushFront(&digestEntry{key: k, sum: sum})
	for c.lru.Len() > c.max {
		oldest := c.lru.Back()
		delete(c.byKey, oldest.Value.(*digestEntry).key)
		c.lru.Remove(oldest)
	}
}

// Digest returns the SHA-256 of f's content. It is computed once per
// version of the file and remembered; concurrent callers for the same
// version share one computation.
func (s *Store) Digest(f *File) ([32]byte, error) {
	if f.key == (fileKey{}) {
		return hashFile(f)
	}
	if sum, ok := s.digests.get(f.key); ok {
		return sum, nil
	}
	k := f.key
	flightKey := fmt.Sprintf("%d:%d:%d:%d:%d", k.dev, k.ino, k.size, k.mtime, k.ctime)
	v, err, _ := s.digests.flight.Do(flightKey, func() (any, error) {
		start := time.Now()
		sum, err := hashFile(f)
		if err != nil {
			return nil, err
		}
		if racy := s.digests.racy; start.Sub(time.Unix(0, k.ctime)) > racy && start.Sub(time.Unix(0, k.mtime)) > racy {
			s.digests.put(k, sum)
		}
		return sum, nil
	})
	if err != nil {
		return [32]byte{}, err
	}
	return v.([32]byte), nil
}

var hashBufPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// HashFile returns the SHA-256 of the first f.Size bytes of f, without the
// cache: for files whose hash is recorded elsewhere.
func HashFile(f *File) ([32]byte, error) { return hashFile(f) }

// hashFile hashes the first f.Size bytes of f, reading with ReadAt so that
// it does not disturb anyone else's use of the descriptor.
func hashFile(f *File) ([32]byte, error) {
	bp := hashBufPool.Get().(*[]byte)
	defer hashBufPool.Put(bp)
	h := sha256.New()
	if _, err := io.CopyBuffer(h, io.NewSectionReader(f, 0, f.Size), *bp); err != nil {
		return [32]byte{}, fmt.Errorf("disk: hashing %s: %w", f.Name, err)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, nil
}
