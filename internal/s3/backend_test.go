package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/files"
	"github.com/larderfs/larder/internal/sqlite"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func fill(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }

func TestParseURL(t *testing.T) {
	good := map[string]Config{
		"s3://bkt":                    {Bucket: "bkt"},
		"s3://bkt/some/prefix":        {Bucket: "bkt", Prefix: "some/prefix"},
		"s3://bkt/p?region=eu-west-3": {Bucket: "bkt", Prefix: "p", Region: "eu-west-3"},
		"s3://bkt?endpoint=http://127.0.0.1:9000&path-style=true&timeout=5s": {
			Bucket: "bkt", Endpoint: "http://127.0.0.1:9000", PathStyle: true, Timeout: 5 * time.Second},
	}
	for u, want := range good {
		got, err := ParseURL(u)
		if err != nil || got != want {
			t.Errorf("ParseURL(%q) = %+v, %v; want %+v", u, got, err, want)
		}
	}
	bad := map[string]string{
		"s3://KEY:SECRET@bkt/p":               "would show in ps",
		"s3://bkt?endpoint=http://k:s@host:1": "would show in ps",
		"http://bkt/p":                        "is not s3://",
		"s3:///p":                             "is not s3://",
		"s3://bkt?endpoint=127.0.0.1:9000":    "not an http:// or https:// URL",
		"s3://bkt?path-style=yes-please":      "want true or false",
		"s3://bkt?timeout=-1s":                "positive duration",
		"s3://bkt?secret_access_key=abc":      "unknown parameter",
	}
	for u, want := range bad {
		if _, err := ParseURL(u); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseURL(%q): got %v, want an error saying %q", u, err, want)
		}
	}
}

// TestStoreDown: a store that does not answer, or is not there, gives
// EUNAVAILABLE within the time-out, never a hang; New says so too.
func TestStoreDown(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer silent.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	closedAddr := closed.Addr().String()
	closed.Close()

	for name, addr := range map[string]string{"silent": silent.Addr().String(), "closed": closedAddr} {
		t.Run(name, func(t *testing.T) {
			cfg := Config{Bucket: "b", Endpoint: "http://" + addr, PathStyle: true, Timeout: 300 * time.Millisecond}
			start := time.Now()
			_, err := New(context.Background(), cfg)
			if err == nil || time.Since(start) > 5*time.Second {
				t.Errorf("New against a store %s: %v after %v; want an error within the time-out", name, err, time.Since(start))
			}
			b, err := newBackend(context.Background(), cfg)
			must(t, err)
			a, err := b.Area("#1")
			must(t, err)
			calls := map[string]func() error{
				"Stat": func() error { _, err := a.Stat("f"); return err },
				"List": func() error {
					l, err := a.List("")
					if err == nil {
						_, err = l.Next(10)
					}
					return err
				},
				"Mkdir":       func() error { return a.Mkdir("d") },
				"StartUpload": func() error { _, err := a.StartUpload("f", 10, true); return err },
				"PartUsage":   func() error { _, err := a.PartUsage(""); return err },
			}
			for call, f := range calls {
				start := time.Now()
				err := f()
				if took := time.Since(start); larder.ErrorCode(err) != larder.EUNAVAILABLE || took > 5*time.Second {
					t.Errorf("%s against a store %s: %v (code %q) after %v; want code %q within the time-out",
						call, name, err, larder.ErrorCode(err), took, larder.EUNAVAILABLE)
				}
				if msg := larder.ErrorMessage(err); strings.Contains(msg, addr) {
					t.Errorf("%s: the message shown to a client names the store: %q", call, msg)
				}
			}
		})
	}
}

// TestSameID: servers sharing a bucket and prefix have one ID; another
// prefix is another storage.
func TestSameID(t *testing.T) {
	cfg := testConfig(t)
	a, b := testBackend(t, cfg), testBackend(t, cfg)
	other := cfg
	other.Prefix += "other/"
	c := testBackend(t, other)
	ida, _ := a.ID()
	idb, _ := b.ID()
	idc, _ := c.ID()
	if ida != idb || ida == idc || !strings.HasPrefix(ida, "s3:") {
		t.Errorf("IDs: %q and %q on one prefix, %q on another; want the first two equal, the third not", ida, idb, idc)
	}
}

