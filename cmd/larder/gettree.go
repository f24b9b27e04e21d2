package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/lnp"
)

// getTreeRoot returns where get -r puts the tree of remote: LOCALDIR
// itself, made if need be (as put -r does), LOCALDIR/NAME for a LOCALDIR
// that ends in a slash, ./NAME without LOCALDIR.
func getTreeRoot(remote, localDir string) (string, error) {
	name := path.Base(strings.TrimRight(remote, "/"))
	switch {
	case localDir != "" && !strings.HasSuffix(localDir, "/") && !strings.HasSuffix(localDir, string(filepath.Separator)):
		return localDir, nil
	case name == "." || name == "/" || name == "" || name == "..":
		return "", usageError("get -r %s: name the LOCALDIR to put it in", remote)
	}
	if err := safeName(name); err != nil {
		return "", usageError("get -r %s: %v; name the LOCALDIR to put it in", printable(remote), err)
	}
	return filepath.Join(localDir, name), nil
}

// getTree downloads the tree of the remote folder remote into the local
// folder root, made if need be.
func getTree(ctx context.Context, env *Env, s *lnpSession, tf transferFlags, remote, root string, opts client.DownloadOptions, keepMtime, asJSON bool) error {
	e, err := s.Stat(ctx, remote)
	if err != nil {
		return err
	}
	if !e.Dir {
		return usageError("get -r: %s is a file; get without -r fetches it", printable(remote))
	}
	switch fi, err := os.Stat(root); {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(root, 0o755); err != nil {
			return &localError{what: "get -r: cannot make the folder", err: err}
		}
	case err != nil:
		return &localError{what: "get -r: cannot use the folder", err: err}
	case !fi.IsDir():
		return usageError("get -r: %s is not a folder; name a LOCALDIR", root)
	}
	// Every file and folder of the tree is made through r, so that none
	// is made outside root even if a folder in it is replaced meanwhile.
	r, err := os.OpenRoot(root)
	if err != nil {
		return &localError{what: "get -r: cannot use the folder", err: err}
	}
	defer r.Close()
	opts.Root = r
	t := newTreeRun(env, "get", tf)
	jobs, total, err := t.planGet(ctx, s, remote, root, opts, keepMtime)
	return t.run(ctx, s, jobs, total, err, asJSON)
}

// planGet lists the remote tree, makes its folders in root, and returns a
// job for each file, with the bytes they hold. A name that could not be
// made safely inside root (see safeName, safeDir) is skipped.
func (t *treeRun) planGet(ctx context.Context, s *lnpSession, remote, root string, opts client.DownloadOptions, keepMtime bool) ([]treeJob, int64, error) {
	var (
		jobs  []treeJob
		total int64
	)
	top := strings.Trim(remote, "/") == ""
	queue := []string{"."}
	for len(queue) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		rel := queue[0]
		queue = queue[1:]
		rdir := path.Join(remote, rel)
		entries, err := s.ListAll(ctx, rdir)
		if err != nil {
			if _, ok := lnpStatus(err); !ok {
				return nil, 0, err
			}
			t.fail(ctx, rdir, err)
			continue
		}
		for _, e := range entries {
			rpath := path.Join(rdir, e.Name)
			if top && rel == "." && e.Name == "shared" && e.Dir {
				t.skip(rpath, "the course protocol's shared area is not fetched with your space; 'larder get -r /shared' fetches it")
				continue
			}
			if err := safeName(e.Name); err != nil {
				t.skip(rpath, err.Error())
				continue
			}
			crel := path.Join(rel, e.Name)
			if e.Dir {
				if err := safeDir(opts.Root, crel); err != nil {
					t.skip(rpath, err.Error())
					continue
				}
				queue = append(queue, crel)
				continue
			}
			total += int64(e.Size)
			e := e
			jobs = append(jobs, treeJob{do: func(ctx context.Context, w *sessionSlot) {
				t.getFile(ctx, w, rpath, root, crel, e, opts, keepMtime)
			}})
		}
	}
	return jobs, total, nil
}

// testHookTreeGet, if set, is called by getFile between its checks of
// where the file goes and the download: tests change the folder there,
// as another program could.
var testHookTreeGet func(local string)

