package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os/user"
	"strings"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/internal/clientconf"
)

// defaultServer is the course's port on this machine.
const defaultServer = "127.0.0.1:23456"

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

func runRegister(ctx context.Context, env *Env, args []string) error {
	var f clientFlags
	fs := f.newFlagSet(env, "register", "register [flags]",
		"Registers an account on a server. A random salt is made for the account and\n"+
			"kept in your configuration folder; the password never leaves this machine.")
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

	// Make sure the salt can be stored before the server registers the
	// account: afterwards, a failure would leave an account nobody can
	// sign for.
	var store *clientconf.Salts
	s := f.salt
	if s == "" {
		if store, err = saltStore(env); err != nil {
			return err
		}
		if err := store.Prepare(); err != nil {
			return err
		}
		if s, err = larder.NewSalt(); err != nil {
			return err
		}
	}
	password, err := readPassword(ctx, env, f.passwordStdin, fmt.Sprintf("%s@%s", f.user, f.server), true)
	if err != nil {
		return err
	}

	ctx, cancel, c, err := f.dial(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	defer c.Close()
	msg, err := c.Register(ctx, f.user, larder.NewSignature(password, s))
	if errors.Is(err, client.ErrNoReply) {
		// errServerClosed: the network exit code, as get's.
		return fmt.Errorf("%w with no reply to the registration: it is not a course-protocol server "+
			"(larder's native port, perhaps: register on its course port, then 'larder login' to the native one)", errServerClosed)
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
