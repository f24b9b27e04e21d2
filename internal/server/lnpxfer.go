package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sync"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/files"
	"github.com/larderfs/larder/internal/xfer"
	"github.com/larderfs/larder/lnp"
)

var errBusyTransfers = &larder.Error{Code: larder.EUNAVAILABLE, Message: "too many transfers at once for this account: retry when one ends"}

// get sends a file from an offset: REPLY with its size, time and hash,
// DATA frames, END.
func (ss *session) get(ctx context.Context, m lnp.Get) bool {
	start := time.Now()
	ev := larder.Event{Kind: larder.EventDownload, Path: lnpPath(m.Path)}
	if !ss.s.lnp.startTransfer(ss.user.Name) {
		return ss.done(ctx, ev, errBusyTransfers, nil)
	}
	release := ss.transferSlot()
	defer release()
	_, f, err := ss.open(ctx, m.Path)
	if err != nil {
		release()
		return ss.done(ctx, ev, err, nil)
	}
	defer f.Close()
	if m.Offset > uint64(f.Size) {
		release()
		return ss.done(ctx, ev, larder.Errorf(larder.EINVALID, "offset %d is past the end of the file (%d bytes)", m.Offset, f.Size), nil)
	}
	sum := f.SHA256
	head := lnp.GetReply{Size: uint64(f.Size), Modified: f.ModTime, SHA256: sum}
	if err := ss.w.Write(lnp.Reply{Status: lnp.StatusOK, Body: head.AppendBody(nil)}); err != nil {
		return false
	}

	off, end, err := ss.send(ctx, f, int64(m.Offset))
	if err == nil {
		// The blocks still buffered must reach the network before the
		// download is recorded as sent (and, for a sync kind, recorded
		// durably before the END completes the reply).
		err = ss.w.Flush()
	}
	ev.Bytes, ev.SHA256, ev.Duration = off-int64(m.Offset), sum, time.Since(start)
	ss.s.lnp.counters.sent.Add(ev.Bytes)
	ev.User, ev.Remote = ss.user.Name, ss.c.remote
	if err != nil {
		// The client is gone or stopped reading: no END can reach it.
		ev.Status, ev.Reason = int(lnp.StatusOther), "interrupted: "+err.Error()
		if cerr := ss.c.cutError(); cerr != nil {
			// Cut mid-frame: the account ended while the client
			// did not read.
			ev.Status, ev.Reason = int(statusOf(cerr)), "interrupted: "+larder.ErrorMessage(cerr)
		}
		ss.record(ctx, ev)
		return false
	}
	ev.Status, ev.Reason = int(end.Status), end.Message
	if err := ss.record(ctx, ev); err != nil && end.Status == lnp.StatusOK {
		// A sync event not made durable: the END that completes the
		// download is withheld, so that no client has a complete
		// download the trail does not hold.
		end = lnp.EndStatus{Status: lnp.StatusOther, Message: "the audit trail could not record the download: retry later"}
		ss.status, ss.last.Status, ss.last.Reason = end.Status, int(end.Status), end.Message
	}
	release()
	if ss.w.Write(end) != nil || ss.w.Flush() != nil {
		return false
	}
	return end.Status == lnp.StatusOK
}

// transferSlot returns the function that frees the account's transfer
// slot this session took, once. A transfer frees it before its last
// answer, a refusal included: a client that starts its next transfer on
// another session as soon as it has that answer must find the slot
// free, not be told BUSY by a transfer that has ended.
func (ss *session) transferSlot() func() {
	user := ss.user.Name
	return sync.OnceFunc(func() { ss.s.lnp.endTransfer(user) })
}

