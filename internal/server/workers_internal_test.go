package server

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// TestWorkersKept: a goroutine that has served a connection serves the
// next one, at most maxIdleWorkers wait, and none is left once the server
// shuts down, though workerIdleTimeout has not passed.
func TestWorkersKept(t *testing.T) {
	s := &Server{}
	s.init()

	first := make(chan struct{})
	s.dispatch(func() { <-first })
	close(first)
	waitUntil(t, "the first worker waits", func() bool { return s.workers.idle.Load() == 1 })
	took := make(chan int32, 1)
	s.dispatch(func() { took <- s.workers.idle.Load() })
	if n := <-took; n != 0 {
		t.Errorf("%d workers waiting while the second job runs, want 0: it did not go to the waiting one", n)
	}

	// A burst: more jobs at once than may wait afterwards.
	before := runtime.NumGoroutine()
	release := make(chan struct{})
	burst := maxIdleWorkers + 20
	for range burst {
		s.dispatch(func() { <-release })
	}
	close(release)
	waitUntil(t, "the burst's workers end or wait", func() bool {
		return s.workers.idle.Load() == maxIdleWorkers && runtime.NumGoroutine() <= before+maxIdleWorkers
	})

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { s.running.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(workerIdleTimeout / 2):
		t.Fatalf("workers still running after Shutdown: %d waiting", s.workers.idle.Load())
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
