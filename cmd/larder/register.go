package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/internal/clientconf"
)

// defaultServer is the course's port on this machine.
const defaultServer = "127.0.0.1:23456"

// serverAddr returns the address --server (or its variable) gave,
// with the port of def added to a host given alone ("example.org",
// "::1"), or a usage error that says what is wrong.
func serverAddr(addr, def string) (string, error) {
	_, defPort, _ := net.SplitHostPort(def)
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
		if h, ok := strings.CutPrefix(addr, "["); ok {
			if host, ok = strings.CutSuffix(h, "]"); !ok {
				return "", usageError("bad --server %q: want HOST:PORT", addr)
			}
		}
		if strings.Contains(host, ":") && net.ParseIP(host) == nil {
			return "", usageError("bad --server %q: want HOST:PORT", addr)
		}
		port = defPort
	}
	if host == "" || strings.ContainsAny(host, " /[]") {
		return "", usageError("bad --server %q: want HOST:PORT (the host is missing or not a name)", addr)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return "", usageError("bad --server %q: the port must be a number from 1 to 65535", addr)
	}
	return net.JoinHostPort(host, port), nil
}

// clientFlags are the flags that register and get share.
type clientFlags struct {
	server        string
	user          string
	salt          string // "" means the stored salt
	passwordStdin bool

	connectTimeout time.Duration
	idleTimeout    time.Duration
	timeout        time.Duration
}

// newFlagSet returns the flag set of a client subcommand, with the shared
// flags declared in f and a usage text made of synopsis and help.
func (f *clientFlags) newFlagSet(env *Env, name, synopsis, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: larder %s\n\n%s\n\nFlags:\n", synopsis, help)
		fs.PrintDefaults()
	}
	f.define(fs, env)
	return fs
}

// define declares the shared flags on fs, with defaults from env.
func (f *clientFlags) define(fs *flag.FlagSet, env *Env) {
	server := env.Getenv("LARDER_SERVER")
	if server == "" {
		server = defaultServer
	}
	fs.StringVar(&f.server, "server", server, "server `address` (env LARDER_SERVER)")
	f.defineAccount(fs, env)
}

// defineAccount declares the shared flags but --server, whose default
// depends on the protocol.
func (f *clientFlags) defineAccount(fs *flag.FlagSet, env *Env) {
	fs.StringVar(&f.user, "user", env.Getenv("LARDER_USER"), "`name` of the account (env LARDER_USER; default: your login name)")
	fs.StringVar(&f.salt, "salt", "", "sign with this `salt` instead of the stored one, and store nothing\n"+
		"(e.g. the course client's 0123456789 repeated to 64 characters)")
	fs.BoolVar(&f.passwordStdin, "password-stdin", false, "read the password from the first line of stdin\n"+
		"(else env LARDER_PASSWORD, else a prompt on the terminal)")
	fs.DurationVar(&f.connectTimeout, "connect-timeout", 10*time.Second, "give up connecting after this long")
	fs.DurationVar(&f.idleTimeout, "idle-timeout", 30*time.Second, "give up when the server is silent this long (0: never)")
	fs.DurationVar(&f.timeout, "timeout", 0, "give up on the whole request after this long (0: never)")
}

// resolveUser fills in the default user and checks the name.
func (f *clientFlags) resolveUser() error {
	if f.user == "" {
		u, err := user.Current()
		if err != nil {
			return usageError("cannot tell who you are (%v): pass --user", err)
		}
		f.user = u.Username
		if i := strings.LastIndexByte(f.user, '\\'); i >= 0 {
			f.user = f.user[i+1:] // Windows: DOMAIN\name
		}
	}
	if err := larder.ValidateUsername(f.user); err != nil {
		return usageError("bad --user: %s", larder.ErrorMessage(err))
	}
	return nil
}

