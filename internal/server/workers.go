package server

import (
	"sync"
	"sync/atomic"
	"time"
)

// A connection's goroutine, once it has served its connection, waits a
// while for the next one rather than ending. A new goroutine starts with a
// small stack that a request grows several times over (copying it each
// time), and starting it is a scheduler round of its own: together a
// twelfth of the server's work for small retrievals, which a goroutine
// kept from the last connection does not pay again. net/http starts one
// per connection, as this server did; fasthttp keeps them, for the same
// reason.

// Bounds of the kept goroutines: at most maxIdleWorkers wait at once, each
// for workerIdleTimeout, so that a burst of connections leaves no more
// than a few MiB of stacks behind it, and not for long.
const (
	maxIdleWorkers    = 128
	workerIdleTimeout = 5 * time.Second
)

// workers hands connections to goroutines waiting for one.
type workers struct {
	jobs     chan func()   // unbuffered: a send succeeds only if a worker waits
	idle     atomic.Int32  // workers waiting on jobs
	done     chan struct{} // closed by stop
	stopOnce sync.Once
}

func (w *workers) init() {
	w.jobs = make(chan func())
	w.done = make(chan struct{})
}

// stop makes the waiting workers end, and every other one end once its
// connection is served (Shutdown, Close).
func (w *workers) stop() { w.stopOnce.Do(func() { close(w.done) }) }

// dispatch runs job on a waiting worker, or on a new goroutine that
// s.running tracks, which waits for more once job returns.
func (s *Server) dispatch(job func()) {
	select {
	case s.workers.jobs <- job:
		return
	default:
	}
	s.running.Go(func() { s.work(job) })
}

// work runs job, then the jobs dispatch hands it, until none comes for
// workerIdleTimeout, enough workers wait already, or the server stops.
func (s *Server) work(job func()) {
	w := &s.workers
	var t *time.Timer
	for {
		job()
		job = nil
		if w.idle.Add(1) > maxIdleWorkers {
			w.idle.Add(-1)
			return
		}
		if t == nil {
			t = time.NewTimer(workerIdleTimeout)
		} else {
			t.Reset(workerIdleTimeout)
		}
		select {
		case job = <-w.jobs:
		case <-t.C:
		case <-w.done:
		}
		w.idle.Add(-1)
		if job == nil {
			t.Stop()
			return
		}
	}
}
