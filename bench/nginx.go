//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// This file starts a private nginx for the native scenario's comparison:
// Debian's nginx serving the same file over plain HTTP, fetched and sent by
// Go's net/http client in the bench, which checks a download's SHA-256 as
// larder's client does. nginx runs on a free loopback port with a
// configuration and every file it writes in the bench's temporary folder,
// nothing of the machine's own nginx setup. The bench never installs nginx;
// without it, the comparison is skipped and says why.

// nginxNotFound is the reason to skip nginx when it is not installed.
const nginxNotFound = "not found (Debian: apt-get install nginx-light)"

// nginxChunk is the size of the client's writes of a download to its file,
// and of its buffers on the connection.
const nginxChunk = 256 << 10

// findNginx returns nginx's absolute path: on PATH, or in /usr/sbin, which
// is not on every user's PATH.
func findNginx() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs, nil
		}
	}
	const sbin = "/usr/sbin/nginx"
	if fi, err := os.Stat(sbin); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return sbin, nil
	}
	return "", errors.New(nginxNotFound)
}

// nginxVersion returns what "nginx -v" says, "nginx/1.22.1".
func nginxVersion(path string) string {
	out, _ := exec.Command(path, "-v").CombinedOutput() // on stderr, exit 0
	return strings.TrimPrefix(strings.TrimSpace(string(out)), "nginx version: ")
}

// nginxQuote quotes a path for nginx's configuration, which splits words
// at spaces and ends them at ';'.
func nginxQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// nginxConfig returns the configuration of the private nginx: loopback
// only, the master and its workers in the foreground, every file it writes
// in dir. It serves files under /files/ and takes WebDAV PUTs under
// /upload/ into upload. As root, its workers run as root too: by default
// they would switch to nobody, who cannot read the bench's 0700 folders.
func nginxConfig(dir, addr, files, upload string, root bool) string {
	in := func(name string) string { return nginxQuote(filepath.Join(dir, name)) }
	user := ""
	if root {
		user = "user root;\n"
	}
	return fmt.Sprintf(`# larder bench: a private nginx, removed with the bench's temporary folder
daemon off;
master_process on;
worker_processes auto;
%serror_log %s;
pid %s;

events {
}

http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 60;
    default_type application/octet-stream;
    client_body_temp_path %s;
    proxy_temp_path %s;
    fastcgi_temp_path %s;
    uwsgi_temp_path %s;
    scgi_temp_path %s;

    server {
        listen %s;
        location /files/ {
            alias %s;
        }
        location /upload/ {
            alias %s;
            dav_methods PUT;
            create_full_put_path on;
            client_max_body_size 0;
            client_body_buffer_size 1m;
        }
    }
}
`, user, in("error.log"), in("nginx.pid"),
		in("client_body_temp"), in("proxy_temp"), in("fastcgi_temp"), in("uwsgi_temp"), in("scgi_temp"),
		addr, nginxQuote(files+"/"), nginxQuote(upload+"/"))
}

// nginxServer is a running private nginx and the HTTP client that reaches
// it.
type nginxServer struct {
	proc    *Process
	version string // "nginx/1.22.1"
	command string // how it was started
	workers int    // how many worker processes it started
	recv    string // the folder PUTs land in
	base    string // "http://127.0.0.1:PORT"
	client  *http.Client
}

// startNginx writes a configuration into a fresh folder, checks it with
// "nginx -t", and starts nginx on a free loopback port, serving files. An
// error is a reason to skip the comparison.
func (e *Env) startNginx(path, files string) (*nginxServer, error) {
	dir, err := e.mkdir("nginx")
	if err != nil {
		return nil, err
	}
	recv := filepath.Join(dir, "received")
	if err := os.Mkdir(recv, 0o700); err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(nginxConfig(dir, addr, files, recv, os.Geteuid() == 0)), 0o600); err != nil {
		return nil, err
	}
	errLog := filepath.Join(dir, "error.log")
	// -p: relative paths, and the temporary folders nginx creates, are
	// under dir; -e: the log of the start, before the configuration
	// names its own, is not Debian's /var/log/nginx.
	args := []string{"-c", conf, "-p", dir + "/", "-e", errLog}
	if out, err := exec.CommandContext(e.ctx, path, append([]string{"-t"}, args...)...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s -t %s: %v: %s%s", path, shellArgs(args), err, bytes.TrimSpace(out), logTail(errLog))
	}
	// The workers die with the master when it is stopped; if the bench
	// is killed instead, only the master gets Pdeathsig, and the workers
	// then linger until killed by hand (as sshd's connections would).
	p, err := e.startProcess("nginx", addr, path, nil, args...)
	if err != nil {
		return nil, fmt.Errorf("%w%s", err, logTail(errLog))
	}
	workers, err := waitWorkers(e.ctx, p)
	if err != nil {
		e.stop(p)
		return nil, fmt.Errorf("%w%s", err, logTail(errLog))
	}
	command := path + " " + shellArgs(args)
	e.progress("nginx started: pid %d with %d workers on %s: %s", p.PID, workers, addr, command)
	return &nginxServer{proc: p, version: nginxVersion(path), command: command, workers: workers, recv: recv,
		base: "http://" + addr, client: newHTTPClient()}, nil
}

