package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/larderfs/larder/internal/auth"
)

// lockedBuffer is a bytes.Buffer that a server's goroutines can log to.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *lockedBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *lockedBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testLarder is a real larder server, run through Main as "larder serve"
// runs it, on 127.0.0.1:0 over temporary folders.
type testLarder struct {
	host, port string
	files      string // the served folder
	data       string // the data folder
	stopOnce   sync.Once
	stop       func() // graceful shutdown, then Close; checked
}

func (l *testLarder) addr() string { return net.JoinHostPort(l.host, l.port) }

// put writes a file into the served folder.
func (l *testLarder) put(t *testing.T, name string, data []byte) { putFile(t, l.files, name, data) }

// putFile writes data to the slash-separated name below dir, creating
// folders as needed.
func putFile(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	path := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// shutdown stops the server gracefully, once; later calls do nothing.
func (l *testLarder) shutdown() { l.stopOnce.Do(l.stop) }

// shuffleBlocks configures a server that sends blocks in random order.
func shuffleBlocks(c *ServeConfig) { c.ShuffleBlocks = true }

// startLarder starts a server with test defaults, adjusted by configure;
// it is shut down when the test ends.
func startLarder(t *testing.T, configure ...func(*ServeConfig)) *testLarder {
	t.Helper()
	logs := &lockedBuffer{}
	cfg := defaultServeConfig(func(string) string { return "" })
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.FilesDir = t.TempDir()
	cfg.RequestTimeout = 5 * time.Second
	cfg.WriteTimeout = 5 * time.Second
	// Cheap: these tests are about the wire and the program; the default
	// parameters are tested in internal/auth.
	cfg.Hash = auth.Params{Memory: 64, Time: 1, Threads: 1}
	for _, f := range configure {
		f(&cfg)
	}
	m := &Main{
		Config: cfg,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Open(ctx); err != nil {
		t.Fatalf("Open: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- m.Serve() }()
	host, port, err := net.SplitHostPort(m.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	l := &testLarder{host: host, port: port, files: m.FilesDir(), data: cfg.DataDir}
	l.stop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := m.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if t.Failed() {
			t.Logf("larder's log:\n%s", logs)
		}
	}
	t.Cleanup(l.shutdown)
	return l
}
