package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/larderfs/larder"
)

// EventStore keeps the audit trail in the events table of a DB, the same
// database as the accounts: the sink of servers that share PostgreSQL, and
// where "larder audit-writer" moves events from NATS JetStream. It is safe
// for concurrent use, also by several processes on one database.
//
// PostgreSQL keeps times to the microsecond: an event reads back with its
// Time truncated to the microsecond (the spool and the JSON form keep
// nanoseconds), and Since and Until compare at that precision. Text that
// is not UTF-8, and NUL bytes, which a text value cannot hold, are stored
// as U+FFFD; an event from a client that sent such bytes is stored all the
// same rather than blocking the trail.
//
// Seq comes from an identity column. Writers take a transaction-level
// advisory lock before they insert, so that Seqs are handed out in the
// order their transactions commit: a reader that pages by AfterSeq never
// skips an event that commits after it read a larger Seq. Seqs have gaps
// (an event stored again still draws one).
type EventStore struct {
	db *DB
}

var _ larder.EventStore = (*EventStore)(nil)

// NewEventStore returns an EventStore over db.
func NewEventStore(db *DB) *EventStore {
	return &EventStore{db: db}
}

// eventsLock is the key of the advisory lock that orders the writers of
// the events table (see EventStore): "larder" in ASCII, then 2.
const eventsLock int64 = 0x6c61_7264_6572_0002

// eventColumns is what every query that returns events selects, in the
// order scanEvent reads.
const eventColumns = `seq, id, time, kind, server, username, remote, path, bytes, sha256, status, duration_ns, reason`

// insertEventsSQL stores a batch, column by column as arrays, in one
// statement: one round trip whatever the size of the batch, where a
// statement per event would take one each (COPY needs a temporary table
// and three statements to skip the events stored already). WITH
// ORDINALITY and ORDER BY hand out Seqs in the order of the batch.
const insertEventsSQL = `INSERT INTO events (id, time, kind, server, username, remote, path, bytes, sha256, status, duration_ns, reason)
	SELECT id, time, kind, server, username, remote, path, bytes, sha256, status, duration_ns, reason
	FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[],
		$7::text[], $8::bigint[], $9::bytea[], $10::integer[], $11::bigint[], $12::text[])
		WITH ORDINALITY AS u(id, time, kind, server, username, remote, path, bytes, sha256, status, duration_ns, reason, n)
	ORDER BY n
	ON CONFLICT (id) DO NOTHING`

// StoreEvents stores events in one transaction and one round trip, so that
// a batch is stored whole or not at all, and each event at most once: an
// event whose ID is stored already, by an earlier call, another server or
// earlier in the same batch, is skipped. An event with a zero ID is an
// error with code EINVALID, and then nothing of the batch is stored.
func (s *EventStore) StoreEvents(ctx context.Context, events []larder.Event) error {
	if len(events) == 0 {
		return nil
	}
	n := len(events)
	var (
		ids       = make([][16]byte, n)
		times     = make([]time.Time, n)
		kinds     = make([]string, n)
		servers   = make([]string, n)
		users     = make([]string, n)
		remotes   = make([]string, n)
		paths     = make([]string, n)
		bytes     = make([]int64, n)
		sums      = make([][]byte, n) // nil is NULL
		statuses  = make([]int32, n)
		durations = make([]int64, n)
		reasons   = make([]string, n)
	)
	for i := range events {
		e := &events[i]
		if e.ID.IsZero() {
			return larder.Errorf(larder.EINVALID, "store events: event %d of %d (%s at %v) has no id",
				i, n, e.Kind, e.Time)
		}
		ids[i], times[i], bytes[i], durations[i] = e.ID, e.Time, e.Bytes, int64(e.Duration)
		kinds[i], servers[i], users[i] = text(string(e.Kind)), text(e.Server), text(e.User)
		remotes[i], paths[i], reasons[i] = text(e.Remote), text(e.Path), text(e.Reason)
		statuses[i] = int32(e.Status)
		if e.HasSHA256() {
			sums[i] = e.SHA256[:]
		}
	}
	// The lock and the insert are one pipeline ending in one Sync, so one
	// implicit transaction: the lock is held until it commits.
	var b pgx.Batch
	b.Queue(`SELECT pg_advisory_xact_lock($1)`, eventsLock)
	b.Queue(insertEventsSQL, ids, times, kinds, servers, users, remotes, paths, bytes, sums, statuses, durations, reasons)
	if err := s.db.pool.SendBatch(ctx, &b).Close(); err != nil {
		return fmt.Errorf("postgres: store %d events: %w", n, err)
	}
	return nil
}

