package main

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/internal/postgres/pgtest"
	"github.com/larderfs/larder/internal/s3"
	"github.com/larderfs/larder/lnp"
)

// testStorage returns a --storage URL of the store LARDER_TEST_S3 names,
// on a prefix of its own, or skips t.
func testStorage(t *testing.T) string {
	t.Helper()
	s := os.Getenv("LARDER_TEST_S3")
	if s == "" {
		t.Skip("LARDER_TEST_S3 is not set: no S3-compatible store for servers sharing a bucket; .ci/run starts one")
	}
	u, err := url.Parse(s)
	if err != nil {
		t.Fatalf("LARDER_TEST_S3: %v", err)
	}
	r := make([]byte, 6)
	rand.Read(r)
	u.Path = strings.TrimSuffix(u.Path, "/") + "/e2e-" + hex.EncodeToString(r)
	return u.String()
}

// TestTwoServersOneBucket: two larder processes on one PostgreSQL and one
// bucket. A file uploaded through one is listed, downloaded and deleted
// through the other; a folder made on one is there on the other; the
// quota counts what was put through either.
func TestTwoServersOneBucket(t *testing.T) {
	storage := testStorage(t)
	db := pgtest.URL(t)
	pepper := filepath.Join(t.TempDir(), "pepper")
	start := func() *crashServer {
		t.Helper()
		p, err := startStorageServer(t, "--storage", storage, "--db", db, "--pepper-file", pepper, "--quota-bytes", "4MiB")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := start()
	b := start()
	// The shared area is the bucket's PREFIX/shared/, filled by an
	// operator's S3 tool: served by both, over both protocols.
	hello := []byte("hello from the bucket\n")
	putObject(t, storage, "shared/hello.txt", hello)
	sig := larder.NewSignature("alice's password", "salt")
	if r := rawExchange(t, a.course, "alice", sig, ""); r.status != course.StatusOK {
		t.Fatalf("register alice on A: %v %s", r.status, r.payload)
	}
	session := func(p *crashServer) *client.Session {
		t.Helper()
		conn, err := net.DialTimeout("tcp", p.lnp, 30*time.Second)
		must(t, err)
		s, err := client.NewSession(t.Context(), conn, "alice", sig, client.SessionOptions{})
		must(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	}
	sa, sb := session(a), session(b)
	ctx := t.Context()
	if r := rawExchange(t, b.course, "alice", sig, "hello.txt"); r.status != course.StatusOK || !bytes.Equal(r.payload, hello) {
		t.Errorf("course retrieval of a shared file in the bucket through B: %v %q; want %q", r.status, r.payload, hello)
	}
	var shared bytes.Buffer
	if _, err := sa.Get(ctx, "/shared/hello.txt", 0, &shared, nil); err != nil || !bytes.Equal(shared.Bytes(), hello) {
		t.Errorf("native get of a shared file in the bucket through A: %v, %q; want %q", err, shared.Bytes(), hello)
	}
	data := randomData(3<<20+123, 7)
	must(t, sa.Mkdir(ctx, "/docs"))
	if _, err := sa.Put(ctx, "/docs/report.bin", bytes.NewReader(data), int64(len(data)), client.PutOptions{Resume: true}); err != nil {
		t.Fatalf("put through A: %v", err)
	}

	entries, err := sb.ListAll(ctx, "/docs")
	must(t, err)
	if len(entries) != 1 || entries[0].Name != "report.bin" || entries[0].Size != uint64(len(data)) {
		t.Fatalf("list through B: %+v; want report.bin of %d bytes", entries, len(data))
	}
	var got bytes.Buffer
	r, err := sb.Get(ctx, "/docs/report.bin", 0, &got, nil)
	must(t, err)
	if !bytes.Equal(got.Bytes(), data) || r.SHA256 != sha256.Sum256(data) {
		t.Errorf("get through B: %d bytes, SHA-256 %x; want the %d bytes put through A", got.Len(), r.SHA256[:4], len(data))
	}
	// A second put of the path without overwrite, through B: a conflict,
	// since the file is in the bucket both serve.
	_, err = sb.Put(ctx, "/docs/report.bin", bytes.NewReader(data[:10]), 10, client.PutOptions{})
	if st, _ := lnpStatus(err); st != lnp.StatusConflict {
		t.Errorf("put over it through B without overwrite: %v; want a conflict", err)
	}
	more := randomData(2<<20, 8)
	_, err = sb.Put(ctx, "/more.bin", bytes.NewReader(more), int64(len(more)), client.PutOptions{})
	if st, _ := lnpStatus(err); st != lnp.StatusQuotaExceeded {
		t.Errorf("put through B of 2 MiB with 3 MiB put through A, quota 4 MiB: %v; want QUOTA_EXCEEDED", err)
	}
	must(t, sb.Delete(ctx, "/docs/report.bin"))
	if _, err := sa.Put(ctx, "/more.bin", bytes.NewReader(more), int64(len(more)), client.PutOptions{}); err != nil {
		t.Errorf("put through A of 2 MiB once B deleted the 3 MiB: %v", err)
	}
	_, err = sa.Stat(ctx, "/docs/report.bin")
	if st, _ := lnpStatus(err); st != lnp.StatusNotFound {
		t.Errorf("stat through A after a delete through B: %v; want not found", err)
	}
	if entries, err := sb.ListAll(ctx, "/docs"); err != nil || len(entries) != 0 {
		t.Errorf("list through A after the delete: %+v, %v; want nothing", entries, err)
	}
	// One path put through both at once: one wins, the other is told
	// CONFLICT (at its start, or when it completes after the winner).
	same := [][]byte{randomData(1<<20, 9), randomData(1<<20, 10)}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, s := range []*client.Session{sa, sb} {
		wg.Go(func() {
			_, errs[i] = s.Put(ctx, "/same.bin", bytes.NewReader(same[i]), int64(len(same[i])), client.PutOptions{})
		})
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		if err == nil {
			won = i
		} else if st, _ := lnpStatus(err); st != lnp.StatusConflict {
			t.Errorf("put of one path through both servers at once, server %d: %v; want success or CONFLICT", i, err)
		}
	}
	if won < 0 || errs[1-won] == nil {
		t.Errorf("put of one path through both servers at once: %v; want one winner and one CONFLICT", errs)
	} else {
		got.Reset()
		if _, err := sb.Get(ctx, "/same.bin", 0, &got, nil); err != nil || !bytes.Equal(got.Bytes(), same[won]) {
			t.Errorf("get of the path put through both: %v; want the winner's bytes", err)
		}
	}
	// A tree's removal in one request could not be fenced from the other
	// server's uploads into it: neither grants it, and rm -r removes a
	// tree file by file.
	for _, p := range []*crashServer{a, b} {
		conn, err := net.DialTimeout("tcp", p.lnp, 30*time.Second)
		must(t, err)
		offer := lnp.FeaturePutTime | lnp.FeatureTreeDelete
		s, err := client.NewSession(ctx, conn, "alice", sig, client.SessionOptions{Features: offer})
		must(t, err)
		if s.Features() != lnp.FeaturePutTime {
			t.Errorf("a server sharing a bucket granted %b of %b; want all but recursive DELETE", s.Features(), offer)
		}
		if _, err := s.DeleteTree(ctx, "/docs"); !errors.Is(err, client.ErrNotGranted) {
			t.Errorf("DeleteTree: %v; want ErrNotGranted", err)
		}
		s.Close()
	}
	env, _, _ := testEnv(t, b.course, "LARDER_USER", "carol")
	if err := run(env, "register"); err != nil {
		t.Fatalf("register carol: %v", err)
	}
	runOK(t, env, "login", "--server", b.lnp, "--insecure-plaintext")
	carol := func(args ...string) string {
		t.Helper()
		_, stderr := runOK(t, env, append(args, "--server", b.lnp, "--insecure-plaintext")...)
		return stderr
	}
	carol("mkdir", "/tree")
	carol("mkdir", "/tree/sub")
	for _, p := range []string{"/tree/one", "/tree/sub/two"} {
		local := filepath.Join(t.TempDir(), "f")
		must(t, os.WriteFile(local, []byte(p), 0o600))
		carol("put", local, p)
	}
	if out := carol("rm", "-r", "/tree"); !strings.Contains(out, "removed 2 files and 2 folders") {
		t.Errorf("rm -r through B, which walks the tree: %q", out)
	}
	if out, _ := runOK(t, env, "ls", "/", "--server", a.lnp, "--insecure-plaintext"); strings.Contains(out, "tree") {
		t.Errorf("ls through A after rm -r through B: %q", out)
	}
	for _, p := range []*crashServer{a, b} {
		if err := p.stop(); err != nil {
			t.Error(err)
		}
		if strings.Contains(p.stderr.String(), os.Getenv("AWS_SECRET_ACCESS_KEY")) {
			t.Errorf("the server's output shows the store's secret key")
		}
	}
}

// putObject puts data at key below the prefix of the --storage URL
// storage, as an operator's S3 tool would.
func putObject(t *testing.T, storage, key string, data []byte) {
	t.Helper()
	cfg, err := s3.ParseURL(storage)
	must(t, err)
	c := testS3Client(t, cfg)
	_, err = c.PutObject(t.Context(), &awss3.PutObjectInput{Bucket: &cfg.Bucket, Key: aws.String(path.Join(cfg.Prefix, key)), Body: bytes.NewReader(data)})
	must(t, err)
}

// testS3Client is a plain S3 client of the store of cfg, as an operator's
// tool.
func testS3Client(t *testing.T, cfg s3.Config) *awss3.Client {
	ac, err := awsconfig.LoadDefaultConfig(t.Context(), awsconfig.WithRegion(cmp.Or(cfg.Region, "us-east-1")))
	must(t, err)
	return awss3.NewFromConfig(ac, func(o *awss3.Options) {
		o.BaseEndpoint, o.UsePathStyle = aws.String(cfg.Endpoint), cfg.PathStyle
	})
}

// TestStorageFlag: --storage refuses what it cannot use before anything
// is served, saying why.
func TestStorageFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--storage", "s3://KEY:SECRET@bucket/p"}, "would show in ps"},
		{[]string{"--storage", "ftp://bucket"}, "is not s3://"},
		{[]string{"--storage", "s3://bucket?endpoint=http://127.0.0.1:1", "--files", t.TempDir()}, "--files names a folder of this machine"},
	} {
		_, err := startStorageServer(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("larder serve %q: %v; want it refused saying %q", tc.args, err, tc.want)
		}
	}
}

