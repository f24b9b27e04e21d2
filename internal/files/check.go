package files

import (
	"context"
	"errors"
	"io"
	"path"
	"slices"
	"strings"

	"github.com/larderfs/larder"
)

// The kinds of Difference between a space's records and its files.
const (
	// NoObject is a record of a path where the backend has no file.
	NoObject = "no object"
	// NoRecord is a file the backend holds that has no record: it counts
	// in no usage and no quota.
	NoRecord = "no record"
	// SizeDiffers is a record whose size is not the file's.
	SizeDiffers = "size"
	// VersionDiffers is a record of the file's size that is not of the
	// content there now (or of none: a record without a version), so its
	// hash is never relied on and the file is hashed again at its next
	// read.
	VersionDiffers = "version"
)

// Difference is one path where a space's records and its files on the
// backend disagree.
type Difference struct {
	Kind string `json:"kind"`
	Path string `json:"path"`
	// What the record says, if there is one.
	RecordSize    int64  `json:"record_size,omitempty"`
	RecordVersion string `json:"record_version,omitempty"`
	// What the backend holds, if a file.
	StoredSize    int64  `json:"stored_size,omitempty"`
	StoredVersion string `json:"stored_version,omitempty"`
	// Repaired says that the records follow the backend at Path now;
	// RepairError, why they could not be made to.
	Repaired    bool   `json:"repaired,omitempty"`
	RepairError string `json:"repair_error,omitempty"`
}

// SpaceCheck is what Check found in one space, or in the shared area.
type SpaceCheck struct {
	Space   string `json:"space"`   // "" for the shared area
	Records int64  `json:"records"` // files recorded
	Objects int64  `json:"objects"` // files the backend holds
	// Unrecorded counts the shared area's files with no record: not a
	// difference there (they are put in place by other tools, and
	// hashed and recorded at their first read).
	Unrecorded  int64        `json:"unrecorded,omitempty"`
	Differences []Difference `json:"differences"`
	// Uploads are the unfinished uploads: not a difference (a client
	// may resume one, and the stale ones are removed by the servers'
	// hourly sweep), but usage counts them.
	Uploads []PartInfo `json:"uploads"`
	// Pending are the journal's intents of this space on this backend:
	// changes in flight now, or cut by a crash and replayed at the next
	// start of a server. A difference at their paths may be one of them.
	Pending []larder.FileIntent `json:"pending"`
}

