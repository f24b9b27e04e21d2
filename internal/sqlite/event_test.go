package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/sqlite"
	"github.com/larderfs/larder/internal/storetest"
)

func newEventStore(t testing.TB) (*sqlite.EventStore, *sqlite.DB) {
	t.Helper()
	db := open(t, filepath.Join(t.TempDir(), "larder.db"))
	t.Cleanup(func() { db.Close() })
	return sqlite.NewEventStore(db), db
}

// TestEventConformance runs the event-store suite, on a new database file
// for each test. SQLite keeps times to the nanosecond.
func TestEventConformance(t *testing.T) {
	storetest.RunEvents(t, time.Nanosecond, func(t *testing.T) larder.EventStore {
		s, _ := newEventStore(t)
		return s
	})
}

// TestEventsBesideAccounts: the trail lives in the accounts' file, and the
// two stores share its one writer without getting in each other's way.
func TestEventsBesideAccounts(t *testing.T) {
	events, db := newEventStore(t)
	users := sqlite.NewUserStore(db)
	ctx := context.Background()
	done := make(chan error, 1)
	go func() {
		for i := range 20 {
			t := time.Now()
			batch := make([]larder.Event, 100)
			for j := range batch {
				batch[j] = larder.Event{ID: larder.NewEventID(t), Time: t, Kind: larder.EventLogin, User: "u"}
			}
			if err := events.StoreEvents(ctx, batch); err != nil {
				done <- err
				return
			}
			_ = i
		}
		done <- nil
	}()
	for i := range 20 {
		if err := users.CreateUser(ctx, &larder.User{Name: "user" + string(rune('a'+i)), Verifier: "v"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, err := events.Events(ctx, larder.EventFilter{Limit: 5000})
	if err != nil || len(got) != 2000 {
		t.Fatalf("Events: got %d events, %v; want 2000, nil", len(got), err)
	}
}

func BenchmarkStoreEvents(b *testing.B) {
	s, _ := newEventStore(b)
	storetest.BenchmarkStoreEvents(b, s)
}

// TestEventsKeepBytes: SQLite's text holds any bytes, so text that is not
// UTF-8, or holds a NUL, reads back exactly (the suite allows a store to
// replace such bytes).
func TestEventsKeepBytes(t *testing.T) {
	s, _ := newEventStore(t)
	ctx := context.Background()
	odd := "a\x00b\xff\xfec"
	now := time.Now()
	e := larder.Event{ID: larder.NewEventID(now), Time: now, Kind: larder.EventKind(odd), User: odd, Path: odd, Reason: odd}
	if err := s.StoreEvents(ctx, []larder.Event{e}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Events(ctx, larder.EventFilter{User: odd, Kinds: []larder.EventKind{larder.EventKind(odd)}})
	if err != nil || len(got) != 1 {
		t.Fatalf("Events: got %d events, %v; want 1, nil", len(got), err)
	}
	if g := got[0]; g.User != odd || g.Path != odd || g.Reason != odd || string(g.Kind) != odd {
		t.Errorf("odd text read back as User %q, Path %q, Reason %q, Kind %q; want %q", g.User, g.Path, g.Reason, g.Kind, odd)
	}
}
