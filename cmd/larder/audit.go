package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/lnp"
)

func auditCommands() []command {
	return []command{
		{"tail", "show the newest events, and follow new ones with -f", runAuditTail},
		{"query", "select events by user, kind, path, address, status and time, a page at a time", runAuditQuery},
		{"export", "write every matching event as JSON lines or CSV", runAuditExport},
	}
}

func runAudit(ctx context.Context, env *Env, args []string) error {
	return dispatch(ctx, env, "larder audit", auditCommands(), args)
}

// auditReadFlags are the flags of the commands that read the audit trail.
type auditReadFlags struct {
	accounts AccountConfig
	auditDB  string
	asJSON   bool
}

func (f *auditReadFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&f.accounts.DataDir, "data", f.accounts.DataDir, "`folder` of the server whose trail to read (its SQLite database)")
	fs.StringVar(&f.auditDB, "audit-db", "", "read the trail from this PostgreSQL `URL` instead (where --audit-sink postgres or the audit writer put it)")
	fs.BoolVar(&f.asJSON, "json", false, "one JSON object per line, for scripts")
}

func newAuditFlagSet(env *Env, name, synopsis, help string, f *auditReadFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("audit "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	f.define(fs)
	defineConfig(fs, env)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: larder audit %s\n\n%s\n\nFlags:\n", synopsis, help)
		fs.PrintDefaults()
	}
	return fs
}

func runAuditTail(ctx context.Context, env *Env, args []string) error {
	f := auditReadFlags{accounts: defaultAccountConfig(env.Getenv)}
	var ff eventFilterFlags
	fs := newAuditFlagSet(env, "tail", "tail [-n N] [-f] "+eventFilterSynopsis+" [flags]",
		"Shows the newest events of the audit trail that match, oldest first; with -f,\n"+
			"goes on showing those that arrive (including late ones, delivered after an\n"+
			"outage of the sink, which arrive with their original times) until interrupted.\n"+
			eventFilterHelp(), &f)
	ff.define(fs)
	n := fs.Int("n", 20, "how many of the newest events to show first")
	follow := fs.Bool("f", false, "follow: show new events as they arrive")
	every := fs.Duration("interval", 500*time.Millisecond, "with -f, how often to look for new events")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if *n < 0 || *n > larder.MaxEventLimit || *every <= 0 {
		return usageError("bad -n %d or --interval %v: want 0 to %d events, and a positive interval", *n, *every, larder.MaxEventLimit)
	}
	filter, store, closeStore, err := openFiltered(ctx, &f, &ff)
	if err != nil {
		return err
	}
	defer closeStore()

	// Where the trail ends now, matching or not: following starts there,
	// rather than read again, at every look, what did not match.
	last, err := newestSeq(ctx, store)
	if err != nil {
		return err
	}
	out := newEventPrinter(env.Stdout, f.asJSON)
	first := filter
	first.Limit, first.Newest = max(*n, 1), true
	events, err := store.Events(ctx, first)
	if err != nil {
		return err
	}
	if *n > 0 {
		out.print(events...)
	}
	if len(events) > 0 {
		last = max(last, events[len(events)-1].Seq)
	}
	if !*follow {
		return nil
	}
	t := time.NewTicker(*every)
	defer t.Stop()
	const page = 1000
	for {
		select {
		case <-ctx.Done():
			return nil // interrupted: the normal end of -f
		case <-t.C:
		}
		// The end first: every event up to it is committed (the stores
		// commit in the order of seq), so the query after it sees every
		// one of them that matches, and a short page means none is left.
		end, err := newestSeq(ctx, store)
		if err == nil {
			next := filter
			next.AfterSeq, next.Limit = last, page
			events, err = store.Events(ctx, next)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		out.print(events...)
		if len(events) > 0 {
			last = events[len(events)-1].Seq
		}
		if len(events) < page {
			last = max(last, end)
		}
	}
}

// newestSeq returns the Seq of the newest event in store, or 0 if it has
// none.
func newestSeq(ctx context.Context, store larder.EventStore) (int64, error) {
	events, err := store.Events(ctx, larder.EventFilter{Newest: true, Limit: 1})
	if err != nil || len(events) == 0 {
		return 0, err
	}
	return events[0].Seq, nil
}

// eventFilterFlags are the flags that select events, shared by query and
// export.
type eventFilterFlags struct {
	user, kinds, path, remote, statuses, since, until string
	after                                             int64
}

const eventFilterSynopsis = "[--user NAME] [--kind K,…] [--path P] [--remote ADDR] [--status S,…] [--since T] [--until T] [--after CURSOR]"

// eventFilterHelp explains the flags of eventFilterFlags.
func eventFilterHelp() string {
	return "Times are RFC 3339 (2026-11-22T18:00:00Z), a date (2026-11-22, UTC), or an age:\n" +
		"a duration back from now in days, hours, minutes or seconds (7d, 12h, 30m, 1d12h),\n" +
		"from " + larder.EarliestEventBound.Format(time.DateOnly) + " to " + larder.LatestEventBound.Format(time.DateOnly) + " (UTC), the times the audit trail holds.\n" +
		"A path selects events on it and below it, in the form events record\n" +
		"(/shared/f.txt for the served folder, /d1 for a user's own folder and its files).\n" +
		"An address is an IP address (any port) or IP:port. Statuses are the protocol's\n" +
		"numbers or names (1 or OK, 5 or BAD_REQUEST, 9 or DENIED; see docs/PROTOCOL.md).\n" +
		"Kinds: " + kindList() + "."
}

func (f *eventFilterFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&f.user, "user", "", "only this user's events")
	fs.StringVar(&f.kinds, "kind", "", "only events of these `kinds`, comma-separated")
	fs.StringVar(&f.path, "path", "", "only events on this `path` or below it")
	fs.StringVar(&f.remote, "remote", "", "only events from this `address`: an IP address (any port) or IP:port")
	fs.StringVar(&f.statuses, "status", "", "only events with these protocol `statuses`, comma-separated numbers or names")
	fs.StringVar(&f.since, "since", "", "only events at or after this `time`")
	fs.StringVar(&f.until, "until", "", "only events before this `time`")
	fs.Int64Var(&f.after, "after", 0, "only events after this `cursor`: the seq of the last event of a page, printed when a result is cut short")
}

