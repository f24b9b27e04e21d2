package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/course"
)

// jsonRecords parses every line of out as a JSON log record, failing the
// test at the first that is not one.
func jsonRecords(t *testing.T, out string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for i, line := range strings.SplitAfter(out, "\n") {
		if line == "" {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil || r["time"] == nil || r["level"] == nil || r["msg"] == nil {
			t.Fatalf("line %d of standard error is not a JSON log record (%v): %q\nwhole:\n%s", i+1, err, line, out)
		}
		recs = append(recs, r)
	}
	return recs
}

// record returns the first of recs whose msg is msg and whose fields
// hold every pair of kv, or nil.
func record(recs []map[string]any, msg string, kv ...string) map[string]any {
	for _, r := range recs {
		ok := r["msg"] == msg
		for i := 0; ok && i+1 < len(kv); i += 2 {
			ok = r[kv[i]] == kv[i+1]
		}
		if ok {
			return r
		}
	}
	return nil
}

// TestServeJSONLogsFromFirstByte: with --log-format json, everything
// "larder serve" writes on standard error is a JSON record, from start to
// stop: where it serves, each request, the shutdown; durations are Go
// duration strings.
func TestServeJSONLogsFromFirstByte(t *testing.T) {
	var stderr lockedBuffer
	cmd := exec.Command(os.Args[0], "serve", "--log-format", "json",
		"--listen", "127.0.0.1:0", "--native-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
		"--data", t.TempDir(), "--files", t.TempDir(), "--hash-memory", "64", "--hash-passes", "1")
	cmd.Env = append(os.Environ(), "LARDER_TEST_RUN_MAIN=1")
	cmd.Stderr = &stderr
	must(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })

	var serving map[string]any
	for deadline := time.Now().Add(30 * time.Second); serving == nil; {
		if time.Now().After(deadline) {
			t.Fatalf("no serving record:\n%s", &stderr)
		}
		time.Sleep(20 * time.Millisecond)
		// Only whole lines: the last may be in the middle of a write.
		out := stderr.String()
		serving = record(jsonRecords(t, out[:strings.LastIndexByte(out, '\n')+1]), "serving")
	}
	for _, k := range []string{"version", "files", "course", "native", "native_tls", "fingerprint", "accounts", "pepper", "audit", "metrics"} {
		if s, _ := serving[k].(string); s == "" {
			t.Errorf("the serving record has no %s: %v", k, serving)
		}
	}
	addr, _ := serving["course"].(string)
	c, err := client.Dial(context.Background(), addr)
	must(t, err)
	_, err = c.Register(context.Background(), "alice", larder.NewSignature("pw", course.CourseSalt))
	c.Close()
	must(t, err)

	must(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("larder serve exited with %v:\n%s", err, &stderr)
		}
	case <-time.After(time.Minute):
		t.Fatalf("larder serve did not stop:\n%s", &stderr)
	}
	recs := jsonRecords(t, stderr.String())
	req := record(recs, "request", "protocol", "course", "op", "register", "user", "alice")
	if req == nil {
		t.Fatalf("no request record of the registration:\n%s", &stderr)
	}
	if d, ok := req["duration"].(string); !ok || !parsesAsDuration(d) {
		t.Errorf("the request's duration is %#v, want a Go duration string", req["duration"])
	}
	if r := record(recs, "shutting down"); r == nil || r["grace"] != "30s" {
		t.Errorf("shutting down record %v, want grace \"30s\"", r)
	}
}

func parsesAsDuration(s string) bool {
	_, err := time.ParseDuration(s)
	return err == nil
}

// TestServeJSONLogsFailure: a server that cannot start says why in a JSON
// record too, and nothing else; the exit code is that of the error.
func TestServeJSONLogsFailure(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer taken.Close()
	var stderr bytes.Buffer
	cmd := exec.Command(os.Args[0], "serve", "--log-format", "json",
		"--listen", taken.Addr().String(), "--native-listen", "off",
		"--data", t.TempDir(), "--files", t.TempDir(), "--hash-memory", "64", "--hash-passes", "1")
	cmd.Env = append(os.Environ(), "LARDER_TEST_RUN_MAIN=1")
	cmd.Stderr = &stderr
	err = cmd.Run()
	if code := cmd.ProcessState.ExitCode(); err == nil || code != exitNetwork {
		t.Errorf("serve on a taken address: %v, exit %d, want %d", err, code, exitNetwork)
	}
	recs := jsonRecords(t, stderr.String())
	if len(recs) == 0 {
		t.Fatal("serve logged nothing")
	}
	last := recs[len(recs)-1]
	if e, _ := last["error"].(string); last["level"] != "ERROR" || !strings.Contains(e, "address already in use") {
		t.Errorf("last record %v, want an error saying the address is in use", last)
	}
}

// TestLoggerDurations: both formats write a duration as a Go duration
// string, never as a count of nanoseconds.
func TestLoggerDurations(t *testing.T) {
	for format, want := range map[string]string{
		"json": `"took":"1.5ms","in":{"wait":"2m0s"}`,
		"text": `took=1.5ms in.wait=2m0s`,
	} {
		var b bytes.Buffer
		l, err := newLogger(&b, new(slog.LevelVar), "info", format)
		must(t, err)
		l.Info("x", "took", 1500*time.Microsecond, slog.Group("in", slog.Duration("wait", 2*time.Minute)))
		if !strings.Contains(b.String(), want) {
			t.Errorf("%s: %q, want it to hold %q", format, b.String(), want)
		}
	}
}

// TestAuditWriterJSONLogsFailure: "larder audit-writer --log-format json"
// that cannot start says why in a JSON record, which main does not print
// again in plain text.
func TestAuditWriterJSONLogsFailure(t *testing.T) {
	_, stderr, err := runLarder(t, "", "audit-writer", "--log-format", "json", "--progress", "0",
		"--db", "postgres://nobody@127.0.0.1:1/none?sslmode=disable")
	if err == nil || ExitCode(err) != exitNetwork || !errors.As(err, new(*loggedError)) {
		t.Fatalf("audit-writer with no database: %v (exit %d), want a logged network error", err, ExitCode(err))
	}
	recs := jsonRecords(t, stderr)
	if len(recs) == 0 {
		t.Fatal("audit-writer logged nothing")
	}
	if last := recs[len(recs)-1]; last["level"] != "ERROR" || last["msg"] != "larder audit-writer failed" || !strings.Contains(last["error"].(string), "connection refused") {
		t.Errorf("last record %v, want the failure", last)
	}
}
