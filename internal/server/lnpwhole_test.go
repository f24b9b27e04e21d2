package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/internal/disk"
	"github.com/larderfs/larder/internal/server"
	"github.com/larderfs/larder/internal/tlsconf"
	"github.com/larderfs/larder/lnp"
)

// frameSession is a session driven frame by frame: its HELLO offers
// features, and it returns the WELCOME's grant.
type frameSession struct {
	t *testing.T
	w *lnp.Writer
	r *lnp.Reader
}

func (h *lnpHarness) frameSession(t *testing.T, sig larder.Signature, features lnp.Features) (*frameSession, lnp.Features) {
	t.Helper()
	var conn net.Conn
	var err error
	if h.plaintext {
		conn, err = net.Dial("tcp", h.addr)
	} else {
		var cfg *tls.Config
		cfg, err = tlsconf.ClientConfig(h.addr, h.known, tlsconf.ClientOptions{Warn: io.Discard})
		must(t, err)
		conn, err = tls.Dial("tcp", h.addr, cfg)
	}
	must(t, err)
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	rs := &frameSession{t: t, w: lnp.NewWriter(conn, 0), r: lnp.NewReader(conn)}
	rs.send(lnp.Hello{User: "alice", Signature: sig, MaxBlock: lnp.MinBlockSize, Features: features})
	wel, err := lnp.ParseWelcome(rs.next(lnp.TypeWelcome))
	if err != nil || wel.Status != lnp.StatusOK {
		t.Fatalf("login: %+v, %v", wel, err)
	}
	rs.r.SetBlockSize(int(wel.BlockSize))
	return rs, wel.Features
}

func (rs *frameSession) send(m lnp.Message) {
	rs.t.Helper()
	must(rs.t, rs.w.Write(m))
	must(rs.t, rs.w.Flush())
}

func (rs *frameSession) next(want lnp.Type) []byte {
	rs.t.Helper()
	typ, body, err := rs.r.Next()
	if err != nil || typ != want {
		rs.t.Fatalf("got %v %v, want a %v frame", typ, err, want)
	}
	return body
}

func (rs *frameSession) reply() lnp.Reply {
	rs.t.Helper()
	r, err := lnp.ParseReply(rs.next(lnp.TypeReply))
	must(rs.t, err)
	return r
}

// put uploads data in blocks of bs bytes, each DATA frame carrying the
// hash hashOf gives it, then END with the SHA-256 of want; it returns the
// final REPLY.
func (rs *frameSession) put(name string, data, want []byte, bs int, hashOf func([]byte) [32]byte) lnp.Reply {
	rs.t.Helper()
	rs.send(lnp.Put{Path: name, Size: uint64(len(data))})
	if r := rs.reply(); r.Status != lnp.StatusOK {
		rs.t.Fatalf("PUT: %v %q", r.Status, r.Message)
	}
	for off := 0; off < len(data); off += bs {
		p := data[off:min(off+bs, len(data))]
		d := lnp.Data{Offset: uint64(off), SHA256: hashOf(p)}
		must(rs.t, rs.w.WriteFrameParts(lnp.TypeData, d.AppendHead(nil), p))
	}
	rs.send(lnp.EndHash{SHA256: sha256.Sum256(want)})
	return rs.reply()
}

func zeroHash([]byte) [32]byte { return [32]byte{} }

// TestLNPNoBlockHashesUpload: a session granted FeatureNoBlockHashes
// uploads blocks whose hash field is not checked; the whole file's
// SHA-256 at END is. A corrupted byte is refused there, and nothing of
// the upload is kept; the same session then uploads the file.
func TestLNPNoBlockHashesUpload(t *testing.T) {
	h := newLNPHarness(t)
	ctx := context.Background()
	sig := h.register(t, "alice", "pw")
	rs, granted := h.frameSession(t, sig, lnp.FeatureNoBlockHashes)
	if granted != lnp.FeatureNoBlockHashes {
		t.Fatalf("granted %b, want bit 1", granted)
	}
	bs := lnp.MinBlockSize
	data := randomBytes(3*bs+100, 181)
	bad := bytes.Clone(data)
	bad[2*bs+9] ^= 0x40
	r := rs.put("f.bin", bad, data, bs, zeroHash)
	if r.Status != lnp.StatusHashMismatch || !strings.Contains(r.Message, "nothing kept") {
		t.Fatalf("a corrupted byte under bit 1: got %v %q, want HASH_MISMATCH, nothing kept", r.Status, r.Message)
	}
	s := h.login(t, "alice", sig)
	if _, err := s.Stat(ctx, "f.bin"); err == nil {
		t.Fatal("a corrupted upload left a file")
	}
	if parts, err := s.Parts(ctx); err != nil || len(parts) != 0 {
		t.Fatalf("a corrupted upload left parts: %+v, %v", parts, err)
	}

	// Hash fields are not checked, whatever they hold; the session goes
	// on after the refusal.
	r = rs.put("f.bin", data, data, bs, func([]byte) [32]byte { return [32]byte{0: 0xaa, 31: 0x55} })
	if r.Status != lnp.StatusOK {
		t.Fatalf("an upload with unchecked block hashes: %v %q", r.Status, r.Message)
	}
	e, err := lnp.ParseEntry(r.Body)
	if err != nil || e.SHA256 != sha256.Sum256(data) || e.Size != uint64(len(data)) {
		t.Fatalf("the entry: %+v, %v", e, err)
	}
	// The server computed no block sums, so it records none.
	if _, err := h.parts.records.BlockSums(ctx, e.SHA256, int64(len(data)), bs); err == nil {
		t.Error("block sums recorded for an upload whose blocks had no hashes")
	}
	var got bytes.Buffer
	if _, err := s.Get(ctx, "f.bin", 0, &got, nil); err != nil || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("the file: %v", err)
	}
}

