package jetstream_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/jetstream"
	"github.com/larderfs/larder/internal/jetstream/natstest"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// connect returns a connection to url, made as the program makes it,
// closed when t ends.
func connect(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := jetstream.Connect(url, "larder-test")
	if err != nil {
		t.Fatalf("Connect(%s): %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// testStream is a stream of a test's own on the shared test server.
type testStream struct {
	url, name, subject string
}

func newTestStream(t testing.TB) testStream {
	t.Helper()
	url := natstest.URL(t)
	name, subject := natstest.Stream(t, url)
	return testStream{url, name, subject}
}

// sink returns a Sink with cfg on the stream, through a connection of its
// own.
func (ts testStream) sink(t testing.TB, cfg jetstream.SinkConfig) *jetstream.Sink {
	t.Helper()
	cfg.Stream, cfg.Subject = ts.name, ts.subject
	s, err := jetstream.NewSink(context.Background(), connect(t, ts.url), cfg)
	if err != nil {
		t.Fatalf("NewSink: %v", err)
	}
	return s
}

// testEvents returns n events of every kind in turn with every field set,
// a millisecond apart, times to the nanosecond.
func testEvents(n int) []larder.Event {
	base := time.Now().UTC().Add(-time.Hour)
	events := make([]larder.Event, n)
	for i := range events {
		t := base.Add(time.Duration(i)*time.Millisecond + time.Duration(i%1000))
		events[i] = larder.Event{
			ID: larder.NewEventID(t), Time: t, Kind: larder.EventKinds[i%len(larder.EventKinds)],
			Server: "127.0.0.1:23456", User: fmt.Sprint("user", i%5), Remote: fmt.Sprintf("192.0.2.1:%d", 40000+i),
			Path: fmt.Sprintf("f%d.txt", i), Bytes: int64(i) << 20, Status: 200 + i%3,
			Duration: time.Duration(i) * time.Microsecond, Reason: fmt.Sprint("r", i),
		}
		events[i].SHA256[0], events[i].SHA256[31] = byte(i), byte(i>>8)|1
	}
	return events
}

func store(t testing.TB, s interface {
	StoreEvents(context.Context, []larder.Event) error
}, events []larder.Event) {
	t.Helper()
	if err := s.StoreEvents(context.Background(), events); err != nil {
		t.Fatalf("StoreEvents(%d events): got %v, want nil", len(events), err)
	}
}

// withJS calls f with JetStream through a connection of its own, closed
// when f returns: tests poll with it.
func withJS(t testing.TB, url string, f func(ctx context.Context, js natsjs.JetStream)) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f(ctx, js)
}

// stream returns the stream's information.
func stream(t testing.TB, url, name string) (info *natsjs.StreamInfo) {
	t.Helper()
	withJS(t, url, func(ctx context.Context, js natsjs.JetStream) {
		s, err := js.Stream(ctx, name)
		if err == nil {
			info, err = s.Info(ctx)
		}
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
	})
	return info
}

// streamMessages returns every message the stream holds, in order.
func streamMessages(t testing.TB, url, name string) (msgs []*natsjs.RawStreamMsg) {
	t.Helper()
	info := stream(t, url, name)
	withJS(t, url, func(ctx context.Context, js natsjs.JetStream) {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
			m, err := s.GetMsg(ctx, seq)
			if err != nil {
				t.Fatalf("stream %s, message %d: %v", name, seq, err)
			}
			msgs = append(msgs, m)
		}
	})
	return msgs
}

// checkStreamHolds checks that the stream holds want, once each, in order.
func checkStreamHolds(t *testing.T, url, name string, want []larder.Event) {
	t.Helper()
	checkStream(t, url, name, want, true)
}

// checkStreamHoldsSet checks that the stream holds want, once each, in any
// order: across an outage, the order in which events first arrived.
func checkStreamHoldsSet(t *testing.T, url, name string, want []larder.Event) {
	t.Helper()
	checkStream(t, url, name, want, false)
}

func checkStream(t *testing.T, url, name string, want []larder.Event, ordered bool) {
	t.Helper()
	msgs := streamMessages(t, url, name)
	if len(msgs) != len(want) {
		t.Fatalf("stream %s holds %d messages, want %d", name, len(msgs), len(want))
	}
	byID := map[larder.EventID]larder.Event{}
	for _, e := range want {
		byID[e.ID] = e
	}
	seen := map[larder.EventID]bool{}
	for i, m := range msgs {
		var got larder.Event
		if err := got.UnmarshalJSON(m.Data); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		w := want[i]
		if !ordered {
			w = byID[got.ID]
			if seen[got.ID] {
				t.Errorf("message %d: event %s again", i, got.ID)
			}
			seen[got.ID] = true
		}
		if !got.Time.Equal(w.Time) {
			t.Errorf("message %d: Time %v, want %v", i, got.Time, w.Time)
		}
		got.Time = w.Time
		if got != w {
			t.Errorf("message %d: got %+v, want %+v", i, got, w)
		}
		if id := m.Header.Get(natsjs.MsgIDHeader); id != w.ID.String() {
			t.Errorf("message %d: Nats-Msg-Id %q, want %q", i, id, w.ID)
		}
	}
}

func TestSinkPublishes(t *testing.T) {
	t.Parallel()
	ts := newTestStream(t)
	s := ts.sink(t, jetstream.SinkConfig{})
	events := testEvents(100)
	store(t, s, events)
	checkStreamHolds(t, ts.url, ts.name, events)
	for i, m := range streamMessages(t, ts.url, ts.name) {
		if want := ts.subject + "." + string(events[i].Kind); m.Subject != want {
			t.Errorf("message %d: subject %q, want %q", i, m.Subject, want)
		}
	}
	cfg := stream(t, ts.url, ts.name).Config
	if cfg.Duplicates != jetstream.DefaultDuplicateWindow || cfg.Retention != natsjs.WorkQueuePolicy ||
		cfg.Storage != natsjs.FileStorage || cfg.Discard != natsjs.DiscardNew || !slices.Equal(cfg.Subjects, []string{ts.subject + ".>"}) {
		t.Errorf("stream config: got duplicates %v, retention %v, storage %v, discard %v, subjects %q; "+
			"want %v, work queue, file, new, [%s.>]", cfg.Duplicates, cfg.Retention, cfg.Storage, cfg.Discard, cfg.Subjects,
			jetstream.DefaultDuplicateWindow, ts.subject)
	}
}

// TestSinkDeduplicates delivers batches again, overlapping, and with an
// event twice within one: the stream takes each event once, in the order
// of its first arrival.
func TestSinkDeduplicates(t *testing.T) {
	t.Parallel()
	ts := newTestStream(t)
	s := ts.sink(t, jetstream.SinkConfig{})
	all := testEvents(120)
	store(t, s, all[:50])
	store(t, s, all[:50])
	store(t, s, all[25:100])
	store(t, s, slices.Concat(all[100:110], all[100:110], all[105:120], all[:3]))
	// Through another Sink, as another server's spool would.
	store(t, ts.sink(t, jetstream.SinkConfig{}), all)
	checkStreamHolds(t, ts.url, ts.name, all)
}

// TestSinkUpdatesStream: a Sink brings an existing stream to its settings.
func TestSinkUpdatesStream(t *testing.T) {
	t.Parallel()
	ts := newTestStream(t)
	ts.sink(t, jetstream.SinkConfig{})
	ts.sink(t, jetstream.SinkConfig{DuplicateWindow: 2 * time.Hour, MaxBytes: 1 << 30})
	if cfg := stream(t, ts.url, ts.name).Config; cfg.Duplicates != 2*time.Hour || cfg.MaxBytes != 1<<30 {
		t.Errorf("stream config after the second Sink: duplicates %v, max bytes %d; want 2h, %d", cfg.Duplicates, cfg.MaxBytes, 1<<30)
	}
}

// TestSinkOddKinds: a kind that is no good as a subject token still goes
// out, on a subject NATS takes, with the kind as it is in the JSON.
func TestSinkOddKinds(t *testing.T) {
	t.Parallel()
	ts := newTestStream(t)
	s := ts.sink(t, jetstream.SinkConfig{})
	kinds := []string{"", "a..b", ".lead", "trail.", "has space", "*", ">", "x.>", "tab\tnew\nline", "日本"}
	events := testEvents(len(kinds))
	for i, k := range kinds {
		events[i].Kind = larder.EventKind(k)
	}
	store(t, s, events)
	checkStreamHolds(t, ts.url, ts.name, events)
}

func TestSinkRefusesEventWithoutID(t *testing.T) {
	t.Parallel()
	ts := newTestStream(t)
	s := ts.sink(t, jetstream.SinkConfig{})
	events := testEvents(3)
	events[2].ID = larder.EventID{}
	if err := s.StoreEvents(context.Background(), events); larder.ErrorCode(err) != larder.EINVALID {
		t.Errorf("StoreEvents with an event without ID: got %v, want code %q", err, larder.EINVALID)
	}
}

func TestNewSinkRefusesBadNames(t *testing.T) {
	nc := connect(t, natstest.URL(t))
	for _, cfg := range []jetstream.SinkConfig{
		{Stream: "a.b"}, {Stream: "a b"}, {Stream: "a*"},
		{Subject: "a..b"}, {Subject: "a.>"}, {Subject: "*.x"}, {Subject: "a b"}, {Subject: ".a"},
		{DuplicateWindow: -time.Second}, {MaxInFlight: -1},
	} {
		if _, err := jetstream.NewSink(context.Background(), nc, cfg); err == nil {
			t.Errorf("NewSink(%+v): got nil, want an error", cfg)
		}
	}
}

// TestSinkNATSDown stops a private nats-server under a Sink: StoreEvents
// fails, promptly, rather than saying events are stored that are not; once
// the server is back, the batch delivered again is stored, and what had
// made it before the outage is not stored twice.
func TestSinkNATSDown(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	s, err := jetstream.NewSink(context.Background(), connect(t, srv.URL()), jetstream.SinkConfig{AckTimeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("NewSink: %v", err)
	}
	events := testEvents(300)
	store(t, s, events[:100])

	srv.Stop()
	start := time.Now()
	if err := s.StoreEvents(context.Background(), events[100:200]); err == nil {
		t.Fatalf("StoreEvents with nats-server stopped: got nil, want an error")
	} else {
		t.Logf("StoreEvents with nats-server stopped: %v (after %v)", err, time.Since(start).Round(time.Millisecond))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("StoreEvents with nats-server stopped took %v, want it to fail within the ack timeout", d)
	}

	srv.Restart()
	// As the spool does: deliver everything not confirmed, again, until
	// it is taken.
	deliverUntilTaken(t, s, events[:200])
	store(t, s, events[200:])
	checkStreamHoldsSet(t, srv.URL(), jetstream.DefaultStream, events)
}

// deliverUntilTaken calls StoreEvents until it succeeds, for up to 30s.
func deliverUntilTaken(t *testing.T, s *jetstream.Sink, events []larder.Event) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := s.StoreEvents(context.Background(), events)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("StoreEvents after nats-server came back: still %v after 30s", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSinkStartsWithNATSDown: a server starts while NATS is down; its Sink
// fails until NATS comes, then creates the stream and publishes.
func TestSinkStartsWithNATSDown(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	srv.Stop()
	nc := connect(t, srv.URL())
	if nc.IsConnected() {
		t.Fatal("connected to a stopped nats-server")
	}
	s, err := jetstream.NewSink(context.Background(), nc, jetstream.SinkConfig{})
	if err != nil {
		t.Fatalf("NewSink with NATS down: got %v, want nil", err)
	}
	events := testEvents(20)
	if err := s.StoreEvents(context.Background(), events); err == nil {
		t.Fatal("StoreEvents with NATS down: got nil, want an error")
	}
	srv.Restart()
	deliverUntilTaken(t, s, events)
	checkStreamHolds(t, srv.URL(), jetstream.DefaultStream, events)
}

// BenchmarkSinkStoreEvents measures StoreEvents with batches of 1000 new
// events, acknowledged by the shared test server, and reports events/s.
func BenchmarkSinkStoreEvents(b *testing.B) {
	ts := newTestStream(b)
	s := ts.sink(b, jetstream.SinkConfig{})
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		store(b, s, testEvents(1000))
		n += 1000
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
