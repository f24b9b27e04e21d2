package s3

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/files"
)

// object is a file open for reading: ranged GETs of a window of
// ReadAhead bytes, the next ones fetched while the last is read. Each
// GET asks for the ETag the file had when opened, so a file replaced
// meanwhile gives an error, never a mix of two contents.
type object struct {
	b     *Backend
	key   string
	shown string
	etag  string
	info  files.Info

	mu   sync.Mutex
	wins []*window // the window last read, then those after it, being fetched
}

// ahead is how many windows are fetched ahead of the one being read: two,
// so that the store's latency of one is hidden behind the reading of the
// other.
const ahead = 2

// window is the bytes of [off, off+n), or an error, once done is
// closed.
type window struct {
	off    int64
	n      int64
	done   chan struct{}
	cancel context.CancelFunc
	data   []byte
	err    error
}

// fetch starts fetching n bytes at off, with one request's deadline.
func (o *object) fetch(off, n int64) *window {
	ctx, cancel := o.b.ctx()
	w := &window{off: off, n: n, done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(w.done)
		defer cancel()
		w.data, w.err = o.get(ctx, off, n)
	}()
	return w
}

// get reads n bytes at off.
func (o *object) get(ctx context.Context, off, n int64) ([]byte, error) {
	out, err := o.b.client.GetObject(ctx, &awss3.GetObjectInput{
		Bucket: &o.b.bucket, Key: &o.key, IfMatch: aws.String(o.etag),
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1)),
	})
	if isPrecondition(err) || isNotFound(err) {
		return nil, larder.Errorf(larder.ECONFLICT, "%s changed or went while it was read; read it again", quote(o.shown))
	}
	if err != nil {
		return nil, o.b.fail(err, "cannot read "+quote(o.shown))
	}
	defer out.Body.Close()
	buf := make([]byte, n)
	if _, err := io.ReadFull(out.Body, buf); err != nil {
		return nil, o.b.fail(err, "cannot read "+quote(o.shown))
	}
	return buf, nil
}

// window returns the bytes of the window that holds off and where they
// start, fetching it if need be, and starts fetching the ones after it.
func (o *object) window(off int64) ([]byte, int64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	size, ra := o.info.Size, o.b.readAhead
	i := slices.IndexFunc(o.wins, func(w *window) bool { return off >= w.off && off < w.off+w.n })
	if i < 0 {
		o.drop()
		o.wins = []*window{o.fetch(off, min(ra, size-off))}
	} else {
		for _, w := range o.wins[:i] {
			w.cancel()
		}
		o.wins = o.wins[i:]
	}
	for len(o.wins) <= ahead {
		last := o.wins[len(o.wins)-1]
		end := last.off + last.n
		if end >= size {
			break
		}
		o.wins = append(o.wins, o.fetch(end, min(ra, size-end)))
	}
	w := o.wins[0]
	<-w.done
	if w.err != nil {
		o.drop()
	}
	return w.data, w.off, w.err
}

// drop lets go of the windows, stopping a fetch in flight.
func (o *object) drop() {
	for _, w := range o.wins {
		w.cancel()
	}
	o.wins = nil
}

func (o *object) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, larder.Errorf(larder.EINVALID, "a negative offset")
	}
	n := 0
	for n < len(p) {
		at := off + int64(n)
		if at >= o.info.Size {
			return n, io.EOF
		}
		data, start, err := o.window(at)
		if err != nil {
			return n, err
		}
		n += copy(p[n:], data[at-start:])
	}
	return n, nil
}

func (o *object) Info() files.Info { return o.info }

// WriteRangeTo copies n bytes from off to w, a window at a time, the next
// fetched while the last is written.
func (o *object) WriteRangeTo(w io.Writer, off, n int64) (int64, error) {
	var written int64
	for written < n {
		at := off + written
		if at >= o.info.Size {
			return written, io.ErrUnexpectedEOF
		}
		data, start, err := o.window(at)
		if err != nil {
			return written, err
		}
		chunk := data[at-start:]
		if int64(len(chunk)) > n-written {
			chunk = chunk[:n-written]
		}
		k, err := w.Write(chunk)
		written += int64(k)
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// Close lets go of the windows.
func (o *object) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.drop()
	return nil
}
