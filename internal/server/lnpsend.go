package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/files"
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
//
// A session granted FeatureNoBlockHashes gets blocks without hashes: the
// file is neither hashed by block nor looked up, only sent (with
// sendfile(2) on a plaintext connection); the client checks the whole
// file against the SHA-256 the REPLY announced.
func (ss *session) send(ctx context.Context, f *files.File, off int64) (int64, lnp.EndStatus, error) {
	sum := f.SHA256
	blockHashes := ss.features&lnp.FeatureNoBlockHashes == 0
	var known *larder.BlockSums
	if blockHashes {
		known = ss.knownBlocks(ctx, f, off)
	}
	if tcp, ok := ss.c.rwc.(*net.TCPConn); ok && (known != nil || !blockHashes) {
		return ss.sendFile(tcp, f, off, known)
	}
	o := xfer.ReadOptions{BlockSize: ss.blockSize, Unhashed: !blockHashes || known != nil}
	var rec *larder.BlockSums
	if blockHashes && known == nil && off == 0 && ss.s.fsvc.HasRecords() && ss.keepsSums(f.Size) {
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
		ss.s.fsvc.PutBlockSums(ctx, rec)
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

// knownBlocks returns the block sums recorded for the content of f in
// the session's block size, if a download from off can use them (its
// blocks are theirs), or nil.
func (ss *session) knownBlocks(ctx context.Context, f *files.File, off int64) *larder.BlockSums {
	if f.Size < minKnownSums || off%int64(ss.blockSize) != 0 {
		return nil
	}
	return ss.s.fsvc.BlockSums(ctx, f, ss.blockSize)
}

// sendFile writes the DATA frames of f from off with the known sums (or
// none, zeros, if known is nil), each frame's head through the session's
// writer and its payload straight from the store to the socket (with
// sendfile(2) from a disk).
func (ss *session) sendFile(tcp *net.TCPConn, f *files.File, off int64, known *larder.BlockSums) (int64, lnp.EndStatus, error) {
	timeout := ss.c.lim.writeTimeout
	var hd [lnp.DataOverhead]byte
	watch := ss.watchAccount()
	for off < f.Size {
		if err := watch.check(ss.s.ctx); err != nil {
			return off, accountEnd(err), nil
		}
		n := min(int64(ss.blockSize), f.Size-off)
		d := lnp.Data{Offset: uint64(off)}
		if known != nil {
			d.SHA256 = known.Sum(off / int64(ss.blockSize))
		}
		if err := ss.w.WriteFrameHead(lnp.TypeData, d.AppendHead(hd[:0]), int(n)); err != nil {
			return off, lnp.EndStatus{}, err
		}
		if err := ss.w.Flush(); err != nil {
			return off, lnp.EndStatus{}, err
		}
		ss.c.setWriteDeadline(time.Now().Add(timeout))
		sent, err := f.WriteRangeTo(tcp, off, n)
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
