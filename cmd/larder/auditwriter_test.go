package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/jetstream"
	"github.com/larderfs/larder/internal/jetstream/natstest"
	"github.com/larderfs/larder/internal/postgres"
	"github.com/larderfs/larder/internal/postgres/pgtest"
)

// TestAuditWriter runs "larder audit-writer" against the test NATS and
// PostgreSQL servers: events that servers published reach the database,
// its log shows the progress, and SIGINT (the context ending) stops it
// cleanly.
func TestAuditWriter(t *testing.T) {
	natsURL := natstest.URL(t)
	stream, subject := natstest.Stream(t, natsURL)
	dbURL := pgtest.URL(t)

	// Two servers' sinks publish, one event of every kind each, and one
	// event twice.
	var events []larder.Event
	for i := range 2 * len(larder.EventKinds) {
		now := time.Now()
		events = append(events, larder.Event{
			ID: larder.NewEventID(now), Time: now, Kind: larder.EventKinds[i%len(larder.EventKinds)],
			Server: fmt.Sprint("server", i/len(larder.EventKinds)), User: "alice", Status: 200,
		})
	}
	for i, batch := range [][]larder.Event{events[:len(larder.EventKinds)+1], events[len(larder.EventKinds):]} {
		nc, err := jetstream.Connect(natsURL, fmt.Sprint("server", i))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		sink, err := jetstream.NewSink(context.Background(), nc, jetstream.SinkConfig{Stream: stream, Subject: subject})
		if err != nil {
			t.Fatal(err)
		}
		if err := sink.StoreEvents(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &lockedBuffer{}
	env := &Env{Stdout: &lockedBuffer{}, Stderr: stderr, Getenv: func(string) string { return "" }}
	done := make(chan error, 1)
	go func() {
		done <- runAuditWriter(ctx, env, []string{"--nats", natsURL, "--db", dbURL,
			"--stream", stream, "--subject", subject, "--batch", "5", "--max-wait", "100ms", "--progress", "50ms"})
	}()

	db, err := postgres.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store := postgres.NewEventStore(db)
	var got []larder.Event
	for deadline := time.Now().Add(30 * time.Second); len(got) < len(events); time.Sleep(20 * time.Millisecond) {
		if got, err = store.Events(context.Background(), larder.EventFilter{}); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s PostgreSQL holds %d events, want %d; the writer said:\n%s", len(got), len(events), stderr)
		}
	}
	waitUntil(t, "a progress line with every event moved", func() bool {
		return strings.Contains(stderr.String(), fmt.Sprintf("total=%d ", len(events)))
	})

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("audit-writer after SIGINT: got %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("audit-writer still running 10s after SIGINT")
	}
	if got, err = store.Events(context.Background(), larder.EventFilter{}); err != nil || len(got) != len(events) {
		t.Fatalf("PostgreSQL holds %d events (%v), want %d", len(got), err, len(events))
	}
	for i := range got {
		if got[i].ID != events[i].ID {
			t.Fatalf("event %d in PostgreSQL is %s, want %s, in the order they were published", i, got[i].ID, events[i].ID)
		}
	}
	log := stderr.String()
	for _, want := range []string{
		"audit writer: starting", "audit writer: consuming", "audit writer: progress",
		"moved=" + fmt.Sprint(len(events)), "audit writer: stopped",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "level=WARN") || strings.Contains(log, "level=ERROR") {
		t.Errorf("the log has warnings or errors:\n%s", log)
	}
}

func TestAuditWriterUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // in the error; "" for -h
	}{
		{[]string{"-h"}, ""},
		{[]string{}, "needs --db"},
		{[]string{"--db", "postgres://x", "--batch", "0"}, "bad --batch"},
		{[]string{"--db", "postgres://x", "--max-wait", "0s"}, "must be positive"},
		{[]string{"--db", "postgres://x", "extra"}, "takes no arguments"},
		{[]string{"--db", "postgres://x", "--log-level", "loud"}, "bad --log-level"},
		{[]string{"--bogus"}, "flag provided but not defined"},
	} {
		stderr := &lockedBuffer{}
		env := &Env{Stdout: &lockedBuffer{}, Stderr: stderr, Getenv: func(string) string { return "" }}
		err := runAuditWriter(context.Background(), env, tc.args)
		if tc.want == "" {
			if !errors.Is(err, flag.ErrHelp) || !strings.Contains(stderr.String(), "Usage: larder audit-writer") {
				t.Errorf("audit-writer %q: got %v and usage %q, want flag.ErrHelp and the usage", tc.args, err, stderr)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || ExitCode(err) != exitUsage {
			t.Errorf("audit-writer %q: got %v (exit %d), want a usage error (exit %d) saying %q", tc.args, err, ExitCode(err), exitUsage, tc.want)
		}
	}
}

// TestAuditWriterBadDatabase: a database that cannot be reached fails at
// once, without its password in the message.
func TestAuditWriterBadDatabase(t *testing.T) {
	env := &Env{Stdout: &lockedBuffer{}, Stderr: &lockedBuffer{}, Getenv: func(string) string { return "" }}
	err := runAuditWriter(context.Background(), env, []string{"--db", "postgres://larder:s3cret@127.0.0.1:1/larder?connect_timeout=5"})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("audit-writer with an unreachable database: got %v, want an error without the password", err)
	}
}

// TestAuditWriterProcessSIGHUP is TestServeProcessSIGHUP for the other
// long-running command: a SIGHUP (a closed terminal, an operator's reload)
// never stops the writer; SIGTERM still does, cleanly.
func TestAuditWriterProcessSIGHUP(t *testing.T) {
	natsURL := natstest.URL(t)
	stream, subject := natstest.Stream(t, natsURL)
	dbURL := pgtest.URL(t)

	stderr := &lockedBuffer{}
	cmd := exec.Command(os.Args[0], "audit-writer", "--nats", natsURL, "--db", dbURL,
		"--stream", stream, "--subject", subject, "--progress", "0")
	cmd.Env = append(os.Environ(), "LARDER_TEST_RUN_MAIN=1")
	cmd.Stderr = stderr
	must(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })

	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), "audit writer: starting") {
		if time.Now().After(deadline) {
			t.Fatalf("the writer did not start:\n%s", stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Each SIGHUP is sent once the one before has been handled (logged):
	// signals sent together may arrive as one.
	const handled = "SIGHUP: the audit writer reads its flags only at start"
	for i := range 3 {
		must(t, cmd.Process.Signal(syscall.SIGHUP))
		deadline := time.Now().Add(30 * time.Second)
		for strings.Count(stderr.String(), handled) != i+1 {
			select {
			case err := <-exited:
				t.Fatalf("audit-writer exited on SIGHUP: %v\n%s", err, stderr)
			case <-time.After(5 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("SIGHUP %d not logged within 30s:\n%s", i+1, stderr)
			}
		}
	}
	must(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("audit-writer exited with %v after SIGHUP then SIGTERM\n%s", err, stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("audit-writer did not stop on SIGTERM:\n%s", stderr)
	}
}
