package tlsconf_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder/internal/clientconf"
	"github.com/larderfs/larder/internal/flock"
	"github.com/larderfs/larder/internal/tlsconf"
)

func newIdentity(t testing.TB) *tlsconf.Identity {
	t.Helper()
	id, err := tlsconf.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func newKnown(t *testing.T) *clientconf.KnownServers {
	return clientconf.Open(filepath.Join(t.TempDir(), "config", "larder")).KnownServers()
}

// TestPinning follows a client through its first connection to a server,
// a second one, and one after the server got a new identity.
func TestPinning(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			id := newIdentity(t)
			srv := startServer(t, network, id.ServerConfig())
			known := newKnown(t)
			var warn strings.Builder
			cfg, err := tlsconf.ClientConfig(srv.Addr, known, tlsconf.ClientOptions{Warn: &warn})
			if err != nil {
				t.Fatal(err)
			}

			// First use: the certificate is pinned, and the user told.
			cs, err := dial(t, srv.Addr, cfg)
			if err != nil {
				t.Fatalf("first connection: %v", err)
			}
			if cs.Version != tls.VersionTLS13 {
				t.Errorf("negotiated %s, want TLS 1.3", tls.VersionName(cs.Version))
			}
			if got, ok, err := known.Lookup(srv.Addr); err != nil || !ok || got != id.Fingerprint {
				t.Errorf("after first use: pinned %q, %v, %v; want %s", got, ok, err, id.Fingerprint)
			}
			note := warn.String()
			if strings.Count(note, "\n") != 1 || !strings.Contains(note, id.Fingerprint) || !strings.Contains(note, srv.Addr) {
				t.Errorf("first-use note %q: want one line naming %s and %s", note, srv.Addr, id.Fingerprint)
			}

			// Second use: verified, silently.
			warn.Reset()
			if _, err := dial(t, srv.Addr, cfg); err != nil {
				t.Fatalf("second connection: %v", err)
			}
			if warn.Len() != 0 {
				t.Errorf("second connection wrote %q", warn.String())
			}

			// The server comes back with another key: refused, whatever
			// config the client builds.
			other := newIdentity(t)
			srv.serve(other.ServerConfig())
			cfg, err = tlsconf.ClientConfig(srv.Addr, known, tlsconf.ClientOptions{Warn: &warn})
			if err != nil {
				t.Fatal(err)
			}
			_, err = dial(t, srv.Addr, cfg)
			changed, ok := errors.AsType[*tlsconf.CertChangedError](err)
			if !ok {
				t.Fatalf("connection to a changed server: got %v, want a *CertChangedError", err)
			}
			want := tlsconf.CertChangedError{Addr: srv.Addr, Pinned: id.Fingerprint, Got: other.Fingerprint, File: known.Path()}
			if *changed != want {
				t.Errorf("got %+v, want %+v", *changed, want)
			}
			for _, s := range []string{srv.Addr, id.Fingerprint, other.Fingerprint, known.Path(), "remove the line", "man-in-the-middle"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if got, _, _ := known.Lookup(srv.Addr); got != id.Fingerprint {
				t.Errorf("the refusal changed the pin to %s", got)
			}
			if warn.Len() != 0 {
				t.Errorf("the refusal wrote a note %q", warn.String())
			}

			// Back to the pinned identity: accepted again.
			srv.serve(id.ServerConfig())
			if _, err := dial(t, srv.Addr, cfg); err != nil {
				t.Errorf("connection to the pinned server: %v", err)
			}
		})
	}
}

// TestPinPerServer checks that a pin is for a server however its address
// is spelled (localhost and 127.0.0.1 are one), and for its port only.
func TestPinPerServer(t *testing.T) {
	id := newIdentity(t)
	srv := startServer(t, "tcp4", id.ServerConfig())
	known := newKnown(t)
	_, port, _ := strings.Cut(srv.Addr, ":")
	other := newIdentity(t).Fingerprint
	// Someone else's server once answered at localhost on this port.
	if err := known.Record("LocalHost:"+port, other); err != nil {
		t.Fatal(err)
	}
	var warn strings.Builder
	for _, addr := range []string{srv.Addr, "localhost:" + port} {
		cfg, err := tlsconf.ClientConfig(addr, known, tlsconf.ClientOptions{Warn: &warn})
		if err != nil {
			t.Fatal(err)
		}
		if _, err = dial(t, addr, cfg); !isCertChanged(err) {
			t.Errorf("%s: got %v, want a *CertChangedError", addr, err)
		}
	}
	// A pin for another port of the host does not hold for this one.
	known = newKnown(t)
	if err := known.Record("127.0.0.1:1", other); err != nil {
		t.Fatal(err)
	}
	cfg, err := tlsconf.ClientConfig(srv.Addr, known, tlsconf.ClientOptions{Warn: &warn})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial(t, srv.Addr, cfg); err != nil {
		t.Errorf("%s with a pin for port 1 only: %v", srv.Addr, err)
	}
}

