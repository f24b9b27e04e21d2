package jetstream_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/jetstream"
	"github.com/larderfs/larder/internal/jetstream/natstest"
	"github.com/larderfs/larder/internal/postgres"
	"github.com/larderfs/larder/internal/postgres/pgtest"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// pgStore returns an event store on a new PostgreSQL database, and its URL.
func pgStore(t *testing.T) (*postgres.EventStore, string) {
	t.Helper()
	url := pgtest.URL(t)
	db, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	t.Cleanup(db.Close)
	return postgres.NewEventStore(db), url
}

// testLogger logs to the test's output, so that a failing test shows what
// the Writer said.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", p)
	return len(p), nil
}

// running is a Writer running in a goroutine.
type running struct {
	w      *jetstream.Writer
	cancel context.CancelFunc
	done   chan error
}

// startWriter runs a Writer with cfg on the stream, through nc, into store,
// until ctx ends or it is stopped. t's cleanup stops it if the test has
// not.
func startWriter(t *testing.T, ctx context.Context, ts testStream, nc *nats.Conn, store larder.EventStore, cfg jetstream.WriterConfig) *running {
	t.Helper()
	cfg.Stream, cfg.Subject, cfg.Logger = ts.name, ts.subject, testLogger(t)
	if cfg.MaxWait == 0 {
		cfg.MaxWait = 200 * time.Millisecond
	}
	w, err := jetstream.NewWriter(nc, store, cfg)
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &running{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- w.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the Writer's context and checks that Run returns nil soon.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("Writer.Run: got %v, want nil", err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Writer.Run still running 10s after its context ended")
	}
}

// waitFor polls cond until it holds, for up to 30s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitWithin(t, 30*time.Second, what, cond)
}

// waitWithin is waitFor with a bound of d.
func waitWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after %v for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stored returns every event of the store.
func stored(t *testing.T, s larder.EventStore) []larder.Event {
	t.Helper()
	events, err := s.Events(context.Background(), larder.EventFilter{Limit: larder.MaxEventLimit})
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	return events
}

// checkStoredOnce checks that the store holds want, each once, with its
// fields (times to the microsecond), in any order.
func checkStoredOnce(t *testing.T, s larder.EventStore, want []larder.Event) {
	t.Helper()
	got := stored(t, s)
	if len(got) != len(want) {
		t.Fatalf("the store holds %d events, want %d", len(got), len(want))
	}
	byID := map[larder.EventID]larder.Event{}
	for _, e := range got {
		if _, dup := byID[e.ID]; dup {
			t.Fatalf("event %s stored twice", e.ID)
		}
		byID[e.ID] = e
	}
	for i, w := range want {
		g, ok := byID[w.ID]
		if !ok {
			t.Fatalf("event %d (%s) not stored", i, w.ID)
		}
		if !g.Time.Equal(w.Time.Truncate(time.Microsecond)) {
			t.Errorf("event %d: Time %v, want %v", i, g.Time, w.Time.Truncate(time.Microsecond))
		}
		g.Time, g.Seq = w.Time, 0
		if g != w {
			t.Errorf("event %d: got %+v, want %+v", i, g, w)
		}
	}
}

// consumer returns the Writer's consumer's information.
func consumer(t *testing.T, ts testStream) (info *natsjs.ConsumerInfo) {
	t.Helper()
	withJS(t, ts.url, func(ctx context.Context, js natsjs.JetStream) {
		c, err := js.Consumer(ctx, ts.name, jetstream.DefaultDurable)
		if err == nil {
			info, err = c.Info(ctx)
		}
		if err != nil {
			t.Fatalf("consumer: %v", err)
		}
	})
	return info
}

// TestWriterEndToEnd: events published by two servers' Sinks, some twice,
// reach PostgreSQL once each, and the stream is left empty.
func TestWriterEndToEnd(t *testing.T) {
	t.Parallel()
	ts := newTestStream(t)
	pg, _ := pgStore(t)
	a, b := ts.sink(t, jetstream.SinkConfig{}), ts.sink(t, jetstream.SinkConfig{})
	events := testEvents(2000)
	store(t, a, events[:800])
	r := startWriter(t, context.Background(), ts, connect(t, ts.url), pg, jetstream.WriterConfig{Batch: 300})
	store(t, b, events[600:1500]) // overlapping
	store(t, a, events[1400:])    // overlapping
	store(t, b, events[1990:])    // again
	waitFor(t, "2000 events in PostgreSQL", func() bool { return len(stored(t, pg)) >= 2000 })
	waitFor(t, "an empty stream", func() bool { return stream(t, ts.url, ts.name).State.Msgs == 0 })
	r.stop(t)
	checkStoredOnce(t, pg, events)
	st := r.w.Stats()
	if st.Moved != 2000 || st.Batches < 7 || st.Retries != 0 || st.Rejected != 0 {
		t.Errorf("Stats: got %+v, want 2000 moved in 7 batches or more, no retries, none rejected", st)
	}
}

