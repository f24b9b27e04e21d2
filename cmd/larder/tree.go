package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/lnp"
	"golang.org/x/text/unicode/norm"
)

// treeRun is one recursive put, get or rm: its display, its retries and
// parallel sessions, and what came of each file.
type treeRun struct {
	verb      string // "put", "get", "rm"
	env       *Env
	disp      *treeDisplay
	retrier   *retrier
	transfers int

	mu sync.Mutex
	// active is how many files are being moved now, limit how many may
	// be: --transfers, lowered when the server says BUSY to one of them
	// (see yield). changed is signalled when either changes.
	active, limit int
	changed       *sync.Cond
	limited       bool  // the lower limit was said
	moved         int   // files transferred (or removed)
	folders       int   // folders removed (rm)
	bytes         int64 // bytes sent or received by this run
	unchanged     int   // files that were there already, the same
	resumed       int   // files that went on from an interrupted transfer
	skipped       []treeNote
	failed        []treeNote
}

// A treeNote is a file skipped or failed, and why.
type treeNote struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
	err    error
}

func newTreeRun(env *Env, verb string, tf transferFlags) *treeRun {
	t := &treeRun{verb: verb, env: env, disp: newTreeDisplay(env, time.Now), transfers: max(tf.transfers, 1)}
	t.limit = t.transfers
	t.changed = sync.NewCond(&t.mu)
	t.retrier = newRetrier(tf.retries, func(msg string) { t.disp.note("%s %s", verb, msg) })
	t.retrier.yield = t.yield
	return t
}

// acquire waits until one more file may be moved, and counts it; it
// reports false if ctx ended first.
func (t *treeRun) acquire(ctx context.Context) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.active >= t.limit && ctx.Err() == nil {
		t.changed.Wait()
	}
	if ctx.Err() != nil {
		return false
	}
	t.active++
	return true
}

func (t *treeRun) release() {
	t.mu.Lock()
	t.active--
	t.mu.Unlock()
	t.changed.Broadcast()
}

// yield is the retrier's at a BUSY: with other files of this command
// under way, the server's limit of transfers (or sessions) per account is
// below --transfers, and the command itself is what made it busy. The
// limit is lowered to what the server took, once said, and the file
// waits for its turn instead of using up its retries.
func (t *treeRun) yield(ctx context.Context) bool {
	t.mu.Lock()
	if t.active <= 1 {
		t.mu.Unlock()
		return false // someone else's transfers: a BUSY to retry later
	}
	t.active--
	if t.limit > t.active {
		t.limit = max(t.active, 1)
		if !t.limited {
			t.limited = true
			defer t.disp.note("%s: the server takes fewer transfers at once for this account than --transfers %d: the other files wait for their turn", t.verb, t.transfers)
		}
	}
	for t.active >= t.limit && ctx.Err() == nil {
		t.changed.Wait()
	}
	t.active++
	t.mu.Unlock()
	t.changed.Broadcast()
	return ctx.Err() == nil
}

// skip notes a file left alone, and why.
func (t *treeRun) skip(name, reason string) {
	t.mu.Lock()
	t.skipped = append(t.skipped, treeNote{Path: name, Reason: reason})
	t.mu.Unlock()
	t.disp.note("%s %s: skipped: %s", t.verb, printable(name), reason)
}

// fail notes a file that failed, unless the run was interrupted, which is
// no failure of the file's.
func (t *treeRun) fail(ctx context.Context, name string, err error) {
	if ctx.Err() != nil {
		return
	}
	err = sessionError(err)
	t.mu.Lock()
	t.failed = append(t.failed, treeNote{Path: name, Reason: Message(err), err: err})
	t.mu.Unlock()
	t.disp.note("%s %s: failed: %s", t.verb, printable(name), Message(err))
}

// A treeJob is one file of a tree to move or remove.
type treeJob struct {
	do func(ctx context.Context, w *sessionSlot)
}

