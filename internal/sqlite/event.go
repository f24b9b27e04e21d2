package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/larderfs/larder"
)

// EventStore keeps the audit trail in the events table of a DB, the same
// file as the accounts: the default sink of the audit pipeline, and what
// "larder audit" reads. It is safe for concurrent use.
//
// Times are stored to the nanosecond, as an integer (nanoseconds since
// 1970 UTC), so events read back exactly as they were stored; a time
// outside what that holds (before 1678 or after 2262, which no server's
// clock gives) is stored as the nearest one it holds. Seq is SQLite's AUTOINCREMENT rowid: it grows with every
// event stored, in the order of arrival, and the single writer of a
// database file commits in that order, so a reader that pages by AfterSeq
// never skips an event that commits later with a smaller Seq.
type EventStore struct {
	db *DB
}

var _ larder.EventStore = (*EventStore)(nil)

// NewEventStore returns an EventStore over db.
func NewEventStore(db *DB) *EventStore {
	return &EventStore{db: db}
}

// eventColumns is what every query that returns events selects, in the
// order scanEvent reads.
const eventColumns = `seq, id, time, kind, server, username, remote, path, bytes, sha256, status, duration_ns, reason`

// insertEventSQL stores one event, or nothing if its id is stored already.
// One prepared statement per event: measured on a batch of 1000, it
// stores more events per second than statements of 8 to 64 rows, whose
// statement journal (needed to undo one statement of several rows) costs
// more than the calls it saves.
const insertEventSQL = `INSERT INTO events (id, time, kind, server, username, remote, path, bytes, sha256, status, duration_ns, reason)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (id) DO NOTHING`

