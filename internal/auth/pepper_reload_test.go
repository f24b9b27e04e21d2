package auth

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestHasherFollowsRotation: a Hasher that read a pepper file checks a
// hash made by another process after a rotation of that file (it reloads
// the file on meeting the unknown pepper), and makes its own new hashes
// with the new pepper soon after, without being told.
func TestHasherFollowsRotation(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "pepper")
	ps, err := CreatePepperFile(path)
	if err != nil {
		t.Fatal(err)
	}
	server := NewHasher(cheap, ps, 1)
	sig := []byte("signature")
	old, err := server.Hash(ctx, sig)
	if err != nil {
		t.Fatal(err)
	}

	id, err := RotatePepper(path)
	if err != nil {
		t.Fatal(err)
	}
	// An administrator's command reads the rotated file and stores a
	// hash made with the new pepper.
	ps2, err := LoadPeppers(path)
	if err != nil {
		t.Fatal(err)
	}
	admin := NewHasher(cheap, ps2, 1)
	v, err := admin.Hash(ctx, sig)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := server.Verify(ctx, v, sig); !ok || err != nil {
		t.Fatalf("the running server's Verify of a hash made with the rotated pepper %s: %v, %v; want true, nil", id, ok, err)
	}
	if ok, err := server.Verify(ctx, old, sig); !ok || err != nil {
		t.Fatalf("Verify of the hash made before the rotation: %v, %v", ok, err)
	}
	if got := server.Peppers().Current().ID; got != id {
		t.Errorf("current pepper after meeting %s: %s", id, got)
	}
	if !server.NeedsRehash(old) {
		t.Error("a hash with the old pepper does not need a rehash after the rotation")
	}
}

// TestHasherNoticesChangedFile: without meeting an unknown pepper, a
// Hasher makes its next hash with a rotated pepper.
func TestHasherNoticesChangedFile(t *testing.T) {
	ctx := context.Background()
	h, path := fileHasher(t)
	id, err := RotatePepper(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := h.Hash(ctx, []byte("sig"))
	if err != nil {
		t.Fatal(err)
	}
	if got := h.PepperIDs(v); !slices.Equal(got, []string{id}) {
		t.Fatalf("the first hash after rotating to %s names %v", id, got)
	}
}

// TestHasherKeepsPeppersOfBrokenFile: a pepper file that changes into one
// that does not load leaves the Hasher with the peppers it had; a
// ReloadPeppers says why; and the dummy check of an unknown user still
// works after the dummy's pepper is retired.
func TestHasherKeepsPeppersOfBrokenFile(t *testing.T) {
	ctx := context.Background()
	h, path := fileHasher(t)
	v, err := h.Hash(ctx, []byte("sig"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.ReloadPeppers(); err == nil {
		t.Error("ReloadPeppers of a file others may read: no error")
	}
	h.refreshPeppers()
	if ok, err := h.Verify(ctx, v, []byte("sig")); !ok || err != nil {
		t.Fatalf("Verify after the file broke: %v, %v", ok, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}

	if _, err := RotatePepper(path); err != nil {
		t.Fatal(err)
	}
	if err := RetirePepper(path, "p1"); err != nil {
		t.Fatal(err)
	}
	if err := h.ReloadPeppers(); err != nil {
		t.Fatal(err)
	}
	if ok, err := h.VerifyDummy(ctx, []byte("sig")); ok || err != nil {
		t.Fatalf("VerifyDummy after its pepper was retired: %v, %v; want false, nil", ok, err)
	}
}

// TestHasherQuietWhileFileMissing: a pepper file moved away is said once,
// not at every hash; the Hasher goes on with its peppers, and takes the
// file again once it is back.
func TestHasherQuietWhileFileMissing(t *testing.T) {
	ctx := context.Background()
	h, path := fileHasher(t)
	var logs strings.Builder
	h.SetLogger(slog.New(slog.NewTextHandler(&logs, nil)))
	if err := os.Rename(path, path+".away"); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := h.Hash(ctx, []byte("sig")); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(logs.String(), "does not load"); n != 1 {
		t.Errorf("the missing file was logged %d times, want once:\n%s", n, logs.String())
	}
	if err := os.Rename(path+".away", path); err != nil {
		t.Fatal(err)
	}
	if _, err := RotatePepper(path); err != nil {
		t.Fatal(err)
	}
	v, err := h.Hash(ctx, []byte("sig"))
	if err != nil {
		t.Fatal(err)
	}
	if got := h.PepperIDs(v); !slices.Equal(got, []string{"p2"}) {
		t.Errorf("after the file came back rotated, a new hash names %v, want p2", got)
	}
}

// TestHasherRefusesChangedKey: a pepper file replaced by one that gives an
// existing ID another key (another server's file, one made anew) is not
// taken: the hashes made with the old key would stop verifying.
func TestHasherRefusesChangedKey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "pepper")
	ps, err := CreatePepperFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := NewHasher(cheap, ps, 1)
	v, err := h.Hash(ctx, []byte("sig"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CreatePepperFile(filepath.Join(dir, "other")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "other"), path); err != nil {
		t.Fatal(err)
	}
	if err := h.ReloadPeppers(); err == nil || !strings.Contains(err.Error(), "another key") {
		t.Errorf("ReloadPeppers of a file with another p1: %v, want a refusal", err)
	}
	if ok, err := h.Verify(ctx, v, []byte("sig")); !ok || err != nil {
		t.Fatalf("Verify after the file was replaced: %v, %v; want the old key still in use", ok, err)
	}
}

// fileHasher returns a Hasher by the cheap policy over a new pepper file,
// and the file.
func fileHasher(t *testing.T) (*Hasher, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pepper")
	ps, err := CreatePepperFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return NewHasher(cheap, ps, 1), path
}
