package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder"
)

// TestUpgradeKeysSpacesByID opens a database whose file records are keyed
// by the owner's name, as before the spaces were keyed by account id, and
// checks that the upgrade keys each by its account's id, drops those of
// names no account has (a deleted account's), and leaves the shared
// area's alone, even where a name looks like an id key.
func TestUpgradeKeysSpacesByID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "larder.db")
	ctx := context.Background()
	old, err := open(ctx, path, migrations[:5])
	if err != nil {
		t.Fatal(err)
	}
	now := formatTime(time.Now())
	ids := map[string]int64{}
	for _, name := range []string{"alice", "#1", "gone", "bob"} {
		res, err := old.write.ExecContext(ctx, `INSERT INTO users (name, verifier, created_at, updated_at) VALUES (?, 'v', ?, ?)`, name, now, now)
		if err != nil {
			t.Fatal(err)
		}
		ids[name], _ = res.LastInsertId()
	}
	// gone was deleted, as "admin user delete" did: only its row went.
	if _, err := old.write.ExecContext(ctx, `DELETE FROM users WHERE name = 'gone'`); err != nil {
		t.Fatal(err)
	}
	for _, space := range []string{"", "alice", "#1", "gone"} {
		for _, p := range []string{"f", "d/g"} {
			if _, err := old.write.ExecContext(ctx, `INSERT INTO files (space, path, size, modified, sha256) VALUES (?, ?, 10, 0, zeroblob(32))`, space, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	must(t, old.Close())

	db := openTest(t, path)
	defer db.Close()
	fs := NewFileStore(db)
	want := map[string]larder.Usage{
		"":                           {Bytes: 20, Files: 2},
		larder.SpaceOf(ids["alice"]): {Bytes: 20, Files: 2},
		larder.SpaceOf(ids["#1"]):    {Bytes: 20, Files: 2},
		larder.SpaceOf(ids["gone"]):  {},
		larder.SpaceOf(ids["bob"]):   {},
		"alice":                      {}, "#1x": {}, "gone": {},
	}
	for space, w := range want {
		if u, err := fs.SpaceUsage(ctx, space); err != nil || u != w {
			t.Errorf("SpaceUsage(%q) after the upgrade: got %+v, %v; want %+v", space, u, err, w)
		}
	}
	var n int
	if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM files`).Scan(&n); err != nil || n != 6 {
		t.Errorf("records after the upgrade: got %d, %v; want 6", n, err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestUpgradeEventTimes opens a database whose events hold their time as
// text, as before it was an integer, and checks that the upgrade keeps
// every event's time to the nanosecond (before 1970 too) and its seq, that
// the filters on time still select by it, and that a seq handed out
// before, to an event since pruned, is not handed out again.
func TestUpgradeEventTimes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "larder.db")
	ctx := context.Background()
	old, err := open(ctx, path, migrations[:12])
	if err != nil {
		t.Fatal(err)
	}
	times := []time.Time{
		time.Date(2026, 12, 7, 15, 4, 5, 123456789, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 500000000, time.UTC),
		time.Date(2026, 12, 7, 15, 4, 5, 123456790, time.UTC),
		time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC),
	}
	for i, tm := range times {
		id := larder.NewEventID(tm)
		if _, err := old.write.ExecContext(ctx, `INSERT INTO events (id, time, kind, server, username, remote, path, bytes, sha256, status, duration_ns, reason)
			VALUES (?, ?, 'login', 's', 'alice', 'r', 'p', ?, NULL, 0, 0, '')`, id[:], formatTime(tm), i); err != nil {
			t.Fatal(err)
		}
	}
	// The last event pruned: its seq, 4, must not come back.
	if _, err := old.write.ExecContext(ctx, `DELETE FROM events WHERE seq = 4`); err != nil {
		t.Fatal(err)
	}
	must(t, old.Close())

	db := openTest(t, path)
	defer db.Close()
	s := NewEventStore(db)
	got, err := s.Events(ctx, larder.EventFilter{})
	if err != nil || len(got) != 3 {
		t.Fatalf("Events after the upgrade: %d events, %v; want 3", len(got), err)
	}
	for i, e := range got {
		if e.Seq != int64(i+1) || !e.Time.Equal(times[i]) || e.Bytes != int64(i) {
			t.Errorf("event %d after the upgrade: seq %d, time %v, bytes %d; want %d, %v, %d", i, e.Seq, e.Time, e.Bytes, i+1, times[i], i)
		}
	}
	// Since and Until compare to the nanosecond.
	sel, err := s.Events(ctx, larder.EventFilter{Since: times[0], Until: times[2]})
	if err != nil || len(sel) != 1 || sel[0].Seq != 1 {
		t.Errorf("Events from %v until %v: %+v, %v; want only seq 1", times[0], times[2], sel, err)
	}
	now := time.Now()
	if err := s.StoreEvents(ctx, []larder.Event{{ID: larder.NewEventID(now), Time: now, Kind: larder.EventLogin}}); err != nil {
		t.Fatal(err)
	}
	all, err := s.Events(ctx, larder.EventFilter{Newest: true, Limit: 1})
	if err != nil || len(all) != 1 || all[0].Seq != 5 {
		t.Errorf("the event stored after the upgrade: %+v, %v; want seq 5 (4 was handed out before)", all, err)
	}
}

// TestEventTimesBeyondNanoseconds: a time that int64 nanoseconds cannot
// hold is stored as the nearest one they hold, not as whatever UnixNano
// gives for it.
func TestEventTimesBeyondNanoseconds(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "larder.db"))
	defer db.Close()
	s := NewEventStore(db)
	ctx := context.Background()
	early, late := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
	events := []larder.Event{
		{ID: larder.NewEventID(time.Now()), Time: early, Kind: larder.EventLogin},
		{ID: larder.NewEventID(time.Now()), Time: late, Kind: larder.EventLogin},
	}
	must(t, s.StoreEvents(ctx, events))
	got, err := s.Events(ctx, larder.EventFilter{})
	if err != nil || len(got) != 2 {
		t.Fatalf("Events: %d, %v; want 2", len(got), err)
	}
	if !got[0].Time.Equal(minEventTime) || !got[1].Time.Equal(maxEventTime) {
		t.Errorf("times read back: %v and %v; want %v and %v", got[0].Time, got[1].Time, minEventTime, maxEventTime)
	}
}

// TestUpgradeEventTimesRefusesOtherText: an event whose time is not the
// text larder writes stops the upgrade with an error that says how to find
// it, and the database is left as it was.
func TestUpgradeEventTimesRefusesOtherText(t *testing.T) {
	path := filepath.Join(t.TempDir(), "larder.db")
	ctx := context.Background()
	old, err := open(ctx, path, migrations[:12])
	if err != nil {
		t.Fatal(err)
	}
	for i, text := range []string{formatTime(time.Now()), "2026-12-07T15:04:05Z"} {
		id := larder.NewEventID(time.Now())
		if _, err := old.write.ExecContext(ctx, `INSERT INTO events (id, time, kind, server, username, remote, path, bytes, sha256, status, duration_ns, reason)
			VALUES (?, ?, 'login', '', '', '', '', ?, NULL, 0, 0, '')`, id[:], text, i); err != nil {
			t.Fatal(err)
		}
	}
	must(t, old.Close())

	if db, err := open(ctx, path, migrations); err == nil || !strings.Contains(err.Error(), "is not the text larder writes") {
		if db != nil {
			db.Close()
		}
		t.Fatalf("opening with the upgrade: %v; want an error that names the event's time", err)
	}
	old, err = open(ctx, path, migrations[:12])
	if err != nil {
		t.Fatalf("the database after the refused upgrade: %v", err)
	}
	defer old.Close()
	var n int
	if err := old.read.QueryRowContext(ctx, `SELECT count(*) FROM events`).Scan(&n); err != nil || n != 2 {
		t.Errorf("events after the refused upgrade: %d, %v; want 2", n, err)
	}
}

// TestUpgradeEventTimesBeyondNanoseconds: an event of the previous release
// whose time int64 nanoseconds cannot hold (that release stored any time
// as text) is upgraded to the nearest time they hold, as StoreEvents
// stores such a time now, rather than failing the upgrade with a hint
// whose query finds no such event.
func TestUpgradeEventTimesBeyondNanoseconds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "larder.db")
	ctx := context.Background()
	old, err := open(ctx, path, migrations[:12])
	if err != nil {
		t.Fatal(err)
	}
	times := []time.Time{
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		minEventTime.Add(-1),
		minEventTime,
		minEventTime.Add(1),
		maxEventTime.Add(-1),
		maxEventTime,
		maxEventTime.Add(1),
		time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
	}
	for i, tm := range times {
		id := larder.NewEventID(time.Now())
		if _, err := old.write.ExecContext(ctx, `INSERT INTO events (id, time, kind, server, username, remote, path, bytes, sha256, status, duration_ns, reason)
			VALUES (?, ?, 'login', 's', 'alice', 'r', 'p', ?, NULL, 0, 0, '')`, id[:], formatTime(tm), i); err != nil {
			t.Fatal(err)
		}
	}
	must(t, old.Close())

	db, err := open(ctx, path, migrations)
	if err != nil {
		t.Fatalf("the upgrade of events at the bounds of int64 nanoseconds and beyond: %v", err)
	}
	defer db.Close()
	got, err := NewEventStore(db).Events(ctx, larder.EventFilter{})
	if err != nil || len(got) != len(times) {
		t.Fatalf("Events after the upgrade: %d events, %v; want %d", len(got), err, len(times))
	}
	for i, e := range got {
		if want := time.Unix(0, eventTime(times[i])).UTC(); !e.Time.Equal(want) || e.Bytes != int64(i) {
			t.Errorf("event %d (stored as %s) after the upgrade: time %v, bytes %d; want %v, %d", i, formatTime(times[i]), e.Time, e.Bytes, want, i)
		}
	}
}
