package disk

import "github.com/larderfs/larder"

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
// database, the audit spool). It holds nothing open; every Check asks
// the file systems afresh, so space freed is seen at once.
type Reserve struct {
	min   MinFree
	paths []string
}

// NewReserve returns the reserve min on the file systems of uploads and
// of others.
func NewReserve(min MinFree, uploads string, others ...string) *Reserve {
	return &Reserve{min: min, paths: append([]string{uploads}, others...)}
}

// Check reports, with code ENOSPACE, whether need more bytes on the
// uploads' file system, or any at all, would leave less than the reserve
// free on one of the file systems. A file system that cannot be asked is
// not checked (writes to it fail on their own).
func (r *Reserve) Check(need int64) error {
	if r == nil || r.min == (MinFree{}) {
		return nil
	}
	seen := make(map[fsID]bool, len(r.paths))
	for i, p := range r.paths {
		st, ok := statFS(p)
		if !ok || seen[st.id] {
			continue
		}
		seen[st.id] = true
		n := int64(0)
		if i == 0 {
			n = need
		}
		if st.avail-n < r.min.of(st.total) {
			return larder.Errorf(larder.ENOSPACE, "the server is short of disk space for uploads; retry later")
		}
	}
	return nil
}

// fsStat is what Check needs of a file system.
type fsStat struct {
	id           fsID
	avail, total int64
}
