package files

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"path"
	"strings"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/disk"
)

// Mkdir makes the folder p of the space; its parent must exist. A folder
// has no record, so there is nothing to journal.
func (sp *Space) Mkdir(p string) error {
	if err := sp.s.removals.check(sp.key, p); err != nil {
		return err
	}
	return sp.area.Mkdir(p)
}

// Delete removes the file or empty folder p of the space, and its
// records.
func (sp *Space) Delete(ctx context.Context, p string) error {
	s := sp.s
	defer s.lock(sp.key)()
	if err := s.removals.check(sp.key, p); err != nil {
		return err
	}
	// Nothing there is refused before anything is journaled.
	if _, err := sp.area.Stat(p); larder.ErrorCode(err) == larder.ENOTFOUND {
		return err
	}
	in, err := s.begin(ctx, "delete", sp.key, p, "")
	if err != nil {
		return err
	}
	if err := sp.area.Remove(p); err != nil {
		s.unchanged(ctx, in, sp.area, p)
		return err
	}
	if err := s.step("delete:removed"); err != nil {
		return err
	}
	if s.records != nil {
		if err := s.records.DeleteFiles(ctx, sp.key, p); err != nil {
			s.settle(ctx, in, sp.area)
			return err
		}
	}
	if err := s.step("delete:recorded"); err != nil {
		return err
	}
	s.done(ctx, in)
	return nil
}

// DeleteTree removes p, a file or a folder with everything below it, and
// their records, as one change: one intent, the tree removed from the
// backend, the records below p removed at once (one DeleteFiles), the
// intent done. A crash at any step is replayed at the next start by
// finishing the removal.
//
// The space's mutations wait while it works, so that an upload committing
// into the tree lands either before (and goes with it, record and all) or
// after (and finds its folder gone: its part is kept, as for any upload
// whose folder was removed). So that they do not wait long, it works for
// about TreeBudget at most: if p is not gone by then, it reports more,
// and the same call again goes on (the intent stays meanwhile, and
// changes in or to the tree are refused with a conflict until it is
// gone; a start finishes it). Until then the records of the files removed
// stay, and usage still counts them. A backend that fails in the middle
// leaves the removal so too, and its error says so. Unfinished uploads to paths below p are not
// touched: CANCEL removes them, and they expire as any other.
func (sp *Space) DeleteTree(ctx context.Context, p string) (r Removed, more bool, err error) {
	s := sp.s
	defer s.lock(sp.key)()
	in, going := s.removals.get(sp.key, p)
	if !going {
		if _, err := sp.area.Stat(p); err != nil {
			return r, false, err
		}
		if err := s.removals.check(sp.key, p); err != nil {
			return r, false, err
		}
		if in, err = s.begin(ctx, opDeleteTree, sp.key, p, ""); err != nil {
			return r, false, err
		}
		s.removals.add(sp.key, p, in)
	}
	start := time.Now()
	for {
		got, gone, err := sp.area.RemoveTree(p, s.treeBatch)
		r.add(got)
		if err != nil {
			return r, false, unfinished(p, in, err)
		}
		if err := s.step(opDeleteTree + ":batch"); err != nil {
			return r, false, unfinished(p, in, err)
		}
		if gone {
			break
		}
		if got == (Removed{}) || time.Since(start) >= s.treeBudget {
			return r, true, nil
		}
	}
	if err := s.step(opDeleteTree + ":removed"); err != nil {
		return r, false, unfinished(p, in, err)
	}
	if s.records != nil {
		if err := s.records.DeleteFiles(ctx, sp.key, p); err != nil {
			return r, false, unfinished(p, in, err)
		}
	}
	if err := s.step(opDeleteTree + ":recorded"); err != nil {
		return r, false, unfinished(p, in, err)
	}
	for _, in := range s.removals.end(sp.key, p) {
		s.done(ctx, in)
	}
	return r, false, nil
}

// unfinished is err, of a removal of p that stopped after it began, with
// what the user needs to know: the tree stays refused to changes (see
// removals.check), and what finishes the removal. in is its intent, which
// a start replays; nil without records.
func unfinished(p string, in *larder.FileIntent, err error) error {
	then := ""
	if in != nil {
		then = ", or the server's next start finishes it"
	}
	return &larder.Error{Code: larder.ErrorCode(err), Err: err,
		Message: fmt.Sprintf("%s; the removal of %q stopped before its end: nothing in it can change until it is removed again (rm -r)%s",
			larder.ErrorMessage(err), "/"+p, then)}
}

