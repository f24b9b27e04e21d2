package disk_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/disk"
)

// openSpace opens the spaces in a temporary folder, and alice's space.
func openSpace(t *testing.T) (string, *disk.Spaces, *disk.Space) {
	t.Helper()
	dir := t.TempDir()
	spaces, err := disk.OpenSpaces(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { spaces.Close() })
	sp, err := spaces.Space(1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	return dir, spaces, sp
}

// TestParts: an unfinished upload is listed with its target, counts at its
// file's size, and is cancelled with its target file, but not while it is
// written.
func TestParts(t *testing.T) {
	dir, _, sp := openSpace(t)
	up, err := sp.StartUpload("a/b.bin", 1000, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(make([]byte, 300)); err != nil {
		t.Fatal(err)
	}
	parts, err := sp.Parts()
	if err != nil || len(parts) != 1 {
		t.Fatalf("parts: %v, %v", parts, err)
	}
	if p := parts[0]; p.ID != up.ID || p.Target != "a/b.bin" || p.Size != 1000 || p.Received != 300 || !p.Active {
		t.Errorf("the part being written: %+v", p)
	}
	if u, err := sp.PartUsage(""); err != nil || u != (larder.Usage{Bytes: 1000, Files: 1}) {
		t.Errorf("PartUsage: %+v, %v; want the file's size, one file", u, err)
	}
	if u, _ := sp.PartUsage(up.ID); u != (larder.Usage{}) {
		t.Errorf("PartUsage without it: %+v", u)
	}
	if _, _, err := sp.CancelUploads("a/b.bin"); larder.ErrorCode(err) != larder.ECONFLICT {
		t.Errorf("cancelling an upload being written: %v, want a conflict", err)
	}
	up.Close()
	if parts, _ := sp.Parts(); len(parts) != 1 || parts[0].Active {
		t.Errorf("an interrupted upload: %+v", parts)
	}
	if _, _, err := sp.CancelUploads("other"); larder.ErrorCode(err) != larder.ENOTFOUND {
		t.Errorf("cancelling no upload: %v, want not found", err)
	}
	n, bytes, err := sp.CancelUploads("a/b.bin")
	if err != nil || n != 1 || bytes != 300 {
		t.Errorf("cancel: %d, %d, %v", n, bytes, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*", "uploads", "*")); len(left) != 0 {
		t.Errorf("files left in uploads/: %v", left)
	}
}

// TestStaleUploadsTakeTheirTargets: the sweep removes a part file and the
// file of its target.
func TestStaleUploadsTakeTheirTargets(t *testing.T) {
	dir, spaces, sp := openSpace(t)
	up, err := sp.StartUpload("x", 10, false)
	if err != nil {
		t.Fatal(err)
	}
	up.Close()
	old := time.Now().Add(-48 * time.Hour)
	files, _ := filepath.Glob(filepath.Join(dir, "*", "uploads", "*"))
	for _, f := range files {
		os.Chtimes(f, old, old)
	}
	if n, err := spaces.RemoveStaleUploads(time.Now().Add(-24 * time.Hour)); err != nil || n != 1 {
		t.Fatalf("RemoveStaleUploads: %d, %v", n, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*", "uploads", "*")); len(left) != 0 {
		t.Errorf("files left in uploads/: %v", left)
	}
}

func TestReserveCheck(t *testing.T) {
	dir := t.TempDir()
	if err := disk.NewReserve(disk.MinFree{}, dir).Check(1 << 62); err != nil {
		t.Errorf("no reserve: %v", err)
	}
	if err := disk.NewReserve(disk.MinFree{Bytes: 1}, dir).Check(0); err != nil {
		t.Errorf("a reserve of 1 byte: %v", err)
	}
	if err := disk.NewReserve(disk.MinFree{Bytes: 1}, dir).Check(1 << 62); larder.ErrorCode(err) != larder.ENOSPACE {
		t.Errorf("an upload larger than the disk: %v, want ENOSPACE", err)
	}
	// Only the uploads' file system must take the upload; the others keep
	// their reserve.
	if err := disk.NewReserve(disk.MinFree{Bytes: 1}, "/nonexistent", dir).Check(1 << 62); err != nil {
		t.Errorf("an upload's size asked of a file system it does not go to: %v", err)
	}
	if err := disk.NewReserve(disk.MinFree{Bytes: 1 << 62}, "/nonexistent", dir).Check(0); larder.ErrorCode(err) != larder.ENOSPACE {
		t.Errorf("another file system below its reserve: %v, want ENOSPACE", err)
	}
}

// TestStartUploadFailureLeavesNoPart: an upload that cannot start (here
// its target's record beside the part cannot be written; on a full disk,
// for want of space) leaves no part behind, which would count in the
// quota at the file's size until swept a day later.
func TestStartUploadFailureLeavesNoPart(t *testing.T) {
	dir, _, sp := openSpace(t)
	sum := sha256.Sum256([]byte("big.bin"))
	id := hex.EncodeToString(sum[:16]) + "-1000000"
	// A folder where the target's record goes makes writing it fail.
	if err := os.Mkdir(filepath.Join(dir, "id-1", "uploads", id+".path"), 0o700); err != nil {
		t.Fatal(err)
	}
	if up, err := sp.StartUpload("big.bin", 1000000, true); err == nil {
		up.Close()
		t.Fatal("the upload started though its target could not be recorded")
	}
	if parts, err := sp.Parts(); err != nil || len(parts) != 0 {
		t.Errorf("parts after a failed start: %+v, %v; want none", parts, err)
	}
	if u, _ := sp.PartUsage(""); u != (larder.Usage{}) {
		t.Errorf("PartUsage after a failed start: %+v; want nothing", u)
	}
}

// TestStartUploadFailureKeepsResumable: a start that fails does not take
// away what an earlier session of the upload received.
func TestStartUploadFailureKeepsResumable(t *testing.T) {
	dir, _, sp := openSpace(t)
	up, err := sp.StartUpload("big.bin", 1000, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(make([]byte, 300)); err != nil {
		t.Fatal(err)
	}
	up.Close()
	uploads := filepath.Join(dir, "id-1", "uploads")
	path := filepath.Join(uploads, strings.TrimSuffix(up.ID, ".part")+".path")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if up, err := sp.StartUpload("big.bin", 1000, true); err == nil {
		up.Close()
		t.Fatal("the upload started though its target could not be recorded")
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	up, err = sp.StartUpload("big.bin", 1000, true)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	if up.Offset != 300 {
		t.Errorf("resumed at %d, want 300: the failed start lost the bytes received before", up.Offset)
	}
}

// TestPlaceAfterFolderMoved: an upload whose folder was moved or removed
// while it was sent is refused at commit naming the folder that is gone,
// not the file (which never existed), and stays for a resume.
func TestPlaceAfterFolderMoved(t *testing.T) {
	_, _, sp := openSpace(t)
	if err := sp.Mkdir("d"); err != nil {
		t.Fatal(err)
	}
	up, err := sp.StartUpload("d/x.bin", 3, false)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	if _, err := up.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	if err := sp.Rename("d", "e", false); err != nil {
		t.Fatal(err)
	}
	err = up.Place(false)
	if larder.ErrorCode(err) != larder.ENOTFOUND || !strings.Contains(larder.ErrorMessage(err), `folder "d"`) {
		t.Errorf("placing into a folder moved away: %v (%s), want NOT_FOUND naming the folder \"d\"", err, larder.ErrorCode(err))
	}
	if parts, _ := sp.Parts(); len(parts) != 1 || parts[0].Received != 3 {
		t.Errorf("parts after the refusal: %+v, want the upload kept for a resume", parts)
	}
}
