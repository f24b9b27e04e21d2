package server_test

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/internal/disk"
	"github.com/larderfs/larder/internal/server"
	"github.com/larderfs/larder/lnp"
)

const mib = 1 << 20

// gatedReader serves r, but blocks reads at or past gate until open is
// closed: an upload held in the middle.
type gatedReader struct {
	r    *bytes.Reader
	gate int64
	open chan struct{}
}

func newGatedReader(data []byte, gate int64) *gatedReader {
	return &gatedReader{r: bytes.NewReader(data), gate: gate, open: make(chan struct{})}
}

func (g *gatedReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > g.gate {
		<-g.open
	}
	return g.r.ReadAt(p, off)
}

// heldPut starts an upload of data to path in a session of its own, and
// holds it once it has sent gate bytes or fewer, when its part file is in
// the spaces below dir. Calling release lets it go on; done yields its
// outcome.
func (h *lnpHarness) heldPut(t *testing.T, sig larder.Signature, path string, data []byte, gate int64, dir string) (release func(), done <-chan error) {
	t.Helper()
	s, err := h.dial("alice", sig, 0)
	must(t, err)
	t.Cleanup(func() { s.Close() })
	held := newGatedReader(data, gate)
	result := make(chan error, 1)
	go func() {
		_, err := s.Put(context.Background(), path, held, int64(len(data)), client.PutOptions{})
		result <- err
	}()
	waitFor(t, func() bool { return len(partFiles(t, dir)) == 1 })
	return func() { close(held.open) }, result
}

// cutPut uploads data to path in a session of its own that dies after
// sending after bytes, leaving an interrupted upload.
func (h *lnpHarness) cutPut(t *testing.T, sig larder.Signature, path string, data []byte, after int64) {
	t.Helper()
	cut, err := h.dial("alice", sig, 0)
	must(t, err)
	defer cut.Close()
	if _, err := cut.Put(context.Background(), path, &cutReader{r: bytes.NewReader(data), after: after}, int64(len(data)), client.PutOptions{}); err == nil {
		t.Fatal("the cut upload succeeded")
	}
}

// partFiles returns the part files in the spaces below dir.
func partFiles(t *testing.T, dir string) []string {
	t.Helper()
	parts, err := filepath.Glob(filepath.Join(dir, "*", "uploads", "*.part"))
	must(t, err)
	return parts
}

// TestLNPPartsCountAgainstQuota: an interrupted upload's part counts
// in whoami and in the admission of the next upload, at its file's size,
// until its owner lists and cancels it.
func TestLNPPartsCountAgainstQuota(t *testing.T) {
	h := newLNPHarnessFiles(t, func(p *fileParts) { p.quota = larder.Quota{Bytes: 3 * mib} })
	ctx := context.Background()
	sig := h.register(t, "alice", "pw")
	data := randomBytes(2*mib+5, 201)

	h.cutPut(t, sig, "big.bin", data, mib)
	s := h.login(t, "alice", sig)
	waitFor(t, func() bool {
		// The cut upload's part counts at once, but its server side lets go
		// of it only once it has seen the connection end: wait for both.
		w, err := s.Whoami(ctx)
		if err != nil || w.BytesUsed != uint64(len(data)) || w.FilesUsed != 1 {
			return false
		}
		parts, err := s.Parts(ctx)
		return err == nil && len(parts) == 1 && !parts[0].Active
	})

	// 2 MiB more would make 4 MiB with the part: refused before any data,
	// and leaving no part of its own.
	_, err := s.Put(ctx, "b.bin", bytes.NewReader(data[:2*mib]), 2*mib, client.PutOptions{})
	wantLNPStatus(t, "an upload over the quota with the part", err, lnp.StatusQuotaExceeded)
	if !strings.Contains(err.Error(), "unfinished upload") {
		t.Errorf("the refusal does not name the unfinished upload: %v", err)
	}
	s = h.login(t, "alice", sig)
	if got := partFiles(t, h.spaces); len(got) != 1 {
		t.Errorf("%d part files, want the interrupted one only", len(got))
	}

	parts, err := s.Parts(ctx)
	if err != nil || len(parts) != 1 {
		t.Fatalf("parts: %v, %v", parts, err)
	}
	if p := parts[0]; p.Path != "big.bin" || p.Size != uint64(len(data)) || p.Received > mib || p.Active {
		t.Errorf("the part: %+v", p)
	}
	_, err = s.Cancel(ctx, "nothing.bin")
	wantLNPStatus(t, "cancelling an upload that does not exist", err, lnp.StatusNotFound)
	r, err := s.Cancel(ctx, "/big.bin")
	if err != nil || r.Count != 1 {
		t.Fatalf("cancel: %+v, %v", r, err)
	}
	if w, err := s.Whoami(ctx); err != nil || w.BytesUsed != 0 || w.FilesUsed != 0 {
		t.Errorf("whoami after the cancel: %+v, %v", w, err)
	}
	if got := partFiles(t, h.spaces); len(got) != 0 {
		t.Errorf("part files after the cancel: %v", got)
	}
	if _, err := s.Put(ctx, "b.bin", bytes.NewReader(data[:2*mib]), 2*mib, client.PutOptions{}); err != nil {
		t.Errorf("the upload after the cancel: %v", err)
	}
}

