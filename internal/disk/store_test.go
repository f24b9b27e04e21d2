//go:build linux

package disk

import (
	"bytes"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/larderfs/larder"
)

// newTree builds a served folder with a secret file beside it, outside.
func newTree(t *testing.T) (served, secret string) {
	t.Helper()
	top := t.TempDir()
	served = filepath.Join(top, "served")
	secret = filepath.Join(top, "secret.txt")
	must(t, os.MkdirAll(filepath.Join(served, "sub"), 0o755))
	must(t, os.WriteFile(secret, []byte("the server's secret"), 0o644))
	must(t, os.WriteFile(filepath.Join(served, "hello.txt"), []byte("hello\r\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(served, "sub", "inner.txt"), []byte("inner"), 0o644))
	must(t, os.WriteFile(filepath.Join(served, "empty"), nil, 0o644))
	must(t, os.Symlink("../secret.txt", filepath.Join(served, "escape-relative")))
	must(t, os.Symlink(secret, filepath.Join(served, "escape-absolute")))
	must(t, os.Symlink("..", filepath.Join(served, "parent")))
	must(t, os.Symlink("sub/inner.txt", filepath.Join(served, "inside-link")))
	must(t, os.Symlink("loop-b", filepath.Join(served, "loop-a")))
	must(t, os.Symlink("loop-a", filepath.Join(served, "loop-b")))
	must(t, syscall.Mkfifo(filepath.Join(served, "fifo"), 0o644))
	return served, secret
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func openStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, 0)
	must(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestOpenServesFilesInside(t *testing.T) {
	served, _ := newTree(t)
	s := openStore(t, served)
	for name, want := range map[string]string{
		"hello.txt":     "hello\r\n",
		"sub/inner.txt": "inner",
		"./hello.txt":   "hello\r\n",
		"inside-link":   "inner",
		"empty":         "",
	} {
		f, err := s.Open(name)
		if err != nil {
			t.Errorf("Open(%q): %v", name, err)
			continue
		}
		got, _ := io.ReadAll(io.NewSectionReader(f, 0, f.Size))
		f.Close()
		if string(got) != want || f.Size != int64(len(want)) {
			t.Errorf("Open(%q) read %q (size %d), want %q", name, got, f.Size, want)
		}
	}
}

// Every way out of the served folder must be refused, and the secret
// beside it never read.
func TestOpenRefusesTraversal(t *testing.T) {
	served, secret := newTree(t)
	s := openStore(t, served)
	tests := []struct {
		name string
		code string
	}{
		{"../secret.txt", larder.EINVALID},
		{"..", larder.EINVALID},
		{"sub/../../secret.txt", larder.EINVALID},
		{"sub/../hello.txt", larder.EINVALID}, // harmless, but ".." is refused outright
		{secret, larder.EINVALID},             // absolute
		{"/etc/passwd", larder.EINVALID},
		{"escape-relative", larder.EINVALID},
		{"escape-absolute", larder.EINVALID},
		{"parent/secret.txt", larder.EINVALID},
		{"hello.txt\x00.png", larder.EINVALID},
		{"\x00", larder.EINVALID},
		{"", larder.EINVALID},
		{".", larder.EINVALID},
		{"sub", larder.EINVALID},
		{"sub/", larder.EINVALID},
		{"fifo", larder.EINVALID},
		{"loop-a", larder.EINVALID},
		{"missing.txt", larder.ENOTFOUND},
		{"hello.txt/x", larder.ENOTFOUND},
	}
	for _, tt := range tests {
		done := make(chan struct{})
		var err error
		go func() {
			defer close(done)
			var f *File
			f, err = s.Open(tt.name)
			if err == nil {
				f.Close()
			}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("Open(%q) blocked", tt.name)
		}
		if got := larder.ErrorCode(err); got != tt.code {
			t.Errorf("Open(%q): got code %q (%v), want %q", tt.name, got, err, tt.code)
		}
		if msg := larder.ErrorMessage(err); bytes.Contains([]byte(msg), []byte("secret's")) {
			t.Errorf("Open(%q): message %q leaks content", tt.name, msg)
		}
	}
}

func TestOpenBinaryExact(t *testing.T) {
	dir := t.TempDir()
	var all []byte
	for i := range 256 {
		all = append(all, byte(i))
	}
	all = append(all, "\r\n\n\r"...)
	must(t, os.WriteFile(filepath.Join(dir, "bin"), all, 0o644))
	s := openStore(t, dir)
	f, err := s.Open("bin")
	must(t, err)
	defer f.Close()
	got, _ := io.ReadAll(io.NewSectionReader(f, 0, f.Size))
	if !bytes.Equal(got, all) {
		t.Fatal("binary content changed")
	}
	sum, err := s.Digest(f)
	if err != nil || sum != sha256.Sum256(all) {
		t.Fatalf("Digest = %x, %v; want %x", sum, err, sha256.Sum256(all))
	}
}

func TestDigestCachedPerVersion(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	must(t, os.WriteFile(path, []byte("version one"), 0o644))
	s := openStore(t, dir)
	s.digests.racy = 0

	digest := func() [32]byte {
		t.Helper()
		f, err := s.Open("f")
		must(t, err)
		defer f.Close()
		sum, err := s.Digest(f)
		must(t, err)
		return sum
	}
	if got := digest(); got != sha256.Sum256([]byte("version one")) {
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
	if got := digest(); got != sha256.Sum256([]byte("version two")) {
		t.Fatal("digest of rewritten file is stale")
	}
}

func TestDigestNotCachedWhileRacy(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "f"), []byte("fresh"), 0o644))
	s := openStore(t, dir)
	f, err := s.Open("f")
	must(t, err)
	defer f.Close()
	if _, err := s.Digest(f); err != nil {
		t.Fatal(err)
	}
	if n := s.digests.lru.Len(); n != 0 {
		t.Fatalf("digest of a file changed just now was cached (%d entries)", n)
	}
}

func TestDigestCacheBounded(t *testing.T) {
	c := newDigestCache(3)
	for i := range 10 {
		c.put(digestEntry{key: fileKey{ino: uint64(i)}, sum: [32]byte{byte(i)}})
	}
	if c.lru.Len() != 3 || len(c.byKey) != 3 {
		t.Fatalf("cache holds %d/%d entries, want 3", c.lru.Len(), len(c.byKey))
	}
	if _, ok := c.get(fileKey{ino: 9}); !ok {
		t.Fatal("most recent entry evicted")
	}
	if _, ok := c.get(fileKey{ino: 0}); ok {
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
	s := openStore(t, dir)
	s.digests.racy = 0

	get := func(name string) ([32]byte, [][32]byte) {
		t.Helper()
		f, err := s.Open(name)
		must(t, err)
		defer f.Close()
		sum, blocks, err := s.DigestBlocks(f, blockSize)
		must(t, err)
		return sum, blocks
	}
	// A digest made first without block hashes (as LNP/1 asks for it)
	// gets them at the first call that wants them.
	f, err := s.Open("large")
	must(t, err)
	if _, err := s.Digest(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
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
		c.put(digestEntry{key: fileKey{ino: uint64(i)}, sum: [32]byte{byte(i)}, blockSize: 944, blocks: make([][32]byte, 100)})
	}
	if c.blockBytes > c.maxBlocks {
		t.Fatalf("%d bytes of block hashes held, bound %d", c.blockBytes, c.maxBlocks)
	}
	for i := range 5 {
		d, ok := c.get(fileKey{ino: uint64(i)})
		if !ok || d.sum != [32]byte{byte(i)} {
			t.Fatalf("entry %d lost its digest", i)
		}
		if kept := d.blocks != nil; kept != (i >= 2) {
			t.Errorf("entry %d kept its block hashes: %v; want only the 3 most recent to", i, kept)
		}
	}
	c.put(digestEntry{key: fileKey{ino: 99}, blockSize: 944, blocks: make([][32]byte, 1000)})
	if d, _ := c.get(fileKey{ino: 99}); d.blocks != nil || c.blockBytes > c.maxBlocks {
		t.Errorf("block hashes larger than the whole bound were kept")
	}
}