// StoreEvents stores events in one IMMEDIATE transaction, so that a batch
// is stored whole or not at all, and each event at most once: an event
// whose ID is stored already, by an earlier call or earlier in the same
// batch, is skipped. An event with a zero ID is an error with code
// EINVALID, and then nothing of the batch is stored.
func (s *EventStore) StoreEvents(ctx context.Context, events []larder.Event) error {
	if len(events) == 0 {
		return nil
	}
	if err := checkEventIDs(events); err != nil {
		return err
	}
	// Prepared before the transaction takes the write pool's only
	// connection: preparing inside it would wait for that connection.
	insert, err := s.db.stmt(ctx, false, insertEventSQL)
	if err != nil {
		return fmt.Errorf("sqlite: store events: %w", err)
	}
	err = s.db.inTx(ctx, func(tx *sql.Tx) error {
		stmt := tx.StmtContext(ctx, insert)
		args := make([]any, 0, 12)
		for i := range events {
			if _, err := stmt.ExecContext(ctx, appendEventArgs(args[:0], &events[i])...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: store %d events: %w", len(events), err)
	}
	return nil
}

// appendEventArgs appends the values of e's columns, in the order of
// insertEventSQL.
func appendEventArgs(args []any, e *larder.Event) []any {
	var sum any // NULL when absent
	if e.HasSHA256() {
		sum = e.SHA256[:]
	}
	return append(args, e.ID[:], eventTime(e.Time), string(e.Kind), e.Server, e.User,
		e.Remote, e.Path, e.Bytes, sum, e.Status, int64(e.Duration), e.Reason)
}

// Events returns the stored events that match f, ordered by Seq, with Seq
// set. A Limit of 0 means larder.DefaultEventLimit; a negative one, or one
// above larder.MaxEventLimit, is an error with code EINVALID, as is a Since
// or Until outside the times larder.CheckEventBound accepts.
func (s *EventStore) Events(ctx context.Context, f larder.EventFilter) ([]larder.Event, error) {
	limit, err := f.EffectiveLimit()
	if err != nil {
		return nil, err
	}
	if err := f.CheckBounds(); err != nil {
		return nil, err
	}
	var (
		where []string
		args  []any
	)
	if f.User != "" {
		where, args = append(where, "username = ?"), append(args, f.User)
	}
	if len(f.Kinds) > 0 {
		// One parameter, a JSON array, whatever the number of kinds, so
		// that the query texts, and the statements cached, stay few. The
		// kinds travel in hex because JSON text cannot carry bytes that
		// are not UTF-8, and a kind is compared byte for byte.
		hexKinds := make([]string, len(f.Kinds))
		for i, k := range f.Kinds {
			hexKinds[i] = hex.EncodeToString([]byte(k))
		}
		kinds, err := json.Marshal(hexKinds)
		if err != nil {
			return nil, fmt.Errorf("sqlite: events: %w", err)
		}
		where = append(where, "kind IN (SELECT CAST(unhex(value) AS TEXT) FROM json_each(?))")
		args = append(args, string(kinds))
	}
	if f.Path != "" {
		// The range, not LIKE, whose wildcards a path may hold. Neither
		// path nor remote has an index, unlike in internal/postgres:
		// their keys come in no order, so each index's b-tree takes
		// writes all over a file larger than SQLite's page cache. Over
		// 200,000 events of a server's usual mix (three in five without
		// a path), StoreEvents took 13 µs of CPU per event without them,
		// 23 with an index on path, 29 with both, on the server's own
		// cores. Unindexed, a query reads about two million events a
		// second, and a page ends as soon as it is full; "--since" uses
		// the index on time.
		lo, hi := f.PathRange()
		where = append(where, "(path = ? OR path >= ? AND path < ?)")
		args = append(args, f.Path, lo, hi)
	}
	if f.Remote != "" {
		if lo, hi, ok := f.RemoteRange(); ok {
			where = append(where, "(remote = ? OR remote >= ? AND remote < ?)")
			args = append(args, f.Remote, lo, hi)
		} else {
			where, args = append(where, "remote = ?"), append(args, f.Remote)
		}
	}
	if len(f.Statuses) > 0 {
		statuses, err := json.Marshal(f.Statuses)
		if err != nil {
			return nil, fmt.Errorf("sqlite: events: %w", err)
		}
		where = append(where, "status IN (SELECT value FROM json_each(?))")
		args = append(args, string(statuses))
	}
	if !f.Since.IsZero() {
		where, args = append(where, "time >= ?"), append(args, eventTime(f.Since))
	}
	if !f.Until.IsZero() {
		where, args = append(where, "time < ?"), append(args, eventTime(f.Until))
	}
	if f.AfterSeq > 0 {
		where, args = append(where, "seq > ?"), append(args, f.AfterSeq)
	}
	args = append(args, limit)

	q := `SELECT ` + eventColumns + ` FROM events`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	if f.Newest {
		q = `SELECT * FROM (` + q + ` ORDER BY seq DESC LIMIT ?) ORDER BY seq`
	} else {
		q += ` ORDER BY seq LIMIT ?`
	}
	stmt, err := s.db.stmt(ctx, true, q)
	if err != nil {
		return nil, fmt.Errorf("sqlite: events: %w", err)
	}
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: events: %w", err)
	}
	events, err := collect(rows, scanEvent)
	if err != nil {
		return nil, fmt.Errorf("sqlite: events: %w", err)
	}
	if events == nil {
		events = []larder.Event{} // none is an empty list, not null, in JSON
	}
	return events, nil
}

// scanEvent reads the eventColumns of one row.
func scanEvent(rows scanner) (larder.Event, error) {
	var (
		e           larder.Event
		id, sum     []byte
		kind        string
		t, duration int64
	)
	if err := rows.Scan(&e.Seq, &id, &t, &kind, &e.Server, &e.User, &e.Remote, &e.Path,
		&e.Bytes, &sum, &e.Status, &duration, &e.Reason); err != nil {
		return e, err
	}
	if len(id) != len(e.ID) || (sum != nil && len(sum) != len(e.SHA256)) {
		return e, fmt.Errorf("event at seq %d: stored id or sha256 has the wrong length", e.Seq)
	}
	copy(e.ID[:], id)
	copy(e.SHA256[:], sum)
	e.Kind, e.Duration = larder.EventKind(kind), time.Duration(duration)
	e.Time = time.Unix(0, t).UTC()
	return e, nil
}

// Bounds of the times the events table holds: int64 nanoseconds.
var (
	minEventTime = time.Unix(0, math.MinInt64)
	maxEventTime = time.Unix(0, math.MaxInt64)
)

// eventTime is t as the events table stores it: nanoseconds since 1970
// UTC, the nearest bound for a time beyond them (t.UnixNano's result is
// undefined there).
func eventTime(t time.Time) int64 {
	switch {
	case t.Before(minEventTime):
		return math.MinInt64
	case t.After(maxEventTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// checkEventIDs refuses a batch with an event that has no ID: it could not
// be told apart from another such event, so storing it exactly once has no
// meaning.
func checkEventIDs(events []larder.Event) error {
	for i := range events {
		if events[i].ID.IsZero() {
			return larder.Errorf(larder.EINVALID, "store events: event %d of %d (%s at %v) has no id",
				i, len(events), events[i].Kind, events[i].Time)
		}
	}
	return nil
}

var _ larder.EventPruner = (*EventStore)(nil)

// PruneEvents deletes up to limit of the events older than before, the
// oldest first, in one statement: a small batch holds the database's one
// writer briefly, between the batches of events stored.
func (s *EventStore) PruneEvents(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, larder.Errorf(larder.EINVALID, "prune events: limit %d is below 1", limit)
	}
	stmt, err := s.db.stmt(ctx, false, `DELETE FROM events WHERE seq IN
		(SELECT seq FROM events WHERE time < ? ORDER BY time LIMIT ?)`)
	if err != nil {
		return 0, fmt.Errorf("sqlite: prune events: %w", err)
	}
	res, err := stmt.ExecContext(ctx, eventTime(before), limit)
	if err != nil {
		return 0, fmt.Errorf("sqlite: prune events: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}
