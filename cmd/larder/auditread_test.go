package main

import (
	"bufio"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/course"
)

// auditedServer starts a server recording into its data folder, with
// alice registered, one download and one failed login of hers behind it.
func auditedServer(t *testing.T, configure ...func(*ServeConfig)) *testLarder {
	t.Helper()
	l := startLarder(t, configure...)
	l.put(t, "f.txt", []byte("a file"))
	sig := larder.NewSignature("pw", course.CourseSalt)
	wantStatus(t, "register", rawExchange(t, l.addr(), "alice", sig, ""), course.StatusOK)
	wantStatus(t, "get", rawExchange(t, l.addr(), "alice", sig, "f.txt"), course.StatusOK)
	wantStatus(t, "guess", rawExchange(t, l.addr(), "alice", larder.NewSignature("guess", course.CourseSalt), "f.txt"), course.StatusInvalidLogin)
	waitUntil(t, "every event delivered", func() bool {
		st := l.main.audit.log.Stats()
		return l.main.srv.Conns() == 0 && st.Delivered == st.Taken
	})
	return l
}

// jsonEvents parses "--json" output: one event per line.
func jsonEvents(t *testing.T, out string) []larder.Event {
	t.Helper()
	var events []larder.Event
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var ev larder.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("not an event: %q: %v", sc.Text(), err)
		}
		events = append(events, ev)
	}
	return events
}

func TestAuditQuery(t *testing.T) {
	l := auditedServer(t)
	out, stderr, err := runLarder(t, "", "audit", "query", "--data", l.data, "--user", "alice",
		"--kind", "login,login.failed,download", "--since", "1h", "--json")
	if err != nil {
		t.Fatalf("audit query: %v\n%s", err, stderr)
	}
	events := jsonEvents(t, out)
	var kinds []string
	for _, ev := range events {
		kinds = append(kinds, string(ev.Kind))
		if ev.User != "alice" || ev.ID.IsZero() || ev.Seq == 0 {
			t.Errorf("event %+v", ev)
		}
	}
	if got := strings.Join(kinds, " "); got != "login download login.failed" {
		t.Errorf("alice's logins and downloads of the last hour: %s", got)
	}

	// Nothing before a time in the past, or after one in the future.
	for _, window := range [][]string{{"--until", "2000-01-01"}, {"--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}} {
		out, _, err := runLarder(t, "", append([]string{"audit", "query", "--data", l.data}, window...)...)
		if err != nil || out != "" {
			t.Errorf("audit query %v: %v, printed %q", window, err, out)
		}
	}

	// The table: a header, then a line per event with what it says.
	out, _, err = runLarder(t, "", "audit", "query", "--data", l.data, "--kind", "download")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "TIME (UTC)") ||
		!strings.Contains(lines[1], "download") || !strings.Contains(lines[1], "f.txt") || !strings.Contains(lines[1], "6 bytes") {
		t.Errorf("the table of downloads:\n%s", out)
	}
}

func TestAuditQueryRefusesBadFlags(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--kind", "logn"},
		{"--since", "yesterday"},
		{"--until", "2026-13-01"},
		{"--limit", "-1"},
	} {
		_, stderr, err := runLarder(t, "", append([]string{"audit", "query", "--data", dir}, args...)...)
		if err == nil {
			t.Errorf("audit query %v: no error", args)
			continue
		}
		if code := ExitCode(err); code != exitUsage {
			t.Errorf("audit query %v: exit code %d (%v), want %d", args, code, err, exitUsage)
		}
		if msg := err.Error() + stderr; !strings.Contains(msg, args[0]) {
			t.Errorf("audit query %v: the error does not name what is wrong: %v", args, err)
		}
	}
}

func TestAuditTail(t *testing.T) {
	l := auditedServer(t)
	out, stderr, err := runLarder(t, "", "audit", "tail", "-n", "2", "--data", l.data, "--json")
	if err != nil {
		t.Fatalf("audit tail: %v\n%s", err, stderr)
	}
	all, _, err := runLarder(t, "", "audit", "query", "--data", l.data, "--json")
	if err != nil {
		t.Fatal(err)
	}
	events, want := jsonEvents(t, out), jsonEvents(t, all)
	if len(events) != 2 || len(want) < 2 || events[0].ID != want[len(want)-2].ID || events[1].ID != want[len(want)-1].ID {
		t.Fatalf("tail -n 2 gave %+v\nthe whole trail is %+v", events, want)
	}

	// -n 0 shows nothing of what is there.
	if out, stderr, err := runLarder(t, "", "audit", "tail", "-n", "0", "--data", l.data, "--json"); err != nil || out != "" {
		t.Fatalf("audit tail -n 0: %v, printed %q\n%s", err, out, stderr)
	}

	// -f shows what arrives after it started, until interrupted. The
	// newest event, shown first, says tail has read where the trail ends.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout := &lockedBuffer{}
	env := &Env{Stdin: strings.NewReader(""), Stdout: stdout, Stderr: &lockedBuffer{}, Getenv: func(string) string { return "" }}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, env, []string{"audit", "tail", "-n", "1", "-f", "--interval", "20ms", "--data", l.data, "--json"})
	}()
	waitUntil(t, "tail shows the newest event", func() bool { return strings.Count(stdout.String(), "\n") >= 1 })
	wantStatus(t, "bob", rawExchange(t, l.addr(), "bob", larder.NewSignature("pw", course.CourseSalt), ""), course.StatusOK)
	waitUntil(t, "bob's events delivered", func() bool {
		st := l.main.audit.log.Stats()
		return l.main.srv.Conns() == 0 && st.Delivered == st.Taken
	})
	waitUntil(t, "tail shows bob's registration", func() bool { return strings.Contains(stdout.String(), `"bob"`) })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("audit tail -f, interrupted: %v", err)
	}
	followed := jsonEvents(t, stdout.String())
	var kinds []string
	for _, ev := range followed[1:] {
		kinds = append(kinds, string(ev.Kind)+":"+ev.User)
	}
	if followed[0].ID != want[len(want)-1].ID {
		t.Errorf("tail -n 1 -f showed %+v first, want the newest event %+v", followed[0], want[len(want)-1])
	}
	if got := strings.Join(kinds, " "); got != "register:bob" {
		t.Errorf("tail -f showed %q after the newest event, want register:bob", got)
	}
}
