package jetstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/larderfs/larder"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Defaults of WriterConfig.
const (
	DefaultDurable    = "larder-audit-writer"
	DefaultBatch      = 500
	DefaultMaxWait    = time.Second
	DefaultAckWait    = 30 * time.Second
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 10 * time.Second
)

// WriterConfig says where a Writer reads and how. Zero fields take the
// defaults their comments name.
type WriterConfig struct {
	Stream  string // the stream's name; "" means DefaultStream
	Subject string // the prefix of its subjects, to create it if absent; "" means DefaultSubject

	// Durable names the consumer, which remembers on the server what has
	// been acknowledged; "" means DefaultDurable. Writers that share it
	// share the work.
	Durable string

	// Batch is how many events a Writer stores in one transaction, at
	// most; 0 means DefaultBatch.
	Batch int

	// MaxWait is how long a Writer waits for a batch to fill up before it
	// stores what it has: the longest an event waits in a quiet stream.
	// 0 means DefaultMaxWait.
	MaxWait time.Duration

	// AckWait is how long the server waits for the acknowledgement of a
	// message before it delivers it again, to this Writer or another
	// sharing the consumer; 0 means DefaultAckWait. While it retries a
	// batch, a Writer tells the server it is still working on it.
	AckWait time.Duration

	// MinBackoff and MaxBackoff bound the wait between attempts while
	// PostgreSQL or NATS fails: it starts at MinBackoff and doubles up to
	// MaxBackoff, and to a third of AckWait at most. 0 means
	// DefaultMinBackoff and DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration

	// Logger receives the Writer's warnings and errors; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Writer moves events from a JetStream stream into a larder.EventStore
// (PostgreSQL's, for "larder audit-writer"), in batches, through a durable
// pull consumer. It acknowledges a message only after the batch holding
// its event is stored, so that nothing is lost if it stops or dies at any
// point; what it had not acknowledged is delivered again, and the store's
// idempotence keeps it from being stored twice. Several Writers may share
// one consumer.
type Writer struct {
	nc    *nats.Conn
	js    natsjs.JetStream
	store larder.EventStore
	cfg   WriterConfig
	log   *slog.Logger

	cons natsjs.Consumer // nil until set up, and again after it was found gone

	moved, batches, retries, rejected, redelivered atomic.Int64
}

// WriterStats counts what a Writer has done since it was made.
type WriterStats struct {
	Moved       int64 // events stored and acknowledged
	Batches     int64 // batches stored
	Retries     int64 // failed attempts to store a batch, each followed by a backoff
	Rejected    int64 // messages that held no event, terminated so that they are not delivered again
	Redelivered int64 // events that had been delivered before, to this Writer or another
}

// NewWriter returns a Writer that reads through nc, which the caller keeps
// and closes after Run has returned, and stores into store. It checks cfg
// only: Run sets up the stream and the consumer, and waits for NATS if it
// is not reachable yet.
func NewWriter(nc *nats.Conn, store larder.EventStore, cfg WriterConfig) (*Writer, error) {
	if cfg.Stream == "" {
		cfg.Stream = DefaultStream
	}
	if cfg.Subject == "" {
		cfg.Subject = DefaultSubject
	}
	if cfg.Durable == "" {
		cfg.Durable = DefaultDurable
	}
	if cfg.Batch == 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.MaxWait == 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	if cfg.AckWait == 0 {
		cfg.AckWait = DefaultAckWait
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	// InProgress after each failed attempt keeps the server from handing
	// the batch to another Writer, as long as an attempt and a backoff
	// together stay within AckWait: attempts get half of it, backoffs a
	// third.
	cfg.MaxBackoff = min(cfg.MaxBackoff, cfg.AckWait/3)
	cfg.MinBackoff = min(cfg.MinBackoff, cfg.MaxBackoff)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := checkNames(cfg.Stream, cfg.Subject); err != nil {
		return nil, err
	}
	if err := checkNames(cfg.Durable, "x"); err != nil {
		return nil, fmt.Errorf("jetstream: bad consumer name %q", cfg.Durable)
	}
	if cfg.Batch < 0 || cfg.MaxWait < 0 || cfg.MinBackoff <= 0 {
		return nil, errors.New("jetstream: negative writer setting")
	}
	js, err := natsjs.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return &Writer{nc: nc, js: js, store: store, cfg: cfg, log: cfg.Logger}, nil
}

// Stats returns the Writer's counts so far.
func (w *Writer) Stats() WriterStats {
	return WriterStats{
		Moved: w.moved.Load(), Batches: w.batches.Load(), Retries: w.retries.Load(),
		Rejected: w.rejected.Load(), Redelivered: w.redelivered.Load(),
	}
}

// Run moves events until ctx ends, then returns nil. Failures of NATS or
// of the store do not end it: it logs them and tries again, backing off,
// and acknowledges nothing that it has not stored. When ctx ends, the
// messages it holds unstored go back to the stream, for the next Writer.
// Run one Run of a Writer at a time; for more throughput or availability,
// run more Writers on the same consumer.
func (w *Writer) Run(ctx context.Context) error {
	backoff := w.cfg.MinBackoff
	fail := func(msg string, err error) {
		w.log.Warn(msg, "stream", w.cfg.Stream, "consumer", w.cfg.Durable, "err", err, "retry_in", backoff)
		sleep(ctx, backoff)
		backoff = min(2*backoff, w.cfg.MaxBackoff)
	}
	for ctx.Err() == nil {
		if w.cons == nil {
			if err := w.setup(ctx); err != nil {
				if ctx.Err() == nil {
					fail("audit writer: cannot set up the consumer", err)
				}
				continue
			}
			w.log.Info("audit writer: consuming", "stream", w.cfg.Stream, "consumer", w.cfg.Durable, "batch", w.cfg.Batch)
			backoff = w.cfg.MinBackoff
		}
		msgs, err := w.fetch(ctx)
		if len(msgs) > 0 {
			w.move(ctx, msgs)
		}
		switch {
		case err == nil:
			backoff = w.cfg.MinBackoff
		case ctx.Err() != nil:
		case isGone(err):
			w.cons = nil
			fail("audit writer: the consumer is gone; making it again", err)
		default:
			fail("audit writer: cannot fetch from the stream", err)
		}
	}
	return nil
}

// setup creates the stream if it does not exist, and creates the consumer
// or updates it to the Writer's settings. It leaves an existing stream as
// it is: its settings are the Sinks'.
func (w *Writer) setup(ctx context.Context) error {
	if !w.nc.IsConnected() {
		return fmt.Errorf("not connected to NATS (%v)", w.nc.Status())
	}
	c := w.cfg
	if _, err := w.js.Stream(ctx, c.Stream); errors.Is(err, natsjs.ErrStreamNotFound) {
		_, err = w.js.CreateStream(ctx, streamConfig(c.Stream, c.Subject, DefaultDuplicateWindow, 0))
		if err != nil && !errors.Is(err, natsjs.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("create stream %s: %w", c.Stream, err)
		}
	} else if err != nil {
		return fmt.Errorf("stream %s: %w", c.Stream, err)
	}
	cons, err := w.js.CreateOrUpdateConsumer(ctx, c.Stream, natsjs.ConsumerConfig{
		Durable:       c.Durable,
		Description:   "larder audit-writer: moves the audit trail into PostgreSQL",
		AckPolicy:     natsjs.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxDeliver:    -1, // never give up on an event
		MaxAckPending: max(4*c.Batch, 1000),
		DeliverPolicy: natsjs.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("consumer %s on stream %s: %w", c.Durable, c.Stream, err)
	}
	w.cons = cons
	return nil
}

// fetch returns up to a batch of messages, waiting up to MaxWait for the
// batch to fill. It may return messages and an error both.
//
// The wait is the server's (FetchMaxWait), not a context's: the server
// ends the pull with a status, after which no message of it is under way.
// A pull ended by the client's context instead can lose a message the
// server sent just before: delivered, so not sent again until AckWait,
// but never seen. So a Run whose ctx ends notices at the end of the
// fetch, within MaxWait.
func (w *Writer) fetch(ctx context.Context) ([]natsjs.Msg, error) {
	if !w.nc.IsConnected() {
		return nil, fmt.Errorf("not connected to NATS (%v)", w.nc.Status())
	}
	batch, err := w.cons.Fetch(w.cfg.Batch, natsjs.FetchMaxWait(w.cfg.MaxWait))
	if err != nil {
		return nil, err
	}
	var msgs []natsjs.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	// A batch that did not fill within MaxWait ends without an error.
	return msgs, batch.Error()
}

// move stores the events of msgs and acknowledges them, trying until the
// store succeeds or ctx ends.
func (w *Writer) move(ctx context.Context, msgs []natsjs.Msg) {
	events := make([]larder.Event, 0, len(msgs))
	held := msgs[:0] // the messages of events, in the same order
	for _, m := range msgs {
		var e larder.Event
		if err := e.UnmarshalJSON(m.Data()); err != nil || e.ID.IsZero() {
			// Storing it can never succeed: terminate it, or it would
			// come back for ever and hold up every batch it is in.
			w.log.Error("audit writer: a message holds no event; dropping it",
				"stream", w.cfg.Stream, "subject", m.Subject(), "err", err, "data", truncate(m.Data(), 200))
			m.Term()
			w.rejected.Add(1)
			continue
		}
		e.Seq = 0 // the store gives its own
		if md, err := m.Metadata(); err == nil && md.NumDelivered > 1 {
			w.redelivered.Add(1)
		}
		events = append(events, e)
		held = append(held, m)
	}
	if len(events) == 0 {
		return
	}

	backoff := w.cfg.MinBackoff
	for attempt := 1; ; attempt++ {
		// Bounded, so that a hung connection cannot outlast AckWait.
		sctx, cancel := context.WithTimeout(ctx, w.cfg.AckWait/2)
		err := w.store.StoreEvents(sctx, events)
		cancel()
		if err == nil {
			if attempt > 1 {
				w.log.Info("audit writer: storing works again", "attempts", attempt, "events", len(events))
			}
			break
		}
		if ctx.Err() != nil {
			w.giveBack(held)
			return
		}
		w.retries.Add(1)
		w.log.Warn("audit writer: cannot store a batch; keeping it and trying again",
			"events", len(events), "attempt", attempt, "err", err, "retry_in", backoff)
		for _, m := range held {
			m.InProgress()
		}
		if !sleep(ctx, backoff) {
			w.giveBack(held)
			return
		}
		backoff = min(2*backoff, w.cfg.MaxBackoff)
	}
	// Stored: acknowledge even if ctx has ended meanwhile. A lost
	// acknowledgement only means the events come again, and are skipped.
	for _, m := range held {
		m.Ack()
	}
	w.moved.Add(int64(len(held)))
	w.batches.Add(1)
}

// giveBack asks the server to deliver msgs again at once, rather than
// after AckWait: the Writer stops without having stored them.
func (w *Writer) giveBack(msgs []natsjs.Msg) {
	for _, m := range msgs {
		m.Nak()
	}
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
