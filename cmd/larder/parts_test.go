//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/internal/disk"
	"github.com/larderfs/larder/lnp"
)

// cutAt serves data but fails reads at or past at: a client killed midway.
type cutAt struct {
	data []byte
	at   int64
}

func (c *cutAt) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > c.at {
		return 0, errors.New("killed")
	}
	return bytes.NewReader(c.data).ReadAt(p, off)
}

// TestLNPParts: an interrupted upload shows in whoami and parts,
// counts against the quota (exit code 7, naming parts), and parts rm
// gives its space back.
func TestLNPParts(t *testing.T) {
	l := startLarder(t, func(c *ServeConfig) { c.Quota.Bytes = 3 << 20 })
	env := loggedIn(t, l)
	ctx := context.Background()
	_, s, err := lnpFlagsFor(t, env).connect(ctx, env)
	must(t, err)
	data := randomData(2<<20, 7)
	if _, err := s.Put(ctx, "/big.bin", &cutAt{data: data, at: 1 << 20}, int64(len(data)), client.PutOptions{}); err == nil {
		t.Fatal("the cut upload succeeded")
	}
	s.Close()

	out, _ := runOK(t, env, "whoami")
	if !strings.Contains(out, "bytes:  2.0 MiB (2097152 bytes) used") || !strings.Contains(out, "parts:  1 unfinished upload, holding 2.0 MiB") {
		t.Errorf("whoami printed %q, want the part counted", out)
	}
	out, _ = runOK(t, env, "parts")
	if !strings.Contains(out, "/big.bin  ") || !strings.Contains(out, "of 2.0 MiB") {
		t.Errorf("parts printed %q", out)
	}
	other := writeLocal(t, t.TempDir(), "other.bin", data)
	wantExit(t, env, exitQuota, []string{"QUOTA_EXCEEDED", "unfinished upload", "larder parts"}, "put", other)
	wantExit(t, env, exitUsage, nil, "parts", "rm")
	wantExit(t, env, exitNotFound, []string{"no unfinished upload"}, "parts", "rm", "/nothing")
	runOK(t, env, "parts", "rm", "/big.bin")
	if out, _ := runOK(t, env, "parts"); out != "no unfinished uploads\n" {
		t.Errorf("parts after rm printed %q", out)
	}
	runOK(t, env, "put", other)
}

// TestLNPFullDiskExitCode: with the data folder on a small file system
// and no reserve, an upload that fills the disk in the middle is ended by
// the server with NO_SPACE, which the client reports with its own exit
// code instead of "connection reset by peer"; its part is removed, so
// registrations and uploads work again at once.
func TestLNPFullDiskExitCode(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs to fill (needs root): %v: %s", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	l := startLarder(t, func(c *ServeConfig) {
		c.DataDir = dir
		c.MinFree = disk.MinFree{} // none: the disk itself runs out
	})
	env := loggedIn(t, l)
	big := writeLocal(t, t.TempDir(), "big.bin", randomData(100<<20, 8))
	wantExit(t, env, exitNoSpace, []string{"NO_SPACE"}, "put", big)

	small := writeLocal(t, t.TempDir(), "small.bin", randomData(1<<20, 9))
	runOK(t, env, "put", small)
	other, _, stderr := testEnv(t, l.addr())
	if err := run(other, "register", "--user", "bob"); err != nil {
		t.Fatalf("register after the disk filled: %v\n%s", err, stderr)
	}
}

