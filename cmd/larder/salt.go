package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"strings"
	"unicode"
)

func saltCommands() []command {
	return []command{
		{"set", "store the salt an administrator handed over with an account", runSaltSet},
		{"show", "print the salt stored for a server and user", runSaltShow},
	}
}

func runSalt(ctx context.Context, env *Env, args []string) error {
	return dispatch(ctx, env, "larder salt", saltCommands(), args)
}

// saltFlags are the flags of the salt commands: which server and user.
type saltFlags struct {
	server, user string
}

func (s *saltFlags) newFlagSet(env *Env, name, synopsis, help string) *flag.FlagSet {
	fs := flag.NewFlagSet("salt "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: larder %s\n\n%s\n\nFlags:\n", synopsis, help)
		fs.PrintDefaults()
	}
	server := env.Getenv("LARDER_SERVER")
	if server == "" {
		server = defaultServer
	}
	fs.StringVar(&s.server, "server", server, "the course protocol's `address`, as you pass it to 'larder get' (env LARDER_SERVER);\n"+
		"any spelling of the same server finds the salt (localhost, 127.0.0.1, ::1)")
	fs.StringVar(&s.user, "user", env.Getenv("LARDER_USER"), "`name` of the account (env LARDER_USER; default: your login name)")
	return fs
}

// resolve checks the flags and fills in their defaults, as get does.
func (s *saltFlags) resolve() error {
	var err error
	if s.server, err = serverAddr(s.server, defaultServer); err != nil {
		return err
	}
	f := clientFlags{user: s.user}
	if err := f.resolveUser(); err != nil {
		return err
	}
	s.user = f.user
	return nil
}

// checkSalt refuses a salt that a copy from a terminal or a mail has most
// likely cut or padded: empty, with a control character (a line break, a
// tab), or with spaces at either end. A space inside is a salt someone
// chose (larder's own salts are letters and digits).
func checkSalt(s string) error {
	switch {
	case s == "":
		return usageError("the salt is empty")
	case strings.TrimSpace(s) != s:
		return usageError("the salt %q begins or ends with a space: copy it again, whole", s)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return usageError("the salt holds the control character %q: copy it again, whole, on one line", r)
		}
	}
	return nil
}

func runSaltSet(ctx context.Context, env *Env, args []string) error {
	var sf saltFlags
	fs := sf.newFlagSet(env, "set", "salt set [--server ADDR] [--user NAME] [--replace] SALT",
		"Stores SALT as the salt you sign with on the course protocol as --user on\n"+
			"--server, in your configuration folder, so that 'larder get' and 'larder\n"+
			"login' find it. It is the salt an administrator prints with an account they\n"+
			"made ('larder admin user add --course'), or gave a new password to. SALT \"-\"\n"+
			"reads it from the first line of stdin, which keeps it out of your shell's\n"+
			"history.\n"+
			"\n"+
			"A different salt stored already is replaced only with --replace (it is then\n"+
			"printed, in case it was the right one): the salt of an account you registered\n"+
			"yourself exists nowhere else, and without it the account cannot be used.")
	replace := fs.Bool("replace", false, "replace a different salt stored for this server and user")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("salt set takes one SALT, got %d arguments", len(pos))
	}
	if err := sf.resolve(); err != nil {
		return err
	}
	salt := pos[0]
	if salt == "-" {
		line, err := bufio.NewReader(env.Stdin).ReadString('\n')
		if err != nil && line == "" {
			return fmt.Errorf("reading the salt from stdin: %w", err)
		}
		salt = strings.TrimRight(line, "\r\n")
	}
	if err := checkSalt(salt); err != nil {
		return err
	}
	store, err := saltStore(env)
	if err != nil {
		return err
	}
	old, ok, err := store.Lookup(sf.server, sf.user)
	if err != nil {
		return err
	}
	switch {
	case ok && old == salt:
		fmt.Fprintf(env.Stdout, "salt for %s on %s already stored in %s\n", sf.user, sf.server, store.Path())
		return nil
	case ok && !*replace:
		return fmt.Errorf("a different salt is stored for %s on %s in %s: pass --replace to replace it "+
			"(only if the account's password was reset with this salt; 'larder salt show' prints the one stored)",
			sf.user, sf.server, store.Path())
	}
	if err := store.Record(sf.server, sf.user, salt); err != nil {
		return err
	}
	if ok {
		fmt.Fprintf(env.Stderr, "larder: the salt it replaces was: %s\n", old)
	}
	fmt.Fprintf(env.Stdout, "salt for %s on %s stored in %s\n", sf.user, sf.server, store.Path())
	return nil
}

func runSaltShow(ctx context.Context, env *Env, args []string) error {
	var sf saltFlags
	fs := sf.newFlagSet(env, "show", "salt show [--server ADDR] [--user NAME]",
		"Prints the salt stored for --user on --server: to copy it to another machine\n"+
			"('larder salt set' there), or to give it to an administrator who resets your\n"+
			"password, so that the new password goes with the salt you already have\n"+
			"('larder admin user passwd NAME --salt SALT').")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError("salt show takes no arguments, got %d", len(pos))
	}
	if err := sf.resolve(); err != nil {
		return err
	}
	store, err := saltStore(env)
	if err != nil {
		return err
	}
	s, ok, err := store.Lookup(sf.server, sf.user)
	if err != nil {
		return err
	}
	if !ok {
		return noSalt(store, sf.server, sf.user)
	}
	fmt.Fprintln(env.Stdout, s)
	return nil
}
