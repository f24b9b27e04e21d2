package main

import (
	"path/filepath"
	"strings"

	"github.com/larderfs/larder/internal/disk"
)

// minFreeFlag parses --min-free into p.
func minFreeFlag(p *disk.MinFree) func(string) error {
	return func(s string) error {
		m, err := disk.ParseMinFree(s)
		if err != nil {
			return err
		}
		*p = m
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
