package server

import (
	"context"
	"crypto/sha256"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/disk"
	"github.com/larderfs/larder/lnp"
)

// sharedName is the folder under which every user sees the shared area.
const sharedName = "shared"

// where is a resolved path: in the user's space, or in the shared area.
type where struct {
	shared bool
	path   string // cleaned, relative to its area; "" for its top
}

// space is the FileStore space of w, for a session whose own space is
// key.
func (w where) space(key string) string {
	if w.shared {
		return ""
	}
	return key
}

func resolve(p string) (where, error) {
	clean, err := disk.CleanPath(p)
	if err != nil {
		return where{}, err
	}
	if clean == sharedName {
		return where{shared: true}, nil
	}
	if rest, ok := strings.CutPrefix(clean, sharedName+"/"); ok {
		return where{shared: true, path: rest}, nil
	}
	return where{path: clean}, nil
}

// writable refuses a change to the shared area or to the top of the space.
func writable(p string) (where, error) {
	w, err := resolve(p)
	switch {
	case err != nil:
		return w, err
	case w.shared:
		return w, larder.Errorf(larder.EFORBIDDEN, "the shared area is read-only")
	case w.path == "":
		return w, larder.Errorf(larder.EINVALID, "the top of your space cannot be changed")
	}
	return w, nil
}

// handle serves one request. It reports whether the session goes on.
func (ss *session) handle(ctx context.Context, m lnp.Message) bool {
	switch m := m.(type) {
	case lnp.Whoami:
		return ss.whoami(ctx)
	case lnp.Stat:
		return ss.stat(ctx, m)
	case lnp.List:
		return ss.list(ctx, m)
	case lnp.Mkdir:
		ev := larder.Event{Kind: larder.EventMkdir, Path: lnpPath(m.Path)}
		w, err := writable(m.Path)
		if err == nil {
			err = ss.space.Mkdir(w.path)
		}
		return ss.done(ctx, ev, err, nil)
	case lnp.Delete:
		return ss.delete(ctx, m)
	case lnp.Rename:
		return ss.rename(ctx, m)
	case lnp.Passwd:
		return ss.passwd(ctx, m)
	case lnp.Sums:
		return ss.sums(ctx, m)
	case lnp.Get:
		return ss.get(ctx, m)
	case lnp.Put:
		return ss.put(ctx, m)
	case lnp.Parts:
		return ss.parts(ctx, m)
	case lnp.Cancel:
		return ss.cancel(ctx, m)
	}
	return ss.done(ctx, larder.Event{Kind: larder.EventRefused}, larder.Errorf(larder.EINVALID, "%v is not served", m.Type()), nil)
}

// record records ev, the outcome of the request being served.
// It returns Server.record's error: a sync event not made durable.
func (ss *session) record(ctx context.Context, ev larder.Event) error {
	if ev.Path != "" {
		ev.Path = lnpPath(ev.Path) // in case a handler did not
	}
	ss.status = lnp.Status(ev.Status)
	ss.last = ev
	return ss.s.record(ctx, ev)
}

// done answers a request with err's status and message (OK and body if
// err is nil), and records ev with them.
func (ss *session) done(ctx context.Context, ev larder.Event, err error, body []byte) bool {
	status, msg := statusOf(err), ""
	if err != nil {
		msg, body = larder.ErrorMessage(err), nil
		if ev.Reason == "" {
			ev.Reason = msg
		}
		if larder.ErrorCode(err) == larder.EINTERNAL {
			ss.s.logger().Warn("native request failed", "remote", ss.c.remote, "user", ss.user.Name,
				"op", ev.Kind, "path", ev.Path, "error", err)
		}
	}
	ev.User, ev.Remote, ev.Status = ss.user.Name, ss.c.remote, int(status)
	ss.record(ctx, ev)
	return ss.reply(status, msg, body)
}