// startStorageServer is startCrashServer without a served folder, for
// --storage.
func startStorageServer(t *testing.T, args ...string) (*crashServer, error) {
	return startServerArgs(t, append([]string{"serve", "--listen", "127.0.0.1:0", "--native-listen", "127.0.0.1:0", "--insecure-plaintext-native",
		"--data", t.TempDir(), "--hash-memory", "64", "--hash-passes", "1", "--shutdown-grace", "30s"}, args...))
}

// TestStoreDownAndBack: with the store unreachable (a proxy before it
// stops forwarding and holds connections unanswered), a request fails
// with BUSY within the storage's time-out, not a hang, and the log says
// why; once the store is back, the same request works and what was
// stored is intact.
func TestStoreDownAndBack(t *testing.T) {
	storage := testStorage(t)
	u, err := url.Parse(storage)
	must(t, err)
	q := u.Query()
	up, err := url.Parse(q.Get("endpoint"))
	must(t, err)
	proxy := startHoldingProxy(t, up.Host)
	q.Set("endpoint", "http://"+proxy.addr())
	q.Set("timeout", "1s")
	u.RawQuery = q.Encode()
	// Port 0, and the address from the start-up line: a port found free
	// here could be taken by another test before larder serve binds it.
	p, err := startStorageServer(t, "--storage", u.String(), "--metrics-listen", "127.0.0.1:0")
	must(t, err)
	var metricsAddr string
	waitUntil(t, "the metrics listener's start-up line", func() bool {
		m := metricsLine.FindStringSubmatch(p.stderr.String())
		if m != nil {
			metricsAddr = m[1]
		}
		return m != nil
	})
	health := func() (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + metricsAddr + "/healthz")
		must(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	// The start-up lines come just before the listeners are served, and
	// /healthz says "not listening" until they are.
	var code int
	var body string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if code, body = health(); code == http.StatusOK || time.Now().After(deadline) {
			break
		}
	}
	if code != http.StatusOK || !strings.Contains(body, "file store: ok") {
		t.Errorf("/healthz with the store up: %d %q; want 200 and \"file store: ok\"", code, body)
	}
	sig := larder.NewSignature("alice's password", "salt")
	if r := rawExchange(t, p.course, "alice", sig, ""); r.status != course.StatusOK {
		t.Fatalf("register alice: %v %s", r.status, r.payload)
	}
	conn, err := net.DialTimeout("tcp", p.lnp, 30*time.Second)
	must(t, err)
	s, err := client.NewSession(t.Context(), conn, "alice", sig, client.SessionOptions{})
	must(t, err)
	defer s.Close()
	ctx := t.Context()
	data := randomData(100<<10, 3)
	_, err = s.Put(ctx, "/kept.bin", bytes.NewReader(data), int64(len(data)), client.PutOptions{})
	must(t, err)

	proxy.setDown(true)
	start := time.Now()
	_, err = s.Stat(ctx, "/kept.bin")
	if st, _ := lnpStatus(err); st != lnp.StatusBusy || time.Since(start) > 10*time.Second {
		t.Errorf("stat with the store down: %v after %v; want BUSY within the 1 s time-out (and its retries)", err, time.Since(start))
	}
	if !strings.Contains(err.Error(), "the file store does not answer") {
		t.Errorf("stat with the store down: %q; want it to say the file store does not answer", err)
	}
	// The log comes through a pipe, behind the reply.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		log := p.stderr.String()
		if strings.Contains(log, "op=stat") && strings.Contains(log, "deadline exceeded") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("the server's log does not say why the store failed:\n%s", tail(log, 2000))
			break
		}
	}

	if code, body := health(); code != http.StatusServiceUnavailable || !strings.Contains(body, "file store: does not answer") {
		t.Errorf("/healthz with the store down: %d %q; want 503 and \"file store: does not answer\"", code, body)
	}

	proxy.setDown(false)
	var got bytes.Buffer
	if _, err := s.Get(ctx, "/kept.bin", 0, &got, nil); err != nil || !bytes.Equal(got.Bytes(), data) {
		t.Errorf("get once the store is back: %v, %d bytes; want the file as stored", err, got.Len())
	}
	if code, body := health(); code != http.StatusOK {
		t.Errorf("/healthz once the store is back: %d %q; want 200", code, body)
	}
	must(t, p.stop())
}

