package server_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/internal/disk"
	"github.com/larderfs/larder/lnp"
)

// The tests of a full disk mount a small tmpfs, which only Linux has.

// mountSmall mounts a tmpfs of size bytes on a temporary folder, or skips
// the test saying why it cannot.
func mountSmall(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs to fill (needs root): %v: %s", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes a file in dir that leaves about leave bytes free.
func fill(t *testing.T, dir string, leave int64) string {
	t.Helper()
	var st syscall.Statfs_t
	must(t, syscall.Statfs(dir, &st))
	name := filepath.Join(dir, "filler")
	f, err := os.Create(name)
	must(t, err)
	defer f.Close()
	n := int64(st.Bavail)*st.Bsize - leave
	buf := make([]byte, mib)
	for n > 0 {
		k, err := f.Write(buf[:min(n, mib)])
		if err != nil {
			break
		}
		n -= int64(k)
	}
	return name
}

// TestLNPFullDisk: on a small file system, an upload larger than the
// free space is refused before its data; one that runs into the reserve in
// the middle (another writer filled the disk) ends with NO_SPACE, which
// the client reads instead of a reset connection, and its part is removed;
// once space is freed uploads work again, and of two that do not fit
// together the second is refused before its data.
func TestLNPFullDisk(t *testing.T) {
	small := mountSmall(t, "64m")
	var reserveDir string
	h := newLNPHarnessFiles(t, func(p *fileParts) {
		sp, err := disk.OpenSpaces(filepath.Join(small, "spaces"))
		must(t, err)
		t.Cleanup(func() { sp.Close() })
		reserveDir = filepath.Join(small, "spaces")
		p.spaces = sp
		p.reserve = disk.NewReserve(disk.DefaultMinFree, reserveDir)
	})
	ctx := context.Background()
	sig := h.register(t, "alice", "pw")
	s := h.login(t, "alice", sig)

	_, err := s.Put(ctx, "huge.bin", bytes.NewReader(nil), 100_000_000, client.PutOptions{})
	wantLNPStatus(t, "100 MB on a 64 MiB disk", err, lnp.StatusNoSpace)

	data := randomBytes(40*mib, 204)
	release, done := h.heldPut(t, sig, "big.bin", data, 8*mib, reserveDir)
	waitFor(t, func() bool {
		fi, err := os.Stat(partFiles(t, reserveDir)[0])
		return err == nil && fi.Size() >= 4*mib
	})
	filler := fill(t, small, 256<<10)
	release()
	err = <-done
	wantLNPStatus(t, "an upload that meets the reserve in the middle", err, lnp.StatusNoSpace)
	waitFor(t, func() bool { return len(partFiles(t, reserveDir)) == 0 })

	must(t, os.Remove(filler))
	// Two uploads that do not fit together: the second is refused before
	// its data, counting what the first is still to write, and the first
	// completes.
	release, done = h.heldPut(t, sig, "big.bin", data, 8*mib, reserveDir)
	s = h.login(t, "alice", sig)
	_, err = s.Put(ctx, "other.bin", bytes.NewReader(data), int64(len(data)), client.PutOptions{})
	wantLNPStatus(t, "an upload beside one the disk cannot also take", err, lnp.StatusNoSpace)
	release()
	if err := <-done; err != nil {
		t.Fatalf("the upload once space is back: %v", err)
	}
}
