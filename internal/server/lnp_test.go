package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/internal/audit"
	"github.com/larderfs/larder/internal/auth"
	"github.com/larderfs/larder/internal/clientconf"
	"github.com/larderfs/larder/internal/disk"
	"github.com/larderfs/larder/internal/server"
	"github.com/larderfs/larder/internal/sqlite"
	"github.com/larderfs/larder/internal/tlsconf"
	"github.com/larderfs/larder/lnp"
)

// lnpHarness is a real server speaking LNP/1 over TLS on 127.0.0.1,
// with the course protocol on a listener of its own, over temporary
// folders and a SQLite database.
type lnpHarness struct {
	srv        *server.Server
	addr       string // LNP/1
	courseAddr string
	files      string // the shared area
	spaces     string
	known      *clientconf.KnownServers
	users      *sqlite.UserStore
	devices    *sqlite.DeviceStore
	parts      fileParts // of the files service served
	logs       *syncBuffer
	plaintext  bool
	features   lnp.Features // offered by the sessions of dial and login
}

func newLNPHarness(t *testing.T, configure ...func(*server.Server)) *lnpHarness {
	t.Helper()
	return startLNPHarness(t, false, configure...)
}

// newLNPHarnessFiles is newLNPHarness serving a files service made of
// the harness's parts as change leaves them.
func newLNPHarnessFiles(t *testing.T, change func(*fileParts), configure ...func(*server.Server)) *lnpHarness {
	t.Helper()
	return startLNPHarnessFiles(t, false, change, configure...)
}

// newPlaintextLNPHarness is newLNPHarness without TLS, as
// --insecure-plaintext-native serves it.
func newPlaintextLNPHarness(t *testing.T, configure ...func(*server.Server)) *lnpHarness {
	t.Helper()
	return startLNPHarness(t, true, configure...)
}

func startLNPHarness(t *testing.T, plaintext bool, configure ...func(*server.Server)) *lnpHarness {
	t.Helper()
	return startLNPHarnessFiles(t, plaintext, nil, configure...)
}