func TestMinFreeFlag(t *testing.T) {
	for in, want := range map[string]disk.MinFree{
		"auto": disk.DefaultMinFree, "0": {}, "2%": {Percent: 2}, "0.5%": {Percent: 0.5},
		"512MiB": {Bytes: 512 << 20}, "1000": {Bytes: 1000},
	} {
		var got disk.MinFree
		if err := minFreeFlag(&got)(in); err != nil || got != want {
			t.Errorf("--min-free %q = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "100%", "x%", "1GB", "auto2"} {
		var got disk.MinFree
		if err := minFreeFlag(&got)(in); err == nil {
			t.Errorf("--min-free %q accepted", in)
		}
	}
}

// blockAt serves data but holds reads at or past at until release is
// closed: an upload left in progress.
type blockAt struct {
	data    []byte
	at      int64
	release chan struct{}
}

func (b *blockAt) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > b.at {
		<-b.release
		return 0, errors.New("released")
	}
	return bytes.NewReader(b.data).ReadAt(p, off)
}

// TestLNPPutWhileUploading: a put of a path another session is uploading
// is refused with CONFLICT naming the upload in progress, and, when it
// was given -f, without the hint to pass -f, which could not help.
func TestLNPPutWhileUploading(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	ctx := context.Background()
	_, s, err := lnpFlagsFor(t, env).connect(ctx, env)
	must(t, err)
	defer s.Close()
	data := randomData(2<<20, 9)
	b := &blockAt{data: data, at: 1 << 20, release: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Put(ctx, "/big.bin", b, int64(len(data)), client.PutOptions{})
	}()
	defer func() { close(b.release); <-done }()
	// The upload is in progress once its part has bytes in it.
	for i := 0; ; i++ {
		if out, _ := runOK(t, env, "parts"); strings.Contains(out, "/big.bin  ") && !strings.Contains(out, "0 B of") {
			break
		}
		if i == 100 {
			t.Fatal("the upload never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	local := writeLocal(t, t.TempDir(), "big.bin", data)
	env, _, _ = withVars(env)
	err = run(env, "put", "-f", local, "/big.bin")
	if err == nil || !strings.Contains(err.Error(), "in progress") {
		t.Fatalf("put -f while the path is uploaded: %v, want a conflict naming the upload in progress", err)
	}
	if strings.Contains(err.Error(), "-f") {
		t.Errorf("put -f while the path is uploaded: %v; the hint to pass -f cannot help", err)
	}
}

// TestLNPMvOverFolderNotEmpty: mv -f of a folder onto a folder that is
// not empty is refused, saying so, without the hint to pass -f, and
// moves nothing.
func TestLNPMvOverFolderNotEmpty(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	runOK(t, env, "mkdir", "-p", "/m1", "/m2/m1/sub")
	env, _, _ = withVars(env)
	err := run(env, "mv", "-f", "/m1", "/m2/")
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("mv -f onto a folder that is not empty: %v, want a conflict saying it is not empty", err)
	}
	if strings.Contains(err.Error(), "-f") {
		t.Errorf("mv -f onto a folder that is not empty: %v; the hint to pass -f cannot help", err)
	}
	runOK(t, env, "stat", "/m1")
	runOK(t, env, "stat", "/m2/m1/sub")
}

// TestLNPPartsRmEmptyPath: "parts rm" with an empty PATH (a shell
// variable that was not set) is a usage error, not a cancel of every
// unfinished upload, which only --all asks for.
func TestLNPPartsRmEmptyPath(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	ctx := context.Background()
	_, s, err := lnpFlagsFor(t, env).connect(ctx, env)
	must(t, err)
	data := randomData(2<<20, 7)
	if _, err := s.Put(ctx, "/big.bin", &cutAt{data: data, at: 1 << 20}, int64(len(data)), client.PutOptions{}); err == nil {
		t.Fatal("the cut upload succeeded")
	}
	s.Close()
	wantExit(t, env, exitUsage, []string{"empty"}, "parts", "rm", "")
	wantExit(t, env, exitUsage, []string{"empty"}, "parts", "rm", "/other.bin", "")
	if out, _ := runOK(t, env, "parts"); !strings.Contains(out, "/big.bin  ") {
		t.Errorf("parts after a refused rm printed %q, want the upload kept", out)
	}
}

// TestPartLineNoEscapes: the ID of a part whose path the server does not
// know is the server's text: a hostile server's escape sequences in it
// are printed escaped, never sent to the terminal.
func TestPartLineNoEscapes(t *testing.T) {
	line := partLine(lnp.Part{ID: "\x1b]0;pwned\a\x1b[2J", Size: 1})
	if strings.ContainsAny(line, "\x1b\a") {
		t.Errorf("partLine printed the server's escape sequences: %q", line)
	}
}
