package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/larderfs/larder"
)

// TestRoundTrip checks that every field of every kind survives the
// spool, in the order recorded: delivered live, and left in the spool by a
// Log without a sink, then delivered by the next.
func TestRoundTrip(t *testing.T) {
	var want []larder.Event
	for i := range 300 {
		k := larder.EventKinds[i%len(larder.EventKinds)]
		if i%50 == 49 {
			k = "feature.future"
		}
		want = append(want, fullEvent(k, i))
	}
	check := func(t *testing.T, sink *memSink) {
		t.Helper()
		got := sink.events()
		if len(got) != len(want) {
			t.Fatalf("got %d events, want %d", len(got), len(want))
		}
		for i := range want {
			if !sameEvent(got[i], want[i]) {
				t.Fatalf("event %d:\n got %+v\nwant %+v", i, got[i], want[i])
			}
		}
	}

	t.Run("live", func(t *testing.T) {
		sink := newMemSink()
		l := openTest(t, Config{Dir: t.TempDir(), Sink: sink, SegmentSize: 8 << 10}, hooks{})
		for _, e := range want {
			l.Record(context.Background(), e)
		}
		waitFor(t, "delivery", func() bool { return sink.len() == len(want) })
		check(t, sink)
		// Delivered bytes no longer count; the segment being written
		// still holds its header.
		waitFor(t, "the spool count to fall", func() bool { return l.Stats().SpoolBytes == headerSize })
	})

	t.Run("spooled", func(t *testing.T) {
		dir := t.TempDir()
		l := openTest(t, Config{Dir: dir, SegmentSize: 8 << 10}, hooks{})
		for _, e := range want {
			l.Record(context.Background(), e)
		}
		closeLog(t, l)
		if st := l.Stats(); st.Durable != uint64(len(want)) || st.Delivered != 0 {
			t.Fatalf("got %d durable and %d delivered, want %d and 0", st.Durable, st.Delivered, len(want))
		}
		sink := newMemSink()
		l2 := openTest(t, Config{Dir: dir, Sink: sink}, hooks{})
		waitFor(t, "delivery", func() bool { return sink.len() == len(want) })
		check(t, sink)
		closeLog(t, l2)
		assertEmptySpool(t, dir)
	})
}

// TestRecordFills checks the fields Record fills in.
func TestRecordFills(t *testing.T) {
	sink := newMemSink()
	l := openTest(t, Config{Dir: t.TempDir(), Sink: sink, Server: "srv1"}, hooks{})
	before := time.Now()
	l.Record(context.Background(), larder.Event{Kind: larder.EventLogin, User: "u"})
	l.Record(context.Background(), larder.Event{Kind: larder.EventLogin, User: "v", Server: "other"})
	waitFor(t, "delivery", func() bool { return sink.len() == 2 })
	got := sink.events()
	if got[0].ID.IsZero() || got[0].Time.Before(before.Truncate(time.Millisecond)) || got[0].Server != "srv1" {
		t.Errorf("got id %v, time %v, server %q; want an id, a time after %v, server srv1", got[0].ID, got[0].Time, got[0].Server, before)
	}
	if got[1].Server != "other" {
		t.Errorf("got server %q, want other (a Server set is kept)", got[1].Server)
	}
}

