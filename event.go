package larder

import (
	"context"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net/netip"
	"path"
	"strings"
	"time"
)

// EventKind says what an audit event records.
type EventKind string

// The kinds of audit events. Later features record their events with
// kinds of their own through the same pipeline.
const (
	EventConnOpen    EventKind = "conn.open"    // a connection was accepted
	EventConnClose   EventKind = "conn.close"   // a connection ended; Duration is its life
	EventRegister    EventKind = "register"     // a registration, granted (Status OK) or refused (Reason)
	EventLogin       EventKind = "login"        // a successful login
	EventLoginFailed EventKind = "login.failed" // a failed login; Reason: unknown user, wrong signature, disabled
	EventThrottled   EventKind = "throttled"    // a login refused by the throttle, without checking
	EventDownload    EventKind = "download"     // a file sent whole; Bytes and SHA256 say what
	EventUpload      EventKind = "upload"       // a file received whole
	EventList        EventKind = "list"         // a folder listed
	EventDelete      EventKind = "delete"       // a file or folder deleted
	EventMkdir       EventKind = "mkdir"        // a folder made
	EventRename      EventKind = "rename"       // a file or folder moved; Path is the old path, Reason "to NEW"
	EventStat        EventKind = "stat"         // an entry, the account's usage (Reason "whoami") or block hashes (Reason "sums") read
	EventRefused     EventKind = "refused"      // a request refused: malformed, bad path, busy, ...
	EventAccount     EventKind = "account"      // an account changed; Reason: added, password, disabled, enabled, deleted, imported, rehashed, wrapped
	EventServerStart EventKind = "server.start" // a server started; Reason holds its version and settings
	EventServerStop  EventKind = "server.stop"  // a server stopped
	// EventServerReload is a reload of the configuration (SIGHUP): Reason
	// says what changed, or, with Status 1, why the reload failed and the
	// running configuration was kept.
	EventServerReload EventKind = "server.reload"
)

// EventKinds lists every kind above, in that order.
var EventKinds = []EventKind{
	EventConnOpen, EventConnClose, EventRegister, EventLogin, EventLoginFailed,
	EventThrottled, EventDownload, EventUpload, EventList, EventDelete,
	EventMkdir, EventRename, EventStat,
	EventRefused, EventAccount, EventServerStart, EventServerStop,
	EventServerReload, EventSuppressed,
}

// EventSuppressed sums up the events that connections which never logged
// in (and refusals at a limit) would have left beyond their address's
// allowance: Remote is the address (an IPv6 address's /64), Duration the
// time since the first of them, Reason how many in all and of each kind.
const EventSuppressed EventKind = "audit.suppressed"

// Event is one record of the audit trail: who did what, from where, with
// what result. Zero fields are absent.
type Event struct {
	ID       EventID
	Time     time.Time
	Kind     EventKind
	Server   string // the server that recorded it (its listening address or configured name)
	User     string
	Remote   string // the client's address, host:port
	Path     string
	Bytes    int64
	SHA256   [32]byte // of the file that moved; all zero if none
	Status   int      // the protocol status answered; 0 if none
	Duration time.Duration
	Reason   string // why, for failures and refusals; what changed, for accounts

	// Seq is the position a store gave the event when it was stored; it is
	// set only on events read back from a store, and orders them by arrival
	// there (an event delivered late, after an outage, comes after earlier
	// arrivals whatever its Time).
	Seq int64
}

// HasSHA256 reports whether e carries a file's SHA-256.
func (e *Event) HasSHA256() bool { return e.SHA256 != [32]byte{} }

// EventID identifies an event uniquely, across servers and restarts: a
// UUID version 7, whose first 48 bits are the Unix time in milliseconds,
// so that IDs sort roughly by time. Sinks use it to store each event
// exactly once however often it is delivered.
type EventID [16]byte

