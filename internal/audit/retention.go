package audit

import (
	"context"
	"time"

	"github.com/larderfs/larder"
)

// prunePause is the pause between two batches of a prune pass: the
// sink's writer is free for the events being delivered in between.
const prunePause = 100 * time.Millisecond

// startPruning starts pruneLoop if the Log has a retention and its sink
// can delete events.
func (l *Log) startPruning() {
	p, ok := l.cfg.Sink.(larder.EventPruner)
	if !ok || l.cfg.Retention <= 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.stopPrune, l.pruneDone = cancel, make(chan struct{})
	go l.pruneLoop(ctx, p)
}

// stopPruning ends pruneLoop, cutting a batch in flight short, and waits
// for it. It may be called more than once.
func (l *Log) stopPruning() {
	if l.stopPrune != nil {
		l.stopPrune()
		<-l.pruneDone
	}
}

// firstPrune is the longest wait for the first pass after Open: a
// starting server leaves the sink's writer to its own events first, and a
// sink that another process holds makes the pass wait for its lock.
const firstPrune = time.Minute

// pruneLoop deletes the events older than the retention from the sink a
// minute after Open (or one PruneInterval, if shorter), then every
// PruneInterval, until ctx ends.
func (l *Log) pruneLoop(ctx context.Context, p larder.EventPruner) {
	defer close(l.pruneDone)
	wait := min(firstPrune, l.cfg.PruneInterval)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		l.prune(ctx, p)
		wait = jitter(l.cfg.PruneInterval)
	}
}

// prune is one pass: batches of PruneBatch until one comes back short.
// A sink that fails is tried again at the next pass.
func (l *Log) prune(ctx context.Context, p larder.EventPruner) {
	before := time.Now().Add(-l.cfg.Retention)
	total := 0
	for {
		n, err := p.PruneEvents(ctx, before, l.cfg.PruneBatch)
		total += n
		l.stats.pruned.Add(uint64(n))
		if err != nil {
			if ctx.Err() == nil {
				l.log.Warn("audit: cannot delete events past the retention; trying again later",
					"retention", l.cfg.Retention, "error", err)
			}
			break
		}
		if n < l.cfg.PruneBatch {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(prunePause):
			continue
		}
		break
	}
	if total > 0 {
		l.log.Info("audit: deleted events past the retention", "count", total, "older_than", before, "retention", l.cfg.Retention)
	}
}
