//go:build linux

package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/course"
)

// account is a user of the systems under test.
type account struct {
	name     string
	sig      larder.Signature
	password string // the password sig is made of
}

func newAccount(i int) account {
	return account{
		name:     fmt.Sprintf("bench%04d", i),
		sig:      larder.NewSignature(fmt.Sprintf("bench-password-%d", i), course.CourseSalt),
		password: fmt.Sprintf("bench-password-%d", i),
	}
}

// newAccounts returns the accounts 0 to n-1.
func newAccounts(n int) []account {
	accts := make([]account, n)
	for i := range accts {
		accts[i] = newAccount(i)
	}
	return accts
}

// request encodes a's request for path; "" registers a.
func (a account) request(path string) []byte {
	r := course.Request{Username: a.name, Signature: a.sig, Body: []byte(path)}
	b, err := r.AppendBinary(nil)
	if err != nil {
		panic(err) // names and paths are made by the bench
	}
	return b
}

// fileSpec is a file served by the systems under test, as a client knows
// it in advance.
type fileSpec struct {
	Path string
	Size int
	Sum  [32]byte // SHA-256 of the content
}

// replySize returns the number of bytes of the course-protocol reply that
// carries f.
func (f fileSpec) replySize() int {
	n, _ := course.BlockCount(int64(f.Size))
	return int(n)*course.BlockHeaderSize + f.Size
}

// statusError is a reply whose status is not OK.
type statusError struct {
	status course.Status
	msg    string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("status %v: %q", e.status, e.msg)
}

// reply is a decoded course-protocol reply.
type reply struct {
	status  course.Status
	payload []byte
	total   [32]byte // the total hash every block carries, checked against payload
}

// decodeReply checks a whole course-protocol reply, b, and reassembles its
// payload into dst, reallocated if too small. The blocks may come in any
// order; every block must agree with the first on the status, the count
// and the total hash, carry its own correct hash, and be full unless it is
// the last; no block may be missing or repeated, and no byte may follow the
// last one.
//
// The bench cuts replies from a byte slice with course.CutBlock rather than
// reading them with course.BlockReader, which allocates a 64 KiB buffer per
// reader: at thousands of requests a second that cost would land on the
// client.
func decodeReply(b, dst []byte) (reply, error) {
	var r reply
	first, _, _, err := course.CutBlock(b)
	if err == io.EOF {
		return r, errors.New("empty reply, shorter than one block header")
	}
	if err != nil {
		return r, err
	}
	count := first.Count
	if count == 0 || uint64(count)*course.BlockHeaderSize > uint64(len(b)) {
		return r, fmt.Errorf("reply of %d bytes cannot hold the %d blocks it declares", len(b), count)
	}
	r.status, r.total = first.Status, first.TotalHash
	if cap(dst) < int(count)*course.MaxBlockPayload {
		dst = make([]byte, int(count)*course.MaxBlockPayload)
	}
	dst = dst[:cap(dst)]
	seen := make([]bool, count)
	size := -1
	rest := b
	for n := uint32(0); n < count; n++ {
		h, p, after, err := course.CutBlock(rest)
		if err == io.EOF {
			return r, fmt.Errorf("reply ends after %d of its %d blocks", n, count)
		}
		if err != nil {
			return r, err
		}
		rest = after
		switch {
		case h.Status != r.status || h.Count != count || h.TotalHash != r.total:
			return r, fmt.Errorf("block %d disagrees with the first block on status, count or total hash", h.Index)
		case h.Index >= count:
			return r, fmt.Errorf("block index %d out of range for %d blocks", h.Index, count)
		case seen[h.Index]:
			return r, fmt.Errorf("block %d sent twice", h.Index)
		case h.Index < count-1 && h.Length != course.MaxBlockPayload:
			return r, fmt.Errorf("block %d of %d carries %d bytes; all but the last must be full", h.Index, count, h.Length)
		case sha256.Sum256(p) != h.BlockHash:
			return r, fmt.Errorf("block %d: block hash does not match its payload", h.Index)
		}
		seen[h.Index] = true
		copy(dst[int(h.Index)*course.MaxBlockPayload:], p)
		if h.Index == count-1 {
			size = int(h.Index)*course.MaxBlockPayload + len(p)
		}
	}
	if len(rest) > 0 {
		return r, fmt.Errorf("%d bytes follow the last of %d blocks", len(rest), count)
	}
	r.payload = dst[:size]
	if sha256.Sum256(r.payload) != r.total {
		return r, errors.New("total hash does not match the reassembled payload")
	}
	return r, nil
}

