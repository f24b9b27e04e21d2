package main

import (
	"errors"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/larderfs/larder/internal/disk"
)

// minFreeFlag parses --min-free into p: auto (disk.DefaultMinFree), a
// percentage of the file system ("2%"), a size as sizeFlag takes it
// ("512MiB"), or 0 for none.
func minFreeFlag(p *disk.MinFree) func(string) error {
	return func(s string) error {
		bad := errors.New("want auto (the smaller of 1% and 256MiB), a percentage such as 2%, a size such as 512MiB, or 0")
		switch n, pct := strings.CutSuffix(s, "%"); {
		case s == "auto":
			*p = disk.DefaultMinFree
		case s == "0":
			*p = disk.MinFree{}
		case pct:
			v, err := strconv.ParseFloat(n, 64)
			if err != nil || v < 0 || v >= 100 {
				return bad
			}
			*p = disk.MinFree{Percent: v}
		default:
			*p = disk.MinFree{}
			if sizeFlag(&p.Bytes)(s) != nil {
				return bad
			}
		}
		return nil
	}
}

// reservedDirs returns the folders, besides the users' spaces, on whose
// file systems the server writes its own records: the data folder (the
// SQLite database, the audit spool, the pepper) and the folder of a file
// the audit sink writes. Uploads may not take their reserve either.
func (c *ServeConfig) reservedDirs() []string {
	dirs := []string{c.DataDir}
	for _, prefix := range []string{"sqlite:", "jsonl:"} {
		if p, ok := strings.CutPrefix(c.Audit.Sink, prefix); ok {
			dirs = append(dirs, filepath.Dir(p))
		}
	}
	return dirs
}