func (ss *session) whoami(ctx context.Context) bool {
	r := lnp.WhoamiReply{User: ss.user.Name, BytesQuota: uint64(ss.s.Quota.Bytes), FilesQuota: uint64(ss.s.Quota.Files)}
	u, _, err := ss.usage(ctx, "")
	r.BytesUsed, r.FilesUsed = uint64(u.Bytes), uint64(u.Files)
	return ss.done(ctx, larder.Event{Kind: larder.EventStat, Reason: "whoami"}, err, r.AppendBody(nil))
}

// statOf returns what is at w.
func (ss *session) statOf(w where) (fs.FileInfo, error) {
	if w.shared {
		return ss.s.Files.Stat(w.path)
	}
	return ss.space.Stat(w.path)
}

// entry describes fi, found at w, with its hash if it is known without
// reading the file.
func (ss *session) entry(ctx context.Context, w where, fi fs.FileInfo) lnp.Entry {
	e := lnp.Entry{Name: path.Base("/" + w.path), Dir: fi.IsDir(), Modified: fi.ModTime()}
	if w.shared && w.path == "" {
		e.Name = sharedName
	}
	if !e.Dir {
		e.Size = uint64(fi.Size())
		e.SHA256, _ = ss.knownSum(ctx, w, fi.Size(), fi.ModTime())
	}
	return e
}

// knownSum returns the recorded SHA-256 of the file at w if the record
// still matches its size and modification time.
func (ss *session) knownSum(ctx context.Context, w where, size int64, mod time.Time) ([32]byte, bool) {
	if ss.s.FileStore == nil {
		return [32]byte{}, false
	}
	f, err := ss.s.FileStore.FileByPath(ctx, w.space(ss.key()), w.path)
	if err != nil || f.Size != size || !f.Modified.Equal(mod) {
		return [32]byte{}, false
	}
	return f.SHA256, true
}

// sum returns the SHA-256 of the open file f at w: the recorded one, or
// one computed now and recorded.
func (ss *session) sum(ctx context.Context, w where, f *disk.File) ([32]byte, error) {
	if sum, ok := ss.knownSum(ctx, w, f.Size, f.ModTime); ok {
		return sum, nil
	}
	var sum [32]byte
	var err error
	if w.shared {
		sum, err = ss.s.Files.Digest(f)
	} else {
		sum, err = disk.HashFile(f)
	}
	if err != nil {
		return sum, &larder.Error{Code: larder.EINTERNAL, Message: "cannot read " + w.path, Err: err}
	}
	if ss.s.FileStore != nil {
		// Best effort: a record that cannot be written is computed again
		// next time.
		ss.s.FileStore.PutFile(ctx, &larder.File{Space: w.space(ss.key()), Path: w.path, Size: f.Size, Modified: f.ModTime, SHA256: sum})
	}
	return sum, nil
}

func (ss *session) stat(ctx context.Context, m lnp.Stat) bool {
	ev := larder.Event{Kind: larder.EventStat, Path: lnpPath(m.Path)}
	w, err := resolve(m.Path)
	var fi fs.FileInfo
	if err == nil {
		fi, err = ss.statOf(w)
	}
	if err != nil {
		return ss.done(ctx, ev, err, nil)
	}
	e := ss.entry(ctx, w, fi)
	if w.path == "" && !w.shared {
		e.Name = "/"
	}
	return ss.done(ctx, ev, nil, lnp.AppendEntry(nil, &e))
}

// Listing limits.
const (
	defaultListLimit = 1000
	// listRead is how many entries a page reads from the folder at once.
	listRead = 256
)

// listCursor is the listing in progress of a session: the folder's open
// stream, and the name that ended the last page, from which a LIST goes
// on. A session holds one at most, so that a page costs what its entries
// cost whatever the folder's size, and a session holds one folder open at
// most; it is closed at the end of the folder, by a LIST of another
// folder, and with the session.
type listCursor struct {
	at   where
	dir  *disk.Lister
	last string   // the last name sent
	held []listed // read from the folder but not sent yet
	eof  bool     // the folder has no more to read
}