// checkFileReply checks that b is a whole, correct OK reply carrying f,
// using scratch to reassemble the payload.
func checkFileReply(b []byte, f fileSpec, scratch []byte) error {
	r, err := decodeReply(b, scratch)
	if err != nil {
		return err
	}
	if r.status != course.StatusOK {
		return &statusError{r.status, string(r.payload)}
	}
	if len(r.payload) != f.Size {
		return fmt.Errorf("payload of %d bytes, want %d", len(r.payload), f.Size)
	}
	if r.total != f.Sum {
		return errors.New("payload is not the file's content (SHA-256 differs)")
	}
	return nil
}

// client sends requests, one per connection, each bounded by timeout.
type client struct {
	addr    string
	timeout time.Duration
	dialer  net.Dialer
}

func newClient(addr string, timeout time.Duration) *client {
	return &client{addr: addr, timeout: timeout, dialer: net.Dialer{Timeout: timeout}}
}

// dial connects with a deadline of c.timeout on everything that follows,
// or ctx's deadline if that comes first: a load that must end at a given
// time gives its requests a context with that deadline.
func (c *client) dial(ctx context.Context) (net.Conn, error) {
	conn, err := c.dialer.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	conn.SetDeadline(deadline)
	return conn, nil
}

// roundTrip sends req on a new connection and reads the reply until the
// server closes, into buf. A reply that would not fit in buf is an error:
// size buf one byte larger than the largest reply expected.
func (c *client) roundTrip(ctx context.Context, req, buf []byte) ([]byte, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if _, err := conn.Write(req); err != nil {
		return nil, err
	}
	n := 0
	for {
		if n == len(buf) {
			return buf[:n], fmt.Errorf("reply longer than the %d bytes expected", len(buf)-1)
		}
		m, err := conn.Read(buf[n:])
		n += m
		if err == io.EOF {
			return buf[:n], nil
		}
		if err != nil {
			return buf[:n], err
		}
	}
}

// register registers a, accepting only an OK reply.
func (c *client) register(ctx context.Context, a account) error {
	b, err := c.roundTrip(ctx, a.request(""), make([]byte, 8<<10))
	if err != nil {
		return fmt.Errorf("registering %s: %w", a.name, err)
	}
	r, err := decodeReply(b, nil)
	if err != nil {
		return fmt.Errorf("registering %s: %w", a.name, err)
	}
	if r.status != course.StatusOK {
		return fmt.Errorf("registering %s: %w", a.name, &statusError{r.status, string(r.payload)})
	}
	return nil
}

// registerAll registers the accounts, two at a time: larder computes as
// many password hashes at once as it has cores, and queues the rest.
func (c *client) registerAll(ctx context.Context, accts []account) error {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		errs = make([]error, 2)
	)
	for w := range errs {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(accts) || ctx.Err() != nil {
					return
				}
				if err := c.register(ctx, accts[i]); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(append(errs, ctx.Err())...)
}

// fetchFramed retrieves f over the course protocol as a careful client
// does: it checks every block's hash and position and the total hash
// against the one it knows, hashing the stream as it goes rather than
// keeping it. It returns the bytes of payload received. The streaming
// check needs the blocks in order, as larder sends them unless told to
// shuffle.
func (c *client) fetchFramed(ctx context.Context, req []byte, f fileSpec) (int64, error) {
	return c.fetchChecked(ctx, req, f, false)
}

// fetchFramedTwoCores is fetchFramed with the total hash taken by a
// goroutine of its own, beside the block hashes: the same checks, each
// byte still hashed twice, on two cores rather than one.
func (c *client) fetchFramedTwoCores(ctx context.Context, req []byte, f fileSpec) (int64, error) {
	return c.fetchChecked(ctx, req, f, true)
}

func (c *client) fetchChecked(ctx context.Context, req []byte, f fileSpec, twoCores bool) (int64, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if _, err := conn.Write(req); err != nil {
		return 0, err
	}
	count, _ := course.BlockCount(int64(f.Size))
	br := course.NewBlockReader(conn)
	total := newTotalHash(twoCores)
	defer total.stop()
	var got int64
	for next := uint32(0); ; next++ {
		h, p, err := br.ReadBlock()
		if err == io.EOF {
			if next != count {
				return got, fmt.Errorf("reply ends after %d of %d blocks", next, count)
			}
			break
		}
		if err != nil {
			return got, err
		}
		switch {
		case h.Status != course.StatusOK:
			return got, &statusError{h.Status, string(p)}
		case h.Count != count:
			return got, fmt.Errorf("block %d declares %d blocks, want %d", h.Index, h.Count, count)
		case h.Index != next:
			return got, fmt.Errorf("block %d arrived in position %d: this client checks in-order replies only", h.Index, next)
		case h.TotalHash != f.Sum:
			return got, fmt.Errorf("block %d: total hash is not the file's", h.Index)
		case next < count-1 && h.Length != course.MaxBlockPayload:
			return got, fmt.Errorf("block %d carries %d bytes; all but the last must be full", h.Index, h.Length)
		case sha256.Sum256(p) != h.BlockHash:
			return got, fmt.Errorf("block %d: block hash does not match its payload", h.Index)
		}
		total.write(p)
		got += int64(len(p))
	}
	if got != int64(f.Size) {
		return got, fmt.Errorf("received %d payload bytes, want %d", got, f.Size)
	}
	if total.sum() != f.Sum {
		return got, errors.New("total hash of the payload received does not match")
	}
	return got, nil
}

