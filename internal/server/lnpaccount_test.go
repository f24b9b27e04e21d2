package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/internal/audit"
	"github.com/larderfs/larder/internal/server"
	"github.com/larderfs/larder/internal/sqlite"
	"github.com/larderfs/larder/internal/tlsconf"
	"github.com/larderfs/larder/lnp"
)

// otherStore opens the harness's database a second time, as an
// administrator's command in another process does.
func (h *lnpHarness) otherStore(t *testing.T) (*sqlite.UserStore, *sqlite.FileStore) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(filepath.Dir(h.spaces), "larder.db"))
	must(t, err)
	t.Cleanup(func() { db.Close() })
	return sqlite.NewUserStore(db), sqlite.NewFileStore(db)
}

// TestLNPNewAccountSeesNothingOfAnOld: an account deleted and
// registered again under its name starts empty: none of the old
// account's files, records or usage.
func TestLNPNewAccountSeesNothingOfAnOld(t *testing.T) {
	h := newLNPHarness(t)
	ctx := context.Background()
	old := h.login(t, "bob", h.register(t, "bob", "old bob"))
	must(t, old.Mkdir(ctx, "private"))
	data := []byte("the old bob's secret")
	if _, err := old.Put(ctx, "private/secret.txt", bytes.NewReader(data), int64(len(data)), client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	old.Close()
	users, _ := h.otherStore(t)
	must(t, users.DeleteUser(ctx, "bob"))

	bob := h.login(t, "bob", h.register(t, "bob", "new bob"))
	if _, err := bob.Stat(ctx, "private/secret.txt"); err == nil {
		t.Error("the new bob sees the old bob's file")
	}
	entries, err := bob.ListAll(ctx, "/")
	if err != nil || len(entries) != 1 || entries[0].Name != "shared" {
		t.Errorf("the new bob's top: got %+v, %v; want only shared", entries, err)
	}
	who, err := bob.Whoami(ctx)
	if err != nil || who.BytesUsed != 0 || who.FilesUsed != 0 {
		t.Errorf("the new bob's usage: got %+v, %v; want none", who, err)
	}
	// The name is free for a file of the new bob's own.
	if _, err := bob.Put(ctx, "secret.txt", strings.NewReader("new"), 3, client.PutOptions{}); err != nil {
		t.Errorf("the new bob's upload: %v", err)
	}
}

// pausedReader is a file of size bytes whose reads past open wait for
// the gate, then come slowly, as from a slow network: a transfer that is
// in flight when the test acts.
type pausedReader struct {
	open    int64
	reached chan struct{} // closed when a read passes open
	gate    chan struct{} // closed by the test
	once    sync.Once
}

func newPausedReader(open int64) *pausedReader {
	return &pausedReader{open: open, reached: make(chan struct{}), gate: make(chan struct{})}
}

func (g *pausedReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > g.open {
		g.once.Do(func() { close(g.reached) })
		<-g.gate
		time.Sleep(20 * time.Millisecond)
	}
	clear(p)
	return len(p), nil
}

// slowWriter takes what it is given until open bytes, then waits for the
// gate, then takes the rest slowly.
type slowWriter struct {
	n       int64
	open    int64
	reached chan struct{}
	gate    chan struct{}
	once    sync.Once
}

func (w *slowWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	if w.n > w.open {
		w.once.Do(func() { close(w.reached) })
		<-w.gate
		time.Sleep(50 * time.Millisecond)
	}
	return len(p), nil
}

// auditTo returns a configure function that sends the server's audit
// trail to out, and a function that closes it once the server is done.
func auditTo(t *testing.T, out *syncBuffer) (func(*server.Server), func(h *lnpHarness)) {
	trail, err := audit.Open(audit.Config{Dir: t.TempDir(), Sink: audit.NewJSONLines(out, nil)})
	must(t, err)
	return func(s *server.Server) { s.Audit = trail }, func(h *lnpHarness) {
		h.srv.Close()
		h.srv.Wait()
		must(t, trail.Close(context.Background()))
	}
}

// findEvent reports whether the JSON-lines trail holds an event of kind
// for user whose status and reason are as wanted.
func findEvent(t *testing.T, trail string, kind larder.EventKind, user string, status lnp.Status, reason string) bool {
	t.Helper()
	for line := range strings.SplitSeq(strings.TrimSpace(trail), "\n") {
		var e larder.Event
		if json.Unmarshal([]byte(line), &e) != nil {
			continue
		}
		if e.Kind == kind && e.User == user && e.Status == int(status) && strings.Contains(e.Reason, reason) {
			return true
		}
	}
	return false
}

// endAccount disables or deletes account name, or resets its password,
// through another handle on the database, as "larder admin user
// disable|delete|passwd" does beside a running server.
func endAccount(t *testing.T, users *sqlite.UserStore, how, name string) {
	t.Helper()
	ctx := context.Background()
	switch how {
	case "disabled":
		must(t, users.SetDisabled(ctx, name, true))
	case "deleted":
		must(t, users.DeleteUser(ctx, name))
	case "reset":
		u, err := users.UserByName(ctx, name)
		must(t, err)
		must(t, users.ReplaceVerifier(ctx, name, u.Verifier, "an administrator's reset"))
	}
}

// rawSession logs user in over TLS and returns the frames' writer and
// reader: a client that reads the server's REPLY while it still sends.
func (h *lnpHarness) rawSession(t *testing.T, user string, sig larder.Signature) (*lnp.Writer, *lnp.Reader) {
	t.Helper()
	cfg, err := tlsconf.ClientConfig(h.addr, h.known, tlsconf.ClientOptions{Warn: io.Discard})
	must(t, err)
	conn, err := tls.Dial("tcp", h.addr, cfg)
	must(t, err)
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	w, r := lnp.NewWriter(conn, 0), lnp.NewReader(conn)
	must(t, w.Write(lnp.Hello{User: user, Signature: sig, MaxBlock: lnp.MinBlockSize}))
	must(t, w.Flush())
	if typ, body, err := r.Next(); err != nil || typ != lnp.TypeWelcome {
		t.Fatalf("login: got %v %q %v, want WELCOME", typ, body, err)
	}
	return w, r
}

// TestLNPEndedAccountEndsUploadInFlight: an upload in flight when its
// account is disabled or deleted (from another store handle, as the
// admin command does) is ended with DENIED within a few seconds, while
// the client still sends, and is not committed.
func TestLNPEndedAccountEndsUploadInFlight(t *testing.T) {
	for _, how := range []string{"disabled", "deleted"} {
		t.Run(how, func(t *testing.T) {
			var trail syncBuffer
			withAudit, closeAudit := auditTo(t, &trail)
			h := newLNPHarness(t, withAudit)
			ctx := context.Background()
			sig := h.register(t, "alice", "pw")
			users, files := h.otherStore(t)
			alice, err := users.UserByName(ctx, "alice")
			must(t, err)

			w, r := h.rawSession(t, "alice", sig)
			const size = 1 << 30 // never sent whole: the client is slow
			must(t, w.Write(lnp.Put{Path: "big.bin", Size: size}))
			must(t, w.Flush())
			if typ, body, err := r.Next(); err != nil || typ != lnp.TypeReply {
				t.Fatalf("PUT: got %v %q %v, want REPLY", typ, body, err)
			}
			block := make([]byte, lnp.MinBlockSize)
			d := lnp.Data{SHA256: sha256.Sum256(block)}
			send := func() error {
				err := w.WriteFrameParts(lnp.TypeData, d.AppendHead(nil), block)
				if err == nil {
					err = w.Flush()
				}
				d.Offset += uint64(len(block))
				return err
			}
			for range 4 {
				must(t, send())
			}
			endAccount(t, users, how, "alice")
			ended := time.Now()
			stop := make(chan struct{})
			sent := make(chan struct{})
			go func() {
				defer close(sent)
				for {
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
					}
					if send() != nil {
						return
					}
				}
			}()
			typ, body, err := r.Next()
			close(stop)
			<-sent
			if err != nil || typ != lnp.TypeReply {
				t.Fatalf("the upload of a %s account: got %v %v, want a REPLY", how, typ, err)
			}
			reply, err := lnp.ParseReply(body)
			must(t, err)
			if reply.Status != lnp.StatusDenied || !strings.Contains(reply.Message, "account "+how) {
				t.Errorf("the upload of a %s account: got %v %q, want DENIED saying so", how, reply.Status, reply.Message)
			}
			if d := time.Since(ended); d > 5*time.Second {
				t.Errorf("the upload ended %v after the account was %s, want within a few seconds", d, how)
			}
			if _, err := files.FileByPath(ctx, larder.SpaceOf(alice.ID), "big.bin"); err == nil {
				t.Error("the upload was recorded")
			}
			if how == "disabled" {
				must(t, users.SetDisabled(ctx, "alice", false))
				if _, err := h.login(t, "alice", sig).Stat(ctx, "big.bin"); err == nil {
					t.Error("the upload was committed")
				}
			}
			closeAudit(h)
			if !findEvent(t, trail.String(), larder.EventUpload, "alice", lnp.StatusDenied, "account "+how) {
				t.Errorf("no upload event with status DENIED and reason account %s in:\n%s", how, trail.String())
			}
		})
	}
}