// work runs jobs on up to t.transfers sessions at once: s's own, and more
// opened with s's credential as they are needed. It returns when every
// job is done, or, once ctx ends, those under way are.
func (t *treeRun) work(ctx context.Context, s *lnpSession, jobs []treeJob) {
	ch := make(chan treeJob)
	var wg sync.WaitGroup
	for i := range min(t.transfers, len(jobs)) {
		w := &sessionSlot{open: s.reopen}
		if i == 0 {
			w.s = s.Session
		}
		wg.Go(func() {
			defer w.close()
			for j := range ch {
				if !t.acquire(ctx) {
					continue
				}
				j.do(ctx, w)
				t.release()
			}
		})
	}
	// Waiters in acquire and yield wake up to an interruption.
	stop := context.AfterFunc(ctx, t.changed.Broadcast)
	defer stop()
feed:
	for _, j := range jobs {
		select {
		case ch <- j:
		case <-ctx.Done():
			break feed
		}
	}
	close(ch)
	wg.Wait()
}

// treeError is a recursive command of which some files failed: it exits
// with the first failure's code.
type treeError struct {
	verb          string
	failed, files int
	first         treeNote
}

func (e *treeError) Error() string {
	return fmt.Sprintf("%s -r: %d of %d files failed (listed above); the first, %s: %v", e.verb, e.failed, e.files, printable(e.first.Path), e.first.err)
}
func (e *treeError) Unwrap() error { return e.first.err }

// treeJSON is what put -r, get -r and rm -r print with --json.
type treeJSON struct {
	Files     int        `json:"files"` // transferred, or removed
	Folders   int        `json:"folders,omitempty"`
	Bytes     int64      `json:"bytes"`
	Seconds   float64    `json:"seconds"`
	Unchanged int        `json:"unchanged"`
	Resumed   int        `json:"resumed"`
	Skipped   []treeNote `json:"skipped"`
	Failed    []treeNote `json:"failed"`
	Stopped   bool       `json:"interrupted,omitempty"`
}

// finish clears the display, prints the summary, and returns the run's
// error: the interruption, or the first failure.
func (t *treeRun) finish(ctx context.Context, files int, asJSON bool) error {
	t.disp.close()
	el := t.disp.elapsed()
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	switch t.verb {
	case "rm":
		fmt.Fprintf(&b, "rm: removed %s and %s in %s", plural(t.moved, "file"), plural(t.folders, "folder"), formatElapsed(el))
	default:
		fmt.Fprintf(&b, "%s: %s (%s) in %s", t.verb, plural(t.moved, "file"), formatBytes(t.bytes), formatElapsed(el))
		if s := el.Seconds(); s > 0 && t.bytes > 0 {
			fmt.Fprintf(&b, ", %s/s", formatBytes(int64(float64(t.bytes)/s)))
		}
		fmt.Fprintf(&b, "; %d unchanged, %d resumed", t.unchanged, t.resumed)
	}
	fmt.Fprintf(&b, ", %d skipped, %d failed", len(t.skipped), len(t.failed))
	if ctx.Err() != nil {
		b.WriteString("; interrupted: the same command goes on from there")
	}
	fmt.Fprintln(t.env.Stderr, "larder: "+b.String())
	if asJSON {
		j := treeJSON{Files: t.moved, Folders: t.folders, Bytes: t.bytes, Seconds: el.Seconds(), Unchanged: t.unchanged, Resumed: t.resumed,
			Skipped: t.skipped, Failed: t.failed, Stopped: ctx.Err() != nil}
		if j.Skipped == nil {
			j.Skipped = []treeNote{}
		}
		if j.Failed == nil {
			j.Failed = []treeNote{}
		}
		if err := writeJSON(t.env.Stdout, j); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(t.failed) > 0 {
		return &treeError{verb: t.verb, failed: len(t.failed), files: files, first: t.failed[0]}
	}
	return nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// formatElapsed renders a duration to the tenth of a second under a
// minute, as formatLeft does above.
func formatElapsed(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return formatLeft(d)
}

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
func putTree(ctx context.Context, env *Env, s *lnpSession, tf transferFlags, local, root string, overwrite, noResume, asJSON bool) error {
	t := newTreeRun(env, "put", tf)
	if err := mkdir(ctx, s, root, true); err != nil {
		if st, ok := lnpStatus(err); ok && st == lnp.StatusConflict {
			return &hintError{err: err, hint: fmt.Sprintf("%s is a file on the server; name another REMOTE", printable(root))}
		}
		return err
	}
	jobs, total, err := t.planPut(ctx, s, local, root, overwrite, noResume)
	return t.run(ctx, s, jobs, total, err, asJSON)
}

// run moves the files of jobs, total bytes, that planning found, unless
// it failed with err, and sums up.
func (t *treeRun) run(ctx context.Context, s *lnpSession, jobs []treeJob, total int64, err error, asJSON bool) error {
	if err != nil {
		t.disp.close()
		return err
	}
	t.disp.plan(len(jobs), total)
	t.work(ctx, s, jobs)
	return t.finish(ctx, len(jobs), asJSON)
}

// planPut walks the local tree, makes the folders it lacks on the server,
// and returns a job for each regular file, with the bytes they hold.
// Symbolic links are never followed: larder puts what is in the tree.
func (t *treeRun) planPut(ctx context.Context, s *lnpSession, local, root string, overwrite, noResume bool) ([]treeJob, int64, error) {
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
	// (a trailing separator makes the walk's Lstat follow it); the
	// links in it are not.
	walkRoot := local
	if !strings.HasSuffix(walkRoot, string(filepath.Separator)) {
		walkRoot += string(filepath.Separator)
	}
	err := filepath.WalkDir(walkRoot, func(p string, d fs.DirEntry, err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			t.fail(ctx, p, &localError{what: "put: cannot read", err: err})
			if d != nil && d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(local, p)
		if err != nil || rel == "." {
			return err
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
			t.putFile(ctx, w, p, fi, rpath, existing, overwrite, noResume)
		}})
		return nil
	})
	return jobs, total, err
}

