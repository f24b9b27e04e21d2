package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// The server's state, its secrets first, must never be served, and nothing
// the server writes may land on it. checkPaths enforces both before the
// server creates or opens anything:
//
//   - the served folder may not lie inside the data folder, except inside
//     the default DATA/files: beside it are the database, the pepper, the
//     TLS key, the audit spool, every user's private space and those kept
//     from deleted accounts;
//   - the served folder may contain none of the state: the data folder, the
//     pepper file, the TLS key and certificate, nor a file the server writes
//     (the audit sink's file, the CPU profile);
//   - a file the server writes may not be, or lie inside, a piece of state,
//     nor be another output.
//
// Paths are compared as the system resolves them: symbolic links followed
// (for a path that does not exist yet, those of its deepest existing
// folder), made absolute. A hard link to a secret cannot be told from a
// file and is not caught: keep the served folder on its own.

// statePath is a file or folder of the server's state, or a file it writes.
type statePath struct {
	what string // "the pepper file"
	flag string // the flag that sets it
	path string
}

// statePaths returns the server's state under c.
func (c *ServeConfig) statePaths() []statePath {
	d := c.DataDir
	db := filepath.Join(d, "larder.db")
	s := []statePath{
		{"pepper file", "--pepper-file", c.pepperFile()},
		{"account database", "--data", db},
		{"account database's log", "--data", db + "-wal"},
		{"account database's index", "--data", db + "-shm"},
		{"account database's stamp", "--data", db + "-accounts"},
		{"TLS identity folder", "--data", filepath.Join(d, "tls")},
		{"users' spaces", "--data", filepath.Join(d, "spaces")},
		{"deleted accounts' files", "--data", filepath.Join(d, "deleted")},
		{"audit spool", "--data", filepath.Join(d, "audit")},
	}
	if c.TLSKey != "" {
		s = append(s, statePath{"TLS key", "--tls-key", c.TLSKey})
	}
	if c.TLSCert != "" {
		s = append(s, statePath{"TLS certificate", "--tls-cert", c.TLSCert})
	}
	return s
}

// outputPaths returns the files the server writes besides its state.
func (c *ServeConfig) outputPaths() []statePath {
	var s []statePath
	for _, prefix := range []string{"jsonl:", "sqlite:"} {
		if p, ok := strings.CutPrefix(c.Audit.Sink, prefix); ok && p != "" {
			s = append(s, statePath{"audit sink", "--audit-sink", p})
		}
	}
	if c.CPUProfile != "" {
		s = append(s, statePath{"CPU profile", "--cpuprofile", c.CPUProfile})
	}
	return s
}

// checkPaths refuses a configuration that would serve the server's state
// or write over it; see above. The message names both paths and says what
// to do.
func (c *ServeConfig) checkPaths() error {
	dataDir, err := resolvePath(c.DataDir)
	if err != nil {
		return fmt.Errorf("data folder: %w", err)
	}
	defaultFiles := filepath.Join(c.DataDir, "files")
	filesDir := c.FilesDir
	if filesDir == "" {
		filesDir = defaultFiles
	}
	files, err := resolvePath(filesDir)
	if err != nil {
		return fmt.Errorf("served folder: %w", err)
	}
	def, err := resolvePath(defaultFiles)
	if err != nil {
		return fmt.Errorf("served folder: %w", err)
	}
	if within(files, dataDir) && !within(files, def) {
		return fmt.Errorf("the served folder %s is inside the data folder %s, beside the server's database, pepper, TLS key, audit spool and users' private files: "+
			"anyone could download them; serve %s (the default: no --files) or a folder outside the data folder (--files)", shown(filesDir, files), shown(c.DataDir, dataDir), defaultFiles)
	}
	state := c.statePaths()
	outputs := c.outputPaths()
	resolved := map[string]string{}
	for _, s := range append(append([]statePath{{"data folder", "--data", c.DataDir}}, state...), outputs...) {
		p, err := resolvePath(s.path)
		if err != nil {
			return fmt.Errorf("the %s (%s): %w", s.what, s.flag, err)
		}
		resolved[s.path] = p
		if within(p, files) {
			return fmt.Errorf("the %s %s (%s) is inside the served folder %s: anyone could download it; keep them apart: "+
				"serve another folder (--files) or move the %s (%s)", s.what, shown(s.path, p), s.flag, shown(filesDir, files), s.what, s.flag)
		}
	}
	for i, o := range outputs {
		op := resolved[o.path]
		for _, s := range append(state, outputs[:i]...) {
			if within(op, resolved[s.path]) {
				return fmt.Errorf("%s %s would write over the %s %s (%s): write it elsewhere", o.flag, shown(o.path, op), s.what, shown(s.path, resolved[s.path]), s.flag)
			}
		}
	}
	return nil
}

// resolvePath returns path absolute with its symbolic links resolved. For
// a path that does not exist (yet), it resolves its deepest existing
// folder and appends the rest; a link that leads nowhere yet is followed to
// where it leads.
func resolvePath(path string) (string, error) {
	return resolveDepth(path, 0)
}

func resolveDepth(path string, depth int) (string, error) {
	if depth > 40 {
		return "", fmt.Errorf("%s: too many levels of symbolic links", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	var rest []string
	for p := abs; ; {
		r, err := filepath.EvalSymlinks(p)
		if err == nil {
			return filepath.Join(append([]string{r}, rest...)...), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		if fi, lerr := os.Lstat(p); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			// A dangling link: follow it by hand.
			target, err := os.Readlink(p)
			if err != nil {
				return "", err
			}
			if !filepath.IsAbs(target) {
				target = filepath.Join(filepath.Dir(p), target)
			}
			return resolveDepth(filepath.Join(append([]string{target}, rest...)...), depth+1)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return abs, nil
		}
		rest = append([]string{filepath.Base(p)}, rest...)
		p = parent
	}
}

// within reports whether path is dir or lies inside it; both are resolved.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(os.PathSeparator))
}

// shown returns path as the user gave it, with where it really leads if
// that differs.
func shown(path, real string) string {
	if abs, err := filepath.Abs(path); err == nil && abs == real {
		return path
	}
	return path + " (" + real + ")"
}
