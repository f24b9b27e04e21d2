package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/internal/files"
	"github.com/larderfs/larder/lnp"
	"golang.org/x/text/unicode/norm"
)

// hintError adds to an error of the server what the user can do about it.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() + " (" + e.hint + ")" }
func (e *hintError) Unwrap() error { return e.err }

// restated is an error said in other words: what the server's message
// would say wrongly (the path it names is not the one missing), with the
// server's error kept for its kind.
type restated struct {
	msg string
	err error
}

func (e *restated) Error() string { return e.msg }
func (e *restated) Unwrap() error { return e.err }

// withHint adds a hint to err if err is a *client.LNPError: the hint of
// its reason, which a server that gives reasons (lnp.FeatureReasons) sets
// where one status covers cases with different remedies, or else
// hints[status].
func withHint(err error, hints map[lnp.Status]string) error {
	ne, ok := errors.AsType[*client.LNPError](err)
	switch {
	case !ok:
		return err
	case reasonHints[ne.Reason] != "":
		return &hintError{err: err, hint: reasonHints[ne.Reason]}
	case hints[ne.Status] != "":
		return &hintError{err: err, hint: hints[ne.Status]}
	}
	return err
}

// reasonHints are the hints of the reasons of refusals: what fits the
// case better than the hint of its status.
var reasonHints = map[lnp.Reason]string{
	lnp.ReasonBeingRemoved: "-f does not help: 'larder rm -r' on that folder finishes its removal; one that another session is making ends by itself",
}

// quotaHint is the hint of QUOTA_EXCEEDED.
const quotaHint = "'larder whoami' shows the account's usage and quotas, 'larder parts' the unfinished uploads that count in it"

// intoFolder returns to, or to/name if to ends in a slash or is a folder
// on the server: where a file named name lands when put or moved to to.
func intoFolder(ctx context.Context, s *lnpSession, to, name string) (string, error) {
	if strings.HasSuffix(to, "/") {
		return path.Join(to, name), nil
	}
	e, err := s.Stat(ctx, to)
	if st, ok := lnpStatus(err); ok && st == lnp.StatusNotFound {
		return to, nil
	}
	if err != nil {
		return "", err
	}
	if e.Dir {
		return path.Join(to, name), nil
	}
	return to, nil
}