// treeBatch is how many entries DeleteTree asks a backend to remove at a
// time, between its looks at the clock: a store's page of DeleteObjects.
const treeBatch = 1000

func (r *Removed) add(o Removed) {
	r.Files += o.Files
	r.Folders += o.Folders
	r.Bytes += o.Bytes
}

// Rename moves the file or folder from of the space to to, and its
// records; without overwrite an existing to is a conflict.
func (sp *Space) Rename(ctx context.Context, from, to string, overwrite bool) error {
	s := sp.s
	defer s.lock(sp.key)()
	if err := s.removals.checkMove(sp.key, from, to); err != nil {
		return err
	}
	before, _ := sp.area.Stat(from)
	var versions map[string]string // of the files below a folder moved
	if _, keeps := sp.area.(keepsVersions); before.Dir && !keeps && s.records != nil {
		versions = versionsBelow(sp.area, from)
	}
	in, err := s.begin(ctx, "rename", sp.key, from, to)
	if err != nil {
		return err
	}
	if err := sp.area.Rename(from, to, overwrite); err != nil {
		if refused(err) {
			s.unchanged(ctx, in, sp.area, from)
		} else {
			// A store that moves object by object may have stopped in
			// the middle, with from still there: the replay finishes
			// the move, or the next start does.
			s.settle(ctx, in, sp.area)
		}
		return err
	}
	if err := s.step("rename:moved"); err != nil {
		return err
	}
	if s.records != nil {
		if err := s.records.RenameFiles(ctx, sp.key, from, to); err != nil {
			s.settle(ctx, in, sp.area)
			return err
		}
		if !before.Dir {
			s.restamp(ctx, sp.area, sp.key, to, before.Version)
		}
		for p, was := range versions {
			s.restamp(ctx, sp.area, sp.key, path.Join(to, p), was)
		}
	}
	if err := s.step("rename:recorded"); err != nil {
		return err
	}
	s.done(ctx, in)
	return nil
}

// unchanged ends the intent of a change whose backend step failed: if p,
// what the step would have moved or removed, is still there, nothing
// changed (a conflict, a missing parent) and nothing is replayed, which
// could mean hashing a large file for a refusal; otherwise the step got
// as far as changing the backend (a change not made durable) and the
// records follow whatever it holds.
func (s *Service) unchanged(ctx context.Context, in *larder.FileIntent, a Area, p string) {
	if _, err := a.Stat(p); err == nil {
		s.done(ctx, in)
		return
	}
	s.settle(ctx, in, a)
}

// refused reports whether err is a backend's refusal, made before it
// changed anything.
func refused(err error) bool {
	switch larder.ErrorCode(err) {
	case larder.ECONFLICT, larder.EINVALID, larder.ENOTFOUND, larder.EFORBIDDEN:
		return true
	}
	return false
}

// keepsVersions is implemented by an Area whose renames keep the
// versions of the files below a folder moved (a disk's: the files'
// inodes do not change), so that there is nothing to restamp.
type keepsVersions interface{ renameKeepsVersions() }

// versionsBelow returns the versions of the files below the folder dir
// of a, by their paths below it, for restamp after the folder moves (a
// store copies each object, which gives it another version). Best
// effort: a file it cannot list is hashed again at its next read.
func versionsBelow(a Area, dir string) map[string]string {
	vs := map[string]string{}
	walk(a, dir, func(p string, in Info) error {
		if in.Version != "" {
			vs[strings.TrimPrefix(p, dir+"/")] = in.Version
		}
		return nil
	})
	return vs
}

