package main

import (
	"bytes"
	"crypto/tls"
	"flag"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/internal/tlsconf"
)

// notifySocket is a service manager's end of NOTIFY_SOCKET: a datagram
// socket whose messages the test reads.
type notifySocket struct {
	conn *net.UnixConn
	path string
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	must(t, err)
	t.Cleanup(func() { conn.Close() })
	return &notifySocket{conn: conn, path: path}
}

// next returns the next message, within ten seconds.
func (n *notifySocket) next(t *testing.T) string {
	t.Helper()
	n.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 4096)
	k, err := n.conn.Read(b)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(b[:k])
}

// TestServeProcessSystemdAndReload: under a service manager (a real
// NOTIFY_SOCKET), larder says READY once it serves; a SIGHUP is RELOADING
// (with MONOTONIC_USEC) then READY; the configuration file is read again,
// its log level applied and a change that needs a restart reported; a
// broken file is refused with the running configuration kept; a request
// under way across the reloads completes; SIGTERM says STOPPING.
func TestServeProcessSystemdAndReload(t *testing.T) {
	ns := newNotifySocket(t)
	conf := filepath.Join(t.TempDir(), "larder.toml")
	must(t, os.WriteFile(conf, []byte("log-level = \"warn\"\naudit-queue = 100\n"), 0o600))
	p := startProcessEnv(t, nil, []string{"NOTIFY_SOCKET=" + ns.path, "LARDER_CONFIG=" + conf})
	if msg := ns.next(t); !strings.Contains(msg, "READY=1") || !strings.Contains(msg, "STATUS=serving") {
		t.Fatalf("first notification %q, want READY=1 with a status", msg)
	}
	p.put(t, "f.txt", []byte("served"))
	sig := larder.NewSignature("pw", "salt")
	if r := rawExchange(t, p.addr, "alice", sig, ""); r.status != course.StatusOK {
		t.Fatal(r.status)
	}
	// A request begun before the reloads, finished after them.
	c, err := net.Dial("tcp", p.addr)
	must(t, err)
	defer c.Close()
	var buf bytes.Buffer
	_, err = (&course.Request{Username: "alice", Signature: sig, Body: []byte("f.txt")}).WriteTo(&buf)
	must(t, err)
	req := buf.Bytes()
	_, err = c.Write(req[:10])
	must(t, err)

	must(t, os.WriteFile(conf, []byte("log-level = \"debug\"\naudit-queue = 200\n"), 0o600))
	must(t, p.cmd.Process.Signal(syscall.SIGHUP))
	if msg := ns.next(t); !strings.Contains(msg, "RELOADING=1") || !strings.Contains(msg, "MONOTONIC_USEC=") {
		t.Errorf("notification at SIGHUP %q, want RELOADING=1 with MONOTONIC_USEC", msg)
	}
	if msg := ns.next(t); !strings.Contains(msg, "READY=1") {
		t.Errorf("notification after the reload %q, want READY=1", msg)
	}
	waitUntil(t, "the reload logged", func() bool { return strings.Contains(p.stderr.String(), "SIGHUP: configuration reloaded") })
	log := p.stderr.String()
	if !strings.Contains(log, "applied=[log-level]") || !strings.Contains(log, "needs_restart=[audit-queue]") {
		t.Errorf("the reload's log line: want log-level debug applied and audit-queue needing a restart:\n%s", log)
	}

	must(t, os.WriteFile(conf, []byte("log-level = \"debug\"\naudit-queue = \n"), 0o600))
	must(t, p.cmd.Process.Signal(syscall.SIGHUP))
	ns.next(t) // RELOADING
	ns.next(t) // READY: the server goes on
	waitUntil(t, "the refused reload logged", func() bool {
		return strings.Contains(p.stderr.String(), "the configuration was not reloaded; the server goes on with the running one")
	})
	if !strings.Contains(p.stderr.String(), conf+":2:") {
		t.Errorf("the refusal does not say where the file is wrong:\n%s", p.stderr)
	}

	_, err = c.Write(req[10:])
	must(t, err)
	if r := readReply(t, c); r.status != course.StatusOK || string(r.payload) != "served" {
		t.Errorf("the request under way across the reloads: %v %q", r.status, r.payload)
	}
	must(t, p.cmd.Process.Signal(syscall.SIGTERM))
	if msg := ns.next(t); !strings.Contains(msg, "STOPPING=1") {
		t.Errorf("notification at SIGTERM %q, want STOPPING=1", msg)
	}
	if err := p.wait(); err != nil {
		t.Fatalf("larder exited with %v\n%s", err, p.stderr)
	}
}