// put receives an upload: REPLY with the offset to start from, then the
// client's DATA frames and END, then REPLY with the new entry. An error in
// the middle of the DATA frames ends the session after its REPLY, since
// the client's frames still in flight cannot be told from requests.
func (ss *session) put(ctx context.Context, m lnp.Put) bool {
	start := time.Now()
	ev := larder.Event{Kind: larder.EventUpload, Path: lnpPath(m.Path), Bytes: int64(m.Size)}
	w, err := writable(m.Path)
	if err == nil && m.Size > 1<<62 {
		err = larder.Errorf(larder.EINVALID, "a size of %d bytes is too large", m.Size)
	}
	if err == nil && !m.Modified.IsZero() {
		if ss.features&lnp.FeaturePutTime == 0 {
			err = larder.Errorf(larder.EINVALID, "this PUT carries a modification time, which the session's HELLO did not offer to send (feature bit 0)")
		} else {
			err = files.CheckModTime(m.Modified)
		}
	}
	if err != nil {
		return ss.done(ctx, ev, err, nil)
	}
	if !ss.s.lnp.startTransfer(ss.user.Name) {
		return ss.done(ctx, ev, errBusyTransfers, nil)
	}
	release := ss.transferSlot()
	defer release()
	up, err := ss.space.StartUpload(ctx, w.Path, int64(m.Size), m.Resume, m.Overwrite)
	if err != nil {
		release()
		return ss.done(ctx, ev, err, nil)
	}
	defer up.Close()
	up.Modified = m.Modified
	r := lnp.PutReply{Offset: uint64(up.Start)}
	if !ss.reply(lnp.StatusOK, "", r.AppendBody(nil)) {
		return false
	}

	total, sums, err := ss.receive(up)
	ev.Duration = time.Since(start)
	if err != nil {
		if errors.Is(err, errClientGone) {
			ev.User, ev.Remote, ev.Status, ev.Reason = ss.user.Name, ss.c.remote, int(lnp.StatusOther), fmt.Sprintf("interrupted at %d bytes: %v", up.Offset(), err)
			ss.record(ctx, ev)
			return false
		}
		if larder.ErrorCode(err) == larder.ENOSPACE {
			// Its space goes back at once to the server's other writers.
			up.Discard()
		}
		release()
		if ss.done(ctx, ev, err, nil) {
			ss.drain()
		}
		return false
	}
	// The account is checked again at the last moment: one disabled or
	// deleted during the upload commits nothing.
	in, err := up.Commit(ctx, total, sums, ss.blockSize, ss.checkAccount)
	release()
	if err != nil {
		return ss.done(ctx, ev, err, nil)
	}
	ev.SHA256 = total
	e := lnp.Entry{Name: path.Base(w.Path), Size: m.Size, Modified: in.ModTime, SHA256: total}
	return ss.done(ctx, ev, nil, lnp.AppendEntry(nil, &e))
}

// Upload draining: after a REPLY that ends an upload in the middle, how
// long and how much of the client's frames still in flight the server
// takes before it closes.
const (
	drainTimeout = 2 * time.Second
	drainMax     = 64 << 20
)

// drain lets the client read the REPLY that ended its upload in the
// middle: closing with its frames unread would reset the connection,
// which can destroy the REPLY before the client reads it, and make its
// writes fail with "connection reset" instead of the server's reason. It
// ends the sending side, then takes what the client still sends, bounded
// in time and bytes; the session closes after.
func (ss *session) drain() {
	rwc := ss.c.rwc
	if cw, ok := rwc.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		rwc.SetReadDeadline(time.Now().Add(drainTimeout))
		io.CopyN(io.Discard, rwc, drainMax)
	}
}

// reserveEvery is how many bytes an upload receives between two checks of
// the server's free disk space.
const reserveEvery = 4 << 20

// errClientGone is a transfer cut by the client or the network.
var errClientGone = errors.New("the client went away")