// TestResumeOnAnotherServer: an upload cut on one server (no Close: the
// process died) goes on from another once the first's lease on it runs
// out (before, it is a conflict, and not cancelled), hashing the prefix
// from the checkpoint and completing it.
func TestResumeOnAnotherServer(t *testing.T) {
	cfg := testConfig(t)
	one, two := testBackend(t, cfg), testBackend(t, cfg)
	// inFlight+1 parts and a little: the first is sent for sure (the
	// last waits for room in flight), the others may be in flight when
	// the server dies.
	var data []byte
	for i := range one.inFlight + 2 {
		data = append(data, fill(MinPartSize, byte('a'+i))...)
	}
	a1, _ := one.Area("#3")
	pt, err := a1.StartUpload("f", int64(len(data)), false)
	must(t, err)
	_, err = pt.Write(data[:(one.inFlight+1)*MinPartSize+10])
	must(t, err)

	a2, _ := two.Area("#3")
	_, err = a2.StartUpload("f", int64(len(data)), true)
	if larder.ErrorCode(err) != larder.ECONFLICT || !strings.Contains(larder.ErrorMessage(err), "on another server") {
		t.Errorf("a resume on another server of an upload being written: %v; want a conflict saying so", err)
	}
	if n, _, err := a2.CancelUploads("f"); n != 0 || larder.ErrorCode(err) != larder.ECONFLICT {
		t.Errorf("CancelUploads on another server of an upload being written: %d, %v; want a conflict", n, err)
	}
	// The first server dies (its checkpoint stops being rewritten): once
	// its lease runs out, the second goes on.
	two.activeWindow = 300 * time.Millisecond
	time.Sleep(time.Second)
	pt2, err := a2.StartUpload("f", int64(len(data)), true)
	must(t, err)
	off := pt2.Offset()
	if off < MinPartSize || off > int64(one.inFlight+1)*MinPartSize || off%MinPartSize != 0 {
		t.Fatalf("the resume on another server starts at %d, want a multiple of %d from 1 to %d of them", off, MinPartSize, one.inFlight+1)
	}
	h := sha256.New()
	must(t, pt2.HashPrefix(h))
	if want := sha256.Sum256(data[:off]); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Errorf("HashPrefix on another server: not the SHA-256 of the bytes sent")
	}
	_, err = pt2.Write(data[off:])
	must(t, err)
	_, err = pt2.Sync()
	must(t, err)
	_, err = pt2.Place(false)
	must(t, err)
	o, err := a1.Open("f")
	must(t, err)
	defer o.Close()
	got := make([]byte, len(data))
	if n, err := o.ReadAt(got, 0); n != len(data) || !bytes.Equal(got, data) {
		t.Errorf("the file resumed on another server: %d bytes, %v, equal %v", n, err, bytes.Equal(got, data))
	}
	pt.Close() // the first server's session, gone: its part in flight may fail
}

// TestCheckpointNotConfirmed: a checkpoint whose parts the store does
// not have (a part sent again and not checkpointed, a tampered
// checkpoint) is not resumed from: the resume starts again at 0.
func TestCheckpointNotConfirmed(t *testing.T) {
	b := testBackend(t, testConfig(t))
	a, _ := b.Area("#1")
	pt, err := a.StartUpload("f", 2*MinPartSize, false)
	must(t, err)
	_, err = pt.Write(fill(MinPartSize+1, 'x'))
	must(t, err)
	must(t, pt.Close())
	p := pt.(*part)
	key := a.(*area).uploads + p.id
	body, err := b.get(key)
	must(t, err)
	var cp checkpoint
	must(t, json.Unmarshal(body, &cp))
	cp.Parts[0].ETag = `"0123456789abcdef0123456789abcdef"`
	body, _ = json.Marshal(cp)
	must(t, b.put(key, body, false))

	pt, err = a.StartUpload("f", 2*MinPartSize, true)
	must(t, err)
	defer pt.Close()
	if pt.Offset() != 0 {
		t.Errorf("a resume from a checkpoint the store does not confirm starts at %d, want 0", pt.Offset())
	}
	ps, err := a.Parts()
	must(t, err)
	if len(ps) != 1 || ps[0].ID != pt.ID() {
		t.Errorf("Parts: %+v; want only the new upload (the unconfirmed one removed)", ps)
	}
}

