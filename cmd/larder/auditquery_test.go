package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/internal/postgres/pgtest"
	"github.com/larderfs/larder/internal/sqlite"
)

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"7d", now.Add(-7 * 24 * time.Hour)},
		{"12h", now.Add(-12 * time.Hour)},
		{"30m", now.Add(-30 * time.Minute)},
		{"90s", now.Add(-90 * time.Second)},
		{"1d12h", now.Add(-36 * time.Hour)},
		{"0d", now},
		{"2026-11-22", time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)},
		{"2026-11-22T18:00:00Z", time.Date(2026, 11, 22, 18, 0, 0, 0, time.UTC)},
		{"2026-11-22T18:00:00+02:00", time.Date(2026, 11, 22, 16, 0, 0, 0, time.UTC)},
	} {
		got, err := parseWhen(tc.in, now)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("parseWhen(%q): got %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ in, msg string }{
		{"-2h", "cannot be negative"},
		{"1d-2h", "cannot be negative"},
		{"7x", "not RFC 3339"},
		{"1d2x", "not an age"},
		{"36501d", "more than 100 years"},
		{"99999999999999999999d", "more than 100 years"},
		{"yesterday", "not RFC 3339"},
		{"d", "not RFC 3339"},
	} {
		if _, err := parseWhen(tc.in, now); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("parseWhen(%q): got %v, want an error saying %q", tc.in, err, tc.msg)
		}
	}
}

// filteredServer is auditedServer with more behind it: from 127.0.0.2, a
// download of another file, a request for a missing one and one for a
// path out of the served folder.
func filteredServer(t *testing.T, configure ...func(*ServeConfig)) *testLarder {
	t.Helper()
	l := auditedServer(t, configure...)
	l.put(t, "g.txt", []byte("another"))
	sig := larder.NewSignature("pw", course.CourseSalt)
	wantStatus(t, "get g", rawExchangeFrom(t, "127.0.0.2", l.addr(), "alice", sig, "g.txt"), course.StatusOK)
	wantStatus(t, "get missing", rawExchangeFrom(t, "127.0.0.2", l.addr(), "alice", sig, "/missing.txt"), course.StatusBadRequest)
	wantStatus(t, "get out", rawExchangeFrom(t, "127.0.0.2", l.addr(), "alice", sig, "../secret.txt"), course.StatusBadRequest)
	waitUntil(t, "every event delivered", func() bool {
		st := l.main.audit.log.Stats()
		return l.main.srv.Conns() == 0 && st.Delivered == st.Taken
	})
	return l
}

// summary is what a test compares of events: kind, path and status.
func summary(events []larder.Event) string {
	var s []string
	for _, e := range events {
		s = append(s, fmt.Sprintf("%s:%s:%d", e.Kind, e.Path, e.Status))
	}
	return strings.Join(s, " ")
}

func TestAuditQueryFilters(t *testing.T) {
	l := filteredServer(t)
	testAuditQueryFilters(t, "--data", l.data)
}

// TestAuditQueryFiltersPostgres runs the same queries on a trail in
// PostgreSQL, read with --audit-db.
func TestAuditQueryFiltersPostgres(t *testing.T) {
	url := pgtest.URL(t)
	filteredServer(t, func(c *ServeConfig) { c.Audit.Sink = url })
	testAuditQueryFilters(t, "--audit-db", url)
}

