package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/larderfs/larder/client"
)

// TestLNPRewriteSameSizeAndTime: a file rewritten in place with the same
// size and its modification time put back (as cp -p does), after LNP/1
// read and recorded it, is seen as changed by both protocols: LNP/1's
// stat shows the new SHA-256 and its get succeeds with the new bytes, and
// the course protocol serves them too. Once with the default racy window
// (a hash taken just after a write is shown, never relied on) and once
// with none, so that the record is relied on until the rewrite and only
// the version tells.
func TestLNPRewriteSameSizeAndTime(t *testing.T) {
	for name, window := range map[string]time.Duration{"default window": 0, "no window": time.Nanosecond} {
		t.Run(name, func(t *testing.T) {
			h := newLNPHarnessFiles(t, func(p *fileParts) { p.racy = window })
			ctx := context.Background()
			sig := h.register(t, "alice", "pw")
			s := h.login(t, "alice", sig)
			old := randomBytes(300<<10, 1) // above minKnownSums: block sums are recorded too
			neu := bytes.Clone(old)
			neu[0] ^= 0xff
			neu[len(neu)-1] ^= 0xff

			for _, tt := range []struct{ lnpPath, disk string }{
				{"/shared/f.bin", filepath.Join(h.files, "f.bin")},
				{"/mine.bin", filepath.Join(h.spaces, "id-1", "files", "mine.bin")},
			} {
				if tt.lnpPath == "/mine.bin" {
					if _, err := s.Put(ctx, tt.lnpPath, bytes.NewReader(old), int64(len(old)), client.PutOptions{}); err != nil {
						t.Fatal(err)
					}
				} else {
					must(t, os.WriteFile(tt.disk, old, 0o644))
				}
				// Read so that its hash and block sums are recorded.
				var got bytes.Buffer
				if _, err := s.Get(ctx, tt.lnpPath, 0, &got, nil); err != nil || !bytes.Equal(got.Bytes(), old) {
					t.Fatalf("%s: first get: %v, bytes right %v", tt.lnpPath, err, bytes.Equal(got.Bytes(), old))
				}
				if e, err := s.Stat(ctx, tt.lnpPath); err != nil || e.SHA256 != sha256.Sum256(old) {
					t.Fatalf("%s: stat before the rewrite: %x, %v; want %x", tt.lnpPath, e.SHA256, err, sha256.Sum256(old))
				}
				rewriteKeepingTime(t, tt.disk, neu)

				// STAT never reads a file: it shows the hash if it is
				// known for the content there now, zeros otherwise;
				// never the old content's.
				if e, err := s.Stat(ctx, tt.lnpPath); err != nil || e.SHA256 == sha256.Sum256(old) {
					t.Errorf("%s: stat after the rewrite: SHA-256 %x, %v; want the new content's or none, not the old", tt.lnpPath, e.SHA256[:8], err)
				}
				got.Reset()
				r, err := s.Get(ctx, tt.lnpPath, 0, &got, nil)
				if err != nil || r.SHA256 != sha256.Sum256(neu) || !bytes.Equal(got.Bytes(), neu) {
					t.Errorf("%s: get after the rewrite: %v, announced %x, new bytes %v; want the new bytes and their SHA-256", tt.lnpPath, err, r.SHA256[:8], bytes.Equal(got.Bytes(), neu))
				}
				// Once read, the new content's hash is recorded, and STAT
				// shows it (read within the racy window, it is shown but
				// not relied on: the next read hashes the file again).
				if e, err := s.Stat(ctx, tt.lnpPath); err != nil || e.SHA256 != sha256.Sum256(neu) {
					t.Errorf("%s: stat after a get of the new content: SHA-256 %x, %v; want %x", tt.lnpPath, e.SHA256[:8], err, sha256.Sum256(neu))
				}
			}
			// The course protocol serves the shared area's new bytes.
			c, err := client.Dial(ctx, h.courseAddr)
			must(t, err)
			defer c.Close()
			var got bytes.Buffer
			if _, err := c.Retrieve(ctx, "alice", sig, "f.bin", &got); err != nil || !bytes.Equal(got.Bytes(), neu) {
				t.Errorf("course retrieval after the rewrite: %v, new bytes %v; want the new bytes", err, bytes.Equal(got.Bytes(), neu))
			}
		})
	}
}

// rewriteKeepingTime rewrites the file at p in place with data, of the
// same size, and puts its modification time back, as cp -p does. It
// writes again until the change time has moved, which a coarse clock may
// take a tick to do: until then the rewrite cannot be told from the disk,
// which is what the racy window is for.
func rewriteKeepingTime(t *testing.T, p string, data []byte) {
	t.Helper()
	fi, err := os.Stat(p)
	must(t, err)
	before := ctimeOf(fi)
	for range 1000 {
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		must(t, err)
		_, err = f.WriteAt(data, 0)
		must(t, err)
		must(t, f.Close())
		must(t, os.Chtimes(p, fi.ModTime(), fi.ModTime()))
		now, err := os.Stat(p)
		must(t, err)
		if now.Size() != fi.Size() || !now.ModTime().Equal(fi.ModTime()) {
			t.Fatalf("the rewrite changed the size or time: %d %v, want %d %v", now.Size(), now.ModTime(), fi.Size(), fi.ModTime())
		}
		if ctimeOf(now) != before {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("the change time did not move in a second of rewrites")
}

func ctimeOf(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ctim.Nano()
	}
	return 0
}
