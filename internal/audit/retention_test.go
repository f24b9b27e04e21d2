package audit

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/sqlite"
)

// TestRetentionPrunesOldEvents: with a retention, a Log deletes the events
// older than it from a SQL sink, in batches, and keeps the others; without
// one it deletes nothing.
func TestRetentionPrunesOldEvents(t *testing.T) {
	ctx := context.Background()
	for _, retention := range []time.Duration{0, 90 * 24 * time.Hour} {
		db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "larder.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		store := sqlite.NewEventStore(db)
		now := time.Now()
		var evs []larder.Event
		for i := range 25 {
			at := now.Add(-100 * 24 * time.Hour).Add(time.Duration(i) * time.Second) // past the retention
			if i >= 18 {
				at = now.Add(-time.Duration(i) * time.Hour) // within it
			}
			evs = append(evs, larder.Event{ID: larder.NewEventID(at), Time: at, Kind: larder.EventConnClose, Remote: "192.0.2.1:4000"})
		}
		if err := store.StoreEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
		l, err := Open(Config{Dir: t.TempDir(), Sink: store, Retention: retention, PruneBatch: 4, PruneInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		want := 25
		if retention > 0 {
			want = 7
		}
		deadline := time.Now().Add(10 * time.Second)
		var left []larder.Event
		for {
			if left, err = store.Events(ctx, larder.EventFilter{Limit: 100}); err != nil {
				t.Fatal(err)
			}
			if len(left) <= want || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if retention == 0 {
			time.Sleep(200 * time.Millisecond) // time enough to delete, were it to
			left, _ = store.Events(ctx, larder.EventFilter{Limit: 100})
		}
		if err := l.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if len(left) != want {
			t.Fatalf("retention %v: %d events left, want %d", retention, len(left), want)
		}
		for _, e := range left {
			if retention > 0 && now.Sub(e.Time) > retention {
				t.Errorf("retention %v: an event of %v is left", retention, e.Time)
			}
		}
		if got := l.Stats().Pruned; got != uint64(25-want) {
			t.Errorf("retention %v: Stats().Pruned = %d, want %d", retention, got, 25-want)
		}
	}
}
