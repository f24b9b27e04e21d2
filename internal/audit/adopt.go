package audit

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/larderfs/larder/internal/flock"
)

// adopt scans the spool folder for the folders of other Logs that no
// process holds (a crashed server's, a command's that exited before it
// could deliver), locks them, cuts their torn tails and queues them for
// delivery, oldest first. It runs in Open and then in the deliverer.
func (l *Log) adopt() {
	if l.cfg.NoAdopt {
		return
	}
	d := &l.dl
	entries, err := os.ReadDir(l.cfg.Dir)
	if err != nil {
		l.log.Error("audit: cannot scan the spool folder", "dir", l.cfg.Dir, "err", err)
		return
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case !e.IsDir(), name == l.own.name, d.held[name]:
		case strings.HasPrefix(name, ".tmp-"):
			l.removeHalfMade(name)
		case isWriterID(name):
			if s := l.adoptFolder(name); s != nil {
				d.held[name] = true
				d.adopted = append(d.adopted, s)
			}
		}
	}
	slices.SortFunc(d.adopted, func(a, b *source) int { return strings.Compare(a.name, b.name) })
}

// adoptFolder locks folder name and readies it for delivery, or returns
// nil if another process holds it or it is gone.
func (l *Log) adoptFolder(name string) *source {
	dir := filepath.Join(l.cfg.Dir, name)
	lockPath := filepath.Join(dir, lockName)
	// O_CREATE: a folder whose owner was removing it when it died may have
	// lost its LOCK already.
	lock, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			l.log.Error("audit: cannot open a spool folder's lock", "path", lockPath, "err", err)
		}
		return nil
	}
	ok, err := flock.TryLock(lock)
	if ok {
		// The lock is worth something only if the file is still the
		// folder's: its owner may have removed it since we opened it.
		fi, err1 := lock.Stat()
		fi2, err2 := os.Stat(lockPath)
		ok = err1 == nil && err2 == nil && os.SameFile(fi, fi2)
	}
	if !ok {
		if err != nil {
			l.log.Error("audit: cannot lock a spool folder", "path", lockPath, "err", err)
		}
		lock.Close()
		return nil
	}
	s := &source{name: name, dir: dir, lock: lock}
	seqs, err := listSegments(dir)
	if err != nil {
		l.log.Error("audit: cannot list a spool folder", "dir", dir, "err", err)
		lock.Close()
		return nil
	}
	for i, seq := range seqs {
		path := segPath(dir, seq)
		var size int64
		if i == len(seqs)-1 {
			size, err = l.repairTail(s, path)
		} else {
			var fi os.FileInfo
			if fi, err = os.Stat(path); err == nil {
				size = fi.Size()
			}
		}
		switch {
		case err != nil:
			l.log.Error("audit: cannot read a spool segment; it stays for the next start", "path", path, "err", err)
			lock.Close()
			return nil
		case size >= 0:
			s.segs = append(s.segs, segment{seq: seq, size: size})
			l.stats.spoolBytes.Add(size)
			l.stats.segments.Add(1)
		}
	}
	l.stats.adopted.Add(1)
	var bytes int64
	for _, sg := range s.segs {
		bytes += sg.size
	}
	l.log.Info("audit: adopted a spool folder left by another process", "folder", dir,
		"segments", len(s.segs), "bytes", bytes)
	return s
}

// repairTail cuts the torn tail of the newest segment of an adopted
// folder, the only place a crash can tear: a record cut short, or one that
// fails its checksum, and all after it. It returns the segment's size
// after the cut, or -1 if it removed the segment (a crash while it was
// created: shorter than a header).
//
// A tail longer than one batch cannot be a torn write (the writer syncs
// each batch before it writes the next), so such a segment is copied to
// DIR/quarantine before it is cut, and that is logged as an error.
func (l *Log) repairTail(s *source, path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := fi.Size()
	if size < headerSize {
		if err := os.Remove(path); err != nil {
			return 0, err
		}
		l.stats.tornBytes.Add(size)
		l.log.Warn("audit: removed a spool segment torn while it was created", "path", path, "bytes", size)
		return -1, nil
	}
	if err := readHeader(f); err != nil {
		return size, nil // the deliverer sets it aside
	}
	good, err := goodEnd(f, size)
	if err != nil || good == size {
		return size, err
	}
	cut := size - good
	attrs := []any{"path", path, "cut_at", good, "bytes_cut", cut}
	if cut > maxTornTail {
		to, err := quarantinePath(filepath.Join(l.cfg.Dir, quarantineName), s.name+"-"+filepath.Base(path))
		if err == nil {
			err = copyFile(f, to)
		}
		l.log.Error("audit: a damaged spool segment tail is longer than a torn write can be; a copy is set aside",
			append(attrs, "copy", to, "copy_err", err)...)
	}
	if err := f.Truncate(good); err != nil {
		return 0, err
	}
	if err := datasync(f); err != nil {
		return 0, err
	}
	l.stats.tornBytes.Add(cut)
	l.log.Warn("audit: cut the torn tail of a spool segment", attrs...)
	return good, nil
}

// copyFile copies f whole to a new file at path, synced.
func copyFile(f *os.File, path string) error {
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, io.NewSectionReader(f, 0, 1<<62))
	if err == nil {
		err = out.Sync()
	}
	if err1 := out.Close(); err == nil {
		err = err1
	}
	if err == nil {
		err = flock.SyncDir(filepath.Dir(path))
	}
	return err
}

// removeHalfMade removes a folder that a Log died while creating (see
// createOwn), unless that Log is alive and still at it.
func (l *Log) removeHalfMade(name string) {
	dir := filepath.Join(l.cfg.Dir, name)
	lock, err := os.Open(filepath.Join(dir, lockName))
	if err != nil {
		// Being made this instant, or its maker died before it made the
		// LOCK: then it is empty, and old.
		if fi, err := os.Stat(dir); err == nil && time.Since(fi.ModTime()) > time.Minute {
			os.Remove(dir)
		}
		return
	}
	defer lock.Close()
	if ok, _ := flock.TryLock(lock); ok {
		// No event is ever written before the folder is renamed into
		// place: there is nothing in it to lose.
		os.RemoveAll(dir)
	}
}

// listSegments returns the numbers of the segments in dir, in order.
func listSegments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, e := range entries {
		num, ok := strings.CutSuffix(e.Name(), ".seg")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		if seq, err := strconv.ParseUint(num, 10, 64); err == nil {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	return seqs, nil
}
