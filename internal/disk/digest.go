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

// MinBlockSumsSize is the smallest file whose block hashes DigestBlocks
// computes and remembers: below it, hashing the blocks as they are sent
// costs less than keeping their hashes.
const MinBlockSumsSize = 1 << 20

// sharedHashSize is the smallest file whose digest, on a miss, is
// computed once for all concurrent callers (singleflight). A smaller one
// is hashed by each caller: that costs a few microseconds, less than the
// sharing's bookkeeping.
const sharedHashSize = 64 << 10

// defaultDigestEntries is the default bound of the digests remembered:
// about 4 MB at most, for a folder of up to 16,384 files served in turn.
// (At 4,096, 10,000 small files served in turn made every lookup a miss,
// a twentieth of the server's work.)
const defaultDigestEntries = 16384

// defaultBlockSumsBytes bounds the memory the remembered block hashes
// take, all files together: 64 MiB holds those of about 1.8 GB of files
// in the course protocol's 944-byte blocks.
const defaultBlockSumsBytes = 64 << 20

// digestCache remembers the SHA-256 of recently served files, so that a
// file fetched again is not read twice (the course protocol needs the hash
// before the first block), and the hashes of the blocks of large ones, so
// that a file fetched again is not hashed again either.
type digestCache struct {
	max        int
	maxBlocks  int           // bytes of block hashes, all entries together
	racy       time.Duration // see defaultRacyWindow
	flight     singleflight.Group
	blockBytes int // held now

	mu    sync.Mutex
	byKey map[fileKey]*list.Element
	lru   list.List // of *digestEntry, most recent at the front
}

// digestEntry is what is known of one version of a file: its SHA-256 and,
// for a large file, the SHA-256 of each of its blocks of blockSize bytes
// (nil when not computed, or dropped to stay within the memory bound).
// Blocks, once made, is never written to, so callers share it.
type digestEntry struct {
	key       fileKey
	sum       [32]byte
	blockSize int
	blocks    [][32]byte
	dropped   bool // blocks were dropped for the memory bound
}

func newDigestCache(max int) *digestCache {
	if max <= 0 {
		max = defaultDigestEntries
	}
	return &digestCache{max: max, maxBlocks: defaultBlockSumsBytes, racy: defaultRacyWindow, byKey: make(map[fileKey]*list.Element)}
}

func (c *digestCache) get(k fileKey) (digestEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[k]
	if !ok {
		return digestEntry{}, false
	}
	c.lru.MoveToFront(e)
	return *e.Value.(*digestEntry), true
}

func (c *digestCache) put(d digestEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(d.blocks)*32 > c.maxBlocks {
		d.blocks, d.blockSize = nil, 0
	}
	if e, ok := c.byKey[d.key]; ok {
		c.lru.MoveToFront(e)
		old := e.Value.(*digestEntry)
		if d.blocks == nil {
			return
		}
		c.blockBytes -= len(old.blocks) * 32
		*old = d
	} else {
		c.byKey[d.key] = c.lru.PushFront(&d)
	}
	c.blockBytes += len(d.blocks) * 32
	for c.lru.Len() > c.max {
		c.remove(c.lru.Back())
	}
	// Over the bound, the least recently used entries lose their block
	// hashes first, and keep their digests.
	for e := c.lru.Back(); c.blockBytes > c.maxBlocks && e != nil; e = e.Prev() {
		if old := e.Value.(*digestEntry); old.blocks != nil && old.key != d.key {
			c.blockBytes -= len(old.blocks) * 32
			old.blocks, old.blockSize, old.dropped = nil, 0, true
		}
	}
}

func (c *digestCache) remove(e *list.Element) {
	d := e.Value.(*digestEntry)
	c.blockBytes -= len(d.blocks) * 32
	delete(c.byKey, d.key)
	c.lru.Remove(e)
}

// Digest returns the SHA-256 of f's content. It is computed once per
// version of the file and remembered; concurrent callers for the same
// version share one computation.
func (s *Store) Digest(f *File) ([32]byte, error) {
	d, err := s.digest(f, 0)
	return d.sum, err
}

