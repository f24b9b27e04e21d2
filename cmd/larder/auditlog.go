package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/audit"
	"github.com/larderfs/larder/internal/jetstream"
	"github.com/larderfs/larder/internal/metrics"
	"github.com/larderfs/larder/internal/postgres"
	"github.com/larderfs/larder/internal/sqlite"
)

// AuditConfig says where the audit trail goes and what the pipeline may
// do when it cannot keep up. See docs/OPERATIONS.md.
type AuditConfig struct {
	Sink           string // db, postgres://…, nats://…, jsonl:PATH, stdout or off
	Sync           string // kinds recorded before the reply, comma-separated; none or all
	QueueSize      int
	Full           string // wait, drop or block
	FullWait       time.Duration
	CommitInterval time.Duration
	SpoolMax       int64
	DrainTimeout   time.Duration
	RetryMax       time.Duration
	Retention      time.Duration // 0 keeps every event

	noAdopt       bool          // for the short-lived account commands
	pruneInterval time.Duration // for tests; 0 is the audit package's default
}

func defaultAuditConfig() AuditConfig {
	return AuditConfig{
		Sink:           "db",
		Sync:           "register,account",
		QueueSize:      65536,
		Full:           "wait",
		FullWait:       5 * time.Millisecond,
		CommitInterval: 2 * time.Millisecond,
		SpoolMax:       1 << 30,
		DrainTimeout:   10 * time.Second,
		RetryMax:       30 * time.Second,
		Retention:      90 * 24 * time.Hour,
	}
}

const auditSinkHelp = "where the audit trail goes: db (the account database), sqlite:`PATH`, postgres://…, nats://host:port[,…] (JetStream), jsonl:PATH, stdout, or off"

func (c *AuditConfig) define(fs *flag.FlagSet) {
	fs.StringVar(&c.Sink, "audit-sink", c.Sink, auditSinkHelp)
	fs.StringVar(&c.Sync, "audit-sync", c.Sync, "event `kinds` made durable before the reply is sent, comma-separated; none, or all")
	fs.IntVar(&c.QueueSize, "audit-queue", c.QueueSize, "audit events held in memory on their way to the spool")
	fs.StringVar(&c.Full, "audit-full", c.Full, "what recording does when the audit queue is full: wait (up to --audit-full-wait), drop, or block; events not taken are counted")
	fs.DurationVar(&c.FullWait, "audit-full-wait", c.FullWait, "how long --audit-full wait waits for room")
	fs.DurationVar(&c.CommitInterval, "audit-commit-interval", c.CommitInterval, "longest an audit event waits for its group commit to the spool")
	fs.Func("audit-spool-max", "most `bytes` of undelivered audit events kept on disk (suffixes KiB, MiB, GiB; default 1GiB); beyond it new events are refused and counted", sizeFlag(&c.SpoolMax))
	fs.DurationVar(&c.RetryMax, "audit-retry-max", c.RetryMax, "longest wait between two attempts to deliver to a sink that is down")
	fs.DurationVar(&c.DrainTimeout, "audit-drain-timeout", c.DrainTimeout, "at shutdown, how long to wait for the sink to take the spooled events; the rest waits in the spool for the next start")
	fs.Func("audit-retention", "how long the SQL sinks (db, sqlite:, postgres://) keep events: a `duration` such as 90d or 720h, or 0 to keep them forever (default 90d); older ones are deleted in small batches, a minute after start and every hour", retentionFlag(&c.Retention))
}

// retentionFlag parses a duration that may also be a number of days
// ("90d"), or 0.
func retentionFlag(p *time.Duration) func(string) error {
	return func(s string) error {
		if days, ok := strings.CutSuffix(s, "d"); ok {
			n, err := strconv.Atoi(days)
			if err != nil || n < 0 || n > 100*365 {
				return fmt.Errorf("want a number of days such as 90d, a duration such as 720h, or 0")
			}
			*p = time.Duration(n) * 24 * time.Hour
			return nil
		}
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return fmt.Errorf("want a number of days such as 90d, a duration such as 720h, or 0")
		}
		*p = d
		return nil
	}
}

// sizeFlag parses a byte count with an optional binary suffix.
func sizeFlag(p *int64) func(string) error {
	return func(s string) error {
		num, mult := s, int64(1)
		for _, u := range []struct {
			suffix string
			mult   int64
		}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}} {
			if n, ok := strings.CutSuffix(s, u.suffix); ok {
				num, mult = n, u.mult
				break
			}
		}
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil || v <= 0 || v > (1<<62)/mult {
			return fmt.Errorf("want a positive size such as 1073741824, 512MiB or 1GiB")
		}
		*p = v * mult
		return nil
	}
}

