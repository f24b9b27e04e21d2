package s3

import (
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/larderfs/larder"
)

// proxy forwards connections from a port of its own to addr until
// stopped; started again, on the same port, it forwards again: a store
// that goes away and comes back.
type proxy struct {
	t    *testing.T
	addr string // forwarded to
	port string // its own, 127.0.0.1:N

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
	hold  atomic.Int64 // delays the next answer from the store by this many ns
}

// answer copies the store's answers on s to c, delaying one by hold if set.
func (p *proxy) answer(c, s net.Conn) {
	defer c.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := s.Read(buf)
		if n > 0 {
			if d := p.hold.Swap(0); d > 0 {
				time.Sleep(time.Duration(d))
			}
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func startProxy(t *testing.T, addr string) *proxy {
	p := &proxy{t: t, addr: addr, port: "127.0.0.1:0"}
	p.start()
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) start() {
	ln, err := net.Listen("tcp", p.port)
	must(p.t, err)
	p.port = ln.Addr().String()
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", p.addr)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go p.answer(c, s)
		}
	}()
}

// stop closes its port and every connection through it.
func (p *proxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func opStats(s Stats, op string) OpStats {
	for _, o := range s.Ops {
		if o.Op == op {
			return o
		}
	}
	return OpStats{}
}

// TestStats: the counters of requests to the store by operation and
// result, and Up, which goes false when the store stops answering and
// true again when it comes back.
func TestStats(t *testing.T) {
	cfg := testConfig(t)
	u, err := url.Parse(cfg.Endpoint)
	must(t, err)
	p := startProxy(t, u.Host)
	cfg.Endpoint = "http://" + p.port
	b := testBackend(t, cfg)
	a, _ := b.Area("#1")
	if !b.Stats().Up {
		t.Errorf("Up is false after New, which read the storage's ID")
	}
	before := b.Stats()
	if _, err := a.Stat("missing"); larder.ErrorCode(err) != larder.ENOTFOUND {
		t.Fatalf("Stat of a missing file: %v", err)
	}
	s := b.Stats()
	head, list := opStats(s, "HeadObject"), opStats(s, "ListObjectsV2")
	if d := head.Results[resultRefused] - opStats(before, "HeadObject").Results[resultRefused]; d != 1 {
		t.Errorf("HeadObject of a missing key: %d more refused, want 1", d)
	}
	if d := list.Results[resultOK] - opStats(before, "ListObjectsV2").Results[resultOK]; d != 1 {
		t.Errorf("ListObjectsV2: %d more ok, want 1", d)
	}
	var n uint64
	for _, c := range head.Counts {
		n += c
	}
	if sum := head.Results[resultOK] + head.Results[resultRefused]; n != sum || head.Sum <= 0 {
		t.Errorf("HeadObject's durations: %d counted in %v, want %d and a positive sum", n, head.Sum, sum)
	}
	if !s.Up {
		t.Errorf("Up is false after a refusal: a key not found is an answer")
	}

	p.stop()
	b.timeout = 300 * time.Millisecond
	if _, err := a.Stat("f"); larder.ErrorCode(err) != larder.EUNAVAILABLE {
		t.Fatalf("Stat with the store gone: %v, want %s", err, larder.EUNAVAILABLE)
	}
	s = b.Stats()
	if s.Up || opStats(s, "HeadObject").Results[resultUnavailable] == 0 {
		t.Errorf("with the store gone: Up %v, HeadObject unavailable %d; want false and at least 1", s.Up, opStats(s, "HeadObject").Results[resultUnavailable])
	}

	p.start()
	b.timeout = DefaultTimeout
	if _, err := a.Stat("missing"); larder.ErrorCode(err) != larder.ENOTFOUND {
		t.Fatalf("Stat with the store back: %v", err)
	}
	if !b.Stats().Up {
		t.Errorf("Up is false once the store answers again")
	}
}

// requests returns how many requests of op b made, whatever their result.
func requests(b *Backend, op string) uint64 {
	var n uint64
	for _, r := range opStats(b.Stats(), op).Results {
		n += r
	}
	return n
}

// TestOpenSmallFileOneRequest: opening and reading a file no larger than
// a window takes one GET, no HEAD (a small request of the course
// protocol's shared area made two); a file of no bytes, which has no
// range, is opened by a HEAD.
func TestOpenSmallFileOneRequest(t *testing.T) {
	b := testBackend(t, testConfig(t))
	a, _ := b.Area("#1")
	for _, data := range [][]byte{[]byte("a small file"), nil} {
		pt, err := a.StartUpload("f", int64(len(data)), false)
		must(t, err)
		_, err = pt.Write(data)
		must(t, err)
		_, err = pt.Sync()
		must(t, err)
		_, err = pt.Place(true)
		must(t, err)
		must(t, pt.Close())

		heads, gets := requests(b, "HeadObject"), requests(b, "GetObject")
		o, err := a.Open("f")
		must(t, err)
		got := make([]byte, len(data))
		n, err := o.ReadAt(got, 0)
		if n != len(data) || string(got) != string(data) || (err != nil && err != io.EOF) || o.Info().Size != int64(len(data)) {
			t.Errorf("read %d of %q: %q, %v, size %d", n, data, got[:n], err, o.Info().Size)
		}
		o.Close()
		heads, gets = requests(b, "HeadObject")-heads, requests(b, "GetObject")-gets
		if len(data) > 0 && (heads != 0 || gets != 1) {
			t.Errorf("open and read of %d bytes: %d HEAD and %d GET, want 0 and 1", len(data), heads, gets)
		}
		if len(data) == 0 && heads != 1 {
			t.Errorf("open of an empty file: %d HEAD, want 1", heads)
		}
	}
}

// TestCompleteAfterDeadline: a store that completes an upload but answers
// after the request's deadline (versitygw puts a large file's parts
// together in the request) has the upload placed, not reported as
// cancelled (ListParts then says NoSuchUpload: the parts are gone into
// the object).
func TestCompleteAfterDeadline(t *testing.T) {
	cfg := testConfig(t)
	u, err := url.Parse(cfg.Endpoint)
	must(t, err)
	p := startProxy(t, u.Host)
	cfg.Endpoint = "http://" + p.port
	cfg.Timeout = time.Second
	b := testBackend(t, cfg)
	a, _ := b.Area("#1")
	data := fill(MinPartSize+10, 'x')
	pt, err := a.StartUpload("f", int64(len(data)), false)
	must(t, err)
	defer pt.Close()
	_, err = pt.Write(data)
	must(t, err)
	_, err = pt.Sync()
	must(t, err)
	b.failpoint = func(step string) error {
		if step == "upload:complete" {
			p.hold.Store(int64(2 * time.Second))
		}
		return nil
	}
	in, err := pt.Place(false)
	if err != nil || in.Size != int64(len(data)) {
		t.Fatalf("Place with the completion's answer late: %+v, %v; want the file placed", in, err)
	}
	if n := opStats(b.Stats(), "CompleteMultipartUpload").Results[resultUnavailable]; n != 1 {
		t.Errorf("the completion's request: %d unavailable, want 1 (its answer held past its deadline)", n)
	}
}