func runPut(ctx context.Context, env *Env, args []string) error {
	var (
		overwrite, noResume, asJSON bool
		src                         *os.File
		size                        int64
	)
	var (
		stdin         bool // LOCAL is "-": src is a spool of stdin
		passwordStdin *flag.Flag
		noMtime       bool
		modified      time.Time // LOCAL's
		tf            transferFlags
	)
	defer func() {
		if src != nil {
			src.Close()
			if stdin {
				os.Remove(src.Name())
			}
		}
	}()
	c := lnpCommand{
		name: "put", synopsis: "put LOCAL [REMOTE] [flags]\n       larder put - REMOTE [flags]\n       larder put -r LOCALDIR [REMOTE] [flags]", local: 1,
		help: "Uploads the file LOCAL to REMOTE: by default LOCAL's name at the top of your\n" +
			"space; a REMOTE that is a folder, or ends in a slash, gets LOCAL's name in it.\n" +
			"The server checks the whole file's SHA-256 (and each block's, if it is from\n" +
			"before LNP/1's feature 1), and REMOTE appears whole, at once, only when it\n" +
			"matches. An interrupted upload of the same REMOTE and\n" +
			"size goes on from where it stopped, unless --no-resume. Until it completes,\n" +
			"an interrupted upload holds its file's size against your quota: 'larder parts'\n" +
			"lists them, 'larder parts rm' cancels them.\n" +
			"\n" +
			"LOCAL \"-\" is standard input, up to its end, to the file REMOTE: it is first\n" +
			"copied to a temporary file (in $TMPDIR), as the protocol announces the size\n" +
			"before the data, and such an upload does not resume.\n" +
			"\n" +
			"REMOTE keeps LOCAL's modification time (as 'scp -p' and 'rsync -t' do), if\n" +
			"the server takes one (larder's LNP/1 servers do); with --no-mtime, or from\n" +
			"stdin, REMOTE's time is when the server committed it.\n" +
			"\n" +
			"With -r, LOCALDIR's whole tree goes to REMOTE, which becomes its copy (made\n" +
			"if need be, as sftp's put -r and rclone copy do: running the command again\n" +
			"puts the files in the same place); a REMOTE that ends in a slash gets\n" +
			"LOCALDIR's name in it; without REMOTE, LOCALDIR's name at the top of your\n" +
			"space. Up to --transfers files move at once. A file the server has already,\n" +
			"the same size and modification time (as rsync's quick check), or with\n" +
			"--checksum the same size and SHA-256, is not sent again; one that differs is skipped\n" +
			"unless -f; one whose upload was interrupted goes on from where it stopped.\n" +
			"Symbolic links are not followed (they are skipped, and said so). At the end,\n" +
			"a summary: files, bytes, time, rate, and those unchanged, resumed, skipped\n" +
			"and failed; the exit code is the first failure's.",
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&overwrite, "overwrite", false, "replace REMOTE if it exists")
			fs.BoolVar(&overwrite, "f", false, "short for --overwrite")
			fs.BoolVar(&noResume, "no-resume", false, "start over rather than go on with an interrupted upload")
			fs.BoolVar(&noMtime, "no-mtime", false, "leave REMOTE's modification time at the time of the upload (by default it is LOCAL's)")
			fs.BoolVar(&asJSON, "json", false, "when done, print a JSON object: path, name, type, size, modified, sha256\n"+
				"(with -r: files, bytes, seconds, unchanged, resumed, skipped, failed)")
			tf.define(fs, true)
			passwordStdin = fs.Lookup("password-stdin")
		},
		args: func(pos []string) error {
			if err := wantArgs("put", 1, 2, "LOCAL and an optional REMOTE")(pos); err != nil {
				return err
			}
			if len(pos) == 2 && pos[1] == "" {
				return usageError("put: an empty REMOTE (a variable that was not set?); leave it out for the top of your space, or write \"/\"")
			}
			if err := tf.check(); err != nil {
				return err
			}
			if tf.recursive {
				return putTreeArgs(pos)
			}
			if pos[0] == "-" {
				if len(pos) != 2 || strings.HasSuffix(pos[1], "/") {
					return usageError("put - takes the name of the file to make: put - REMOTE")
				}
				if passwordStdin.Value.String() == "true" {
					return usageError("put - reads the file from stdin, where --password-stdin reads the password: set LARDER_PASSWORD, or log in first ('larder login')")
				}
				stdin = true
				var err error
				src, size, err = spool(env.Stdin)
				return err
			}
			var err error
			// Without waiting for a writer if it is a FIFO, which is refused.
			if src, err = os.OpenFile(pos[0], os.O_RDONLY|openNonBlock, 0); err != nil {
				return &localError{what: "put: cannot read the local file", err: err}
			}
			fi, err := src.Stat()
			if err != nil {
				return err
			}
			if !fi.Mode().IsRegular() {
				return usageError("put: %s is not a regular file", pos[0])
			}
			size, modified = fi.Size(), fi.ModTime()
			return nil
		},
		run: func(ctx context.Context, s *lnpSession, pos []string) error {
			if tf.recursive {
				root, err := putTreeRoot(pos[0], pos)
				if err != nil {
					return err
				}
				return putTree(ctx, env, s, tf, pos[0], root, putTreeOptions{overwrite: overwrite, noResume: noResume, noMtime: noMtime, asJSON: asJSON})
			}
			// Composed, as the server wants new names: macOS writes
			// them decomposed.
			name := norm.NFC.String(filepath.Base(pos[0]))
			remote := "/" + name
			if stdin {
				remote = pos[1]
				if e, err := s.Stat(ctx, remote); err == nil && e.Dir {
					return usageError("put -: %s is a folder; name the file to make in it", printable(remote))
				}
			} else if len(pos) == 2 {
				var err error
				if remote, err = intoFolder(ctx, s, pos[1], name); err != nil {
					return err
				}
			}
			label := filepath.Base(pos[0])
			if stdin {
				label = path.Base(remote)
			}
			opts := client.PutOptions{Overwrite: overwrite, Resume: !noResume && !stdin}
			if !noMtime && !stdin {
				var note string
				if opts.Modified, note = keptModTime(modified); note != "" {
					fmt.Fprintf(env.Stderr, "larder: %s: %s\n", printable(pos[0]), note)
				}
			}
			e, err := putSingle(ctx, env, s, tf, label, remote, src, size, opts)
			if err == nil && asJSON {
				j := toJSON(e)
				j.Path = remote
				return writeJSON(env.Stdout, j)
			}
			hints := map[lnp.Status]string{
				lnp.StatusQuotaExceeded: quotaHint,
				lnp.StatusHashMismatch:  "if LOCAL changed since an interrupted upload, start over with --no-resume",
			}
			if !overwrite {
				// With -f, a conflict is an upload in progress or a
				// folder, which -f cannot help.
				hints[lnp.StatusConflict] = "--overwrite (-f) replaces a file"
			}
			return withHint(err, hints)
		},
	}
	return c.main(ctx, env, args)
}

