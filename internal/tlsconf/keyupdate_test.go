package tlsconf_test

import (
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder/internal/tlsconf"
)

// TestConnKeyUpdateMidWrite checks that a peer's KeyUpdate, which asks
// for one back, mid-transfer neither stalls nor corrupts the stream:
// crypto/tls answers it from Read, on another goroutine, while Writes
// gather records. Go's TLS cannot send a KeyUpdate, so the peer is
// OpenSSL's s_client, whose "K" command sends one.
func TestConnKeyUpdateMidWrite(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("no openssl in PATH to send KeyUpdates: not tested")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	out, err := os.Create(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	msgs := filepath.Join(dir, "msgs")
	cmd := exec.Command(openssl, "s_client", "-connect", ln.Addr().String(), "-msg", "-msgfile", msgs)
	cmd.Stdout, cmd.Stderr = out, io.Discard
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		stdin.Close()
		cmd.Process.Kill()
		<-exited
	}()

	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c := tlsconf.Server(nc, newIdentity(t).ServerConfig())
	c.SetDeadline(time.Now().Add(60 * time.Second))
	go io.Copy(io.Discard, c) // Reads, which answer the KeyUpdates
	var want []byte
	for i := range 24 {
		p := pattern(1<<20, byte(i))
		want = append(want, p...)
		if i%4 == 2 {
			// A few: crypto/tls ends a connection after 16 records in a
			// row that carry no data.
			io.WriteString(stdin, "K\n")
		}
		if _, err := c.Write(p); err != nil {
			t.Fatalf("Write %d: %v", i, err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited: // at the close_notify
		exited <- nil
	case <-time.After(30 * time.Second):
		t.Fatal("s_client did not end after the close_notify")
	}

	// s_client prints its own lines among the data: the session before
	// it, a line for each record that held no data, the tickets at the
	// end.
	got, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	start := bytes.Index(got, want[:64])
	if start < 0 {
		t.Fatal("s_client received none of the data")
	}
	got = bytes.ReplaceAll(got[start:], []byte("read R BLOCK\n"), nil)
	if !bytes.HasPrefix(got, want) {
		t.Fatalf("s_client received other bytes than the %d written", len(want))
	}
	log, err := os.ReadFile(msgs)
	if err != nil {
		t.Fatal(err)
	}
	var sent, answered int
	for line := range strings.Lines(string(log)) {
		if strings.Contains(line, "KeyUpdate") {
			if strings.HasPrefix(line, ">>>") {
				sent++
			} else if strings.HasPrefix(line, "<<<") {
				answered++
			}
		}
	}
	if sent == 0 || answered == 0 {
		t.Fatalf("s_client sent %d KeyUpdates and was answered %d times: the transfer ran without one", sent, answered)
	}
	t.Logf("%d KeyUpdates during the transfer, %d answered", sent, answered)
}
