package check

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// runSuite runs the checks named by only (all if empty) against addr.
func runSuite(t *testing.T, addr, files string, only ...string) *Report {
	t.Helper()
	return runSuiteTimeout(t, addr, files, time.Second, only...)
}

// runSuiteTimeout is runSuite with each exchange given timeout.
func runSuiteTimeout(t *testing.T, addr, files string, timeout time.Duration, only ...string) *Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := ServerConfig{Addr: addr, Files: files, Timeout: timeout, Clients: 8}
	if len(only) > 0 {
		cfg.Only = func(id string) bool { return slices.Contains(only, id) }
	}
	rep, err := Server(ctx, cfg)
	if err != nil {
		t.Fatalf("Server: %v", err)
	}
	return rep
}

func result(t *testing.T, rep *Report, id string) Result {
	t.Helper()
	for _, r := range rep.Results {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no result for %s", id)
	return Result{}
}

// TestFaultlessServerPasses runs the whole suite against the test server
// without faults: every check passes, so that each failure below is the
// fault's doing.
func TestFaultlessServerPasses(t *testing.T) {
	root := t.TempDir()
	s := startFaulty(t, root, "")
	rep := runSuite(t, s.addr(), root)
	for _, r := range rep.Results {
		if r.Outcome != Pass {
			t.Errorf("%s: %s, want pass\n  sent %s\n  expected %s\n  got %s", r.ID, r.Outcome, r.Sent, r.Expected, r.Got)
		}
	}
	if err := rep.OK(); err != nil {
		t.Errorf("OK: %v", err)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("the checker left %d entries in the served folder", len(entries))
	}

	// Every check has a fault that it is shown to fail on.
	tested := map[string]bool{"get.tiny": true, "get.hamlet": true} // TestRemoteMode
	for _, f := range serverFaults {
		for _, id := range f.fails {
			tested[id] = true
		}
	}
	for _, r := range rep.Results {
		if !tested[r.ID] {
			t.Errorf("%s is not shown to fail against any fault (add one to serverFaults)", r.ID)
		}
	}
}

// serverFaults pairs each fault of the test server with the checks that
// must fail against it.
var serverFaults = []struct {
	fault string
	fails []string
}{
	{"register-closed", []string{"register.new"}},
	{"reregister", []string{"register.duplicate", "register.takeover"}},
	{"empty-name-ok", []string{"register.empty-name"}},
	{"no-empty-password", []string{"register.empty-password"}},
	{"need-nul", []string{"register.long-name"}},
	{"ascii-names", []string{"register.utf8-name"}},
	{"word-names", []string{"register.punctuation-name"}},
	{"name-rstrip", []string{"register.nul-in-name"}},
	{"utf8-other", []string{"register.invalid-utf8"}},
	{"missing-as-invalid", []string{"login.unknown-user"}},
	{"any-signature", []string{"login.wrong-signature"}},
	{"empty-no-block", []string{"get.empty"}},
	{"hash-full-buffer", []string{"get.one-byte", "get.one-block-plus-one", "get.binary", "get.large"}},
	{"extra-block", []string{"get.one-block"}},
	{"cstring", []string{"get.binary"}},
	{"missing-other", []string{"get.missing"}},
	{"folder-other", []string{"get.folder"}},
	{"keep-slash", []string{"get.leading-slash"}},
	{"follow-dotdot", []string{"path.dotdot", "path.absolute"}},
	{"follow-links", []string{"path.symlink"}},
	{"cut-nul", []string{"path.nul"}},
	{"silent-short", []string{"malformed.short-header"}},
	{"second-reply", []string{"malformed.length-larger", "malformed.huge-length", "malformed.garbage"}},
	{"whole-recv", []string{"malformed.length-smaller"}},
	{"read-declared", []string{"malformed.huge-length"}},
	{"max-1024", []string{"malformed.over-max"}},
	{"one-recv", []string{"conn.byte-at-a-time"}},
	{"no-drain", []string{"malformed.bytes-after-body"}},
	{"exit-on-empty", []string{"conn.no-request"}},
	{"single-threaded", []string{"conn.slow-client"}},
	{"cap-4", []string{"conn.many-clients"}},
	{"backlog-1", []string{"conn.many-clients"}},
	{"exit-on-malformed", []string{"conn.still-serving"}},
}

// TestChecksFailOnFaults shows that each check fails against a server
// with the fault it is there to find.
func TestChecksFailOnFaults(t *testing.T) {
	for _, c := range serverFaults {
		t.Run(c.fault, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			s := startFaulty(t, root, c.fault)
			only := c.fails
			if c.fault == "exit-on-malformed" {
				// Garbage kills it; the server is then gone for the last check.
				only = []string{"malformed.garbage", "conn.still-serving"}
			}
			timeout := time.Second
			if c.fault == "backlog-1" {
				// Long enough for the dropped connections to be retried
				// and open, late: the lateness must fail the check.
				timeout = 3 * time.Second
			}
			rep := runSuiteTimeout(t, s.addr(), root, timeout, only...)
			for _, id := range c.fails {
				if r := result(t, rep, id); r.Outcome != Fail {
					t.Errorf("%s: %s, want fail (got %s)", id, r.Outcome, r.Got)
				}
			}
			if rep.OK() == nil && slices.ContainsFunc(rep.Results, func(r Result) bool { return r.Required && r.Outcome == Fail }) {
				t.Error("OK is nil with a required check failed")
			}
		})
	}
}

