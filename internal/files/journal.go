package files

import (
	"context"
	"errors"
	"fmt"

	"github.com/larderfs/larder"
)

// The ops an intent can announce.
const (
	opPut    = "put"
	opDelete = "delete"
	opRename = "rename"
	// opDeleteTree removes a folder and everything below it; its replay
	// finishes the removal (a tree cannot be removed in one step).
	opDeleteTree = "deletetree"
)

// begin journals the intent to change path (and, for a rename, to) of
// space, before the change is made. Without records there is nothing to
// keep in step, and no intent.
func (s *Service) begin(ctx context.Context, op, space, path, to string) (*larder.FileIntent, error) {
	if s.records == nil {
		return nil, nil
	}
	if s.id == "" {
		return nil, larder.Errorf(larder.EINTERNAL, "files: the storage has no ID for the journal")
	}
	in := &larder.FileIntent{Backend: s.journal, Op: op, Space: space, Path: path, To: to}
	if err := s.records.AddIntent(ctx, in); err != nil {
		return nil, err
	}
	return in, s.step(op + ":intent")
}

// done removes an intent whose change is complete. An intent left behind
// is replayed at the next start, which changes nothing: replaying is
// idempotent.
func (s *Service) done(ctx context.Context, in *larder.FileIntent) {
	if in == nil {
		return
	}
	if err := s.records.DoneIntent(ctx, in.ID); err != nil {
		s.log.Warn("cannot remove a done intent; it is replayed at the next start", "op", in.Op, "path", in.Path, "error", err)
	}
}

// settle replays the intent of a change that failed part way, so that
// the records follow what the backend holds now, and removes it; if that
// fails too, the next start replays it.
func (s *Service) settle(ctx context.Context, in *larder.FileIntent, a Area) {
	if in == nil {
		return
	}
	if err := s.replay(ctx, in, a); err != nil {
		s.log.Warn("cannot bring the records in step after a failed change; the next start does", "op", in.Op, "path", in.Path, "error", err)
		return
	}
	s.done(ctx, in)
}

// errCrash is what a failpoint returns: the operation stops where it is,
// with no step after, as if the process had been killed.
var errCrash = errors.New("files: stopped at a failpoint")

// step calls the failpoint of the step just done, if any.
func (s *Service) step(name string) error {
	if s.failpoint == nil {
		return nil
	}
	if err := s.failpoint(name); err != nil {
		return fmt.Errorf("%w: %s: %w", errCrash, name, err)
	}
	return nil
}

// Recover replays every intent of this server's journal on this backend
// left by a process that stopped in the middle of a change, and those of
// the backend's own journal (from a version that kept one per backend,
// or a server with no Owner), and returns how many it replayed; another
// server's are its own to replay.
// Run it at start, before anything is served: it expects no change in
// flight. An intent that cannot be replayed (a file that cannot be read)
// is logged and kept for the next start, so that one bad file does not
// keep the server from starting (a tree's removal kept so keeps the tree
// refused to changes, as DeleteTree does); only a journal that cannot be
// read at all is an error.
func (s *Service) Recover(ctx context.Context) (int, error) {
	if s.records == nil || s.id == "" {
		return 0, nil
	}
	ins, err := s.records.Intents(ctx, s.id)
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range ins {
		in := &ins[i]
		if in.Backend != s.journal && in.Backend != s.id {
			continue
		}
		a, err := s.backend.Area(in.Space)
		if err == nil {
			err = s.replay(ctx, in, a)
			a.Close()
		}
		if err == nil {
			err = s.records.DoneIntent(ctx, in.ID)
		}
		if err != nil {
			s.log.Warn("cannot finish a change to files interrupted at the last stop; the next start tries again",
				"op", in.Op, "space", in.Space, "path", in.Path, "to", in.To, "error", err)
			if in.Op == opDeleteTree {
				// Refused to changes, as before the stop: a replay that
				// succeeds later removes the whole tree, with anything
				// written into it meanwhile. A DeleteTree of the path
				// goes on with this intent, and ends it.
				s.removals.add(in.Space, in.Path, in)
				s.log.Warn("the folder stays refused to changes until it is removed again (rm -r) or a start finishes its removal",
					"space", in.Space, "path", in.Path)
			}
			continue
		}
		n++
	}
	return n, nil
}

// replay brings the records of the paths in touches in step with what a
// holds, whatever step of the change was reached.
func (s *Service) replay(ctx context.Context, in *larder.FileIntent, a Area) error {
	switch in.Op {
	case opPut, opDelete:
		return s.reconcile(ctx, a, in.Space, in.Path)
	case opDeleteTree:
		for {
			r, gone, err := a.RemoveTree(in.Path, treeBatch)
			switch {
			case err != nil:
				return err
			case gone:
				return s.records.DeleteFiles(ctx, in.Space, in.Path)
			case r == (Removed{}):
				return fmt.Errorf("files: %q is being written to as it is removed", in.Path)
			}
		}
	case opRename:
		if err := a.FinishRename(in.Path, in.To); err != nil {
			return err
		}
		// The backend moved and the records did not: they follow. With
		// from gone, any record at or below it is one of those moved.
		_, ferr := a.Stat(in.Path)
		_, terr := a.Stat(in.To)
		if larder.ErrorCode(ferr) == larder.ENOTFOUND && terr == nil {
			u, err := s.records.CountFiles(ctx, in.Space, in.Path)
			if err != nil {
				return err
			}
			if u.Files > 0 {
				if err := s.records.RenameFiles(ctx, in.Space, in.Path, in.To); err != nil {
					return err
				}
			}
		}
		if err := s.reconcile(ctx, a, in.Space, in.Path); err != nil {
			return err
		}
		return s.reconcile(ctx, a, in.Space, in.To)
	}
	return fmt.Errorf("files: an intent to %q, which this version does not know", in.Op)
}

// reconcile makes the records of p in space say what a holds at p: none
// if nothing is there; for a file, one trusted for its version, hashed
// again if the record is missing or not trusted. The records below a
// folder are its files', which a rename moves with it.
func (s *Service) reconcile(ctx context.Context, a Area, space, p string) error {
	info, err := a.Stat(p)
	switch {
	case larder.ErrorCode(err) == larder.ENOTFOUND:
		return s.records.DeleteFiles(ctx, space, p)
	case err != nil:
		return err
	case info.Dir:
		return nil
	}
	if rec, err := s.records.FileByPath(ctx, space, p); err == nil && matches(rec, info, false) {
		return nil
	}
	o, err := a.Open(p)
	if err != nil {
		return err
	}
	defer o.Close()
	info = o.Info()
	d, err := s.digest(o, info, 0, nil)
	if err != nil {
		return err
	}
	rec := &larder.File{Space: space, Path: p, Size: info.Size, Modified: info.ModTime, SHA256: d.sum, Version: recordedVersion(info, d.settled)}
	return s.records.PutFile(ctx, rec)
}
