package s3

import (
	"bytes"
	"crypto/rand"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/larderfs/larder"
)

// seed puts data at path p of b's space #1, by the plain client.
func seed(t testing.TB, b *Backend, p string, data []byte) {
	t.Helper()
	ctx, cancel := b.ctx()
	defer cancel()
	_, err := b.client.PutObject(ctx, &awss3.PutObjectInput{Bucket: &b.bucket, Key: aws.String(b.root + "spaces/1/" + p), Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data)))})
	must(t, err)
}

// TestReadSequentialFewRequests: a file read from start to end, as a
// download reads it, costs the store one GET for its first bytes and one
// per span after them, not one per ReadAhead bytes: each GET costs the
// store milliseconds whatever its size.
func TestReadSequentialFewRequests(t *testing.T) {
	b := testBackend(t, testConfig(t))
	a, _ := b.Area("#1")
	data := make([]byte, 24<<20+5)
	rand.Read(data)
	seed(t, b, "f", data)
	gets := requests(b, "GetObject")
	o, err := a.Open("f")
	must(t, err)
	defer o.Close()
	var got bytes.Buffer
	for off := int64(0); off < int64(len(data)); off += 1 << 20 {
		_, err := o.WriteRangeTo(&got, off, min(1<<20, int64(len(data))-off))
		must(t, err)
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatal("the bytes read are not the file's")
	}
	if n := requests(b, "GetObject") - gets; n != 2 {
		t.Errorf("reading %d bytes in order took %d GETs, want 2 (the first bytes, then one span)", len(data), n)
	}
}

// TestCloseStopsRead: a file closed in the middle of a read, as a
// download the client cut is, leaves nothing running: when Close
// returns, no goroutine of the read is left, and soon no connection to
// the store is in use.
func TestCloseStopsRead(t *testing.T) {
	b := testBackend(t, testConfig(t))
	a, _ := b.Area("#1")
	data := make([]byte, 64<<20)
	rand.Read(data)
	seed(t, b, "f", data)
	seen := 0 // reads during which a connection was seen in use
	for range 5 {
		o, err := a.Open("f")
		must(t, err)
		buf := make([]byte, 1<<20)
		_, err = o.ReadAt(buf, 0)
		must(t, err)
		_, err = o.ReadAt(buf, 5<<20) // within the read-ahead's reach
		must(t, err)
		if busyConns() > 0 {
			seen++
		}
		must(t, o.Close())
		if g := readers(); g != "" {
			t.Fatalf("after Close, a goroutine of the read is left:\n%s", g)
		}
	}
	if seen == 0 {
		t.Fatal("no connection was in use while a file was read: the test cannot see one left")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := busyConns()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 s after Close, %d connections to the store are still in use", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readers returns the stacks of the goroutines reading an object, if any:
// those in a request to the store or reading its answer (not one that has
// said it is done and is returning).
func readers() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "internal/s3.(*object).produce(") || strings.Contains(g, "internal/s3.(*object).get(") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

// busyConns returns how many connections of the process's HTTP clients
// are in use: a request waits for its answer, or a read loop for the body
// of an answer to be read (an idle one's waits for bytes from the server).
func busyConns() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		switch {
		case strings.Contains(g, "net/http.(*persistConn).roundTrip("): // waiting for an answer
			n++
		case strings.Contains(g, "net/http.(*persistConn).readLoop(") && !strings.Contains(g, "bufio.(*Reader).Peek("):
			n++
		}
	}
	return n
}

// TestReadSlowReader: a reader that takes longer than the timeout between
// two reads gets the file whole: the store's time is bounded, not the
// reader's.
func TestReadSlowReader(t *testing.T) {
	cfg := testConfig(t)
	data := make([]byte, 16<<20)
	rand.Read(data)
	// Stored with the usual timeout: a loaded machine may take more
	// than the short one below to upload 16 MiB.
	seed(t, testBackend(t, cfg), "f", data)
	cfg.Timeout = 500 * time.Millisecond
	b := testBackend(t, cfg)
	a, _ := b.Area("#1")
	o, err := a.Open("f")
	must(t, err)
	defer o.Close()
	got := make([]byte, len(data))
	for off := 0; off < len(data); off += 6 << 20 {
		if off > 0 {
			time.Sleep(3 * cfg.Timeout)
		}
		_, err := o.ReadAt(got[off:min(off+6<<20, len(data))], int64(off))
		must(t, err)
	}
	if !bytes.Equal(got, data) {
		t.Error("the bytes read slowly are not the file's")
	}
}

// TestReadStoreStalls: a store that does not answer a download's GET
// fails the read with BUSY within about the timeout, not a hang, and
// reads work again when it answers again.
func TestReadStoreStalls(t *testing.T) {
	cfg := testConfig(t)
	u, err := url.Parse(cfg.Endpoint)
	must(t, err)
	p := startProxy(t, u.Host)
	data := make([]byte, 64<<20)
	rand.Read(data)
	// Stored with the usual timeout: a loaded machine may take more
	// than the short one below to upload 64 MiB.
	seed(t, testBackend(t, cfg), "f", data)
	cfg.Endpoint = "http://" + p.port
	cfg.Timeout = time.Second
	b := testBackend(t, cfg)
	a, _ := b.Area("#1")
	o, err := a.Open("f")
	must(t, err)
	defer o.Close()
	// The GET of the rest, sent at the first read, is answered late.
	p.hold.Store(int64(4 * cfg.Timeout))
	buf := make([]byte, 1<<20)
	start := time.Now()
	var off int64
	for off = 0; off < int64(len(data)); off += 1 << 20 {
		if _, err = o.ReadAt(buf, off); err != nil {
			break
		}
	}
	if took := time.Since(start); larder.ErrorCode(err) != larder.EUNAVAILABLE || took > 3*cfg.Timeout {
		t.Fatalf("reading on from a store that stopped sending: %v after %v (at %d); want BUSY within about %v", err, took, off, cfg.Timeout)
	}
	time.Sleep(4 * cfg.Timeout) // the store sends again
	_, err = o.ReadAt(buf, off)
	must(t, err)
	if !bytes.Equal(buf, data[off:off+1<<20]) {
		t.Error("the bytes read once the store sends again are not the file's")
	}
}

// TestReadResumesCutAnswer: an answer cut in the middle (the store closed
// the connection) is asked for again from where it stopped, and the
// reader gets the file whole.
func TestReadResumesCutAnswer(t *testing.T) {
	cfg := testConfig(t)
	u, err := url.Parse(cfg.Endpoint)
	must(t, err)
	p := startProxy(t, u.Host)
	cfg.Endpoint = "http://" + p.port
	b := testBackend(t, cfg)
	a, _ := b.Area("#1")
	data := make([]byte, 64<<20)
	rand.Read(data)
	seed(t, b, "f", data)
	gets := requests(b, "GetObject")
	o, err := a.Open("f")
	must(t, err)
	defer o.Close()
	got := make([]byte, len(data))
	for off := 0; off < len(data); off += 1 << 20 {
		if off == 8<<20 {
			p.stop()
			p.start()
		}
		_, err := o.ReadAt(got[off:off+1<<20], int64(off))
		must(t, err)
	}
	if !bytes.Equal(got, data) {
		t.Error("the bytes read across a cut answer are not the file's")
	}
	if n := requests(b, "GetObject") - gets; n != 3 {
		t.Errorf("%d GETs, want 3: the first bytes, the rest, the rest again from where it was cut", n)
	}
}