func testAuditQueryFilters(t *testing.T, from, where string) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--path", "/shared/f.txt"}, "login:/shared/f.txt:0 download:/shared/f.txt:1 login.failed:/shared/f.txt:0"},
		{[]string{"--path", "shared//f.txt/"}, "login:/shared/f.txt:0 download:/shared/f.txt:1 login.failed:/shared/f.txt:0"},
		{[]string{"--path", "/shared", "--kind", "download,refused"}, "download:/shared/f.txt:1 download:/shared/g.txt:1 refused:/shared/missing.txt:5 refused:/shared/../secret.txt:5"},
		{[]string{"--path", "/shared/../secret.txt"}, "login:/shared/../secret.txt:0 refused:/shared/../secret.txt:5"},
		{[]string{"--path", "/shared/f"}, ""},
		{[]string{"--remote", "127.0.0.2", "--kind", "download,refused"}, "download:/shared/g.txt:1 refused:/shared/missing.txt:5 refused:/shared/../secret.txt:5"},
		{[]string{"--remote", "127.0.0.3"}, ""},
		{[]string{"--status", "5"}, "refused:/shared/missing.txt:5 refused:/shared/../secret.txt:5"},
		{[]string{"--status", "bad_request,INVALID_LOGIN"}, "refused:/shared/missing.txt:5 refused:/shared/../secret.txt:5"},
		{[]string{"--status", "1", "--remote", "127.0.0.1", "--kind", "download"}, "download:/shared/f.txt:1"},
		{[]string{"--since", "7d", "--until", "0d", "--kind", "download"}, "download:/shared/f.txt:1 download:/shared/g.txt:1"},
		{[]string{"--since", "0s", "--kind", "download"}, ""},
		{[]string{"--since", "1678-01-01", "--until", "2262-01-01", "--kind", "download"}, "download:/shared/f.txt:1 download:/shared/g.txt:1"},
		{[]string{"--until", "1678-01-01"}, ""},
	} {
		out, stderr, err := runLarder(t, "", append([]string{"audit", "query", from, where, "--json"}, tc.args...)...)
		if err != nil {
			t.Errorf("audit query %q: %v\n%s", tc.args, err, stderr)
			continue
		}
		if got := summary(jsonEvents(t, out)); got != tc.want {
			t.Errorf("audit query %q:\n got %s\nwant %s", tc.args, got, tc.want)
		}
	}
	for _, tc := range []struct{ args []string }{
		{[]string{"--status", "NOPE"}},
		{[]string{"--status", "70000"}},
		{[]string{"--since", "-1h"}},
		{[]string{"--after", "-1"}},
	} {
		_, _, err := runLarder(t, "", append([]string{"audit", "query", from, where}, tc.args...)...)
		if ExitCode(err) != exitUsage || !strings.Contains(err.Error(), tc.args[0]) {
			t.Errorf("audit query %q: got %v (exit %d), want a usage error naming %s", tc.args, err, ExitCode(err), tc.args[0])
		}
	}
	// The zero time, and any other the trail cannot hold, is refused with
	// the times that are accepted, never taken for no bound (every event).
	for _, args := range [][]string{
		{"--until", "0001-01-01"},
		{"--until", "0001-01-01T00:00:00Z"},
		{"--since", "0001-01-01"},
		{"--until", "0000-12-31"},
		{"--until", "1677-12-31"},
		{"--since", "2262-01-02"},
		{"--since", "9999-12-31T23:59:59Z"},
	} {
		for _, cmd := range [][]string{{"audit", "query"}, {"audit", "tail"}, {"audit", "export"}} {
			out, _, err := runLarder(t, "", append(append(cmd, from, where), args...)...)
			if ExitCode(err) != exitUsage || !strings.Contains(err.Error(), args[0]) || !strings.Contains(err.Error(), "from 1678-01-01 to 2262-01-01") || out != "" {
				t.Errorf("%s %q: got %v (exit %d), printed %q; want a usage error naming %s and the times accepted", cmd, args, err, ExitCode(err), out, args[0])
			}
		}
	}
}

var nextPage = regexp.MustCompile(`cut short at --limit (\d+) events; more match\. For the next page, add --after (\d+)`)

// TestAuditQueryPages reads the trail a page at a time with the cursor
// that query prints: every event once, and a word on standard error for
// every page but the last, none when the result is whole (also when it
// has exactly --limit events).
func TestAuditQueryPages(t *testing.T) {
	l := filteredServer(t)
	all, _, err := runLarder(t, "", "audit", "query", "--data", l.data, "--json")
	if err != nil {
		t.Fatal(err)
	}
	want := jsonEvents(t, all)
	if len(want) < 7 {
		t.Fatalf("only %d events in the trail", len(want))
	}
	var got []larder.Event
	after := "0"
	for pages := 1; ; pages++ {
		out, stderr, err := runLarder(t, "", "audit", "query", "--data", l.data, "--json", "--limit", "3", "--after", after)
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		page := jsonEvents(t, out)
		got = append(got, page...)
		m := nextPage.FindStringSubmatch(stderr)
		if m == nil {
			if stderr != "" || len(got) != len(want) {
				t.Errorf("page %d of %d events, %d in all, ends with %q on standard error", pages, len(page), len(got), stderr)
			}
			break
		}
		if len(page) != 3 || m[2] != fmt.Sprint(page[2].Seq) {
			t.Fatalf("page %d: %d events, then %q; want 3 and the last one's seq", pages, len(page), stderr)
		}
		after = m[2]
	}
	if summary(got) != summary(want) {
		t.Errorf("the pages:\n%s\nthe whole:\n%s", summary(got), summary(want))
	}
	// Exactly --limit events: whole, not cut short.
	_, stderr, err := runLarder(t, "", "audit", "query", "--data", l.data, "--limit", fmt.Sprint(len(want)))
	if err != nil || stderr != "" {
		t.Errorf("audit query --limit %d of %d events: %v, %q on standard error; want nothing", len(want), len(want), err, stderr)
	}
	_, stderr, err = runLarder(t, "", "audit", "query", "--data", l.data, "--limit", fmt.Sprint(len(want)-1))
	if err != nil || !nextPage.MatchString(stderr) {
		t.Errorf("audit query --limit %d of %d events: %v, %q on standard error; want it cut short", len(want)-1, len(want), err, stderr)
	}
}