// putFile uploads the local file p, as the walk found it (fi), to rpath,
// which existing describes if the server has it.
func (t *treeRun) putFile(ctx context.Context, w *sessionSlot, p string, fi fs.FileInfo, rpath string, existing *lnp.Entry, overwrite, noResume bool) {
	t.disp.started(p)
	settled := fi.Size()
	defer func() { t.disp.settled(settled) }()
	f, err := os.Open(p)
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
		if !overwrite {
			t.skip(p, fmt.Sprintf("%s exists on the server and differs (-f replaces it)", printable(rpath)))
			return
		}
	}
	var counted, resumedAt int64
	u := upload{remote: rpath, src: f, size: size, restart: true,
		opts:     client.PutOptions{Overwrite: existing != nil, Resume: !noResume, Resumed: func(off int64) { resumedAt = off }},
		progress: func(n int) { counted += int64(n); t.disp.add(int64(n)) },
		reset:    func() { t.disp.add(-counted); counted, resumedAt = 0, 0 },
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
				if err := safeDir(root, crel); err != nil {
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

// getFile downloads the file rpath, which e describes, to crel in root.
func (t *treeRun) getFile(ctx context.Context, w *sessionSlot, rpath, root, crel string, e lnp.Entry, opts client.DownloadOptions, keepMtime bool) {
	t.disp.started(rpath)
	var counted int64
	defer func() { t.disp.settled(int64(e.Size) - counted) }()
	local, err := safeTarget(root, crel)
	if err != nil {
		t.skip(rpath, err.Error())
		return
	}
	if fi, err := os.Lstat(local); err == nil && e.Size == 0 && fi.Mode().IsRegular() && fi.Size() == 0 {
		// Download has no block to compare an empty file by.
		t.mu.Lock()
		t.unchanged++
		t.mu.Unlock()
		return
	}
	opts.Progress = func(n int) { counted += int64(n); t.disp.add(int64(n)) }
	res, err := downloadOne(ctx, t.retrier, w, rpath, local, opts, func() { t.disp.add(-counted); counted = 0 })
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
			if err := os.Chtimes(local, time.Time{}, mod); err != nil {
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
// the files below it out of root.
func safeDir(root, rel string) error {
	p := root
	for _, name := range strings.Split(rel, "/") {
		p = filepath.Join(p, name)
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			if err = os.Mkdir(p, 0o755); err == nil || errors.Is(err, fs.ErrExist) {
				fi, err = os.Lstat(p)
			}
		}
		switch {
		case err != nil:
			return err
		case fi.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("%s is a symbolic link here: not followed", p)
		case !fi.IsDir():
			return fmt.Errorf("%s is a file here, where a folder would go", p)
		}
	}
	return nil
}

// safeTarget returns the local file of crel inside root, after checking
// that none of its folders is a symbolic link, and that it is not one,
// nor a device or FIFO: those are written into by a get of one file, but
// a tree's files are files.
func safeTarget(root, crel string) (string, error) {
	if dir := path.Dir(crel); dir != "." {
		for i, name := range strings.Split(dir, "/") {
			p := filepath.Join(append([]string{root}, strings.Split(dir, "/")[:i+1]...)...)
			fi, err := os.Lstat(p)
			switch {
			case err != nil:
				return "", err
			case fi.Mode()&fs.ModeSymlink != 0:
				return "", fmt.Errorf("%s is a symbolic link here: not followed", p)
			case !fi.IsDir():
				return "", fmt.Errorf("%s is no longer a folder (%s)", p, name)
			}
		}
	}
	local := filepath.Join(root, filepath.FromSlash(crel))
	fi, err := os.Lstat(local)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return local, nil
	case err != nil:
		return "", err
	case fi.Mode()&fs.ModeSymlink != 0:
		return "", fmt.Errorf("%s is a symbolic link here: neither followed nor replaced", local)
	case !fi.Mode().IsRegular():
		return "", fmt.Errorf("%s is %s here, not a regular file: not written", local, client.KindOf(fi.Mode()))
	}
	return local, nil
}

// rmTree removes the file or folder p and, for a folder, everything in
// it. The top of the space is refused without wholeSpace, and the shared
// area always: no one may change it over LNP/1.
func rmTree(ctx context.Context, env *Env, s *lnpSession, tf transferFlags, p string, wholeSpace, asJSON bool) error {
	clean := strings.Trim(p, "/")
	first, _, _ := strings.Cut(clean, "/")
	switch {
	case p == "":
		return usageError("rm -r: an empty PATH (a variable that was not set?); the top of your space is \"/\"")
	case clean == "" && !wholeSpace:
		return usageError("rm -r %s would remove every file and folder of your space: pass --whole-space as well to mean it", p)
	case first == "shared":
		return usageError("rm -r %s: the shared area is the course protocol's, read-only over LNP/1; nothing in it can be removed", p)
	}
	t := newTreeRun(env, "rm", tf)
	var (
		jobs    []treeJob
		folders []string // deepest last
	)
	target := path.Join("/", clean)
	queue := []string{target}
	if clean != "" {
		e, err := s.Stat(ctx, target)
		if err != nil {
			return err
		}
		if e.Dir {
			folders = append(folders, target)
		} else {
			queue, jobs = nil, append(jobs, t.rmJob(target))
		}
	}
	for len(queue) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		dir := queue[0]
		queue = queue[1:]
		entries, err := s.ListAll(ctx, dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			rpath := path.Join(dir, e.Name)
			switch {
			case dir == "/" && e.Name == "shared":
			case e.Dir:
				folders = append(folders, rpath)
				queue = append(queue, rpath)
			default:
				jobs = append(jobs, t.rmJob(rpath))
			}
		}
	}
	t.disp.plan(len(jobs), 0)
	t.work(ctx, s, jobs)
	// The folders, deepest first, on a session of the command's: one
	// whose files failed is not empty, and fails in turn.
	w := &sessionSlot{s: s.Session, open: s.reopen}
	defer w.close()
	slices.SortStableFunc(folders, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	for _, dir := range folders {
		if ctx.Err() != nil {
			break
		}
		err := t.retrier.do(ctx, w, dir, func(s *client.Session, _ int) error { return s.Delete(ctx, dir) })
		if err != nil {
			t.fail(ctx, dir, err)
			continue
		}
		t.mu.Lock()
		t.folders++
		t.mu.Unlock()
	}
	return t.finish(ctx, len(jobs), asJSON)
}

// rmJob is the job of removing the file rpath.
func (t *treeRun) rmJob(rpath string) treeJob {
	return treeJob{do: func(ctx context.Context, w *sessionSlot) {
		t.disp.started(rpath)
		defer t.disp.settled(0)
		err := t.retrier.do(ctx, w, rpath, func(s *client.Session, attempt int) error {
			err := s.Delete(ctx, rpath)
			if st, ok := lnpStatus(err); ok && st == lnp.StatusNotFound && attempt > 0 {
				return nil // removed by the try whose reply was lost
			}
			return err
		})
		if err != nil {
			t.fail(ctx, rpath, err)
			return
		}
		t.mu.Lock()
		t.moved++
		t.mu.Unlock()
	}}
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