// TestSinkDownThenUp records with the sink down: Records return at once,
// the spool grows, nothing is delivered. Then the sink comes up, failing
// after it stored every third batch: every event arrives, exactly once.
func TestSinkDownThenUp(t *testing.T) {
	sink := newMemSink()
	sink.setDown(true)
	dir := t.TempDir()
	l := openTest(t, Config{Dir: dir, Sink: sink, SegmentSize: 64 << 10, DeliverBatch: 100, Full: Block}, hooks{})
	const producers, each = 8, 2500
	ids := make([][]larder.EventID, producers)
	var slowest time.Duration
	var mu sync.Mutex
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			var slow time.Duration
			for i := range each {
				e := larder.Event{ID: larder.NewEventID(time.Now()), Kind: larder.EventDownload, User: fmt.Sprint("p", p), Bytes: int64(i)}
				start := time.Now()
				l.Record(context.Background(), e)
				slow = max(slow, time.Since(start))
				ids[p] = append(ids[p], e.ID)
			}
			mu.Lock()
			slowest = max(slowest, slow)
			mu.Unlock()
		})
	}
	wg.Wait()
	t.Logf("slowest Record with the sink down: %v", slowest)
	waitFor(t, "the spool", func() bool { return l.Stats().Durable == producers*each })
	waitFor(t, "a failed delivery", func() bool { return l.Stats().DeliveryFailures > 0 })
	st := l.Stats()
	if st.Delivered != 0 || sink.len() != 0 || st.SinkUp || st.LastDeliveryErr != errSinkDown.Error() {
		t.Fatalf("sink down: got %d delivered, %d in the sink, up %v, last error %q; want 0, 0, false, %q",
			st.Delivered, sink.len(), st.SinkUp, st.LastDeliveryErr, errSinkDown)
	}
	if st.SpoolSegments < 3 || st.SpoolBytes < 3*(64<<10) {
		t.Fatalf("got a spool of %d segments and %d bytes, want several full segments", st.SpoolSegments, st.SpoolBytes)
	}

	sink.mu.Lock()
	sink.down = false
	sink.failAfterStore = func(call int) bool { return call%3 == 0 }
	sink.mu.Unlock()
	waitFor(t, "delivery", func() bool { return l.Stats().Delivered == producers*each })
	st = l.Stats()
	if got := sink.len(); got != producers*each {
		t.Fatalf("got %d events in the sink, want %d", got, producers*each)
	}
	redelivered := 0
	sink.mu.Lock()
	for p := range ids {
		for _, id := range ids[p] {
			switch n := sink.offered[id]; {
			case n == 0:
				t.Fatalf("event %v of producer %d never arrived", id, p)
			case n > 1:
				redelivered++
			}
		}
	}
	sink.mu.Unlock()
	if redelivered == 0 || st.DeliveryRetries == 0 || !st.SinkUp {
		t.Errorf("got %d events offered twice, %d retries, up %v; want some, some, true", redelivered, st.DeliveryRetries, st.SinkUp)
	}
	// Per producer, the order is kept.
	next := make(map[string]int64)
	for _, e := range sink.events() {
		if e.Bytes != next[e.User] {
			t.Fatalf("producer %s: got event %d, want %d", e.User, e.Bytes, next[e.User])
		}
		next[e.User]++
	}
	// Delivered segments are gone: what is left is the one being written.
	if st.SpoolSegments != 1 {
		t.Errorf("got %d segments after delivery, want 1", st.SpoolSegments)
	}
	closeLog(t, l)
	assertEmptySpool(t, dir)
}

// TestCloseDrains records events and closes at once: all of them are
// spooled and delivered, and Records after Close are counted.
func TestCloseDrains(t *testing.T) {
	for _, withSink := range []bool{true, false} {
		t.Run(fmt.Sprint("sink=", withSink), func(t *testing.T) {
			dir := t.TempDir()
			sink := newMemSink()
			cfg := Config{Dir: dir, Full: Block, QueueSize: 1 << 16, SyncKinds: []larder.EventKind{larder.EventAccount}}
			if withSink {
				cfg.Sink = sink
			}
			l := openTest(t, cfg, hooks{})
			const n = 20000
			var wg sync.WaitGroup
			for p := range 4 {
				wg.Go(func() {
					for i := range n / 4 {
						l.Record(context.Background(), larder.Event{Kind: larder.EventList, User: fmt.Sprint(p), Bytes: int64(i)})
					}
				})
			}
			wg.Wait()
			closeLog(t, l)
			if st := l.Stats(); st.Durable != n || st.Taken != n {
				t.Fatalf("after Close: got %d taken and %d durable, want %d", st.Taken, st.Durable, n)
			}
			if err := l.Record(context.Background(), larder.Event{Kind: larder.EventList}); err != nil {
				t.Errorf("Record of an async kind after Close: got %v, want nil", err)
			}
			if err := l.Record(context.Background(), larder.Event{Kind: larder.EventAccount}); !errors.Is(err, ErrClosed) {
				t.Errorf("Record of a sync kind after Close: got %v, want ErrClosed", err)
			}
			if st := l.Stats(); st.NotTaken.Closed != 2 || st.Taken != n {
				t.Errorf("got %d not taken (closed) and %d taken, want 2 and %d", st.NotTaken.Closed, st.Taken, n)
			}
			if !withSink {
				l2 := openTest(t, Config{Dir: dir, Sink: sink}, hooks{})
				waitFor(t, "delivery of the spool", func() bool { return l2.Stats().Delivered == n })
				closeLog(t, l2)
			}
			if got := sink.len(); got != n {
				t.Fatalf("got %d events in the sink, want %d", got, n)
			}
			assertEmptySpool(t, dir)
		})
	}
}

