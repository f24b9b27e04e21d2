package audit

import (
	"context"
	"sync"
	"time"

	"github.com/larderfs/larder"
)

// LazySink is a Sink that opens the sink it stands for at its first
// delivery, and again after an open that failed: a sink that is down at
// start (a database not up yet) is no reason not to serve, since the
// spool holds the events meanwhile and the Log retries the delivery.
type LazySink struct {
	open  func(context.Context) (Sink, func(), error)
	mu    sync.Mutex
	sink  Sink
	close func()
}

var (
	_ Sink               = (*LazySink)(nil)
	_ larder.EventPruner = (*LazySink)(nil)
)

// NewLazySink returns a LazySink that opens its sink with open, which
// returns the sink and what closes it. Nothing is opened yet.
func NewLazySink(open func(context.Context) (Sink, func(), error)) *LazySink {
	return &LazySink{open: open}
}

// Open opens the sink now, if it is not open, and returns the error of
// the attempt: a caller that wants to say at start that the sink is down
// calls it once; StoreEvents tries again regardless.
func (l *LazySink) Open(ctx context.Context) error {
	_, err := l.get(ctx)
	return err
}

// get returns the open sink, opening it if need be.
func (l *LazySink) get(ctx context.Context) (Sink, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sink != nil {
		return l.sink, nil
	}
	s, closeSink, err := l.open(ctx)
	if err != nil {
		return nil, err
	}
	l.sink, l.close = s, closeSink
	return s, nil
}

// StoreEvents opens the sink if need be and stores events in it.
func (l *LazySink) StoreEvents(ctx context.Context, events []larder.Event) error {
	s, err := l.get(ctx)
	if err != nil {
		return err
	}
	return s.StoreEvents(ctx, events)
}

// PruneEvents opens the sink if need be and, if it can prune
// (larder.EventPruner), prunes it; a sink that cannot prunes nothing.
func (l *LazySink) PruneEvents(ctx context.Context, before time.Time, limit int) (int, error) {
	s, err := l.get(ctx)
	if err != nil {
		return 0, err
	}
	p, ok := s.(larder.EventPruner)
	if !ok {
		return 0, nil
	}
	return p.PruneEvents(ctx, before, limit)
}

// Close closes the sink if it was opened. Call it once the Log has
// stopped delivering (after Log.Close).
func (l *LazySink) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.close != nil {
		l.close()
		l.close = nil
	}
}
