package audit

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/larderfs/larder"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		crashChild() // never returns
	}
	os.Exit(m.Run())
}

// memSink is a Sink in memory that stores by ID, as a real sink must, and
// can be switched down, or made to fail after it stored a batch.
type memSink struct {
	mu      sync.Mutex
	byID    map[larder.EventID]larder.Event
	order   []larder.EventID // in order of first arrival
	offered map[larder.EventID]int
	calls   int
	down    bool
	// failAfterStore, if set, is asked after each batch is stored whether
	// to report a failure anyway (the reply lost on its way back).
	failAfterStore func(call int) bool
}

var (
	errSinkDown  = errors.New("memsink: down")
	errSinkFlaky = errors.New("memsink: stored, but the reply was lost")
)

func newMemSink() *memSink {
	return &memSink{byID: map[larder.EventID]larder.Event{}, offered: map[larder.EventID]int{}}
}

func (s *memSink) StoreEvents(ctx context.Context, events []larder.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.down {
		return errSinkDown
	}
	for _, e := range events {
		s.offered[e.ID]++
		if _, ok := s.byID[e.ID]; !ok {
			s.byID[e.ID] = e
			s.order = append(s.order, e.ID)
		}
	}
	if s.failAfterStore != nil && s.failAfterStore(s.calls) {
		return errSinkFlaky
	}
	return nil
}

func (s *memSink) setDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

func (s *memSink) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID)
}

// events returns the stored events in order of first arrival.
func (s *memSink) events() []larder.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]larder.Event, len(s.order))
	for i, id := range s.order {
		out[i] = s.byID[id]
	}
	return out
}

// testLogger writes the Log's messages to the test's log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

// openTest opens a Log with fast retries, closes it when the test ends,
// and checks then that none of its goroutines is left.
func openTest(t testing.TB, cfg Config, h hooks) *Log {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	if cfg.RetryMin == 0 {
		cfg.RetryMin, cfg.RetryMax = time.Millisecond, 20*time.Millisecond
	}
	l, err := openLog(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := l.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		checkNoGoroutines(t)
	})
	return l
}

// closeLog closes l, giving it 10 seconds.
func closeLog(t testing.TB, l *Log) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// checkNoGoroutines fails if a goroutine of a Log is still running a
// second after they were all told to stop.
func checkNoGoroutines(t testing.TB) {
	t.Helper()
	var stacks string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		if !strings.Contains(stacks, "audit.(*Log).writeLoop") && !strings.Contains(stacks, "audit.(*Log).deliverLoop") {
			return
		}
	}
	t.Errorf("goroutines of a closed Log are still running:\n%s", stacks)
}

// waitFor waits up to 20 seconds for cond.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