// NewEventID returns a fresh EventID for an event at t. Its 74 random
// bits come from math/rand/v2's per-thread ChaCha8 generator, seeded from
// the operating system: unique in practice, and cheap enough for the
// request path (an ID is not a secret).
func NewEventID(t time.Time) EventID {
	var id EventID
	ms := uint64(t.UnixMilli())
	r1, r2 := rand.Uint64(), rand.Uint64()
	id[0], id[1], id[2], id[3], id[4], id[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	id[6] = 0x70 | byte(r1>>60)&0x0f // version 7
	id[7] = byte(r1 >> 52)
	id[8] = 0x80 | byte(r1>>46)&0x3f // variant 10
	for i := 9; i < 16; i++ {
		id[i] = byte(r2 >> (8 * (i - 9)))
	}
	return id
}

// IsZero reports whether id is the zero ID, which no event carries.
func (id EventID) IsZero() bool { return id == EventID{} }

// String returns the canonical UUID form, 8-4-4-4-12 lowercase hex digits.
func (id EventID) String() string {
	var b [36]byte
	hex.Encode(b[0:8], id[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], id[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], id[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], id[8:10])
	b[23] = '-'
	hex.Encode(b[24:], id[10:])
	return string(b[:])
}

// ParseEventID parses the canonical UUID form that String returns.
func ParseEventID(s string) (EventID, error) {
	var id EventID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return id, errors.New("larder: event id is not in the 8-4-4-4-12 form")
	}
	src := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36]
	if _, err := hex.Decode(id[:], []byte(src)); err != nil {
		return EventID{}, errors.New("larder: event id is not hexadecimal")
	}
	return id, nil
}

// EventPath returns p, a path as an LNP/1 client names it (the user's own
// files at the top, the served folder under "/shared"), in the one form
// that events record: absolute, with repeated slashes, "." elements and a
// trailing slash cleaned away; "" is "/". A path that cannot name a file
// without leaving its area, one with a ".." element or a NUL byte, is kept
// as the client sent it, as evidence of what was tried, only made
// absolute: "../x" is "/../x", and a course-protocol request for "../x"
// is "/shared/../x".
func EventPath(p string) string {
	raw := strings.IndexByte(p, 0) >= 0
	for elem := range strings.SplitSeq(p, "/") {
		raw = raw || elem == ".."
	}
	switch {
	case !raw:
		return path.Clean("/" + p)
	case strings.HasPrefix(p, "/"):
		return p
	}
	return "/" + p
}

// EventFilter selects events to read back from a store. Zero fields match
// everything; the fields set must all match. A zero Since or Until is no
// bound, so a bound taken from a user goes through CheckEventBound first:
// the zero time is one a user can write (0001-01-01), and must not read as
// "every event".
type EventFilter struct {
	User     string
	Kinds    []EventKind
	Path     string    // Path, or a path below it (see MatchPath)
	Remote   string    // Remote, or its host (see MatchRemote)
	Statuses []int     // Status is one of these
	Since    time.Time // Time at or after
	Until    time.Time // Time before
	AfterSeq int64     // Seq after: how "audit tail -f" follows new arrivals, and the cursor of "audit query"
	Limit    int       // at most this many; 0 means a store's default
	Newest   bool      // the newest Limit, still returned oldest first
}

// MatchPath reports whether an event's path p is f.Path or below it:
// "/d1" matches "/d1" and "/d1/x.txt", not "/d10"; "/" matches every
// path in the canonical form. An empty f.Path matches every path. Paths
// compare byte for byte.
func (f *EventFilter) MatchPath(p string) bool {
	return f.Path == "" || p == f.Path || strings.HasPrefix(p, f.pathPrefix())
}

// PathRange returns the range [lo, hi) of the paths below f.Path, in byte
// order, for a store to select with an index on the path.
func (f *EventFilter) PathRange() (lo, hi string) {
	lo = f.pathPrefix()
	return lo, prefixEnd(lo)
}

// pathPrefix returns what the paths below f.Path begin with: f.Path and a
// slash, unless it ends in one.
func (f *EventFilter) pathPrefix() string {
	if strings.HasSuffix(f.Path, "/") {
		return f.Path
	}
	return f.Path + "/"
}

// MatchRemote reports whether an event's remote address r is f.Remote, or
// has it as its host with any port: "192.0.2.7" matches "192.0.2.7:40000",
// and "2001:db8::1" (or "[2001:db8::1]") matches "[2001:db8::1]:40000".
// An empty f.Remote matches every address.
func (f *EventFilter) MatchRemote(r string) bool {
	if f.Remote == "" || r == f.Remote {
		return true
	}
	prefix, ok := f.remotePrefix()
	return ok && strings.HasPrefix(r, prefix)
}

// RemoteRange returns the range [lo, hi) of the addresses whose host is
// f.Remote, in byte order, and true; or false if f.Remote is not an IP
// address, and then only the whole address matches.
func (f *EventFilter) RemoteRange() (lo, hi string, ok bool) {
	lo, ok = f.remotePrefix()
	if !ok {
		return "", "", false
	}
	return lo, prefixEnd(lo), true
}