// TestCloseGivesUp closes with the sink down: Close returns when its
// context ends, and the events stay in the spool for the next Log.
func TestCloseGivesUp(t *testing.T) {
	dir := t.TempDir()
	sink := newMemSink()
	sink.setDown(true)
	l := openTest(t, Config{Dir: dir, Sink: sink}, hooks{})
	for range 100 {
		l.Record(context.Background(), larder.Event{Kind: larder.EventList})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := l.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close with the sink down: got %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v with a 100ms context", d)
	}
	checkNoGoroutines(t)
	if st := l.Stats(); st.Durable != 100 || st.Delivered != 0 {
		t.Fatalf("got %d durable, %d delivered; want 100, 0", st.Durable, st.Delivered)
	}
	sink.setDown(false)
	l2 := openTest(t, Config{Dir: dir, Sink: sink}, hooks{})
	waitFor(t, "delivery of the spool", func() bool { return sink.len() == 100 })
	closeLog(t, l2)
	assertEmptySpool(t, dir)
}

// stalledWriter returns hooks that stop the writer before its first commit
// until release is closed, and a channel closed when it got there.
func stalledWriter() (h hooks, stalled, release chan struct{}) {
	stalled, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	h.beforeCommit = func() {
		once.Do(func() {
			close(stalled)
			<-release
		})
	}
	return h, stalled, release
}

// TestFullQueue fills the queue with the writer stopped, under each
// policy, and checks what Record did against the counts in Stats.
func TestFullQueue(t *testing.T) {
	const size, wait = 4, 50 * time.Millisecond
	for _, policy := range []FullPolicy{Drop, Wait, Block} {
		t.Run(policy.String(), func(t *testing.T) {
			sink := newMemSink()
			h, stalled, release := stalledWriter()
			l := openTest(t, Config{Dir: t.TempDir(), Sink: sink, QueueSize: size, Full: policy, FullWait: wait}, h)
			var recorded []larder.EventID
			record := func() time.Duration {
				e := larder.Event{ID: larder.NewEventID(time.Now()), Kind: larder.EventList}
				recorded = append(recorded, e.ID)
				start := time.Now()
				if err := l.Record(context.Background(), e); err != nil {
					t.Fatalf("Record: %v", err)
				}
				return time.Since(start)
			}
			record() // the writer takes it and stops
			<-stalled
			for range size {
				record()
			}
			if st := l.Stats(); st.QueueDepth != size || st.Taken != size+1 || st.NotTaken.Full != 0 {
				t.Fatalf("got depth %d, taken %d, not taken %d; want %d, %d, 0", st.QueueDepth, st.Taken, st.NotTaken.Full, size, size+1)
			}
			var wantTaken, wantFull uint64 = size + 1, 0
			switch policy {
			case Drop:
				for range 3 {
					if d := record(); d > wait {
						t.Errorf("Drop: Record took %v", d)
					}
				}
				wantFull = 3
				close(release)
			case Wait:
				if d := record(); d < wait || d > wait+time.Second {
					t.Errorf("Wait: Record took %v, want about %v", d, wait)
				}
				wantFull = 1
				close(release)
			case Block:
				done := make(chan time.Duration)
				go func() { done <- record() }()
				select {
				case d := <-done:
					t.Fatalf("Block: Record returned after %v with the queue full", d)
				case <-time.After(2 * wait):
				}
				close(release)
				<-done
				wantTaken++
			}
			closeLog(t, l)
			st := l.Stats()
			if st.Taken != wantTaken || st.NotTaken.Full != wantFull || st.Durable != wantTaken || st.Delivered != wantTaken {
				t.Errorf("got taken %d, not taken %d, durable %d, delivered %d; want %d, %d, %d, %d",
					st.Taken, st.NotTaken.Full, st.Durable, st.Delivered, wantTaken, wantFull, wantTaken, wantTaken)
			}
			// The events taken are the first ones recorded (those refused
			// came last), and they are all in the sink.
			for i, id := range recorded[:wantTaken] {
				if _, ok := sink.byID[id]; !ok {
					t.Errorf("event %d, taken, is not in the sink", i)
				}
			}
			if got := sink.len(); uint64(got) != wantTaken {
				t.Errorf("got %d events in the sink, want %d", got, wantTaken)
			}
		})
	}
}

