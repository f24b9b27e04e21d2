package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMetricsListener: --metrics-listen serves /metrics and /healthz while
// the server runs, and stops with it.
func TestMetricsListener(t *testing.T) {
	cfg := testServeConfig(t)
	cfg.MetricsListen = "127.0.0.1:0"
	m := &Main{Config: cfg, Logger: slog.New(slog.DiscardHandler)}
	if err := m.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	base := "http://" + m.MetricsAddr().String()
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 503 || !strings.Contains(body, "not listening") {
		t.Errorf("before Serve: %d %q", code, body)
	}
	served := make(chan error, 1)
	go func() { served <- m.Serve() }()
	deadline := time.Now().Add(10 * time.Second)
	for code, body := get("/healthz"); code != 200; code, body = get("/healthz") {
		if time.Now().After(deadline) {
			t.Fatalf("serving: %d %q", code, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "\nlarder_connections_total 0\n") || !strings.Contains(body, "larder_password_checks_total{") ||
		!strings.Contains(body, "\nlarder_audit_sink_up 1\n") || !strings.Contains(body, "\nlarder_audit_events_not_taken_total{reason=\"queue_full\"} 0\n") {
		t.Errorf("/metrics: %d %q", code, body)
	}
	if _, body := get("/metrics"); !strings.Contains(body, `larder_build_info{goarch="`+runtime.GOARCH+`",goos="`+runtime.GOOS+`",goversion="`+runtime.Version()+`",modified="false",revision="",revision_time="",version="(devel)"} 1`) {
		t.Errorf("/metrics has no larder_build_info of this test binary:\n%s", body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("the metrics listener still answers after Close")
	}
}

// TestProfilingListener: --pprof serves Go's profiles beside /metrics,
// and only with --metrics-listen; without it there are none.
func TestProfilingListener(t *testing.T) {
	for _, profiling := range []bool{false, true} {
		cfg := testServeConfig(t)
		cfg.MetricsListen, cfg.Profiling = "127.0.0.1:0", profiling
		m := &Main{Config: cfg, Logger: slog.New(slog.DiscardHandler)}
		if err := m.Open(t.Context()); err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get("http://" + m.MetricsAddr().String() + "/debug/pprof/heap?debug=1")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case profiling && (resp.StatusCode != 200 || !strings.Contains(string(body), "heap profile")):
			t.Errorf("with --pprof, /debug/pprof/heap: %d %.100q", resp.StatusCode, body)
		case !profiling && resp.StatusCode != 404:
			t.Errorf("without --pprof, /debug/pprof/heap: %d, want 404", resp.StatusCode)
		}
		m.Close()
	}
	cfg := testServeConfig(t)
	cfg.Profiling = true
	m := &Main{Config: cfg, Logger: slog.New(slog.DiscardHandler)}
	if err := m.Open(t.Context()); err == nil || !strings.Contains(err.Error(), "--metrics-listen") {
		t.Errorf("--pprof without --metrics-listen: got %v, want an error naming --metrics-listen", err)
	}
}
