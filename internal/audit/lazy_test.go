package audit

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/sqlite"
)

// TestLazySink: a sink down at start is opened at a later delivery, once,
// and closed once; deliveries before that fail, for the Log to retry.
func TestLazySink(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	down := errors.New("sink down")
	var opens, closes int
	up := false
	l := NewLazySink(func(ctx context.Context) (Sink, func(), error) {
		opens++
		if !up {
			return nil, nil, down
		}
		db, err := sqlite.Open(ctx, path)
		if err != nil {
			return nil, nil, err
		}
		return sqlite.NewEventStore(db), func() { closes++; db.Close() }, nil
	})
	l.Close() // never opened: nothing to close
	if closes != 0 {
		t.Fatalf("Close of a sink never opened closed it %d times", closes)
	}

	old := time.Now().Add(-48 * time.Hour)
	evs := []larder.Event{
		{ID: larder.NewEventID(old), Time: old, Kind: larder.EventRegister, User: "alice"},
		{ID: larder.NewEventID(time.Now()), Time: time.Now(), Kind: larder.EventLogin, User: "alice"},
	}
	if err := l.Open(ctx); !errors.Is(err, down) {
		t.Fatalf("Open with the sink down: %v, want %v", err, down)
	}
	if err := l.StoreEvents(ctx, evs); !errors.Is(err, down) {
		t.Fatalf("StoreEvents with the sink down: %v, want %v", err, down)
	}
	if opens != 2 {
		t.Fatalf("%d attempts to open, want one per call while down (2)", opens)
	}

	up = true
	if err := l.StoreEvents(ctx, evs); err != nil {
		t.Fatalf("StoreEvents once the sink is up: %v", err)
	}
	if n, err := l.PruneEvents(ctx, time.Now().Add(-24*time.Hour), 10); err != nil || n != 1 {
		t.Fatalf("PruneEvents: %d, %v; want the one event older than a day", n, err)
	}
	if opens != 3 {
		t.Fatalf("%d attempts to open, want the sink opened once it was up, then kept (3)", opens)
	}
	l.Close()
	l.Close()
	if closes != 1 {
		t.Fatalf("the sink was closed %d times, want once", closes)
	}

	// What was stored is there, in the sink itself.
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := sqlite.NewEventStore(db).Events(ctx, larder.EventFilter{})
	if err != nil || len(got) != 1 || got[0].ID != evs[1].ID {
		t.Fatalf("the sink holds %+v (%v), want the login only", got, err)
	}
}

// TestLazySinkPruneWithoutPruner: a sink that cannot prune prunes nothing,
// and says no error.
func TestLazySinkPruneWithoutPruner(t *testing.T) {
	var out bytes.Buffer
	l := NewLazySink(func(context.Context) (Sink, func(), error) { return NewJSONLines(&out, nil), func() {}, nil })
	ev := larder.Event{ID: larder.NewEventID(time.Now()), Time: time.Now(), Kind: larder.EventLogin, User: "bob"}
	if err := l.StoreEvents(context.Background(), []larder.Event{ev}); err != nil {
		t.Fatal(err)
	}
	if n, err := l.PruneEvents(context.Background(), time.Now(), 10); n != 0 || err != nil {
		t.Fatalf("PruneEvents on JSON lines: %d, %v; want 0, nil", n, err)
	}
	if !strings.Contains(out.String(), `"bob"`) {
		t.Fatalf("the JSON lines hold %q, want bob's login", out.String())
	}
}
