//go:build linux

package files

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/larderfs/larder/internal/disk"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// sharedService returns a Service with no records whose shared area is
// dir, with the racy window off: the files of these tests were written
// just now, and the lookups are the same as for old ones.
func sharedService(t testing.TB, dir string) *Service {
	t.Helper()
	store, err := disk.Open(dir)
	must(t, err)
	t.Cleanup(func() { store.Close() })
	s, err := New(Config{Backend: NewLocal(store, nil)})
	must(t, err)
	s.racy = 0
	return s
}

// digestOf opens name in s's shared area and hashes it in blocks of
// blockSize bytes (0: none).
func digestOf(t testing.TB, s *Service, name string, blockSize int) *File {
	t.Helper()
	f, err := s.OpenShared(name)
	must(t, err)
	defer f.Close()
	must(t, s.Hash(context.Background(), f, blockSize))
	return f
}

// TestHashBinaryExact: every byte value counts in the SHA-256, line ends
// included.
func TestHashBinaryExact(t *testing.T) {
	dir := t.TempDir()
	var all []byte
	for i := range 256 {
		all = append(all, byte(i))
	}
	all = append(all, "\r\n\n\r"...)
	must(t, os.WriteFile(filepath.Join(dir, "bin"), all, 0o644))
	if got := digestOf(t, sharedService(t, dir), "bin", 0).SHA256; got != sha256.Sum256(all) {
		t.Fatalf("Hash = %x; want %x", got, sha256.Sum256(all))
	}
}

func TestDigestCachedPerVersion(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	must(t, os.WriteFile(path, []byte("version one"), 0o644))
	s := sharedService(t, dir)

	if got := digestOf(t, s, "f", 0).SHA256; got != sha256.Sum256([]byte("version one")) {
		t.Fatal("first digest wrong")
	}
	if s.digests.lru.Len() != 1 {
		t.Fatalf("cache holds %d entries, want 1", s.digests.lru.Len())
	}
	// Same size, and the modification time put back: the change time
	// still moves, so the new content gets a new digest.
	fi, _ := os.Stat(path)
	must(t, os.WriteFile(path, []byte("version two"), 0o644))
	must(t, os.Chtimes(path, fi.ModTime(), fi.ModTime()))
	if got := digestOf(t, s, "f", 0).SHA256; got != sha256.Sum256([]byte("version two")) {
		t.Fatal("digest of rewritten file is stale")
	}
}

func TestDigestNotCachedWhileRacy(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "f"), []byte("fresh"), 0o644))
	s := sharedService(t, dir)
	s.racy = DefaultRacyWindow
	digestOf(t, s, "f", 0)
	if n := s.digests.lru.Len(); n != 0 {
		t.Fatalf("digest of a file changed just now was cached (%d entries)", n)
	}
}

func TestDigestCacheBounded(t *testing.T) {
	c := newDigestCache(3)
	for i := range 10 {
		c.put(digestEntry{key: strconv.Itoa(i), sum: [32]byte{byte(i)}})
	}
	if c.lru.Len() != 3 || len(c.byKey) != 3 {
		t.Fatalf("cache holds %d/%d entries, want 3", c.lru.Len(), len(c.byKey))
	}
	if _, ok := c.get("9"); !ok {
		t.Fatal("most recent entry evicted")
	}
	if _, ok := c.get("0"); ok {
		t.Fatal("oldest entry kept")
	}
}

