package disk

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkCleanPath measures checking a typical client path of four
// elements, as every LNP/1 request naming a path does.
func BenchmarkCleanPath(b *testing.B) {
	const p = "/projects/larder/docs/PROTOCOL.md"
	b.ReportAllocs()
	for b.Loop() {
		got, err := CleanPath(p)
		if err != nil || got != p[1:] {
			b.Fatalf("CleanPath(%q): got %q, %v; want %q, nil", p, got, err, p[1:])
		}
	}
}

// benchStore returns a Store of a new folder holding the file
// sub/dir/small.txt of 4 KiB, and that file's content.
func benchStore(b *testing.B) (*Store, []byte) {
	dir := b.TempDir()
	content := make([]byte, 4<<10)
	if err := os.MkdirAll(filepath.Join(dir, "sub", "dir"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "dir", "small.txt"), content, 0o644); err != nil {
		b.Fatal(err)
	}
	s, err := Open(dir, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s, content
}

// BenchmarkStoreOpen measures opening and closing a small file two
// folders down through the Store: the path checks, os.Root's walk, the
// fstat and the File.
func BenchmarkStoreOpen(b *testing.B) {
	s, _ := benchStore(b)
	b.ReportAllocs()
	for b.Loop() {
		f, err := s.Open("sub/dir/small.txt")
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

// BenchmarkDigest measures Store.Digest of a file that has not changed
// since its digest was cached: the cache hit every download of it after
// the first takes. The racy window is turned off, as the file was written
// just now; the lookup is the same as for an old file.
func BenchmarkDigest(b *testing.B) {
	s, content := benchStore(b)
	s.digests.racy = 0
	f, err := s.Open("sub/dir/small.txt")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if f.key == (fileKey{}) {
		b.Skip("no file keys on this system (key_other.go): digests are never cached")
	}
	want := sha256.Sum256(content)
	if sum, err := s.Digest(f); err != nil || sum != want {
		b.Fatalf("first Digest: got %x, %v; want %x, nil", sum, err, want)
	}
	if n := s.digests.lru.Len(); n != 1 {
		b.Fatalf("the cache holds %d digests after the first, want 1", n)
	}
	b.ReportAllocs()
	for b.Loop() {
		if sum, err := s.Digest(f); err != nil || sum != want {
			b.Fatalf("Digest: got %x, %v; want %x, nil", sum, err, want)
		}
	}
}
