package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/jetstream/natstest"
	"github.com/larderfs/larder/internal/postgres"
	"github.com/larderfs/larder/internal/postgres/pgtest"
	"github.com/larderfs/larder/internal/sqlite"
)

// sinkUnderTest is a real audit sink as the audit tests use it: the
// --audit-sink that names it, how to read what it holds, and, where the
// sink can be made unreachable without stopping the server's accounts,
// how to take it down and bring it back.
type sinkUnderTest struct {
	spec     string
	events   func(t *testing.T) []larder.Event // everything the sink holds now
	down, up func(t *testing.T)                // nil if it cannot be taken down
}

// sinkCase sets up a sink for a server whose data folder is dataDir, or
// skips t, saying why, if the sink's server is not reachable.
type sinkCase struct {
	name  string
	setup func(t *testing.T, dataDir string) *sinkUnderTest
}

// auditSinks are the sinks every audit test runs against.
var auditSinks = []sinkCase{
	{"sqlite-db", sqliteDBSink},
	{"sqlite-file", sqliteFileSink},
	{"jsonl", jsonlSink},
	{"postgres", postgresSink},
	{"jetstream", jetstreamSink},
}

// readAll reads every event of an EventStore.
func readAll(t *testing.T, store larder.EventStore) []larder.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	events, err := store.Events(ctx, larder.EventFilter{Limit: larder.MaxEventLimit})
	if err != nil {
		t.Fatalf("reading the sink: %v", err)
	}
	return events
}

// sqliteDBSink is the default: the events table of the account database.
func sqliteDBSink(t *testing.T, dataDir string) *sinkUnderTest {
	return &sinkUnderTest{spec: "db", events: func(t *testing.T) []larder.Event {
		store, closeStore, err := openEvents(context.Background(), &AccountConfig{DataDir: dataDir})
		if err != nil {
			t.Fatal(err)
		}
		defer closeStore()
		return readAll(t, store)
	}}
}

// sqliteFileSink is a SQLite file of its own, taken down by a transaction
// that holds its write lock: what a sink on a busy or stuck database
// looks like.
func sqliteFileSink(t *testing.T, _ string) *sinkUnderTest {
	path := filepath.Join(t.TempDir(), "audit.db")
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var lock *sql.Tx
	return &sinkUnderTest{
		spec:   "sqlite:" + path,
		events: func(t *testing.T) []larder.Event { return readAll(t, sqlite.NewEventStore(db)) },
		down: func(t *testing.T) {
			lock = lockSQLite(t, path)
		},
		up: func(t *testing.T) {
			if err := lock.Rollback(); err != nil {
				t.Fatal(err)
			}
		},
	}
}

// lockSQLite takes the write lock of the database at path, until the
// returned transaction ends.
func lockSQLite(t *testing.T, path string) *sql.Tx {
	t.Helper()
	// It waits for the server's delivery in flight, if any, to end.
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(30000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	// A write takes the lock, and holds it until the transaction ends.
	if _, err := tx.Exec(`CREATE TABLE IF NOT EXISTS lock_holder (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	return tx
}

// jsonlSink is JSON lines appended to a file.
func jsonlSink(t *testing.T, _ string) *sinkUnderTest {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	return &sinkUnderTest{spec: "jsonl:" + path, events: func(t *testing.T) []larder.Event {
		f, err := os.Open(path)
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var events []larder.Event
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var ev larder.Event
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Fatalf("%s: a line that is not an event: %v\n%s", path, err, sc.Bytes())
			}
			events = append(events, ev)
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		return events
	}}
}

// postgresSink is a PostgreSQL database of its own, taken down by refusing
// its connections.
func postgresSink(t *testing.T, _ string) *sinkUnderTest {
	url := pgtest.URL(t)
	return &sinkUnderTest{
		spec:   url,
		events: func(t *testing.T) []larder.Event { return readPostgres(t, url) },
		down:   func(t *testing.T) { pgtest.SetAllowConnections(t, url, false) },
		up:     func(t *testing.T) { pgtest.SetAllowConnections(t, url, true) },
	}
}

func readPostgres(t *testing.T, url string) []larder.Event {
	t.Helper()
	db, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return readAll(t, postgres.NewEventStore(db))
}

// jetstreamSink is NATS JetStream on a private nats-server, with "larder
// audit-writer" moving the events into PostgreSQL, where they are read;
// it is taken down by stopping nats-server.
func jetstreamSink(t *testing.T, _ string) *sinkUnderTest {
	url := pgtest.URL(t)
	nats := natstest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, stderr, err := runLarderContext(ctx, t, "", "audit-writer", "--db", url, "--nats", nats.URL(),
			"--max-wait", "50ms", "--progress", "0")
		if err != nil && ctx.Err() == nil {
			t.Errorf("audit-writer: %v\n%s", err, stderr)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return &sinkUnderTest{
		spec:   nats.URL(),
		events: func(t *testing.T) []larder.Event { return readPostgres(t, url) },
		down:   func(t *testing.T) { nats.Stop() },
		up:     func(t *testing.T) { nats.Restart() },
	}
}