// holdingProxy forwards TCP connections to an address, or, while down,
// holds new ones unanswered (and has cut the ones it forwarded): a store
// that stopped answering.
type holdingProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  []net.Conn
}

func startHoldingProxy(t *testing.T, target string) *holdingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	p := &holdingProxy{ln: ln, target: target}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns = append(p.conns, c)
			down := p.down
			p.mu.Unlock()
			if down {
				continue // held until the cleanup
			}
			wg.Go(func() {
				up, err := net.Dial("tcp", target)
				if err != nil {
					c.Close()
					return
				}
				p.mu.Lock()
				p.conns = append(p.conns, up)
				p.mu.Unlock()
				go io.Copy(up, c)
				io.Copy(c, up)
				c.Close()
				up.Close()
			})
		}
	})
	return p
}

func (p *holdingProxy) addr() string { return p.ln.Addr().String() }

// setDown stops forwarding (cutting what it forwards) or starts again.
func (p *holdingProxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

// TestAdminDeleteInBucket: "admin user delete --storage" removes the
// account's space from the bucket (or, with --keep-files, copies it below
// deleted/ first), beside a running server; a --storage it cannot use
// leaves the account as it was.
func TestAdminDeleteInBucket(t *testing.T) {
	storage := testStorage(t)
	data := t.TempDir()
	p, err := startStorageServer(t, "--storage", storage, "--data", data)
	must(t, err)
	for _, name := range []string{"alice", "bob"} {
		sig := larder.NewSignature(name+"'s password", "salt")
		if r := rawExchange(t, p.course, name, sig, ""); r.status != course.StatusOK {
			t.Fatalf("register %s: %v %s", name, r.status, r.payload)
		}
		conn, err := net.DialTimeout("tcp", p.lnp, 30*time.Second)
		must(t, err)
		s, err := client.NewSession(t.Context(), conn, name, sig, client.SessionOptions{})
		must(t, err)
		must(t, s.Mkdir(t.Context(), "/d"))
		content := []byte(name + "'s file")
		_, err = s.Put(t.Context(), "/d/f.txt", bytes.NewReader(content), int64(len(content)), client.PutOptions{})
		must(t, err)
		s.Close()
	}
	if len(listKeys(t, storage, "spaces/")) != 4 {
		t.Fatalf("keys of two spaces of a folder and a file each: %q", listKeys(t, storage, "spaces/"))
	}

	_, stderr, err := runLarder(t, "", "admin", "user", "delete", "alice", "--data", data, "--storage", "s3://bkt?endpoint=http://127.0.0.1:1&timeout=1s")
	if err == nil || !strings.Contains(stderr+err.Error(), "storage") {
		t.Errorf("admin user delete with a store it cannot reach: %v %s; want it refused", err, stderr)
	}
	if out, _, _ := runLarder(t, "", "admin", "user", "list", "--data", data); !strings.Contains(out, "alice") {
		t.Errorf("alice after a refused delete: not listed (%q); want her account untouched", out)
	}

	out, stderr, err := runLarder(t, "", "admin", "user", "delete", "alice", "--data", data, "--storage", storage)
	if err != nil || !strings.Contains(out, "removed from the bucket") {
		t.Errorf("admin user delete --storage: %q, %v\n%s", out, err, stderr)
	}
	out, stderr, err = runLarder(t, "", "admin", "user", "delete", "bob", "--keep-files", "--data", data, "--storage", storage)
	if err != nil || !strings.Contains(out, "kept in the bucket below deleted/") {
		t.Errorf("admin user delete --keep-files --storage: %q, %v\n%s", out, err, stderr)
	}
	if keys := listKeys(t, storage, "spaces/"); len(keys) != 0 {
		t.Errorf("keys of the spaces after both accounts were deleted: %q; want none", keys)
	}
	if keys := listKeys(t, storage, "deleted/"); len(keys) != 2 || !strings.HasSuffix(keys[1], "/d/f.txt") {
		t.Errorf("keys set aside for bob: %q; want his folder and file", keys)
	}
	must(t, p.stop())
}

// listKeys lists the keys below prefix of the --storage URL storage,
// relative to its prefix.
func listKeys(t *testing.T, storage, prefix string) []string {
	t.Helper()
	cfg, err := s3.ParseURL(storage)
	must(t, err)
	c := testS3Client(t, cfg)
	out, err := c.ListObjectsV2(t.Context(), &awss3.ListObjectsV2Input{Bucket: &cfg.Bucket, Prefix: aws.String(path.Join(cfg.Prefix, prefix) + "/")})
	must(t, err)
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, strings.TrimPrefix(aws.ToString(o.Key), cfg.Prefix+"/"))
	}
	return keys
}

