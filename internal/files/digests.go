package files

import (
	"container/list"
	"crypto/sha256"
	"fmt"
	"io"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// DefaultRacyWindow is how recently a file may have changed for a hash of
// it still to be trusted later (see Service.settled). Linux stamps files
// from a coarse clock, so two writes a few milliseconds apart can leave
// identical timestamps; a hash taken between them would be kept for
// content that no longer exists. Git calls this the "racy clean" problem
// and solves it the same way: do not trust timestamps that are too close
// to the moment of reading.
const DefaultRacyWindow = 2 * time.Second

// MinBlockSumsSize is the smallest file whose block hashes the course
// protocol's digests compute and remember: below it, hashing the blocks
// as they are sent costs less than keeping their hashes.
const MinBlockSumsSize = 1 << 20

// sharedHashSize is the smallest file whose digest, on a miss, is
// computed once for all concurrent callers (singleflight). A smaller one
// is hashed by each caller: that costs a few microseconds, less than the
// sharing's bookkeeping.
const sharedHashSize = 64 << 10

// DefaultDigestEntries is the default bound of the digests remembered in
// memory: about 4 MB at most, for a folder of up to 16,384 files served in
// turn. (At 4,096, 10,000 small files served in turn made every lookup a
// miss, a twentieth of the server's work.)
const DefaultDigestEntries = 16384

// defaultBlockSumsBytes bounds the memory the remembered block hashes
// take, all files together: 64 MiB holds those of about 1.8 GB of files
// in the course protocol's 944-byte blocks.
const defaultBlockSumsBytes = 64 << 20

// digestCache remembers in memory the SHA-256 of recently read contents,
// by version, so that a file fetched again is not read twice (the course
// protocol needs the hash before the first block), and the hashes of the
// blocks of large ones, so that it is not hashed again either. Only
// versions that Service.settled trusts go in: the same policy as the
// records.
type digestCache struct {
	max        int
	maxBlocks  int // bytes of block hashes, all entries together
	flight     singleflight.Group
	blockBytes int // held now

	mu    sync.Mutex
	byKey map[string]*list.Element
	lru   list.List // of *digestEntry, most recent at the front
}

// digestEntry is what is known of one version of a content: its SHA-256
// and, for a large file, the SHA-256 of each of its blocks of blockSize
// bytes (nil when not computed, or dropped to stay within the memory
// bound). Blocks, once made, is never written to, so callers share it.
type digestEntry struct {
	key       string
	sum       [32]byte
	blockSize int
	blocks    [][32]byte
	dropped   bool // blocks were dropped for the memory bound
	settled   bool // its version could be trusted when it was hashed
	hashed    bool // hashed by this call, not found known
}

func newDigestCache(max int) *digestCache {
	if max <= 0 {
		max = DefaultDigestEntries
	}
	return &digestCache{max: max, maxBlocks: defaultBlockSumsBytes, byKey: make(map[string]*list.Element)}
}

func (c *digestCache) get(k string) (digestEntry, bool) {
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

// digest returns what is known of the content of o, whose Info is in, with
// its block hashes if blockSize is not 0 and the file is large enough:
// from memory, or hashed now (once for concurrent callers of a large
// file) and remembered if its version is settled. fromRecord, if not nil,
// looks for a trusted record of the SHA-256 before hashing.
func (s *Service) digest(o io.ReaderAt, in Info, blockSize int, fromRecord func() ([32]byte, bool)) (digestEntry, error) {
	if in.Size < MinBlockSumsSize {
		blockSize = 0
	}
	if in.Version == "" {
		d, err := hashContent(o, in, blockSize)
		d.hashed = err == nil
		return d, err
	}
	if d, ok := s.digests.get(in.Version); ok && (d.blockSize == blockSize || blockSize == 0 || d.dropped) {
		// Block hashes dropped to stay within the memory bound are not
		// made again: a pass over the file just for them would cost what
		// hashing the blocks as they are sent does, and come before the
		// first byte, each time the file came back. (A digest made
		// without them, for LNP/1, gets them once, below.)
		if d.blockSize != blockSize {
			d.blocks, d.blockSize = nil, 0
		}
		d.hashed = false // known, not hashed by this call
		return d, nil
	}
	if blockSize == 0 && fromRecord != nil {
		if sum, ok := fromRecord(); ok {
			d := digestEntry{key: in.Version, sum: sum, settled: true}
			s.digests.put(d)
			return d, nil
		}
	}
	if in.Size < sharedHashSize {
		return s.hashAndRemember(o, in, blockSize)
	}
	v, err, _ := s.digests.flight.Do(fmt.Sprintf("%s:%d", in.Version, blockSize), func() (any, error) {
		return s.hashAndRemember(o, in, blockSize)
	})
	if err != nil {
		return digestEntry{}, err
	}
	return v.(digestEntry), nil
}

// hashAndRemember hashes o and remembers the result, unless its content
// changed too recently for its version to be trusted.
func (s *Service) hashAndRemember(o io.ReaderAt, in Info, blockSize int) (digestEntry, error) {
	start := time.Now()
	d, err := hashContent(o, in, blockSize)
	if err != nil {
		return digestEntry{}, err
	}
	d.settled, d.hashed = s.settled(in, start), true
	if d.settled {
		s.digests.put(d)
	}
	return d, nil
}

var hashBufPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// hashContent hashes the first in.Size bytes of o, and each of its blocks
// if blockSize is not 0, with ReadAt so that it does not disturb anyone
// else's use of the object.
func hashContent(o io.ReaderAt, in Info, blockSize int) (digestEntry, error) {
	bp := hashBufPool.Get().(*[]byte)
	defer hashBufPool.Put(bp)
	buf := *bp
	d := digestEntry{key: in.Version, blockSize: blockSize}
	if blockSize > 0 {
		buf = buf[:len(buf)/blockSize*blockSize] // whole blocks per read
		d.blocks = make([][32]byte, 0, (in.Size+int64(blockSize)-1)/int64(blockSize))
	}
	h := sha256.New()
	for off := int64(0); off < in.Size; {
		chunk := buf[:min(int64(len(buf)), in.Size-off)]
		if n, err := o.ReadAt(chunk, off); n < len(chunk) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF // the file shrank since it was opened
			}
			return digestEntry{}, fmt.Errorf("files: hashing %s: %w", in.Name, err)
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
