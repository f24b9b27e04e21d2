package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/course"
)

// activatedCmd returns a command that runs larder with args as a service
// manager starts a socket-activated service: the sockets of lns as file
// descriptors 3, 4, …, LISTEN_FDS their number, LISTEN_FDNAMES names
// (unset if ""), and LISTEN_PID the pid of larder itself, which a shell
// sets before it execs larder. The test's own copies are closed.
func activatedCmd(t *testing.T, names string, lns []net.Listener, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/bin/sh", append([]string{"-c", `LISTEN_PID=$$ exec "$0" "$@"`, os.Args[0]}, args...)...)
	cmd.Env = append(os.Environ(), "LARDER_TEST_RUN_MAIN=1", "LISTEN_FDS="+strconv.Itoa(len(lns)))
	if names != "" {
		cmd.Env = append(cmd.Env, "LISTEN_FDNAMES="+names)
	}
	for _, ln := range lns {
		f, err := ln.(*net.TCPListener).File()
		must(t, err)
		cmd.ExtraFiles = append(cmd.ExtraFiles, f)
		ln.Close()
		t.Cleanup(func() { f.Close() })
	}
	return cmd
}

func listenLoopback(t *testing.T, n int) ([]net.Listener, []string) {
	t.Helper()
	var lns []net.Listener
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		must(t, err)
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return lns, addrs
}

// TestServeSocketActivation: larder serve started as systemd starts a
// socket-activated service serves each protocol on the socket passed
// under its name, not on the address configured (the same address,
// which it could not have bound again), and metrics on the third.
func TestServeSocketActivation(t *testing.T) {
	lns, addrs := listenLoopback(t, 3)
	files := t.TempDir()
	cmd := activatedCmd(t, "course:native:metrics", lns, "serve", "--data", t.TempDir(), "--files", files,
		"--listen", addrs[0], "--native-listen", addrs[1], "--insecure-plaintext-native", "--hash-memory", "64", "--hash-passes", "1")
	p := startProcessCmd(t, cmd, files)
	if p.addr != addrs[0] {
		t.Errorf("course protocol served on %s, want the socket passed, %s", p.addr, addrs[0])
	}
	if !strings.Contains(p.stderr.String(), "socket activation: serving on the sockets the service manager passed") {
		t.Errorf("no log line of the sockets taken:\n%s", p.stderr)
	}

	p.put(t, "f.txt", []byte("served"))
	sig := larder.NewSignature("pw", "salt")
	if r := rawExchange(t, addrs[0], "alice", sig, ""); r.status != course.StatusOK {
		t.Fatalf("registration on the course socket: %v %q", r.status, r.payload)
	}
	if r := rawExchange(t, addrs[0], "alice", sig, "f.txt"); r.status != course.StatusOK || string(r.payload) != "served" {
		t.Errorf("download on the course socket: %v %q", r.status, r.payload)
	}
	conn, err := net.Dial("tcp", addrs[1])
	must(t, err)
	sess, err := client.NewSession(t.Context(), conn, "alice", sig, client.SessionOptions{})
	if err != nil {
		t.Fatalf("native session on the native socket: %v\n%s", err, p.stderr)
	}
	if w, err := sess.Whoami(t.Context()); err != nil || w.User != "alice" {
		t.Errorf("whoami on the native socket: %+v, %v", w, err)
	}
	sess.Close()
	waitUntil(t, "healthz OK on the metrics socket", func() bool {
		resp, err := http.Get("http://" + addrs[2] + "/healthz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode == http.StatusOK
	})

	must(t, p.cmd.Process.Signal(syscall.SIGTERM))
	if err := p.wait(); err != nil {
		t.Fatalf("larder exited with %v\n%s", err, p.stderr)
	}
}

// TestServeSocketActivationRefused: sockets without names, of a name
// larder does not know, named twice, or for a protocol turned off are
// refused at start, with what to change.
func TestServeSocketActivationRefused(t *testing.T) {
	for _, tc := range []struct {
		name, names string
		sockets     int
		args        []string
		want        []string
	}{
		{"no names", "", 2, nil, []string{"LISTEN_FDNAMES is not set", "FileDescriptorName=course, native or metrics"}},
		{"unknown name", "course:lnp", 2, nil, []string{`file descriptor 4 is named "lnp"`, "course (listen), native (native-listen), metrics (metrics-listen)"}},
		{"twice", "course:course", 2, nil, []string{`two sockets are named "course"`}},
		{"names short", "course", 2, nil, []string{`LISTEN_FDS says 2 socket(s) were passed, but LISTEN_FDNAMES "course" names 1`}},
		{"names long", "course:native:metrics", 2, nil, []string{`LISTEN_FDS says 2 socket(s) were passed, but LISTEN_FDNAMES "course:native:metrics" names 3`}},
		{"protocol off", "course:native", 2, []string{"--native-listen", "off"}, []string{`a socket named "native" was passed, but native-listen is off`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lns, _ := listenLoopback(t, tc.sockets)
			cmd := activatedCmd(t, tc.names, lns, append([]string{"serve", "--data", t.TempDir(), "--files", t.TempDir(),
				"--hash-memory", "64", "--hash-passes", "1"}, tc.args...)...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			done := make(chan error, 1)
			must(t, cmd.Start())
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if code := cmd.ProcessState.ExitCode(); code != exitUsage {
					t.Errorf("exit %v (code %d), want %d", err, code, exitUsage)
				}
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Fatalf("larder serve did not refuse the sockets:\n%s", stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr does not say %q:\n%s", w, stderr.String())
				}
			}
		})
	}
}