// waitWorkers waits until nginx's master has forked its workers (it
// listens before it forks them, so a connection can be accepted before)
// and returns how many there are: the same count twice in a row, 50 ms
// apart, as the master forks them one after the other at once.
func waitWorkers(ctx context.Context, p *Process) (int, error) {
	deadline := time.Now().Add(readyTimeout)
	last := 0
	for {
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return 0, err
		}
		n := len(childPIDs(p.PID))
		if n > 0 && n == last {
			return n, nil
		}
		last = n
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("nginx (pid %d) has no workers after %v", p.PID, readyTimeout)
		}
	}
}

// logTail returns the last lines of nginx's error log, to add to an error.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return ""
	}
	return "; " + path + ": " + lastLines(string(b), 5)
}

// newHTTPClient returns the client of the nginx transfers: keep-alive,
// no compression (the file is random; gzip would only cost), no proxy from
// the environment (a nil Proxy), and 256 KiB buffers on the connection.
func newHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		DisableCompression:  true,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     30 * time.Second,
		ReadBufferSize:      nginxChunk,
		WriteBufferSize:     nginxChunk,
	}}
}

// download fetches /files/NAME into a new file at local, hashing the body
// as it arrives and writing it in 256 KiB writes, then fsyncs the file and
// compares its size and SHA-256 with f's: the checks of larder's GetFile
// on the whole file, made by the client alone.
func (ng *nginxServer) download(ctx context.Context, f fileSpec, local string) error {
	// A fresh connection for each transfer, as larder's and scp's; and
	// none left for nginx to time out between rounds.
	defer ng.client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ng.base+"/files/"+url.PathEscape(f.Path), nil)
	if err != nil {
		return err
	}
	resp, err := ng.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return httpError(resp)
	}
	if resp.ContentLength != int64(f.Size) {
		return fmt.Errorf("GET %s: Content-Length %d, want %d", req.URL.Path, resp.ContentLength, f.Size)
	}
	out, err := os.OpenFile(local, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	h := sha256.New()
	w := io.MultiWriter(out, h)
	buf := make([]byte, nginxChunk)
	for left := int64(f.Size); left > 0; {
		p := buf[:min(left, int64(len(buf)))]
		if _, err := io.ReadFull(resp.Body, p); err != nil {
			return fmt.Errorf("GET %s: after %d bytes: %w", req.URL.Path, int64(f.Size)-left, err)
		}
		if _, err := w.Write(p); err != nil {
			return err
		}
		left -= int64(len(p))
	}
	if err := out.Sync(); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if sum := [32]byte(h.Sum(nil)); sum != f.Sum {
		return fmt.Errorf("GET %s: SHA-256 %x, want %x", req.URL.Path, sum, f.Sum)
	}
	return nil
}

// upload sends the file at src, of size bytes, to /upload/NAME with a
// Content-Length. net/http hands the *os.File to the TCP connection, which
// sends it with sendfile(2).
func (ng *nginxServer) upload(ctx context.Context, src, name string, size int64) error {
	defer ng.client.CloseIdleConnections()
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close() // the Transport closes it too
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, ng.base+"/upload/"+url.PathEscape(name), in)
	if err != nil {
		return err
	}
	req.ContentLength = size
	resp, err := ng.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// 201 Created, or 204 No Content if it replaced a file.
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusNoContent {
		return httpError(resp)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// httpError describes an unexpected response, with the start of its body.
func httpError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	return fmt.Errorf("%s %s: %s: %q", resp.Request.Method, resp.Request.URL.Path, resp.Status, bytes.TrimSpace(b))
}

