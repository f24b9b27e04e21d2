package disk

import (
	"sync"

	"github.com/larderfs/larder"
)

// MinFree is the free space the server keeps on each file system it
// writes, below which it refuses uploads (and nothing else), so that
// logins, registrations, the audit trail and the records of files always
// have room. It is Percent of the file system's size, capped by Bytes if
// both are set; either alone; none if both are zero.
type MinFree struct {
	Bytes   int64
	Percent float64
}

// DefaultMinFree is the smaller of 1% and 256 MiB.
var DefaultMinFree = MinFree{Bytes: 256 << 20, Percent: 1}

// of returns the reserve of a file system of total bytes.
func (m MinFree) of(total int64) int64 {
	r := int64(float64(total) * m.Percent / 100)
	switch {
	case m.Percent <= 0:
		return m.Bytes
	case m.Bytes > 0:
		return min(r, m.Bytes)
	}
	return r
}

// Reserve keeps MinFree on the file systems of some folders: the first
// takes the uploads, the others only the server's own records (the
// database, the audit spool). It asks the file systems afresh at every
// check, so space freed is seen at once, and it counts the bytes that
// uploads in progress are still to write (their Holds), so that uploads
// started together see each other before their data, not when the disk
// is full.
type Reserve struct {
	min   MinFree
	paths []string

	mu   sync.Mutex
	held int64 // by every Hold
}

// NewReserve returns the reserve min on the file systems of uploads and
// of others.
func NewReserve(min MinFree, uploads string, others ...string) *Reserve {
	return &Reserve{min: min, paths: append([]string{uploads}, others...)}
}

// Check reports, with code ENOSPACE, whether need more bytes on the
// uploads' file system, beside those held, or any at all, would leave less
// than the reserve free on one of the file systems.
func (r *Reserve) Check(need int64) error {
	if r == nil || r.min == (MinFree{}) {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.check(need)
}

// check is Check with r.mu held. A file system that cannot be asked is not
// checked (writes to it fail on their own).
func (r *Reserve) check(need int64) error {
	seen := make(map[fsID]bool, len(r.paths))
	for i, p := range r.paths {
		st, ok := statFS(p)
		if !ok || seen[st.id] {
			continue
		}
		seen[st.id] = true
		n := int64(0)
		if i == 0 {
			n = need + r.held
		}
		if st.avail-n < r.min.of(st.total) {
			return larder.Errorf(larder.ENOSPACE, "the server is short of disk space for uploads; retry later")
		}
	}
	return nil
}

// Hold is the space an upload in progress is still to write.
type Hold struct {
	r *Reserve
	n int64
}

// Hold checks that n more bytes on the uploads' file system leave the
// reserve free, beside the bytes other uploads hold, and holds them.
// Release the Hold when the upload ends.
func (r *Reserve) Hold(n int64) (*Hold, error) {
	if r == nil || r.min == (MinFree{}) {
		return nil, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.check(n); err != nil {
		return nil, err
	}
	r.held += n
	return &Hold{r: r, n: n}, nil
}

// Wrote tells the reserve that n of the held bytes are on the disk, and
// checks the free space again: another writer may have taken it.
func (h *Hold) Wrote(n int64) error {
	if h == nil {
		return nil
	}
	h.r.mu.Lock()
	defer h.r.mu.Unlock()
	n = min(n, h.n)
	h.n -= n
	h.r.held -= n
	return h.r.check(0)
}

// Release lets go of what h still holds.
func (h *Hold) Release() {
	if h == nil {
		return
	}
	h.r.mu.Lock()
	defer h.r.mu.Unlock()
	h.r.held -= h.n
	h.n = 0
}

// fsStat is what Check needs of a file system.
type fsStat struct {
	id           fsID
	avail, total int64
}
