package server

import (
	"sync"

	"github.com/larderfs/larder/lnp"
)

// An LNP/1 session holds small buffers for its whole life, and borrows
// large ones only for the request that needs them: a connection that has
// not logged in, and a session idling between requests, cost a few KiB
// whatever they did before. Thousands of idle connections that each held
// their transfer buffers from the accept took 1.2 GiB; sessions that kept
// a block's worth from their login, 1.3 MiB each.

// sessionBuffer is the size of a session's own read and write buffers: a
// request, a reply, a frame's head. A DATA frame's payload goes past them,
// straight between the socket and a block buffer.
const sessionBuffer = 4 << 10

// transferWriteBuffer is the write buffer a download borrows: it gathers
// the frames of small blocks into few writes.
const transferWriteBuffer = 256 << 10

var (
	transferWriters sync.Pool // of *lnp.Writer with transferWriteBuffer
	blockBuffers    sync.Pool // of *[]byte, for SUMS
)

// borrowBuffers lends the session what a request of type t needs beyond
// its own buffers, and returns the function that takes them back once the
// request is served: a download's writer, a SUMS request's block buffer.
// It also drops the body buffer of an upload's last DATA frame.
func (ss *session) borrowBuffers(t lnp.Type) (release func()) {
	own := ss.w
	switch t {
	case lnp.TypeGet:
		w, _ := transferWriters.Get().(*lnp.Writer)
		if w == nil {
			w = lnp.NewWriter(nil, transferWriteBuffer)
		}
		w.Reset(&ss.dw)
		ss.w = w
	case lnp.TypeSums:
		if p, _ := blockBuffers.Get().(*[]byte); p != nil && cap(*p) >= ss.blockSize {
			ss.buf = (*p)[:ss.blockSize]
		} else {
			ss.buf = make([]byte, ss.blockSize)
		}
	}
	return func() {
		if w := ss.w; w != own {
			w.Flush() // normally flushed already; an error has ended the session
			w.Reset(nil)
			transferWriters.Put(w)
			ss.w = own
		}
		if ss.buf != nil {
			buf := ss.buf
			blockBuffers.Put(&buf)
			ss.buf = nil
		}
		ss.r.Release()
	}
}