// TestLNPEndedAccountCannotCommit: an upload whose last bytes arrive
// just after the account is disabled or deleted is not committed: the
// account is checked again before the commit.
func TestLNPEndedAccountCannotCommit(t *testing.T) {
	for _, how := range []string{"disabled", "deleted"} {
		t.Run(how, func(t *testing.T) {
			h := newLNPHarness(t)
			ctx := context.Background()
			sig := h.register(t, "alice", "pw")
			s := h.login(t, "alice", sig)
			users, _ := h.otherStore(t)
			size := int64(4*lnp.DefaultBlockSize + 10)
			src := newPausedReader(size - 10)
			done := make(chan error, 1)
			go func() {
				_, err := s.Put(ctx, "last.bin", src, size, client.PutOptions{})
				done <- err
			}()
			<-src.reached
			endAccount(t, users, how, "alice")
			close(src.gate)
			err := <-done
			wantLNPStatus(t, "the commit of a "+how+" account", err, lnp.StatusDenied)
			if how == "disabled" {
				must(t, users.SetDisabled(ctx, "alice", false))
				if _, err := h.login(t, "alice", sig).Stat(ctx, "last.bin"); err == nil {
					t.Error("the upload was committed")
				}
			}
		})
	}
}

// TestLNPEndedAccountEndsDownloadInFlight: a download in flight when
// its account is disabled or deleted ends with DENIED before the file
// is sent whole.
func TestLNPEndedAccountEndsDownloadInFlight(t *testing.T) {
	for _, plaintext := range []bool{false, true} {
		for _, how := range []string{"disabled", "deleted"} {
			name := how
			if plaintext {
				name += "/plaintext"
			}
			t.Run(name, func(t *testing.T) {
				start := newLNPHarness
				if plaintext {
					start = newPlaintextLNPHarness
				}
				h := start(t)
				ctx := context.Background()
				s := h.login(t, "alice", h.register(t, "alice", "pw"))
				const size = 48 << 20
				e, err := s.Put(ctx, "big.bin", chachaFile{seed: 3}, size, client.PutOptions{})
				must(t, err)
				// A first download records the block sums: the second,
				// on a plaintext connection, is sent with sendfile(2).
				if _, err := s.Get(ctx, "big.bin", 0, io.Discard, nil); err != nil {
					t.Fatal(err)
				}
				users, _ := h.otherStore(t)
				dst := &slowWriter{open: 4 * lnp.DefaultBlockSize, reached: make(chan struct{}), gate: make(chan struct{})}
				done := make(chan error, 1)
				go func() {
					_, err := s.Get(ctx, "big.bin", 0, dst, nil)
					done <- err
				}()
				<-dst.reached
				endAccount(t, users, how, "alice")
				close(dst.gate)
				select {
				case err = <-done:
				case <-time.After(20 * time.Second):
					s.Close()
					<-done
					t.Fatalf("the download was still going 20 s after the account was %s", how)
				}
				var ne *client.LNPError
				if err == nil || (errors.As(err, &ne) && ne.Status != lnp.StatusDenied) {
					t.Fatalf("the download of a %s account: got %v, want DENIED", how, err)
				}
				if dst.n >= int64(e.Size) {
					t.Errorf("the whole file (%d bytes) was sent after the account was %s", dst.n, how)
				}
			})
		}
	}
}

