package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/lnp"
)

func runGet(ctx context.Context, env *Env, args []string) error {
	var f lnpFlags
	flags := f.clientFlags.newFlagSet(env, "get", "get PATH [-o FILE] [flags]\n       larder get -r REMOTE [LOCALDIR] [flags]",
		"Fetches the file at PATH and checks it against the server's hashes.\n"+
			"\n"+
			"FILE (-o) changes only once the whole file has arrived and been checked: the\n"+
			"download goes to a file beside it, which then replaces it in one rename, so a\n"+
			"failed or interrupted get leaves FILE as it was. A FILE that exists is\n"+
			"replaced only if it is an earlier, partial copy of PATH (its bytes are PATH's\n"+
			"first bytes), or with -f. A FILE that is not a regular file (a device such as\n"+
			"/dev/null, a FIFO) is written into, never replaced; \"-\" is stdout. Both are\n"+
			"written as the bytes arrive, before the whole file is checked: a check that\n"+
			"fails (exit code 6) says that what a pipeline read is not the file.\n"+
			"\n"+
			"After 'larder login' (a profile exists), or with --native, get speaks the\n"+
			"native protocol (LNP/1, over TLS): FILE is by default PATH's name in the\n"+
			"current folder. The download goes to FILE.larder-part, which a failed or\n"+
			"interrupted get keeps: the same command goes on from it if its bytes are\n"+
			"PATH's first (checked by the server's block hashes; --no-resume starts over);\n"+
			"so it does from a FILE that is an earlier, partial copy. A FILE.larder-part\n"+
			"that is not is left as it was and named (remove it, or -f starts over); one\n"+
			"that is a link, a device or a FIFO is never followed nor written. A new FILE\n"+
			"is private (mode 0600). The server, user and trust come from the flags, else\n"+
			"LARDER_NATIVE_SERVER and LARDER_USER, else the profile.\n"+
			"\n"+
			"PATH may name a remote ('larder remote'): NAME:PATH, or USER@HOST[:PORT]:PATH;\n"+
			"get then speaks the native protocol to it, or with --course the course protocol\n"+
			"to its course server. A ':' before any '/' names a remote: write /a:b for such\n"+
			"a path on the server.\n"+
			"\n"+
			"Otherwise, or with --course, get speaks the course protocol: the payload\n"+
			"goes to stdout, or with -o to FILE, through a hidden .FILE.larder-*.tmp beside\n"+
			"it; one left by a killed get is removed by the next get of FILE. A server\n"+
			"that closes the connection without a reply is an error: it does not speak\n"+
			"the course protocol, or it is the course's reference server and PATH is an\n"+
			"empty file, for which that server sends nothing.\n"+
			"\n"+
			"With -r (native protocol), the whole tree of the folder REMOTE goes to\n"+
			"LOCALDIR, which becomes its copy (made if need be, so that running the\n"+
			"command again puts the files in the same place); a LOCALDIR that ends in a\n"+
			"slash gets REMOTE's name in it; without LOCALDIR, REMOTE's name in the\n"+
			"current folder. Each file is fetched as above: an existing file is replaced\n"+
			"only if it is an earlier, partial copy, or with -f, and is otherwise skipped\n"+
			"and said so; one that is the server's already is left as it is: one of the\n"+
			"server's size and modification time without reading it (as rsync's quick\n"+
			"check; --checksum compares it whole). No name from\n"+
			"the server is written outside LOCALDIR: names with a separator, \"..\", or\n"+
			"characters that are not printable are skipped, and so is a symbolic link, a\n"+
			"device or a FIFO found in LOCALDIR where a file or folder would go. Up to\n"+
			"--transfers files move at once; the summary and exit code are put -r's.\n"+
			"'larder get -r /' fetches your space without the shared area.")
	f.defineTrust(flags)
	f.defineRemote(flags)
	// Its default depends on the protocol, which the usage says.
	server := flags.Lookup("server")
	server.Usage = "server `address` (course protocol: env LARDER_SERVER, else " + defaultServer + ";\n" +
		"native: env LARDER_NATIVE_SERVER, else the profile's, else " + defaultLNPServer + ")"
	server.DefValue = ""
	var (
		out                                    string
		useLNP, useCourse, noResume, overwrite bool
		noMtime                                bool
	)
	flags.StringVar(&out, "o", "", "write to `FILE` (\"-\": stdout); see above for the default")
	flags.BoolVar(&useLNP, "native", false, "speak the native protocol, with or without a profile")
	flags.BoolVar(&useCourse, "course", false, "speak the course protocol, even with a profile")
	flags.BoolVar(&noResume, "no-resume", false, "native protocol: start over rather than go on from an earlier download")
	flags.BoolVar(&noMtime, "no-mtime", false, "native protocol: leave FILE's modification time at the time of the download\n"+
		"(by default it is set to the server's file's)")
	flags.BoolVar(&overwrite, "overwrite", false, "replace FILE even if it is not an earlier, partial copy of PATH")
	flags.BoolVar(&overwrite, "f", false, "short for --overwrite")
	var tf transferFlags
	tf.define(flags, true)
	asJSON := flags.Bool("json", false, "when done, print a JSON object on stdout: path, local, size, sha256 (and for\n"+
		"the native protocol modified, kept: the bytes a resumed download kept, up_to_date)")
	pos, err := f.parse(flags, args)
	if err != nil {
		return err
	}
	// An empty name is most often a variable that was not set: taken for
	// "not given", it would write into the current folder.
	if f.set["o"] && out == "" || tf.recursive && len(pos) == 2 && pos[1] == "" {
		return usageError("get: an empty LOCAL (a variable that was not set?); leave it out to write into the current folder")
	}
	if *asJSON && out == "-" {
		return usageError("--json prints on stdout, where -o - writes the file: name a FILE")
	}
	if err := tf.check(); err != nil {
		return err
	}
	switch {
	case tf.recursive && (len(pos) < 1 || len(pos) > 2):
		return usageError("get -r takes REMOTE and an optional LOCALDIR, got %d arguments", len(pos))
	case tf.recursive && len(pos) == 2 && out != "":
		return usageError("get -r takes LOCALDIR or -o LOCALDIR, not both")
	case tf.recursive && out == "-":
		return usageError("get -r writes a tree of files, not to stdout")
	case !tf.recursive && len(pos) != 1:
		return usageError("get takes one PATH, got %d arguments", len(pos))
	}
	if useLNP && useCourse {
		return usageError("--native and --course exclude each other")
	}
	// Only PATH is on the server; any later argument is local.
	remote, err := f.addressed(env, "get", pos[:1], 0)
	if err != nil {
		return err
	}
	pos[0] = remote[0]
	if f.addr != nil && useCourse {
		// The remote's course port, as its account.
		f.server = f.addr.courseServer()
		if f.addr.remote.User != "" && !f.set["user"] {
			f.user = f.addr.remote.User
		}
	}
	if f.addr != nil {
		useLNP = !useCourse
	}
	if !useLNP && !useCourse {
		prof, err := loadProfile(env)
		if err != nil {
			return fmt.Errorf("%w (or pass --course)", err)
		}
		useLNP = prof != nil
	}
	if useLNP {
		if pos[0] == "" || len(pos[0]) > lnp.MaxPathSize {
			return usageError("PATH must be 1 to %d bytes long", lnp.MaxPathSize)
		}
		dl := client.DownloadOptions{Overwrite: overwrite, NoResume: noResume}
		if tf.recursive {
			if len(pos) == 2 {
				out = pos[1]
			}
			return getTreeCommand(ctx, env, &f, tf, pos[0], out, dl, !noMtime, *asJSON)
		}
		return getLNP(ctx, env, &f, pos[0], out, dl, getOutput{asJSON: *asJSON, keepMtime: !noMtime, retries: tf.retries})
	}
	if tf.recursive {
		return usageError("get -r is for the native protocol: log in first ('larder login'), or pass --native")
	}
	for _, name := range []string{"ca-file", "system-roots", "insecure-plaintext", "no-resume", "no-mtime"} {
		if f.set[name] {
			return usageError("--%s is for the native protocol: log in first ('larder login'), or pass --native", name)
		}
	}
	if *asJSON && out == "" {
		return usageError("--json prints on stdout, where the course protocol's get writes the file without -o: name a FILE")
	}
	return getCourse(ctx, env, &f.clientFlags, pos[0], out, overwrite, *asJSON)
}

