package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/lnp"
	"golang.org/x/text/unicode/norm"
)

// putTreeRoot returns where put -r puts the tree of local: REMOTE itself
// (the copy of LOCALDIR, made if need be, as sftp's put -r and rclone copy
// do, so that running the command again puts the files in the same
// place), REMOTE/NAME for a REMOTE that ends in a slash, /NAME without
// REMOTE.
func putTreeRoot(local string, pos []string) (string, error) {
	abs, err := filepath.Abs(local)
	if err != nil {
		return "", err
	}
	name := norm.NFC.String(filepath.Base(abs))
	switch {
	case len(pos) == 2 && !strings.HasSuffix(pos[1], "/"):
		return pos[1], nil
	case name == "/" || name == string(filepath.Separator) || name == ".":
		return "", usageError("put -r %s: name the REMOTE folder to put it in", local)
	case len(pos) == 2:
		return path.Join(pos[1], name), nil
	}
	return "/" + name, nil
}

// putTree uploads the tree of the local folder local into the folder
// root, made if need be.
// putTreeOptions are put -r's flags that shape each file's upload.
type putTreeOptions struct {
	overwrite, noResume, noMtime, asJSON bool
	// root is LOCALDIR, through which the tree is read: nothing outside
	// it is listed or sent, even if a folder in it is replaced meanwhile
	// by a symbolic link.
	root *os.Root
}

func putTree(ctx context.Context, env *Env, s *lnpSession, tf transferFlags, local, root string, o putTreeOptions) error {
	t := newTreeRun(env, "put", tf)
	if err := mkdir(ctx, s, root, true); err != nil {
		return withHint(err, map[lnp.Status]string{lnp.StatusConflict: fmt.Sprintf("%s is a file on the server; name another REMOTE", printable(root))})
	}
	r, err := os.OpenRoot(local)
	if err != nil {
		return &localError{what: "put -r: cannot read the folder", err: err}
	}
	defer r.Close()
	o.root = r
	jobs, total, err := t.planPut(ctx, s, local, root, o)
	return t.run(ctx, s, jobs, total, err, o.asJSON)
}

// testHookPutWalk, if set, is called by planPut on each file and folder
// of the tree before it is read: tests change the tree there, as another
// program could.
var testHookPutWalk func(p string)

// planPut walks the local tree, makes the folders it lacks on the server,
// and returns a job for each regular file, with the bytes they hold.
// Symbolic links are never followed: larder puts what is in the tree.
func (t *treeRun) planPut(ctx context.Context, s *lnpSession, local, root string, o putTreeOptions) ([]treeJob, int64, error) {
	// The entries of each remote folder that existed before.
	listings := make(map[string]map[string]lnp.Entry)
	list := func(dir string) error {
		entries, err := s.ListAll(ctx, dir)
		if err != nil {
			return err
		}
		m := make(map[string]lnp.Entry, len(entries))
		for _, e := range entries {
			m[e.Name] = e
		}
		listings[dir] = m
		return nil
	}
	if err := list(root); err != nil {
		return nil, 0, err
	}
	var (
		jobs  []treeJob
		total int64
	)
	// LOCALDIR itself is followed if it is a link, as the user named it
	// (o.root was opened through it); the links in it are not.
	err := fs.WalkDir(o.root.FS(), ".", func(slashRel string, d fs.DirEntry, err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p := filepath.Join(local, filepath.FromSlash(slashRel))
		if testHookPutWalk != nil {
			testHookPutWalk(p)
		}
		if err != nil {
			t.fail(ctx, p, &localError{what: "put: cannot read", err: err})
			if d != nil && d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel := filepath.FromSlash(slashRel)
		if rel == "." {
			return nil
		}
		rdir := path.Join(root, norm.NFC.String(filepath.ToSlash(filepath.Dir(rel))))
		rpath := path.Join(rdir, norm.NFC.String(d.Name()))
		e, exists := listings[rdir][norm.NFC.String(d.Name())]
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			t.skip(p, "a symbolic link: not followed")
			return nil
		case d.IsDir() && exists && !e.Dir:
			t.fail(ctx, p, fmt.Errorf("put: %s is a file on the server, where the folder would go", printable(rpath)))
			return filepath.SkipDir
		case d.IsDir() && exists:
			return list(rpath)
		case d.IsDir():
			if err := s.Mkdir(ctx, rpath); err != nil {
				if _, ok := lnpStatus(err); !ok {
					return err // the connection, not this folder
				}
				t.fail(ctx, p, err)
				return filepath.SkipDir
			}
			listings[rpath] = nil
			return nil
		case !d.Type().IsRegular():
			t.skip(p, client.KindOf(d.Type())+": not a regular file")
			return nil
		case exists && e.Dir:
			t.fail(ctx, p, fmt.Errorf("put: %s is a folder on the server, where the file would go", printable(rpath)))
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			t.fail(ctx, p, &localError{what: "put: cannot read", err: err})
			return nil
		}
		var existing *lnp.Entry
		if exists {
			existing = &e
		}
		total += fi.Size()
		jobs = append(jobs, treeJob{do: func(ctx context.Context, w *sessionSlot) {
			t.putFile(ctx, w, p, rel, fi, rpath, existing, o)
		}})
		return nil
	})
	return jobs, total, err
}

