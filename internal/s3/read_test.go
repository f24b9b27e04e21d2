package s3

import (
	"bytes"
	"crypto/rand"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
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
	for range 5 {
		o, err := a.Open("f")
		must(t, err)
		buf := make([]byte, 1<<20)
		_, err = o.ReadAt(buf, 0)
		must(t, err)
		_, err = o.ReadAt(buf, 5<<20) // within the read-ahead's reach
		must(t, err)
		if busyConns() == 0 {
			t.Fatal("no connection in use while a file is read: the test cannot see one left")
		}
		must(t, o.Close())
		if g := readers(); g != "" {
			t.Fatalf("after Close, a goroutine of the read is left:\n%s", g)
		}
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

// readers returns the stacks of the goroutines reading an object, if any.
func readers() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "internal/s3.(*object)") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

// busyConns returns how many connections of the process's HTTP clients
// are in use: their read loops wait for the body of an answer to be read,
// where an idle one's waits for bytes from the server.
func busyConns() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "net/http.(*persistConn).readLoop(") && !strings.Contains(g, "bufio.(*Reader).Peek(") {
			n++
		}
	}
	return n
}