// getCourse fetches path through the course protocol into out, or to
// stdout.
func getCourse(ctx context.Context, env *Env, f *clientFlags, path, out string, overwrite, asJSON bool) error {
	if path == "" || len(path) > course.MaxBodySize {
		return usageError("PATH must be 1 to %d bytes long", course.MaxBodySize)
	}
	if err := f.resolveUser(); err != nil {
		return err
	}
	var err error
	if f.server, err = serverAddr(f.server, defaultServer); err != nil {
		return err
	}
	if out == "-" {
		out = ""
	}
	// Fail on an unusable FILE before asking for a password.
	var (
		dst *client.LocalFile
		dev *os.File // a FILE that is not a regular file, written into
	)
	if out != "" {
		if fi, err := os.Stat(out); err == nil && fi.IsDir() {
			return usageError("-o %s is a folder; name a file", out)
		}
		var err error
		dst, err = client.OpenLocal(out, false)
		if errors.Is(err, client.ErrNotRegular) {
			// No O_TRUNC, no O_CREATE: a device or FIFO as it is.
			dev, err = os.OpenFile(out, os.O_WRONLY, 0)
		}
		if err != nil {
			return err
		}
		if dst != nil {
			defer dst.Abort()
		} else {
			defer dev.Close()
		}
	}
	// Connected first: a server that cannot be reached, or a typo in
	// --server, is said before a missing salt or a password prompt.
	conn, err := f.dialFirst(ctx)
	if err != nil {
		return err
	}
	defer conn.close()
	s := f.salt
	if s == "" {
		store, err := saltStore(env)
		if err != nil {
			return err
		}
		var ok bool
		if s, ok, err = store.Lookup(f.server, f.user); err != nil {
			return err
		} else if !ok {
			return noSalt(store, f.server, f.user)
		}
	}
	password, err := readPassword(ctx, env, f.passwordStdin, fmt.Sprintf("%s@%s", f.user, f.server), false)
	if err != nil {
		return err
	}
	ctx, c, err := conn.get(ctx)
	if err != nil {
		return err
	}
	var w io.Writer = plainWriter{env.Stdout}
	switch {
	case dst != nil:
		w = dst.Part
	case dev != nil:
		w = plainWriter{dev}
	}
	if showProgress(env, out == "") {
		bar := newProgressBar(env.Stderr, time.Now)
		c.Progress = bar.update
		defer bar.done()
	}
	res, err := c.Retrieve(ctx, f.user, larder.NewSignature(password, s), path, w)
	if dst == nil {
		err = streamed(err, out)
	}
	if errors.Is(err, client.ErrBufferLimit) {
		return fmt.Errorf("%w: use -o FILE", err)
	}
	if err != nil {
		return err
	}
	if res.NoReply {
		left := ""
		if dst != nil && dst.Existing != nil {
			left = "; " + out + " was left as it was"
		}
		// errServerClosed: the network exit code.
		return fmt.Errorf("%w with no reply to %s: it is not a course-protocol server (for larder's native port, log in or pass --native), "+
			"or it is the course's reference server and %s is an empty file, for which that server sends nothing%s",
			errServerClosed, printable(path), printable(path), left)
	}
	if dst != nil {
		err := dst.Commit(overwrite, 0)
		if errors.Is(err, client.ErrLocalDiffers) {
			return &hintError{err: err, hint: "pass -f to replace it, or -o to name another file"}
		}
		if err != nil {
			return err
		}
	}
	if asJSON {
		return writeJSON(env.Stdout, getJSON{Path: path, Local: out, Size: res.Size, SHA256: hex.EncodeToString(res.Total[:])})
	}
	return nil
}

