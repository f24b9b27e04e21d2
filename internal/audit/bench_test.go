package audit

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/larderfs/larder"
)

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

// BenchmarkRecord measures what Record costs the request path.
//
// "handoff" is that cost alone: the writer is stopped before its first
// commit and a goroutine drains the queue as fast as it fills, so Record
// never waits. "spooled" runs the whole pipeline (Block policy) flat out:
// its ns/op is the spool's pace once the producers outrun the writer, on
// the cores they share with it.
func BenchmarkRecord(b *testing.B) {
	handoff := func(b *testing.B, parallel bool) {
		h, stalled, release := stalledWriter()
		l := benchLog(b, Config{Full: Block}, h)
		ctx := context.Background()
		l.Record(ctx, benchEvent)
		<-stalled
		var wg sync.WaitGroup
		wg.Go(func() {
			var items []item
			for {
				if items = l.q.take(items, true); len(items) == 0 {
					return // closed
				}
			}
		})
		b.ReportAllocs()
		b.ResetTimer()
		if parallel {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					l.Record(ctx, benchEvent)
				}
			})
		} else {
			for b.Loop() {
				l.Record(ctx, benchEvent)
			}
		}
		b.StopTimer()
		close(release)
		l.Close(ctx)
		wg.Wait()
	}
	b.Run("handoff", func(b *testing.B) { handoff(b, false) })
	b.Run("handoff-parallel", func(b *testing.B) { handoff(b, true) })
	b.Run("spooled-parallel", func(b *testing.B) {
		l := benchLog(b, Config{Full: Block}, hooks{})
		ctx := context.Background()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				l.Record(ctx, benchEvent)
			}
		})
		st := l.Stats()
		if st.NotTaken != (NotTaken{}) {
			b.Fatalf("events not taken: %+v", st.NotTaken)
		}
	})
}

// BenchmarkSpool records b.N events from 8 goroutines and waits until
// all are durable: events/s and fsyncs/s through the spool with group
// commit (no sink).
func BenchmarkSpool(b *testing.B) {
	spoolRate(b, Config{Full: Block}, 8)
}

// BenchmarkSpoolSync is BenchmarkSpool with every event of a sync kind,
// from 64 goroutines: each Record waits for its fsync.
func BenchmarkSpoolSync(b *testing.B) {
	spoolRate(b, Config{SyncKinds: []larder.EventKind{benchEvent.Kind}}, 64)
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
	for l.Stats().Durable < uint64(b.N) {
		time.Sleep(50 * time.Microsecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	st := l.Stats()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(st.Commits)/elapsed.Seconds(), "fsyncs/s")
	b.ReportMetric(float64(st.Durable)/float64(st.Commits), "events/fsync")
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
// the Record calls are timed.
func BenchmarkRecordIdle(b *testing.B) {
	l := benchLog(b, Config{}, hooks{})
	ctx := context.Background()
	var total time.Duration
	for b.Loop() {
		time.Sleep(20 * time.Microsecond)
		start := time.Now()
		l.Record(ctx, benchEvent)
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/record")
}
