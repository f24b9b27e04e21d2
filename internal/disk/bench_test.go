package disk

import (
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
	s, err := Open(dir)
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