// keptModTime returns t, a local file's modification time, for the server
// to keep; or, if the server would refuse it, no time (the file gets that
// of its upload) and a note that says so.
func keptModTime(t time.Time) (time.Time, string) {
	if err := files.CheckModTime(t); err != nil {
		return time.Time{}, larder.ErrorMessage(err) + "; on the server it gets the time of the upload"
	}
	return t, ""
}

// spool copies r to a new temporary file, which the caller closes and
// removes, and returns it with its size.
func spool(r io.Reader) (*os.File, int64, error) {
	f, err := os.CreateTemp("", "larder-put-*")
	if err != nil {
		return nil, 0, fmt.Errorf("put -: a temporary file for stdin: %w", err)
	}
	n, err := io.Copy(f, r)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, 0, fmt.Errorf("put -: copying stdin to %s: %w", f.Name(), err)
	}
	return f, n, nil
}

// getLNP fetches remote through the native protocol into out: a file
// ("" for remote's base name in the current folder, a folder for that
// name in it) or "-" for stdout.
func getLNP(ctx context.Context, env *Env, f *lnpFlags, remote, out string, opts client.DownloadOptions, o getOutput) error {
	local := out
	if out != "-" {
		base := path.Base(strings.TrimRight(remote, "/"))
		if fi, err := os.Stat(out); out == "" || err == nil && fi.IsDir() {
			if base == "." || base == "/" || base == ".." {
				return usageError("get: %q names no file; name LOCAL with -o", remote)
			}
			local = filepath.Join(out, base)
		}
		if fi, err := os.Stat(local); err == nil && fi.IsDir() {
			return usageError("get: %s is a folder; name a file with -o", local)
		}
	}
	ctx, s, err := f.connect(ctx, env)
	if err != nil {
		return err
	}
	defer s.Close()
	// The size, for the progress bar, and a clear refusal of a folder or
	// of a file that does not exist before anything local is made.
	e, err := s.Stat(ctx, remote)
	if err != nil {
		return sessionError(err)
	}
	if e.Dir {
		return fmt.Errorf("get: %s is a folder on the server", printable(remote))
	}
	var bar *progressBar
	if showProgress(env, local == "-") {
		bar = newProgressBar(env.Stderr, time.Now)
		bar.name = path.Base(remote)
		defer bar.done()
	}
	switch fi, err := os.Stat(local); {
	case local == "-":
		return sessionError(streamed(getStream(ctx, s, remote, env.Stdout, int64(e.Size), bar), local))
	case err == nil && !fi.Mode().IsRegular():
		// A device or a named pipe: written into, never replaced, and
		// not resumed into.
		f, err := os.OpenFile(local, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		return sessionError(streamed(getStream(ctx, s, remote, f, int64(e.Size), bar), local))
	}
	res, err := getFile(ctx, env, s, remote, local, int64(e.Size), opts, bar, o.retries)
	if err != nil {
		return sessionError(err)
	}
	if res.Modified.IsZero() {
		res.Modified = e.Modified
	}
	// As scp -p and rsync -t do; the access time is left as it is.
	if o.keepMtime && !res.Modified.IsZero() {
		if err := os.Chtimes(local, time.Time{}, res.Modified); err != nil {
			fmt.Fprintf(env.Stderr, "larder: warning: %s is complete, but its modification time could not be set: %v\n", local, err)
		}
	}
	if !o.asJSON {
		return nil
	}
	mod := res.Modified.UTC()
	return writeJSON(env.Stdout, getJSON{Path: remote, Local: local, Size: int64(res.Size), SHA256: hex.EncodeToString(res.SHA256[:]),
		Modified: &mod, Kept: res.Kept, UpToDate: res.UpToDate})
}

// getFile fetches remote into local with Session.Download: into
// LOCAL.larder-part, which goes on from an earlier download, and replaces
// local only once it is complete and verified.
func getFile(ctx context.Context, env *Env, s *lnpSession, remote, local string, size int64, opts client.DownloadOptions, bar *progressBar, retries int) (client.DownloadResult, error) {
	part := local + client.PartSuffix
	note := func(msg string) {
		if bar != nil {
			bar.clear()
		}
		fmt.Fprintf(env.Stderr, "larder: get %s\n", msg)
	}
	var (
		reset func()
		kept  int64 // by the try under way, from an earlier download
		said  bool  // that it resumed
	)
	opts.Resumed = func(n int64) { kept = n }
	if bar != nil {
		opts.Resumed = func(n int64) {
			kept, said = n, true
			note(fmt.Sprintf("%s: resuming at %s of %s (%d%%), where an interrupted download stopped",
				printable(remote), formatBytes(n), formatBytes(size), n*100/max(size, 1)))
		}
		first := func(int) int64 { return kept }
		meter := &transferMeter{bar: bar, total: size, first: first}
		opts.Progress = meter.add
		reset = func() { *meter, kept = transferMeter{bar: bar, total: size, first: first}, 0 }
	}
	w := &sessionSlot{s: s.Session, open: s.reopen}
	res, err := downloadOne(ctx, newRetrier(retries, note), w, remote, local, opts, reset)
	w.close()
	if bar != nil {
		bar.done()
	}
	switch {
	case errors.Is(err, client.ErrLocalDiffers):
		return res, &hintError{err: err, hint: "pass -f to replace it, or -o to name another file"}
	case errors.Is(err, client.ErrDownloadRunning):
		return res, err
	case errors.As(err, new(*client.PartError)):
		var pe *client.PartError
		errors.As(err, &pe)
		if pe.NotRegular {
			return res, &hintError{err: err, hint: "move it away, or name another FILE with -o"}
		}
		return res, &hintError{err: err, hint: "remove it, or pass -f (or --no-resume) to start over"}
	}
	if err != nil {
		untouched := "not changed"
		if _, serr := os.Lstat(local); serr != nil {
			untouched = "not made"
		}
		fi, serr := os.Stat(part)
		switch {
		case serr == nil && errors.Is(err, syscall.ENOSPC):
			fmt.Fprintf(env.Stderr, "larder: the disk is full: %s was %s; %s holds the %s fetched so far, of %s: free %s more and the same command goes on from there (or remove it)\n",
				local, untouched, part, formatBytes(fi.Size()), formatBytes(size), formatBytes(max(size-fi.Size(), 0)))
		case serr == nil && fi.Size() > 0 && !errors.Is(err, client.ErrIntegrity):
			fmt.Fprintf(env.Stderr, "larder: %s was %s; %s holds the %s fetched so far: the same command goes on from there (remove it to start over)\n",
				local, untouched, part, formatBytes(fi.Size()))
		default:
			fmt.Fprintf(env.Stderr, "larder: %s was %s\n", local, untouched)
		}
		return res, err
	}
	if res.UpToDate {
		fmt.Fprintf(env.Stderr, "larder: %s is the server's file already (%d bytes, checked by its SHA-256): left as it was\n", local, res.Size)
		return res, nil
	}
	if res.Kept > 0 && !said {
		fmt.Fprintf(env.Stderr, "larder: resumed: kept the first %d bytes of %s, which match the server's, and fetched the other %d\n",
			res.Kept, res.From, int64(res.Size)-res.Kept)
	}
	return res, nil
}

// getStream writes remote to w, checking every block (where the session
// has block hashes) and, at the end, the whole file; what was written
// before a failure stays written.
func getStream(ctx context.Context, s *lnpSession, remote string, w io.Writer, size int64, bar *progressBar) error {
	var progress func(int)
	if bar != nil {
		progress = (&transferMeter{bar: bar, total: size}).add
	}
	_, err := s.Get(ctx, remote, 0, w, progress)
	return err
}

// entryJSON is an entry as ls --json and stat --json print it.
type entryJSON struct {
	Path     string    `json:"path,omitempty"` // stat only
	Name     string    `json:"name"`
	Type     string    `json:"type"` // "file" or "folder"
	Size     uint64    `json:"size"`
	Modified time.Time `json:"modified"`
	// SHA256 is the file's hash in hex, if the server knows it without
	// reading the file.
	SHA256 string `json:"sha256,omitempty"`
}

func toJSON(e lnp.Entry) entryJSON {
	j := entryJSON{Name: e.Name, Type: "file", Size: e.Size, Modified: e.Modified.UTC()}
	if e.Dir {
		j.Type = "folder"
	} else if e.SHA256 != ([32]byte{}) {
		j.SHA256 = hex.EncodeToString(e.SHA256[:])
	}
	return j
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// timeFormat is how ls -l and stat show times, in the local time zone.
const timeFormat = "2006-01-02 15:04:05"

func runLs(ctx context.Context, env *Env, args []string) error {
	var asJSON, long bool
	c := lnpCommand{
		name: "ls", synopsis: "ls [PATH] [--json] [-l]",
		help: "Lists the folder PATH (default: the top of your space, where the folder\n" +
			"shared holds the course protocol's files), one name a line, folders with a\n" +
			"slash; or the file PATH.",
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print a JSON array of entries: name, type, size, modified, sha256")
			fs.BoolVar(&long, "l", false, "print the type, size and modification time of each entry too")
		},
		args: wantArgs("ls", 0, 1, "at most one PATH"),
		run: func(ctx context.Context, s *lnpSession, pos []string) error {
			p := "/"
			if len(pos) == 1 {
				p = pos[0]
			}
			entries, err := s.ListAll(ctx, p)
			if st, ok := lnpStatus(err); ok && st == lnp.StatusBadRequest {
				// Perhaps a file, which ls shows alone, as ls(1) does.
				if e, serr := s.Stat(ctx, p); serr == nil && !e.Dir {
					entries, err = []lnp.Entry{e}, nil
				}
			}
			if err != nil {
				return err
			}
			if asJSON {
				list := make([]entryJSON, 0, len(entries))
				for _, e := range entries {
					list = append(list, toJSON(e))
				}
				return writeJSON(env.Stdout, list)
			}
			width := 1
			for _, e := range entries {
				width = max(width, len(fmt.Sprint(e.Size)))
			}
			for _, e := range entries {
				name := printable(e.Name)
				if e.Dir {
					name += "/"
				}
				if !long {
					fmt.Fprintln(env.Stdout, name)
					continue
				}
				kind, size := "-", fmt.Sprint(e.Size)
				if e.Dir {
					kind, size = "d", "-"
				}
				fmt.Fprintf(env.Stdout, "%s %*s %s %s\n", kind, width, size, e.Modified.Local().Format(timeFormat), name)
			}
			return nil
		},
	}
	return c.main(ctx, env, args)
}

func runStat(ctx context.Context, env *Env, args []string) error {
	var asJSON bool
	c := lnpCommand{
		name: "stat", synopsis: "stat PATH [--json]",
		help: "Prints what the server knows of the file or folder PATH.",
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print a JSON object: path, name, type, size, modified, sha256")
		},
		args: wantArgs("stat", 1, 1, "one PATH"),
		run: func(ctx context.Context, s *lnpSession, pos []string) error {
			e, err := s.Stat(ctx, pos[0])
			if err != nil {
				return err
			}
			j := toJSON(e)
			j.Path = pos[0]
			if asJSON {
				return writeJSON(env.Stdout, j)
			}
			fmt.Fprintf(env.Stdout, "path:     %s\ntype:     %s\n", printable(j.Path), j.Type)
			if !e.Dir {
				fmt.Fprintf(env.Stdout, "size:     %d (%s)\n", e.Size, formatBytes(int64(e.Size)))
			}
			fmt.Fprintf(env.Stdout, "modified: %s\n", e.Modified.Local().Format(timeFormat+" -0700"))
			if !e.Dir {
				sum := j.SHA256
				if sum == "" {
					sum = "not known yet (the server computes it at the first download)"
				}
				fmt.Fprintf(env.Stdout, "sha256:   %s\n", sum)
			}
			return nil
		},
	}
	return c.main(ctx, env, args)
}