// dial connects within the connect timeout and sets up the client's idle
// timeout. The returned context carries the overall timeout; cancel it
// when done.
func (f *clientFlags) dial(ctx context.Context) (context.Context, context.CancelFunc, *client.Client, error) {
	cancel := context.CancelFunc(func() {})
	if f.timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, f.timeout)
	}
	dctx := ctx
	if f.connectTimeout > 0 {
		var dcancel context.CancelFunc
		dctx, dcancel = context.WithTimeout(ctx, f.connectTimeout)
		defer dcancel()
	}
	c, err := client.Dial(dctx, f.server)
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	c.IdleTimeout = f.idleTimeout
	return ctx, cancel, c, nil
}

// earlyConn is a course-protocol connection made before the password
// is asked for, so that a server that cannot be reached says so first.
type earlyConn struct {
	f      *clientFlags
	at     time.Time
	ctx    context.Context
	cancel context.CancelFunc
	c      *client.Client
}

// dialFirst connects to f's server before anything is asked for.
func (f *clientFlags) dialFirst(ctx context.Context) (*earlyConn, error) {
	rctx, cancel, c, err := f.dial(ctx)
	if err != nil {
		return nil, err
	}
	return &earlyConn{f: f, at: time.Now(), ctx: rctx, cancel: cancel, c: c}, nil
}

// get returns the connection and its context; a new one if the early one
// is no longer fresh (see freshFor): the course server gives a
// connection its request timeout to send the whole request.
func (e *earlyConn) get(ctx context.Context) (context.Context, *client.Client, error) {
	if time.Since(e.at) >= freshFor {
		e.close()
		rctx, cancel, c, err := e.f.dial(ctx)
		if err != nil {
			return nil, nil, err
		}
		e.ctx, e.cancel, e.c = rctx, cancel, c
	}
	return e.ctx, e.c, nil
}

func (e *earlyConn) close() {
	if e.c != nil {
		e.c.Close()
		e.cancel()
		e.c = nil
	}
}

func runRegister(ctx context.Context, env *Env, args []string) error {
	for i, a := range args {
		if a == "--native" || a == "-native" {
			return runRegisterNative(ctx, env, append(args[:i:i], args[i+1:]...))
		}
		if a == "--" {
			break
		}
	}
	var f clientFlags
	fs := f.newFlagSet(env, "register", "register [flags]",
		"Registers an account on a server. A random salt is made for the account and\n"+
			"kept in your configuration folder; the password never leaves this machine.\n"+
			"With --native, registers on the native protocol instead (see 'larder register\n"+
			"--native -h').")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("register takes no arguments, got %q", pos)
	}
	if err := f.resolveUser(); err != nil {
		return err
	}
	if f.server, err = serverAddr(f.server, defaultServer); err != nil {
		return err
	}

	s, store, err := registrationSalt(env, f.salt)
	if err != nil {
		return err
	}
	conn, err := f.dialFirst(ctx)
	if err != nil {
		return err
	}
	defer conn.close()
	password, err := readPassword(ctx, env, f.passwordStdin, fmt.Sprintf("%s@%s", f.user, f.server), true)
	if err != nil {
		return err
	}
	ctx, c, err := conn.get(ctx)
	if err != nil {
		return err
	}
	msg, err := c.Register(ctx, f.user, larder.NewSignature(password, s))
	if errors.Is(err, client.ErrNoReply) {
		// errServerClosed: the network exit code, as get's.
		return fmt.Errorf("%w with no reply to the registration: it is not a course-protocol server "+
			"(larder's native port, perhaps: 'larder register --native --server %s' registers there)", errServerClosed, f.server)
	}
	if se, ok := errors.AsType[*client.StatusError](err); ok && se.Status == course.StatusBadRequest {
		return &registrationRefused{err: err}
	}
	if err != nil {
		return err
	}
	if store != nil {
		if err := store.Record(f.server, f.user, s); err != nil {
			// The account exists now and this salt is the only way into it.
			fmt.Fprintf(env.Stderr, "larder: the server registered %q, but its salt could not be saved: %v\n"+
				"larder: without this salt the account cannot be used; keep it somewhere private:\n\n    %s\n\n"+
				"larder: pass it to 'larder get' with --salt\n",
				f.user, err, s)
			return fmt.Errorf("saving the salt: %w", err)
		}
		fmt.Fprintf(env.Stderr, "larder: salt for %s on %s saved in %s\n", f.user, f.server, store.Path())
	}
	fmt.Fprintln(env.Stdout, msg)
	return nil
}

