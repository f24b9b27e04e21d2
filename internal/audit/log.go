package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/larderfs/larder"
)

// Sink is where the pipeline delivers events. larder.EventStore satisfies
// it.
//
// StoreEvents must be idempotent by event ID: delivery is at least once,
// and an event handed over again (after a crash, or after a call that
// failed once the events were stored) must be stored once. It returns nil
// only when every event is stored durably. An error means "try again
// later": the same batch is offered again, with backoff, until it is taken,
// so a sink must accept any Event (a field too long for a column is the
// sink's to cut, not a reason to refuse). StoreEvents must not keep the
// slice after it returns.
type Sink interface {
	StoreEvents(ctx context.Context, events []larder.Event) error
}

var _ Sink = larder.EventStore(nil)

// FullPolicy says what Record does with an event of an asynchronous kind
// when the queue is full.
type FullPolicy int

const (
	// Wait waits up to Config.FullWait for room; if none comes, the event
	// is not taken.
	Wait FullPolicy = iota
	// Drop does not take the event, at once.
	Drop
	// Block waits as long as it takes: nothing is lost, and the request
	// that records the event is slowed to the pace of the disk.
	Block
)

// String returns the policy's name: "wait", "drop" or "block".
func (p FullPolicy) String() string {
	switch p {
	case Wait:
		return "wait"
	case Drop:
		return "drop"
	case Block:
		return "block"
	}
	return fmt.Sprintf("FullPolicy(%d)", int(p))
}

// ParseFullPolicy parses the name that String returns.
func ParseFullPolicy(s string) (FullPolicy, error) {
	for _, p := range []FullPolicy{Wait, Drop, Block} {
		if s == p.String() {
			return p, nil
		}
	}
	return 0, fmt.Errorf("audit: unknown full-queue policy %q (want wait, drop or block)", s)
}

// Config configures a Log. The zero value of each field but Dir means its
// default.
type Config struct {
	// Dir is the spool folder, such as DATA/audit. Each Log writes into
	// a subfolder of its own; several processes may share Dir.
	Dir string

	// Sink is where events go. Nil leaves them in the spool, for a later
	// process with a sink to deliver; a Log without a sink adopts no
	// other folder.
	Sink Sink

	// Logger receives the pipeline's state changes and damage reports;
	// nil discards them.
	Logger *slog.Logger

	// Server is stamped on events that have no Server.
	Server string

	// QueueSize is how many events the queue in memory holds; default
	// 65536. Each queued event takes about 200 bytes, and after a burst
	// the queue and the writer's batch each keep the room they grew to:
	// up to about 26 MiB at the default.
	QueueSize int

	// Full is what Record does with an event of an asynchronous kind when
	// the queue is full; default Wait.
	Full FullPolicy

	// FullWait is how long the Wait policy waits; default 5ms.
	FullWait time.Duration

	// CommitInterval is the longest an event of an asynchronous kind
	// waits for its group commit; default 2ms. A batch of such events is
	// committed once the interval since its first event has passed (or it
	// is full), so that the events of that interval share one fdatasync;
	// a batch with an event of a sync kind is committed as soon as the
	// queue runs empty. It is also the writer's tick: while events keep
	// coming, the writer looks for them that often rather than being woken
	// by each (see queue.go); after a quiet second it parks and the next
	// event wakes it. Events of sync kinds wake the writer at once.
	CommitInterval time.Duration

	// SyncKinds lists the kinds whose Record returns only once the event
	// is fsync'd (like a database's synchronous commit), or with an
	// error. Such events wait for room in the queue whatever Full says,
	// up to the end of Record's context.
	SyncKinds []larder.EventKind

	// SegmentSize is the size at which a spool segment is closed and the
	// next begun; default 16 MiB, at least 4 KiB.
	SegmentSize int64

	// MaxSpool bounds the bytes this Log holds not yet delivered (its own
	// and those it adopted); default 1 GiB. On disk, each folder may hold
	// up to one segment more: a segment is deleted once all of it is
	// delivered. When the spool reaches it,
	// new events are not taken (counted, and logged at most once a
	// minute) and the oldest are kept: an audit trail's earlier records
	// are the evidence, and noise must not flush them. The bound is
	// crossed by at most what the queue held when it was reached.
	MaxSpool int64

	// DeliverBatch is the most events handed to the sink at once;
	// default 1000.
	DeliverBatch int

	// DeliverTimeout bounds one StoreEvents call; default 30s.
	DeliverTimeout time.Duration

	// DeliverLinger is how long the deliverer waits for more events after
	// handing the sink a batch smaller than DeliverBatch; default 100ms, a
	// negative value none. The events wait durable in the spool; without
	// the wait, a busy server hands the sink a few events per spool
	// commit, and the sink's per-transaction cost (a database commit and
	// its fsync) is paid hundreds of times a second. In SQLite that cost
	// is about 40 rows' worth: at 4,000 events a second, batches of 400
	// cost 0.77 times the CPU per event of batches of 100 (25 ms).
	DeliverLinger time.Duration

	// NoAdopt leaves other Logs' folders alone: for a short-lived process
	// (an administrator's command) that must deliver its own events, not
	// a crashed server's backlog.
	NoAdopt bool

	// Retention is how long events are kept in a sink that can delete
	// them (a larder.EventPruner: the SQL sinks); zero keeps every event.
	// The Log deletes older ones a minute after Open (or one
	// PruneInterval, if shorter), then every PruneInterval (default an
	// hour), PruneBatch at a time (default 500) with a pause between
	// batches, so that a large backlog never holds the sink's writer for
	// long.
	Retention     time.Duration
	PruneInterval time.Duration
	PruneBatch    int

	// RetryMin and RetryMax bound the backoff between deliveries that
	// failed, and between attempts to write the spool after a disk
	// error; defaults 100ms and 30s. The wait doubles from RetryMin up to
	// RetryMax, each drawn at random from its upper half.
	RetryMin, RetryMax time.Duration
}

