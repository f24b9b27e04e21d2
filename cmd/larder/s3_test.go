package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/internal/postgres/pgtest"
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
// through the other; a folder made on one is there on the other.
func TestTwoServersOneBucket(t *testing.T) {
	storage := testStorage(t)
	db := pgtest.URL(t)
	pepper := filepath.Join(t.TempDir(), "pepper")
	start := func() *crashServer {
		t.Helper()
		p, err := startStorageServer(t, "--storage", storage, "--db", db, "--pepper-file", pepper)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := start()
	b := start()
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
	must(t, sb.Delete(ctx, "/docs/report.bin"))
	_, err = sa.Stat(ctx, "/docs/report.bin")
	if st, _ := lnpStatus(err); st != lnp.StatusNotFound {
		t.Errorf("stat through A after a delete through B: %v; want not found", err)
	}
	if entries, err := sa.ListAll(ctx, "/docs"); err != nil || len(entries) != 0 {
		t.Errorf("list through A after the delete: %+v, %v; want nothing", entries, err)
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