// filter returns the larder.EventFilter the flags ask for, relative times
// taken back from now.
func (f *eventFilterFlags) filter(now time.Time) (larder.EventFilter, error) {
	filter := larder.EventFilter{User: f.user, Remote: f.remote, AfterSeq: f.after}
	var err error
	if f.after < 0 {
		return filter, usageError("bad --after %d: a cursor is the seq of an event, 0 or more", f.after)
	}
	if f.path != "" {
		filter.Path = larder.EventPath(f.path)
	}
	if filter.Since, err = parseWhen(f.since, now); err != nil {
		return filter, usageError("bad --since: %v", err)
	}
	if filter.Until, err = parseWhen(f.until, now); err != nil {
		return filter, usageError("bad --until: %v", err)
	}
	if filter.Kinds, err = parseKinds(f.kinds); err != nil {
		return filter, usageError("bad --kind: %v", err)
	}
	if filter.Statuses, err = parseStatuses(f.statuses); err != nil {
		return filter, usageError("bad --status: %v", err)
	}
	return filter, nil
}

func runAuditQuery(ctx context.Context, env *Env, args []string) error {
	f := auditReadFlags{accounts: defaultAccountConfig(env.Getenv)}
	var ff eventFilterFlags
	fs := newAuditFlagSet(env, "query", "query "+eventFilterSynopsis+" [--limit N] [flags]",
		"Selects events of the audit trail, in the order they arrived, at most --limit\n"+
			"of them. When more match, it says so on standard error, with the cursor\n"+
			"to pass to --after for the next page; 'larder audit export' writes them all.\n"+
			eventFilterHelp(), &f)
	ff.define(fs)
	limit := fs.Int("limit", larder.DefaultEventLimit, "at most this many events")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if *limit < 1 || *limit > larder.MaxEventLimit {
		return usageError("bad --limit %d: want 1 to %d", *limit, larder.MaxEventLimit)
	}
	filter, store, closeStore, err := openFiltered(ctx, &f, &ff)
	if err != nil {
		return err
	}
	defer closeStore()
	filter.Limit = *limit
	events, err := store.Events(ctx, filter)
	if err != nil {
		return err
	}
	newEventPrinter(env.Stdout, f.asJSON).print(events...)
	if len(events) < *limit {
		return nil
	}
	// A full page: one more event says whether the result was cut short.
	last := events[len(events)-1].Seq
	filter.AfterSeq, filter.Limit = last, 1
	more, err := store.Events(ctx, filter)
	if err != nil {
		return err
	}
	if len(more) > 0 {
		fmt.Fprintf(env.Stderr, "larder audit query: cut short at --limit %d events; more match. For the next page, add --after %d (or write them all with 'larder audit export').\n", *limit, last)
	}
	return nil
}

