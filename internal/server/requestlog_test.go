package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/internal/server"
	"github.com/larderfs/larder/lnp"
)

// requestFields are the fields of every request's log line, whichever
// the protocol (docs/OPERATIONS.md, "Logs"); optionalFields those a line
// has when they say something.
var (
	requestFields  = []string{"time", "level", "msg", "remote", "protocol", "op", "user", "path", "status", "bytes", "duration"}
	optionalFields = []string{"reason", "error", "send"}
)

// requestLines returns the request lines of a JSON log, checking that
// each has every field of requestFields, no field beyond optionalFields,
// and a duration as a Go duration string.
func requestLines(t *testing.T, log string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(log), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		if r["msg"] != "request" {
			continue
		}
		for _, k := range requestFields {
			if _, ok := r[k]; !ok {
				t.Errorf("request line without %s: %s", k, line)
			}
		}
		for k := range r {
			if !slices.Contains(requestFields, k) && !slices.Contains(optionalFields, k) {
				t.Errorf("request line with a field %q no other has: %s", k, line)
			}
		}
		if d, ok := r["duration"].(string); !ok {
			t.Errorf("duration %#v is not a duration string: %s", r["duration"], line)
		} else if _, err := time.ParseDuration(d); err != nil {
			t.Errorf("duration %q: %v", d, err)
		}
		lines = append(lines, r)
	}
	return lines
}

// jsonLogger returns a JSON logger that writes durations as the program's
// does (cmd/larder's newLogger), into log.
func jsonLogger(log io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(log, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Value.Kind() == slog.KindDuration {
			a.Value = slog.StringValue(a.Value.Duration().String())
		}
		return a
	}}))
}

// TestRequestLogEveryLNPRequest: every LNP/1 request type, a login, a
// malformed request and a request of an account disabled meanwhile each
// leave one log line, with the fields a course-protocol request's line has.
func TestRequestLogEveryLNPRequest(t *testing.T) {
	log := &syncBuffer{}
	h := newLNPHarness(t, func(s *server.Server) { s.Logger = jsonLogger(log) })
	ctx := context.Background()
	sig := h.register(t, "alice", "pw")
	must(t, os.WriteFile(filepath.Join(h.files, "hello.txt"), []byte("hello"), 0o644))
	s := h.login(t, "alice", sig)
	data := []byte("some content")
	steps := []struct {
		op string
		do func() error
	}{
		{"whoami", func() error { _, err := s.Whoami(ctx); return err }},
		{"mkdir", func() error { return s.Mkdir(ctx, "d") }},
		{"put", func() error {
			_, err := s.Put(ctx, "d/f.txt", bytes.NewReader(data), int64(len(data)), client.PutOptions{})
			return err
		}},
		{"stat", func() error { _, err := s.Stat(ctx, "d/f.txt"); return err }},
		{"list", func() error { _, _, err := s.List(ctx, "d", "", 0); return err }},
		{"sums", func() error { _, err := s.Sums(ctx, "d/f.txt", 0, 1); return err }},
		{"get", func() error { _, err := s.Get(ctx, "/shared/hello.txt", 0, io.Discard, nil); return err }},
		{"rename", func() error { return s.Rename(ctx, "d/f.txt", "d/g.txt", false) }},
		{"delete", func() error { return s.Delete(ctx, "d/g.txt") }},
		{"parts", func() error { _, err := s.Parts(ctx); return err }},
		{"cancel", func() error { _, err := s.Cancel(ctx, ""); return err }},
		{"device_add", func() error {
			_, err := s.AddDevice(ctx, "laptop", [lnp.DeviceSecretSize]byte{1})
			return err
		}},
		{"devices", func() error { _, err := s.Devices(ctx); return err }},
		{"device_revoke", func() error { return s.RevokeDevice(ctx, [16]byte{9}) }},
		{"passwd", func() error { return s.Passwd(ctx, sig, larder.NewSignature("pw2", course.CourseSalt)) }},
	}
	for _, st := range steps {
		st.do() // some fail (no such device); each is logged all the same
	}
	s.Close()

	// A malformed request: answered MALFORMED, and the session ends.
	conn := h.tlsConn(t)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	w, r := lnp.NewWriter(conn, 0), lnp.NewReader(conn)
	sig2 := larder.NewSignature("pw2", course.CourseSalt)
	must(t, w.Write(lnp.Hello{User: "alice", Signature: sig2}))
	must(t, w.Flush())
	if typ, _, err := r.Next(); err != nil || typ != lnp.TypeWelcome {
		t.Fatalf("got %v %v, want WELCOME", typ, err)
	}
	must(t, w.WriteFrame(lnp.TypeStat, []byte{0xff}))
	must(t, w.Flush())
	if typ, body, err := r.Next(); err != nil || typ != lnp.TypeReply {
		t.Fatalf("got %v %q %v, want REPLY MALFORMED", typ, body, err)
	}

	// A request of an account disabled after its session began.
	open := h.login(t, "alice", sig2)
	must(t, h.users.SetDisabled(ctx, "alice", true))
	if _, err := open.Whoami(ctx); err == nil {
		t.Fatal("whoami of a disabled account succeeded")
	}
	open.Close()
	waitFor(t, func() bool { return h.srv.Conns() == 0 })

	lines := requestLines(t, log.String())
	has := func(op string, status lnp.Status) bool {
		return slices.ContainsFunc(lines, func(r map[string]any) bool {
			return r["protocol"] == "LNP/1" && r["op"] == op && r["user"] == "alice" && r["status"] == float64(status) &&
				strings.HasPrefix(r["remote"].(string), "127.0.0.1:")
		})
	}
	for _, st := range steps {
		want := lnp.StatusOK
		if st.op == "device_revoke" {
			want = lnp.StatusNotFound
		}
		if !has(st.op, want) {
			t.Errorf("no log line of %s with status %v", st.op, want)
		}
	}
	for _, c := range []struct {
		op     string
		status lnp.Status
	}{{"login", lnp.StatusOK}, {"stat", lnp.StatusMalformed}, {"whoami", lnp.StatusDenied}} {
		if !has(c.op, c.status) {
			t.Errorf("no log line of %s with status %v", c.op, c.status)
		}
	}
	if t.Failed() {
		t.Logf("log:\n%s", log)
	}
}