// getOutput says what getLNP does besides writing the file.
type getOutput struct {
	asJSON    bool // print a getJSON
	keepMtime bool // give the local file the server's modification time
	retries   int  // --retries
}

// getJSON is what get --json prints.
type getJSON struct {
	Path     string     `json:"path"`
	Local    string     `json:"local"`
	Size     int64      `json:"size"`
	SHA256   string     `json:"sha256"`
	Modified *time.Time `json:"modified,omitempty"` // native protocol only
	Kept     int64      `json:"kept"`               // bytes a resumed download kept
	UpToDate bool       `json:"up_to_date"`         // LOCAL was the file already
}

// streamed is err of a download written to out as it came ("" or "-":
// stdout; else a device or FIFO), where the bytes before a failed check
// are out already: a pipeline may have read them. An integrity error
// then says so, where a file's would say that nothing was kept.
func streamed(err error, out string) error {
	if !errors.Is(err, client.ErrIntegrity) {
		return err
	}
	where := out
	if out == "" || out == "-" {
		where = "stdout"
	}
	return &hintError{err: err, hint: "what was written to " + where + " is not the file: discard it; with -o FILE, FILE changes only once the file is checked"}
}

// plainWriter hides every method of an io.Writer but Write. Stdout is an
// *os.File, which the client would otherwise write at offsets from 0: into
// a pipe that cannot seek, or over what a shell wrote before it.
type plainWriter struct{ io.Writer }