// restamp gives the record of the file just moved to p the version the
// move gave it (on a disk the change time moves), if the record was
// trusted for the version it had before: the bytes did not change, and
// no one else writes a private space. A record marked racy stays so: the
// move does not make its hash any more settled.
func (s *Service) restamp(ctx context.Context, a Area, space, p, was string) {
	rec, err := s.records.FileByPath(ctx, space, p)
	if err != nil || was == "" {
		return
	}
	mark := ""
	switch rec.Version {
	case was:
	case racyMark + was:
		mark = racyMark
	default:
		return
	}
	now, err := a.Stat(p)
	if err != nil || now.Dir || now.Size != rec.Size || now.Version == "" {
		return
	}
	rec.Version = mark + now.Version
	if err := s.records.PutFile(ctx, rec); err != nil {
		s.log.Warn("cannot record a moved file's version", "path", p, "error", err)
	}
}

// Usage returns the space's usage, its unfinished uploads but the one
// whose ID is except included, and the part of it they hold.
func (sp *Space) Usage(ctx context.Context, except string) (u, parts larder.Usage, err error) {
	if sp.s.records != nil {
		if u, err = sp.s.records.SpaceUsage(ctx, sp.key); err != nil {
			return u, parts, err
		}
	}
	if parts, err = sp.area.PartUsage(except); err != nil {
		return u, parts, err
	}
	u.Bytes += parts.Bytes
	u.Files += parts.Files
	return u, parts, nil
}

// Parts returns the space's unfinished uploads, by their IDs.
func (sp *Space) Parts() ([]PartInfo, error) { return sp.area.Parts() }

// CancelUploads removes the unfinished uploads of target, or all of them
// if target is "", but those being written now, and returns how many it
// removed and the bytes they held.
func (sp *Space) CancelUploads(target string) (int, int64, error) {
	return sp.area.CancelUploads(target)
}

// Upload is an upload in progress, from StartUpload to Commit or Close.
type Upload struct {
	sp        *Space
	part      Part
	hold      *disk.Hold
	overwrite bool

	ID     string // the part's, as Parts lists it
	Target string
	Size   int64 // announced
	Start  int64 // where this session started: what an earlier one left
	// Hash is the SHA-256 state of the whole content, the bytes before
	// Start included: the receiver writes each verified byte to it too,
	// in order. It is nil when the backend's part hashes the content
	// itself (PartHasher): then there is nothing to write it to.
	Hash hash.Hash
	// Modified, if set before Commit, is the file's modification time as
	// the client gives it (CheckModTime), kept instead of the commit's.
	Modified time.Time
}