// TestLNPNoBlockHashesDownload: a download of a session granted
// FeatureNoBlockHashes carries zero hashes, over TLS and in plaintext
// (sendfile), while one not granted it carries each block's SHA-256. A
// file corrupted on the server's disk in a way the server cannot see
// fails the client's check of the whole file, and replaces nothing.
func TestLNPNoBlockHashesDownload(t *testing.T) {
	for name, start := range map[string]func(*testing.T, ...func(*server.Server)) *lnpHarness{
		"TLS":       newLNPHarness,
		"plaintext": newPlaintextLNPHarness,
	} {
		t.Run(name, func(t *testing.T) {
			h := start(t)
			h.features = lnp.FeatureNoBlockHashes
			ctx := context.Background()
			sig := h.register(t, "alice", "pw")
			s := h.login(t, "alice", sig)
			if s.Features() != lnp.FeatureNoBlockHashes {
				t.Fatalf("granted %b, want bit 1", s.Features())
			}
			bs := lnp.MinBlockSize
			data := randomBytes(70*bs+5, 182) // above the size whose sums are kept
			if _, err := s.Put(ctx, "f.bin", bytes.NewReader(data), int64(len(data)), client.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			// The sums of a download of a session with block hashes are
			// recorded, as before: the next download of such a session
			// uses them, but one of bit 1 neither uses nor needs them.
			for _, features := range []lnp.Features{0, 0, lnp.FeatureNoBlockHashes} {
				rs, _ := h.frameSession(t, sig, features)
				rs.send(lnp.Get{Path: "f.bin"})
				head, err := lnp.ParseGetReply(rs.reply().Body)
				if err != nil || head.SHA256 != sha256.Sum256(data) {
					t.Fatalf("GET: %+v, %v", head, err)
				}
				var got []byte
				for {
					typ, body, err := rs.r.Next()
					must(t, err)
					if typ == lnp.TypeEnd {
						break
					}
					d, err := lnp.ParseData(body)
					must(t, err)
					want := sha256.Sum256(d.Payload)
					if features != 0 {
						want = [32]byte{}
					}
					if d.SHA256 != want {
						t.Fatalf("features %b: block at %d carries %x, want %x", features, d.Offset, d.SHA256[:4], want[:4])
					}
					got = append(got, d.Payload...)
				}
				if !bytes.Equal(got, data) {
					t.Fatalf("features %b: the download is not the file", features)
				}
			}

			h.corruptUnseen(t, "f.bin", data, 40*bs+7)

			local := filepath.Join(t.TempDir(), "f.bin")
			must(t, os.WriteFile(local, []byte("the user's own file"), 0o600))
			_, err := s.Download(ctx, "f.bin", local, client.DownloadOptions{Overwrite: true})
			var ie *client.IntegrityError
			if !errors.As(err, &ie) || ie.Block != -1 {
				t.Fatalf("a download of a file corrupted on disk: got %v, want an IntegrityError on the whole file", err)
			}
			if back, _ := os.ReadFile(local); string(back) != "the user's own file" {
				t.Fatalf("a bad download replaced the local file: now %d bytes", len(back))
			}
			if _, err := s.Get(ctx, "f.bin", 0, io.Discard, nil); !errors.As(err, &ie) || ie.Block != -1 {
				t.Fatalf("Get of a file corrupted on disk: got %v, want an IntegrityError on the whole file", err)
			}
			if _, err := s.Get(ctx, "f.bin", int64(bs), io.Discard, nil); err == nil || !strings.Contains(err.Error(), "use Download") {
				t.Fatalf("Get from an offset under bit 1: got %v, want it refused", err)
			}
		})
	}
}

// TestLNPNoBlockHashesResumes: under FeatureNoBlockHashes an interrupted
// upload resumes from the bytes received; a part corrupted meanwhile is
// refused at END and removed, and the file can then be sent again. A
// partial download resumes from its blocks that SUMS confirms.
func TestLNPNoBlockHashesResumes(t *testing.T) {
	h := newLNPHarness(t)
	h.features = lnp.FeatureNoBlockHashes
	ctx := context.Background()
	sig := h.register(t, "alice", "pw")
	s := h.login(t, "alice", sig)
	if s.Features() != lnp.FeatureNoBlockHashes {
		t.Fatalf("granted %b, want bit 1", s.Features())
	}
	bs := s.BlockSize()
	data := randomBytes(5*bs+123, 183)

	cutUpload := func(name string) {
		t.Helper()
		first, err := h.dial("alice", sig, 0)
		must(t, err)
		defer first.Close()
		cut := &cutReader{r: bytes.NewReader(data), after: 3 * int64(bs)}
		if _, err := first.Put(ctx, name, cut, int64(len(data)), client.PutOptions{}); err == nil {
			t.Fatal("the cut upload succeeded")
		}
	}
	resume := func(name string) (int, error) {
		var err error
		resumedAt := -1
		waitFor(t, func() bool {
			next, derr := h.dial("alice", sig, 0)
			if derr != nil {
				return false
			}
			defer next.Close()
			resumedAt = -1
			_, err = next.Put(ctx, name, bytes.NewReader(data), int64(len(data)), client.PutOptions{
				Resume:  true,
				Resumed: func(n int64) { resumedAt = int(n) },
			})
			var le *client.LNPError
			return !errors.As(err, &le) || le.Status != lnp.StatusConflict // the cut session may still hold it
		})
		return resumedAt, err
	}

	cutUpload("a.bin")
	at, err := resume("a.bin")
	if err != nil || at <= 0 {
		t.Fatalf("the resume: from %d, %v", at, err)
	}
	var got bytes.Buffer
	if _, err := s.Get(ctx, "a.bin", 0, &got, nil); err != nil || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("the resumed file: %v", err)
	}

	// The part's received bytes are corrupted before the resume.
	cutUpload("b.bin")
	var partFile string
	waitFor(t, func() bool {
		parts, err := s.Parts(ctx)
		if err != nil || len(parts) != 1 || parts[0].Active || parts[0].Received == 0 {
			return false
		}
		filepath.WalkDir(h.spaces, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".part") {
				partFile = p
			}
			return nil
		})
		return partFile != ""
	})
	f, err := os.OpenFile(partFile, os.O_RDWR, 0)
	must(t, err)
	_, err = f.WriteAt([]byte{data[100] ^ 1}, 100)
	must(t, err)
	f.Close()
	at, err = resume("b.bin")
	wantLNPStatus(t, "a resume onto a corrupted part", err, lnp.StatusHashMismatch)
	if at <= 0 {
		t.Fatalf("the resume onto a corrupted part started at %d, want past 0", at)
	}
	if parts, err := s.Parts(ctx); err != nil || len(parts) != 0 {
		t.Fatalf("a refused upload left parts: %+v, %v", parts, err)
	}
	if _, err := s.Put(ctx, "b.bin", bytes.NewReader(data), int64(len(data)), client.PutOptions{Resume: true}); err != nil {
		t.Fatalf("sending it again: %v", err)
	}

	// A partial download: two good blocks and a corrupt third.
	local := filepath.Join(t.TempDir(), "b.bin")
	partial := bytes.Clone(data[:3*bs-10])
	partial[2*bs+5] ^= 0xff
	must(t, os.WriteFile(local, partial, 0o600))
	var fetched int
	if _, err := s.GetFile(ctx, "b.bin", local, func(n int) { fetched += n }); err != nil {
		t.Fatalf("GetFile: %v", err)
	}
	if fetched != len(data)-2*bs {
		t.Errorf("fetched %d bytes, want %d: the two good blocks kept", fetched, len(data)-2*bs)
	}
	if back, _ := os.ReadFile(local); !bytes.Equal(back, data) {
		t.Fatal("the resumed download is not the file")
	}
}

// corruptUnseen flips a bit of the byte at of alice's file name, whose
// content is data, on the server's disk, in a way the server cannot see:
// its record still says the file is the one uploaded, as bit rot would
// leave it.
func (h *lnpHarness) corruptUnseen(t *testing.T, name string, data []byte, at int) {
	t.Helper()
	ctx := context.Background()
	onDisk := filepath.Join(h.spaces, "id-1", "files", name)
	fi, err := os.Stat(onDisk)
	must(t, err)
	corrupt := bytes.Clone(data)
	corrupt[at] ^= 0x80
	must(t, os.WriteFile(onDisk, corrupt, 0o600))
	must(t, os.Chtimes(onDisk, fi.ModTime(), fi.ModTime()))
	fi, err = os.Stat(onDisk)
	must(t, err)
	rec, err := h.parts.records.FileByPath(ctx, "#1", name)
	must(t, err)
	if rec.Version, _ = disk.VersionOf(fi); rec.Version == "" {
		t.Skip("no file versions on this system (disk.VersionOf): records are never trusted, so no corruption goes unseen")
	}
	must(t, h.parts.records.PutFile(ctx, rec))
}