// putFile uploads the local file p (rel in o.root), as the walk found it
// (fi), to rpath, which existing describes if the server has it.
func (t *treeRun) putFile(ctx context.Context, w *sessionSlot, p, rel string, fi fs.FileInfo, rpath string, existing *lnp.Entry, o putTreeOptions) {
	t.disp.started(p)
	settled := fi.Size()
	defer func() { t.disp.settled(settled) }()
	f, err := o.root.OpenFile(rel, os.O_RDONLY|openNonBlock, 0)
	if err != nil {
		t.fail(ctx, p, &localError{what: "put: cannot read", err: err})
		return
	}
	defer f.Close()
	// What was opened, not what the walk saw: a link put in its place
	// meanwhile is not followed.
	ofi, err := f.Stat()
	if err != nil || !ofi.Mode().IsRegular() || !os.SameFile(fi, ofi) {
		t.skip(p, "replaced while the tree was read: not sent")
		return
	}
	size := ofi.Size()
	settled = size
	if existing != nil {
		if t.quickSame(existing, size, ofi.ModTime()) {
			t.mu.Lock()
			t.unchanged++
			t.mu.Unlock()
			return
		}
		if existing.Size == uint64(size) && existing.SHA256 != ([32]byte{}) {
			sum, err := hashOf(f, size)
			if err != nil {
				t.fail(ctx, p, &localError{what: "put: cannot read", err: err})
				return
			}
			if sum == existing.SHA256 {
				t.mu.Lock()
				t.unchanged++
				t.mu.Unlock()
				return
			}
		}
		if !o.overwrite {
			t.skip(p, fmt.Sprintf("%s exists on the server and differs (-f replaces it)", printable(rpath)))
			return
		}
	}
	var counted, resumedAt int64
	u := upload{remote: rpath, src: f, size: size, restart: true,
		opts:     client.PutOptions{Overwrite: existing != nil, Resume: !o.noResume, Resumed: func(off int64) { resumedAt = off }},
		progress: func(n int) { counted += int64(n); t.disp.add(int64(n)) },
		reset:    func() { t.disp.add(-counted); counted, resumedAt = 0, 0 },
	}
	if !o.noMtime {
		var note string
		if u.opts.Modified, note = keptModTime(ofi.ModTime()); note != "" {
			t.disp.note("%s %s: %s", t.verb, printable(p), note)
		}
	}
	_, err = putOne(ctx, t.retrier, w, u)
	settled = size - counted
	if err != nil {
		t.fail(ctx, p, err)
		return
	}
	t.mu.Lock()
	t.moved++
	t.bytes += size - resumedAt
	if resumedAt > 0 {
		t.resumed++
	}
	t.mu.Unlock()
}

// quickSame reports whether the file on the server, e, and one here of
// size bytes last changed at mod pass the quick check that lets a tree's
// rerun skip it without reading it: the same size and modification time
// (put -r gives the server its files' times, get -r takes the server's),
// as rsync's default. --checksum turns it off.
func (t *treeRun) quickSame(e *lnp.Entry, size int64, mod time.Time) bool {
	return !t.checksum && !e.Dir && e.Size == uint64(size) && !e.Modified.IsZero() && e.Modified.Equal(mod)
}

// putTreeArgs checks the arguments of put -r before the password is asked
// for: LOCALDIR is a folder.
func putTreeArgs(pos []string) error {
	if pos[0] == "-" {
		return usageError("put -r takes a folder, not standard input")
	}
	fi, err := os.Stat(pos[0])
	if err != nil {
		return &localError{what: "put -r: cannot read the local folder", err: err}
	}
	if !fi.IsDir() {
		return usageError("put -r: %s is not a folder; put without -r sends a file", pos[0])
	}
	return nil
}