// registrationSalt returns the salt of a new account: given (then the
// store is nil: nothing is stored), or a new random one with the store it
// goes into, checked to be writable first: once the server has made the
// account, a salt that cannot be stored leaves an account nobody can
// sign for.
func registrationSalt(env *Env, given string) (string, *clientconf.Salts, error) {
	if given != "" {
		return given, nil, nil
	}
	store, err := saltStore(env)
	if err != nil {
		return "", nil, err
	}
	if err := store.Prepare(); err != nil {
		return "", nil, err
	}
	s, err := larder.NewSalt()
	return s, store, err
}

// runRegisterNative registers over the native protocol: the account gets
// its LNP/1 credential at once and logs in over LNP/1 only, unless
// --course (or --salt) asks for a course signature too, with a new random
// salt kept as the course registration keeps it.
func runRegisterNative(ctx context.Context, env *Env, args []string) error {
	var f lnpFlags
	fs := f.newFlagSet(env, "register --native", "register --native [--course] [flags]",
		"Registers an account on a server's native protocol (LNP/1), and logs it in once.\n"+
			"The password never leaves this machine: the server gets a credential derived\n"+
			"from it for the native protocol's channel-bound login. The account logs in\n"+
			"over the native protocol only, unless --course also gives it a password for\n"+
			"the course protocol (which sends its signature in the clear): the signature of\n"+
			"a random salt kept in your configuration folder.\n"+
			"Then run 'larder login' to save a profile.")
	withCourse := fs.Bool("course", false, "also give the account a password for the course protocol (implied by --salt)")
	pos, err := f.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("register takes no arguments, got %q", pos)
	}
	t, err := f.target(env)
	if err != nil {
		return err
	}
	var s string
	var store *clientconf.Salts
	if *withCourse || f.salt != "" {
		if s, store, err = registrationSalt(env, f.salt); err != nil {
			return err
		}
	}
	opts, err := loginOptions(env, f.idleTimeout)
	if err != nil {
		return err
	}
	if err := f.dialFirst(ctx, env, t); err != nil {
		return err
	}
	defer f.closeEarly()
	password, err := readPassword(ctx, env, f.passwordStdin, t.user+"@"+t.server, true)
	if err != nil {
		return err
	}
	if f.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.timeout)
		defer cancel()
	}
	conn, err := f.dialLNP(ctx, env, t)
	if err != nil {
		return err
	}
	var sess *client.Session
	// The session only registers: it needs no feature, and a server from
	// before features would refuse an offer.
	opts.Features = 0
	if s != "" {
		sess, err = client.Register(ctx, conn, t.user, larder.NewSignature(password, s), password, opts)
	} else {
		sess, err = client.RegisterLNP(ctx, conn, t.user, password, opts)
	}
	if err != nil {
		return sessionError(err)
	}
	sess.Close()
	if store != nil {
		if err := store.Record(t.server, t.user, s); err != nil {
			fmt.Fprintf(env.Stderr, "larder: the server registered %q, but its salt could not be saved: %v\n"+
				"larder: the native protocol does not need it; the course protocol does: keep it somewhere private:\n\n    %s\n\n",
				t.user, err, s)
		} else {
			fmt.Fprintf(env.Stderr, "larder: salt for %s on %s saved in %s\n", t.user, t.server, store.Path())
		}
	}
	if err := rememberEnrolled(env, t.server, t.user); err != nil {
		fmt.Fprintf(env.Stderr, "larder: warning: cannot note that %s on %s is enrolled: %v\n", t.user, t.server, err)
	}
	only := " only"
	if s != "" {
		only = "; also the course protocol"
	}
	fmt.Fprintf(env.Stdout, "New user %s registered on %s (native protocol%s).\n", printable(t.user), t.server, only)
	return nil
}