func runRm(ctx context.Context, env *Env, args []string) error {
	var (
		tf                 transferFlags
		wholeSpace, asJSON bool
	)
	c := lnpCommand{
		name: "rm", synopsis: "rm [-r] PATH...",
		help: "Removes each file or empty folder PATH from your space.\n" +
			"\n" +
			"With -r, a folder PATH goes with everything in it, at once and without a\n" +
			"question, as rm -r does; a summary says what was removed. The top of your\n" +
			"space (\"/\") is removed only with --whole-space as well (its files and\n" +
			"folders; the shared area stays), and nothing in the shared area can be: it\n" +
			"is the course protocol's, read-only.",
		flags: func(fs *flag.FlagSet) {
			tf.define(fs, false)
			fs.BoolVar(&wholeSpace, "whole-space", false, "with -r, allow PATH \"/\": every file and folder of your space")
			fs.BoolVar(&asJSON, "json", false, "with -r, print a JSON summary: files, folders, seconds, skipped, failed")
		},
		args: func(pos []string) error {
			if err := wantArgs("rm", 1, 1<<20, "one PATH or more")(pos); err != nil {
				return err
			}
			if wholeSpace && !tf.recursive {
				return usageError("--whole-space goes with -r")
			}
			return tf.check()
		},
		run: func(ctx context.Context, s *lnpSession, pos []string) error {
			if tf.recursive {
				tf.transfers = defaultTransfers
				for _, p := range pos {
					if err := rmTree(ctx, env, s, tf, p, wholeSpace, asJSON); err != nil {
						return err
					}
				}
				return nil
			}
			for _, p := range pos {
				if err := s.Delete(ctx, p); err != nil {
					return withHint(err, map[lnp.Status]string{lnp.StatusConflict: "a folder must be empty to be removed (-r removes it with everything in it)"})
				}
			}
			return nil
		},
	}
	return c.main(ctx, env, args)
}