// Errors that Record returns for events of sync kinds. Their code is
// larder.EUNAVAILABLE: the server cannot vouch for the event now.
var (
	ErrClosed    = &larder.Error{Code: larder.EUNAVAILABLE, Message: "audit log is closed"}
	ErrSpoolFull = &larder.Error{Code: larder.EUNAVAILABLE, Message: "audit spool is full"}
	ErrQueueFull = &larder.Error{Code: larder.EUNAVAILABLE, Message: "audit queue is full"}
)

// item is one queued event, with the channel its Record waits on if its
// kind is synchronous.
type item struct {
	ev   larder.Event
	done chan error
}

// hooks lets tests stop the writer at a known point.
type hooks struct {
	beforeCommit func() // called by the writer before each group commit
	afterSync    func() // called by the writer after each fdatasync, before the deliverer is told
}

// Log is the audit pipeline: Record hands events to a bounded queue; one
// writer goroutine appends them to the spool with group commit; one
// deliverer goroutine hands what is durable to the sink and deletes what
// the sink confirmed.
type Log struct {
	cfg    Config
	log    *slog.Logger
	hooks  hooks
	q      queue
	syncK  []larder.EventKind
	waitCh sync.Pool // of chan error, for sync Records

	giveUpOnce sync.Once
	giveUp     chan struct{}      // closed when Close's context ends
	cancelSink context.CancelFunc // cancels the StoreEvents in flight, on giving up
	sinkCtx    context.Context
	writerDone chan struct{}
	done       chan struct{} // every goroutine has ended

	// The durable end of the own folder, published by the writer.
	pos struct {
		sync.Mutex
		seq    uint64           // the segment being written
		off    int64            // its durable end
		sealed map[uint64]int64 // the final ends of segments the writer left
	}
	wake chan struct{} // cap 1: the writer published a new durable end

	own  ownFolder     // the writer's state
	dl   deliverer     // the deliverer's state
	poke chan struct{} // cap 1: rescan the folder for folders to adopt now

	rotate atomic.Bool // the deliverer found damage in the segment being written

	stats    counters
	nextWarn atomic.Int64 // when the next "not taken" warning may be logged

	stopPrune context.CancelFunc // ends pruneLoop; nil without retention
	pruneDone chan struct{}      // closed when pruneLoop has ended
}

// counters are the atomics behind Stats.
type counters struct {
	full, spoolFull, closed, failed          atomic.Uint64
	durable, commits, cut, writeErrors       atomic.Uint64
	delivered, deliveryFailures, retries     atomic.Uint64
	adopted, pruned                          atomic.Uint64
	spoolBytes, segments, tornBytes, corrupt atomic.Int64
	sinkDown, spoolFailing                   atomic.Bool
	lastErr                                  atomic.Pointer[deliveryError]
}

type deliveryError struct {
	msg string
	at  time.Time
}

