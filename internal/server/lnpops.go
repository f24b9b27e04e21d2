package server

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/auth"
	"github.com/larderfs/larder/internal/disk"
	"github.com/larderfs/larder/internal/files"
	"github.com/larderfs/larder/lnp"
)

// sharedName is the folder under which every user sees the shared area.
const sharedName = "shared"

// where is a resolved path: in the user's space, or in the shared area.
type where = files.Loc

func resolve(p string) (where, error) {
	clean, err := disk.CleanPath(p)
	if err != nil {
		return where{}, err
	}
	if clean == sharedName {
		return where{Shared: true}, nil
	}
	if rest, ok := strings.CutPrefix(clean, sharedName+"/"); ok {
		return where{Shared: true, Path: rest}, nil
	}
	return where{Path: clean}, nil
}

// writable refuses a change to the shared area or to the top of the space.
func writable(p string) (where, error) {
	w, err := resolve(p)
	switch {
	case err != nil:
		return w, err
	case w.Shared:
		return w, larder.Errorf(larder.EFORBIDDEN, "the shared area is read-only")
	case w.Path == "":
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
			err = ss.space.Mkdir(w.Path)
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
	case lnp.DeviceAdd, lnp.Devices, lnp.DeviceRevoke:
		return ss.devices(ctx, m)
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

// done answers a request with err's status and message, and its reason
// if the session was granted them (OK and body if err is nil), and
// records ev with them.
func (ss *session) done(ctx context.Context, ev larder.Event, err error, body []byte) bool {
	m := lnp.Reply{Status: statusOf(err), Body: body}
	if err != nil {
		m.Message, m.Body = larder.ErrorMessage(err), nil
		if ss.features&lnp.FeatureReasons != 0 {
			m.Reason = reasonOf(err)
		}
		if ev.Reason == "" {
			ev.Reason = m.Message
		}
		// The cause, which the client is not told, goes to the log line.
		ss.lastErr = err
	}
	ev.User, ev.Remote, ev.Status = ss.user.Name, ss.c.remote, int(m.Status)
	ss.record(ctx, ev)
	return ss.writeReply(m)
}

func (ss *session) whoami(ctx context.Context) bool {
	q, err := ss.space.Quota(ctx)
	r := lnp.WhoamiReply{User: ss.user.Name, BytesQuota: uint64(q.Bytes), FilesQuota: uint64(q.Files)}
	if err == nil {
		var u larder.Usage
		u, _, err = ss.space.Usage(ctx, "")
		r.BytesUsed, r.FilesUsed = uint64(u.Bytes), uint64(u.Files)
	}
	return ss.done(ctx, larder.Event{Kind: larder.EventStat, Reason: "whoami"}, err, r.AppendBody(nil))
}

// entry describes in, found at w, with its hash if it is known without
// reading the file.
func (ss *session) entry(ctx context.Context, w where, in files.Info) lnp.Entry {
	e := lnp.Entry{Name: path.Base("/" + w.Path), Dir: in.Dir, Modified: ss.space.ModTime(ctx, w, in)}
	if w.Shared && w.Path == "" {
		e.Name = sharedName
	}
	if !e.Dir {
		e.Size = uint64(in.Size)
		e.SHA256, _ = ss.space.Known(ctx, w, in)
	}
	return e
}

func (ss *session) stat(ctx context.Context, m lnp.Stat) bool {
	ev := larder.Event{Kind: larder.EventStat, Path: lnpPath(m.Path)}
	w, err := resolve(m.Path)
	var in files.Info
	if err == nil {
		in, err = ss.space.Stat(w)
	}
	if err != nil {
		return ss.done(ctx, ev, err, nil)
	}
	e := ss.entry(ctx, w, in)
	if w.Path == "" && !w.Shared {
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
	dir  files.Lister
	last string   // the last name sent
	held []listed // read from the folder but not sent yet
	eof  bool     // the folder has no more to read
}

// listed is an entry read from a folder, where it was found.
type listed struct {
	w  where
	in files.Info
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
			for _, in := range infos {
				if !w.Shared && w.Path == "" && in.Name == sharedName {
					continue // listed first, as the shared area
				}
				child := w
				child.Path = path.Join(w.Path, in.Name)
				cur.held = append(cur.held, listed{child, in})
			}
			continue
		}
		next := cur.held[0]
		n := lnp.EntrySize(next.in.Name)
		if size+n > lnp.MaxListBytes {
			break
		}
		e := ss.entry(ctx, next.w, next.in)
		e.Name = next.in.Name
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
	l, err := ss.space.List(w)
	if err != nil {
		return nil, err
	}
	cur := &listCursor{at: w, dir: l}
	if !w.Shared && w.Path == "" {
		top := where{Shared: true}
		if in, err := ss.space.Stat(top); err == nil {
			in.Name = sharedName
			cur.held = append(cur.held, listed{top, in})
		}
	}
	return cur, nil
}

func (ss *session) delete(ctx context.Context, m lnp.Delete) bool {
	ev := larder.Event{Kind: larder.EventDelete, Path: lnpPath(m.Path)}
	w, err := writable(m.Path)
	if err == nil && m.Recursive {
		return ss.deleteTree(ctx, ev, w)
	}
	if err == nil {
		err = ss.space.Delete(ctx, w.Path)
	}
	return ss.done(ctx, ev, err, nil)
}

// deleteTree serves a recursive DELETE: the folder w and everything below
// it, in one change of the files service, recorded as one event that
// says what went. The top of the space and the shared area never get
// here (writable refuses them).
func (ss *session) deleteTree(ctx context.Context, ev larder.Event, w where) bool {
	if ss.features&lnp.FeatureTreeDelete == 0 {
		return ss.done(ctx, ev, larder.Errorf(larder.EINVALID, "this DELETE is recursive, which the session's HELLO did not offer to send (feature bit 2)"), nil)
	}
	r, more, err := ss.space.DeleteTree(ctx, w.Path)
	ev.Bytes = r.Bytes
	counts := fmt.Sprintf("recursive: %d files, %d folders removed", r.Files, r.Folders)
	switch {
	case err == nil && more:
		ev.Reason = counts + ", more to remove"
	case err == nil:
		ev.Reason = counts
	case r != (files.Removed{}):
		ev.Reason = fmt.Sprintf("%s (%s before)", larder.ErrorMessage(err), counts)
	}
	reply := lnp.DeleteReply{Files: uint64(r.Files), Folders: uint64(r.Folders), Bytes: uint64(r.Bytes), More: more}
	return ss.done(ctx, ev, err, reply.AppendBody(nil))
}

func (ss *session) rename(ctx context.Context, m lnp.Rename) bool {
	ev := larder.Event{Kind: larder.EventRename, Path: lnpPath(m.From), Reason: "to " + lnpPath(m.To)}
	from, err := writable(m.From)
	var to where
	if err == nil {
		to, err = writable(m.To)
	}
	if err == nil {
		err = ss.space.Rename(ctx, from.Path, to.Path, m.Overwrite)
	}
	if err != nil {
		ev.Reason = ""
	}
	return ss.done(ctx, ev, err, nil)
}

func (ss *session) passwd(ctx context.Context, m lnp.Passwd) bool {
	ev := larder.Event{Kind: larder.EventAccount, Reason: "password changed by the user"}
	u, err := ss.changePassword(ctx, m, &ev)
	if u != nil {
		ss.s.lnp.mu.Lock() // watchAccounts reads ss.user
		ss.user = u
		ss.s.lnp.mu.Unlock()
		ss.s.lnp.endOtherSessions(u.Name, ss)
	}
	if err != nil {
		ev.Reason = ""
	}
	return ss.done(ctx, ev, err, nil)
}

// changePassword changes the session's password as m asks, and returns
// the account as it now is if its password changed (even when err says
// that the LNP/1 credential could not be stored after the signature).
func (ss *session) changePassword(ctx context.Context, m lnp.Passwd, ev *larder.Event) (*larder.User, error) {
	c := m.Credential
	var p auth.Params
	var k auth.LNPKeys
	if c != nil {
		p = auth.Params{Memory: c.KDF.Memory, Time: c.KDF.Time, Threads: c.KDF.Threads}
		k = auth.LNPKeys{StoredKey: c.StoredKey, ServerKey: c.ServerKey}
	}
	from := remoteIP(ss.c.rwc)
	switch {
	case ss.user.Verifier == "":
		// LNP/1 only: no signature to check again, so the login on this
		// connection must have proved the password itself.
		switch {
		case ss.device != [16]byte{}:
			return nil, larder.Errorf(larder.EFORBIDDEN, "this session logged in with a device credential, which cannot change the password: log in with the password")
		case c == nil:
			return nil, larder.Errorf(larder.EINVALID, "user %q logs in over LNP/1 only: PASSWD must carry the new password's credential", ss.user.Name)
		}
		ev.Reason = "password changed by the user, LNP/1 only"
		return ss.s.Auth.ChangeLNPPassword(ctx, ss.user, c.Salt, p, k)
	case m.Old == [32]byte{}:
		return nil, larder.Errorf(larder.EINVALID, "user %q also has a password for the course protocol: PASSWD must carry the signatures of the old and the new password, made with the account's salt", ss.user.Name)
	case c == nil:
		return ss.s.Auth.ChangeSignature(ctx, ss.user.Name, m.Old[:], m.New[:], from)
	}
	ev.Reason = "password changed by the user, both credentials"
	return ss.s.Auth.ChangePassword(ctx, ss.user.Name, m.Old[:], m.New[:], c.Salt, p, k, from)
}

// open opens the regular file at p for reading, with its SHA-256.
func (ss *session) open(ctx context.Context, p string) (where, *files.File, error) {
	w, err := resolve(p)
	if err != nil {
		return w, nil, err
	}
	f, err := ss.space.Open(ctx, w)
	return w, f, err
}

func (ss *session) sums(ctx context.Context, m lnp.Sums) bool {
	ev := larder.Event{Kind: larder.EventStat, Path: lnpPath(m.Path), Reason: "sums"}
	if m.Count > lnp.MaxSumsCount {
		return ss.done(ctx, ev, larder.Errorf(larder.EINVALID, "%d sums asked for; the most is %d", m.Count, lnp.MaxSumsCount), nil)
	}
	w, err := resolve(m.Path)
	var f *files.File
	var ok bool
	if err == nil {
		f, ok, err = ss.space.OpenKnown(ctx, w)
	}
	if err != nil {
		return ss.done(ctx, ev, err, nil)
	}
	defer f.Close()
	var known *larder.BlockSums
	if ok {
		known = ss.knownBlocks(ctx, f, 0)
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