func runMv(ctx context.Context, env *Env, args []string) error {
	var overwrite bool
	c := lnpCommand{
		name: "mv", synopsis: "mv FROM TO [-f]",
		help: "Moves or renames the file or folder FROM to TO, within your space. A TO that\n" +
			"is a folder, or ends in a slash, gets FROM's name in it.",
		flags: func(fs *flag.FlagSet) { fs.BoolVar(&overwrite, "f", false, "replace TO if it exists") },
		args:  wantArgs("mv", 2, 2, "FROM and TO"),
		run: func(ctx context.Context, s *lnpSession, pos []string) error {
			to, err := intoFolder(ctx, s, pos[1], path.Base(strings.TrimRight(pos[0], "/")))
			if err != nil {
				return err
			}
			err = s.Rename(ctx, pos[0], to, overwrite)
			if overwrite {
				return withHint(err, nil) // a conflict despite -f: a folder not empty, or being removed
			}
			return withHint(err, map[lnp.Status]string{lnp.StatusConflict: "-f replaces it"})
		},
	}
	return c.main(ctx, env, args)
}

func runMkdir(ctx context.Context, env *Env, args []string) error {
	var parents bool
	c := lnpCommand{
		name: "mkdir", synopsis: "mkdir [-p] PATH...",
		help: "Makes each folder PATH in your space.",
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&parents, "p", false, "make missing parents too, and accept folders that exist")
		},
		args: wantArgs("mkdir", 1, 1<<20, "one PATH or more"),
		run: func(ctx context.Context, s *lnpSession, pos []string) error {
			for _, p := range pos {
				if err := mkdir(ctx, s, p, parents); err != nil {
					return err
				}
			}
			return nil
		},
	}
	return c.main(ctx, env, args)
}

// mkdir makes the folder p, and with parents its missing parents, where a
// folder that exists is no conflict.
func mkdir(ctx context.Context, s *lnpSession, p string, parents bool) error {
	if !parents {
		err := s.Mkdir(ctx, p)
		if st, ok := lnpStatus(err); ok && st == lnp.StatusNotFound {
			parent := path.Dir(strings.TrimRight(p, "/"))
			return &hintError{err: &restated{msg: fmt.Sprintf("mkdir: cannot make %s: its parent folder %s does not exist", printable(p), printable(parent)), err: err},
				hint: "-p makes the missing parents too"}
		}
		return err
	}
	elems := strings.Split(strings.Trim(p, "/"), "/")
	for i := range elems {
		dir := "/" + strings.Join(elems[:i+1], "/")
		err := s.Mkdir(ctx, dir)
		if st, ok := lnpStatus(err); ok && st == lnp.StatusConflict {
			if e, serr := s.Stat(ctx, dir); serr == nil && e.Dir {
				continue
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}
