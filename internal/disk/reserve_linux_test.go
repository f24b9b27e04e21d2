package disk_test

import (
	"syscall"
	"testing"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/disk"
)

// TestReserveHold: what an upload holds counts for the others until it
// is written or released.
func TestReserveHold(t *testing.T) {
	dir := t.TempDir()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	// 1 GiB above the reserve, give or take what other writers do meanwhile.
	r := disk.NewReserve(disk.MinFree{Bytes: int64(st.Bavail)*st.Bsize - 1<<30}, dir)
	a, err := r.Hold(600 << 20)
	if err != nil {
		t.Fatalf("the first hold: %v", err)
	}
	if _, err := r.Hold(600 << 20); larder.ErrorCode(err) != larder.ENOSPACE {
		t.Fatalf("a second hold beside the first: %v, want ENOSPACE", err)
	}
	a.Release()
	b, err := r.Hold(600 << 20)
	if err != nil {
		t.Fatalf("a hold after the first is released: %v", err)
	}
	if err := b.Wrote(100 << 20); err != nil {
		t.Errorf("Wrote: %v", err)
	}
	b.Release()
}