// totalHash is the SHA-256 of a reply's payload, taken as the blocks come
// or, with two cores, by a goroutine that is handed 60 KiB at a time.
type totalHash struct {
	h      hash.Hash
	buf    []byte
	chunks chan []byte   // to the goroutine; nil without one
	free   chan []byte   // buffers back from it
	done   chan [32]byte // its sum, once chunks is closed
}

const totalChunk = 64 * course.MaxBlockPayload

func newTotalHash(twoCores bool) *totalHash {
	t := &totalHash{h: sha256.New()}
	if !twoCores {
		return t
	}
	const buffers = 4
	t.chunks, t.free, t.done = make(chan []byte, buffers), make(chan []byte, buffers), make(chan [32]byte, 1)
	for range buffers - 1 {
		t.free <- make([]byte, 0, totalChunk)
	}
	t.buf = make([]byte, 0, totalChunk)
	chunks, free, done, h := t.chunks, t.free, t.done, t.h // the fields change under it
	go func() {
		for b := range chunks {
			h.Write(b)
			free <- b[:0]
		}
		done <- [32]byte(h.Sum(nil))
	}()
	return t
}

func (t *totalHash) write(p []byte) {
	if t.chunks == nil {
		t.h.Write(p)
		return
	}
	if len(t.buf)+len(p) > cap(t.buf) {
		t.chunks <- t.buf
		t.buf = <-t.free
	}
	t.buf = append(t.buf, p...)
}

// sum returns the hash of everything written; write must not follow.
func (t *totalHash) sum() [32]byte {
	if t.chunks == nil {
		return [32]byte(t.h.Sum(nil))
	}
	t.chunks <- t.buf
	close(t.chunks)
	t.chunks = nil
	return <-t.done
}

// stop ends the goroutine if sum was not called (an error on the way).
func (t *totalHash) stop() {
	if t.chunks != nil {
		close(t.chunks)
		t.chunks = nil
		<-t.done
	}
}

// fetchRaw sends req and reads an unframed stream until the server closes,
// counting the bytes and, if hash is set, checking the SHA-256 of the
// stream against f's. buf is the read buffer.
func (c *client) fetchRaw(ctx context.Context, req []byte, f fileSpec, hash bool, buf []byte) (int64, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if _, err := conn.Write(req); err != nil {
		return 0, err
	}
	h := sha256.New()
	var got int64
	for {
		n, err := conn.Read(buf)
		got += int64(n)
		if hash {
			h.Write(buf[:n])
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return got, err
		}
	}
	if got != int64(f.Size) {
		return got, fmt.Errorf("received %d bytes, want %d", got, f.Size)
	}
	if hash && [32]byte(h.Sum(nil)) != f.Sum {
		return got, errors.New("SHA-256 of the stream does not match")
	}
	return got, nil
}

// openIdle opens n connections to addr that send nothing, dialling from
// several goroutines. Each gets a deadline of hold, though nothing reads
// it. On failure it closes what it opened.
func openIdle(ctx context.Context, addr string, n int, hold time.Duration) ([]net.Conn, error) {
	return openIdleWith(ctx, addr, n, hold, nil)
}

// openIdleWith is openIdle, with start (if not nil) run on each connection
// once it is open: a TLS handshake, say.
func openIdleWith(ctx context.Context, addr string, n int, hold time.Duration, start func(context.Context, net.Conn) (net.Conn, error)) ([]net.Conn, error) {
	const dialers = 16
	conns := make([]net.Conn, n)
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	d := net.Dialer{Timeout: 10 * time.Second}
	for range dialers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				c, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					errOnce.Do(func() { first = fmt.Errorf("opening idle connection %d of %d: %w", i+1, n, err) })
					next.Store(int64(n)) // the others stop too
					return
				}
				c.SetDeadline(time.Now().Add(hold))
				if start != nil {
					sc, err := start(ctx, c)
					if err != nil {
						c.Close()
						errOnce.Do(func() { first = fmt.Errorf("starting idle connection %d of %d: %w", i+1, n, err) })
						next.Store(int64(n))
						return
					}
					c = sc
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	if first != nil {
		closeAll(conns)
		return nil, first
	}
	return conns, nil
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}