// crashingStore stores the first batch into the real store, then kills
// the Writer before it can acknowledge: it closes the Writer's connection
// to NATS and ends its context, as a crash would.
type crashingStore struct {
	larder.EventStore
	nc      *nats.Conn
	cancel  context.CancelFunc
	crashed atomic.Int64 // events stored before the crash
}

func (s *crashingStore) StoreEvents(ctx context.Context, events []larder.Event) error {
	if err := s.EventStore.StoreEvents(ctx, events); err != nil {
		return err
	}
	if s.crashed.CompareAndSwap(0, int64(len(events))) {
		s.nc.Close()
		s.cancel()
		return errors.New("crashed after the commit")
	}
	return nil
}

// TestWriterCrashBetweenStoreAndAck kills a Writer between the commit of a
// batch and its acknowledgement, then starts another: the stream delivers
// the batch again, and PostgreSQL holds each event once.
func TestWriterCrashBetweenStoreAndAck(t *testing.T) {
	t.Parallel()
	ts := newTestStream(t)
	pg, _ := pgStore(t)
	events := testEvents(300)
	store(t, ts.sink(t, jetstream.SinkConfig{}), events)

	nc1, err := jetstream.Connect(ts.url, "larder-test-crash")
	if err != nil {
		t.Fatal(err)
	}
	defer nc1.Close()
	ctx, crash := context.WithCancel(context.Background())
	defer crash()
	crashing := &crashingStore{EventStore: pg, nc: nc1, cancel: crash}
	cfg := jetstream.WriterConfig{Batch: 100, AckWait: 2 * time.Second}
	r1 := startWriter(t, ctx, ts, nc1, crashing, cfg)
	select {
	case err := <-r1.done:
		close(r1.done)
		if err != nil {
			t.Fatalf("Run of the crashing Writer: got %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the Writer did not crash within 30s")
	}
	n := crashing.crashed.Load()
	if got := len(stored(t, pg)); int64(got) != n || n == 0 {
		t.Fatalf("after the crash the store holds %d events, want the %d of the crashed batch", got, n)
	}
	if got := stream(t, ts.url, ts.name).State.Msgs; got != 300 {
		t.Fatalf("after the crash the stream holds %d messages, want all 300: none was acknowledged", got)
	}

	r2 := startWriter(t, context.Background(), ts, connect(t, ts.url), pg, cfg)
	waitFor(t, "an empty stream", func() bool { return stream(t, ts.url, ts.name).State.Msgs == 0 })
	r2.stop(t)
	checkStoredOnce(t, pg, events)
	if st := r2.w.Stats(); st.Moved != 300 || st.Redelivered < n {
		t.Errorf("Stats of the second Writer: got %+v, want 300 moved, %d or more redelivered", st, n)
	}
}

// TestWriterWaitsForPostgres refuses the Writer's connections to its
// database for longer than AckWait: the Writer keeps its batch without
// acknowledging anything, the server does not hand the batch out again
// meanwhile, and once the database is back every event is stored once.
func TestWriterWaitsForPostgres(t *testing.T) {
	t.Parallel()
	ts := newTestStream(t)
	pg, url := pgStore(t)
	events := testEvents(50)
	store(t, ts.sink(t, jetstream.SinkConfig{}), events)

	pgtest.SetAllowConnections(t, url, false)
	r := startWriter(t, context.Background(), ts, connect(t, ts.url), pg, jetstream.WriterConfig{
		AckWait: 2 * time.Second, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
	})
	waitFor(t, "a few retries", func() bool { return r.w.Stats().Retries >= 3 })
	time.Sleep(3 * time.Second) // longer than AckWait
	c := consumer(t, ts)
	if c.NumAckPending != 50 || c.NumRedelivered != 0 || c.Delivered.Consumer != 50 {
		t.Errorf("consumer while PostgreSQL is down: %d pending, %d redelivered, %d delivered; want 50, 0, 50",
			c.NumAckPending, c.NumRedelivered, c.Delivered.Consumer)
	}
	if got := stream(t, ts.url, ts.name).State.Msgs; got != 50 {
		t.Errorf("the stream holds %d messages while PostgreSQL is down, want 50", got)
	}

	pgtest.SetAllowConnections(t, url, true)
	waitFor(t, "an empty stream", func() bool { return stream(t, ts.url, ts.name).State.Msgs == 0 })
	r.stop(t)
	checkStoredOnce(t, pg, events)
	if st := r.w.Stats(); st.Moved != 50 || st.Batches != 1 {
		t.Errorf("Stats: got %+v, want 50 moved in 1 batch", st)
	}
}

// TestWriterRejectsNonEvents: a message that holds no event is dropped,
// with an error logged, and does not hold up the events around it.
func TestWriterRejectsNonEvents(t *testing.T) {
	t.Parallel()
	ts := newTestStream(t)
	pg, _ := pgStore(t)
	events := testEvents(10)
	s := ts.sink(t, jetstream.SinkConfig{})
	store(t, s, events[:5])
	js, err := natsjs.New(connect(t, ts.url))
	if err != nil {
		t.Fatal(err)
	}
	for _, data := range []string{"not json", `{"id":"00000000-0000-0000-0000-000000000000","time":"2026-11-22T18:00:00Z","kind":"login"}`, `{"id":"x"}`} {
		if _, err := js.Publish(context.Background(), ts.subject+".login", []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	store(t, s, events[5:])
	r := startWriter(t, context.Background(), ts, connect(t, ts.url), pg, jetstream.WriterConfig{})
	waitFor(t, "an empty stream", func() bool { return stream(t, ts.url, ts.name).State.Msgs == 0 })
	r.stop(t)
	checkStoredOnce(t, pg, events)
	if st := r.w.Stats(); st.Moved != 10 || st.Rejected != 3 {
		t.Errorf("Stats: got %+v, want 10 moved, 3 rejected", st)
	}
}

// TestWriterCreatesStream: a Writer started before any server has made the
// stream makes it, and moves what the servers publish later.
func TestWriterCreatesStream(t *testing.T) {
	t.Parallel()
	ts := newTestStream(t)
	pg, _ := pgStore(t)
	r := startWriter(t, context.Background(), ts, connect(t, ts.url), pg, jetstream.WriterConfig{})
	waitFor(t, "the consumer", func() bool { return consumerExists(t, ts) })
	events := testEvents(20)
	store(t, ts.sink(t, jetstream.SinkConfig{}), events)
	waitFor(t, "20 events in PostgreSQL", func() bool { return len(stored(t, pg)) == 20 })
	r.stop(t)
	checkStoredOnce(t, pg, events)
}

func consumerExists(t *testing.T, ts testStream) (exists bool) {
	withJS(t, ts.url, func(ctx context.Context, js natsjs.JetStream) {
		_, err := js.Consumer(ctx, ts.name, jetstream.DefaultDurable)
		exists = err == nil
	})
	return exists
}

// TestWriterNATSRestart restarts a private nats-server under a running
// Writer: it carries on once the server is back.
func TestWriterNATSRestart(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	ts := testStream{url: srv.URL(), name: jetstream.DefaultStream, subject: jetstream.DefaultSubject}
	pg, _ := pgStore(t)
	events := testEvents(100)
	s := ts.sink(t, jetstream.SinkConfig{})
	r := startWriter(t, context.Background(), ts, connect(t, srv.URL()), pg, jetstream.WriterConfig{MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond})
	store(t, s, events[:50])
	waitFor(t, "50 events in PostgreSQL", func() bool { return len(stored(t, pg)) == 50 })

	srv.Stop()
	time.Sleep(500 * time.Millisecond)
	srv.Restart()
	deliverUntilTaken(t, s, events[50:])
	waitFor(t, "100 events in PostgreSQL", func() bool { return len(stored(t, pg)) == 100 })
	r.stop(t)
	checkStoredOnce(t, pg, events)
}

// TestWritersShareConsumer runs three Writers on one consumer: together
// they store every event once.
func TestWritersShareConsumer(t *testing.T) {
	t.Parallel()
	ts := newTestStream(t)
	pg, _ := pgStore(t)
	var rs []*running
	for range 3 {
		rs = append(rs, startWriter(t, context.Background(), ts, connect(t, ts.url), pg, jetstream.WriterConfig{Batch: 50}))
	}
	events := testEvents(1500)
	var wg sync.WaitGroup
	for i := range 3 {
		s := ts.sink(t, jetstream.SinkConfig{})
		wg.Go(func() { store(t, s, events[i*500:(i+1)*500]) })
	}
	wg.Wait()
	// Three Writers pulling at once on a loaded machine: a message the
	// server sends to a pull whose client has just given up on it comes
	// back only after AckWait (writer.go, fetch), so the wait covers one.
	waitWithin(t, jetstream.DefaultAckWait+30*time.Second, "an empty stream", func() bool { return stream(t, ts.url, ts.name).State.Msgs == 0 })
	var moved int64
	for _, r := range rs {
		r.stop(t)
		moved += r.w.Stats().Moved
	}
	checkStoredOnce(t, pg, events)
	if moved != 1500 {
		t.Errorf("events moved by the three Writers: got %d, want 1500", moved)
	}
}