// syncKinds parses --audit-sync.
func syncKinds(s string) ([]larder.EventKind, error) {
	switch s {
	case "none", "":
		return nil, nil
	case "all":
		return larder.EventKinds, nil
	}
	return parseKinds(s)
}

// auditSink is an opened sink and what releases it.
type auditSink struct {
	sink     audit.Sink // nil for "off"
	where    string     // for messages, without passwords
	close    func()
	startErr error // the sink could not be reached at start
}

// openAuditSink opens the sink that spec names. db is the account
// database, the sink "db" writes to.
func openAuditSink(ctx context.Context, spec string, db *database, stdout io.Writer, name string) (*auditSink, error) {
	switch {
	case spec == "off":
		return &auditSink{where: "off", close: func() {}}, nil
	case spec == "db":
		return &auditSink{sink: db.events(), where: db.where, close: func() {}}, nil
	case spec == "stdout":
		// The command has set SIGPIPE aside (ignoreSIGPIPEFor).
		return &auditSink{sink: audit.NewJSONLines(stdout, nil), where: "standard output", close: func() {}}, nil
	case strings.HasPrefix(spec, "jsonl:") && len(spec) > len("jsonl:"):
		j, err := audit.OpenJSONLinesFile(strings.TrimPrefix(spec, "jsonl:"))
		if err != nil {
			return nil, err
		}
		return &auditSink{sink: j, where: spec, close: func() { j.Close() }}, nil
	case strings.HasPrefix(spec, "sqlite:") && len(spec) > len("sqlite:"):
		path := strings.TrimPrefix(spec, "sqlite:")
		db, err := sqlite.Open(ctx, path)
		if err != nil {
			return nil, err
		}
		return &auditSink{sink: sqlite.NewEventStore(db), where: path, close: func() { db.Close() }}, nil
	case strings.HasPrefix(spec, "postgres://"), strings.HasPrefix(spec, "postgresql://"):
		ls := audit.NewLazySink(func(ctx context.Context) (audit.Sink, func(), error) {
			pg, err := postgres.Open(ctx, spec)
			if err != nil {
				return nil, nil, err
			}
			return postgres.NewEventStore(pg), pg.Close, nil
		})
		return &auditSink{sink: ls, where: redactURL(spec), close: ls.Close, startErr: ls.Open(ctx)}, nil
	case strings.HasPrefix(spec, "nats://"), strings.HasPrefix(spec, "tls://"):
		// A NATS that is down at start is no reason not to serve: the
		// connection keeps trying, and the spool holds the events.
		nc, err := jetstream.Connect(spec, name)
		if err != nil {
			return nil, err
		}
		s, err := jetstream.NewSink(ctx, nc, jetstream.SinkConfig{})
		if err != nil {
			nc.Close()
			return nil, err
		}
		return &auditSink{sink: s, where: jetstream.RedactURLs(spec), close: func() {
			nc.FlushTimeout(5 * time.Second)
			nc.Close()
		}}, nil
	}
	return nil, usageError("bad --audit-sink %q: want db, sqlite:PATH, postgres://…, nats://…, jsonl:PATH, stdout or off", redactURL(spec))
}

// auditTrail is an audit Log with its sink: what a command records into.
// A nil *auditTrail records nothing.
type auditTrail struct {
	log  *audit.Log
	sink *auditSink
}

// openAuditTrail opens the sink and the spool in DATA/audit. It returns
// nil, with no error, for the sink "off".
func openAuditTrail(ctx context.Context, c *AuditConfig, dataDir string, db *database, stdout io.Writer, server string, logger *slog.Logger) (*auditTrail, error) {
	kinds, err := syncKinds(c.Sync)
	if err != nil {
		return nil, usageError("bad --audit-sync: %v", err)
	}
	full, err := audit.ParseFullPolicy(c.Full)
	if err != nil {
		return nil, usageError("bad --audit-full %q: want wait, drop or block", c.Full)
	}
	if c.QueueSize < 1 || c.FullWait < 0 || c.CommitInterval <= 0 || c.DrainTimeout < 0 || c.RetryMax < 100*time.Millisecond {
		return nil, usageError("--audit-queue and --audit-commit-interval must be positive, --audit-full-wait and --audit-drain-timeout not negative, --audit-retry-max at least 100ms")
	}
	sink, err := openAuditSink(ctx, c.Sink, db, stdout, "larder "+server)
	if err != nil {
		return nil, err
	}
	if sink.sink == nil {
		return nil, nil
	}
	if sink.startErr != nil {
		logger.Warn("audit sink unreachable; events wait in the spool until it answers", "sink", sink.where, "error", sink.startErr)
	}
	log, err := audit.Open(audit.Config{
		Dir:            filepath.Join(dataDir, "audit"),
		Sink:           sink.sink,
		Logger:         logger,
		Server:         server,
		QueueSize:      c.QueueSize,
		Full:           full,
		FullWait:       c.FullWait,
		CommitInterval: c.CommitInterval,
		SyncKinds:      kinds,
		MaxSpool:       c.SpoolMax,
		RetryMax:       c.RetryMax,
		NoAdopt:        c.noAdopt,
		Retention:      c.retention(),
		PruneInterval:  c.pruneInterval,
	})
	if err != nil {
		sink.close()
		return nil, err
	}
	return &auditTrail{log: log, sink: sink}, nil
}