// CheckModTime refuses a modification time given for an upload that
// cannot be a file's: 1970-01-01T00:00:00Z or before (the time 0 is what
// LNP/1 sends for none), or more than MaxModTimeAhead ahead of the
// server's clock. The error has code EINVALID.
func CheckModTime(t time.Time) error {
	switch {
	case t.Equal(time.Unix(0, 0)):
		return larder.Errorf(larder.EINVALID, "the file's modification time is 1970-01-01T00:00:00Z, the time 0, which stands for no time: larder keeps times after it (upload it without its time)")
	case t.Before(time.Unix(0, 1)):
		return larder.Errorf(larder.EINVALID, "the file's modification time, %s, is before 1970: larder keeps times from 1970 on (upload it without its time)", t.UTC().Format(time.RFC3339Nano))
	case t.After(time.Now().Add(MaxModTimeAhead)):
		return larder.Errorf(larder.EINVALID, "the file's modification time, %s, is more than a day ahead of the server's clock (upload it without its time, or set the clock right)", t.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// MaxModTimeAhead is how far ahead of the server's clock an upload's
// modification time may be: clocks of clients differ, a time a year
// ahead is a mistake.
const MaxModTimeAhead = 24 * time.Hour

// timeSetter is a Part that can set the modification time of the file
// it becomes (a disk's); a backend whose parts cannot (a bucket's, whose
// objects take the store's time) keeps the time in the record only.
type timeSetter interface {
	SetModTime(t time.Time) error
}

// StartUpload starts the upload of a file of size bytes to p, refusing,
// before any byte is sent, one that cannot commit: a target in a tree
// being removed (checked again at commit, as a removal may begin
// meanwhile); a target that is a folder, or exists without overwrite; a
// missing parent folder; a file
// that would take the space beyond its quota (counting every unfinished
// upload at its announced size, so two started together see each other;
// the quota is checked again, exactly, at commit); or the disk below its
// reserve. With resume an earlier part of the same path and size goes on;
// the path's parts of other sizes, which it could never resume, go.
func (sp *Space) StartUpload(ctx context.Context, p string, size int64, resume, overwrite bool) (*Upload, error) {
	if err := sp.s.removals.check(sp.key, p); err != nil {
		return nil, err
	}
	replaced, err := sp.checkTarget(p, overwrite)
	if err != nil {
		return nil, err
	}
	part, err := sp.area.StartUpload(p, size, resume)
	if err != nil {
		return nil, err
	}
	sp.area.CancelUploads(p)
	u := &Upload{sp: sp, part: part, overwrite: overwrite, ID: part.ID(), Target: p, Size: size, Start: part.Offset()}
	if _, ok := part.(PartHasher); !ok {
		u.Hash = sha256.New()
	}
	if err := sp.checkQuota(ctx, u, replaced); err != nil {
		u.abandon()
		return nil, err
	}
	if u.hold, err = sp.s.reserve.Hold(size - u.Start); err != nil {
		u.abandon()
		return nil, err
	}
	if u.Start > 0 && u.Hash != nil {
		if err := part.HashPrefix(u.Hash); err != nil {
			u.Close()
			return nil, err
		}
	}
	return u, nil
}

// abandon lets go of an upload refused at its start; a part with nothing
// in it goes.
func (u *Upload) abandon() {
	if u.Start == 0 {
		u.Discard()
		return
	}
	u.Close()
}

// checkTarget is StartUpload's check of the target. It returns the size
// of the file the upload replaces, or -1.
func (sp *Space) checkTarget(p string, overwrite bool) (int64, error) {
	var replaced int64 = -1
	if in, err := sp.area.Stat(p); err == nil {
		switch {
		case in.Dir:
			return 0, larder.Errorf(larder.ECONFLICT, "%q is a folder", p)
		case !overwrite:
			return 0, larder.Errorf(larder.ECONFLICT, "%q exists; overwrite it to replace it", p)
		}
		replaced = in.Size
	}
	if parent := path.Dir(p); parent != "." {
		if in, err := sp.area.Stat(parent); err != nil || !in.Dir {
			return 0, larder.Errorf(larder.ENOTFOUND, "the folder %q does not exist", parent)
		}
	}
	return replaced, nil
}

// checkQuota is StartUpload's check of the quota.
func (sp *Space) checkQuota(ctx context.Context, u *Upload, replaced int64) error {
	if sp.s.records == nil {
		return nil
	}
	q, err := sp.Quota(ctx)
	if err != nil || q == (larder.Quota{}) {
		return err
	}
	usage, parts, err := sp.Usage(ctx, u.ID)
	if err != nil {
		return err
	}
	usage.Bytes += u.Size
	usage.Files++
	if replaced >= 0 {
		usage.Bytes -= replaced
		usage.Files--
	}
	if !q.Exceeds(usage) {
		return nil
	}
	err = larder.QuotaExceeded(q, usage)
	if parts.Files > 0 {
		e := err.(*larder.Error)
		e.Message += fmt.Sprintf(" (unfinished uploads, %d, hold %d bytes of it until they complete or are cancelled)", parts.Files, parts.Bytes)
	}
	return err
}

// Write appends verified bytes.
func (u *Upload) Write(p []byte) (int, error) { return u.part.Write(p) }

// Offset returns the bytes written and verified so far.
func (u *Upload) Offset() int64 { return u.part.Offset() }

// Wrote tells the reserve that n more bytes are on the disk and checks
// the free space again: another writer may have taken it.
func (u *Upload) Wrote(n int64) error { return u.hold.Wrote(n) }

// Discard removes the part and lets go of the upload: nothing is kept for
// a resume.
func (u *Upload) Discard() error {
	u.hold.Release()
	return u.part.Discard()
}

// Close lets go of the upload; a part not committed stays for a resume.
func (u *Upload) Close() error {
	u.hold.Release()
	return u.part.Close()
}

// Commit puts the complete upload in place, whose SHA-256 the client says
// is sum, with its record, under the space's quota, and records sums, the
// blocks' sums in blocks of blockSize bytes, if not nil. check, if not
// nil, is asked last before anything changes (the account still allowed
// to write). A content that does not match sum, or that the quota refuses,
// is discarded. It returns what is at the target now.
func (u *Upload) Commit(ctx context.Context, sum [32]byte, sums []byte, blockSize int, check func(context.Context) error) (Info, error) {
	sp, s := u.sp, u.sp.s
	if !u.Modified.IsZero() {
		if err := CheckModTime(u.Modified); err != nil {
			return Info{}, err
		}
	}
	hp, hashes := u.part.(PartHasher)
	if !hashes {
		if got := [32]byte(u.Hash.Sum(nil)); got != sum {
			return Info{}, u.mismatch()
		}
	}
	part, err := u.part.Sync()
	if err == nil && hashes {
		// Known once the part holds every byte; a Sync that failed
		// keeps the part for a resume, as the disk's does.
		var got [32]byte
		if got, err = hp.SHA256(); err == nil && got != sum {
			return Info{}, u.mismatch()
		}
	}
	if err == nil && check != nil {
		err = check(ctx)
	}
	if err != nil {
		return Info{}, err
	}
	// Read before the space is locked: the account's own quota may be a
	// query to a database shared with other servers.
	var quota larder.Quota
	if s.records != nil {
		if quota, err = sp.Quota(ctx); err != nil {
			return Info{}, err
		}
	}
	defer s.lock(sp.key)()
	if err := s.removals.check(sp.key, u.Target); err != nil {
		return Info{}, err
	}
	in, err := s.begin(ctx, "put", sp.key, u.Target, "")
	if err != nil {
		return Info{}, err
	}
	var (
		placed  Info
		moved   bool
		crashed error
	)
	rec := &larder.File{Space: sp.key, Path: u.Target, Size: u.Size, Modified: part.ModTime, SHA256: sum}
	if !u.Modified.IsZero() {
		rec.Modified = u.Modified
	}
	place := func() error {
		var err error
		if ts, ok := u.part.(timeSetter); ok && !u.Modified.IsZero() {
			// Before the move: the version the record takes is the
			// file's as placed, time included.
			if err := ts.SetModTime(u.Modified); err != nil {
				return err
			}
		}
		if placed, err = u.part.Place(u.overwrite); err != nil {
			return err
		}
		if !u.Modified.IsZero() {
			placed.ModTime = u.Modified
		}
		moved = true
		// The service wrote these bytes and hashed them as it did: the
		// record is trusted for the version the file has in place.
		rec.Version = placed.Version
		crashed = s.step("put:placed")
		return crashed
	}
	if s.records != nil {
		err = s.records.CommitFile(ctx, rec, quota, place)
	} else {
		err = place()
	}
	if crashed != nil {
		return Info{}, crashed
	}
	if larder.ErrorCode(err) == larder.EQUOTA {
		u.Discard() // it can never commit
	}
	if err != nil {
		switch {
		case moved:
			s.settle(ctx, in, sp.area)
		case larder.ErrorCode(err) == larder.EUNAVAILABLE:
			// The backend did not answer: it may place the file yet (a
			// store completing an upload after the request's deadline),
			// so the intent stays, for the next start to replay.
		default:
			s.done(ctx, in) // nothing changed
		}
		return Info{}, err
	}
	if err := s.step("put:committed"); err != nil {
		return Info{}, err
	}
	s.done(ctx, in)
	if sums != nil {
		s.PutBlockSums(ctx, &larder.BlockSums{SHA256: sum, Size: u.Size, BlockSize: blockSize, Sums: sums})
	}
	return placed, nil
}

// mismatch discards an upload whose content is not the file the client
// announced, and returns the error that says so.
func (u *Upload) mismatch() error {
	u.Discard() // what was received is not that file: nothing to resume
	return larder.Errorf(larder.EINTEGRITY,
		"the file's SHA-256 does not match: %d bytes received (%d before this session), nothing kept", u.Size, u.Start)
}

// RemoveStaleUploads removes the parts of uploads last written before
// before, but those being written, and returns how many.
func (s *Service) RemoveStaleUploads(before time.Time) (int, error) {
	return s.backend.RemoveStaleUploads(before)
}

// PruneBlockSums removes the block sums of contents no file has any more,
// and returns how many.
func (s *Service) PruneBlockSums(ctx context.Context) (int64, error) {
	if s.records == nil {
		return 0, nil
	}
	return s.records.PruneBlockSums(ctx)
}
