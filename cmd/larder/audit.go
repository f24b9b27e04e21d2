package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/larderfs/larder"
)

func auditCommands() []command {
	return []command{
		{"tail", "show the newest events, and follow new ones with -f", runAuditTail},
		{"query", "select events by user, kind and time", runAuditQuery},
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
	fs := newAuditFlagSet(env, "tail", "tail [-n N] [-f] [flags]",
		"Shows the newest events of the audit trail, oldest first; with -f, goes on\n"+
			"showing events as they arrive (including late ones, delivered after an\n"+
			"outage of the sink, which arrive with their original times) until interrupted.", &f)
	n := fs.Int("n", 20, "how many of the newest events to show first")
	follow := fs.Bool("f", false, "follow: show new events as they arrive")
	every := fs.Duration("interval", 500*time.Millisecond, "with -f, how often to look for new events")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if *n < 0 || *n > larder.MaxEventLimit || *every <= 0 {
		return usageError("bad -n %d or --interval %v: want 0 to %d events, and a positive interval", *n, *every, larder.MaxEventLimit)
	}
	store, closeStore, err := openEventStore(ctx, &f)
	if err != nil {
		return err
	}
	defer closeStore()

	out := newEventPrinter(env.Stdout, f.asJSON)
	events, err := store.Events(ctx, larder.EventFilter{Limit: max(*n, 1), Newest: true})
	if err != nil {
		return err
	}
	var last int64
	if *n > 0 {
		out.print(events...)
	}
	if len(events) > 0 {
		last = events[len(events)-1].Seq
	}
	if !*follow {
		return nil
	}
	t := time.NewTicker(*every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil // interrupted: the normal end of -f
		case <-t.C:
		}
		events, err := store.Events(ctx, larder.EventFilter{AfterSeq: last, Limit: 1000})
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
	}
}

func runAuditQuery(ctx context.Context, env *Env, args []string) error {
	f := auditReadFlags{accounts: defaultAccountConfig(env.Getenv)}
	fs := newAuditFlagSet(env, "query", "query [--user NAME] [--kind K,…] [--since T] [--until T] [flags]",
		"Selects events of the audit trail, in the order they arrived. Times are RFC 3339\n"+
			"(2026-11-22T18:00:00Z), a date (2026-11-22), or a duration back from now (2h).\n"+
			"Kinds: "+kindList()+".", &f)
	user := fs.String("user", "", "only this user's events")
	kinds := fs.String("kind", "", "only events of these `kinds`, comma-separated")
	since := fs.String("since", "", "only events at or after this `time`")
	until := fs.String("until", "", "only events before this `time`")
	limit := fs.Int("limit", 1000, "at most this many events")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	filter := larder.EventFilter{User: *user, Limit: *limit}
	if *limit < 1 || *limit > larder.MaxEventLimit {
		return usageError("bad --limit %d: want 1 to %d", *limit, larder.MaxEventLimit)
	}
	var err error
	if filter.Since, err = parseWhen(*since, time.Now()); err != nil {
		return usageError("bad --since: %v", err)
	}
	if filter.Until, err = parseWhen(*until, time.Now()); err != nil {
		return usageError("bad --until: %v", err)
	}
	if filter.Kinds, err = parseKinds(*kinds); err != nil {
		return usageError("bad --kind: %v", err)
	}
	store, closeStore, err := openEventStore(ctx, &f)
	if err != nil {
		return err
	}
	defer closeStore()
	events, err := store.Events(ctx, filter)
	if err != nil {
		return err
	}
	newEventPrinter(env.Stdout, f.asJSON).print(events...)
	return nil
}

// openEventStore opens the store the trail is read from: PostgreSQL if
// --audit-db names one, else the SQLite database in the data folder.
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

// parseWhen parses a time as RFC 3339, a date, or a duration before now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not RFC 3339, a date or a duration", s)
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.UTC().Format("2006-01-02 15:04:05.000"), e.Kind,
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
		parts = append(parts, e.Reason)
	}
	return strings.Join(parts, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