// TestAuditExport writes the whole trail, more than a page of the store's
// reads, as JSON lines and as CSV, and a filtered part of it.
func TestAuditExport(t *testing.T) {
	l := filteredServer(t)
	// A name made to be a formula in a spreadsheet, from a client that
	// never logged in, and a path with a comma, a quote and a newline.
	sig := larder.NewSignature("pw", course.CourseSalt)
	wantStatus(t, "formula", rawExchange(t, l.addr(), "=1+2*cmd|' /C x'", sig, "f.txt"), course.StatusUserMissing)
	wantStatus(t, "odd path", rawExchange(t, l.addr(), "alice", sig, "a,\"b\"\nc"), course.StatusBadRequest)
	waitUntil(t, "every event delivered", func() bool {
		st := l.main.audit.log.Stats()
		return l.main.srv.Conns() == 0 && st.Delivered == st.Taken
	})
	// And more events than a page, stored beside the server's.
	db, err := sqlite.Open(context.Background(), filepath.Join(l.data, "larder.db"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var bulk []larder.Event
	for i := range exportPage + 500 {
		bulk = append(bulk, larder.Event{ID: larder.NewEventID(now), Time: now, Kind: larder.EventList,
			User: "bulk", Remote: "192.0.2.9:1", Path: fmt.Sprintf("/bulk/%d", i), Status: 1})
	}
	err = sqlite.NewEventStore(db).StoreEvents(context.Background(), bulk)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	all, _, err := runLarder(t, "", "audit", "query", "--data", l.data, "--json", "--limit", "100000")
	if err != nil {
		t.Fatal(err)
	}
	want := jsonEvents(t, all)

	out, stderr, err := runLarder(t, "", "audit", "export", "--data", l.data)
	if err != nil {
		t.Fatalf("audit export: %v\n%s", err, stderr)
	}
	if got := jsonEvents(t, out); !slices.EqualFunc(got, want, func(a, b larder.Event) bool { return a.ID == b.ID && a.Seq == b.Seq }) {
		t.Errorf("audit export: %d events, want the %d of the trail in order", len(got), len(want))
	}

	out, stderr, err = runLarder(t, "", "audit", "export", "--data", l.data, "--format", "csv")
	if err != nil {
		t.Fatalf("audit export --format csv: %v\n%s", err, stderr)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("the CSV does not parse: %v", err)
	}
	if len(rows) != len(want)+1 || strings.Join(rows[0], ",") != "id,seq,time,kind,server,user,remote,path,bytes,sha256,status,duration_ns,reason" {
		t.Fatalf("the CSV has %d rows, header %q; want %d and the fields of the JSON form", len(rows), rows[0], len(want)+1)
	}
	formula, oddPath := false, false
	for i, row := range rows[1:] {
		e := want[i]
		if row[0] != e.ID.String() || row[1] != fmt.Sprint(e.Seq) || row[3] != string(e.Kind) || row[7] != e.Path && row[7] != "'"+e.Path {
			t.Fatalf("CSV row %d is %q; want event %+v", i, row, e)
		}
		if strings.HasPrefix(e.User, "=") {
			formula = true
			if row[5] != "'"+e.User {
				t.Errorf("the user %q is written %q in the CSV; want it after a ' so a spreadsheet shows it as text", e.User, row[5])
			}
		}
		oddPath = oddPath || row[7] == "/shared/a,\"b\"\nc"
	}
	if !formula || !oddPath {
		t.Errorf("the CSV lacks the formula user (%v) or the path with a comma, quote and newline (%v)", formula, oddPath)
	}

	// Filtered: the bulk events below /bulk/1 whose remote is 192.0.2.9.
	out, _, err = runLarder(t, "", "audit", "export", "--data", l.data, "--path", "/bulk/1", "--remote", "192.0.2.9")
	if got := jsonEvents(t, out); err != nil || len(got) != 1 || got[0].Path != "/bulk/1" {
		t.Errorf("audit export --path /bulk/1: %v, %s", err, summary(got))
	}
	_, _, err = runLarder(t, "", "audit", "export", "--data", l.data, "--format", "xml")
	if ExitCode(err) != exitUsage || !strings.Contains(err.Error(), "--format") {
		t.Errorf("audit export --format xml: got %v, want a usage error naming --format", err)
	}
}

// TestAuditTableQuotes: the table quotes what a client sent that a
// terminal would act on, such as an escape sequence in the name of a
// failed login, rather than print it.
func TestAuditTableQuotes(t *testing.T) {
	l := auditedServer(t)
	sig := larder.NewSignature("pw", course.CourseSalt)
	for _, name := range []string{"\x1b[2J\x1b[Hmal", "eve\u202egnp.exe", "tab\there", "bad\xffbyte"} {
		// Refused, as names with such characters are, but recorded.
		rawExchange(t, l.addr(), name, sig, "f.txt")
	}
	waitUntil(t, "every event delivered", func() bool {
		st := l.main.audit.log.Stats()
		return l.main.srv.Conns() == 0 && st.Delivered == st.Taken
	})
	out, _, err := runLarder(t, "", "audit", "query", "--data", l.data)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(out, "\x1b\u202e\t\xff") {
		t.Errorf("the table prints what a client sent raw:\n%q", out)
	}
	for _, quoted := range []string{`"\x1b[2J\x1b[Hmal"`, `"eve\u202egnp.exe"`, `"tab\there"`, `"bad\xffbyte"`} {
		if !strings.Contains(out, quoted) {
			t.Errorf("the table does not show %s:\n%s", quoted, out)
		}
	}
}

// TestAuditTailFiltered: tail takes the filters of query, for the events
// it shows first and for those it follows.
func TestAuditTailFiltered(t *testing.T) {
	l := filteredServer(t)
	out, stderr, err := runLarder(t, "", "audit", "tail", "-n", "5", "--data", l.data, "--json", "--kind", "download,refused", "--remote", "127.0.0.2")
	if err != nil {
		t.Fatalf("audit tail: %v\n%s", err, stderr)
	}
	if got, want := summary(jsonEvents(t, out)), "download:/shared/g.txt:1 refused:/shared/missing.txt:5 refused:/shared/../secret.txt:5"; got != want {
		t.Errorf("audit tail --kind download,refused --remote 127.0.0.2:\n got %s\nwant %s", got, want)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout := &lockedBuffer{}
	env := &Env{Stdin: strings.NewReader(""), Stdout: stdout, Stderr: &lockedBuffer{}, Getenv: func(string) string { return "" }}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, env, []string{"audit", "tail", "-n", "0", "-f", "--interval", "20ms", "--data", l.data, "--json", "--path", "/shared/g.txt"})
	}()
	sig := larder.NewSignature("pw", course.CourseSalt)
	delivered := func() bool {
		st := l.main.audit.log.Stats()
		return l.main.srv.Conns() == 0 && st.Delivered == st.Taken
	}
	// The tail starts at the trail's end as it is when it first looks,
	// which a loaded machine may delay: downloads until it shows one, then
	// a mark from which every event must show.
	waitUntil(t, "tail -f following", func() bool {
		rawExchange(t, l.addr(), "alice", sig, "g.txt")
		waitUntil(t, "every event delivered", delivered)
		time.Sleep(50 * time.Millisecond)
		return strings.Contains(stdout.String(), `"download"`)
	})
	waitUntil(t, "the tail caught up", func() bool {
		n := len(stdout.String())
		time.Sleep(100 * time.Millisecond)
		return len(stdout.String()) == n
	})
	mark := len(stdout.String())
	for _, p := range []string{"f.txt", "g.txt", "missing.txt", "/g.txt"} {
		rawExchange(t, l.addr(), "alice", sig, p)
		time.Sleep(30 * time.Millisecond) // across several looks
	}
	waitUntil(t, "every event delivered", delivered)
	waitUntil(t, "tail shows the second download of g.txt", func() bool { return strings.Count(stdout.String()[mark:], `"download"`) >= 2 })
	time.Sleep(100 * time.Millisecond) // and nothing more
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("audit tail -f, interrupted: %v", err)
	}
	if got, want := summary(jsonEvents(t, stdout.String()[mark:])), "login:/shared/g.txt:0 download:/shared/g.txt:1 login:/shared/g.txt:0 download:/shared/g.txt:1"; got != want {
		t.Errorf("audit tail -f --path /shared/g.txt:\n got %s\nwant %s", got, want)
	}
}