// getFile downloads the file rpath, which e describes, to crel in root.
func (t *treeRun) getFile(ctx context.Context, w *sessionSlot, rpath, root, crel string, e lnp.Entry, opts client.DownloadOptions, keepMtime bool) {
	t.disp.started(rpath)
	var counted int64
	defer func() { t.disp.settled(int64(e.Size) - counted) }()
	rel, err := safeTarget(opts.Root, crel)
	if err != nil {
		t.skip(rpath, err.Error())
		return
	}
	local := filepath.Join(root, rel)
	if testHookTreeGet != nil {
		testHookTreeGet(local)
	}
	if fi, err := opts.Root.Lstat(rel); err == nil && fi.Mode().IsRegular() && (e.Size == 0 && fi.Size() == 0 || keepMtime && t.quickSame(&e, fi.Size(), fi.ModTime())) {
		// Download has no block to compare an empty file by; a file of
		// the server's size and time is taken as unchanged unread.
		t.mu.Lock()
		t.unchanged++
		t.mu.Unlock()
		return
	}
	opts.Progress = func(n int) { counted += int64(n); t.disp.add(int64(n)) }
	res, err := downloadOne(ctx, t.retrier, w, rpath, rel, opts, func() { t.disp.add(-counted); counted = 0 })
	switch {
	case errors.Is(err, client.ErrLocalDiffers):
		t.skip(rpath, fmt.Sprintf("%s exists here and differs (-f replaces it)", local))
		return
	case errors.Is(err, client.ErrForeignPart):
		t.skip(rpath, Message(err))
		return
	case err != nil:
		t.fail(ctx, rpath, err)
		return
	}
	if keepMtime {
		mod := res.Modified
		if mod.IsZero() {
			mod = e.Modified
		}
		if !mod.IsZero() {
			if err := opts.Root.Chtimes(rel, time.Time{}, mod); err != nil {
				t.disp.note("get %s: warning: its modification time could not be set: %v", local, err)
			}
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if res.UpToDate {
		t.unchanged++
		return
	}
	t.moved++
	t.bytes += int64(res.Size) - res.Kept
	if res.Kept > 0 {
		t.resumed++
	}
}

// safeName refuses a name from the server that cannot be one file's name
// inside the local folder: empty, "." or "..", with a separator, a NUL,
// control or other characters that are not printable (they could rewrite
// what a terminal shows), not UTF-8, or the suffix of larder's own
// partial downloads. The server refuses such names for new files; a
// server that is not larder, or a file placed on its disk by other
// means, may send them anyway.
func safeName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("the server sent the name %q, which names no file", name)
	case strings.ContainsAny(name, "/\\\x00"):
		return fmt.Errorf("the server sent a name with a separator, %s: never written outside the folder", printable(name))
	case !utf8.ValidString(name) || strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) >= 0:
		return errors.New("a name with characters that are not printable: not written")
	case strings.HasSuffix(name, client.PartSuffix):
		return fmt.Errorf("a name ending in %s, which larder keeps for its partial downloads: not written", client.PartSuffix)
	}
	return nil
}

// safeDir makes the folder rel (slash-separated, of names safeName
// took) inside root, and its parents, none of which may be a symbolic
// link or anything but a folder: a link planted in the tree would lead
// the files below it out of root (root itself stops that, but the
// files would land elsewhere than their place in the tree).
func safeDir(root *os.Root, rel string) error {
	p := ""
	for _, name := range strings.Split(rel, "/") {
		p = filepath.Join(p, name)
		fi, err := root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			if err = root.Mkdir(p, 0o755); err == nil || errors.Is(err, fs.ErrExist) {
				fi, err = root.Lstat(p)
			}
		}
		shown := filepath.Join(root.Name(), p)
		switch {
		case err != nil:
			return err
		case fi.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("%s is a symbolic link here: not followed", shown)
		case !fi.IsDir():
			return fmt.Errorf("%s is a file here, where a folder would go", shown)
		}
	}
	return nil
}

// safeTarget returns the local file of crel inside root, relative to
// it, after checking that none of its folders is a symbolic link, and
// that it is not one, nor a device or FIFO: those are written into by a
// get of one file, but a tree's files are files.
func safeTarget(root *os.Root, crel string) (string, error) {
	if dir := path.Dir(crel); dir != "." {
		p := ""
		for _, name := range strings.Split(dir, "/") {
			p = filepath.Join(p, name)
			fi, err := root.Lstat(p)
			shown := filepath.Join(root.Name(), p)
			switch {
			case err != nil:
				return "", err
			case fi.Mode()&fs.ModeSymlink != 0:
				return "", fmt.Errorf("%s is a symbolic link here: not followed", shown)
			case !fi.IsDir():
				return "", fmt.Errorf("%s is no longer a folder (%s)", shown, name)
			}
		}
	}
	rel := filepath.FromSlash(crel)
	local := filepath.Join(root.Name(), rel)
	fi, err := root.Lstat(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return rel, nil
	case err != nil:
		return "", err
	case fi.Mode()&fs.ModeSymlink != 0:
		return "", fmt.Errorf("%s is a symbolic link here: neither followed nor replaced", local)
	case !fi.Mode().IsRegular():
		return "", fmt.Errorf("%s is %s here, not a regular file: not written", local, client.KindOf(fi.Mode()))
	}
	return rel, nil
}

// getTreeCommand is get -r: it checks where the tree goes before it
// connects.
func getTreeCommand(ctx context.Context, env *Env, f *lnpFlags, tf transferFlags, remote, localDir string, opts client.DownloadOptions, keepMtime, asJSON bool) error {
	root, err := getTreeRoot(remote, localDir)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(root); err == nil && !fi.IsDir() {
		return usageError("get -r: %s is not a folder; name a LOCALDIR", root)
	}
	ctx, s, err := f.connect(ctx, env)
	if err != nil {
		return err
	}
	defer s.Close()
	return sessionError(getTree(ctx, env, s, tf, remote, root, opts, keepMtime, asJSON))
}
