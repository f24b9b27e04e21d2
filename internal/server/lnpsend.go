package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/disk"
	"github.com/larderfs/larder/internal/xfer"
	"github.com/larderfs/larder/lnp"
)

// minKnownSums is the smallest file whose block sums are looked up or
// recorded: below it, hashing the file costs less than the query.
const minKnownSums = 256 << 10

// send writes the DATA frames of f from off: with the block sums recorded
// for its content, without hashing it (and, on a plaintext connection,
// with sendfile(2), never copying the bytes through the process);
// otherwise hashing each block as it is read, and recording the sums of a
// whole pass for the next download. It returns where it stopped, the END
// to send, and the error writing to the client, if any: then no END can
// reach it.
func (ss *session) send(ctx context.Context, f *disk.File, off int64, sum [32]byte) (int64, lnp.EndStatus, error) {
	known := ss.knownBlocks(ctx, f.Size, off, sum)
	if tcp, ok := ss.c.rwc.(*net.TCPConn); ok && known != nil {
		return ss.sendFile(tcp, f, off, known)
	}
	o := xfer.ReadOptions{BlockSize: ss.blockSize, Unhashed: known != nil}
	var rec *larder.BlockSums
	if known == nil && off == 0 && ss.s.FileStore != nil && ss.keepsSums(f.Size) {
		// The sums of this pass are recorded if the bytes read are the
		// content whose hash was announced: the file may change meanwhile.
		rec = &larder.BlockSums{SHA256: sum, Size: f.Size, BlockSize: ss.blockSize}
		o.Whole = sha256.New()
	}
	rd := xfer.NewReader(f, off, f.Size, o)
	defer rd.Close()
	var hd [lnp.DataOverhead]byte
	watch := ss.watchAccount()
	for {
		if err := watch.check(ctx); err != nil {
			return off, accountEnd(err), nil
		}
		b, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return off, readFailed(err), nil
		}
		d := lnp.Data{Offset: uint64(b.Offset), SHA256: b.SHA256}
		if known != nil {
			d.SHA256 = known.Sum(b.Offset / int64(ss.blockSize))
		}
		if rec != nil {
			rec.Sums = append(rec.Sums, d.SHA256[:]...)
		}
		n := len(b.Data)
		err = ss.w.WriteFrameParts(lnp.TypeData, d.AppendHead(hd[:0]), b.Data)
		rd.Release(b)
		if err != nil {
			return off, lnp.EndStatus{}, err
		}
		off += int64(n)
	}
	if rec != nil && [32]byte(o.Whole.Sum(nil)) == sum {
		// Best effort: sums not recorded are computed again next time.
		if err := ss.s.FileStore.PutBlockSums(ctx, rec); err != nil {
			ss.s.logger().Warn("cannot record block sums", "path", f.Name, "err", err)
		}
	}
	return off, lnp.EndStatus{Status: lnp.StatusOK}, nil
}

// keepsSums reports whether the block sums of a file of size bytes are
// recorded: not for files so small that hashing them costs less than the
// query, nor for those with more than larder.MaxBlockSums blocks.
func (ss *session) keepsSums(size int64) bool {
	b := larder.BlockSums{Size: size, BlockSize: ss.blockSize}
	return size >= minKnownSums && b.Blocks() <= larder.MaxBlockSums
}

// accountEnd is the END of a download whose account was disabled or
// deleted during it.
func accountEnd(err error) lnp.EndStatus {
	return lnp.EndStatus{Status: statusOf(err), Message: larder.ErrorMessage(err)}
}

// readFailed is the END of a download whose file could not be read: a
// short read is a file that shrank during the download.
func readFailed(err error) lnp.EndStatus {
	msg := "cannot read the file"
	if _, short := err.(*xfer.ShortError); short {
		msg = "the file changed during the download"
	}
	return lnp.EndStatus{Status: lnp.StatusOther, Message: msg}
}

// knownBlocks returns the block sums recorded for the content of size
// bytes with SHA-256 sum in the session's block size, if a download from
// off can use them (its blocks are theirs), or nil.
func (ss *session) knownBlocks(ctx context.Context, size, off int64, sum [32]byte) *larder.BlockSums {
	if ss.s.FileStore == nil || size < minKnownSums || off%int64(ss.blockSize) != 0 {
		return nil
	}
	b, err := ss.s.FileStore.BlockSums(ctx, sum, size, ss.blockSize)
	if err != nil {
		if larder.ErrorCode(err) != larder.ENOTFOUND {
			ss.s.logger().Warn("cannot read block sums", "err", err)
		}
		return nil
	}
	return b
}

// sendFile writes the DATA frames of f from off with the known sums, each
// frame's head through the session's writer and its payload straight from
// the file to the socket with sendfile(2).
func (ss *session) sendFile(tcp *net.TCPConn, f *disk.File, off int64, known *larder.BlockSums) (int64, lnp.EndStatus, error) {
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return off, readFailed(err), nil
	}
	timeout := cmp(ss.s.WriteTimeout, DefaultWriteTimeout)
	var hd [lnp.DataOverhead]byte
	watch := ss.watchAccount()
	for off < f.Size {
		if err := watch.check(ss.s.ctx); err != nil {
			return off, accountEnd(err), nil
		}
		n := min(int64(ss.blockSize), f.Size-off)
		d := lnp.Data{Offset: uint64(off), SHA256: known.Sum(off / int64(ss.blockSize))}
		if err := ss.w.WriteFrameHead(lnp.TypeData, d.AppendHead(hd[:0]), int(n)); err != nil {
			return off, lnp.EndStatus{}, err
		}
		if err := ss.w.Flush(); err != nil {
			return off, lnp.EndStatus{}, err
		}
		ss.c.setWriteDeadline(time.Now().Add(timeout))
		sent, err := tcp.ReadFrom(&io.LimitedReader{R: f.File, N: n})
		if sent < n {
			// The frame announced n bytes: whatever comes next would be
			// read as its payload, so the session cannot go on.
			if err == nil {
				err = errors.New("the file changed during the download")
			}
			return off + sent, lnp.EndStatus{}, err
		}
		off += n
	}
	return off, lnp.EndStatus{Status: lnp.StatusOK}, nil
}