// TestCopiedDataFolder: a second server whose data folder is a copy of a
// running one's (the same server-id) is refused at start, saying why and
// what to do, rather than replay the first one's changes as its own;
// once the first has stopped, the copy starts (it takes over the name),
// and a server killed starts again at once.
func TestCopiedDataFolder(t *testing.T) {
	storage := testStorage(t)
	db := pgtest.URL(t)
	pepper := filepath.Join(t.TempDir(), "pepper")
	data, copied := t.TempDir(), t.TempDir()
	a, err := startStorageServer(t, "--storage", storage, "--db", db, "--pepper-file", pepper, "--data", data)
	must(t, err)
	id, err := os.ReadFile(filepath.Join(data, serverIDFile))
	must(t, err)
	must(t, os.WriteFile(filepath.Join(copied, serverIDFile), id, 0o600))
	_, err = startStorageServer(t, "--storage", storage, "--db", db, "--pepper-file", pepper, "--data", copied)
	if err == nil || !strings.Contains(err.Error(), "another server runs under this server's name") || !strings.Contains(err.Error(), "a data folder of its own") {
		t.Fatalf("a second server on a copy of a running one's data folder: %v; want it refused, saying the folder was copied", err)
	}
	must(t, a.stop())
	b, err := startStorageServer(t, "--storage", storage, "--db", db, "--pepper-file", pepper, "--data", copied)
	if err != nil {
		t.Fatalf("the copy, once the first server stopped: %v", err)
	}
	// Killed, and started again at once on its folder: its claim is of
	// a process of this host that is gone.
	b.kill()
	if _, err := startStorageServer(t, "--storage", storage, "--db", db, "--pepper-file", pepper, "--data", copied); err != nil {
		t.Errorf("a server started again after it was killed: %v", err)
	}
}