// TestDigestBlocks: the block hashes of a large file are each block's
// SHA-256, come with the file's own, and are remembered with it; a small
// file has none.
func TestDigestBlocks(t *testing.T) {
	dir := t.TempDir()
	const blockSize = 944
	data := make([]byte, MinBlockSumsSize+5*blockSize+17) // a short last block
	for i := range data {
		data[i] = byte(i * 7 / 3)
	}
	must(t, os.WriteFile(filepath.Join(dir, "large"), data, 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "small"), data[:MinBlockSumsSize-1], 0o644))
	s := sharedService(t, dir)

	get := func(name string) ([32]byte, [][32]byte) {
		t.Helper()
		f := digestOf(t, s, name, blockSize)
		return f.SHA256, f.Blocks
	}
	// A digest made first without block hashes (as LNP/1 asks for it)
	// gets them at the first call that wants them.
	digestOf(t, s, "large", 0)
	sum, blocks := get("large")
	if sum != sha256.Sum256(data) {
		t.Fatal("the file's SHA-256 is wrong")
	}
	if want := (len(data) + blockSize - 1) / blockSize; len(blocks) != want {
		t.Fatalf("%d block hashes, want %d", len(blocks), want)
	}
	for i, b := range blocks {
		if b != sha256.Sum256(data[i*blockSize:min(len(data), (i+1)*blockSize)]) {
			t.Fatalf("block %d: wrong hash", i)
		}
	}
	if _, again := get("large"); &again[0] != &blocks[0] {
		t.Error("the block hashes were computed again, not remembered")
	}
	// Block hashes dropped for memory are not made again: they are
	// dropped here as the memory bound drops them.
	s.digests.mu.Lock()
	for _, e := range s.digests.byKey {
		d := e.Value.(*digestEntry)
		s.digests.blockBytes -= len(d.blocks) * 32
		d.blocks, d.blockSize, d.dropped = nil, 0, true
	}
	s.digests.mu.Unlock()
	if again, blocks := get("large"); again != sum || blocks != nil {
		t.Errorf("after the block hashes were dropped: sum right %v, %d block hashes; want true, none (hashed as sent)", again == sum, len(blocks))
	}
	if sum, blocks := get("small"); blocks != nil || sum != sha256.Sum256(data[:MinBlockSumsSize-1]) {
		t.Errorf("small file: %d block hashes, sum right: %v; want none, true", len(blocks), sum == sha256.Sum256(data[:MinBlockSumsSize-1]))
	}
}

// TestDigestBlocksBounded: over the memory bound, the least recently used
// files lose their block hashes, never their digests.
func TestDigestBlocksBounded(t *testing.T) {
	c := newDigestCache(10)
	c.maxBlocks = 3 * 32 * 100
	for i := range 5 {
		c.put(digestEntry{key: strconv.Itoa(i), sum: [32]byte{byte(i)}, blockSize: 944, blocks: make([][32]byte, 100)})
	}
	if c.blockBytes > c.maxBlocks {
		t.Fatalf("%d bytes of block hashes held, bound %d", c.blockBytes, c.maxBlocks)
	}
	for i := range 5 {
		d, ok := c.get(strconv.Itoa(i))
		if !ok || d.sum != [32]byte{byte(i)} {
			t.Fatalf("entry %d lost its digest", i)
		}
		if kept := d.blocks != nil; kept != (i >= 2) {
			t.Errorf("entry %d kept its block hashes: %v; want only the 3 most recent to", i, kept)
		}
	}
	c.put(digestEntry{key: "99", blockSize: 944, blocks: make([][32]byte, 1000)})
	if d, _ := c.get("99"); d.blocks != nil || c.blockBytes > c.maxBlocks {
		t.Errorf("block hashes larger than the whole bound were kept")
	}
}

// BenchmarkDigest measures the digest of a file that has not changed
// since it was cached: the cache hit every download of it after the
// first takes.
func BenchmarkDigest(b *testing.B) {
	dir := b.TempDir()
	content := make([]byte, 4<<10)
	must(b, os.WriteFile(filepath.Join(dir, "small.txt"), content, 0o644))
	s := sharedService(b, dir)
	f, err := s.OpenShared("small.txt")
	must(b, err)
	defer f.Close()
	ctx := context.Background()
	want := sha256.Sum256(content)
	if err := s.Hash(ctx, f, 0); err != nil || f.SHA256 != want {
		b.Fatalf("first Hash: got %x, %v; want %x, nil", f.SHA256, err, want)
	}
	if n := s.digests.lru.Len(); n != 1 {
		b.Fatalf("the cache holds %d digests after the first, want 1", n)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Hash(ctx, f, 0); err != nil || f.SHA256 != want {
			b.Fatalf("Hash: got %x, %v; want %x, nil", f.SHA256, err, want)
		}
	}
}