// retention is the Log's retention: none for the short-lived commands,
// which leave pruning to the server.
func (c *AuditConfig) retention() time.Duration {
	if c.noAdopt {
		return 0
	}
	return c.Retention
}

// recorder returns t as a larder.EventRecorder, nil if t is nil (an
// interface holding a nil pointer would not be nil).
func (t *auditTrail) recorder() larder.EventRecorder {
	if t == nil {
		return nil
	}
	return t.log
}

// Record records ev, if there is a trail.
func (t *auditTrail) Record(ctx context.Context, ev larder.Event) error {
	if t == nil {
		return nil
	}
	return t.log.Record(ctx, ev)
}

// Close writes what is queued to the spool, delivers what it can until
// ctx ends (the rest stays in the spool for the next process with a sink),
// and closes the sink.
func (t *auditTrail) Close(ctx context.Context) error {
	if t == nil {
		return nil
	}
	err := t.log.Close(ctx)
	t.sink.close()
	return err
}

// reopen opens the sink's file anew, for a jsonl: sink (log rotation's
// SIGHUP); for other sinks it does nothing.
func (t *auditTrail) reopen() error {
	if t == nil {
		return nil
	}
	if j, ok := t.sink.sink.(*audit.JSONLines); ok {
		return j.Reopen()
	}
	return nil
}

// stats adapts the Log's counters to the metrics package's.
func (t *auditTrail) stats() metrics.AuditStats {
	s := t.log.Stats()
	var js audit.JSONLinesStats
	if j, ok := t.sink.sink.(*audit.JSONLines); ok {
		js = j.Stats()
	}
	return metrics.AuditStats{
		SinkReopens:       int64(js.Reopens),
		SinkUnwritten:     int64(js.Unwritten),
		QueueDepth:        s.QueueDepth,
		QueueCapacity:     s.QueueCap,
		Taken:             int64(s.Taken),
		NotTakenQueueFull: int64(s.NotTaken.Full),
		NotTakenSpoolFull: int64(s.NotTaken.SpoolFull),
		NotTakenClosed:    int64(s.NotTaken.Closed),
		Durable:           int64(s.Durable),
		Delivered:         int64(s.Delivered),
		DeliveryFailures:  int64(s.DeliveryFailures),
		DeliveryRetries:   int64(s.DeliveryRetries),
		SpoolBytes:        s.SpoolBytes,
		SpoolSegments:     int(s.SpoolSegments),
		SpoolMax:          s.SpoolMax,
		SpoolFailing:      s.SpoolFailing,
		SinkUp:            s.SinkUp,
		Lost:              int64(s.Failed),
		WriteErrors:       int64(s.WriteErrors),
		TornBytes:         s.TornBytes,
		QuarantinedBytes:  s.CorruptBytes,
		Pruned:            int64(s.Pruned),
	}
}

// serverName identifies this process in the events it records: the host
// and the address it serves, or what it is.
func serverName(what string) string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	return host + "/" + what
}

// Reopen opens the audit trail's file anew (a jsonl: sink), as log
// rotation asks with SIGHUP, and logs the outcome.
func (m *Main) Reopen() {
	if err := m.audit.reopen(); err != nil {
		m.Logger.Error("audit: cannot reopen the sink's file; events wait in the spool, and the next batch tries again", "sink", m.auditWhere(), "error", err)
		return
	}
	if m.audit != nil && strings.HasPrefix(m.audit.sink.where, "jsonl:") {
		m.Logger.Info("audit: reopened the sink's file", "sink", m.auditWhere())
	}
}