// openEventStore opens the store the trail is read from: PostgreSQL if
// --audit-db names one, else the SQLite database in the data folder.
// openFiltered makes the filter of ff, as of now, and opens the trail of
// f: the opening of every command that reads the trail.
func openFiltered(ctx context.Context, f *auditReadFlags, ff *eventFilterFlags) (larder.EventFilter, larder.EventStore, func(), error) {
	filter, err := ff.filter(time.Now())
	if err != nil {
		return filter, nil, nil, err
	}
	store, closeStore, err := openEventStore(ctx, f)
	return filter, store, closeStore, err
}

func openEventStore(ctx context.Context, f *auditReadFlags) (larder.EventStore, func(), error) {
	if f.auditDB != "" {
		f.accounts.DB = f.auditDB
	}
	return openEvents(ctx, &f.accounts)
}

func kindList() string {
	names := make([]string, len(larder.EventKinds))
	for i, k := range larder.EventKinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

// parseKinds parses a comma-separated list of event kinds.
func parseKinds(s string) ([]larder.EventKind, error) {
	if s == "" {
		return nil, nil
	}
	var kinds []larder.EventKind
	for name := range strings.SplitSeq(s, ",") {
		k := larder.EventKind(strings.TrimSpace(name))
		known := false
		for _, want := range larder.EventKinds {
			known = known || k == want
		}
		if !known {
			return nil, fmt.Errorf("unknown kind %q; the kinds are %s", k, kindList())
		}
		kinds = append(kinds, k)
	}
	return kinds, nil
}

// parseStatuses parses a comma-separated list of protocol statuses, each a
// number or a name of the course protocol or LNP/1.
func parseStatuses(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var statuses []int
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		n, err := strconv.Atoi(name)
		if err != nil {
			var ok bool
			if n, ok = statusByName(name); !ok {
				return nil, fmt.Errorf("%q is neither a status number nor a status name (%s)", name, statusNames())
			}
		}
		if n < 0 || n > 0xffff {
			return nil, fmt.Errorf("status %d is out of range: statuses are 0 to 65535", n)
		}
		statuses = append(statuses, n)
	}
	return statuses, nil
}

// statusByName returns the number of a status of the course protocol or
// LNP/1 by its name (either case): codes 1 to 7 mean the same in both.
func statusByName(name string) (int, bool) {
	for n := range 256 {
		if course.Status(n).String() == strings.ToUpper(name) && course.Status(n).Valid() ||
			lnp.Status(n).String() == strings.ToUpper(name) && lnp.Status(n).Known() {
			return n, true
		}
	}
	return 0, false
}

// statusNames lists the names statusByName knows.
func statusNames() string {
	var names []string
	for n := range 256 {
		switch {
		case lnp.Status(n).Known():
			names = append(names, lnp.Status(n).String())
		case course.Status(n).Valid():
			names = append(names, course.Status(n).String())
		}
	}
	return strings.Join(names, ", ")
}