// startLNPHarnessFiles is startLNPHarness with the files service's parts
// changed by change, unless it is nil.
func startLNPHarnessFiles(t *testing.T, plaintext bool, change func(*fileParts), configure ...func(*server.Server)) *lnpHarness {
	t.Helper()
	top := t.TempDir()
	h := &lnpHarness{files: filepath.Join(top, "files"), spaces: filepath.Join(top, "spaces"), logs: &syncBuffer{}, plaintext: plaintext}
	must(t, os.Mkdir(h.files, 0o755))
	db, err := sqlite.Open(context.Background(), filepath.Join(top, "larder.db"))
	must(t, err)
	files, err := disk.Open(h.files)
	must(t, err)
	spaces, err := disk.OpenSpaces(h.spaces)
	must(t, err)
	id, err := tlsconf.LoadOrCreate(filepath.Join(top, "tls"))
	must(t, err)
	h.known = clientconf.Open(filepath.Join(top, "client")).KnownServers()
	h.users, h.devices = sqlite.NewUserStore(db), sqlite.NewDeviceStore(db)
	logger := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.parts = fileParts{shared: files, spaces: spaces, records: sqlite.NewFileStore(db), accounts: h.users, logger: logger}
	if change != nil {
		change(&h.parts)
	}
	h.srv = &server.Server{
		Auth:           auth.New(h.users, auth.NewHasher(cheapHash, nil, 0), auth.NewCache(0, 0), auth.NewThrottle(auth.ThrottleConfig{})),
		Files:          newFiles(t, h.parts),
		Logger:         logger,
		RequestTimeout: 5 * time.Second,
		WriteTimeout:   5 * time.Second,
		Name:           "larder test",
	}
	h.srv.Auth.Devices = h.devices
	for _, f := range configure {
		f(h.srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	cln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	h.addr, h.courseAddr = ln.Addr().String(), cln.Addr().String()
	done := make(chan error, 2)
	nln := ln
	if !plaintext {
		nln = tlsconf.NewListener(ln, id.ServerConfig())
	}
	go func() { done <- h.srv.ServeLNP(nln) }()
	go func() { done <- h.srv.Serve(cln) }()
	t.Cleanup(func() {
		h.srv.Close()
		for range 2 {
			if err := <-done; !errors.Is(err, server.ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		}
		h.srv.Wait()
		spaces.Close()
		files.Close()
		db.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", h.logs)
		}
	})
	return h
}

// register makes an account through the course protocol, as a user would.
func (h *lnpHarness) register(t *testing.T, user, password string) larder.Signature {
	t.Helper()
	sig := larder.NewSignature(password, course.CourseSalt)
	c, err := client.Dial(context.Background(), h.courseAddr)
	must(t, err)
	defer c.Close()
	if _, err := c.Register(context.Background(), user, sig); err != nil {
		t.Fatalf("register %s: %v", user, err)
	}
	return sig
}

// login opens an LNP/1 session over TLS, pinning the server on first use.
func (h *lnpHarness) login(t *testing.T, user string, sig larder.Signature) *client.Session {
	t.Helper()
	s, err := h.dial(user, sig, 0)
	if err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func (h *lnpHarness) dial(user string, sig larder.Signature, maxBlock int) (*client.Session, error) {
	if h.plaintext {
		conn, err := net.Dial("tcp", h.addr)
		if err != nil {
			return nil, err
		}
		return client.NewSession(context.Background(), conn, user, sig, client.SessionOptions{MaxBlock: maxBlock, Features: h.features})
	}
	cfg, err := tlsconf.ClientConfig(h.addr, h.known, tlsconf.ClientOptions{Warn: new(bytes.Buffer)})
	if err != nil {
		return nil, err
	}
	conn, err := tls.Dial("tcp", h.addr, cfg)
	if err != nil {
		return nil, err
	}
	return client.NewSession(context.Background(), conn, user, sig, client.SessionOptions{MaxBlock: maxBlock, Features: h.features})
}

func wantLNPStatus(t *testing.T, what string, err error, want lnp.Status) {
	t.Helper()
	var ne *client.LNPError
	if !errors.As(err, &ne) || ne.Status != want {
		t.Fatalf("%s: got %v, want status %v", what, err, want)
	}
}

func TestLNPLogin(t *testing.T) {
	h := newLNPHarness(t)
	sig := h.register(t, "alice", "pw")
	s := h.login(t, "alice", sig)
	if s.BlockSize() != lnp.DefaultBlockSize || s.Server() != "larder test" {
		t.Errorf("block size %d, server %q", s.BlockSize(), s.Server())
	}
	who, err := s.Whoami(context.Background())
	if err != nil || who.User != "alice" {
		t.Fatalf("whoami: %+v %v", who, err)
	}
	_, err = h.dial("alice", larder.NewSignature("wrong", course.CourseSalt), 0)
	wantLNPStatus(t, "a wrong signature", err, lnp.StatusInvalidLogin)
	_, err = h.dial("nobody", sig, 0)
	wantLNPStatus(t, "an unknown user", err, lnp.StatusInvalidLogin)
	// A client may ask for small blocks.
	small, err := h.dial("alice", sig, lnp.MinBlockSize)
	if err != nil || small.BlockSize() != lnp.MinBlockSize {
		t.Fatalf("small blocks: %v", err)
	}
	small.Close()
}

func TestLNPPutGetRoundTrip(t *testing.T) {
	h := newLNPHarness(t)
	ctx := context.Background()
	s := h.login(t, "alice", h.register(t, "alice", "pw"))
	must(t, s.Mkdir(ctx, "docs"))
	for _, size := range []int{0, 1, lnp.MinBlockSize, lnp.DefaultBlockSize + 1, 3*lnp.DefaultBlockSize - 5} {
		data := randomBytes(size, 101)
		name := fmt.Sprintf("docs/f%d.bin", size)
		e, err := s.Put(ctx, name, bytes.NewReader(data), int64(size), client.PutOptions{Overwrite: true})
		if err != nil {
			t.Fatalf("put %d bytes: %v", size, err)
		}
		if e.Size != uint64(size) || e.SHA256 != sha256.Sum256(data) {
			t.Fatalf("put %d bytes: entry %+v", size, e)
		}
		var got bytes.Buffer
		head, err := s.Get(ctx, name, 0, &got, nil)
		if err != nil || !bytes.Equal(got.Bytes(), data) || head.SHA256 != e.SHA256 {
			t.Fatalf("get %d bytes: %v, %d bytes back", size, err, got.Len())
		}
		// From an offset.
		got.Reset()
		if _, err := s.Get(ctx, name, int64(size/2), &got, nil); err != nil || !bytes.Equal(got.Bytes(), data[size/2:]) {
			t.Fatalf("get %d bytes from %d: %v", size, size/2, err)
		}
	}
	st, err := s.Stat(ctx, "docs")
	if err != nil || !st.Dir || st.Name != "docs" {
		t.Errorf("stat docs: %+v %v", st, err)
	}
	who, err := s.Whoami(ctx)
	if err != nil || who.FilesUsed != 5 {
		t.Errorf("whoami after 5 uploads: %+v %v", who, err)
	}
}

func TestLNPTreeOperations(t *testing.T) {
	h := newLNPHarness(t)
	ctx := context.Background()
	must(t, os.WriteFile(filepath.Join(h.files, "course.txt"), []byte("shared file"), 0o644))
	s := h.login(t, "alice", h.register(t, "alice", "pw"))
	put := func(name, data string) {
		t.Helper()
		if _, err := s.Put(ctx, name, strings.NewReader(data), int64(len(data)), client.PutOptions{}); err != nil {
			t.Fatalf("put %s: %v", name, err)
		}
	}
	must(t, s.Mkdir(ctx, "a"))
	put("a/one.txt", "1")
	put("b.txt", "22")
	entries, err := s.ListAll(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name)
	}
	if got := strings.Join(names, " "); got != "a b.txt shared" {
		t.Errorf("the top lists %q", got)
	}
	// Paging.
	page, more, err := s.List(ctx, "/", "", 2)
	if err != nil || len(page) != 2 || !more {
		t.Errorf("a page of 2: %v %v %v", page, more, err)
	}
	// The next page goes on from the last name of this one, in the
	// folder's order: the shared area came first.
	if len(page) == 2 && page[0].Name != "shared" {
		t.Errorf("the first page starts with %q, want shared", page[0].Name)
	}
	if len(page) == 2 {
		last := page[1].Name
		page, more, err = s.List(ctx, "/", last, 2)
		if err != nil || len(page) != 1 || page[0].Name == last || page[0].Name == "shared" || more {
			t.Errorf("after %s: %v %v %v", last, page, more, err)
		}
	}

	// The shared area: readable, not writable.
	var got bytes.Buffer
	if _, err := s.Get(ctx, "/shared/course.txt", 0, &got, nil); err != nil || got.String() != "shared file" {
		t.Errorf("get the shared file: %v %q", err, got.String())
	}
	_, err = s.Put(ctx, "shared/mine.txt", strings.NewReader("x"), 1, client.PutOptions{})
	wantLNPStatus(t, "upload into the shared area", err, lnp.StatusDenied)
	wantLNPStatus(t, "delete in the shared area", s.Delete(ctx, "shared/course.txt"), lnp.StatusDenied)

	// Rename, delete, conflicts.
	wantLNPStatus(t, "put over an existing file", func() error {
		_, err := s.Put(ctx, "b.txt", strings.NewReader("3"), 1, client.PutOptions{})
		return err
	}(), lnp.StatusConflict)
	must(t, s.Rename(ctx, "b.txt", "a/b.txt", false))
	wantLNPStatus(t, "rename onto an existing file", s.Rename(ctx, "a/one.txt", "a/b.txt", false), lnp.StatusConflict)
	wantLNPStatus(t, "delete a folder that is not empty", s.Delete(ctx, "a"), lnp.StatusConflict)
	must(t, s.Delete(ctx, "a/one.txt"))
	must(t, s.Delete(ctx, "a/b.txt"))
	must(t, s.Delete(ctx, "a"))
	_, err = s.Stat(ctx, "a")
	wantLNPStatus(t, "stat a deleted folder", err, lnp.StatusNotFound)

	// Paths that can never be right.
	for _, p := range []string{"../etc/passwd", "a//b", "a/./b", "x\x00y"} {
		_, err := s.Stat(ctx, p)
		wantLNPStatus(t, "stat "+p, err, lnp.StatusBadRequest)
	}
}

func TestLNPUsersAreApart(t *testing.T) {
	h := newLNPHarness(t)
	ctx := context.Background()
	alice := h.login(t, "alice", h.register(t, "alice", "pw"))
	bob := h.login(t, "bob", h.register(t, "bob", "pw2"))
	if _, err := alice.Put(ctx, "secret.txt", strings.NewReader("alice's"), 7, client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := bob.Stat(ctx, "secret.txt")
	wantLNPStatus(t, "bob stats alice's file", err, lnp.StatusNotFound)
	entries, err := bob.ListAll(ctx, "/")
	if err != nil || len(entries) != 1 || entries[0].Name != "shared" {
		t.Errorf("bob's top: %+v %v", entries, err)
	}
	if _, err := bob.Put(ctx, "secret.txt", strings.NewReader("bob's!!"), 7, client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if _, err := alice.Get(ctx, "secret.txt", 0, &got, nil); err != nil || got.String() != "alice's" {
		t.Errorf("alice's file after bob's upload: %q %v", got.String(), err)
	}
	// A user name that is a path is only a name.
	evil := h.login(t, "../alice", h.register(t, "../alice", "pw3"))
	_, err = evil.Stat(ctx, "secret.txt")
	wantLNPStatus(t, "../alice stats alice's file", err, lnp.StatusNotFound)
}

func TestLNPPasswdEndsOtherSessions(t *testing.T) {
	h := newLNPHarness(t)
	ctx := context.Background()
	old := h.register(t, "alice", "old")
	a := h.login(t, "alice", old)
	b := h.login(t, "alice", old)
	neu := larder.NewSignature("new", course.CourseSalt)
	must(t, a.Passwd(ctx, old, neu))
	if _, err := a.Whoami(ctx); err != nil {
		t.Errorf("the session that changed the password: %v", err)
	}
	if _, err := b.Whoami(ctx); err == nil {
		t.Error("another session of alice still works after the password changed")
	}
	_, err := h.dial("alice", old, 0)
	wantLNPStatus(t, "the old signature", err, lnp.StatusInvalidLogin)
	h.login(t, "alice", neu)
	// The course protocol sees the new password too.
	c, err := client.Dial(ctx, h.courseAddr)
	must(t, err)
	defer c.Close()
	must(t, os.WriteFile(filepath.Join(h.files, "f.txt"), []byte("x"), 0o644))
	if _, err := c.Retrieve(ctx, "alice", old, "f.txt", new(bytes.Buffer)); err == nil {
		t.Error("the course protocol takes the old signature")
	}
}

func TestLNPQuota(t *testing.T) {
	h := newLNPHarnessFiles(t, func(p *fileParts) { p.quota = larder.Quota{Bytes: 100} })
	ctx := context.Background()
	s := h.login(t, "alice", h.register(t, "alice", "pw"))
	if _, err := s.Put(ctx, "a", bytes.NewReader(make([]byte, 60)), 60, client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Put(ctx, "b", bytes.NewReader(make([]byte, 60)), 60, client.PutOptions{})
	wantLNPStatus(t, "over quota", err, lnp.StatusQuotaExceeded)
	if _, err := s.Stat(ctx, "b"); err == nil {
		t.Error("an upload over quota left a file")
	}
	// Replacing counts only the new size.
	if _, err := s.Put(ctx, "a", bytes.NewReader(make([]byte, 100)), 100, client.PutOptions{Overwrite: true}); err != nil {
		t.Errorf("replacing 60 bytes with 100 under a quota of 100: %v", err)
	}
}

func TestLNPUploadResumes(t *testing.T) {
	h := newLNPHarness(t)
	ctx := context.Background()
	sig := h.register(t, "alice", "pw")
	s := h.login(t, "alice", sig)
	data := randomBytes(5*lnp.DefaultBlockSize+123, 102)

	// The first session sends three blocks and dies.
	cut := &cutReader{r: bytes.NewReader(data), after: 3 * lnp.DefaultBlockSize}
	first, err := h.dial("alice", sig, 0)
	must(t, err)
	_, err = first.Put(ctx, "big.bin", cut, int64(len(data)), client.PutOptions{})
	if err == nil {
		t.Fatal("the cut upload succeeded")
	}
	first.Close()
	if _, err := s.Stat(ctx, "big.bin"); err == nil {
		t.Fatal("a cut upload left a file")
	}
	// The next resumes where the server's verified bytes end: some of
	// what the first sent (its last block may have been in flight), in
	// whole blocks.
	var resumedAt int
	waitFor(t, func() bool {
		next, err := h.dial("alice", sig, 0)
		if err != nil {
			return false
		}
		defer next.Close()
		resumedAt = 0
		_, err = next.Put(ctx, "big.bin", bytes.NewReader(data), int64(len(data)), client.PutOptions{
			Resume:   true,
			Progress: func(n int) { resumedAt = max(resumedAt, n) },
		})
		return err == nil
	})
	if resumedAt <= lnp.DefaultBlockSize || resumedAt > 3*lnp.DefaultBlockSize || resumedAt%lnp.DefaultBlockSize != 0 {
		t.Errorf("resumed after %d bytes, want whole blocks, more than one, at most the 3 sent", resumedAt)
	}
	var got bytes.Buffer
	if _, err := s.Get(ctx, "big.bin", 0, &got, nil); err != nil || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("the resumed file: %v", err)
	}
}

// cutReader fails reads at or past after: a client killed midway.
type cutReader struct {
	r     *bytes.Reader
	after int64
}

func (c *cutReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= c.after {
		return 0, errors.New("killed")
	}
	return c.r.ReadAt(p, off)
}

func TestLNPDownloadResumes(t *testing.T) {
	h := newLNPHarness(t)
	ctx := context.Background()
	s := h.login(t, "alice", h.register(t, "alice", "pw"))
	data := randomBytes(3*lnp.DefaultBlockSize+77, 103)
	if _, err := s.Put(ctx, "f.bin", bytes.NewReader(data), int64(len(data)), client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(t.TempDir(), "f.bin")
	// A partial file: two good blocks and a corrupt third.
	partial := append([]byte(nil), data[:3*lnp.DefaultBlockSize-10]...)
	partial[2*lnp.DefaultBlockSize+5] ^= 0xff
	must(t, os.WriteFile(local, partial, 0o600))
	var fetched int
	head, err := s.GetFile(ctx, "f.bin", local, func(n int) { fetched += n })
	if err != nil || head.Size != uint64(len(data)) {
		t.Fatalf("GetFile: %v", err)
	}
	if fetched != len(data)-2*lnp.DefaultBlockSize {
		t.Errorf("fetched %d bytes, want %d: the two good blocks kept, the corrupt one fetched again", fetched, len(data)-2*lnp.DefaultBlockSize)
	}
	got, err := os.ReadFile(local)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the resumed download is not the file: %v", err)
	}
}

func TestLNPRacingUploads(t *testing.T) {
	h := newLNPHarness(t)
	ctx := context.Background()
	sig := h.register(t, "alice", "pw")
	a, b := randomBytes(2*lnp.DefaultBlockSize, 104), randomBytes(2*lnp.DefaultBlockSize, 105)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, data := range [][]byte{a, b} {
		wg.Go(func() {
			s, err := h.dial("alice", sig, 0)
			if err != nil {
				errs[i] = err
				return
			}
			defer s.Close()
			_, errs[i] = s.Put(ctx, "race.bin", bytes.NewReader(data), int64(len(data)), client.PutOptions{Overwrite: true})
		})
	}
	wg.Wait()
	for _, err := range errs {
		var ne *client.LNPError
		if err != nil && !(errors.As(err, &ne) && ne.Status == lnp.StatusConflict) {
			t.Errorf("a racing upload: %v", err)
		}
	}
	s := h.login(t, "alice", sig)
	var got bytes.Buffer
	if _, err := s.Get(ctx, "race.bin", 0, &got, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), a) && !bytes.Equal(got.Bytes(), b) {
		t.Error("racing uploads left a mix of both files")
	}
}

// TestLNPOneGiB uploads and downloads a 1 GiB file of random bytes over
// TLS, and checks it byte-exact through its SHA-256 (streamed, never held
// in memory).
func TestLNPOneGiB(t *testing.T) {
	if testing.Short() {
		t.Skip("1 GiB over TLS: skipped with -short")
	}
	h := newLNPHarness(t)
	ctx := context.Background()
	s := h.login(t, "alice", h.register(t, "alice", "pw"))
	const size = 1 << 30
	src := chachaFile{seed: 7}
	want := sha256.New()
	if _, err := io.Copy(want, io.NewSectionReader(src, 0, size)); err != nil {
		t.Fatal(err)
	}
	e, err := s.Put(ctx, "big.bin", src, size, client.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if e.SHA256 != [32]byte(want.Sum(nil)) || e.Size != size {
		t.Fatalf("the upload's entry: %d bytes, hash %x", e.Size, e.SHA256)
	}
	got := sha256.New()
	head, err := s.Get(ctx, "big.bin", 0, got, nil)
	if err != nil {
		t.Fatal(err)
	}
	if [32]byte(got.Sum(nil)) != e.SHA256 || head.SHA256 != e.SHA256 {
		t.Fatal("the downloaded bytes are not the uploaded file")
	}
}

// chachaFile is an endless file of pseudo-random bytes, readable at any
// offset: block i of 64 KiB is ChaCha8 keyed by the seed and i.
type chachaFile struct{ seed byte }

func (f chachaFile) ReadAt(p []byte, off int64) (int, error) {
	const bs = 64 << 10
	n := 0
	for n < len(p) {
		block := (off + int64(n)) / bs
		var key [32]byte
		key[0] = f.seed
		binary.BigEndian.PutUint64(key[8:], uint64(block))
		var buf [bs]byte
		mrand.NewChaCha8(key).Read(buf[:])
		n += copy(p[n:], buf[(off+int64(n))%bs:])
	}
	return n, nil
}

// TestLNPOperationsAreAudited: every operation of a session leaves its
// event, with the fields an auditor needs.
func TestLNPOperationsAreAudited(t *testing.T) {
	var out syncBuffer
	trail, err := audit.Open(audit.Config{Dir: t.TempDir(), Sink: audit.NewJSONLines(&out, nil)})
	must(t, err)
	h := newLNPHarness(t, func(s *server.Server) { s.Audit = trail })
	ctx := context.Background()
	old := h.register(t, "alice", "pw")
	s := h.login(t, "alice", old)
	data := []byte("audited content")
	must(t, s.Mkdir(ctx, "d"))
	if _, err := s.Put(ctx, "d/f.txt", bytes.NewReader(data), int64(len(data)), client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "d/f.txt", 0, io.Discard, nil); err != nil {
		t.Fatal(err)
	}
	s.ListAll(ctx, "d")
	s.Stat(ctx, "d/f.txt")
	s.Whoami(ctx)
	must(t, s.Rename(ctx, "d/f.txt", "d/g.txt", false))
	must(t, s.Delete(ctx, "d/g.txt"))
	_, err = s.Stat(ctx, "d/missing")
	wantLNPStatus(t, "stat a missing file", err, lnp.StatusNotFound)
	must(t, s.Passwd(ctx, old, larder.NewSignature("new", course.CourseSalt)))
	s.Close()
	h.srv.Close()
	h.srv.Wait()
	must(t, trail.Close(ctx))

	sum := sha256.Sum256(data)
	want := map[larder.EventKind]func(e larder.Event) bool{
		larder.EventMkdir: func(e larder.Event) bool { return e.Path == "/d" && e.Status == 1 },
		larder.EventUpload: func(e larder.Event) bool {
			return e.Path == "/d/f.txt" && e.Bytes == int64(len(data)) && e.SHA256 == sum
		},
		larder.EventDownload: func(e larder.Event) bool {
			return e.Path == "/d/f.txt" && e.Bytes == int64(len(data)) && e.SHA256 == sum
		},
		larder.EventList:   func(e larder.Event) bool { return e.Path == "/d" && e.Status == 1 },
		larder.EventRename: func(e larder.Event) bool { return e.Path == "/d/f.txt" && e.Reason == "to /d/g.txt" },
		larder.EventDelete: func(e larder.Event) bool { return e.Path == "/d/g.txt" && e.Status == 1 },
		larder.EventStat: func(e larder.Event) bool {
			return e.Path == "/d/missing" && e.Status == int(lnp.StatusNotFound) && e.Reason != ""
		},
		larder.EventAccount: func(e larder.Event) bool { return e.Reason == "password changed by the user" },
		larder.EventLogin:   func(e larder.Event) bool { return e.Status == 0 },
	}
	found := map[larder.EventKind]bool{}
	for line := range strings.SplitSeq(strings.TrimSpace(out.String()), "\n") {
		var e larder.Event
		must(t, json.Unmarshal([]byte(line), &e))
		if check, ok := want[e.Kind]; ok && e.User == "alice" && strings.HasPrefix(e.Remote, "127.0.0.1:") && check(e) {
			found[e.Kind] = true
		}
	}
	for k := range want {
		if !found[k] {
			t.Errorf("no %s event with the right fields in:\n%s", k, out.String())
		}
	}
}

// TestLNPCorruptBlockRefused: a block whose payload does not match its
// hash is refused with HASH_MISMATCH naming its offset; the blocks before
// it are kept, and a resumed upload completes the file.
func TestLNPCorruptBlockRefused(t *testing.T) {
	h := newLNPHarness(t)
	ctx := context.Background()
	sig := h.register(t, "alice", "pw")
	data := randomBytes(3*lnp.MinBlockSize, 106)

	cfg, err := tlsconf.ClientConfig(h.addr, h.known, tlsconf.ClientOptions{Warn: io.Discard})
	must(t, err)
	conn, err := tls.Dial("tcp", h.addr, cfg)
	must(t, err)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	w, r := lnp.NewWriter(conn, 0), lnp.NewReader(conn)
	next := func(want lnp.Type) []byte {
		t.Helper()
		typ, body, err := r.Next()
		if err != nil || typ != want {
			t.Fatalf("got %v %v, want a %v frame", typ, err, want)
		}
		return body
	}
	must(t, w.Write(lnp.Hello{User: "alice", Signature: sig, MaxBlock: lnp.MinBlockSize}))
	must(t, w.Flush())
	next(lnp.TypeWelcome)
	must(t, w.Write(lnp.Put{Path: "f.bin", Size: uint64(len(data))}))
	must(t, w.Flush())
	next(lnp.TypeReply)
	block := func(i int, corrupt bool) {
		p := append([]byte(nil), data[i*lnp.MinBlockSize:(i+1)*lnp.MinBlockSize]...)
		d := lnp.Data{Offset: uint64(i * lnp.MinBlockSize), SHA256: sha256.Sum256(p)}
		if corrupt {
			p[17] ^= 1
		}
		must(t, w.WriteFrameParts(lnp.TypeData, d.AppendHead(nil), p))
	}
	block(0, false)
	block(1, true)
	must(t, w.Flush())
	reply, err := lnp.ParseReply(next(lnp.TypeReply))
	must(t, err)
	if reply.Status != lnp.StatusHashMismatch || !strings.Contains(reply.Message, "offset 4096") {
		t.Fatalf("a corrupt block: %v %q", reply.Status, reply.Message)
	}
	if _, _, err := r.Next(); err == nil {
		t.Error("the session goes on after a failed upload")
	}

	// A resume keeps the good block, and completes the file.
	s := h.login(t, "alice", sig)
	var resumedAt int
	waitFor(t, func() bool {
		resumedAt = -1
		_, err := s.Put(ctx, "f.bin", bytes.NewReader(data), int64(len(data)), client.PutOptions{
			Resume: true,
			Progress: func(n int) {
				if resumedAt < 0 {
					resumedAt = n // the first report is the bytes the server kept
				}
			},
		})
		return err == nil
	})
	var got bytes.Buffer
	if _, err := s.Get(ctx, "f.bin", 0, &got, nil); err != nil || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("the file after the resume: %v", err)
	}
	if resumedAt != lnp.MinBlockSize {
		t.Errorf("resumed after %d bytes, want the one good block of %d", resumedAt, lnp.MinBlockSize)
	}
}

// TestLNPPutShortSource: a source shorter than the size announced
// fails the upload, and no file appears.
func TestLNPPutShortSource(t *testing.T) {
	h := newLNPHarness(t)
	ctx := context.Background()
	s := h.login(t, "alice", h.register(t, "alice", "pw"))
	if _, err := s.Put(ctx, "short.bin", bytes.NewReader(make([]byte, 100)), 200, client.PutOptions{}); err == nil || !strings.Contains(err.Error(), "ended at 100 of the 200 bytes") {
		t.Fatalf("a 100-byte source announced as 200: %v", err)
	}
	s3 := h.login(t, "alice", larder.NewSignature("pw", course.CourseSalt))
	if _, err := s3.Stat(ctx, "short.bin"); err == nil {
		t.Error("an upload from a short source left a file")
	}
}
