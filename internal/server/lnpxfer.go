package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/disk"
	"github.com/larderfs/larder/internal/xfer"
	"github.com/larderfs/larder/lnp"
)

var errBusyTransfers = &larder.Error{Code: larder.EUNAVAILABLE, Message: "too many transfers at once for this account: retry when one ends"}

// get sends a file from an offset: REPLY with its size, time and hash,
// DATA frames, END.
func (ss *session) get(ctx context.Context, m lnp.Get) bool {
	start := time.Now()
	ev := larder.Event{Kind: larder.EventDownload, Path: lnpPath(m.Path)}
	if !ss.s.startTransfer(ss.user.Name) {
		return ss.done(ctx, ev, errBusyTransfers, nil)
	}
	defer ss.s.endTransfer(ss.user.Name)
	w, f, err := ss.open(m.Path)
	if err != nil {
		return ss.done(ctx, ev, err, nil)
	}
	defer f.Close()
	if m.Offset > uint64(f.Size) {
		return ss.done(ctx, ev, larder.Errorf(larder.EINVALID, "offset %d is past the end of the file (%d bytes)", m.Offset, f.Size), nil)
	}
	sum, err := ss.sum(ctx, w, f)
	if err != nil {
		return ss.done(ctx, ev, err, nil)
	}
	head := lnp.GetReply{Size: uint64(f.Size), Modified: f.ModTime, SHA256: sum}
	if err := ss.w.Write(lnp.Reply{Status: lnp.StatusOK, Body: head.AppendBody(nil)}); err != nil {
		return false
	}

	off, end, err := ss.send(ctx, f, int64(m.Offset), sum)
	if err == nil {
		// The blocks still buffered must reach the network before the
		// download is recorded as sent (and, for a sync kind, recorded
		// durably before the END completes the reply).
		err = ss.w.Flush()
	}
	ev.Bytes, ev.SHA256, ev.Duration = off-int64(m.Offset), sum, time.Since(start)
	ss.s.counters.lnpSent.Add(ev.Bytes)
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
	if ss.w.Write(end) != nil || ss.w.Flush() != nil {
		return false
	}
	return end.Status == lnp.StatusOK
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
	var replaced int64
	if err == nil {
		replaced, err = ss.checkTarget(w, m.Overwrite)
	}
	if err != nil {
		return ss.done(ctx, ev, err, nil)
	}
	if !ss.s.startTransfer(ss.user.Name) {
		return ss.done(ctx, ev, errBusyTransfers, nil)
	}
	defer ss.s.endTransfer(ss.user.Name)
	up, err := ss.space.StartUpload(w.path, int64(m.Size), m.Resume)
	if err != nil {
		return ss.done(ctx, ev, err, nil)
	}
	defer up.Close()
	// The path's unfinished uploads of other sizes, which this one could
	// never resume, are superseded: their space is this one's.
	ss.space.CancelUploads(w.path)
	hold, err := ss.admit(ctx, up, replaced)
	if err != nil {
		if up.Offset == 0 {
			up.Discard() // nothing in it
		}
		return ss.done(ctx, ev, err, nil)
	}
	defer hold.Release()
	h := sha256.New()
	if up.Offset > 0 {
		if err := up.HashPrefix(h, up.Offset); err != nil {
			return ss.done(ctx, ev, err, nil)
		}
	}
	resumedAt := up.Offset
	r := lnp.PutReply{Offset: uint64(up.Offset)}
	if !ss.reply(lnp.StatusOK, "", r.AppendBody(nil)) {
		return false
	}

	total, sums, err := ss.receive(up, h, hold)
	ev.Duration = time.Since(start)
	if err != nil {
		if errors.Is(err, errClientGone) {
			ev.User, ev.Remote, ev.Status, ev.Reason = ss.user.Name, ss.c.remote, int(lnp.StatusOther), fmt.Sprintf("interrupted at %d bytes: %v", up.Offset, err)
			ss.record(ctx, ev)
			return false
		}
		if larder.ErrorCode(err) == larder.ENOSPACE {
			// Its space goes back at once to the server's other writers.
			up.Discard()
		}
		if ss.done(ctx, ev, err, nil) {
			ss.drain()
		}
		return false
	}
	if got := [32]byte(h.Sum(nil)); got != total {
		up.Discard() // what was received is not that file: nothing to resume
		return ss.done(ctx, ev, larder.Errorf(larder.EINTEGRITY,
			"the file's SHA-256 does not match: %d bytes received (%d before this session), nothing kept", m.Size, resumedAt), nil)
	}
	fi, err := up.Sync()
	if err == nil {
		// Checked again at the last moment: an account disabled or
		// deleted during the upload commits nothing.
		err = ss.checkAccount(ctx)
	}
	if err != nil {
		return ss.done(ctx, ev, err, nil)
	}
	place := func() error { return up.Place(m.Overwrite) }
	if fs := ss.s.FileStore; fs != nil {
		rec := &larder.File{Space: ss.key(), Path: w.path, Size: int64(m.Size), Modified: fi.ModTime(), SHA256: total}
		err = fs.CommitFile(ctx, rec, ss.s.Quota, place)
	} else {
		err = place()
	}
	if larder.ErrorCode(err) == larder.EQUOTA {
		up.Discard() // it can never commit
	}
	if err != nil {
		return ss.done(ctx, ev, err, nil)
	}
	if sums != nil && ss.s.FileStore != nil {
		// Best effort: sums not recorded are computed at the first download.
		b := &larder.BlockSums{SHA256: total, Size: int64(m.Size), BlockSize: ss.blockSize, Sums: sums}
		if err := ss.s.FileStore.PutBlockSums(ctx, b); err != nil {
			ss.s.logger().Warn("cannot record block sums", "path", w.path, "err", err)
		}
	}
	ev.SHA256 = total
	e := lnp.Entry{Name: path.Base(w.path), Size: m.Size, Modified: fi.ModTime(), SHA256: total}
	return ss.done(ctx, ev, nil, lnp.AppendEntry(nil, &e))
}

