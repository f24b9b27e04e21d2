package metrics_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/larderfs/larder/internal/metrics"
	"github.com/larderfs/larder/internal/server"
)

// TestHealthzFollowsServer: /healthz is 503 before the server listens, 200
// while it serves, and 503 from the start of its shutdown.
func TestHealthzFollowsServer(t *testing.T) {
	var idle server.Server
	h := metrics.NewHandler(metrics.Config{Server: idle.Stats})
	if code, body := serve(h, "GET", "/healthz"); code != http.StatusServiceUnavailable || body != "unavailable\nserver: not listening\n" {
		t.Errorf("before Serve: %d %q", code, body)
	}

	r := newRig(t)
	url := serveHTTP(t, metrics.NewHandler(metrics.Config{Server: r.srv.Stats}))
	if code, body := get(t, url+"/healthz"); code != http.StatusOK || body != "ok\nserver: serving, 0 connections open\n" {
		t.Errorf("serving: %d %q", code, body)
	}
	must(t, r.srv.Shutdown(context.Background()))
	if code, body := get(t, url+"/healthz"); code != http.StatusServiceUnavailable || body != "unavailable\nserver: shutting down\n" {
		t.Errorf("after Shutdown: %d %q", code, body)
	}
}

func TestHealthzChecks(t *testing.T) {
	sinkDown := func() metrics.AuditStats { return metrics.AuditStats{SpoolBytes: 12345, SpoolSegments: 2} }
	sinkUp := func() metrics.AuditStats { return metrics.AuditStats{SinkUp: true} }
	spoolFull := func() metrics.AuditStats {
		return metrics.AuditStats{SpoolBytes: 1 << 20, SpoolSegments: 1, SpoolMax: 1 << 20, NotTakenSpoolFull: 3}
	}
	spoolFailing := func() metrics.AuditStats {
		return metrics.AuditStats{SinkUp: true, SpoolFailing: true, QueueDepth: 10, QueueCapacity: 100}
	}
	spoolNearlyFull := func() metrics.AuditStats {
		return metrics.AuditStats{SpoolBytes: 1<<20 - 1, SpoolSegments: 1, SpoolMax: 1 << 20}
	}
	fails := func(context.Context) error { return errors.New("disk full\nreally") }
	passes := func(context.Context) error { return nil }
	tests := []struct {
		name string
		cfg  metrics.Config
		code int
		body string
	}{
		{"nothing to check", metrics.Config{}, 200, "ok\n"},
		{"audit sink up", metrics.Config{Audit: sinkUp}, 200, "ok\naudit sink: up\n"},
		// Events are spooled while the sink is down: the server still works.
		{"audit sink down", metrics.Config{Audit: sinkDown}, 200,
			"ok\naudit sink: down; events wait in the spool (12345 bytes in 2 segments)\n"},
		// A spool that refuses events: the server can no longer keep its
		// audit trail, and a load balancer should send clients elsewhere.
		{"audit spool full", metrics.Config{Audit: spoolFull}, 503,
			"degraded\naudit sink: down; events wait in the spool (1048576 bytes in 1 segments)\n" +
				"audit spool: full (1048576 of 1048576 bytes): new events are refused\n"},
		{"audit spool unwritable", metrics.Config{Audit: spoolFailing}, 503,
			"degraded\naudit sink: up\naudit spool: cannot be written; events wait in the queue (10 of 100), then are refused\n"},
		{"audit spool nearly full", metrics.Config{Audit: spoolNearlyFull}, 200,
			"ok\naudit sink: down; events wait in the spool (1048575 bytes in 1 segments)\n"},
		{"check passes", metrics.Config{Checks: []metrics.Check{{Name: "db", Func: passes}}}, 200, "ok\ndb: ok\n"},
		{"check fails", metrics.Config{Checks: []metrics.Check{{Name: "db", Func: passes}, {Name: "spool", Func: fails}}}, 503,
			"unavailable\ndb: ok\nspool: disk full really\n"},
		{"advisory check fails", metrics.Config{Checks: []metrics.Check{{Name: "spool", Func: fails, Advisory: true}}}, 200,
			"ok\nspool: disk full really\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, body := serve(metrics.NewHandler(tt.cfg), "GET", "/healthz"); code != tt.code || body != tt.body {
				t.Errorf("got %d %q, want %d %q", code, body, tt.code, tt.body)
			}
		})
	}
}

// TestHealthzGivesChecksADeadline: a check is told when to give up.
func TestHealthzGivesChecksADeadline(t *testing.T) {
	slow := func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); !ok {
			return errors.New("no deadline")
		}
		return nil
	}
	h := metrics.NewHandler(metrics.Config{Checks: []metrics.Check{{Name: "slow", Func: slow}}})
	if code, body := serve(h, "GET", "/healthz"); code != 200 || body != "ok\nslow: ok\n" {
		t.Errorf("got %d %q", code, body)
	}
}

func TestRoutes(t *testing.T) {
	h := metrics.NewHandler(metrics.Config{})
	for _, tt := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/metrics", 200},
		{"HEAD", "/metrics", 200},
		{"HEAD", "/healthz", 200},
		{"POST", "/healthz", 405},
		{"DELETE", "/metrics", 405},
		{"GET", "/", 404},
		{"GET", "/debug/pprof/", 404},
	} {
		if code, _ := serve(h, tt.method, tt.path); code != tt.code {
			t.Errorf("%s %s: %d, want %d", tt.method, tt.path, code, tt.code)
		}
	}
}

// serve runs one request through h in memory.
func serve(h http.Handler, method, path string) (int, string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Code, rec.Body.String()
}
