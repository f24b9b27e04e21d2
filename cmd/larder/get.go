package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/native"
	"github.com/larderfs/larder/wire"
)

func runGet(ctx context.Context, env *Env, args []string) error {
	var f nativeFlags
	flags := f.clientFlags.newFlagSet(env, "get", "get PATH [-o FILE] [flags]",
		"Fetches the file at PATH and checks it against the server's hashes.\n"+
			"\n"+
			"After 'larder login' (a profile exists), or with --native, get speaks the\n"+
			"native protocol (LNP/1, over TLS): FILE is by default PATH's name in the\n"+
			"current folder (\"-\": stdout). A FILE that exists is taken for an earlier,\n"+
			"interrupted download: its blocks that match the server's are kept and only\n"+
			"the rest is fetched (--no-resume starts over). The whole file is checked\n"+
			"before get reports success; a failed download keeps what it fetched, for the\n"+
			"next run to go on from. A new FILE is private (mode 0600). The server, user\n"+
			"and trust come from the flags, else LARDER_NATIVE_SERVER and LARDER_USER,\n"+
			"else the profile.\n"+
			"\n"+
			"Otherwise, or with --course, get speaks the course protocol: the payload\n"+
			"goes to stdout, or with -o to FILE, which appears only once it is complete\n"+
			"and verified.")
	f.defineTrust(flags)
	// Its default depends on the protocol, which the usage says.
	server := flags.Lookup("server")
	server.Usage = "server `address` (course protocol: env LARDER_SERVER, else " + defaultServer + ";\n" +
		"native: env LARDER_NATIVE_SERVER, else the profile's, else " + defaultNativeServer + ")"
	server.DefValue = ""
	var (
		out                            string
		useNative, useCourse, noResume bool
	)
	flags.StringVar(&out, "o", "", "write to `FILE` (\"-\": stdout); see above for the default")
	flags.BoolVar(&useNative, "native", false, "speak the native protocol, with or without a profile")
	flags.BoolVar(&useCourse, "course", false, "speak the course protocol, even with a profile")
	flags.BoolVar(&noResume, "no-resume", false, "native protocol: start over rather than go on from what FILE holds")
	pos, err := f.parse(flags, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("get takes one PATH, got %d arguments", len(pos))
	}
	if useNative && useCourse {
		return usageError("--native and --course exclude each other")
	}
	if !useNative && !useCourse {
		prof, err := loadProfile(env)
		if err != nil {
			return fmt.Errorf("%w (or pass --course)", err)
		}
		useNative = prof != nil
	}
	if useNative {
		if pos[0] == "" || len(pos[0]) > native.MaxPathSize {
			return usageError("PATH must be 1 to %d bytes long", native.MaxPathSize)
		}
		return getNative(ctx, env, &f, pos[0], out, noResume)
	}
	for _, name := range []string{"ca-file", "system-roots", "insecure-plaintext", "no-resume"} {
		if f.set[name] {
			return usageError("--%s is for the native protocol: log in first ('larder login'), or pass --native", name)
		}
	}
	return getCourse(ctx, env, &f.clientFlags, pos[0], out)
}

// getCourse fetches path through the course protocol into out, or to
// stdout.
func getCourse(ctx context.Context, env *Env, f *clientFlags, path, out string) error {
	if path == "" || len(path) > wire.MaxBodySize {
		return usageError("PATH must be 1 to %d bytes long", wire.MaxBodySize)
	}
	if err := f.resolveUser(); err != nil {
		return err
	}
	s := f.salt
	if s == "" {
		store, err := saltStore(env)
		if err != nil {
			return err
		}
		if s, err = store.Get(f.server, f.user); err != nil {
			if larder.ErrorCode(err) == larder.ENOTFOUND {
				// A missing salt is not a missing file: keep it out of
				// the "not found" exit code.
				return errors.New(larder.ErrorMessage(err))
			}
			return err
		}
	}
	if out == "-" {
		out = ""
	}
	// Fail on an unusable FILE before asking for a password.
	var dst *outputFile
	if out != "" {
		var err error
		if dst, err = createOutput(out); err != nil {
			return err
		}
		defer dst.abort()
	}
	password, err := readPassword(ctx, env, f.passwordStdin, fmt.Sprintf("%s@%s", f.user, f.server), false)
	if err != nil {
		return err
	}

	ctx, cancel, c, err := f.dial(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	defer c.Close()
	var w io.Writer = plainWriter{env.Stdout}
	if dst != nil {
		w = dst.f
	}
	if showProgress(env, dst == nil) {
		bar := newProgressBar(env.Stderr, time.Now)
		c.Progress = bar.update
		defer bar.done()
	}
	res, err := c.Retrieve(ctx, f.user, wire.NewSignature(password, s), path, w)
	if errors.Is(err, client.ErrBufferLimit) {
		return fmt.Errorf("%w: use -o FILE", err)
	}
	if err != nil {
		return err
	}
	if res.NoReply {
		fmt.Fprintf(env.Stderr, "larder: warning: the server sent no reply; the course's reference server does this for an empty file, so %s is taken to be empty\n", path)
	}
	if dst != nil {
		return dst.commit()
	}
	return nil
}

// plainWriter hides every method of an io.Writer but Write. Stdout is an
// *os.File, which the client would otherwise write at offsets from 0: into
// a pipe that cannot seek, or over what a shell wrote before it.
type plainWriter struct{ io.Writer }

// outputFile is the -o FILE of get: the payload goes to a temporary file
// in FILE's folder, which replaces FILE only once the client has verified
// it, so that FILE is never partial or corrupt.
type outputFile struct {
	final string
	f     *os.File
	mode  fs.FileMode // FILE's mode to keep, or 0 for a new file
	done  bool
}

// createOutput creates the temporary file for final.
func createOutput(final string) (*outputFile, error) {
	o := &outputFile{final: final}
	if fi, err := os.Stat(final); err == nil {
		if fi.IsDir() {
			return nil, usageError("-o %s is a folder; name a file", final)
		}
		o.mode = fi.Mode().Perm()
	}
	dir, base := filepath.Split(final)
	if dir == "" {
		dir = "."
	}
	// Not os.CreateTemp, which makes mode 0600: a new FILE should get the
	// usual 0666 less the umask, which only the kernel knows.
	for range 10 {
		name := filepath.Join(dir, "."+base+".larder-"+rand.Text()[:10]+".tmp")
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		o.f = f
		return o, nil
	}
	return nil, fmt.Errorf("cannot create a temporary file next to %s", final)
}

// commit makes the verified payload durable under its final name.
func (o *outputFile) commit() error {
	if err := o.f.Sync(); err != nil {
		return err
	}
	if o.mode != 0 {
		if err := o.f.Chmod(o.mode); err != nil {
			return err
		}
	}
	if err := o.f.Close(); err != nil {
		return err
	}
	if err := os.Rename(o.f.Name(), o.final); err != nil {
		return err
	}
	o.done = true
	// Sync the folder so that the rename survives a crash. Best effort:
	// some systems cannot open a folder for syncing, and the data itself
	// is already safe.
	if d, err := os.Open(filepath.Dir(o.final)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// abort removes the temporary file unless commit renamed it.
func (o *outputFile) abort() {
	if o.done {
		return
	}
	o.f.Close()
	os.Remove(o.f.Name())
}