// checkTarget refuses, before any byte is sent, an upload that cannot
// commit: a target that is a folder, or exists without overwrite; a
// missing parent folder. It returns the size of the file the upload
// replaces, or -1.
func (ss *session) checkTarget(w where, overwrite bool) (int64, error) {
	var replaced int64 = -1
	if fi, err := ss.space.Stat(w.path); err == nil {
		switch {
		case fi.IsDir():
			return 0, larder.Errorf(larder.ECONFLICT, "%q is a folder", w.path)
		case !overwrite:
			return 0, larder.Errorf(larder.ECONFLICT, "%q exists; overwrite it to replace it", w.path)
		}
		replaced = fi.Size()
	}
	if parent := path.Dir(w.path); parent != "." {
		if fi, err := ss.space.Stat(parent); err != nil || !fi.IsDir() {
			return 0, larder.Errorf(larder.ENOTFOUND, "the folder %q does not exist", parent)
		}
	}
	return replaced, nil
}

// admit refuses, before any byte is sent, an upload whose file would take
// the space beyond its quota, counting every unfinished upload of the
// space at its file's size (so two uploads started together see each
// other; the quota is checked again, exactly, at commit), or the server's
// disk below its reserve, counting what other uploads are still to write.
// replaced is the size of the file it replaces, or -1. It returns the
// upload's hold on the disk's space.
func (ss *session) admit(ctx context.Context, up *disk.Upload, replaced int64) (*disk.Hold, error) {
	if err := ss.checkQuota(ctx, up, replaced); err != nil {
		return nil, err
	}
	return ss.s.Reserve.Hold(up.Size - up.Offset)
}

// checkQuota is admit's check of the quota.
func (ss *session) checkQuota(ctx context.Context, up *disk.Upload, replaced int64) error {
	q := ss.s.Quota
	if ss.s.FileStore == nil || q == (larder.Quota{}) {
		return nil
	}
	u, parts, err := ss.usage(ctx, up.ID)
	if err != nil {
		return err
	}
	u.Bytes += up.Size
	u.Files++
	if replaced >= 0 {
		u.Bytes -= replaced
		u.Files--
	}
	if !q.Exceeds(u) {
		return nil
	}
	err = larder.QuotaExceeded(q, u)
	if parts.Files > 0 {
		e := err.(*larder.Error)
		e.Message += fmt.Sprintf(" (unfinished uploads, %d, hold %d bytes of it until they complete or are cancelled)", parts.Files, parts.Bytes)
	}
	return err
}

// usage returns the space's usage, its unfinished uploads but the one
// whose ID is except included, and the part of it they hold.
func (ss *session) usage(ctx context.Context, except string) (u, parts larder.Usage, err error) {
	if ss.s.FileStore != nil {
		if u, err = ss.s.FileStore.SpaceUsage(ctx, ss.key()); err != nil {
			return u, parts, err
		}
	}
	if parts, err = ss.space.PartUsage(except); err != nil {
		return u, parts, err
	}
	u.Bytes += parts.Bytes
	u.Files += parts.Files
	return u, parts, nil
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
// has, and whole holds the hash of what was received. Verified blocks are
// written, and hashed into whole, behind the receiving by a pipeline. A
// bad block keeps the verified bytes before it for a resume.
//
// It also returns the blocks' sums, to be recorded with the file, if the
// whole file came in this session in blocks of the session's size.
func (ss *session) receive(up *disk.Upload, whole hash.Hash, hold *disk.Hold) ([32]byte, []byte, error) {
	wr := xfer.NewWriter(up, xfer.WriteOptions{Whole: whole, Verify: true})
	var sums []byte
	keep := &sums
	if up.Offset > 0 || !ss.keepsSums(up.Size) {
		keep = nil
	}
	from := up.Offset
	sum, err := ss.receiveBlocks(up, wr, keep, hold)
	werr := wr.Close()
	ss.s.counters.lnpReceived.Add(up.Offset - from)
	if werr != nil && (err == nil || errors.Is(err, errClientGone)) {
		err = werr
	}
	var bad *xfer.MismatchError
	if errors.As(err, &bad) {
		err = larder.Errorf(larder.EINTEGRITY, "the block at offset %d does not match its SHA-256; the %d bytes before it are kept for a resume", bad.Offset, up.Offset)
	}
	return sum, sums, err
}

// receiveBlocks is receive's loop. It appends each block's sum to *sums
// while the blocks have the session's size, and sets it to nil if one
// does not (the last may be shorter).
func (ss *session) receiveBlocks(up *disk.Upload, wr *xfer.Writer, sums *[]byte, hold *disk.Hold) ([32]byte, error) {
	timeout := cmp(ss.s.RequestTimeout, DefaultRequestTimeout)
	at := up.Offset // the writer moves up.Offset behind us
	checked := at
	watch := ss.watchAccount()
	for {
		if err := watch.check(ss.s.ctx); err != nil {
			return [32]byte{}, err
		}
		if at-checked >= reserveEvery {
			// What was received is written or on its way; the rest is
			// held. Another writer may have taken the space meanwhile.
			if err := hold.Wrote(at - checked); err != nil {
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