// TestLNPEndedAccountEndsIdleSession: an idle session of an account
// disabled or deleted by another process, or whose password another
// process reset, is ended without waiting for its next request.
func TestLNPEndedAccountEndsIdleSession(t *testing.T) {
	for _, how := range []string{"disabled", "deleted", "reset"} {
		t.Run(how, func(t *testing.T) {
			var trail syncBuffer
			withAudit, closeAudit := auditTo(t, &trail)
			h := newLNPHarness(t, withAudit)
			ctx := context.Background()
			s := h.login(t, "alice", h.register(t, "alice", "pw"))
			users, _ := h.otherStore(t)
			endAccount(t, users, how, "alice")
			waitFor(t, func() bool { return h.srv.Stats().Open == 0 })
			// The server said why before it closed; a client whose next
			// request meets the closed connection may see only that.
			var ne *client.LNPError
			if _, err := s.Whoami(ctx); err == nil || (errors.As(err, &ne) && ne.Status != lnp.StatusDenied) {
				t.Errorf("the next request of the ended session: got %v, want DENIED or a closed connection", err)
			}
			closeAudit(h)
			reason := "account " + how
			if how == "reset" {
				reason = "the password changed"
			}
			if !findEvent(t, trail.String(), larder.EventConnClose, "alice", 0, reason) {
				t.Errorf("no conn.close event saying the account is %s in:\n%s", how, trail.String())
			}
		})
	}
}