// TestLNPUploadSupersedesOtherSizes: an upload of a path replaces the
// unfinished uploads of that path of other sizes, which it could never
// resume and which would otherwise hold its quota.
func TestLNPUploadSupersedesOtherSizes(t *testing.T) {
	h := newLNPHarnessFiles(t, func(p *fileParts) { p.quota = larder.Quota{Bytes: 3 * mib} })
	ctx := context.Background()
	sig := h.register(t, "alice", "pw")
	data := randomBytes(2*mib, 205)
	h.cutPut(t, sig, "f.bin", data, mib)
	s := h.login(t, "alice", sig)
	waitFor(t, func() bool {
		parts, err := s.Parts(ctx)
		return err == nil && len(parts) == 1 && !parts[0].Active
	})
	// The file changed: 2 MiB more, which with the old part's 2 MiB would
	// be over the quota.
	changed := append(data, data[:mib]...)
	if _, err := s.Put(ctx, "f.bin", bytes.NewReader(changed[:2*mib+1]), 2*mib+1, client.PutOptions{Resume: true}); err != nil {
		t.Fatalf("an upload of the same path with another size: %v", err)
	}
	if got := partFiles(t, h.spaces); len(got) != 0 {
		t.Errorf("part files left: %v", got)
	}
}

// TestLNPUploadsAtOnceSeeEachOther: two uploads that together exceed
// the quota, started together: the second is refused before its data, not
// at commit with a complete part left behind.
func TestLNPUploadsAtOnceSeeEachOther(t *testing.T) {
	h := newLNPHarnessFiles(t, func(p *fileParts) { p.quota = larder.Quota{Bytes: 3 * mib} })
	ctx := context.Background()
	sig := h.register(t, "alice", "pw")
	data := randomBytes(2*mib, 202)

	release, done := h.heldPut(t, sig, "a.bin", data, mib, h.spaces)

	s := h.login(t, "alice", sig)
	_, err := s.Put(ctx, "b.bin", bytes.NewReader(data), int64(len(data)), client.PutOptions{})
	wantLNPStatus(t, "a second upload beside one in flight", err, lnp.StatusQuotaExceeded)
	release()
	if err := <-done; err != nil {
		t.Fatalf("the first upload: %v", err)
	}
	if got := partFiles(t, h.spaces); len(got) != 0 {
		t.Errorf("part files left: %v", got)
	}
}

// TestLNPRefusedAtCommitLeavesNoPart: an upload that passes its
// admission but is refused at commit (here because another server sharing
// the database took the quota meanwhile) can never commit: its part is
// removed.
func TestLNPRefusedAtCommitLeavesNoPart(t *testing.T) {
	h := newLNPHarnessFiles(t, func(p *fileParts) { p.quota = larder.Quota{Bytes: 3 * mib} })
	ctx := context.Background()
	sig := h.register(t, "alice", "pw")
	data := randomBytes(2*mib, 203)

	// A second server on the same database, with spaces of its own.
	spaces, err := disk.OpenSpaces(t.TempDir())
	must(t, err)
	parts := h.parts
	parts.spaces = spaces
	twin := &server.Server{Auth: h.srv.Auth, Files: newFiles(t, parts), Logger: h.srv.Logger}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	go twin.ServeLNP(ln)
	t.Cleanup(func() { twin.Close(); twin.Wait(); spaces.Close() })

	release, done := h.heldPut(t, sig, "a.bin", data, mib, h.spaces)

	conn, err := net.Dial("tcp", ln.Addr().String())
	must(t, err)
	other, err := client.NewSession(ctx, conn, "alice", sig, client.SessionOptions{})
	must(t, err)
	defer other.Close()
	if _, err := other.Put(ctx, "b.bin", bytes.NewReader(data), int64(len(data)), client.PutOptions{}); err != nil {
		t.Fatalf("the upload through the other server: %v", err)
	}
	release()
	wantLNPStatus(t, "the upload refused at commit", <-done, lnp.StatusQuotaExceeded)
	if got := partFiles(t, h.spaces); len(got) != 0 {
		t.Errorf("the part of an upload refused at commit is left: %v", got)
	}
}

