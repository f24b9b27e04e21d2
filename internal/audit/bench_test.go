package audit

import (
	"context"
	"io"
	"log/slog"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/flock"
)

// The benchmarks of this file come in pairs, larder and a baseline, as
// sub-benchmarks of one function, so that one run of the test binary
// measures both side by side. -count N repeats each sub-benchmark N times
// in a row; for rounds that alternate larder and its baseline (A B A B …),
// as docs/BENCHMARKS.md asks of every figure on this noisy machine, run
// the binary N times with -test.count 1 (docs/BENCHMARKS.md gives the
// loop).

// benchEvent is a typical request's event: Record fills ID, Time, Server.
var benchEvent = larder.Event{Kind: larder.EventDownload, User: "alice", Remote: "127.0.0.1:40000",
	Path: "dir/file.txt", Bytes: 1 << 20, SHA256: [32]byte{1, 2, 3}, Status: 1, Duration: time.Millisecond}

func benchLog(b *testing.B, cfg Config, h hooks) *Log {
	b.Helper()
	cfg.Dir = b.TempDir()
	cfg.Logger = slog.New(slog.DiscardHandler)
	l, err := openLog(cfg, h)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close(context.Background()) })
	return l
}

// stamped returns ev with the ID and Time that Record fills, so that the
// baselines do the same work per event as Record before their handoff.
func stamped(ev larder.Event) larder.Event {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	if ev.ID.IsZero() {
		ev.ID = larder.NewEventID(ev.Time)
	}
	return ev
}

// BenchmarkRecord measures what Record costs the request path, against
// the two obvious ways of handing an event to another goroutine.
//
// "handoff" is Record's cost alone: the writer is stopped before its first
// commit and a goroutine empties the queue in its place, looking again
// every CommitInterval when it finds it empty, as the writer does; the
// queue (65536 events) never fills, so Record never waits.
// "baseline-chan" sends the same stamped event on a buffered channel of
// the same capacity, drained by a goroutine that ranges over it;
// "baseline-mutex" appends it to a slice under a mutex, emptied by a
// goroutine in the same way as the queue, which is Record's own design
// without its checks. "spooled-parallel" runs the whole pipeline (Block
// policy) flat out and stops the clock once every event is fsync'd: its
// ns/op is the spool's pace once the producers outrun the writer, on the
// cores they share with it.
func BenchmarkRecord(b *testing.B) {
	handoff := func(b *testing.B, parallel bool) {
		h, stalled, release := stalledWriter()
		l := benchLog(b, Config{Full: Block}, h)
		ctx := context.Background()
		l.Record(ctx, benchEvent)
		<-stalled
		// The drainer stands in for the stalled writer. It must not call
		// take with block set: the queue has one consumer, whose sleeping
		// state and timer it keeps, and a second would steal the writer's
		// wake-ups. So it ticks by itself, as the writer does, and the
		// writer, stuck in its commit, stays "at work": Record never wakes
		// anyone, as under a steady stream.
		var (
			wg   sync.WaitGroup
			stop atomic.Bool
		)
		wg.Go(func() {
			var items []item
			for !stop.Load() {
				if items = l.q.take(items, false); len(items) == 0 {
					time.Sleep(defaultCommitInterval)
				}
			}
		})
		b.ReportAllocs()
		b.ResetTimer()
		loop(b, parallel, func() { l.Record(ctx, benchEvent) })
		b.StopTimer()
		stop.Store(true)
		wg.Wait()
		close(release)
		l.Close(ctx)
	}
	baselineChan := func(b *testing.B, parallel bool) {
		ch := make(chan item, defaultQueueSize)
		var wg sync.WaitGroup
		wg.Go(func() {
			for range ch {
			}
		})
		b.ReportAllocs()
		b.ResetTimer()
		loop(b, parallel, func() { ch <- item{ev: stamped(benchEvent)} })
		b.StopTimer()
		close(ch)
		wg.Wait()
	}
	baselineMutex := func(b *testing.B, parallel bool) {
		var (
			mu    sync.Mutex
			items = make([]item, 0, 1024)
			spare = make([]item, 0, 1024)
			done  = make(chan struct{})
			wg    sync.WaitGroup
		)
		wg.Go(func() {
			for {
				mu.Lock()
				got := items
				items = spare[:0]
				mu.Unlock()
				clear(got)
				spare = got
				if len(got) == 0 {
					select {
					case <-done:
						return
					default:
						time.Sleep(defaultCommitInterval)
					}
				}
			}
		})
		b.ReportAllocs()
		b.ResetTimer()
		loop(b, parallel, func() {
			it := item{ev: stamped(benchEvent)}
			mu.Lock()
			items = append(items, it)
			mu.Unlock()
		})
		b.StopTimer()
		close(done)
		wg.Wait()
	}
	b.Run("handoff", func(b *testing.B) { handoff(b, false) })
	b.Run("baseline-chan", func(b *testing.B) { baselineChan(b, false) })
	b.Run("baseline-mutex", func(b *testing.B) { baselineMutex(b, false) })
	b.Run("handoff-parallel", func(b *testing.B) { handoff(b, true) })
	b.Run("baseline-chan-parallel", func(b *testing.B) { baselineChan(b, true) })
	b.Run("baseline-mutex-parallel", func(b *testing.B) { baselineMutex(b, true) })
	b.Run("spooled-parallel", func(b *testing.B) {
		l := benchLog(b, Config{Full: Block}, hooks{})
		ctx := context.Background()
		b.ReportAllocs()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				l.Record(ctx, benchEvent)
			}
		})
		waitDurable(b, l, uint64(b.N))
		elapsed := time.Since(start)
		b.StopTimer()
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	})
}

