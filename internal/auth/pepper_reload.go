package auth

import (
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// pepperReload is a Hasher's state for reloading its pepper file.
type pepperReload struct {
	prefix  atomic.Pointer[currentPrefix] // for needsRehashLazily
	mu      sync.Mutex                    // serialises reloads
	bad     os.FileInfo                   // a changed file that did not load; under mu
	missing bool                          // the file could not be found at the last look; under mu
	logger  atomic.Pointer[slog.Logger]
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
// times more. A pepper file is taken if it loads and keeps the key of every
// pepper it still names: one that a rotation extended, or that a
// retirement shortened (a retired pepper checks no hash any more); one that
// gives a known ID another key is refused.
func (h *Hasher) ReloadPeppers() error {
	ps := h.peppers.Load()
	if ps == nil || ps.path == "" {
		return nil
	}
	h.reload.mu.Lock()
	defer h.reload.mu.Unlock()
	np, err := loadChanged(ps)
	if err != nil {
		return err
	}
	h.reload.bad, h.reload.missing = nil, false
	h.peppers.Store(np) // the caller says what it did
	return nil
}

// currentPrefix is the start of every hash that Hash makes under peppers
// and policy.
type currentPrefix struct {
	peppers *Peppers
	policy  *policy
	prefix  string // "$argon2id$v=19$m=…,t=…,p=…[,keyid=…]$"
}

// currentLen is the length of a hash that Hash makes, after its prefix:
// the salt, a '$' and the output, in unpadded base64.
var currentLen = b64.EncodedLen(saltLen) + 1 + b64.EncodedLen(keyLen)

// needsRehashLazily is NeedsRehash for a login answered from the cache,
// the hot path: it does not look at the pepper file (a server does that
// every second with RefreshPeppers), and tells a current hash by its
// prefix and length, without decoding it, which costs microseconds.
func (h *Hasher) needsRehashLazily(encoded string) bool {
	r := &h.reload
	ps := h.peppers.Load()
	pol := h.policy.Load()
	cp := r.prefix.Load()
	if cp == nil || cp.peppers != ps || cp.policy != pol {
		v := &phc{params: pol.params}
		if ps != nil {
			v.keyID = []byte(ps.Current().ID)
		}
		stub := v.stub() // ends with "$" and the empty salt
		cp = &currentPrefix{peppers: ps, policy: pol, prefix: stub}
		r.prefix.Store(cp)
	}
	if len(encoded) == len(cp.prefix)+currentLen && strings.HasPrefix(encoded, cp.prefix) {
		return false
	}
	v, err := decodeHash(encoded)
	if err != nil {
		return true
	}
	a, ok := v.(*phc)
	if !ok {
		return true
	}
	want := ""
	if ps != nil {
		want = ps.Current().ID
	}
	return !h.keptAtLogin(a, want)
}

// RefreshPeppers looks at h's pepper file and reloads it if it changed
// since it was read (its identity, size or time): one stat. h does so by
// itself before each slow hash; a server also calls it every second, so
// that logins answered from the verification cache follow a rotation too.
// A changed file that does not load is logged once (SetLogger), and the
// peppers in use stay.
func (h *Hasher) RefreshPeppers() { h.refreshPeppers() }

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
	switch {
	case err != nil && r.missing, err == nil && r.bad != nil && sameVersion(fi, r.bad):
		return // this version did not load; wait for the next
	}
	np, lerr := loadChanged(ps)
	if lerr != nil {
		// Said once per version of the file; the old peppers stay.
		r.bad, r.missing = fi, err != nil
		if l := r.logger.Load(); l != nil {
			l.Error("the pepper file changed but does not load; the peppers already read stay in use", "peppers", ps, "error", lerr)
		}
		return
	}
	r.bad, r.missing = nil, false
	h.swapPeppers(ps, np)
}

// loadChanged reads the pepper file of ps again. It refuses a file in
// which a pepper of ps has another key: the hashes made with the old key
// would stop verifying (a file replaced by another server's, or by one
// made anew); peppers may only be added and removed.
func loadChanged(ps *Peppers) (*Peppers, error) {
	np, err := LoadPeppers(ps.path)
	if err != nil {
		return nil, err
	}
	for _, p := range ps.list {
		if q, ok := np.Lookup(p.ID); ok && q.Fingerprint() != p.Fingerprint() {
			return nil, fmt.Errorf("auth: pepper file %s now gives pepper %s another key: the hashes made with its old key would stop verifying; refused (put the old key back, or restart if the new file is meant)", ps.path, p.ID)
		}
	}
	return np, nil
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
