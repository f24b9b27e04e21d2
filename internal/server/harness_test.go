package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/internal/auth"
	"github.com/larderfs/larder/internal/disk"
	"github.com/larderfs/larder/internal/files"
	"github.com/larderfs/larder/internal/server"
	"github.com/larderfs/larder/internal/sqlite"
)

// cheapHash keeps the password hash fast in tests that are not about
// hashing; the server's defaults are tested in internal/auth.
var cheapHash = auth.Params{Memory: 64, Time: 1, Threads: 1}

// harness is a real server on 127.0.0.1:0 over a temporary folder and
// database.
type harness struct {
	srv   *server.Server
	addr  string
	dial  func() (net.Conn, error) // a new connection to the server
	files string                   // the served folder
	outer string                   // a folder beside it, holding a secret
	logs  *syncBuffer
	done  chan error // Serve's result
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newHarness(t *testing.T, configure ...func(*server.Server)) *harness {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := ln.Addr().String()
	return startHarness(t, ln, func() (net.Conn, error) { return net.Dial("tcp", addr) }, configure...)
}

// startHarness is newHarness serving ln, to which dial connects.
func startHarness(t *testing.T, ln net.Listener, dial func() (net.Conn, error), configure ...func(*server.Server)) *harness {
	t.Helper()
	before := runtime.NumGoroutine()
	top := t.TempDir()
	h := &harness{dial: dial, files: filepath.Join(top, "files"), outer: top, logs: &syncBuffer{}, done: make(chan error, 1)}
	must(t, os.Mkdir(h.files, 0o755))
	must(t, os.WriteFile(filepath.Join(top, "secret.txt"), []byte("TOP SECRET"), 0o600))

	db, err := sqlite.Open(context.Background(), filepath.Join(top, "larder.db"))
	must(t, err)
	shared, err := disk.Open(h.files)
	must(t, err)
	logger := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.srv = &server.Server{
		Auth:           auth.New(sqlite.NewUserStore(db), auth.NewHasher(cheapHash, nil, 0), auth.NewCache(0, 0), auth.NewThrottle(auth.ThrottleConfig{})),
		Files:          newFiles(t, fileParts{shared: shared, logger: logger}),
		Logger:         logger,
		RequestTimeout: 5 * time.Second,
		WriteTimeout:   5 * time.Second,
	}
	for _, f := range configure {
		f(h.srv)
	}
	h.addr = ln.Addr().String()
	go func() { h.done <- h.srv.Serve(ln) }()
	t.Cleanup(func() {
		h.srv.Close()
		if err := <-h.done; !errors.Is(err, server.ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		shared.Close()
		db.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", h.logs)
		}
		checkNoLeak(t, before)
	})
	return h
}

// fileParts are what the tests' files services are made of; the zero
// value of each optional part is files.Config's.
type fileParts struct {
	shared   *disk.Store  // the served folder
	spaces   *disk.Spaces // nil: none (a course-protocol server)
	records  larder.FileStore
	accounts files.Accounts // for the accounts' own quotas; nil: none
	quota    larder.Quota
	reserve  *disk.Reserve
	racy     time.Duration
	logger   *slog.Logger
	wrap     func(files.Backend) files.Backend // a fault injected over the disks; nil: none
}

// newFiles returns the files service of p, as larder serve makes it; with
// fresh folders and records there is nothing for Recover to finish.
func newFiles(t testing.TB, p fileParts) *files.Service {
	t.Helper()
	var backend files.Backend = files.NewLocal(p.shared, p.spaces)
	if p.wrap != nil {
		backend = p.wrap(backend)
	}
	svc, err := files.New(files.Config{
		Backend:    backend,
		Records:    p.records,
		Accounts:   p.accounts,
		Quota:      p.quota,
		Reserve:    p.reserve,
		RacyWindow: p.racy,
		Logger:     p.logger,
	})
	must(t, err)
	return svc
}

// checkNoLeak waits for the goroutines started during the test to end.
func checkNoLeak(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Errorf("%d goroutines left running, %d before the test:\n%s",
				runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (h *harness) write(t *testing.T, name string, data []byte) {
	t.Helper()
	path := filepath.Join(h.files, name)
	must(t, os.MkdirAll(filepath.Dir(path), 0o755))
	must(t, os.WriteFile(path, data, 0o644))
}

var testSig = larder.NewSignature("correct horse", "battery staple salt")

func request(user string, sig larder.Signature, path string) []byte {
	b, err := (&course.Request{Username: user, Signature: sig, Body: []byte(path)}).AppendBinary(nil)
	if err != nil {
		panic(err)
	}
	return b
}

// reply is a whole reply as a client sees it.
type reply struct {
	status  course.Status
	payload []byte
	blocks  []uint32 // block indexes in arrival order
	raw     []byte   // every byte received
}

// exchange sends raw request bytes on a new connection, half-closes, and
// reads the reply to the end.
func (h *harness) exchange(t testing.TB, raw []byte) *reply {
	t.Helper()
	c, err := h.dial()
	must(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	_, err = c.Write(raw)
	must(t, err)
	return readWholeReply(t, c)
}

func (h *harness) register(t testing.TB, user string) {
	t.Helper()
	if r := h.exchange(t, request(user, testSig, "")); r.status != course.StatusOK {
		t.Fatalf("register %s: %v %q", user, r.status, r.payload)
	}
}

// readWholeReply reads blocks until the server closes, checking what a
// careful client checks, and fails the test on any inconsistency. It keeps
// the first MiB of raw bytes for tests that look at the frames themselves.
func readWholeReply(t testing.TB, c io.Reader) *reply {
	t.Helper()
	raw := &limitedBuffer{max: 1 << 20}
	br := course.NewBlockReader(io.TeeReader(c, raw))
	r := &reply{}
	var (
		count uint32
		total [32]byte
		seen  = map[uint32]bool{}
		size  int
	)
	for {
		hdr, p, err := br.ReadBlock()
		if err == io.EOF {
			break
		}
		must(t, err)
		if len(r.blocks) == 0 {
			r.status, count, total = hdr.Status, hdr.Count, hdr.TotalHash
			if int64(count)*course.MaxBlockPayload > 1<<28 {
				t.Fatalf("reply of %d blocks is too large for this test client", count)
			}
			r.payload = make([]byte, int(count)*course.MaxBlockPayload)
		}
		switch {
		case hdr.Status != r.status || hdr.Count != count || hdr.TotalHash != total:
			t.Fatalf("block %d disagrees with the first: %+v", hdr.Index, hdr)
		case hdr.Index >= count || seen[hdr.Index]:
			t.Fatalf("block index %d repeated or not below count %d", hdr.Index, count)
		case sha256.Sum256(p) != hdr.BlockHash:
			t.Fatalf("block %d: hash mismatch", hdr.Index)
		case hdr.Index+1 < count && len(p) != course.MaxBlockPayload:
			t.Fatalf("block %d of %d is short (%d bytes)", hdr.Index, count, len(p))
		}
		seen[hdr.Index] = true
		r.blocks = append(r.blocks, hdr.Index)
		off := int(hdr.Index) * course.MaxBlockPayload
		copy(r.payload[off:], p)
		size = max(size, off+len(p))
	}
	if uint32(len(r.blocks)) != count {
		t.Fatalf("got %d blocks, want %d", len(r.blocks), count)
	}
	r.payload = r.payload[:size]
	if len(r.blocks) > 0 && sha256.Sum256(r.payload) != total {
		t.Fatal("total hash mismatch")
	}
	r.raw = raw.Bytes()
	return r
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