// TestRemoteMode checks a server by the handout's files alone: tiny.txt
// is known by its hash, a hamlet.txt that is not the handout's fails, and
// without the files the checks that need them do not apply.
func TestRemoteMode(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "tiny.txt"), []byte("Contents of a very small file."), 0o644)
	os.WriteFile(filepath.Join(root, "hamlet.txt"), []byte("To be, or not to be, that is the question\n"), 0o644)
	s := startFaulty(t, root, "")
	rep := runSuite(t, s.addr(), "")
	if r := result(t, rep, "get.tiny"); r.Outcome != Pass {
		t.Errorf("get.tiny: %s (%s), want pass", r.Outcome, r.Got)
	}
	if r := result(t, rep, "get.hamlet"); r.Outcome != Fail {
		t.Errorf("get.hamlet of another file: %s (%s), want fail", r.Outcome, r.Got)
	}
	for _, id := range []string{"conn.byte-at-a-time", "malformed.bytes-after-body", "conn.many-clients"} {
		if r := result(t, rep, id); r.Outcome != Pass {
			t.Errorf("%s: %s (%s), want pass", id, r.Outcome, r.Got)
		}
	}
	for _, id := range []string{"path.dotdot", "path.symlink", "get.folder"} {
		if r := result(t, rep, id); r.Outcome != NotApplicable {
			t.Errorf("%s without --files: %s, want n/a", id, r.Outcome)
		}
	}

	broken := startFaulty(t, root, "hash-full-buffer")
	rep = runSuite(t, broken.addr(), "", "get.tiny")
	if r := result(t, rep, "get.tiny"); r.Outcome != Fail {
		t.Errorf("get.tiny with a wrong block hash: %s (%s), want fail", r.Outcome, r.Got)
	}

	empty := startFaulty(t, t.TempDir(), "")
	rep = runSuite(t, empty.addr(), "")
	for _, id := range []string{"get.tiny", "conn.byte-at-a-time", "conn.many-clients"} {
		if r := result(t, rep, id); r.Outcome != NotApplicable {
			t.Errorf("%s with no handout files: %s (%s), want n/a", id, r.Outcome, r.Got)
		}
	}
	if len(rep.Notes) == 0 {
		t.Error("no note says which files the server lacks")
	}
}

// TestWrongFilesFolder: --files naming a folder the server does not serve
// fails the retrievals, and a note asks whether it is the right folder.
func TestWrongFilesFolder(t *testing.T) {
	s := startFaulty(t, t.TempDir(), "")
	rep := runSuite(t, s.addr(), t.TempDir(), "get.one-byte")
	if r := result(t, rep, "get.one-byte"); r.Outcome != Fail {
		t.Errorf("get.one-byte from the wrong folder: %s, want fail", r.Outcome)
	}
	if len(rep.Notes) == 0 || !strings.Contains(rep.Notes[0], "the folder it serves") {
		t.Errorf("notes %q, want one asking whether --files is the served folder", rep.Notes)
	}
}

// TestNotACourseServer: what answers no block to a registration (here it
// closes every connection at once) gets a note asking whether it is a
// course-protocol server at all.
func TestNotACourseServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	rep := runSuite(t, ln.Addr().String(), "", "register.new")
	if r := result(t, rep, "register.new"); r.Outcome != Fail {
		t.Errorf("register.new: %s, want fail", r.Outcome)
	}
	if len(rep.Notes) == 0 || !strings.Contains(rep.Notes[0], "a course-protocol server?") {
		t.Errorf("notes %q, want one asking whether it is a course-protocol server", rep.Notes)
	}
}
