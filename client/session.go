package client

import (
	"context"
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/xfer"
	"github.com/larderfs/larder/lnp"
)

// LNPError is a status other than OK from a server speaking LNP/1.
// Message is the server's text, with control and bidirectional characters
// replaced, as StatusError's is, so that it is safe to print on a terminal.
type LNPError struct {
	Status  lnp.Status
	Message string
	// Reason tells apart refusals of one status, from a server that
	// granted lnp.FeatureReasons; lnp.ReasonNone otherwise.
	Reason lnp.Reason
}

func (e *LNPError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("client: the server replied %v", e.Status)
	}
	return fmt.Sprintf("client: the server replied %v: %s", e.Status, e.Message)
}

// Session is a logged-in LNP/1 session: any number of requests, one at a
// time, on one connection (TLS, normally: see internal/tlsconf). It is not
// safe for concurrent use; open more sessions for parallel transfers.
type Session struct {
	conn      *deadlineConn
	raw       net.Conn
	r         *lnp.Reader
	w         *lnp.Writer
	blockSize int
	server    string
	buf       []byte
	policy    lnp.KDF // the server's argon2id policy, from a password login's VERIFIED
	features  lnp.Features
}

// SessionOptions tunes a session.
type SessionOptions struct {
	// MaxBlock is the largest block the client takes; 0 means the
	// protocol's default, 1 MiB.
	MaxBlock int
	// Idle bounds each wait for the server; 0 means one minute.
	Idle time.Duration
	// Features are the optional parts of LNP/1 to offer the server (see
	// lnp.Features); 0 offers none, and sends the HELLO of a client
	// from before features, which every server takes.
	Features lnp.Features
}