// TestSyncKinds checks that a sync Record returns once its event is on
// disk, and fails with ErrQueueFull when its context ends before there is
// room in the queue.
func TestSyncKinds(t *testing.T) {
	h, stalled, release := stalledWriter()
	l := openTest(t, Config{Dir: t.TempDir(), QueueSize: 1, SyncKinds: []larder.EventKind{larder.EventAccount}}, h)
	l.Record(context.Background(), larder.Event{Kind: larder.EventList}) // the writer takes it and stops
	<-stalled
	l.Record(context.Background(), larder.Event{Kind: larder.EventList}) // the queue is full
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := l.Record(ctx, larder.Event{Kind: larder.EventAccount}); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("sync Record with the queue full: got %v, want ErrQueueFull", err)
	}
	if st := l.Stats(); st.NotTaken.Full != 1 {
		t.Errorf("got %d not taken (full), want 1", st.NotTaken.Full)
	}
	close(release)
	e := larder.Event{ID: larder.NewEventID(time.Now()), Kind: larder.EventAccount, User: "alice", Reason: "added"}
	if err := l.Record(context.Background(), e); err != nil {
		t.Fatalf("sync Record: %v", err)
	}
	// It is on disk now: read the segment back.
	events := readSpool(t, l.Dir())
	if len(events) != 3 || events[2].ID != e.ID {
		t.Fatalf("got %d events on disk, the last %v; want 3, the last %v", len(events), events[len(events)-1].ID, e.ID)
	}
}

// readSpool decodes every record in the segments of folder dir.
func readSpool(t *testing.T, dir string) []larder.Event {
	t.Helper()
	seqs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []larder.Event
	for _, seq := range seqs {
		b, err := os.ReadFile(segPath(dir, seq))
		if err != nil {
			t.Fatal(err)
		}
		if err := checkHeader(b); err != nil {
			t.Fatal(err)
		}
		r := newRecordReader()
		f, _ := os.Open(segPath(dir, seq))
		r.reset(f, headerSize, int64(len(b)))
		for {
			p, err := r.next()
			if err != nil {
				break
			}
			e, err := decodeEvent(p)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, e)
		}
		f.Close()
	}
	return out
}