// TestPlaceRace: two servers placing one path at once without
// overwrite: one wins, the other gets a conflict.
func TestPlaceRace(t *testing.T) {
	cfg := testConfig(t)
	var parts []files.Part
	for i := range 2 {
		a, _ := testBackend(t, cfg).Area("#1")
		pt, err := a.StartUpload("same", 100, false)
		must(t, err)
		defer pt.Close()
		_, err = pt.Write(fill(100, byte('a'+i)))
		must(t, err)
		_, err = pt.Sync()
		must(t, err)
		parts = append(parts, pt)
	}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, pt := range parts {
		wg.Go(func() { _, errs[i] = pt.Place(false) })
	}
	wg.Wait()
	ok, conflict := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case larder.ErrorCode(err) == larder.ECONFLICT:
			conflict++
		}
	}
	if ok != 1 || conflict != 1 {
		t.Errorf("two Places at once: %v; want one winner and one conflict", errs)
	}
}

// TestReadChangedFile: a file replaced while it is read gives a conflict
// on the next window, never a mix of the two contents.
func TestReadChangedFile(t *testing.T) {
	cfg := testConfig(t)
	cfg.ReadAhead = 1 << 10
	b := testBackend(t, cfg)
	a, _ := b.Area("#1")
	put := func(data []byte) {
		pt, err := a.StartUpload("f", int64(len(data)), false)
		must(t, err)
		defer pt.Close()
		_, err = pt.Write(data)
		must(t, err)
		_, err = pt.Sync()
		must(t, err)
		_, err = pt.Place(true)
		must(t, err)
	}
	put(fill(10<<10, 'a'))
	o, err := a.Open("f")
	must(t, err)
	defer o.Close()
	buf := make([]byte, 1<<10)
	_, err = o.ReadAt(buf, 0)
	must(t, err)
	put(fill(10<<10, 'b'))
	_, err = o.ReadAt(buf, 5<<10)
	if larder.ErrorCode(err) != larder.ECONFLICT {
		t.Errorf("ReadAt of a file replaced meanwhile: %v (%q); want a conflict", err, buf[:8])
	}
}

// TestRenameCut: a folder rename that stops after one object moved (a
// crash, a store gone) leaves both folders part full; the service keeps
// its intent, and a restart's Recover finishes the move and brings the
// records along.
func TestRenameCut(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "larder.db"))
	must(t, err)
	defer db.Close()
	records := sqlite.NewFileStore(db)
	open := func(b *Backend) (*files.Service, *files.Space) {
		s, err := files.New(files.Config{Backend: b, Records: records})
		must(t, err)
		sp, err := s.Space(1)
		must(t, err)
		t.Cleanup(func() { sp.Close(); s.Close() })
		return s, sp
	}
	b := testBackend(t, cfg)
	_, sp := open(b)
	must(t, sp.Mkdir("dir"))
	data := map[string][]byte{"dir/a": []byte("file a"), "dir/b": []byte("file b"), "dir/c": []byte("file c")}
	for p, d := range data {
		u, err := sp.StartUpload(ctx, p, int64(len(d)), false, false)
		must(t, err)
		_, err = u.Write(d)
		must(t, err)
		if u.Hash != nil {
			t.Fatal("an upload to S3 has a hash to feed: the part hashes the content itself")
		}
		_, err = u.Commit(ctx, sha256.Sum256(d), nil, 0, nil)
		must(t, err)
		u.Close()
	}
	copied := 0
	b.failpoint = func(step string) error {
		if strings.HasPrefix(step, "rename:copied") {
			// The store goes after the first object moved, and stays
			// gone until the restart.
			if copied++; copied >= 2 {
				return errors.New("killed")
			}
		}
		return nil
	}
	if err := sp.Rename(ctx, "dir", "moved", false); err == nil {
		t.Fatal("a rename stopped in the middle returned no error")
	}
	ins, err := records.Intents(ctx, mustID(t, b))
	if err != nil || len(ins) != 1 {
		t.Fatalf("intents after a rename stopped in the middle: %+v, %v; want it kept", ins, err)
	}

	s2, sp2 := open(testBackend(t, cfg))
	n, err := s2.Recover(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Recover: %d, %v; want 1", n, err)
	}
	for p, d := range data {
		moved := "moved" + strings.TrimPrefix(p, "dir")
		rec, err := records.FileByPath(ctx, "#1", moved)
		if err != nil || rec.SHA256 != sha256.Sum256(d) {
			t.Errorf("the record of %s after Recover: %+v, %v", moved, rec, err)
		}
		if _, err := records.FileByPath(ctx, "#1", p); larder.ErrorCode(err) != larder.ENOTFOUND {
			t.Errorf("a record of %s is left after Recover: %v", p, err)
		}
		f, err := sp2.Open(ctx, files.Loc{Path: moved})
		if err != nil || f.SHA256 != sha256.Sum256(d) {
			t.Errorf("Open of %s after Recover: %v", moved, err)
		} else {
			f.Close()
		}
	}
	if _, err := sp2.Stat(files.Loc{Path: "dir"}); larder.ErrorCode(err) != larder.ENOTFOUND {
		t.Errorf("the folder moved is still there after Recover: %v", err)
	}
}

