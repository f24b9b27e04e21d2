//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestNginxConfig(t *testing.T) {
	// A space in every path: the configuration must quote them.
	dir := filepath.Join(t.TempDir(), "with space")
	files, recv := filepath.Join(dir, "files"), filepath.Join(dir, "received")
	for _, d := range []string{files, recv} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	cfg := nginxConfig(dir, "127.0.0.1:18080", files, recv, false)
	for _, want := range []string{"daemon off;\n", "master_process on;\n", "worker_processes auto;\n",
		`error_log "` + dir + `/error.log";`, `pid "` + dir + `/nginx.pid";`, `client_body_temp_path "` + dir + `/client_body_temp";`,
		"access_log off;\n", "sendfile on;\n", "tcp_nopush on;\n", "keepalive_timeout 60;\n", "listen 127.0.0.1:18080;\n",
		`alias "` + files + `/";`, `alias "` + recv + `/";`, "dav_methods PUT;\n", "client_max_body_size 0;\n"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
	if strings.Contains(cfg, "user ") {
		t.Errorf("not as root: config names a user:\n%s", cfg)
	}
	if !strings.Contains(nginxConfig(dir, "127.0.0.1:1", files, recv, true), "\nuser root;\n") {
		t.Error("as root: config lacks user root")
	}
	if got, want := nginxQuote(`/a "b"\c`), `"/a \"b\"\\c"`; got != want {
		t.Errorf("nginxQuote: got %s, want %s", got, want)
	}

	path, err := findNginx()
	if err != nil {
		t.Skipf("nginx -t not run: nginx %v", err)
	}
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(nginxConfig(dir, addr, files, recv, os.Geteuid() == 0)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(path, "-t", "-c", conf, "-p", dir+"/", "-e", filepath.Join(dir, "error.log")).CombinedOutput()
	if err != nil {
		t.Errorf("nginx -t: %v: %s", err, out)
	}
}

// testLog writes the bench's progress lines into the test's log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestNginxTransfers(t *testing.T) {
	path, err := findNginx()
	if err != nil {
		t.Skipf("nginx %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env, err := newEnv(ctx, testLog{t}, testLog{t}, commonOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	dir, specs, err := env.makeFiles(3<<20 + 5)
	if err != nil {
		t.Fatal(err)
	}
	f := specs[0]
	src := filepath.Join(dir, f.Path)
	work, err := env.mkdir("transfers")
	if err != nil {
		t.Fatal(err)
	}
	ng, err := env.startNginx(path, dir)
	if err != nil {
		t.Fatal(err)
	}
	if ng.workers < 1 {
		t.Errorf("got %d workers, want some", ng.workers)
	}
	xs := ng.xfers(f, src, work)
	if len(xs) != 2 || xs[0].direction != "upload" || xs[1].direction != "download" {
		t.Fatalf("got %d transfers, want an upload and a download", len(xs))
	}
	for _, x := range xs {
		var s xferSample
		// runXfer runs the check too: the upload against the file on
		// nginx's disk, the download by its SHA-256.
		if err := runXfer(env, x, int64(f.Size), 30*time.Second, 0, &s); err != nil {
			t.Fatalf("%s %s: %v", x.label(), x.direction, err)
		}
		if s.mbps <= 0 || s.server < 0 || s.client < 0 {
			t.Errorf("%s: got %+v", x.direction, s)
		}
	}
	if _, err := os.Stat(filepath.Join(ng.recv, "upload.bin")); !os.IsNotExist(err) {
		t.Errorf("the upload's check left the file: %v", err)
	}

	// The client refuses a body whose SHA-256 is not the one it knows.
	bad := f
	bad.Sum[0] ^= 1
	if err := ng.download(ctx, bad, filepath.Join(work, "bad.bin")); err == nil || !strings.Contains(err.Error(), "SHA-256") {
		t.Errorf("download with a wrong sum: got %v, want a SHA-256 mismatch", err)
	}
	missing := f
	missing.Path = "missing.bin"
	if err := ng.download(ctx, missing, filepath.Join(work, "missing.bin")); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("download of a missing file: got %v, want 404", err)
	}

	// The workers' CPU counts, and stopping the master stops them.
	workers := childPIDs(ng.proc.PID)
	if len(workers) != ng.workers {
		t.Errorf("got %d workers, want %d", len(workers), ng.workers)
	}
	if _, err := familyCPU(ng.proc); err != nil {
		t.Errorf("familyCPU: %v", err)
	}
	env.stop(ng.proc)
	for _, pid := range workers {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("worker %d after the master stopped: got %v, want ESRCH", pid, err)
		}
	}
}

func TestFindNginxMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		t.Skip("/usr/sbin/nginx is installed")
	}
	if _, err := findNginx(); err == nil || err.Error() != nginxNotFound {
		t.Errorf("got %v, want %q", err, nginxNotFound)
	}
}

func TestOnOff(t *testing.T) {
	c := newLNPConfig().(*lnpConfig)
	fs := flag.NewFlagSet("native", flag.ContinueOnError)
	c.register(fs)
	if got := fs.Lookup("nginx").Value.String(); got != "on" {
		t.Errorf("default: got %q, want on", got)
	}
	if err := fs.Parse([]string{"--nginx", "off"}); err != nil || c.nginx {
		t.Errorf("--nginx off: got %v, %v", c.nginx, err)
	}
	var o onOff
	if err := o.Set("yes"); err == nil {
		t.Error("yes: got no error")
	}
}
