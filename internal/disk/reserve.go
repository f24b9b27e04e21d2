package disk

import (
	"fmt"
	"strconv"
	"strings"

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

func (m MinFree) String() string {
	switch {
	case m.Percent > 0 && m.Bytes > 0:
		return fmt.Sprintf("the smaller of %g%% and %s", m.Percent, formatSize(m.Bytes))
	case m.Percent > 0:
		return fmt.Sprintf("%g%%", m.Percent)
	}
	return formatSize(m.Bytes)
}

// ParseMinFree parses a reserve as --min-free takes it: "auto"
// (DefaultMinFree), a percentage ("2%"), a size in bytes or with a suffix
// KiB, MiB, GiB or TiB ("512MiB"), or "0" for none.
func ParseMinFree(s string) (MinFree, error) {
	bad := fmt.Errorf("want auto (the smaller of 1%% and 256MiB), a percentage such as 2%%, a size such as 512MiB, or 0")
	if s == "auto" {
		return DefaultMinFree, nil
	}
	if n, ok := strings.CutSuffix(s, "%"); ok {
		p, err := strconv.ParseFloat(n, 64)
		if err != nil || p < 0 || p >= 100 {
			return MinFree{}, bad
		}
		return MinFree{Percent: p}, nil
	}
	num, mult := s, int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = n, u.mult
			break
		}
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v < 0 || v > (1<<62)/mult {
		return MinFree{}, bad
	}
	return MinFree{Bytes: v * mult}, nil
}

func formatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + " bytes"
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
			if n > 0 {
				return larder.Errorf(larder.ENOSPACE, "the server has too little free disk space for %s more; retry later", formatSize(n))
			}
			return larder.Errorf(larder.ENOSPACE, "the server is short of disk space; retry later")
		}
	}
	return nil
}

// fsStat is what Check needs of a file system.
type fsStat struct {
	id           fsID
	avail, total int64
}