func mustID(t *testing.T, b *Backend) string {
	id, err := b.ID()
	must(t, err)
	return id
}

// TestLongPath: a path whose key would be longer than S3 takes is refused
// as invalid, saying how long a path may be, not sent to fail in the
// store.
func TestLongPath(t *testing.T) {
	b := testBackend(t, testConfig(t))
	a, _ := b.Area("#1")
	long := strings.Repeat(strings.Repeat("n", 200)+"/", 5) + "file"
	_, err := a.StartUpload(long, 1, false)
	if larder.ErrorCode(err) != larder.EINVALID || !strings.Contains(larder.ErrorMessage(err), "at most") {
		t.Errorf("StartUpload of a path of %d bytes: %v; want it refused as invalid, saying how long a path may be", len(long), err)
	}
	if err := a.Mkdir(long); larder.ErrorCode(err) != larder.EINVALID {
		t.Errorf("Mkdir of a path of %d bytes: %v; want it refused as invalid", len(long), err)
	}
}

// TestUploadCancelledElsewhere: an upload another server cancels while
// this one writes it (taking this one for dead) fails as a conflict that
// says so.
func TestUploadCancelledElsewhere(t *testing.T) {
	cfg := testConfig(t)
	a1, _ := testBackend(t, cfg).Area("#1")
	a2, _ := testBackend(t, cfg).Area("#1")
	pt, err := a1.StartUpload("f", 2*MinPartSize, false)
	must(t, err)
	defer pt.Close()
	// The second server takes the first for dead: its lease ran out (a
	// part that took longer than the window to come).
	a2.(*area).b.activeWindow = 0
	if n, _, err := a2.CancelUploads("f"); n != 1 || err != nil {
		t.Fatalf("CancelUploads on another server: %d, %v; want 1", n, err)
	}
	// The part is sent behind the receiving: its failure comes with the
	// next write, or at the latest with Sync.
	_, err = pt.Write(fill(MinPartSize, 'x'))
	if err == nil {
		_, err = pt.Sync()
	}
	if larder.ErrorCode(err) != larder.ECONFLICT || !strings.Contains(larder.ErrorMessage(err), "cancelled") {
		t.Errorf("a write to an upload cancelled elsewhere: %v; want a conflict saying it was cancelled", err)
	}
}

// TestResumeAfterCleanClose: an upload whose session ended on one server
// (the client went away) is resumed on another at once.
func TestResumeAfterCleanClose(t *testing.T) {
	cfg := testConfig(t)
	a1, _ := testBackend(t, cfg).Area("#1")
	a2, _ := testBackend(t, cfg).Area("#1")
	pt, err := a1.StartUpload("f", 2*MinPartSize, false)
	must(t, err)
	_, err = pt.Write(fill(MinPartSize+1, 'x'))
	must(t, err)
	must(t, pt.Close())
	pt2, err := a2.StartUpload("f", 2*MinPartSize, true)
	must(t, err)
	defer pt2.Close()
	if pt2.Offset() != MinPartSize {
		t.Errorf("a resume on another server after a clean close starts at %d, want %d", pt2.Offset(), MinPartSize)
	}
}