// TestReloadRecordsEvent: a reload is an audit event, saying what was
// applied and what needs a restart, or why it was refused.
func TestReloadRecordsEvent(t *testing.T) {
	l := startLarder(t)
	lv := new(slog.LevelVar)
	lv.Set(slog.LevelWarn)
	l.main.Level, l.main.Logger = lv, slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: lv}))
	next := l.cfg
	next.LogLevel = "debug"
	next.Audit.QueueSize = 7
	l.main.ReloadConfig(next, nil)
	if !l.main.Logger.Enabled(t.Context(), slog.LevelDebug) {
		t.Error("the reloaded log level debug is not in force")
	}
	l.main.ReloadConfig(next, usageError("larder.toml:2:1: unknown key \"x\""))
	waitUntil(t, "the events delivered", func() bool {
		st := l.main.audit.log.Stats()
		return st.Delivered == st.Taken
	})
	out, stderr, err := runLarder(t, "", "audit", "query", "--data", l.data, "--kind", "server.reload", "--json")
	if err != nil {
		t.Fatalf("audit query: %v\n%s", err, stderr)
	}
	events := jsonEvents(t, out)
	if len(events) != 2 {
		t.Fatalf("server.reload events: %+v, want 2", events)
	}
	if ev := events[0]; ev.Status != 0 || ev.Reason != "applied: log-level; needs a restart: audit-queue" {
		t.Errorf("the reload's event: %+v", ev)
	}
	if ev := events[1]; ev.Status != 1 || !strings.Contains(ev.Reason, `refused: larder.toml:2:1: unknown key "x"`) {
		t.Errorf("the refused reload's event: %+v", ev)
	}
}

// TestReloadCertificate: a reload serves a renewed certificate to new
// connections, with no restart.
func TestReloadCertificate(t *testing.T) {
	old, renewed := t.TempDir(), t.TempDir()
	for _, d := range []string{old, renewed} {
		_, err := tlsconf.LoadOrCreate(d)
		must(t, err)
	}
	live := t.TempDir()
	copyFile := func(from, to string) {
		b, err := os.ReadFile(from)
		must(t, err)
		must(t, os.WriteFile(to, b, 0o600))
	}
	cert, key := filepath.Join(live, "cert.pem"), filepath.Join(live, "key.pem")
	copyFile(filepath.Join(old, tlsconf.CertFile), cert)
	copyFile(filepath.Join(old, tlsconf.KeyFile), key)
	l := startLarder(t, func(c *ServeConfig) { c.TLSCert, c.TLSKey = cert, key })
	served := func() string {
		c, err := tls.Dial("tcp", l.lnpAddr(), &tls.Config{InsecureSkipVerify: true})
		must(t, err)
		defer c.Close()
		return tlsconf.Fingerprint(c.ConnectionState().PeerCertificates[0].Raw)
	}
	before := served()
	copyFile(filepath.Join(renewed, tlsconf.CertFile), cert)
	copyFile(filepath.Join(renewed, tlsconf.KeyFile), key)
	l.main.ReloadConfig(l.cfg, nil)
	after := served()
	if after == before || after != l.main.identity.Fingerprint {
		t.Errorf("certificate served after the reload %s (before %s, identity %s), want the renewed one", after, before, l.main.identity.Fingerprint)
	}
}

// TestReloadDifferences: every setting that changed is named by its key,
// those parsed by functions too, and nothing else.
func TestReloadDifferences(t *testing.T) {
	cur := defaultServeConfig(func(string) string { return "" })
	next := cur
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	next.define(fs)
	changes := map[string]string{
		"throttle-pair": "3/10s", "quota-bytes": "1GiB", "hash-memory": "40000", "audit-retention": "30d",
		"min-free": "5%", "max-conns": "7", "registration": "closed", "log-level": "debug",
		// Flags whose default is not the configuration's value.
		"quota-files": "9", "hash-lower-policy": "true", "storage": "s3://b?endpoint=http://127.0.0.1:1&region=r",
		"device-lifetime": "1h", "shuffle-blocks": "true", "metrics-listen": "127.0.0.1:0", "files": "/srv",
	}
	for k, v := range changes {
		must(t, fs.Set(k, v))
	}
	got := strings.Join(cur.differences(next), " ")
	if want := "audit-retention device-lifetime files hash-lower-policy hash-memory log-level max-conns metrics-listen min-free quota-bytes quota-files registration shuffle-blocks storage throttle-pair"; got != want {
		t.Errorf("differences: %q, want %q", got, want)
	}
	if d := cur.differences(cur); len(d) != 0 {
		t.Errorf("differences of a configuration with itself: %q", d)
	}
}

// TestReloadAppliesPolicies: a reload closes registration, tightens the
// throttle and changes the quotas of the running server.
func TestReloadAppliesPolicies(t *testing.T) {
	l := startLarder(t)
	next := l.cfg
	next.Registration = "closed"
	next.Throttle.PairFailures, next.Throttle.PairRefill = 1, time.Hour
	next.Quota = larder.Quota{Bytes: 1 << 20, Files: 3}
	l.main.ReloadConfig(next, nil)
	if r := rawExchange(t, l.addr(), "zed", larder.NewSignature("pw", "salt"), ""); r.status == course.StatusOK {
		t.Error("a registration after the reload closed it was accepted")
	}
	sig := larder.NewSignature("pw", "salt")
	if _, err := l.main.srv.Auth.Register(t.Context(), "alice", sig[:]); err != nil {
		t.Fatal(err)
	}
	wrong := larder.NewSignature("wrong", "salt")
	rawExchange(t, l.addr(), "alice", wrong, "f.txt")
	if r := rawExchange(t, l.addr(), "alice", wrong, "f.txt"); !strings.Contains(string(r.payload), "too many failed") {
		t.Errorf("a second wrong login under the reloaded throttle (1 per hour): %v %q, want refused by the throttle", r.status, r.payload)
	}
	if q := l.main.srv.Files.Quota(); q != next.Quota {
		t.Errorf("quota after the reload: %+v, want %+v", q, next.Quota)
	}
}