// NewSession logs in over conn, which it owns from then on, with a HELLO
// of version 1: the course signature, which the server takes only for an
// account that has no LNP/1 credential yet, and only while its window for
// signatures is open (docs/SECURITY.md). Login is the channel-bound login.
func NewSession(ctx context.Context, conn net.Conn, user string, sig larder.Signature, opts SessionOptions) (*Session, error) {
	s := newSession(ctx, conn, &opts)
	if err := s.w.Write(lnp.Hello{User: user, Signature: sig, MaxBlock: uint32(opts.MaxBlock), Features: opts.Features}); err != nil {
		conn.Close()
		return nil, s.ioError(ctx, err)
	}
	if err := s.w.Flush(); err != nil {
		conn.Close()
		return nil, s.ioError(ctx, err)
	}
	t, body, err := s.r.Next()
	if err == nil && t != lnp.TypeWelcome {
		err = &lnp.ProtocolError{Msg: "the server answered HELLO with " + t.String()}
	}
	if err != nil {
		conn.Close()
		return nil, s.ioError(ctx, err)
	}
	if err := s.welcome(body, opts); err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

// newSession returns a session over conn that has not logged in yet.
func newSession(ctx context.Context, conn net.Conn, opts *SessionOptions) *Session {
	if opts.MaxBlock == 0 {
		opts.MaxBlock = lnp.DefaultBlockSize
	}
	if opts.Idle == 0 {
		opts.Idle = time.Minute
	}
	dc := newDeadlineConn(conn, ctx, opts.Idle)
	s := &Session{conn: dc, raw: conn, r: lnp.NewReader(dc), w: lnp.NewWriter(dc, 256<<10)}
	s.r.SetBlockSize(lnp.MaxBlockSize)
	return s
}

// welcome takes the WELCOME whose body is body, and starts the session if
// it says OK.
func (s *Session) welcome(body []byte, opts SessionOptions) error {
	w, err := lnp.ParseWelcome(body)
	if err != nil {
		return err
	}
	if w.Status != lnp.StatusOK {
		return &LNPError{Status: w.Status, Message: cleanText([]byte(w.Message))}
	}
	if w.BlockSize < lnp.MinBlockSize || int(w.BlockSize) > opts.MaxBlock {
		return &lnp.ProtocolError{Msg: fmt.Sprintf("the server chose a block size of %d bytes", w.BlockSize)}
	}
	// A bit not offered is not taken, whatever the server says.
	s.blockSize, s.server, s.features = int(w.BlockSize), w.Server, w.Features&opts.Features
	s.r.SetBlockSize(s.blockSize)
	s.buf = make([]byte, s.blockSize)
	return nil
}

// BlockSize returns the session's block size.
func (s *Session) BlockSize() int { return s.blockSize }

// Features returns the features the server granted of those offered.
func (s *Session) Features() lnp.Features { return s.features }

// Server returns the name the server gave in WELCOME.
func (s *Session) Server() string { return s.server }

// Close ends the session.
func (s *Session) Close() error { return s.raw.Close() }

// ioError wraps a transport failure: the context's error if it ended.
func (s *Session) ioError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// begin applies ctx to the connection until the returned function is
// called: its deadline, and its cancellation, which breaks the session
// (a request cut in the middle leaves the protocol nowhere to resume).
func (s *Session) begin(ctx context.Context) (end func() bool) {
	s.conn.deadline, _ = ctx.Deadline()
	return context.AfterFunc(ctx, s.conn.abort)
}

// call sends m and reads the REPLY; an OK reply's body is returned.
func (s *Session) call(ctx context.Context, m lnp.Message) ([]byte, error) {
	if err := s.w.Write(m); err != nil {
		return nil, s.ioError(ctx, err)
	}
	if err := s.w.Flush(); err != nil {
		return nil, s.ioError(ctx, err)
	}
	return s.readReply(ctx)
}

func (s *Session) readReply(ctx context.Context) ([]byte, error) {
	t, body, err := s.r.Next()
	if err != nil {
		return nil, s.ioError(ctx, err)
	}
	if t != lnp.TypeReply {
		return nil, &lnp.ProtocolError{Msg: "a " + t.String() + " frame where a REPLY was due"}
	}
	r, err := lnp.ParseReply(body)
	if err != nil {
		return nil, err
	}
	if r.Status != lnp.StatusOK {
		return nil, &LNPError{Status: r.Status, Message: cleanText([]byte(r.Message)), Reason: r.Reason}
	}
	return r.Body, nil
}

// Whoami returns the account's name and usage.
func (s *Session) Whoami(ctx context.Context) (lnp.WhoamiReply, error) {
	defer s.begin(ctx)()
	body, err := s.call(ctx, lnp.Whoami{})
	if err != nil {
		return lnp.WhoamiReply{}, err
	}
	return lnp.ParseWhoamiReply(body)
}

// Stat returns the entry at path.
func (s *Session) Stat(ctx context.Context, path string) (lnp.Entry, error) {
	if err := checkPaths(path); err != nil {
		return lnp.Entry{}, err
	}
	defer s.begin(ctx)()
	body, err := s.call(ctx, lnp.Stat{Path: path})
	if err != nil {
		return lnp.Entry{}, err
	}
	return lnp.ParseEntry(body)
}

// List returns a page of the listing of the folder at path: up to limit
// entries (at most lnp.MaxListLimit; 0 means the server's default), in the
// server's order, and whether there are more. With after
// empty it starts the listing; with after the last name of the page
// before, it goes on. The server keeps one listing per session in
// progress: see docs/PROTOCOL.md.
func (s *Session) List(ctx context.Context, path, after string, limit int) ([]lnp.Entry, bool, error) {
	if err := checkPaths(path, after); err != nil {
		return nil, false, err
	}
	defer s.begin(ctx)()
	body, err := s.call(ctx, lnp.List{Path: path, After: after, Limit: uint32(limit)})
	if err != nil {
		return nil, false, err
	}
	r, err := lnp.ParseListReply(body)
	return r.Entries, r.More, err
}

// ListAll returns every entry of the folder at path, sorted by name,
// fetching it a page at a time.
func (s *Session) ListAll(ctx context.Context, path string) ([]lnp.Entry, error) {
	var all []lnp.Entry
	after := ""
	for {
		page, more, err := s.List(ctx, path, after, lnp.MaxListLimit)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if !more {
			slices.SortFunc(all, func(a, b lnp.Entry) int { return strings.Compare(a.Name, b.Name) })
			return all, nil
		}
		if len(page) == 0 {
			return nil, &lnp.ProtocolError{Msg: "an empty page of a listing that says there is more"}
		}
		after = page[len(page)-1].Name
	}
}

// Mkdir makes a folder.
func (s *Session) Mkdir(ctx context.Context, path string) error {
	if err := checkPaths(path); err != nil {
		return err
	}
	defer s.begin(ctx)()
	_, err := s.call(ctx, lnp.Mkdir{Path: path})
	return err
}

// Delete removes a file or an empty folder.
func (s *Session) Delete(ctx context.Context, path string) error {
	if err := checkPaths(path); err != nil {
		return err
	}
	defer s.begin(ctx)()
	_, err := s.call(ctx, lnp.Delete{Path: path})
	return err
}

// ErrNotGranted is DeleteTree's error on a session the server did not
// grant lnp.FeatureTreeDelete: remove the files and folders one by one.
var ErrNotGranted = errors.New("client: the server did not grant this session recursive DELETE (LNP/1 feature bit 2)")

// DeleteTree removes the folder path and everything below it (or the file
// path) with recursive DELETEs: one, or, for a tree the server removes a
// part at a time (More), one for each part. It returns what the server
// removed, also when it fails after a part. It needs a session granted
// lnp.FeatureTreeDelete (ErrNotGranted otherwise, with nothing sent).
func (s *Session) DeleteTree(ctx context.Context, path string) (lnp.DeleteReply, error) {
	var sum lnp.DeleteReply
	if err := checkPaths(path); err != nil {
		return sum, err
	}
	if s.features&lnp.FeatureTreeDelete == 0 {
		return sum, ErrNotGranted
	}
	defer s.begin(ctx)()
	for {
		body, err := s.call(ctx, lnp.Delete{Path: path, Recursive: true})
		if err != nil {
			return sum, err
		}
		r, err := lnp.ParseDeleteReply(body)
		if err != nil {
			return sum, err
		}
		sum.Add(r)
		if !r.More {
			return sum, nil
		}
	}
}

// Rename moves from to to, replacing to if overwrite.
func (s *Session) Rename(ctx context.Context, from, to string, overwrite bool) error {
	if err := checkPaths(from, to); err != nil {
		return err
	}
	defer s.begin(ctx)()
	_, err := s.call(ctx, lnp.Rename{From: from, To: to, Overwrite: overwrite})
	return err
}

// Passwd changes the account's signature from old to new. The server ends
// the user's other sessions.
func (s *Session) Passwd(ctx context.Context, old, new larder.Signature) error {
	defer s.begin(ctx)()
	_, err := s.call(ctx, lnp.Passwd{Old: old, New: new})
	return err
}

// Sums returns the SHA-256 of up to count blocks of the session's block
// size, from block first.
func (s *Session) Sums(ctx context.Context, path string, first uint64, count int) ([][32]byte, error) {
	if err := checkPaths(path); err != nil {
		return nil, err
	}
	defer s.begin(ctx)()
	body, err := s.call(ctx, lnp.Sums{Path: path, First: first, Count: uint32(count)})
	if err != nil {
		return nil, err
	}
	r, err := lnp.ParseSumsReply(body)
	return r.Sums, err
}

// Get writes the file at path, from offset, to dst, and returns what the
// server announced. It checks every block's hash, in a session that has
// them; from offset 0 it also checks the whole file's SHA-256 against the
// announced one, after the last byte is written to dst: an *IntegrityError
// then says that what was written is not the file. In a session granted
// lnp.FeatureNoBlockHashes that check is the only one, so a Get from an
// offset past 0, which only a caller with the bytes before it could
// check, is refused (Download resumes, checking the whole file).
// progress, if set, is told of each block.
func (s *Session) Get(ctx context.Context, path string, offset int64, dst io.Writer, progress func(n int)) (lnp.GetReply, error) {
	if offset != 0 && s.features&lnp.FeatureNoBlockHashes != 0 {
		return lnp.GetReply{}, fmt.Errorf("client: get from offset %d: the session's blocks carry no hashes (lnp.FeatureNoBlockHashes), so only a whole file can be checked: use Download, or a session that does not offer the feature", offset)
	}
	var whole hash.Hash
	if offset == 0 {
		whole = sha256.New()
	}
	head, err := s.get(ctx, path, offset, dst, whole, progress)
	if err == nil && whole != nil && [32]byte(whole.Sum(nil)) != head.SHA256 {
		err = &IntegrityError{Block: -1, Reason: "the whole file does not match the SHA-256 the server announced: what was written is not the file"}
	}
	return head, err
}

// get is Get, writing each block to dst (and to whole, if set) behind the
// receiving, in a pipeline, so that the blocks' hashes and the whole
// file's are computed at once. The whole file's hash is the caller's to
// check: in a session without block hashes, nothing else checks the bytes.
func (s *Session) get(ctx context.Context, path string, offset int64, dst io.Writer, whole hash.Hash, progress func(n int)) (lnp.GetReply, error) {
	if err := checkPaths(path); err != nil {
		return lnp.GetReply{}, err
	}
	defer s.begin(ctx)()
	body, err := s.call(ctx, lnp.Get{Path: path, Offset: uint64(offset)})
	if err != nil {
		return lnp.GetReply{}, err
	}
	head, err := lnp.ParseGetReply(body)
	if err != nil {
		return head, err
	}
	wr := xfer.NewWriter(dst, xfer.WriteOptions{Whole: whole, Verify: s.features&lnp.FeatureNoBlockHashes == 0})
	err = s.receive(ctx, head, uint64(offset), wr, progress)
	if werr := wr.Close(); err == nil || errors.Is(err, werr) {
		err = werr
	}
	var bad *xfer.MismatchError
	if errors.As(err, &bad) {
		err = &IntegrityError{Block: bad.Offset / int64(s.blockSize), Reason: "hash mismatch"}
	}
	return head, err
}

// receive takes a download's DATA frames and its END.
func (s *Session) receive(ctx context.Context, head lnp.GetReply, at uint64, wr *xfer.Writer, progress func(n int)) error {
	for {
		t, body, err := s.r.Next()
		if err != nil {
			return s.ioError(ctx, err)
		}
		switch t {
		case lnp.TypeData:
			d, err := lnp.ParseData(body)
			switch {
			case err != nil:
				return err
			case d.Offset != at || d.Offset+uint64(len(d.Payload)) > head.Size:
				return &IntegrityError{Block: -1, Reason: fmt.Sprintf("a block at offset %d where %d was due", d.Offset, at)}
			}
			next, err := wr.Buffer()
			if err != nil {
				return err
			}
			wr.Write(s.r.SwapBuffer(next), int64(at), d.Payload, d.SHA256)
			at += uint64(len(d.Payload))
			if progress != nil {
				progress(len(d.Payload))
			}
		case lnp.TypeEnd:
			e, err := lnp.ParseEndStatus(body)
			if err != nil {
				return err
			}
			if e.Status != lnp.StatusOK {
				return &LNPError{Status: e.Status, Message: cleanText([]byte(e.Message))}
			}
			if at != head.Size {
				return &IntegrityError{Block: -1, Reason: fmt.Sprintf("END after %d of %d bytes", at, head.Size)}
			}
			return nil
		default:
			return &lnp.ProtocolError{Msg: "a " + t.String() + " frame in a download"}
		}
	}
}

// GetFile downloads the file at path into the file at local, replacing
// it, as Download does with Overwrite set: local changes only once the
// download is complete and verified.
func (s *Session) GetFile(ctx context.Context, path, local string, progress func(n int)) (lnp.GetReply, error) {
	r, err := s.Download(ctx, path, local, DownloadOptions{Overwrite: true, Progress: progress})
	return r.GetReply, err
}

// DownloadOptions tunes Download.
type DownloadOptions struct {
	// Overwrite replaces a local file that is not an earlier, partial copy
	// of the remote one; without it such a file is a *LocalDiffersError.
	Overwrite bool
	// NoResume starts over: a part file of an earlier download is
	// discarded, and a partial local file is not drawn on.
	NoResume bool
	// Progress, if set, is told of each block received.
	Progress func(n int)
	// Resumed, if set, is told of the bytes kept from an earlier
	// download, before the rest is asked for.
	Resumed func(kept int64)
	// Root, if set, is the folder local is in (local is relative to it):
	// nothing outside it is read or written, even if one of its folders
	// is replaced by a symbolic link during the download, and a link at
	// local is refused (OpenLocalIn).
	Root *os.Root
}

// DownloadResult is what Download did.
type DownloadResult struct {
	lnp.GetReply
	// Kept is how many bytes came from an earlier download (a part file,
	// or a partial local file) rather than from the server.
	Kept int64
	// From names the file Kept bytes came from.
	From string
	// UpToDate reports that the local file was the remote one already,
	// and was left as it was.
	UpToDate bool
}

// Download downloads the file at path into the local regular file local
// (see OpenLocal for anything else). The download is written to the part
// file local+PartSuffix, and renamed over local only once it is complete
// and its SHA-256 matches the server's, so that local never holds a
// partial or corrupt file, and an interrupted or failed download leaves
// it as it was.
//
// It resumes: the part file of an earlier download, or else local itself
// (an earlier, partial copy, as older clients left them), is checked
// block by block against the server's hashes (SUMS), and its matching
// blocks are kept. A failed download keeps the part file for the next one
// to go on from.
//
// An existing local file is replaced only if it is an earlier, partial
// copy (its bytes are the first bytes of the file), or with Overwrite;
// otherwise Download returns a *LocalDiffersError, before it downloads
// anything when the blocks already tell.
func (s *Session) Download(ctx context.Context, path, local string, opts DownloadOptions) (DownloadResult, error) {
	var lf *LocalFile
	var err error
	if opts.Root != nil {
		lf, err = OpenLocalIn(opts.Root, local, true)
	} else {
		lf, err = OpenLocal(local, true)
	}
	if err != nil {
		return DownloadResult{}, err
	}
	defer lf.Abort()
	var res DownloadResult
	whole := sha256.New()
	have := int64(0)
	// The part's last bytes, short of a block: compared with the first
	// bytes downloaded before they are written over.
	var tail *tailChecker
	if opts.NoResume {
		err = lf.Part.Truncate(0)
	} else if size, serr := lf.partSize(); serr != nil {
		err = serr
	} else if size > 0 {
		bs := int64(s.blockSize)
		have, err = s.verifiedPrefix(ctx, path, lf.Part, size, whole)
		res.From = lf.Part.Name()
		switch {
		case err != nil:
		case have == size:
		case size-have < bs && !opts.Overwrite:
			tail = &tailChecker{want: make([]byte, size-have), path: lf.Part.Name(), at: have}
			if _, err = lf.Part.ReadAt(tail.want, have); err != nil {
				return res, err
			}
		case !opts.Overwrite:
			// Not larder's from this file: the user's, or the file
			// changed on the server. Left as it is.
			return res, &PartError{Path: lf.Part.Name(), Reason: fmt.Sprintf("its block %d is not the server's", have/bs)}
		default:
			// -f: the blocks that match are the server's, so they are
			// kept; the rest of the part is fetched again.
			if have == 0 {
				res.From = ""
			}
		}
	}
	if err != nil {
		return res, err
	}
	// What local holds: whole blocks that match are known to be a copy.
	var verified int64
	if lf.Existing != nil && lf.Existing.Size() > 0 {
		f, err := lf.Open()
		if err != nil {
			return res, err
		}
		lh := sha256.New()
		verified, err = s.verifiedPrefix(ctx, path, f, lf.Existing.Size(), lh)
		if err == nil && !opts.NoResume && verified == lf.Existing.Size()/int64(s.blockSize)*int64(s.blockSize) {
			var same bool
			same, res.GetReply, err = s.sameFile(ctx, path, f, verified, lf.Existing.Size(), lh)
			if err == nil && same {
				f.Close()
				res.Kept, res.From, res.UpToDate = int64(res.Size), lf.Shown(), true
				return res, nil
			}
		}
		f.Close()
		if err != nil {
			return res, err
		}
		if blocks := lf.Existing.Size() / int64(s.blockSize) * int64(s.blockSize); verified < blocks && !opts.Overwrite {
			return res, &LocalDiffersError{Path: lf.Shown(), Reason: fmt.Sprintf("its block %d is not the server's", verified/int64(s.blockSize))}
		}
		if !opts.NoResume && verified > have && tail == nil {
			if err := lf.copyPrefix(verified); err != nil {
				return res, err
			}
			have, whole, res.From = verified, lh, lf.Shown()
		}
	}
	if tail == nil {
		if err := lf.Part.Truncate(have); err != nil {
			return res, err
		}
	}
	if _, err := lf.Part.Seek(have, io.SeekStart); err != nil {
		return res, err
	}
	res.Kept = have
	if have > 0 && opts.Resumed != nil {
		opts.Resumed(have)
	}
	var dst io.Writer = xfer.NewFile(lf.Part, have)
	if tail != nil {
		tail.w = dst
		dst = tail
	}
	if !opts.Overwrite {
		// Stop at once if local turns out not to be a copy.
		var release func()
		if dst, release, err = lf.checkedWriter(dst, have); err != nil {
			return res, err
		}
		defer release()
	}
	res.GetReply, err = s.get(ctx, path, have, dst, whole, opts.Progress)
	if err != nil {
		return res, err
	}
	if tail != nil && len(tail.want) > 0 {
		// The server's file ended before the part did.
		return res, &PartError{Path: lf.Part.Name(), Reason: "it is longer than the server's file"}
	}
	if [32]byte(whole.Sum(nil)) != res.SHA256 {
		// The part is wrong somewhere: the next download starts over.
		lf.Part.Truncate(0)
		return res, &IntegrityError{Block: -1, Reason: "the whole file does not match the SHA-256 the server announced"}
	}
	if err := ctx.Err(); err != nil {
		// Interrupted after the last byte came: the part is kept to resume
		// from, and the target stays as it was.
		return res, err
	}
	return res, lf.Commit(opts.Overwrite, verified)
}

// sameFile reports whether f, whose first verified bytes match the
// server's blocks of path and are hashed in h, is the whole file: its size
// is the server's, and with the rest of its bytes its SHA-256 too. It
// asks for the file from f's end, which sends no block if the sizes are
// the same; h is left as it was.
func (s *Session) sameFile(ctx context.Context, path string, f io.ReaderAt, verified, size int64, h hash.Hash) (bool, lnp.GetReply, error) {
	st, err := s.Stat(ctx, path)
	if err != nil || st.Dir || st.Size != uint64(size) {
		return false, lnp.GetReply{}, err
	}
	c, ok := h.(encoding.BinaryMarshaler)
	if !ok {
		return false, lnp.GetReply{}, nil
	}
	state, err := c.MarshalBinary()
	if err != nil {
		return false, lnp.GetReply{}, nil
	}
	whole := sha256.New()
	whole.(encoding.BinaryUnmarshaler).UnmarshalBinary(state)
	if _, err := io.Copy(whole, io.NewSectionReader(f, verified, size-verified)); err != nil {
		return false, lnp.GetReply{}, err
	}
	head, err := s.get(ctx, path, size, io.Discard, nil, nil)
	if err != nil {
		return false, head, err
	}
	return head.Size == uint64(size) && [32]byte(whole.Sum(nil)) == head.SHA256, head, nil
}

// verifiedPrefix returns how many leading bytes of f, which has size
// bytes, match the server's blocks of path: whole blocks only. Those bytes
// are written to whole.
func (s *Session) verifiedPrefix(ctx context.Context, path string, f io.ReaderAt, size int64, whole hash.Hash) (int64, error) {
	bs := int64(s.blockSize)
	blocks := size / bs
	var good int64
	for first := int64(0); first < blocks; first += lnp.MaxSumsCount {
		n := min(blocks-first, lnp.MaxSumsCount)
		sums, err := s.Sums(ctx, path, uint64(first), int(n))
		if err != nil {
			return 0, err
		}
		for i, want := range sums {
			off := (first + int64(i)) * bs
			if _, err := f.ReadAt(s.buf[:bs], off); err != nil {
				return good, nil
			}
			if sha256.Sum256(s.buf[:bs]) != want {
				return good, nil
			}
			whole.Write(s.buf[:bs])
			good = off + bs
		}
		if int64(len(sums)) < n {
			return good, nil
		}
	}
	return good, nil
}

// PutOptions tunes an upload.
type PutOptions struct {
	Overwrite bool
	Resume    bool      // continue an interrupted upload of the same path and size
	Progress  func(int) // told of each block sent (and of the bytes skipped by a resume)
	// Modified is the file's modification time, for the server to keep;
	// sent only if the session was granted lnp.FeaturePutTime (else the
	// file takes the time of its commit, which the entry returned says).
	Modified time.Time
	// Resumed, if set, is told of the bytes the server has already, from
	// an interrupted upload, before any block is sent.
	Resumed func(offset int64)
}

// Put uploads size bytes of src to path. The server verifies every block
// (in a session that has block hashes: see lnp.FeatureNoBlockHashes) and
// the whole file, and the file appears atomically once it matches.
func (s *Session) Put(ctx context.Context, path string, src io.ReaderAt, size int64, opts PutOptions) (lnp.Entry, error) {
	if err := checkPaths(path); err != nil {
		return lnp.Entry{}, err
	}
	defer s.begin(ctx)()
	put := lnp.Put{Path: path, Size: uint64(size), Overwrite: opts.Overwrite, Resume: opts.Resume}
	if s.features&lnp.FeaturePutTime != 0 {
		put.Modified = opts.Modified
	}
	body, err := s.call(ctx, put)
	if err != nil {
		return lnp.Entry{}, err
	}
	r, err := lnp.ParsePutReply(body)
	if err != nil {
		return lnp.Entry{}, err
	}
	if r.Offset > uint64(size) {
		return lnp.Entry{}, &lnp.ProtocolError{Msg: fmt.Sprintf("the server resumes at %d of %d bytes", r.Offset, size)}
	}
	h := sha256.New()
	// The bytes the server already has count in the whole file's hash.
	if _, err := io.Copy(h, io.NewSectionReader(src, 0, int64(r.Offset))); err != nil {
		return lnp.Entry{}, err
	}
	if opts.Resumed != nil && r.Offset > 0 {
		opts.Resumed(int64(r.Offset))
	}
	if opts.Progress != nil && r.Offset > 0 {
		opts.Progress(int(r.Offset))
	}
	// The server's REPLY is read while the blocks are sent: it comes
	// after END, or earlier to end the upload (a bad block, the server's
	// disk full), and then the sending stops at once, and the server's
	// reason is what Put returns.
	reply := make(chan error, 1)
	var replyBody []byte
	go func() {
		body, err := s.readReply(ctx)
		replyBody = body
		reply <- err
	}()
	if err := s.send(ctx, src, size, int64(r.Offset), h, opts.Progress, reply); err != nil {
		// The session is in the middle of a transfer it cannot finish:
		// closing it also ends the reading of the REPLY.
		s.raw.Close()
		return lnp.Entry{}, err
	}
	if err := <-reply; err != nil {
		return lnp.Entry{}, err
	}
	return lnp.ParseEntry(replyBody)
}

// send sends a PUT's DATA frames from offset and its END. A REPLY that
// arrives before the END is done (reply yields its error) ends the
// sending with the server's reason; so does one that comes just after a
// write fails, since a server that ends an upload closes the connection.
func (s *Session) send(ctx context.Context, src io.ReaderAt, size, offset int64, h hash.Hash, progress func(int), reply chan error) error {
	early := func(werr error) error {
		if werr != nil {
			// The REPLY may be on its way: wait for it a little.
			select {
			case err := <-reply:
				return earlyReply(err)
			case <-time.After(2 * time.Second):
				return s.ioError(ctx, werr)
			}
		}
		select {
		case err := <-reply:
			return earlyReply(err)
		default:
			return nil
		}
	}
	// The source is read, and hashed whole and by block (unless the
	// session's blocks carry no hashes), ahead of the sending by a
	// pipeline.
	rd := xfer.NewReader(src, offset, size, xfer.ReadOptions{BlockSize: s.blockSize, Whole: h, Unhashed: s.features&lnp.FeatureNoBlockHashes != 0})
	defer rd.Close()
	var hd [lnp.DataOverhead]byte
	for {
		b, err := rd.Next()
		if err == io.EOF {
			break
		}
		var short *xfer.ShortError
		if errors.As(err, &short) {
			return fmt.Errorf("client: put: the source ended at %d of the %d bytes announced", short.At, size)
		}
		if err != nil {
			return err
		}
		d := lnp.Data{Offset: uint64(b.Offset), SHA256: b.SHA256}
		n := len(b.Data)
		err = s.w.WriteFrameParts(lnp.TypeData, d.AppendHead(hd[:0]), b.Data)
		rd.Release(b)
		if err := early(err); err != nil {
			return err
		}
		if progress != nil {
			progress(n)
		}
	}
	err := s.w.Write(lnp.EndHash{SHA256: [32]byte(h.Sum(nil))})
	if err == nil {
		err = s.w.Flush()
	}
	if err != nil {
		return early(err)
	}
	return nil
}

// earlyReply is the error of a REPLY that came before the upload's END:
// the server's reason for ending it, or, for an OK one, a protocol error.
func earlyReply(err error) error {
	if err == nil {
		return &lnp.ProtocolError{Msg: "the server answered an upload before its END"}
	}
	return err
}