// TestRequestLogCourse: the course protocol's requests are logged with
// the same fields as LNP/1's.
func TestRequestLogCourse(t *testing.T) {
	log := &syncBuffer{}
	h := newHarness(t, func(s *server.Server) { s.Logger = jsonLogger(log) })
	ctx := context.Background()
	must(t, os.WriteFile(filepath.Join(h.files, "hello.txt"), []byte("hello"), 0o644))
	sig := larder.NewSignature("pw", course.CourseSalt)
	c, err := client.Dial(ctx, h.addr)
	must(t, err)
	_, err = c.Register(ctx, "alice", sig)
	c.Close()
	must(t, err)
	for _, p := range []string{"hello.txt", "missing.txt"} {
		c, err := client.Dial(ctx, h.addr)
		must(t, err)
		c.Retrieve(ctx, "alice", sig, p, io.Discard)
		c.Close()
	}
	raw, err := net.Dial("tcp", h.addr)
	must(t, err)
	raw.Write([]byte("not a request\n"))
	raw.(*net.TCPConn).CloseWrite()
	io.Copy(io.Discard, raw)
	raw.Close()
	waitFor(t, func() bool { return h.srv.Conns() == 0 })

	lines := requestLines(t, log.String())
	got := map[string]bool{}
	for _, r := range lines {
		if r["protocol"] != "course" {
			t.Errorf("protocol %v, want course", r["protocol"])
		}
		got[r["op"].(string)+" "+r["path"].(string)+" "+strings.Repeat("x", int(r["status"].(float64)))] = true
		if r["status"] == float64(course.StatusBadRequest) && r["reason"] == nil {
			t.Errorf("a refusal without its reason: %v", r)
		}
	}
	for _, want := range []string{
		"register  " + strings.Repeat("x", int(course.StatusOK)),
		"retrieve /shared/hello.txt " + strings.Repeat("x", int(course.StatusOK)),
		"retrieve /shared/missing.txt " + strings.Repeat("x", int(course.StatusBadRequest)),
		"  " + strings.Repeat("x", int(course.StatusMalformed)),
	} {
		if !got[want] {
			t.Errorf("no request line %q among %v", want, slices.Sorted(maps.Keys(got)))
		}
	}
	if t.Failed() {
		t.Logf("log:\n%s", log)
	}
}

// TestRequestLogLoginRefusedOnTheWay: a login refused after its HELLO
// named the account (here a PROOF that is not one) is logged, and
// recorded, with that name.
func TestRequestLogLoginRefusedOnTheWay(t *testing.T) {
	log := &syncBuffer{}
	h := newLNPHarness(t, func(s *server.Server) { s.Logger = jsonLogger(log) })
	h.register(t, "alice", "pw")
	conn := h.tlsConn(t)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	w, r := lnp.NewWriter(conn, 0), lnp.NewReader(conn)
	must(t, w.Write(lnp.Hello2{User: "alice", Method: lnp.MethodPassword, MaxBlock: lnp.DefaultBlockSize}))
	must(t, w.Flush())
	if typ, _, err := r.Next(); err != nil || typ != lnp.TypeChallenge {
		t.Fatalf("got %v %v, want a CHALLENGE", typ, err)
	}
	must(t, w.WriteFrame(lnp.TypeStat, nil)) // where the PROOF is due
	must(t, w.Flush())
	if typ, _, err := r.Next(); err != nil || typ != lnp.TypeWelcome {
		t.Fatalf("got %v %v, want a WELCOME MALFORMED", typ, err)
	}
	waitFor(t, func() bool { return h.srv.Conns() == 0 })
	lines := requestLines(t, log.String())
	if !slices.ContainsFunc(lines, func(r map[string]any) bool {
		return r["op"] == "login" && r["user"] == "alice" && r["status"] == float64(lnp.StatusMalformed)
	}) {
		t.Errorf("no login line of alice with status MALFORMED in:\n%s", log)
	}
}