// Stats is a snapshot of a Log's counters, for metrics. Counters count
// from Open.
type Stats struct {
	QueueDepth int // events in the queue now
	QueueCap   int

	Taken    uint64   // events the queue took
	NotTaken NotTaken // events Record did not take, by reason
	Failed   uint64   // events taken but lost: the spool could not be written and Close gave up

	Durable     uint64 // events fsync'd to the spool
	Commits     uint64 // group commits: one write and one fdatasync each
	WriteErrors uint64 // spool writes, syncs or segment creations that failed (and were retried)
	CutFields   uint64 // events with a field longer than 16 KiB, cut to that

	Delivered        uint64 // events the sink confirmed, own and adopted
	DeliveryFailures uint64 // StoreEvents calls that failed
	DeliveryRetries  uint64 // StoreEvents calls that offered a batch again
	SinkUp           bool   // false from a failed delivery until one succeeds
	LastDeliveryErr  string // the last delivery error, "" if none
	LastDeliveryAt   time.Time

	SpoolBytes    int64  // bytes held not yet delivered, own and adopted
	SpoolMax      int64  // Config.MaxSpool: while SpoolBytes is at it, events are refused
	SpoolFailing  bool   // the last write of the spool failed: events wait in the queue until one succeeds
	SpoolSegments int64  // how many segments that is
	Adopted       uint64 // folders of other Logs adopted
	Pruned        uint64 // events deleted from the sink for Config.Retention
	TornBytes     int64  // bytes cut from torn segment tails
	CorruptBytes  int64  // bytes of damaged segments set aside in DIR/quarantine
}

// NotTaken counts the events that Record did not take, by reason.
type NotTaken struct {
	Full      uint64 // the queue was full (policy Wait or Drop; or a sync event's context ended)
	SpoolFull uint64 // the spool had reached MaxSpool
	Closed    uint64 // the Log was closed
}

// Defaults.
const (
	defaultQueueSize      = 65536
	defaultFullWait       = 5 * time.Millisecond
	defaultCommitInterval = 2 * time.Millisecond
	defaultSegmentSize    = 16 << 20
	defaultMaxSpool       = 1 << 30
	defaultDeliverBatch   = 1000
	defaultDeliverTimeout = 30 * time.Second
	defaultDeliverLinger  = 100 * time.Millisecond
	defaultRetryMin       = 100 * time.Millisecond
	defaultRetryMax       = 30 * time.Second
	minSegmentSize        = 4 << 10
	adoptInterval         = time.Minute // how often the folder is rescanned for folders to adopt
	warnInterval          = time.Minute // the least time between two "not taken" warnings
	defaultPruneInterval  = time.Hour
	defaultPruneBatch     = 500
)