// DigestBlocks is Digest that also returns, for a file of at least
// MinBlockSumsSize bytes, the SHA-256 of each of its blocks of blockSize
// bytes (the last one may be shorter), computed in the same pass as the
// digest and remembered with it, within a bound on the memory they take.
// blocks is nil for a smaller file, and for one whose block hashes were
// dropped for memory; it must not be modified.
func (s *Store) DigestBlocks(f *File, blockSize int) (sum [32]byte, blocks [][32]byte, err error) {
	if blockSize <= 0 {
		return sum, nil, fmt.Errorf("disk: block size %d", blockSize)
	}
	d, err := s.digest(f, blockSize)
	return d.sum, d.blocks, err
}

// digest returns what is known of f, with its block hashes if blockSize
// is not 0 and f is large enough.
func (s *Store) digest(f *File, blockSize int) (digestEntry, error) {
	if f.Size < MinBlockSumsSize {
		blockSize = 0
	}
	if f.key == (fileKey{}) {
		return hashFile(f, blockSize)
	}
	if d, ok := s.digests.get(f.key); ok && (d.blockSize == blockSize || blockSize == 0 || d.dropped) {
		// Block hashes dropped to stay within the memory bound are not
		// made again: a pass over the file just for them would cost what
		// hashing the blocks as they are sent does, and come before the
		// first byte, each time the file came back. (A digest made
		// without them, for LNP/1, gets them once, below.)
		if d.blockSize != blockSize {
			d.blocks, d.blockSize = nil, 0
		}
		return d, nil
	}
	k := f.key
	if f.Size < sharedHashSize {
		return s.hashAndRemember(f, blockSize)
	}
	flightKey := fmt.Sprintf("%d:%d:%d:%d:%d:%d", k.dev, k.ino, k.size, k.mtime, k.ctime, blockSize)
	v, err, _ := s.digests.flight.Do(flightKey, func() (any, error) {
		return s.hashAndRemember(f, blockSize)
	})
	if err != nil {
		return digestEntry{}, err
	}
	return v.(digestEntry), nil
}

// hashAndRemember hashes f and remembers the result, unless f changed too
// recently for its timestamps to be trusted (see defaultRacyWindow).
func (s *Store) hashAndRemember(f *File, blockSize int) (digestEntry, error) {
	start := time.Now()
	d, err := hashFile(f, blockSize)
	if err != nil {
		return digestEntry{}, err
	}
	k, racy := f.key, s.digests.racy
	if start.Sub(time.Unix(0, k.ctime)) > racy && start.Sub(time.Unix(0, k.mtime)) > racy {
		s.digests.put(d)
	}
	return d, nil
}

var hashBufPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// HashFile returns the SHA-256 of the first f.Size bytes of f, without the
// cache: for files whose hash is recorded elsewhere.
func HashFile(f *File) ([32]byte, error) {
	d, err := hashFile(f, 0)
	return d.sum, err
}

// hashFile hashes the first f.Size bytes of f, and each of its blocks if
// blockSize is not 0, reading with ReadAt so that it does not disturb
// anyone else's use of the descriptor.
func hashFile(f *File, blockSize int) (digestEntry, error) {
	bp := hashBufPool.Get().(*[]byte)
	defer hashBufPool.Put(bp)
	buf := *bp
	d := digestEntry{key: f.key, blockSize: blockSize}
	if blockSize > 0 {
		buf = buf[:len(buf)/blockSize*blockSize] // whole blocks per read
		d.blocks = make([][32]byte, 0, (f.Size+int64(blockSize)-1)/int64(blockSize))
	}
	h := sha256.New()
	for off := int64(0); off < f.Size; {
		chunk := buf[:min(int64(len(buf)), f.Size-off)]
		if n, err := f.ReadAt(chunk, off); n < len(chunk) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF // the file shrank since it was opened
			}
			return digestEntry{}, fmt.Errorf("disk: hashing %s: %w", f.Name, err)
		}
		h.Write(chunk)
		for p := chunk; blockSize > 0 && len(p) > 0; p = p[min(len(p), blockSize):] {
			d.blocks = append(d.blocks, sha256.Sum256(p[:min(len(p), blockSize)]))
		}
		off += int64(len(chunk))
	}
	h.Sum(d.sum[:0])
	return d, nil
}