// TestLNPReserveRefusesUploadsOnly: below the reserve of free disk
// space an upload is refused with NO_SPACE before any data, and leaves no
// part; registrations, logins and other requests go on.
func TestLNPReserveRefusesUploadsOnly(t *testing.T) {
	var spaces string
	h := newLNPHarnessFiles(t, func(p *fileParts) {
		// A reserve larger than any free space: a full disk without a mount.
		spaces = t.TempDir()
		p.reserve = disk.NewReserve(disk.MinFree{Bytes: 1 << 60}, spaces)
	})
	ctx := context.Background()
	s := h.login(t, "alice", h.register(t, "alice", "pw"))
	_, err := s.Put(ctx, "a.bin", bytes.NewReader([]byte("hello")), 5, client.PutOptions{})
	wantLNPStatus(t, "an upload below the reserve", err, lnp.StatusNoSpace)
	if got := partFiles(t, h.spaces); len(got) != 0 {
		t.Errorf("a refused upload left parts: %v", got)
	}
	h.register(t, "bob", "pw")
	b := h.login(t, "bob", larder.NewSignature("pw", course.CourseSalt))
	if _, err := b.Whoami(ctx); err != nil {
		t.Errorf("whoami below the reserve: %v", err)
	}
	if err := b.Mkdir(ctx, "d"); err != nil {
		t.Errorf("mkdir below the reserve: %v", err)
	}
}

// TestLNPClientReadsReasonOfEarlyEnd: a client still sending when the
// server ends its upload (here: a corrupt block, then many more blocks
// sent without reading) finds the server's REPLY, not a reset connection.
func TestLNPClientReadsReasonOfEarlyEnd(t *testing.T) {
	h := newPlaintextLNPHarness(t)
	sig := h.register(t, "alice", "pw")
	conn, err := net.Dial("tcp", h.addr)
	must(t, err)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	w, r := lnp.NewWriter(conn, 0), lnp.NewReader(conn)
	must(t, w.Write(lnp.Hello{User: "alice", Signature: sig, MaxBlock: lnp.DefaultBlockSize}))
	must(t, w.Flush())
	if typ, _, err := r.Next(); err != nil || typ != lnp.TypeWelcome {
		t.Fatalf("welcome: %v %v", typ, err)
	}
	const blocks = 32
	must(t, w.Write(lnp.Put{Path: "f.bin", Size: blocks * mib}))
	must(t, w.Flush())
	if typ, _, err := r.Next(); err != nil || typ != lnp.TypeReply {
		t.Fatalf("put: %v %v", typ, err)
	}
	payload := make([]byte, mib)
	for i := range blocks {
		d := lnp.Data{Offset: uint64(i * mib)} // a wrong hash in every block
		if err := w.WriteFrameParts(lnp.TypeData, d.AppendHead(nil), payload); err != nil {
			t.Fatalf("block %d: the server reset the connection it should have drained: %v", i, err)
		}
	}
	w.Flush()
	r.SetBlockSize(lnp.DefaultBlockSize)
	typ, body, err := r.Next()
	if err != nil || typ != lnp.TypeReply {
		t.Fatalf("got %v %v, want the REPLY that ended the upload", typ, err)
	}
	reply, err := lnp.ParseReply(body)
	if err != nil || reply.Status != lnp.StatusHashMismatch {
		t.Fatalf("the REPLY: %+v %v", reply, err)
	}
	if _, _, err := r.Next(); err == nil {
		t.Error("the session goes on after a failed upload")
	}
}