// TestDeleteSpace: a deleted account's space goes whole (files, folders,
// unfinished uploads and their checkpoints), optionally copied aside
// first; another space is untouched.
func TestDeleteSpace(t *testing.T) {
	b := testBackend(t, testConfig(t))
	a5, _ := b.Area("#5")
	a6, _ := b.Area("#6")
	put := func(a files.Area, p string, data []byte) {
		t.Helper()
		pt, err := a.StartUpload(p, int64(len(data)), false)
		must(t, err)
		defer pt.Close()
		_, err = pt.Write(data)
		must(t, err)
		_, err = pt.Sync()
		must(t, err)
		_, err = pt.Place(false)
		must(t, err)
	}
	must(t, a5.Mkdir("d"))
	put(a5, "d/f", []byte("five's file"))
	put(a6, "g", []byte("six's file"))
	pt, err := a5.StartUpload("unfinished", 2*MinPartSize, false)
	must(t, err)
	_, err = pt.Write(fill(MinPartSize, 'u'))
	must(t, err)
	must(t, pt.Close())

	found, err := b.DeleteSpace(5, "five-5-aside")
	if err != nil || !found {
		t.Fatalf("DeleteSpace: %v, %v; want found", found, err)
	}
	if l, err := a5.List(""); err == nil {
		if ins, err := l.Next(10); err != io.EOF {
			t.Errorf("the deleted space lists %+v, %v; want nothing", ins, err)
		}
	}
	if ps, err := a5.Parts(); err != nil || len(ps) != 0 {
		t.Errorf("the deleted space's unfinished uploads: %+v, %v; want none", ps, err)
	}
	if ups, _ := b.multipartUploads(b.root + "spaces/5/"); len(ups) != 0 {
		t.Errorf("multipart uploads left in the deleted space: %d", len(ups))
	}
	if body, err := b.get(b.root + "deleted/five-5-aside/d/f"); err != nil || string(body) != "five's file" {
		t.Errorf("the file set aside: %q, %v", body, err)
	}
	if _, err := a6.Stat("g"); err != nil {
		t.Errorf("another space's file after DeleteSpace: %v", err)
	}
	if found, err := b.DeleteSpace(7, ""); found || err != nil {
		t.Errorf("DeleteSpace of a space never used: %v, %v; want nothing found", found, err)
	}
}

// TestMultipartCopy: an object larger than one CopyObject copies (5 GiB;
// here a few MiB) is moved part by part, whole, by a rename of it and of
// its folder, and copied aside by DeleteSpace.
func TestMultipartCopy(t *testing.T) {
	b := testBackend(t, testConfig(t))
	b.maxCopy, b.copyPartSize = MinPartSize, MinPartSize
	a, _ := b.Area("#1")
	data := append(append(fill(MinPartSize, 'a'), fill(MinPartSize, 'b')...), fill(MinPartSize/2, 'c')...)
	must(t, a.Mkdir("d"))
	pt, err := a.StartUpload("d/big", int64(len(data)), false)
	must(t, err)
	_, err = pt.Write(data)
	must(t, err)
	_, err = pt.Sync()
	must(t, err)
	_, err = pt.Place(false)
	must(t, err)
	must(t, pt.Close())
	read := func(p string) []byte {
		t.Helper()
		o, err := a.Open(p)
		must(t, err)
		defer o.Close()
		got := make([]byte, o.Info().Size)
		_, err = o.ReadAt(got, 0)
		if err != nil && err != io.EOF {
			t.Fatalf("read %s: %v", p, err)
		}
		return got
	}
	must(t, a.Rename("d/big", "d/moved", false))
	if got := read("d/moved"); !bytes.Equal(got, data) {
		t.Errorf("the file renamed by a multipart copy: %d bytes, equal %v; want the %d bytes put", len(got), bytes.Equal(got, data), len(data))
	}
	must(t, a.Rename("d", "e", false))
	if got := read("e/moved"); !bytes.Equal(got, data) {
		t.Errorf("the file of a folder renamed by a multipart copy: %d bytes, equal %v", len(got), bytes.Equal(got, data))
	}
	if _, err := b.DeleteSpace(1, "aside"); err != nil {
		t.Fatal(err)
	}
	// Three copies of three parts each: 5, 5 and 2.5 MiB.
	if n := opStats(b.Stats(), "UploadPartCopy").Results[resultOK]; n != 9 {
		t.Errorf("UploadPartCopy: %d made, want 9 (three copies of three parts)", n)
	}
	ctx, cancel := b.ctx()
	defer cancel()
	h, err := b.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: &b.bucket, Key: aws.String(b.root + "deleted/aside/e/moved")})
	if err != nil || aws.ToInt64(h.ContentLength) != int64(len(data)) {
		t.Errorf("the file copied aside by a multipart copy: %v; want %d bytes", err, len(data))
	}
}