// Check compares the records of space with the files the backend holds
// in it, path by path, and with repair makes the records follow the
// backend where they differ, as Recover does after a crash: a record with
// no file goes, a file with no record or a record of other content is
// hashed and recorded. It changes no file. It is safe to run beside
// servers: a change they make meanwhile can show as a difference, and a
// repair of its path only records what the backend holds (a record is
// trusted only for the version it was taken of), but the journal is left
// to them. It holds the space's paths and record sizes in memory.
//
// The space "" is the shared area, whose records are hashes taken at a
// file's first read: a file there with no record is not a difference
// (SpaceCheck.Unrecorded counts them), but a record of a file gone or
// changed is, and a repair removes it or hashes the file again.
func (s *Service) Check(ctx context.Context, space string, repair bool) (*SpaceCheck, error) {
	if s.records == nil {
		return nil, errors.New("files: a check needs the records of files")
	}
	var a Area
	if space == "" {
		if s.shared == nil {
			return nil, larder.Errorf(larder.ENOTFOUND, "files: check: this storage has no shared area")
		}
		a = s.shared
	} else {
		var err error
		if a, err = s.backend.Area(space); err != nil {
			return nil, err
		}
		defer a.Close()
	}
	c := &SpaceCheck{Space: space, Differences: []Difference{}}

	recs := map[string]*larder.File{}
	const page = 1000
	for after := ""; ; {
		fs, err := s.records.ListFiles(ctx, space, after, page)
		if err != nil {
			return nil, err
		}
		for _, f := range fs {
			recs[f.Path] = f
		}
		if len(fs) < page {
			break
		}
		after = fs[len(fs)-1].Path
	}
	c.Records = int64(len(recs))

	err := walk(a, "", func(p string, in Info) error {
		c.Objects++
		rec := recs[p]
		delete(recs, p)
		d := Difference{Kind: differs(rec, in), Path: p, StoredSize: in.Size, StoredVersion: in.Version}
		if d.Kind == NoRecord && space == "" {
			c.Unrecorded++
			return nil
		}
		if d.Kind == "" {
			return nil
		}
		if rec != nil {
			d.RecordSize, d.RecordVersion = rec.Size, rec.Version
		}
		c.Differences = append(c.Differences, d)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// What is left has no file: the walk saw every one.
	for p, rec := range recs {
		c.Differences = append(c.Differences, Difference{Kind: NoObject, Path: p, RecordSize: rec.Size, RecordVersion: rec.Version})
	}
	sortDifferences(c.Differences)

	if c.Uploads, err = a.Parts(); err != nil {
		return nil, err
	}
	if c.Uploads == nil {
		c.Uploads = []PartInfo{}
	}
	if s.id != "" {
		ins, err := s.records.Intents(ctx, s.id)
		if err != nil {
			return nil, err
		}
		for _, in := range ins {
			if in.Space == space {
				c.Pending = append(c.Pending, in)
			}
		}
	}

	if repair && len(c.Differences) > 0 {
		unlock := s.lock(space)
		defer unlock()
		for i := range c.Differences {
			d := &c.Differences[i]
			if err := s.repair(ctx, a, space, d); err != nil {
				d.RepairError = larder.ErrorMessage(err)
				continue
			}
			d.Repaired = true
		}
	}
	return c, nil
}

// differs returns the kind of difference between rec, the record of a
// file (nil if none), and in, what the backend says of it, or "" if the
// record is as good as it can be. A file whose content the backend does
// not identify (no Version: an object put without an ETag) is never
// trusted by any record, so a record of its size is all there can be.
func differs(rec *larder.File, in Info) string {
	switch {
	case rec == nil:
		return NoRecord
	case rec.Size != in.Size:
		return SizeDiffers
	case in.Version != "" && !matches(rec, in, false):
		return VersionDiffers
	}
	return ""
}

// repair makes the records of d's path follow what a holds there now, and
// checks that they do: a store may list a file by a name that does not
// reach it.
func (s *Service) repair(ctx context.Context, a Area, space string, d *Difference) error {
	if err := s.follow(ctx, a, space, d); err != nil {
		return err
	}
	in, err := a.Stat(d.Path)
	rec, rerr := s.records.FileByPath(ctx, space, d.Path)
	switch {
	case larder.ErrorCode(err) == larder.ENOTFOUND:
		if d.Kind != NoObject {
			return larder.Errorf(larder.EINTERNAL, "the storage lists this file but finds none by its name (a name it does not list as stored?); rename or remove it there")
		}
		if larder.ErrorCode(rerr) != larder.ENOTFOUND {
			return larder.Errorf(larder.EINTERNAL, "the record is still there (%v)", rerr)
		}
		return nil
	case err != nil:
		return err
	case in.Dir:
		return nil
	case rerr != nil:
		return rerr
	}
	if k := differs(rec, in); k != "" {
		return larder.Errorf(larder.EINTERNAL, "the record still differs (%s); the file may be changing: check again", k)
	}
	return nil
}

// follow makes the records of d's path follow what a holds there now.
func (s *Service) follow(ctx context.Context, a Area, space string, d *Difference) error {
	if d.Kind == NoObject {
		// A folder where the record says a file: reconcile keeps the
		// records below a folder, which are its files', and so this one
		// too. They all go, and the folder's files are recorded again.
		if in, err := a.Stat(d.Path); err == nil && in.Dir {
			if err := s.records.DeleteFiles(ctx, space, d.Path); err != nil {
				return err
			}
			return walk(a, d.Path, func(p string, _ Info) error { return s.reconcile(ctx, a, space, p) })
		}
	}
	return s.reconcile(ctx, a, space, d.Path)
}

// sortDifferences puts ds in the order of their paths.
func sortDifferences(ds []Difference) {
	slices.SortFunc(ds, func(x, y Difference) int { return strings.Compare(x.Path, y.Path) })
}

// walk calls f with every file below dir in a, depth first.
func walk(a Area, dir string, f func(p string, in Info) error) error {
	l, err := a.List(dir)
	if err != nil {
		return err
	}
	defer l.Close()
	for {
		ins, err := l.Next(256)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		for _, in := range ins {
			p := path.Join(dir, in.Name)
			if in.Dir {
				err = walk(a, p, f)
			} else {
				err = f(p, in)
			}
			if err != nil {
				return err
			}
		}
	}
}
