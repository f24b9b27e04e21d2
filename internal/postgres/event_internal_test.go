package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/postgres/pgtest"
)

// TestStoreEventsWaitsForWriterInFlight holds the events lock in a
// transaction that has drawn a Seq but not committed, as a slower writer
// would: StoreEvents must wait for it, so that its own event commits with
// the larger Seq after it. Otherwise a reader following by AfterSeq could
// read past the smaller Seq before it was committed, and never see it.
func TestStoreEventsWaitsForWriterInFlight(t *testing.T) {
	db := openTest(t, pgtest.URL(t))
	s := NewEventStore(db)
	ctx := context.Background()
	now := time.Now()
	first := larder.Event{ID: larder.NewEventID(now), Time: now, Kind: larder.EventLogin}
	second := larder.Event{ID: larder.NewEventID(now), Time: now, Kind: larder.EventLogin}

	tx, err := db.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, eventsLock); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO events (id, time, kind, server, username, remote, path, bytes, status, duration_ns, reason)
		VALUES ($1, $2, $3, '', '', '', '', 0, 0, 0, '')`, first.ID, first.Time, string(first.Kind)); err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() { done <- s.StoreEvents(ctx, []larder.Event{second}) }()
	waitForLockWait(t, db)
	select {
	case err := <-done:
		t.Fatalf("StoreEvents returned %v while another writer held the events lock, want it to wait", err)
	default:
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("StoreEvents after the other writer committed: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("StoreEvents still waiting 30s after the other writer committed")
	}
	events, err := s.Events(ctx, larder.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[0].ID != first.ID || events[1].ID != second.ID {
		t.Fatalf("Events: got %v, want the other writer's event, then StoreEvents'", events)
	}
}

// TestEventFilterMigration runs the migration that makes path and remote
// byte-ordered and indexed over a trail as an older version left it (the
// database's collation, no index): the filters then select by bytes, and
// the planner can serve them from the indexes.
func TestEventFilterMigration(t *testing.T) {
	db := openTest(t, pgtest.URL(t))
	ctx := context.Background()
	migration := migrations[10]
	if !strings.Contains(migration, "CREATE INDEX events_path") {
		t.Fatal("migration 11 is not the one of the path and remote indexes")
	}
	if _, err := db.pool.Exec(ctx, `DROP INDEX events_path, events_remote;
		ALTER TABLE events ALTER COLUMN path TYPE text COLLATE "default", ALTER COLUMN remote TYPE text COLLATE "default"`); err != nil {
		t.Fatal(err)
	}
	s := NewEventStore(db)
	now := time.Now()
	var batch []larder.Event
	for i, p := range []string{"/d1", "/d1/x", "/d1-x", "/d1.x", "/D1/x", "/d10"} {
		batch = append(batch, larder.Event{ID: larder.NewEventID(now), Time: now, Kind: larder.EventDownload,
			Path: p, Remote: fmt.Sprintf("192.0.2.%d:4000%d", 7+i%2, i)})
	}
	if err := s.StoreEvents(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if _, err := db.pool.Exec(ctx, migration); err != nil {
		t.Fatalf("the migration: %v", err)
	}
	for _, tc := range []struct {
		f    larder.EventFilter
		want string
	}{
		{larder.EventFilter{Path: "/d1"}, "/d1 /d1/x"},
		{larder.EventFilter{Remote: "192.0.2.7"}, "/d1 /d1-x /D1/x"},
	} {
		got, err := s.Events(ctx, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		var paths []string
		for _, e := range got {
			paths = append(paths, e.Path)
		}
		if strings.Join(paths, " ") != tc.want {
			t.Errorf("Events(%+v) after the migration: got %q, want %q", tc.f, paths, tc.want)
		}
	}

	// With sequential scans and plain index scans off, the plan shows
	// whether an index can select the rows at all: on six rows, reading
	// them all in the order of seq is cheaper.
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET enable_seqscan = off; SET enable_indexscan = off`); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(ctx, `RESET enable_seqscan; RESET enable_indexscan`)
	for _, tc := range []struct {
		f     larder.EventFilter
		index string
	}{
		{larder.EventFilter{Path: "/d1"}, "events_path"},
		{larder.EventFilter{Remote: "192.0.2.7"}, "events_remote"},
		{larder.EventFilter{Remote: "[2001:db8::1]:5000"}, "events_remote"},
	} {
		q, args, err := eventsQuery(tc.f)
		if err != nil {
			t.Fatal(err)
		}
		rows, _ := conn.Query(ctx, "EXPLAIN "+q, args...)
		plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if text := strings.Join(plan, "\n"); !strings.Contains(text, tc.index) {
			t.Errorf("the plan of Events(%+v) does not use %s:\n%s", tc.f, tc.index, text)
		}
	}
}