// remotePrefix returns what the addresses with f.Remote as their host
// begin with, in the form net.Conn's RemoteAddr gives them: "192.0.2.7:"
// or "[2001:db8::1]:".
func (f *EventFilter) remotePrefix() (string, bool) {
	host := f.Remote
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return "", false
	}
	if ip = ip.Unmap(); ip.Is4() {
		return ip.String() + ":", true
	}
	return "[" + ip.String() + "]:", true
}

// prefixEnd returns the least string above every string that begins with
// prefix, which ends in '/' or ':': prefix with its last byte one higher.
func prefixEnd(prefix string) string {
	b := []byte(prefix)
	b[len(b)-1]++
	return string(b)
}

// The times Since and Until may name: the range that every EventStore
// holds (internal/sqlite keeps int64 nanoseconds since 1970, 1677 to 2262),
// rounded in to whole years so that a message can say it simply.
var (
	EarliestEventBound = time.Date(1678, 1, 1, 0, 0, 0, 0, time.UTC)
	LatestEventBound   = time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)
)

// CheckEventBound returns nil if t is a time Since or Until may name, from
// EarliestEventBound to LatestEventBound, and otherwise an error with code
// EINVALID that says which times are. The zero time is outside the range:
// as a bound it would mean none.
func CheckEventBound(t time.Time) error {
	if t.Before(EarliestEventBound) || t.After(LatestEventBound) {
		return Errorf(EINVALID, "%s is outside the times the audit trail holds: give a time from %s to %s (UTC)",
			t.Format(time.RFC3339Nano), EarliestEventBound.Format(time.DateOnly), LatestEventBound.Format(time.DateOnly))
	}
	return nil
}

// CheckBounds returns an error with code EINVALID if f's Since or Until is
// set (not zero) outside the times CheckEventBound accepts, so that every
// store answers the same filters the same way, whatever times it could
// hold itself.
func (f *EventFilter) CheckBounds() error {
	for _, b := range []struct {
		name string
		t    time.Time
	}{{"since", f.Since}, {"until", f.Until}} {
		if !b.t.IsZero() {
			if err := CheckEventBound(b.t); err != nil {
				return Errorf(EINVALID, "events: %s %s", b.name, ErrorMessage(err))
			}
		}
	}
	return nil
}

// Limits of EventStore.Events.
const (
	DefaultEventLimit = 1000    // events returned when the filter's Limit is 0
	MaxEventLimit     = 100_000 // the largest Limit that Events accepts
)

// EffectiveLimit returns how many events f asks for: its Limit, or
// DefaultEventLimit for 0. A negative Limit, or one above MaxEventLimit, is
// an error with code EINVALID.
func (f *EventFilter) EffectiveLimit() (int, error) {
	switch {
	case f.Limit == 0:
		return DefaultEventLimit, nil
	case f.Limit < 0:
		return 0, Errorf(EINVALID, "events: limit %d is negative", f.Limit)
	case f.Limit > MaxEventLimit:
		return 0, Errorf(EINVALID, "events: limit %d is above the most, %d", f.Limit, MaxEventLimit)
	}
	return f.Limit, nil
}

// EventStore is an audit sink that can also be read: internal/sqlite (the
// default, in the data folder) and internal/postgres implement it.
type EventStore interface {
	// StoreEvents stores events durably and idempotently, keyed by ID: an
	// event stored again (a redelivery after a crash or an outage) is
	// stored once. It returns nil only when every event is stored.
	StoreEvents(ctx context.Context, events []Event) error

	// Events returns the stored events that match f, ordered by Seq. A
	// Since or Until that CheckEventBound refuses is an error with code
	// EINVALID.
	Events(ctx context.Context, f EventFilter) ([]Event, error)
}

// EventPruner is an EventStore that can delete old events, for the audit
// trail's retention: internal/sqlite and internal/postgres implement it.
type EventPruner interface {
	// PruneEvents deletes up to limit of the events whose Time is before
	// before, the oldest first, and returns how many it deleted. A limit
	// below 1 is an error with code EINVALID.
	PruneEvents(ctx context.Context, before time.Time, limit int) (int, error)
}

// EventRecorder takes events from the code that causes them: the request
// path, the account tools. internal/audit's Log implements it.
type EventRecorder interface {
	// Record takes ev, filling its ID, Time and Server if they are zero.
	// It must not wait on disk or network, except for the kinds its
	// implementation is told to make durable before it returns; an error
	// means such an event could not be made durable.
	Record(ctx context.Context, ev Event) error
}
