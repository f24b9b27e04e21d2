package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/internal/audit"
	"github.com/larderfs/larder/internal/server"
	"github.com/larderfs/larder/internal/tlsconf"
	"github.com/larderfs/larder/lnp"
)

// auditedLNPHarness is a lnpHarness whose audit trail goes, as JSON
// lines, to the returned buffer; closeTrail stops the server and delivers
// every event.
func auditedLNPHarness(t *testing.T) (h *lnpHarness, out *syncBuffer, closeTrail func()) {
	t.Helper()
	out = &syncBuffer{}
	trail, err := audit.Open(audit.Config{Dir: t.TempDir(), Sink: audit.NewJSONLines(out, nil)})
	must(t, err)
	h = newLNPHarness(t, func(s *server.Server) { s.Audit = trail })
	return h, out, func() {
		h.srv.Close()
		h.srv.Wait()
		must(t, trail.Close(context.Background()))
	}
}

// trailEvents parses the JSON lines in out.
func trailEvents(t *testing.T, out *syncBuffer) []larder.Event {
	t.Helper()
	var evs []larder.Event
	for line := range strings.SplitSeq(strings.TrimSpace(out.String()), "\n") {
		var e larder.Event
		must(t, json.Unmarshal([]byte(line), &e))
		evs = append(evs, e)
	}
	return evs
}

// TestAuditLNPInterruptedDownload: a download the client cuts off is
// recorded with a status and the reason "interrupted: …", as
// OPERATIONS.md says, not as a download answered OK.
func TestAuditLNPInterruptedDownload(t *testing.T) {
	h, out, closeTrail := auditedLNPHarness(t)
	sig := h.register(t, "alice", "pw")
	const size = 32 << 20
	must(t, os.WriteFile(filepath.Join(h.files, "big.bin"), randomBytes(size, 7), 0o644))

	cfg, err := tlsconf.ClientConfig(h.addr, h.known, tlsconf.ClientOptions{Warn: io.Discard})
	must(t, err)
	conn, err := tls.Dial("tcp", h.addr, cfg)
	must(t, err)
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	w, r := lnp.NewWriter(conn, 0), lnp.NewReader(conn)
	must(t, w.Write(lnp.Hello{User: "alice", Signature: sig}))
	must(t, w.Flush())
	if typ, _, err := r.Next(); err != nil || typ != lnp.TypeWelcome {
		t.Fatalf("got %v %v, want WELCOME", typ, err)
	}
	must(t, w.Write(lnp.Get{Path: "/shared/big.bin"}))
	must(t, w.Flush())
	if typ, _, err := r.Next(); err != nil || typ != lnp.TypeReply {
		t.Fatalf("got %v %v, want REPLY", typ, err)
	}
	r.Next() // one DATA frame, then the client goes away
	conn.NetConn().(interface{ SetLinger(int) error }).SetLinger(0)
	conn.Close()

	// The server notices at its next write; wait for the session to end.
	waitFor(t, func() bool { return h.srv.Conns() == 0 })
	closeTrail()
	var got *larder.Event
	for _, e := range trailEvents(t, out) {
		if e.Kind == larder.EventDownload {
			got = &e
		}
	}
	switch {
	case got == nil:
		t.Fatalf("no download event in:\n%s", out)
	case got.Status != int(lnp.StatusOther) || !strings.HasPrefix(got.Reason, "interrupted: ") || got.Bytes >= size:
		t.Errorf("an interrupted download was recorded with status %d, reason %q, %d bytes; want %d, \"interrupted: …\", fewer than %d",
			got.Status, got.Reason, got.Bytes, lnp.StatusOther, size)
	}
}

