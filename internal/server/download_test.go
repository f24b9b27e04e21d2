package server_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/lnp"
)

// TestLNPDownloadInterruptedKeepsLocal: a download cut
// in the middle leaves the file it was to replace as it was, and the next
// one goes on from what the first fetched.
func TestLNPDownloadInterruptedKeepsLocal(t *testing.T) {
	h := newLNPHarness(t)
	sig := h.register(t, "alice", "pw")
	s := h.login(t, "alice", sig)
	data := randomBytes(4*lnp.DefaultBlockSize+99, 111)
	if _, err := s.Put(context.Background(), "f.bin", bytes.NewReader(data), int64(len(data)), client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	local := filepath.Join(dir, "f.bin")
	old := []byte("an older file, kept until the new one is complete")
	must(t, os.WriteFile(local, old, 0o640))

	ctx, cancel := context.WithCancel(context.Background())
	fetched := 0
	_, err := s.GetFile(ctx, "f.bin", local, func(n int) {
		if fetched += n; fetched >= 2*lnp.DefaultBlockSize {
			cancel() // as Ctrl-C does
		}
	})
	if err == nil {
		t.Fatal("the interrupted download succeeded")
	}
	if b, _ := os.ReadFile(local); !bytes.Equal(b, old) {
		t.Fatalf("after the interruption, %s holds %d bytes, want its %d untouched", local, len(b), len(old))
	}

	s2 := h.login(t, "alice", sig)
	fetched = 0
	if _, err := s2.GetFile(context.Background(), "f.bin", local, func(n int) { fetched += n }); err != nil {
		t.Fatalf("the second download: %v", err)
	}
	if b, _ := os.ReadFile(local); !bytes.Equal(b, data) {
		t.Fatalf("after the second download, %s holds %d bytes, want the file's %d", local, len(b), len(data))
	}
	if fetched > len(data)-lnp.DefaultBlockSize {
		t.Errorf("the second download fetched %d of %d bytes: it did not go on from the first", fetched, len(data))
	}
	if fi, _ := os.Stat(local); fi.Mode().Perm() != 0o640 {
		t.Errorf("%s has mode %04o, want the replaced file's 0640", local, fi.Mode().Perm())
	}
	if names, _ := os.ReadDir(dir); len(names) != 1 {
		t.Errorf("%s holds %d entries, want only the file: no part left", dir, len(names))
	}
}

// TestLNPDownloadResumesManyBlocks resumes a download of more blocks
// than one SUMS reply could hold when it allowed 4,096 sums: 131 KiB, over
// the 64 KiB a REPLY frame may carry.
func TestLNPDownloadResumesManyBlocks(t *testing.T) {
	h := newLNPHarness(t)
	sig := h.register(t, "alice", "pw")
	s, err := h.dial("alice", sig, lnp.MinBlockSize)
	must(t, err)
	defer s.Close()
	ctx := context.Background()
	data := randomBytes(5000*lnp.MinBlockSize+1, 112)
	if _, err := s.Put(ctx, "f.bin", bytes.NewReader(data), int64(len(data)), client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(t.TempDir(), "f.bin")
	must(t, os.WriteFile(local, data[:4500*lnp.MinBlockSize], 0o600))
	res, err := s.Download(ctx, "f.bin", local, client.DownloadOptions{})
	if err != nil {
		t.Fatalf("Download: %v", err)
	}
	if res.Kept != 4500*lnp.MinBlockSize {
		t.Errorf("kept %d bytes, want %d", res.Kept, 4500*lnp.MinBlockSize)
	}
	if b, _ := os.ReadFile(local); !bytes.Equal(b, data) {
		t.Errorf("%s holds %d bytes, want the file's %d", local, len(b), len(data))
	}
}