// xfers returns the upload of the file at src into nginx's upload folder,
// checked there byte for byte, and the download of f from the served
// folder into a fresh local file.
func (ng *nginxServer) xfers(f fileSpec, src, work string) []*xfer {
	onDisk := filepath.Join(ng.recv, "upload.bin")
	local := filepath.Join(work, "download-nginx.bin")
	base := xfer{system: "nginx", transport: "HTTP/1.1, plaintext", server: ng.proc, workers: true}
	up, down := base, base
	up.direction, down.direction = "upload", "download"
	up.verifies = "nothing beyond TCP's checksum; written to a temporary file and renamed into place, not fsync'd"
	up.run = func(ctx context.Context) error { return ng.upload(ctx, src, "upload.bin", int64(f.Size)) }
	up.check = func(context.Context) error { return checkUpload(src, onDisk) }
	down.verifies = "SHA-256 of the whole file, as it arrives, against the known one (client: the bench; nginx sends none); written and fsync'd"
	down.run = func(ctx context.Context) error { return ng.download(ctx, f, local) }
	down.check = func(context.Context) error { return checkDownload(local, f) }
	return []*xfer{&up, &down}
}

// nginxXfers starts a private nginx serving dir and returns its
// transfers with notes for the table; or, if nginx is missing or does not
// work here, why it is skipped.
func (c *lnpConfig) nginxXfers(env *Env, f fileSpec, dir, src, work string) (xfers []*xfer, notes []string, skipped string) {
	if !c.nginx {
		return nil, nil, "not asked for (--nginx off)"
	}
	path, err := findNginx()
	if err != nil {
		return nil, nil, err.Error()
	}
	ng, err := env.startNginx(path, dir)
	if err != nil {
		return nil, nil, err.Error()
	}
	who := "the bench's user"
	if os.Geteuid() == 0 {
		who = "root (`user root;`)"
	}
	notes = append(notes,
		fmt.Sprintf("nginx: %s (%s), master pid %d with %d workers (`worker_processes auto`), all running as %s, on %s with a configuration of its own, every file it writes in the bench's folder: `sendfile on; tcp_nopush on; access_log off;`, downloads by `location /files/ { alias FILES/; }`, uploads by WebDAV PUT (`dav_methods PUT; client_body_buffer_size 1m; client_max_body_size 0;`); started as `%s`.",
			ng.version, path, ng.proc.PID, ng.workers, who, strings.TrimPrefix(ng.base, "http://"), ng.command),
		fmt.Sprintf("nginx's client is Go's net/http in the bench: a Transport with keep-alive, no compression, no proxy, %d KiB read and write buffers; a fresh connection for each transfer. Download: GET /files/%s; the body is read %d KiB at a time, each piece written to a new file and hashed in turn (one goroutine), then the file is fsync'd and the SHA-256 of the whole body compared with the known one: the whole-file check and fsync of larder's GetFile, without its per-block checks. Upload: PUT /upload/upload.bin with a Content-Length, the file sent by the Transport with sendfile(2); timed until nginx's 201 answer.",
			nginxChunk>>10, f.Path, nginxChunk>>10),
		"nginx verifies nothing of an upload beyond TCP's checksum: no hash of the body is sent or compared. It receives the body into a temporary file (`client_body_temp_path`, 1 MiB at a time), renames it into place and answers, without fsync. A download's SHA-256 is the bench client's, against the sum the bench knows: nginx sends none.")
	return ng.xfers(f, src, work), notes, ""
}

// childPIDs returns the process IDs of pid's children: nginx's workers.
func childPIDs(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var pids []int
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				pids = append(pids, c)
			}
		}
	}
	return pids
}

// familyCPU returns the CPU time of p and of its children, those running
// and those it has waited for: for nginx, its master and workers.
func familyCPU(p *Process) (time.Duration, error) {
	d, err := p.TreeCPU()
	if err != nil {
		return 0, err
	}
	for _, c := range childPIDs(p.PID) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c))
		if err != nil {
			continue // ended since: counted in TreeCPU once waited for
		}
		if cd, err := parseStatCPU(b); err == nil {
			d += cd
		}
	}
	return d, nil
}
