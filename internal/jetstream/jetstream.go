// Package jetstream carries larder's audit trail through NATS JetStream,
// so that several larder servers feed one trail: each server's audit
// pipeline delivers its events to a Sink, which publishes them to a
// stream, and "larder audit-writer" runs a Writer, which moves them from
// the stream into PostgreSQL (internal/postgres's EventStore).
//
// # Exactly once, end to end
//
// Delivery is at least once at every hop, and each hop drops what it has
// seen, by event ID:
//
//   - A server's spool delivers a batch again when it is not sure the
//     Sink took it (a crash, an outage of NATS). The Sink publishes each
//     event with the Nats-Msg-Id header set to the event's ID, and the
//     stream drops a message whose ID it has stored within its duplicate
//     window. That window is an hour by default (NATS's own default is two
//     minutes), so that a batch delivered again after an outage of up to
//     an hour is in the stream once.
//   - Beyond the window the stream takes the event a second time: after
//     an outage longer than the window, and also after a restart of
//     nats-server, which rebuilds its record of IDs from the messages it
//     still holds, not from those the Writer has already consumed. The
//     Writer's insert skips an event whose ID the table holds (ON CONFLICT
//     DO NOTHING), so the table holds every event once all the same: the
//     window saves work and stream space, it is not what makes the table
//     exact.
//   - The Writer acknowledges a message only after the transaction that
//     stored its event has committed. If it dies in between, the stream
//     delivers the message again after the consumer's AckWait, and the
//     insert skips it.
//
// # The stream
//
// One stream (DefaultStream) takes the subjects below a prefix
// (DefaultSubject), an event of kind K going to "<prefix>.<K>". It keeps
// messages in files, until the Writer has acknowledged them (work-queue
// retention): while no Writer runs, the stream holds the trail. When a
// size limit is set and reached, the stream refuses new messages (discard
// new), so that the Sinks fail and the servers' spools keep the events,
// rather than dropping the oldest ones.
//
// The package needs nats-server 2.9 or later with JetStream enabled.
package jetstream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Defaults of SinkConfig and WriterConfig.
const (
	DefaultStream          = "LARDER_AUDIT"
	DefaultSubject         = "larder.audit"
	DefaultDuplicateWindow = time.Hour
)

// Connect connects to the NATS servers that url names (several separated
// by commas), as name, which NATS's monitoring shows. The connection keeps
// reconnecting for as long as it is open; if no server answers at first,
// Connect still returns it, not yet connected, and it keeps trying in the
// background: a larder server then starts all the same, and its spool holds
// the events until NATS is back. The caller closes it.
//
// While it is disconnected, publishing fails at once, rather than going to
// the client's reconnect buffer: a message there would be sent after
// StoreEvents had reported it failed, and the spool, which delivers it
// again anyway, is the one place that keeps what is not confirmed.
func Connect(url, name string) (*nats.Conn, error) {
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectBufSize(-1),
	)
	if err != nil {
		return nil, &redactedError{
			msg: "jetstream: connect to " + RedactURLs(url) + ": " + redact(err.Error(), url),
			err: err,
		}
	}
	return nc, nil
}

// RedactURLs returns urls, NATS server URLs separated by commas, with
// their passwords masked, for logs and messages.
func RedactURLs(urls string) string {
	return redact(urls, urls)
}

// redact masks in msg every password that the URLs of urls hold, found in
// the text itself, as a URL that does not parse may hold one too.
func redact(msg, urls string) string {
	for u := range strings.SplitSeq(urls, ",") {
		_, rest, ok := strings.Cut(strings.TrimSpace(u), "://")
		if !ok {
			continue
		}
		userinfo, _, ok := strings.Cut(rest, "@")
		if !ok {
			continue
		}
		if _, pw, ok := strings.Cut(userinfo, ":"); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	return msg
}

// redactedError is an error whose text has passwords masked.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// streamConfig returns the configuration of the stream named name, on the
// subjects below subject. maxBytes 0 means no size limit.
func streamConfig(name, subject string, window time.Duration, maxBytes int64) natsjs.StreamConfig {
	if maxBytes == 0 {
		maxBytes = -1
	}
	return natsjs.StreamConfig{
		Name:        name,
		Description: "larder's audit trail, on its way to PostgreSQL",
		Subjects:    []string{subject + ".>"},
		Retention:   natsjs.WorkQueuePolicy,
		Storage:     natsjs.FileStorage,
		Discard:     natsjs.DiscardNew,
		MaxBytes:    maxBytes,
		Duplicates:  window,
	}
}

// checkNames refuses a stream name or subject prefix that NATS would
// refuse, or take for something else, with a message that says which.
func checkNames(stream, subject string) error {
	if stream == "" || strings.ContainsAny(stream, ".*> \t\r\n/\\") {
		return fmt.Errorf("jetstream: bad stream name %q", stream)
	}
	for tok := range strings.SplitSeq(subject, ".") {
		if tok == "" || tok == "*" || tok == ">" || strings.ContainsAny(tok, " \t\r\n") {
			return fmt.Errorf("jetstream: bad subject prefix %q", subject)
		}
	}
	return nil
}

// subjectFor returns the subject of an event of kind k. Kinds are dotted
// names ("login.failed") that make fine subject tokens; in one that does
// not, each byte that a subject cannot hold becomes '_', so that such an
// event is still published (its JSON holds the kind as it is).
func subjectFor(prefix string, k string) string {
	var b strings.Builder
	b.Grow(len(prefix) + 1 + len(k))
	b.WriteString(prefix)
	b.WriteByte('.')
	tokenStart := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '.' && !tokenStart && i < len(k)-1:
			b.WriteByte('.')
			tokenStart = true
			continue
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
			b.WriteByte(c)
		default:
			b.WriteByte('_')
		}
		tokenStart = false
	}
	if tokenStart { // an empty kind, or one that ends in a dot
		b.WriteByte('_')
	}
	return b.String()
}

// isGone reports whether err says that the stream or the consumer no
// longer exists, so that it must be made again.
func isGone(err error) bool {
	return errors.Is(err, natsjs.ErrStreamNotFound) || errors.Is(err, natsjs.ErrConsumerNotFound) ||
		errors.Is(err, natsjs.ErrConsumerDeleted) || errors.Is(err, natsjs.ErrNoStreamResponse)
}

// sleep waits for d, or until ctx ends; it reports whether it waited.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