// TestMaxSpool fills the spool with the sink down: further events are
// counted as not taken, the oldest are kept, and delivered once the sink
// is back; then events are taken again.
func TestMaxSpool(t *testing.T) {
	sink := newMemSink()
	sink.setDown(true)
	const max = 64 << 10
	l := openTest(t, Config{Dir: t.TempDir(), Sink: sink, SegmentSize: 8 << 10, MaxSpool: max, QueueSize: 16,
		Full: Block, SyncKinds: []larder.EventKind{larder.EventAccount}}, hooks{})
	var ids []larder.EventID
	for i := range 3000 {
		e := larder.Event{ID: larder.NewEventID(time.Now()), Kind: larder.EventUpload, Bytes: int64(i), Path: "some/path/of/a/file"}
		ids = append(ids, e.ID)
		l.Record(context.Background(), e)
	}
	if err := l.Record(context.Background(), larder.Event{Kind: larder.EventAccount}); !errors.Is(err, ErrSpoolFull) {
		t.Errorf("sync Record with the spool full: got %v, want ErrSpoolFull", err)
	}
	waitFor(t, "the queue to drain", func() bool { st := l.Stats(); return st.Durable == st.Taken })
	st := l.Stats()
	if st.NotTaken.SpoolFull == 0 || st.Taken+st.NotTaken.SpoolFull != 3000+1 {
		t.Fatalf("got %d taken and %d not taken (spool full), want some not taken and a sum of 3001", st.Taken, st.NotTaken.SpoolFull)
	}
	if st.SpoolBytes < max || st.SpoolBytes > max+16*maxPayload {
		t.Errorf("got a spool of %d bytes, want at least MaxSpool %d, and over it by at most a queue", st.SpoolBytes, max)
	}
	taken := int(st.Taken)

	sink.setDown(false)
	waitFor(t, "delivery", func() bool { return l.Stats().Delivered == uint64(taken) })
	got := sink.events()
	for i := range taken { // the oldest, in order
		if got[i].ID != ids[i] {
			t.Fatalf("delivered event %d is %v, want %v", i, got[i].ID, ids[i])
		}
	}
	if err := l.Record(context.Background(), larder.Event{Kind: larder.EventAccount}); err != nil {
		t.Errorf("sync Record after the spool emptied: %v", err)
	}
}

// TestAdoption leaves a folder behind (a Log without a sink that closed)
// next to one still held, and checks that a Log with a sink delivers and
// removes the first and does not touch the second until it is let go.
func TestAdoption(t *testing.T) {
	dir := t.TempDir()
	left := openTest(t, Config{Dir: dir}, hooks{})
	for i := range 10 {
		left.Record(context.Background(), larder.Event{Kind: larder.EventAccount, Bytes: int64(i)})
	}
	closeLog(t, left)
	held := openTest(t, Config{Dir: dir}, hooks{})
	for i := range 5 {
		held.Record(context.Background(), larder.Event{Kind: larder.EventDelete, Bytes: int64(i)})
	}
	waitFor(t, "the held Log's spool", func() bool { return held.Stats().Durable == 5 })
	// Debris of crashes: a folder half made, and one whose owner died
	// while removing it.
	halfMade := filepath.Join(dir, ".tmp-"+writerID(time.Now(), 1))
	os.MkdirAll(halfMade, 0o700)
	os.WriteFile(filepath.Join(halfMade, lockName), nil, 0o600)
	halfMadeNoLock := filepath.Join(dir, ".tmp-"+writerID(time.Now(), 2))
	os.MkdirAll(halfMadeNoLock, 0o700)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(halfMadeNoLock, old, old)
	os.MkdirAll(filepath.Join(dir, writerID(time.Unix(1, 0), 3)), 0o700)

	sink := newMemSink()
	l := openTest(t, Config{Dir: dir, Sink: sink}, hooks{})
	waitFor(t, "delivery of the folder left", func() bool { return sink.len() == 10 })
	waitFor(t, "removal of the folder left", func() bool { _, err := os.Stat(left.Dir()); return err != nil })
	if st := l.Stats(); st.Adopted != 2 {
		t.Errorf("got %d folders adopted, want 2 (the one left and the empty one)", st.Adopted)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 2 || names[0] != filepath.Base(held.Dir()) || names[1] != filepath.Base(l.Dir()) {
		t.Errorf("got %q in the spool folder, want only the held folder and the new Log's", names)
	}
	if got := readSpool(t, held.Dir()); len(got) != 5 {
		t.Errorf("the held folder holds %d events, want 5", len(got))
	}

	closeLog(t, held)
	l.poke <- struct{}{}
	waitFor(t, "delivery of the folder let go", func() bool { return sink.len() == 15 })
	waitFor(t, "its removal", func() bool { _, err := os.Stat(held.Dir()); return err != nil })
	closeLog(t, l)
	assertEmptySpool(t, dir)
}

// assertEmptySpool checks that nothing is left in the spool folder.
func assertEmptySpool(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left in the spool folder: %s", e.Name())
	}
}

