//go:build unix

package server_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"syscall"
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

// dialSlow connects to addr with a receive buffer of 4 KiB, as a client
// on a slow link whose reads stall: the server's writes block as soon as
// the kernel's buffers are full.
func dialSlow(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", addr)
	must(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// readSlowly reads c 4 KiB every 10 ms until the stream ends or until,
// and returns how many bytes it read and how the stream ended (nil if it
// had not by until).
func readSlowly(c net.Conn, until time.Time) (int64, error) {
	buf := make([]byte, 4096)
	var n int64
	for time.Now().Before(until) {
		c.SetReadDeadline(until)
		m, err := c.Read(buf)
		n += int64(m)
		if err != nil {
			if isTimeout(err) {
				return n, nil
			}
			return n, err
		}
		time.Sleep(10 * time.Millisecond)
	}
	return n, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// hasEvent reports whether the JSON-lines trail holds an event of kind for
// user whose reason holds reason.
func hasEvent(trail string, kind larder.EventKind, user, reason string) bool {
	for line := range strings.SplitSeq(strings.TrimSpace(trail), "\n") {
		var e larder.Event
		if json.Unmarshal([]byte(line), &e) == nil && e.Kind == kind && e.User == user && strings.Contains(e.Reason, reason) {
			return true
		}
	}
	return false
}

// TestCourseEndedAccountCutsDownloadInFlight: a course-protocol download
// in flight when its account is disabled or deleted (by another handle on
// the database, as "larder admin user" does) stops within about a second:
// the connection is closed mid-reply, so the client has a short reply, and
// the download's event and log line say the account ended it. Before, the
// reply went on to its end.
func TestCourseEndedAccountCutsDownloadInFlight(t *testing.T) {
	for _, how := range []string{"disabled", "deleted"} {
		t.Run(how, func(t *testing.T) {
			var out syncBuffer
			trail, err := audit.Open(audit.Config{Dir: t.TempDir(), Sink: audit.NewJSONLines(&out, nil)})
			must(t, err)
			h := newHarness(t, func(s *server.Server) {
				s.Audit = trail
				s.WriteTimeout = time.Minute // a slow reader is not cut off for being slow
			})
			h.register(t, "erin")
			const size = 32 << 20
			h.write(t, "huge.bin", make([]byte, size))
			db, err := sqlite.Open(context.Background(), filepath.Join(h.outer, "larder.db"))
			must(t, err)
			defer db.Close()

			c := dialSlow(t, h.addr)
			_, err = c.Write(request("erin", testSig, "huge.bin"))
			must(t, err)
			before, err := readSlowly(c, time.Now().Add(time.Second))
			if err != nil || before == 0 {
				t.Fatalf("the download's first second: %d bytes, %v", before, err)
			}
			endAccount(t, sqlite.NewUserStore(db), how, "erin")
			ended := time.Now()
			after, err := readSlowly(c, ended.Add(10*time.Second))
			took := time.Since(ended)
			t.Logf("%d bytes before the account was %s, %d after, in %v; the stream ended with %v", before, how, after, took, err)
			if err == nil {
				t.Fatalf("the download was still going 10 s after the account was %s", how)
			}
			if took > 3*time.Second {
				t.Errorf("the download ended %v after the account was %s, want within about a second", took, how)
			}
			if before+after >= size {
				t.Errorf("the whole reply arrived (%d bytes)", before+after)
			}
			h.srv.Close()
			h.srv.Wait()
			must(t, trail.Close(context.Background()))
			if !hasEvent(out.String(), larder.EventDownload, "erin", "account "+how) {
				t.Errorf("no download event saying the account was %s in:\n%s", how, out.String())
			}
			if logs := h.logs.String(); !strings.Contains(logs, "account "+how) {
				t.Errorf("the log does not say the account was %s:\n%s", how, logs)
			}
		})
	}
}

// TestLNPEndedAccountCutsStalledDownload: an LNP/1 download to a
// client that has stopped reading, so that the server's write is
// blocked, is ended within about a second of its account being disabled
// or deleted, not when the write timeout runs out; the client gets
// nothing more than its buffers held, then END DENIED or the connection
// closed.
func TestLNPEndedAccountCutsStalledDownload(t *testing.T) {
	for _, plaintext := range []bool{false, true} {
		for _, how := range []string{"disabled", "deleted"} {
			name := how
			if plaintext {
				name += "/plaintext"
			}
			t.Run(name, func(t *testing.T) {
				var out syncBuffer
				withAudit, closeAudit := auditTo(t, &out)
				start := newLNPHarness
				if plaintext {
					start = newPlaintextLNPHarness
				}
				h := start(t, withAudit, func(s *server.Server) { s.WriteTimeout = time.Minute })
				ctx := context.Background()
				sig := h.register(t, "alice", "pw")
				s := h.login(t, "alice", sig)
				const size = 48 << 20
				if _, err := s.Put(ctx, "big.bin", chachaFile{seed: 5}, size, client.PutOptions{}); err != nil {
					t.Fatal(err)
				}
				// A first download records the block sums: the next,
				// on a plaintext connection, is sent with sendfile(2).
				if _, err := s.Get(ctx, "big.bin", 0, io.Discard, nil); err != nil {
					t.Fatal(err)
				}
				s.Close()

				var conn net.Conn = dialSlow(t, h.addr)
				if !plaintext {
					cfg, err := tlsconf.ClientConfig(h.addr, h.known, tlsconf.ClientOptions{Warn: io.Discard})
					must(t, err)
					conn = tls.Client(conn, cfg)
				}
				conn.SetDeadline(time.Now().Add(time.Minute))
				w, r := lnp.NewWriter(conn, 0), lnp.NewReader(conn)
				must(t, w.Write(lnp.Hello{User: "alice", Signature: sig}))
				must(t, w.Flush())
				if typ, body, err := r.Next(); err != nil || typ != lnp.TypeWelcome {
					t.Fatalf("login: got %v %q %v, want WELCOME", typ, body, err)
				}
				must(t, w.Write(lnp.Get{Path: "big.bin"}))
				must(t, w.Flush())
				if typ, body, err := r.Next(); err != nil || typ != lnp.TypeReply {
					t.Fatalf("GET: got %v %q %v, want REPLY", typ, body, err)
				}
				// The client reads a frame, then stalls: the server's
				// write blocks once the buffers are full.
				if typ, _, err := r.Next(); err != nil || typ != lnp.TypeData {
					t.Fatalf("the first DATA: got %v %v", typ, err)
				}
				time.Sleep(500 * time.Millisecond)
				users, _ := h.otherStore(t)
				endAccount(t, users, how, "alice")
				ended := time.Now()
				for h.srv.Stats().Open > 0 && time.Since(ended) < 10*time.Second {
					time.Sleep(10 * time.Millisecond)
				}
				took := time.Since(ended)
				if took > 3*time.Second {
					t.Errorf("the stalled download's connection was still open %v after the account was %s, want within about a second", took, how)
				}

				// What the client finds when it reads again.
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				var data int64
				var end error
				for {
					typ, body, err := r.Next()
					if err != nil {
						end = err
						break
					}
					if typ == lnp.TypeData {
						data += int64(len(body))
						continue
					}
					if typ == lnp.TypeEnd {
						e, err := lnp.ParseEndStatus(body)
						must(t, err)
						if e.Status != lnp.StatusDenied || !strings.Contains(e.Message, "account "+how) {
							t.Errorf("END: got %v %q, want DENIED saying the account was %s", e.Status, e.Message, how)
						}
						end = errors.New("END " + e.Status.String())
						break
					}
					t.Fatalf("got a %v frame in a download", typ)
				}
				t.Logf("after %v: %d more bytes of data, then %v", took, data, end)
				if data >= size/2 {
					t.Errorf("%d bytes of data arrived after the account was %s", data, how)
				}
				closeAudit(h)
				if !hasEvent(out.String(), larder.EventDownload, "alice", "account "+how) {
					t.Errorf("no download event saying the account was %s in:\n%s", how, out.String())
				}
			})
		}
	}
}