// parseWhen parses a time as RFC 3339, a date, or an age: a duration
// before now, which may begin with a number of days ("7d", "1d12h"). An
// empty s is no bound, the zero time; a time the audit trail cannot hold
// is refused, the zero time (0001-01-01) first of all, which would read as
// no bound.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, ok, err := parseAge(s); ok {
		if err != nil {
			return time.Time{}, err
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			if err := larder.CheckEventBound(t); err != nil {
				return time.Time{}, fmt.Errorf("%q: %s", s, larder.ErrorMessage(err))
			}
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not RFC 3339 (2026-11-22T18:00:00Z), a date (2026-11-22) or an age (7d, 12h, 30m)", s)
}

// maxAge bounds an age, well inside what a time.Duration holds.
const maxAge = 100 * 365 * 24 * time.Hour

// parseAge parses an age: a duration, which may begin with a number of
// days ("7d", "12h", "1d12h", "90s"). ok is false if s is not one (a time,
// then); err says what is wrong with one that is.
func parseAge(s string) (d time.Duration, ok bool, err error) {
	rest := s
	if digits := len(s) - len(strings.TrimLeft(s, "0123456789")); digits > 0 && digits < len(s) && s[digits] == 'd' {
		days, err := strconv.Atoi(s[:digits])
		if err != nil || days > int(maxAge/(24*time.Hour)) {
			return 0, true, fmt.Errorf("%q: an age of more than 100 years", s)
		}
		d, rest = time.Duration(days)*24*time.Hour, s[digits+1:]
	}
	if rest != "" {
		more, err := time.ParseDuration(rest)
		switch {
		case err != nil && rest == s:
			return 0, false, nil // a time, perhaps
		case err != nil:
			return 0, true, fmt.Errorf("%q is not an age: write days, hours, minutes or seconds, such as 7d, 12h, 30m or 1d12h", s)
		case more < 0:
			return 0, true, fmt.Errorf("%q: an age is a time back from now, and cannot be negative", s)
		}
		d += more
	}
	if d > maxAge {
		return 0, true, fmt.Errorf("%q: an age of more than 100 years", s)
	}
	return d, true, nil
}

// eventPrinter writes events as a table or as JSON lines.
type eventPrinter struct {
	w      io.Writer
	asJSON bool
	headed bool // the table's header is printed
}

func newEventPrinter(w io.Writer, asJSON bool) *eventPrinter {
	return &eventPrinter{w: w, asJSON: asJSON}
}

func (p *eventPrinter) print(events ...larder.Event) {
	if p.asJSON {
		enc := json.NewEncoder(p.w)
		for _, e := range events {
			enc.Encode(e)
		}
		return
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	if !p.headed && len(events) > 0 {
		fmt.Fprintln(tw, "TIME (UTC)\tKIND\tUSER\tREMOTE\tPATH\tDETAILS")
		p.headed = true
	}
	for _, e := range events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.UTC().Format("2006-01-02 15:04:05.000"), printable(string(e.Kind)),
			orDash(e.User), orDash(e.Remote), orDash(e.Path), eventDetails(&e))
	}
	tw.Flush()
}

// eventDetails sums up an event's outcome for the table.
func eventDetails(e *larder.Event) string {
	var parts []string
	if e.Status != 0 {
		parts = append(parts, fmt.Sprintf("status %d", e.Status))
	}
	if e.Bytes != 0 {
		parts = append(parts, fmt.Sprintf("%d bytes", e.Bytes))
	}
	if e.HasSHA256() {
		parts = append(parts, "sha256 "+hex.EncodeToString(e.SHA256[:8])+"…")
	}
	if e.Duration != 0 {
		parts = append(parts, e.Duration.Round(time.Microsecond).String())
	}
	if e.Reason != "" {
		parts = append(parts, printable(e.Reason))
	}
	return strings.Join(parts, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return printable(s)
}