// text returns s as a PostgreSQL text value can hold it: bytes that are
// not UTF-8, and NUL bytes, replaced by U+FFFD.
func text(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// Events returns the stored events that match f, ordered by Seq, with Seq
// set. A Limit of 0 means larder.DefaultEventLimit; a negative one, or one
// above larder.MaxEventLimit, is an error with code EINVALID, as is a Since
// or Until outside the times larder.CheckEventBound accepts.
func (s *EventStore) Events(ctx context.Context, f larder.EventFilter) ([]larder.Event, error) {
	q, args, err := eventsQuery(f)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: events: %w", err)
	}
	events, err := pgx.CollectRows(rows, scanEvent)
	if err != nil {
		return nil, fmt.Errorf("postgres: events: %w", err)
	}
	if events == nil {
		events = []larder.Event{}
	}
	return events, nil
}

// eventsQuery returns the query of Events for f, and its arguments.
func eventsQuery(f larder.EventFilter) (string, []any, error) {
	limit, err := f.EffectiveLimit()
	if err != nil {
		return "", nil, err
	}
	if err := f.CheckBounds(); err != nil {
		return "", nil, err
	}
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.User != "" {
		where = append(where, "username = "+arg(text(f.User)))
	}
	if len(f.Kinds) > 0 {
		kinds := make([]string, len(f.Kinds))
		for i, k := range f.Kinds {
			kinds[i] = text(string(k))
		}
		where = append(where, "kind = ANY("+arg(kinds)+"::text[])")
	}
	if f.Path != "" {
		// A range in byte order (path is COLLATE "C"), not LIKE, whose
		// wildcards a path may hold.
		lo, hi := f.PathRange()
		where = append(where, "(path = "+arg(text(f.Path))+" OR path >= "+arg(text(lo))+" AND path < "+arg(text(hi))+")")
	}
	if f.Remote != "" {
		if lo, hi, ok := f.RemoteRange(); ok {
			where = append(where, "(remote = "+arg(text(f.Remote))+" OR remote >= "+arg(lo)+" AND remote < "+arg(hi)+")")
		} else {
			where = append(where, "remote = "+arg(text(f.Remote)))
		}
	}
	if len(f.Statuses) > 0 {
		statuses := make([]int64, len(f.Statuses))
		for i, st := range f.Statuses {
			statuses[i] = int64(st)
		}
		where = append(where, "status = ANY("+arg(statuses)+"::bigint[])")
	}
	if !f.Since.IsZero() {
		where = append(where, "time >= "+arg(f.Since))
	}
	if !f.Until.IsZero() {
		where = append(where, "time < "+arg(f.Until))
	}
	if f.AfterSeq > 0 {
		where = append(where, "seq > "+arg(f.AfterSeq))
	}
	q := `SELECT ` + eventColumns + ` FROM events`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	if f.Newest {
		q = `SELECT * FROM (` + q + ` ORDER BY seq DESC LIMIT ` + arg(limit) + `) AS newest ORDER BY seq`
	} else {
		q += ` ORDER BY seq LIMIT ` + arg(limit)
	}
	return q, args, nil
}

// scanEvent reads the eventColumns of one row.
func scanEvent(row pgx.CollectableRow) (larder.Event, error) {
	var (
		e        larder.Event
		id       [16]byte
		t        time.Time
		kind     string
		sum      []byte
		duration int64
	)
	if err := row.Scan(&e.Seq, &id, &t, &kind, &e.Server, &e.User, &e.Remote, &e.Path,
		&e.Bytes, &sum, &e.Status, &duration, &e.Reason); err != nil {
		return e, err
	}
	if sum != nil && len(sum) != len(e.SHA256) {
		return e, fmt.Errorf("event at seq %d: stored sha256 has %d bytes", e.Seq, len(sum))
	}
	copy(e.SHA256[:], sum)
	// pgx gives times in the local zone; UTC as internal/sqlite does.
	e.ID, e.Time, e.Kind, e.Duration = id, t.UTC(), larder.EventKind(kind), time.Duration(duration)
	return e, nil
}

var _ larder.EventPruner = (*EventStore)(nil)

// PruneEvents deletes up to limit of the events older than before, the
// oldest first, in one statement, so that each batch's locks are few and
// brief.
func (s *EventStore) PruneEvents(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, larder.Errorf(larder.EINVALID, "prune events: limit %d is below 1", limit)
	}
	tag, err := s.db.pool.Exec(ctx, `DELETE FROM events WHERE seq IN
		(SELECT seq FROM events WHERE time < $1 ORDER BY time LIMIT $2)`, before, limit)
	if err != nil {
		return 0, fmt.Errorf("postgres: prune events: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
