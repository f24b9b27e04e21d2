package postgres

import (
	"context"
	"testing"
	"time"

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