// TestPinRace has another client pin another certificate for the server
// between this client's lookup, which finds no pin, and its record: the
// handshake fails with a *CertChangedError, as when the other pin was
// there first, and the other pin stays.
func TestPinRace(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("watches the lock file's descriptors in /proc/self/fd, which only Linux has")
	}
	id := newIdentity(t)
	srv := startServer(t, "tcp4", id.ServerConfig())
	known := newKnown(t)
	// The other client holds the lock while it pins.
	lockPath := known.Path() + ".lock"
	unlock, err := flock.LockPath(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { unlock() }()
	cfg, err := tlsconf.ClientConfig(srv.Addr, known, tlsconf.ClientOptions{Warn: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", srv.Addr, cfg)
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	// The client has looked up and found nothing once it opens the lock
	// file too, to wait for the lock.
	for deadline := time.Now().Add(10 * time.Second); openCount(t, lockPath) < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the client never waited for the known-servers lock")
		}
	}
	other := newIdentity(t).Fingerprint
	if err := flock.ReplaceFile(known.Path(), []byte(srv.Addr+" "+other+"\n")); err != nil {
		t.Fatal(err)
	}
	unlock()
	unlock = func() {}

	err = <-done
	ce, ok := errors.AsType[*tlsconf.CertChangedError](err)
	if !ok || ce.Addr != srv.Addr || ce.Pinned != other || ce.Got != id.Fingerprint || ce.File != known.Path() {
		t.Errorf("got %v, want a *CertChangedError: pinned %s, got %s", err, other, id.Fingerprint)
	}
	if got, _, err := known.Lookup(srv.Addr); err != nil || got != other {
		t.Errorf("after the race the pin is %q (%v), want the other client's %s", got, err, other)
	}
}

// openCount returns how many of this process's file descriptors are open
// on the file at path.
func openCount(t *testing.T, path string) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && target == path {
			n++
		}
	}
	return n
}

func isCertChanged(err error) bool {
	_, ok := errors.AsType[*tlsconf.CertChangedError](err)
	return ok
}

func TestClientCA(t *testing.T) {
	ca := newTestCA(t)
	id, err := tlsconf.LoadFiles(ca.issue(t, "127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, "tcp4", id.ServerConfig())
	_, port, _ := strings.Cut(srv.Addr, ":")
	known := newKnown(t)
	opts := tlsconf.ClientOptions{CAFile: ca.pemFile}

	cfg, err := tlsconf.ClientConfig(srv.Addr, known, opts)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := dial(t, srv.Addr, cfg)
	if err != nil {
		t.Fatalf("server with a certificate from the CA: %v", err)
	}
	if cs.Version != tls.VersionTLS13 {
		t.Errorf("negotiated %s, want TLS 1.3", tls.VersionName(cs.Version))
	}
	if len(cs.VerifiedChains) == 0 {
		t.Error("no verified chain: the certificate was not verified")
	}
	if _, err := os.Stat(known.Path()); err == nil {
		t.Error("CA mode pinned the certificate")
	}

	// The certificate names 127.0.0.1, not localhost.
	cfg, err = tlsconf.ClientConfig("localhost:"+port, known, opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = dial(t, "localhost:"+port, cfg)
	if _, ok := errors.AsType[x509.HostnameError](err); !ok {
		t.Errorf("server under a name its certificate lacks: got %v, want an x509.HostnameError", err)
	}

	// A self-signed server is not from the CA.
	srv.serve(newIdentity(t).ServerConfig())
	cfg, err = tlsconf.ClientConfig(srv.Addr, known, opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = dial(t, srv.Addr, cfg)
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); !ok {
		t.Errorf("self-signed server: got %v, want an x509.UnknownAuthorityError", err)
	}
}

// TestClientTrustsCertFile checks what ClientOptions.CAFile promises: a
// server's own cert.pem verifies it, under the names it holds.
func TestClientTrustsCertFile(t *testing.T) {
	dir := t.TempDir()
	id, err := tlsconf.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, "tcp4", id.ServerConfig())
	_, port, _ := strings.Cut(srv.Addr, ":")
	for _, addr := range []string{srv.Addr, "localhost:" + port} {
		cfg, err := tlsconf.ClientConfig(addr, nil, tlsconf.ClientOptions{CAFile: filepath.Join(dir, tlsconf.CertFile)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dial(t, addr, cfg); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
}

func TestServerRefusesTLS12(t *testing.T) {
	srv := startServer(t, "tcp4", newIdentity(t).ServerConfig())
	cfg := &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}
	if _, err := dial(t, srv.Addr, cfg); err == nil {
		t.Error("a TLS 1.2 client connected")
	}
}

func TestClientConfigErrors(t *testing.T) {
	known := newKnown(t)
	if _, err := tlsconf.ClientConfig("example.org", known, tlsconf.ClientOptions{}); err == nil {
		t.Error("an address without a port was accepted")
	}
	if _, err := tlsconf.ClientConfig("example.org:1", nil, tlsconf.ClientOptions{}); err == nil {
		t.Error("pinning without a known-servers file was accepted")
	}
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := tlsconf.ClientConfig("example.org:1", nil, tlsconf.ClientOptions{CAFile: notPEM}); err == nil || !strings.Contains(err.Error(), notPEM) {
		t.Errorf("a CA file without certificates: got %v, want an error naming it", err)
	}
	cfg, err := tlsconf.ClientConfig("[::1]:23456", known, tlsconf.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ServerName != "::1" || cfg.MinVersion != tls.VersionTLS13 {
		t.Errorf("ServerName %q, MinVersion %x; want ::1 and TLS 1.3", cfg.ServerName, cfg.MinVersion)
	}
}