func TestParseFullPolicy(t *testing.T) {
	for _, p := range []FullPolicy{Wait, Drop, Block} {
		if got, err := ParseFullPolicy(p.String()); got != p || err != nil {
			t.Errorf("ParseFullPolicy(%q) = %v, %v; want %v", p.String(), got, err, p)
		}
	}
	if _, err := ParseFullPolicy("spill"); err == nil {
		t.Error("ParseFullPolicy(spill) succeeded")
	}
}

func TestConfigRefused(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{Dir: t.TempDir(), SegmentSize: 100},
		{Dir: t.TempDir(), QueueSize: -1},
		{Dir: t.TempDir(), Full: 7},
		{Dir: t.TempDir(), RetryMin: time.Second, RetryMax: time.Millisecond},
	} {
		if l, err := Open(cfg); err == nil {
			l.Close(context.Background())
			t.Errorf("Open(%+v) succeeded", cfg)
		}
	}
}

// TestDeliverLinger: events recorded a few at a time reach the sink in
// batches gathered over DeliverLinger, not one call per spool commit; a
// negative linger delivers as they come.
func TestDeliverLinger(t *testing.T) {
	const n = 60
	calls := func(linger time.Duration) (int, time.Duration) {
		sink := newMemSink()
		// A commit interval short enough that each event is its own
		// spool commit: the linger alone gathers them for the sink.
		l := openTest(t, Config{Dir: t.TempDir(), Sink: sink, DeliverLinger: linger, CommitInterval: time.Microsecond}, hooks{})
		start := time.Now()
		for i := range n {
			l.Record(context.Background(), fullEvent(larder.EventDownload, i))
			time.Sleep(2 * time.Millisecond) // every event its own spool commit
		}
		waitFor(t, "delivery", func() bool { return sink.len() == n })
		took := time.Since(start)
		closeLog(t, l)
		sink.mu.Lock()
		defer sink.mu.Unlock()
		return sink.calls, took
	}
	// With a linger, one call per linger at most (and one more at each
	// end); without, about one per event.
	const linger = 100 * time.Millisecond
	lingering, took := calls(linger)
	if most := int(took/linger) + 2; lingering > most {
		t.Errorf("with a linger of %v, %d events over %v took %d calls of the sink, want at most %d", linger, n, took, lingering, most)
	}
	// Without, many more (about one each; fewer on a loaded machine).
	if eager, _ := calls(-1); eager < 3*lingering || eager < n/6 {
		t.Errorf("without a linger, %d events 2ms apart took %d calls of the sink (%d with it), want about one each", n, eager, lingering)
	}
}

// TestGroupCommitGathers records events of an asynchronous kind a few
// milliseconds apart, well within CommitInterval: they share an fdatasync
// rather than each taking one as the queue runs empty between them. An
// event of a sync kind does not wait out the interval, and neither does
// Close.
func TestGroupCommitGathers(t *testing.T) {
	l := openTest(t, Config{Dir: t.TempDir(), CommitInterval: time.Hour,
		SyncKinds: []larder.EventKind{larder.EventAccount}}, hooks{})
	ctx := context.Background()
	const n = 10
	for range n {
		if err := l.Record(ctx, larder.Event{Kind: larder.EventList}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Millisecond) // time enough for the writer to find the queue empty
	}
	if st := l.Stats(); st.Durable != 0 || st.Commits != 0 {
		t.Errorf("before the interval: got %d events durable in %d commits, want none", st.Durable, st.Commits)
	}
	start := time.Now()
	if err := l.Record(ctx, larder.Event{Kind: larder.EventAccount}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("a sync Record waited %v, the commit interval's share", d)
	}
	if st := l.Stats(); st.Durable != n+1 || st.Commits != 1 {
		t.Errorf("after a sync event: got %d events durable in %d commits, want %d in 1", st.Durable, st.Commits, n+1)
	}
	l.Record(ctx, larder.Event{Kind: larder.EventList})
	closed := make(chan error, 1)
	go func() { closed <- l.Close(ctx) }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close waits out the commit interval")
	}
	if st := l.Stats(); st.Durable != n+2 || st.Commits != 2 {
		t.Errorf("after Close: got %d events durable in %d commits, want %d in 2", st.Durable, st.Commits, n+2)
	}
}