// receive takes DATA frames up to the upload's size, verifying each, and
// the END that follows; it returns the SHA-256 the client says the file
// has. Verified blocks are written, and hashed into up.Hash, behind the
// receiving by a pipeline (up.Hash is nil where the storage's part
// hashes what it is given itself: Commit asks the part). A bad block
// keeps the verified bytes before it for a resume.
//
// It also returns the blocks' sums, to be recorded with the file, if the
// whole file came in this session in blocks of the session's size.
//
// A session granted FeatureNoBlockHashes has blocks without hashes: they
// are written unchecked, and Commit's check of the whole file's SHA-256
// is the only one; there are no sums to record.
func (ss *session) receive(up *files.Upload) ([32]byte, []byte, error) {
	blockHashes := ss.features&lnp.FeatureNoBlockHashes == 0
	wr := xfer.NewWriter(up, xfer.WriteOptions{Whole: up.Hash, Verify: blockHashes})
	var sums []byte
	keep := &sums
	if up.Start > 0 || !ss.keepsSums(up.Size) || !blockHashes {
		keep = nil
	}
	sum, err := ss.receiveBlocks(up, wr, keep)
	werr := wr.Close()
	ss.s.lnp.counters.received.Add(up.Offset() - up.Start)
	if werr != nil && (err == nil || errors.Is(err, errClientGone)) {
		err = werr
	}
	var bad *xfer.MismatchError
	if errors.As(err, &bad) {
		err = larder.Errorf(larder.EINTEGRITY, "the block at offset %d does not match its SHA-256; the %d bytes before it are kept for a resume", bad.Offset, up.Offset())
	}
	return sum, sums, err
}

// receiveBlocks is receive's loop. It appends each block's sum to *sums
// while the blocks have the session's size, and sets it to nil if one
// does not (the last may be shorter).
func (ss *session) receiveBlocks(up *files.Upload, wr *xfer.Writer, sums *[]byte) ([32]byte, error) {
	timeout := ss.c.lim.requestTimeout
	at := up.Start // the writer moves up.Offset behind us
	checked := at
	watch := ss.watchAccount()
	for {
		if err := watch.check(ss.s.ctx); err != nil {
			return [32]byte{}, err
		}
		if at-checked >= reserveEvery {
			// What was received is written or on its way; the rest is
			// held. Another writer may have taken the space meanwhile.
			if err := up.Wrote(at - checked); err != nil {
				return [32]byte{}, err
			}
			checked = at
		}
		ss.c.rwc.SetReadDeadline(time.Now().Add(timeout))
		t, body, err := ss.r.Next()
		if err != nil {
			var pe *lnp.ProtocolError
			if errors.As(err, &pe) && pe.Err == nil {
				return [32]byte{}, larder.Errorf(larder.EINVALID, "malformed frame in the upload: %v", err)
			}
			return [32]byte{}, fmt.Errorf("%w: %v", errClientGone, err)
		}
		switch t {
		case lnp.TypeData:
			d, err := lnp.ParseData(body)
			switch {
			case err != nil:
				return [32]byte{}, larder.Errorf(larder.EINVALID, "malformed DATA frame: %v", err)
			case d.Offset != uint64(at):
				return [32]byte{}, larder.Errorf(larder.EINVALID, "a block at offset %d, where %d was due", d.Offset, at)
			case uint64(len(d.Payload)) > uint64(up.Size-at):
				return [32]byte{}, larder.Errorf(larder.EINVALID, "a block at offset %d runs past the announced size of %d bytes", d.Offset, up.Size)
			}
			if sums != nil {
				if len(d.Payload) == ss.blockSize || at+int64(len(d.Payload)) == up.Size {
					*sums = append(*sums, d.SHA256[:]...)
				} else {
					*sums, sums = nil, nil
				}
			}
			next, err := wr.Buffer()
			if err != nil {
				return [32]byte{}, err
			}
			wr.Write(ss.r.SwapBuffer(next), at, d.Payload, d.SHA256)
			at += int64(len(d.Payload))
		case lnp.TypeEnd:
			if at != up.Size {
				return [32]byte{}, larder.Errorf(larder.EINVALID, "END after %d of %d bytes", at, up.Size)
			}
			e, err := lnp.ParseEndHash(body)
			if err != nil {
				return [32]byte{}, larder.Errorf(larder.EINVALID, "malformed END: %v", err)
			}
			return e.SHA256, nil
		default:
			return [32]byte{}, larder.Errorf(larder.EINVALID, "a %v frame in the middle of an upload", t)
		}
	}
}
