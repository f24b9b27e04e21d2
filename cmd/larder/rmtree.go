package main

import (
	"context"
	"path"
	"slices"
	"strings"

	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/lnp"
)

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
	if s.Features()&lnp.FeatureTreeDelete != 0 {
		return rmAtOnce(ctx, env, s, tf, clean, asJSON)
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

// rmAtOnce removes clean, a file or a folder with everything in it, with
// one recursive DELETE, on a session granted it; the top of the space
// ("", which the server refuses to remove whole) goes as each of its
// entries does, the shared area aside.
func rmAtOnce(ctx context.Context, env *Env, s *lnpSession, tf transferFlags, clean string, asJSON bool) error {
	t := newTreeRun(env, "rm", tf)
	targets := []string{path.Join("/", clean)}
	if clean == "" {
		entries, err := s.ListAll(ctx, "/")
		if err != nil {
			return err
		}
		targets = targets[:0]
		for _, e := range entries {
			if e.Name != "shared" {
				targets = append(targets, path.Join("/", e.Name))
			}
		}
	}
	w := &sessionSlot{s: s.Session, open: s.reopen}
	defer w.close()
	for _, target := range targets {
		if ctx.Err() != nil {
			break
		}
		var r lnp.DeleteReply
		err := t.retrier.do(ctx, w, target, func(s *client.Session, attempt int) error {
			part, err := s.DeleteTree(ctx, target)
			// A try cut after a part counts the part: the next goes on.
			r.Add(part)
			if st, ok := lnpStatus(err); ok && st == lnp.StatusNotFound && attempt > 0 {
				return nil // removed by the try whose reply was lost
			}
			return err
		})
		if err != nil {
			if clean != "" {
				// One target: its error is the command's, as a
				// missing PATH is on the walk.
				t.disp.close()
				return err
			}
			t.fail(ctx, target, err)
			continue
		}
		t.mu.Lock()
		t.moved += int(r.Files)
		t.folders += int(r.Folders)
		t.bytes += int64(r.Bytes)
		t.mu.Unlock()
	}
	return t.finish(ctx, 0, asJSON)
}