func (c *Config) setDefaults() error {
	if c.Dir == "" {
		return errors.New("audit: no spool folder")
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if c.QueueSize == 0 {
		c.QueueSize = defaultQueueSize
	}
	def(&c.FullWait, defaultFullWait)
	def(&c.CommitInterval, defaultCommitInterval)
	def(&c.DeliverTimeout, defaultDeliverTimeout)
	def(&c.DeliverLinger, defaultDeliverLinger)
	def(&c.RetryMin, defaultRetryMin)
	def(&c.RetryMax, defaultRetryMax)
	def(&c.PruneInterval, defaultPruneInterval)
	if c.PruneBatch == 0 {
		c.PruneBatch = defaultPruneBatch
	}
	if c.SegmentSize == 0 {
		c.SegmentSize = defaultSegmentSize
	}
	if c.MaxSpool == 0 {
		c.MaxSpool = defaultMaxSpool
	}
	if c.DeliverBatch == 0 {
		c.DeliverBatch = defaultDeliverBatch
	}
	switch {
	case c.QueueSize < 0, c.FullWait < 0, c.CommitInterval < 0, c.DeliverTimeout < 0,
		c.RetryMin < 0, c.MaxSpool < 0, c.DeliverBatch < 0, c.Retention < 0, c.PruneInterval < 0, c.PruneBatch < 0:
		return errors.New("audit: a negative size or duration in the configuration")
	case c.Full < Wait || c.Full > Block:
		return fmt.Errorf("audit: unknown full-queue policy %d", c.Full)
	case c.SegmentSize < minSegmentSize:
		return fmt.Errorf("audit: segment size %d is below the minimum of %d", c.SegmentSize, minSegmentSize)
	case c.RetryMax < c.RetryMin:
		return fmt.Errorf("audit: RetryMax %v is below RetryMin %v", c.RetryMax, c.RetryMin)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Open starts the pipeline on the spool folder cfg.Dir: it creates the
// Log's own subfolder, and, if there is a sink, adopts every other
// subfolder no running Log holds (those of crashed servers and of commands
// that exited before they could deliver), cutting their torn tails; then it
// starts the writer and the deliverer.
func Open(cfg Config) (*Log, error) { return openLog(cfg, hooks{}) }

func openLog(cfg Config, h hooks) (*Log, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	l := &Log{
		cfg:        cfg,
		log:        cfg.Logger,
		hooks:      h,
		syncK:      append([]larder.EventKind(nil), cfg.SyncKinds...),
		giveUp:     make(chan struct{}),
		writerDone: make(chan struct{}),
		done:       make(chan struct{}),
		wake:       make(chan struct{}, 1),
		poke:       make(chan struct{}, 1),
	}
	l.q.init(cfg.QueueSize, cfg.CommitInterval)
	l.waitCh.New = func() any { return make(chan error, 1) }
	l.pos.sealed = map[uint64]int64{}
	l.sinkCtx, l.cancelSink = context.WithCancel(context.Background())
	if err := l.createOwn(); err != nil {
		l.cancelSink()
		return nil, err
	}
	l.dl.init(l)
	if cfg.Sink != nil {
		l.adopt()
	}
	go l.writeLoop()
	go l.deliverLoop()
	l.startPruning()
	return l, nil
}

// Record hands ev to the pipeline, filling its ID, Time and Server when
// they are zero.
//
// For an asynchronous kind it returns nil at once: the event is queued, or,
// when it cannot be (the queue is full under Config.Full, the spool is at
// MaxSpool, the Log is closed), counted in Stats.NotTaken and logged at
// most once a minute, never silently dropped. It costs about a hundred
// nanoseconds, allocates nothing and makes no system call (when the queue
// has room).
//
// For a kind in Config.SyncKinds it returns once the event is fsync'd, or
// an error: ErrClosed, ErrSpoolFull, ErrQueueFull (ctx ended before there
// was room), a spool write error, or ctx's error if ctx ended while the
// event waited for its commit, in which case it may still be written.
//
// Only sync kinds heed ctx: an event of an asynchronous kind is recorded
// the same whether or not its request was cancelled (an audit trail wants
// the conn.close of a connection whose context just ended).
func (l *Log) Record(ctx context.Context, ev larder.Event) error {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	if ev.ID.IsZero() {
		ev.ID = larder.NewEventID(ev.Time)
	}
	if ev.Server == "" {
		ev.Server = l.cfg.Server
	}
	for _, k := range l.syncK {
		if k == ev.Kind {
			return l.recordSync(ctx, &ev)
		}
	}
	it := item{ev: ev}
	q := &l.q
	q.mu.Lock()
	switch {
	case q.closed:
		q.mu.Unlock()
		l.notTaken(&l.stats.closed)
		return nil
	case l.stats.spoolBytes.Load() >= l.cfg.MaxSpool:
		q.mu.Unlock()
		l.notTaken(&l.stats.spoolFull)
		return nil
	case q.tryPut(&it):
		return nil
	}
	taken := false
	switch l.cfg.Full {
	case Block:
		taken = waitPut[struct{}](q, &it, nil)
	case Wait:
		t := time.NewTimer(l.cfg.FullWait)
		taken = waitPut(q, &it, t.C)
		t.Stop()
	default:
		q.mu.Unlock()
	}
	if !taken {
		l.notTaken(&l.stats.full)
	}
	return nil
}

// recordSync records an event of a sync kind and waits for its commit.
func (l *Log) recordSync(ctx context.Context, ev *larder.Event) error {
	done := l.waitCh.Get().(chan error)
	it := item{ev: *ev, done: done}
	q := &l.q
	q.mu.Lock()
	var err error
	switch {
	case q.closed:
		q.mu.Unlock()
		err = ErrClosed
		l.notTaken(&l.stats.closed)
	case l.stats.spoolBytes.Load() >= l.cfg.MaxSpool:
		q.mu.Unlock()
		err = ErrSpoolFull
		l.notTaken(&l.stats.spoolFull)
	case q.tryPut(&it):
	// An event that must not be lost waits for room whatever the
	// policy, as long as its caller is willing to wait.
	case !waitPut(q, &it, ctx.Done()):
		err = ErrQueueFull
		l.notTaken(&l.stats.full)
	}
	if err != nil {
		l.waitCh.Put(done)
		return err
	}
	select {
	case err = <-done:
	case <-ctx.Done():
		select {
		case err = <-done:
		default:
			// The writer still holds done and will send on it: it
			// cannot go back to the pool.
			return fmt.Errorf("audit: event %v not confirmed durable: %w", ev.ID, ctx.Err())
		}
	}
	l.waitCh.Put(done)
	return err
}

// notTaken counts an event not taken, and warns at most once a minute.
func (l *Log) notTaken(c *atomic.Uint64) {
	c.Add(1)
	now := time.Now().UnixNano()
	next := l.nextWarn.Load()
	if now < next || !l.nextWarn.CompareAndSwap(next, now+int64(warnInterval)) {
		return
	}
	s := &l.stats
	l.log.Warn("audit: events not taken (counts since start)",
		"queue_full", s.full.Load(), "spool_full", s.spoolFull.Load(), "closed", s.closed.Load(),
		"spool_bytes", s.spoolBytes.Load(), "max_spool", l.cfg.MaxSpool)
}

// Close stops taking events (later Records count as not taken, reason
// closed), writes what the queue holds into the spool and syncs it, then
// delivers what is pending until everything is delivered or ctx ends, and
// stops every goroutine. What is not delivered stays in the spool for the
// next Log to deliver.
//
// The queue is written out whatever ctx says: those events were promised
// to the disk. ctx bounds the delivery, and the retries after a disk
// error; if it ends first, Close returns its error, and the goroutines end
// as soon as the call they are in returns (a sink must honour its
// context). Close may be called more than once.
func (l *Log) Close(ctx context.Context) error {
	stop := context.AfterFunc(ctx, l.abandon)
	defer stop()
	l.stopPruning()
	l.q.close()
	<-l.writerDone
	select {
	case <-l.done:
	case <-ctx.Done():
		l.abandon()
	}
	select {
	case <-l.giveUp:
		return ctx.Err() // it came to an end before the work did
	default:
		return nil
	}
}

// abandon gives up: no more retries of delivery or of spool writes.
func (l *Log) abandon() {
	l.giveUpOnce.Do(func() {
		close(l.giveUp)
		l.cancelSink()
	})
}

// Stats returns a snapshot of the counters.
func (l *Log) Stats() Stats {
	s := &l.stats
	depth, taken := l.q.stats()
	st := Stats{
		QueueDepth: depth,
		QueueCap:   l.q.limit,
		Taken:      taken,
		NotTaken: NotTaken{
			Full:      s.full.Load(),
			SpoolFull: s.spoolFull.Load(),
			Closed:    s.closed.Load(),
		},
		Failed:           s.failed.Load(),
		Durable:          s.durable.Load(),
		Commits:          s.commits.Load(),
		WriteErrors:      s.writeErrors.Load(),
		CutFields:        s.cut.Load(),
		Delivered:        s.delivered.Load(),
		DeliveryFailures: s.deliveryFailures.Load(),
		DeliveryRetries:  s.retries.Load(),
		SinkUp:           !s.sinkDown.Load(),
		SpoolBytes:       s.spoolBytes.Load(),
		SpoolSegments:    s.segments.Load(),
		SpoolMax:         l.cfg.MaxSpool,
		SpoolFailing:     s.spoolFailing.Load(),
		Adopted:          s.adopted.Load(),
		Pruned:           s.pruned.Load(),
		TornBytes:        s.tornBytes.Load(),
		CorruptBytes:     s.corrupt.Load(),
	}
	if e := s.lastErr.Load(); e != nil {
		st.LastDeliveryErr, st.LastDeliveryAt = e.msg, e.at
	}
	return st
}

// Dir returns the Log's own subfolder of the spool.
func (l *Log) Dir() string { return l.own.dir }

// writerID names a Log's folder: the UTC time and the process id, so that
// folders sort by age.
func writerID(t time.Time, pid int) string {
	return fmt.Sprintf("%s-%d", t.UTC().Format("20060102T150405.000000000Z"), pid)
}

// isWriterID reports whether name could be a folder writerID made.
func isWriterID(name string) bool {
	ts, pid, ok := strings.Cut(name, "-")
	if !ok || pid == "" || strings.Trim(pid, "0123456789") != "" {
		return false
	}
	_, err := time.Parse("20060102T150405.000000000Z", ts)
	return err == nil
}

// segPath names segment seq in folder dir.
func segPath(dir string, seq uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%012d.seg", seq))
}
