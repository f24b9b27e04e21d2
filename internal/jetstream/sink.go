package jetstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/larderfs/larder"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Defaults of SinkConfig.
const (
	DefaultMaxInFlight = 256
	DefaultAckTimeout  = 10 * time.Second
)

// SinkConfig says where a Sink publishes and how. Zero fields take the
// defaults their comments name.
type SinkConfig struct {
	Stream  string // the stream's name; "" means DefaultStream
	Subject string // the prefix of its subjects; "" means DefaultSubject

	// DuplicateWindow is how long the stream remembers the IDs of the
	// events it has taken, to drop them when they come again; 0 means
	// DefaultDuplicateWindow. See the package comment for what happens
	// beyond it.
	DuplicateWindow time.Duration

	// MaxBytes bounds the stream's size on disk; when it is reached,
	// publishing fails until the Writer has moved events out. 0 means no
	// bound.
	MaxBytes int64

	// MaxInFlight is how many publishes of the Sink may await the
	// server's acknowledgement at once, over all concurrent StoreEvents
	// calls; 0 means DefaultMaxInFlight.
	MaxInFlight int

	// AckTimeout is how long a publish waits for its acknowledgement
	// before StoreEvents gives up on the batch; 0 means
	// DefaultAckTimeout.
	AckTimeout time.Duration
}

// Sink is an audit sink that publishes events to a JetStream stream, for
// a Writer to move into PostgreSQL. It implements the StoreEvents half of
// larder.EventStore: the trail is read from PostgreSQL, not from the
// stream. It is safe for concurrent use.
type Sink struct {
	nc    *nats.Conn
	js    natsjs.JetStream
	cfg   SinkConfig
	slots chan struct{} // a token per publish in flight

	mu      sync.Mutex // held while ensuring the stream
	ensured bool       // the stream is known to exist with cfg's settings
}

// NewSink returns a Sink that publishes through nc, which the caller keeps
// and closes after the Sink's last use. It creates the stream, or updates
// it to cfg's settings; if nc is not connected yet (see Connect), it does
// so at the first StoreEvents that finds NATS reachable. An error means
// that cfg is bad, or that the server refused the stream (JetStream
// disabled, the subjects taken by another stream, a setting that cannot
// change).
func NewSink(ctx context.Context, nc *nats.Conn, cfg SinkConfig) (*Sink, error) {
	if cfg.Stream == "" {
		cfg.Stream = DefaultStream
	}
	if cfg.Subject == "" {
		cfg.Subject = DefaultSubject
	}
	if cfg.DuplicateWindow == 0 {
		cfg.DuplicateWindow = DefaultDuplicateWindow
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.AckTimeout == 0 {
		cfg.AckTimeout = DefaultAckTimeout
	}
	if err := checkNames(cfg.Stream, cfg.Subject); err != nil {
		return nil, err
	}
	if cfg.DuplicateWindow < 0 || cfg.MaxBytes < 0 || cfg.MaxInFlight < 0 || cfg.AckTimeout < 0 {
		return nil, errors.New("jetstream: negative sink setting")
	}
	js, err := natsjs.New(nc, natsjs.WithPublishAsyncTimeout(cfg.AckTimeout))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	s := &Sink{nc: nc, js: js, cfg: cfg, slots: make(chan struct{}, cfg.MaxInFlight)}
	if nc.IsConnected() {
		if err := s.EnsureStream(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// EnsureStream creates the stream, or updates it to the Sink's settings.
// StoreEvents calls it until it has succeeded once, and again after the
// server said the stream was gone.
func (s *Sink) EnsureStream(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cfg
	if _, err := s.js.CreateOrUpdateStream(ctx, streamConfig(c.Stream, c.Subject, c.DuplicateWindow, c.MaxBytes)); err != nil {
		return fmt.Errorf("jetstream: stream %s on %s.>: %w", c.Stream, c.Subject, err)
	}
	s.ensured = true
	return nil
}

// StoreEvents publishes events, in order, each as its JSON form on the
// subject of its kind with its ID as the Nats-Msg-Id, and returns nil once
// the server has acknowledged every one as stored (or as a duplicate of
// one stored within the window). Up to MaxInFlight publishes are under way
// at once. If NATS is not reachable, it fails at once; if any publish
// fails, it stops and fails, and the caller delivers the batch again
// later: the events that made it are then dropped as duplicates.
func (s *Sink) StoreEvents(ctx context.Context, events []larder.Event) error {
	if len(events) == 0 {
		return nil
	}
	if !s.nc.IsConnected() {
		return fmt.Errorf("jetstream: store %d events: not connected to NATS (%v)", len(events), s.nc.Status())
	}
	s.mu.Lock()
	ensured := s.ensured
	s.mu.Unlock()
	if !ensured {
		if err := s.EnsureStream(ctx); err != nil {
			return err
		}
	}
	err := s.publish(ctx, events)
	if isGone(err) {
		// Deleted under us (by an operator?): make it again next time.
		s.mu.Lock()
		s.ensured = false
		s.mu.Unlock()
	}
	return err
}

// publish publishes events, at most MaxInFlight at once over the Sink,
// and waits for their acknowledgements.
func (s *Sink) publish(ctx context.Context, events []larder.Event) error {
	// pending are this call's publishes in flight, oldest first; each holds
	// a token of s.slots, which release gives back.
	var pending []natsjs.PubAckFuture
	release := func(n int) {
		for range n {
			<-s.slots
		}
		pending = pending[n:]
	}
	// A call that gives up leaves its publishes in flight to time out
	// (AckTimeout), but gives their tokens back at once: for that long,
	// more than MaxInFlight may be under way.
	defer func() { release(len(pending)) }()
	failed := func(i int, err error) error {
		return fmt.Errorf("jetstream: store %d events: event %d (%s): %w", len(events), i, events[i].ID, err)
	}
	// await waits for the oldest publish in flight, and releases it.
	done := 0 // events whose publish is acknowledged
	await := func() error {
		defer release(1)
		select {
		case <-pending[0].Ok():
			done++
			return nil
		case err := <-pending[0].Err():
			return failed(done, err)
		case <-ctx.Done():
			return failed(done, ctx.Err())
		}
	}

	for i := range events {
		e := &events[i]
		if e.ID.IsZero() {
			return larder.Errorf(larder.EINVALID, "store events: event %d of %d (%s at %v) has no id", i, len(events), e.Kind, e.Time)
		}
		data, err := e.MarshalJSON()
		if err != nil {
			return failed(i, err)
		}
		msg := &nats.Msg{
			Subject: subjectFor(s.cfg.Subject, string(e.Kind)),
			Data:    data,
			Header: nats.Header{
				natsjs.MsgIDHeader:          []string{e.ID.String()},
				natsjs.ExpectedStreamHeader: []string{s.cfg.Stream},
			},
		}
		// Take a token, or make one free by waiting for this call's
		// oldest publish; with none of its own in flight, wait for
		// another call's.
		for acquired := false; !acquired; {
			select {
			case s.slots <- struct{}{}:
				acquired = true
				continue
			default:
			}
			if len(pending) > 0 {
				if err := await(); err != nil {
					return err
				}
				continue
			}
			select {
			case s.slots <- struct{}{}:
				acquired = true
			case <-ctx.Done():
				return failed(i, ctx.Err())
			}
		}
		f, err := s.js.PublishMsgAsync(msg)
		if err != nil {
			<-s.slots
			return failed(i, err)
		}
		pending = append(pending, f)
	}
	for len(pending) > 0 {
		if err := await(); err != nil {
			return err
		}
	}
	return nil
}