// listed is an entry read from a folder, where it was found.
type listed struct {
	w  where
	fi fs.FileInfo
}

// closeListing closes the session's listing in progress, if any.
func (ss *session) closeListing() {
	if ss.listing != nil {
		ss.listing.dir.Close()
		ss.listing = nil
	}
}

// list serves a page of a listing: a LIST with an empty after opens the
// folder, one with after set to the last name of the page before goes on.
// The page ends at limit entries, or where the next entry would not fit
// in a REPLY frame.
func (ss *session) list(ctx context.Context, m lnp.List) bool {
	ev := larder.Event{Kind: larder.EventList, Path: lnpPath(m.Path)}
	limit := int(m.Limit)
	switch {
	case limit == 0:
		limit = defaultListLimit
	case limit > lnp.MaxListLimit:
		return ss.done(ctx, ev, larder.Errorf(larder.EINVALID, "a limit of %d entries is above the most, %d", limit, lnp.MaxListLimit), nil)
	}
	w, err := resolve(m.Path)
	if err != nil {
		return ss.done(ctx, ev, err, nil)
	}
	cur := ss.listing
	if m.After == "" {
		ss.closeListing()
		if cur, err = ss.openListing(w); err != nil {
			return ss.done(ctx, ev, err, nil)
		}
		ss.listing = cur
	} else if cur == nil || cur.at != w || cur.last != m.After {
		return ss.done(ctx, ev, larder.Errorf(larder.ECONFLICT,
			"no listing of %s in this session ended at %q: a listing goes on from the last name of its last page, one folder at a time; list again from the start", m.Path, m.After), nil)
	}
	var r lnp.ListReply
	size := 0
	for len(r.Entries) < limit {
		if len(cur.held) == 0 {
			if cur.eof {
				break
			}
			infos, err := cur.dir.Next(min(limit-len(r.Entries), listRead))
			if err == io.EOF {
				cur.eof = true
				continue
			}
			if err != nil {
				ss.closeListing()
				return ss.done(ctx, ev, err, nil)
			}
			for _, fi := range infos {
				if !w.shared && w.path == "" && fi.Name() == sharedName {
					continue // listed first, as the shared area
				}
				child := w
				child.path = path.Join(w.path, fi.Name())
				cur.held = append(cur.held, listed{child, fi})
			}
			continue
		}
		next := cur.held[0]
		n := lnp.EntrySize(next.fi.Name())
		if size+n > lnp.MaxListBytes {
			break
		}
		e := ss.entry(ctx, next.w, next.fi)
		e.Name = next.fi.Name()
		r.Entries = append(r.Entries, e)
		size += n
		cur.held = cur.held[1:]
	}
	r.More = len(cur.held) > 0 || !cur.eof
	if len(r.Entries) > 0 {
		cur.last = r.Entries[len(r.Entries)-1].Name
	}
	if !r.More {
		ss.closeListing()
	}
	ev.Bytes = int64(len(r.Entries))
	return ss.done(ctx, ev, nil, r.AppendBody(nil))
}

// openListing opens the folder at w for a listing; the top of the space
// lists the shared area first.
func (ss *session) openListing(w where) (*listCursor, error) {
	var l *disk.Lister
	var err error
	if w.shared {
		l, err = ss.s.Files.OpenList(w.path)
	} else {
		l, err = ss.space.OpenList(w.path)
	}
	if err != nil {
		return nil, err
	}
	cur := &listCursor{at: w, dir: l}
	if !w.shared && w.path == "" {
		ss.addShared(func(w where, fi fs.FileInfo) { cur.held = append(cur.held, listed{w, fi}) })
	}
	return cur, nil
}

// addShared adds the shared area's entry to a listing of the top.
func (ss *session) addShared(add func(where, fs.FileInfo)) {
	if fi, err := ss.s.Files.Stat(""); err == nil {
		add(where{shared: true}, namedInfo{fi, sharedName})
	}
}

// namedInfo is a FileInfo under another name.
type namedInfo struct {
	fs.FileInfo
	name string
}

