package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/course"
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
	files      string      // the served folder
	data       string      // the data folder
	cfg        ServeConfig // as started: restart and admin reuse it
	main       *Main
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

// testServeConfig returns the configuration of a test server: port 0 on
// loopback, fresh temporary folders, short timeouts, cheap hashes.
func testServeConfig(t *testing.T) ServeConfig {
	cfg := defaultServeConfig(func(string) string { return "" })
	cfg.Listen = "127.0.0.1:0"
	cfg.LNPListen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.FilesDir = t.TempDir()
	cfg.RequestTimeout = 5 * time.Second
	cfg.WriteTimeout = 5 * time.Second
	// Cheap: these tests are about the wire and the program; the default
	// parameters are tested in internal/auth.
	cfg.Hash = auth.Params{Memory: 64, Time: 1, Threads: 1}
	return cfg
}

// startLarder starts a server with test defaults, adjusted by configure;
// it is shut down when the test ends.
func startLarder(t *testing.T, configure ...func(*ServeConfig)) *testLarder {
	t.Helper()
	logs := &lockedBuffer{}
	cfg := testServeConfig(t)
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
	var host, port string
	if m.Addr() != nil { // else --listen off
		var err error
		if host, port, err = net.SplitHostPort(m.Addr().String()); err != nil {
			t.Fatal(err)
		}
	}
	l := &testLarder{host: host, port: port, files: m.FilesDir(), data: cfg.DataDir, cfg: cfg, main: m}
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

// restart shuts l down and starts a server on the same folders, database
// and pepper file, with l's configuration adjusted by configure.
func (l *testLarder) restart(t *testing.T, configure ...func(*ServeConfig)) *testLarder {
	t.Helper()
	l.shutdown()
	prev := l.cfg
	return startLarder(t, append([]func(*ServeConfig){func(c *ServeConfig) { *c = prev }}, configure...)...)
}

// accountFlags returns the flags that point "larder admin" at the accounts
// of c and make it hash as c does.
func accountFlags(c AccountConfig) []string {
	args := []string{"--data", c.DataDir,
		"--hash-memory", fmt.Sprint(c.Hash.Memory), "--hash-passes", fmt.Sprint(c.Hash.Time), "--hash-lanes", fmt.Sprint(c.Hash.Threads)}
	if c.DB != "" {
		args = append(args, "--db", c.DB)
	}
	if c.PepperFile != "" {
		args = append(args, "--pepper-file", c.PepperFile)
	}
	return args
}

// admin runs "larder admin ARGS" in-process on l's accounts, as an
// administrator would beside the running server.
func (l *testLarder) admin(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	args = append(append([]string{"admin"}, args...), accountFlags(l.cfg.AccountConfig)...)
	return runLarder(t, stdin, args...)
}

// runLarder runs larder with args in-process, stdin as its standard input,
// in an environment that names only a private data home (so that nothing
// lands in the default data folder), and returns what it printed.
func runLarder(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return runLarderContext(ctx, t, stdin, args...)
}

// runLarderContext is runLarder until ctx ends: for "larder serve", which
// runs until then unless it refuses to start.
func runLarderContext(ctx context.Context, t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	home := t.TempDir()
	var out, errOut bytes.Buffer
	env := &Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut, Getenv: func(k string) string {
		if k == "XDG_DATA_HOME" {
			return home
		}
		return ""
	}}
	err = Run(ctx, env, args)
	return out.String(), errOut.String(), err
}

// rawExchangeFrom is rawExchange from the source address src, or the
// system's choice if src is "". On Linux the whole of 127.0.0.0/8 is
// loopback, so one test can be clients at several addresses.
func rawExchangeFrom(t *testing.T, src, addr, user string, sig larder.Signature, path string) wireReply {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := d.Dial("tcp", addr)
	must(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	_, err = (&course.Request{Username: user, Signature: sig, Body: []byte(path)}).WriteTo(c)
	must(t, err)
	return readReply(t, c)
}
