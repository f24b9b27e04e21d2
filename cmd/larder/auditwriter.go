package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/larderfs/larder/internal/jetstream"
	"github.com/larderfs/larder/internal/postgres"
)

// runAuditWriter is "larder audit-writer": it moves the audit trail that
// servers publish to NATS JetStream into PostgreSQL, until SIGINT or
// SIGTERM.
func runAuditWriter(ctx context.Context, env *Env, args []string) (err error) {
	// As for serve: SIGHUP (a closed terminal, an operator's reload) never
	// stops the writer. It has nothing to reload; it says so.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	fs := flag.NewFlagSet("audit-writer", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	natsURL := fs.String("nats", "nats://127.0.0.1:4222", "NATS server `URL`s, comma-separated")
	db := fs.String("db", "", "the PostgreSQL `URL` to write the trail to, postgres://… (required)")
	var cfg jetstream.WriterConfig
	fs.StringVar(&cfg.Stream, "stream", jetstream.DefaultStream, "the JetStream `stream` the servers publish to")
	fs.StringVar(&cfg.Subject, "subject", jetstream.DefaultSubject, "the `prefix` of the stream's subjects, to create the stream if it is absent")
	fs.StringVar(&cfg.Durable, "consumer", jetstream.DefaultDurable, "the durable consumer's `name`; writers that share it share the work")
	fs.IntVar(&cfg.Batch, "batch", jetstream.DefaultBatch, "most events stored in one transaction")
	fs.DurationVar(&cfg.MaxWait, "max-wait", jetstream.DefaultMaxWait, "longest wait for a batch to fill before storing what has come")
	fs.DurationVar(&cfg.AckWait, "ack-wait", jetstream.DefaultAckWait, "how long NATS waits for a batch to be stored before handing it to another writer")
	every := fs.Duration("progress", time.Minute, "how often to log the events moved (0: never)")
	logLevel := fs.String("log-level", "info", "least `level` logged: debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "log `format`: text or json")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: larder audit-writer --db postgres://… [flags]\n\n"+
			"Moves the audit trail that larder servers publish to NATS JetStream into\n"+
			"PostgreSQL, in batches, each event once.\n"+
			"Runs until SIGINT or SIGTERM; while NATS or PostgreSQL is down it waits and\n"+
			"retries, and loses nothing.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := noArgs(fs, args); err != nil {
		return err
	}
	switch {
	case *db == "":
		return usageError("audit-writer needs --db, the postgres:// URL of the database to write to")
	case cfg.Batch < 1:
		return usageError("bad --batch %d: want 1 or more", cfg.Batch)
	case cfg.MaxWait <= 0 || cfg.AckWait <= 0:
		return usageError("--max-wait and --ack-wait must be positive")
	}
	logger, err := newLogger(env.Stderr, new(slog.LevelVar), *logLevel, *logFormat)
	if err != nil {
		return usageError("%v", err)
	}
	cfg.Logger = logger
	defer func() { err = logFailure(logger, *logFormat, "larder audit-writer failed", err) }()

	// PostgreSQL first: a wrong URL or password fails here, at once. NATS
	// may come later; the Writer waits for it.
	pg, err := postgres.Open(ctx, *db)
	if err != nil {
		return err
	}
	defer pg.Close()
	nc, err := jetstream.Connect(*natsURL, "larder audit-writer")
	if err != nil {
		return err
	}
	defer func() {
		// Send the last acknowledgements before closing; those lost
		// anyway only bring their events again, to be skipped.
		nc.FlushTimeout(5 * time.Second)
		nc.Close()
	}()
	w, err := jetstream.NewWriter(nc, postgres.NewEventStore(pg), cfg)
	if err != nil {
		return usageError("%v", err)
	}
	logger.Info("audit writer: starting", "nats", jetstream.RedactURLs(*natsURL), "db", pg.String(),
		"stream", cfg.Stream, "consumer", cfg.Durable, "batch", cfg.Batch)

	done := make(chan struct{})
	defer close(done)
	if *every > 0 {
		go logProgress(logger, w, *every, done)
	}
	go func() {
		for {
			select {
			case <-done:
				return
			case <-hup:
				logger.Info("SIGHUP: the audit writer reads its flags only at start; restart it to change them")
			}
		}
	}()
	err = w.Run(ctx)
	st := w.Stats()
	logger.Info("audit writer: stopped", "moved", st.Moved, "batches", st.Batches, "retries", st.Retries, "rejected", st.Rejected)
	return err
}

// logProgress logs what w has moved, every interval until done is closed:
// at info when it moved or failed to, at debug when it idled.
func logProgress(logger *slog.Logger, w *jetstream.Writer, every time.Duration, done <-chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	last := w.Stats()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		st := w.Stats()
		level := slog.LevelDebug
		if st != last {
			level = slog.LevelInfo
		}
		moved := st.Moved - last.Moved
		logger.Log(context.Background(), level, "audit writer: progress",
			"moved", moved, "per_second", float64(moved)/every.Seconds(), "total", st.Moved,
			"retries", st.Retries-last.Retries, "rejected", st.Rejected-last.Rejected, "redelivered", st.Redelivered-last.Redelivered)
		last = st
	}
}