// loop calls f b.N times, from one goroutine or from GOMAXPROCS.
func loop(b *testing.B, parallel bool, f func()) {
	if parallel {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				f()
			}
		})
		return
	}
	for range b.N {
		f()
	}
}

// waitDurable waits until l has fsync'd n events, failing if any event
// was not taken or was lost (then n would never be reached).
func waitDurable(b *testing.B, l *Log, n uint64) {
	b.Helper()
	for {
		st := l.Stats()
		if st.NotTaken != (NotTaken{}) || st.Failed != 0 {
			b.Fatalf("events not taken: %+v, failed: %d", st.NotTaken, st.Failed)
		}
		if st.Durable >= n {
			return
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// spoolBatch is the events per fsync of the last "larder" sub-benchmark
// of BenchmarkSpool or BenchmarkSpoolSync, for the "raw-same-batches"
// baseline that follows it in the same round.
var spoolBatch float64

// BenchmarkSpool records b.N events from 8 goroutines and stops the clock
// once all are durable (fsync'd, not merely queued): events/s and fsyncs/s
// through the spool with group commit, and no sink. The baselines write
// the same encoded records straight to a file, one write and one
// fdatasync per batch: "raw-same-batches" in batches of the size the spool
// reached in the same round, "raw-1-per-fsync" one event per fsync, as a
// spool without group commit would.
func BenchmarkSpool(b *testing.B) {
	b.Run("larder", func(b *testing.B) { spoolRate(b, Config{Full: Block}, 8) })
	b.Run("raw-same-batches", func(b *testing.B) { rawSpool(b, sameBatch(b)) })
	b.Run("raw-1-per-fsync", func(b *testing.B) { rawSpool(b, 1) })
}

// BenchmarkSpoolSync is BenchmarkSpool with every event of a sync kind,
// from 64 goroutines: each Record waits for its fsync.
func BenchmarkSpoolSync(b *testing.B) {
	b.Run("larder", func(b *testing.B) {
		spoolRate(b, Config{SyncKinds: []larder.EventKind{benchEvent.Kind}}, 64)
	})
	b.Run("raw-same-batches", func(b *testing.B) { rawSpool(b, sameBatch(b)) })
}

func spoolRate(b *testing.B, cfg Config, producers int) {
	l := benchLog(b, cfg, hooks{})
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for range b.N/producers + boolInt(p < b.N%producers) {
				if err := l.Record(ctx, benchEvent); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	waitDurable(b, l, uint64(b.N))
	elapsed := time.Since(start)
	b.StopTimer()
	st := l.Stats()
	spoolBatch = float64(st.Durable) / float64(st.Commits)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(st.Commits)/elapsed.Seconds(), "fsyncs/s")
	b.ReportMetric(spoolBatch, "events/fsync")
}

// sameBatch returns the batch size of the "larder" run before, rounded.
func sameBatch(b *testing.B) int {
	if spoolBatch == 0 {
		b.Skip("needs the larder sub-benchmark of the same function to run first")
	}
	return max(1, int(math.Round(spoolBatch)))
}

// rawSpool writes b.N records of benchEvent, encoded as the spool encodes
// them, to segment files as the writer does (a synced header, a synced
// folder, a new file every SegmentSize), in batches of k with one write
// and one fdatasync each, from one goroutine: what the disk allows for
// that batch size, with no queue, no encoding and no goroutine handoff.
func rawSpool(b *testing.B, k int) {
	dir := b.TempDir()
	ev := stamped(benchEvent)
	rec, _ := appendRecord(nil, &ev)
	batch := make([]byte, 0, k*len(rec))
	for range k {
		batch = append(batch, rec...)
	}
	var (
		f    *os.File
		seq  int
		size int64
	)
	next := func() {
		if f != nil {
			f.Close()
		}
		seq++
		var err error
		f, err = os.OpenFile(segPath(dir, uint64(seq)), os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
		if err == nil {
			_, err = f.Write(segHeader())
		}
		if err == nil {
			err = datasync(f)
		}
		if err == nil {
			err = flock.SyncDir(dir)
		}
		if err != nil {
			b.Fatal(err)
		}
		size = headerSize
	}
	b.ResetTimer()
	start := time.Now()
	fsyncs := 0
	next()
	for left := b.N; left > 0; {
		n := min(k, left)
		p := batch[:n*len(rec)]
		if size > headerSize && size+int64(len(p)) > defaultSegmentSize {
			next()
		}
		if _, err := f.Write(p); err != nil {
			b.Fatal(err)
		}
		if err := datasync(f); err != nil {
			b.Fatal(err)
		}
		size += int64(len(p))
		fsyncs++
		left -= n
	}
	elapsed := time.Since(start)
	b.StopTimer()
	f.Close()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(fsyncs)/elapsed.Seconds(), "fsyncs/s")
	b.ReportMetric(float64(k), "events/fsync")
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// BenchmarkRecordIdle measures Record on a server that is not busy: one
// event after each short sleep (20µs asked; about a millisecond on a VM),
// so that the caches are cold and the writer sleeps between events. Only
// the Record calls are timed. The baseline sends the stamped event on a
// buffered channel whose receiver sleeps in between, as a channel's
// receiver does: each send must wake it.
func BenchmarkRecordIdle(b *testing.B) {
	idle := func(b *testing.B, record func()) {
		var total time.Duration
		for b.Loop() {
			time.Sleep(20 * time.Microsecond)
			start := time.Now()
			record()
			total += time.Since(start)
		}
		b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/record")
	}
	b.Run("larder", func(b *testing.B) {
		l := benchLog(b, Config{}, hooks{})
		ctx := context.Background()
		idle(b, func() { l.Record(ctx, benchEvent) })
	})
	b.Run("baseline-chan", func(b *testing.B) {
		ch := make(chan item, defaultQueueSize)
		var wg sync.WaitGroup
		wg.Go(func() {
			for range ch {
			}
		})
		idle(b, func() { ch <- item{ev: stamped(benchEvent)} })
		close(ch)
		wg.Wait()
	})
}

// BenchmarkSpoolRead measures the deliverer's side of the spool: reading
// one record of a segment file (from the page cache) and decoding its
// event, as deliverer.read does, over a segment of defaultDeliverBatch
// events read again from the start at its end.
func BenchmarkSpoolRead(b *testing.B) {
	ev := stamped(benchEvent)
	seg := segHeader()
	for range defaultDeliverBatch {
		seg, _ = appendRecord(seg, &ev)
	}
	path := segPath(b.TempDir(), 1)
	if err := os.WriteFile(path, seg, 0o600); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := readHeader(f); err != nil {
		b.Fatal(err)
	}
	rr := newRecordReader()
	rr.reset(f, headerSize, int64(len(seg)))
	b.ReportAllocs()
	b.SetBytes(int64(len(seg)-headerSize) / defaultDeliverBatch)
	for b.Loop() {
		p, err := rr.next()
		if err == io.EOF {
			rr.reset(f, headerSize, int64(len(seg)))
			p, err = rr.next()
		}
		if err != nil {
			b.Fatal(err)
		}
		got, err := decodeEvent(p)
		if err != nil {
			b.Fatal(err)
		}
		if got.ID != ev.ID {
			b.Fatalf("got event %v, want %v", got.ID, ev.ID)
		}
	}
}

// BenchmarkJSONLines measures the JSON-lines sink: each op is one batch
// of defaultDeliverBatch events encoded and written to io.Discard, with
// no sync; ns/event divides it by the batch.
func BenchmarkJSONLines(b *testing.B) {
	events := make([]larder.Event, defaultDeliverBatch)
	for i := range events {
		events[i] = stamped(benchEvent)
		events[i].Seq = int64(i)
	}
	j := NewJSONLines(io.Discard, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := j.StoreEvents(ctx, events); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(j.buf)))
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(events)), "ns/event")
}

// BenchmarkSpoolPaced records events at a server's pace rather than flat
// out: 16 producers, each recording an event every 4 ms (about 4,000
// events a second, two per request of a server answering 2,000), for as
// long as b.N events take. It reports events per fsync and the process's
// CPU time per event until every event is durable, which is what the
// spool costs a server's cores: the flat-out benchmarks fill every batch,
// a paced load does not. Its baseline, "pacing-only", runs the same
// producers without recording: its CPU per event is the pacing's own.
func BenchmarkSpoolPaced(b *testing.B) {
	b.Run("larder", func(b *testing.B) {
		l := benchLog(b, Config{}, hooks{})
		ctx := context.Background()
		c0 := processCPU()
		paced(b, func() {
			if err := l.Record(ctx, benchEvent); err != nil {
				b.Error(err)
			}
		})
		waitDurable(b, l, uint64(b.N))
		b.ReportMetric(float64((processCPU()-c0).Microseconds())/float64(b.N), "cpu-µs/event")
		st := l.Stats()
		b.ReportMetric(float64(st.Durable)/float64(st.Commits), "events/fsync")
	})
	b.Run("pacing-only", func(b *testing.B) {
		c0 := processCPU()
		paced(b, func() {})
		b.ReportMetric(float64((processCPU()-c0).Microseconds())/float64(b.N), "cpu-µs/event")
	})
}

// paced calls record b.N times from 16 goroutines, each once every 4 ms.
func paced(b *testing.B, record func()) {
	const producers, every = 16, 4 * time.Millisecond
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			next := time.Now().Add(time.Duration(p) * every / producers)
			for range b.N/producers + boolInt(p < b.N%producers) {
				time.Sleep(time.Until(next))
				next = next.Add(every)
				record()
			}
		})
	}
	wg.Wait()
}
