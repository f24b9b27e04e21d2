package auth

import (
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
)

// pepperReload is a Hasher's state for reloading its pepper file.
type pepperReload struct {
	mu     sync.Mutex  // serialises reloads
	bad    os.FileInfo // a changed file that did not load; under mu
	logger atomic.Pointer[slog.Logger]
}

// SetLogger makes h log each reload of its pepper file, and each changed
// file it could not load, to l.
func (h *Hasher) SetLogger(l *slog.Logger) { h.reload.logger.Store(l) }

// Peppers returns the peppers h uses now: those of its pepper file as last
// read, or nil if h has none.
func (h *Hasher) Peppers() *Peppers { return h.peppers.Load() }

// ReloadPeppers reads h's pepper file again, now, and uses its peppers from
// then on: the last is current for new hashes, and every one is used to
// check the hashes that name it. If the file does not load, h keeps the
// peppers it has and the error says why. A Hasher whose peppers were not
// read from a file (nil, or built by a test) has nothing to reload.
//
// A Hasher also reloads by itself, so that a pepper rotated by an
// administrator is used without a restart: when it meets a stored hash that
// names a pepper it does not know, and before it makes a hash or judges
// whether one is current, if the file changed (its identity, size or
// time). That costs one stat, beside a slow hash that costs ten thousand
// times more. Any pepper file that loads is taken: one that a
// rotation extended, or that a retirement shortened (a retired pepper
// checks no hash any more).
func (h *Hasher) ReloadPeppers() error {
	ps := h.peppers.Load()
	if ps == nil || ps.path == "" {
		return nil
	}
	h.reload.mu.Lock()
	defer h.reload.mu.Unlock()
	np, err := LoadPeppers(ps.path)
	if err != nil {
		return err
	}
	h.swapPeppers(ps, np)
	return nil
}

// refreshPeppers reloads h's pepper file if it changed since it was read.
func (h *Hasher) refreshPeppers() {
	ps := h.peppers.Load()
	if ps == nil || ps.path == "" {
		return
	}
	r := &h.reload
	fi, err := os.Stat(ps.path)
	if err == nil && sameVersion(fi, ps.file) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur := h.peppers.Load(); cur != ps {
		return // reloaded meanwhile
	}
	if err == nil && r.bad != nil && sameVersion(fi, r.bad) {
		return // this version did not load; wait for the next
	}
	np, err := LoadPeppers(ps.path)
	if err != nil {
		// Said once per version of the file; the old peppers stay.
		r.bad = fi
		if l := r.logger.Load(); l != nil {
			l.Error("the pepper file changed but does not load; the peppers already read stay in use", "peppers", ps, "error", err)
		}
		return
	}
	r.bad = nil
	h.swapPeppers(ps, np)
}

// swapPeppers makes np h's peppers in place of old, and says so.
func (h *Hasher) swapPeppers(old, np *Peppers) {
	h.peppers.Store(np)
	if l := h.reload.logger.Load(); l != nil && !slices.Equal(old.IDs(), np.IDs()) {
		l.Info("pepper file reloaded", "file", np.path, "before", old, "now", np)
	}
}

// sameVersion reports whether a and b describe the same version of a file:
// the same file (device and inode), size and modification time. A rename
// over it (as RotatePepper writes) or an edit in place changes one.
func sameVersion(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}