// TestAuditPathsCanonical: the paths of events are in one form whatever
// the protocol and however the client spelled them: absolute in the
// namespace LNP/1 shows, the user's own files under "/", the served
// folder (all the course protocol reaches) under "/shared". A path that
// cannot name a file is kept as the client sent it, as evidence, but
// placed in that namespace too, so that a course request and an LNP/1
// request for "../x" (one leaving the served folder, the other the
// user's space) are told apart, and every path begins with "/".
func TestAuditPathsCanonical(t *testing.T) {
	h, out, closeTrail := auditedLNPHarness(t)
	ctx := context.Background()
	sig := h.register(t, "alice", "pw")
	must(t, os.WriteFile(filepath.Join(h.files, "hello.txt"), []byte("hello\n"), 0o644))
	s := h.login(t, "alice", sig)
	must(t, s.Mkdir(ctx, "d1"))
	data := []byte("x")
	if _, err := s.Put(ctx, "/d1/x.txt", bytes.NewReader(data), 1, client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "d1/x.txt", 0, io.Discard, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "/shared/hello.txt", 0, io.Discard, nil); err != nil {
		t.Fatal(err)
	}
	must(t, s.Rename(ctx, "d1/x.txt", "/d1/y.txt", false))
	s.Stat(ctx, "/d1/../../etc/passwd")
	s.Stat(ctx, "../secret.txt")
	s.Stat(ctx, "") // the top of the space
	for _, p := range []string{"hello.txt", "/hello.txt", "../secret.txt", "/"} {
		c, err := client.Dial(ctx, h.courseAddr)
		must(t, err)
		c.Retrieve(ctx, "alice", sig, p, io.Discard)
		c.Close()
	}
	// Refused for its user name before the path is looked at: the event
	// still names the file asked for, not the served folder.
	raw, err := net.Dial("tcp", h.courseAddr)
	must(t, err)
	_, err = raw.Write(request("bad\x01name", sig, "hello.txt"))
	must(t, err)
	io.Copy(io.Discard, raw)
	raw.Close()
	s.Close()
	closeTrail()

	type key struct {
		kind larder.EventKind
		path string
	}
	want := map[key]int{
		{larder.EventMkdir, "/d1"}:                     1,
		{larder.EventUpload, "/d1/x.txt"}:              1,
		{larder.EventDownload, "/d1/x.txt"}:            1,
		{larder.EventDownload, "/shared/hello.txt"}:    3, // one LNP/1, two course
		{larder.EventRename, "/d1/x.txt"}:              1,
		{larder.EventStat, "/d1/../../etc/passwd"}:     1,
		{larder.EventStat, "/../secret.txt"}:           1,
		{larder.EventRefused, "/shared/../secret.txt"}: 1,
		{larder.EventRefused, "../secret.txt"}:         0,
		{larder.EventStat, "../secret.txt"}:            0,
		{larder.EventRefused, "/shared"}:               1, // the served folder itself
		{larder.EventRefused, "/shared/hello.txt"}:     1, // the bad user name
		{larder.EventStat, "/"}:                        1,
		{larder.EventStat, ""}:                         0,
		{larder.EventRegister, ""}:                     1, // a registration names no path
		{larder.EventLogin, "/shared/hello.txt"}:       2,
		{larder.EventLogin, "/shared/../secret.txt"}:   1,
		{larder.EventLogin, "../secret.txt"}:           0,
		{larder.EventDownload, "hello.txt"}:            0,
		{larder.EventDownload, "d1/x.txt"}:             0,
		{larder.EventDownload, "/hello.txt"}:           0,
		{larder.EventUpload, "d1/x.txt"}:               0,
		{larder.EventLogin, "hello.txt"}:               0,
	}
	got := map[key]int{}
	for _, e := range trailEvents(t, out) {
		got[key{e.Kind, e.Path}]++
		if e.Path != "" && !strings.HasPrefix(e.Path, "/") {
			t.Errorf("%s event with path %q, which does not begin with /", e.Kind, e.Path)
		}
		if e.Kind == larder.EventRename && e.Reason != "to /d1/y.txt" {
			t.Errorf("rename recorded with reason %q, want %q", e.Reason, "to /d1/y.txt")
		}
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%d %s events with path %q, want %d", got[k], k.kind, k.path, n)
		}
	}
	if t.Failed() {
		t.Logf("trail:\n%s", out)
	}
}