func (n namedInfo) Name() string { return n.name }

func (ss *session) delete(ctx context.Context, m lnp.Delete) bool {
	ev := larder.Event{Kind: larder.EventDelete, Path: lnpPath(m.Path)}
	w, err := writable(m.Path)
	if err == nil {
		err = ss.space.Remove(w.path)
	}
	if err == nil && ss.s.FileStore != nil {
		err = ss.s.FileStore.DeleteFiles(ctx, ss.key(), w.path)
	}
	return ss.done(ctx, ev, err, nil)
}

func (ss *session) rename(ctx context.Context, m lnp.Rename) bool {
	ev := larder.Event{Kind: larder.EventRename, Path: lnpPath(m.From), Reason: "to " + lnpPath(m.To)}
	from, err := writable(m.From)
	var to where
	if err == nil {
		to, err = writable(m.To)
	}
	if err == nil {
		err = ss.space.Rename(from.path, to.path, m.Overwrite)
	}
	if err == nil && ss.s.FileStore != nil {
		err = ss.s.FileStore.RenameFiles(ctx, ss.key(), from.path, to.path)
	}
	if err != nil {
		ev.Reason = ""
	}
	return ss.done(ctx, ev, err, nil)
}

func (ss *session) passwd(ctx context.Context, m lnp.Passwd) bool {
	ev := larder.Event{Kind: larder.EventAccount, Reason: "password changed by the user"}
	u, err := ss.s.Auth.ChangeSignature(ctx, ss.user.Name, m.Old[:], m.New[:], remoteIP(ss.c.rwc))
	if err == nil {
		ss.s.lnp.mu.Lock() // watchAccounts reads ss.user
		ss.user = u
		ss.s.lnp.mu.Unlock()
		ss.s.endOtherSessions(u.Name, ss)
	} else {
		ev.Reason = ""
	}
	return ss.done(ctx, ev, err, nil)
}

// open opens the regular file at p for reading.
func (ss *session) open(p string) (where, *disk.File, error) {
	w, err := resolve(p)
	if err != nil {
		return w, nil, err
	}
	var f *disk.File
	if w.shared {
		f, err = ss.s.Files.Open(w.path)
	} else {
		f, err = ss.space.Open(w.path)
	}
	return w, f, err
}

func (ss *session) sums(ctx context.Context, m lnp.Sums) bool {
	ev := larder.Event{Kind: larder.EventStat, Path: lnpPath(m.Path), Reason: "sums"}
	if m.Count > lnp.MaxSumsCount {
		return ss.done(ctx, ev, larder.Errorf(larder.EINVALID, "%d sums asked for; the most is %d", m.Count, lnp.MaxSumsCount), nil)
	}
	w, f, err := ss.open(m.Path)
	if err != nil {
		return ss.done(ctx, ev, err, nil)
	}
	defer f.Close()
	var known *larder.BlockSums
	if sum, ok := ss.knownSum(ctx, w, f.Size, f.ModTime); ok {
		known = ss.knownBlocks(ctx, f.Size, 0, sum)
	}
	var r lnp.SumsReply
	bs := int64(ss.blockSize)
	for i := range uint64(m.Count) {
		off := (m.First + i) * uint64(bs)
		if m.First+i < m.First || off/uint64(bs) != m.First+i || off >= uint64(f.Size) {
			break // past the end (or an offset that overflows)
		}
		if known != nil {
			r.Sums = append(r.Sums, known.Sum(int64(m.First+i)))
			continue
		}
		n := min(bs, f.Size-int64(off))
		if got, err := f.ReadAt(ss.buf[:n], int64(off)); got < int(n) {
			return ss.done(ctx, ev, &larder.Error{Code: larder.EINTERNAL, Message: "cannot read " + m.Path + ": it changed or could not be read", Err: err}, nil)
		}
		r.Sums = append(r.Sums, sha256.Sum256(ss.buf[:n]))
	}
	return ss.done(ctx, ev, nil, r.AppendBody(nil))
}