// TestLNPRequestsAreLogged: every LNP/1 request leaves one structured
// line in the server log, as a course-protocol request does.
func TestLNPRequestsAreLogged(t *testing.T) {
	h := newLNPHarness(t)
	ctx := context.Background()
	sig := h.register(t, "alice", "pw")
	s := h.login(t, "alice", sig)
	data := []byte("logged content")
	if _, err := s.Put(ctx, "f.txt", bytes.NewReader(data), int64(len(data)), client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "f.txt", 0, io.Discard, nil); err != nil {
		t.Fatal(err)
	}
	s.Stat(ctx, "missing")
	s.Close()
	h.dial("alice", larder.NewSignature("wrong", course.CourseSalt), 0)
	for _, want := range [][]string{
		{"msg=request", "protocol=LNP/1", "remote=127.0.0.1:", "op=login", "user=alice", "status=1"},
		{"msg=request", "protocol=LNP/1", "op=put", "user=alice", "path=/f.txt", "status=1", "bytes=14", "duration="},
		{"msg=request", "protocol=LNP/1", "op=get", "user=alice", "path=/f.txt", "status=1", "bytes=14", "duration="},
		{"msg=request", "protocol=LNP/1", "op=stat", "user=alice", "path=/missing", "status=8"},
		{"msg=request", "protocol=LNP/1", "op=login", "user=alice", "status=4"},
	} {
		for end := time.Now().Add(5 * time.Second); !logHas(h.logs.String(), want) && time.Now().Before(end); {
			time.Sleep(10 * time.Millisecond)
		}
		if !logHas(h.logs.String(), want) {
			t.Errorf("no log line with all of %q in:\n%s", want, h.logs)
		}
	}
}

// logHas reports whether one line of log holds every string of want.
func logHas(log string, want []string) bool {
	for line := range strings.SplitSeq(log, "\n") {
		all := true
		for _, w := range want {
			all = all && strings.Contains(line, w)
		}
		if all {
			return true
		}
	}
	return false
}

// TestAuditLNPSyncDownloadUnrecorded: with download among the sync
// kinds, an LNP/1 download whose event cannot be made durable (the spool
// is full) does not end with END OK: the client has no complete download
// that the trail does not hold.
func TestAuditLNPSyncDownloadUnrecorded(t *testing.T) {
	trail, err := audit.Open(audit.Config{Dir: t.TempDir(), MaxSpool: 1, SyncKinds: []larder.EventKind{larder.EventDownload}})
	must(t, err)
	h := newLNPHarness(t, func(s *server.Server) { s.Audit = trail })
	t.Cleanup(func() { trail.Close(context.Background()) })
	sig := h.register(t, "alice", "pw")
	must(t, os.WriteFile(filepath.Join(h.files, "f.txt"), []byte("content"), 0o644))
	s := h.login(t, "alice", sig)
	_, err = s.Get(context.Background(), "/shared/f.txt", 0, io.Discard, nil)
	var ne *client.LNPError
	if !errors.As(err, &ne) || ne.Status != lnp.StatusOther || !strings.Contains(ne.Message, "audit") {
		t.Fatalf("a download whose sync event was refused: got %v, want END OTHER saying the audit trail could not record it", err)
	}
}

// TestAuditLNPLoginFailureNamesCredential: a failed LNP/1 login is
// recorded with the credential that failed, so that the trail tells a
// mistyped password (the channel-bound proof) from a replayed course
// signature.
func TestAuditLNPLoginFailureNamesCredential(t *testing.T) {
	h, out, closeTrail := auditedLNPHarness(t)
	sig := h.register(t, "alice", "pw")
	s, err := h.enroll(t, "alice", sig, "pw")
	must(t, err)
	s.Close()
	_, err = client.Login(context.Background(), h.tlsConn(t), "alice", "not pw", cheapLogin())
	wantBadLogin(t, "a wrong password", err)
	h.register(t, "bob", "pw")
	if _, err := h.dial("bob", larder.NewSignature("not pw", course.CourseSalt), 0); err == nil {
		t.Fatal("a wrong signature logged in")
	}
	closeTrail()
	got := map[string]string{}
	for _, e := range trailEvents(t, out) {
		if e.Kind == larder.EventLoginFailed {
			got[e.User] = e.Reason
		}
	}
	if got["alice"] != "wrong password" || got["bob"] != "wrong signature" {
		t.Errorf("login.failed reasons %q; want alice's \"wrong password\", bob's \"wrong signature\"", got)
	}
}
