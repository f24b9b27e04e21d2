package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"text/tabwriter"

	"github.com/larderfs/larder/internal/clientconf"
)

func remoteCommands() []command {
	return []command{
		{"add", "name a server, its account and how it is trusted", runRemoteAdd},
		{"list", "list the remotes", runRemoteList},
		{"rm", "forget a remote", runRemoteRm},
	}
}

// runRemote keeps the named remotes, which NAME:PATH addresses.
func runRemote(ctx context.Context, env *Env, args []string) error {
	return dispatch(ctx, env, "larder remote", remoteCommands(), args)
}

// remoteFlagSet returns the flag set of a remote subcommand.
func remoteFlagSet(env *Env, name, synopsis, help string) *flag.FlagSet {
	fs := flag.NewFlagSet("remote "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: larder %s\n\n%s\n", synopsis, help)
		if hasFlags(fs) {
			fmt.Fprint(fs.Output(), "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// hasFlags reports whether fs declares any flag.
func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

func runRemoteAdd(ctx context.Context, env *Env, args []string) error {
	var f lnpFlags
	fs := remoteFlagSet(env, "add", "remote add NAME [HOST:PORT] [flags]",
		"Saves the remote NAME: the address of a server's native protocol (LNP/1;\n"+
			"the port defaults to 23457), the account, and how the server's certificate is\n"+
			"trusted (pinned on first use unless --ca-file, --system-roots or\n"+
			"--insecure-plaintext). Then NAME:PATH names PATH on that server in every\n"+
			"command that takes a path on the server ('larder ls work:', 'larder put\n"+
			"notes.txt work:docs/'), and --remote NAME selects it for the others\n"+
			"('larder whoami --remote work'). Without HOST:PORT, the remote is the server,\n"+
			"account and trust of the profile that 'larder login' saved.\n"+
			"\n"+
			"A remote holds no password and no salt: those, the pinned certificate and the\n"+
			"device credential are kept for the server itself, under any spelling of its\n"+
			"address, so 'larder login --remote NAME' and 'larder login --server HOST:PORT'\n"+
			"share them. NAME starts with a letter and holds letters, digits, '.', '_' and\n"+
			"'-'. The remotes are kept in remotes.json in your configuration folder.")
	fs.StringVar(&f.user, "user", "", "`name` of the account (default: the one the command would use without the remote:\n"+
		"--user, else LARDER_USER, else the profile's, else your login name)")
	course := fs.String("course-server", "", "`address` of the server's course protocol, for 'larder get --course NAME:PATH'\n"+
		"and for the salt of 'larder login' (default: the server's host on port "+defaultCoursePort+")")
	force := fs.Bool("f", false, "replace a remote of that name")
	f.defineTrust(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	set := make(map[string]bool)
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if len(pos) < 1 || len(pos) > 2 {
		return usageError("remote add takes NAME and an optional HOST:PORT, got %d arguments", len(pos))
	}
	name := pos[0]
	if err := clientconf.ValidRemoteName(name); err != nil {
		return usageError("remote add: bad NAME %q: %v", name, err)
	}
	var rem clientconf.Remote
	if len(pos) == 2 {
		if rem.Server, err = serverAddr(pos[1], defaultLNPServer); err != nil {
			return usageError("remote add: bad address %q: want HOST:PORT, a host name or IP address and a port from 1 to 65535 (default 23457)", pos[1])
		}
		rem.Trust = clientconf.Trust{Mode: clientconf.TrustPin}
	} else {
		prof, err := loadProfile(env)
		if err != nil {
			return err
		}
		if prof == nil {
			return usageError("remote add: no HOST:PORT and no profile to take it from: name the server, or log in first ('larder login')")
		}
		rem.Server, rem.User, rem.Trust = prof.Server, prof.User, prof.Trust
	}
	if f.user != "" {
		rem.User = f.user
	}
	if rem.User != "" {
		if err := (&clientFlags{user: rem.User}).resolveUser(); err != nil {
			return err
		}
	}
	if *course != "" {
		if rem.CourseServer, err = serverAddr(*course, defaultServer); err != nil {
			return usageError("remote add: bad --course-server %q: want HOST:PORT, a host name or IP address and a port from 1 to 65535 (default %s)", *course, defaultCoursePort)
		}
	}
	if f.caFile != "" {
		// Checked now, not at the first connection, which may be much
		// later and far from this typo.
		if _, err := os.Stat(f.caFile); err != nil {
			return &localError{what: "remote add: cannot read the --ca-file", err: err}
		}
	}
	if given, err := f.flagTrust(); err != nil {
		return err
	} else if given.Mode != "" {
		rem.Trust = given
	}
	conf, err := config(env)
	if err != nil {
		return err
	}
	store := conf.Remotes()
	if !*force {
		if old, ok, err := store.Lookup(name); err != nil {
			return err
		} else if ok {
			return usageError("remote add: %s is already the remote %s (%s); -f replaces it, 'larder remote rm %s' forgets it",
				name, old.Server, remoteUser(old), name)
		}
	}
	if err := store.Record(name, rem); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Remote %s: %s as %s, %s. Saved in %s.\n", name, rem.Server, remoteUser(rem), trustWords(rem.Trust), store.Path())
	return nil
}

// remoteUser returns the account of rem, in words.
func remoteUser(rem clientconf.Remote) string {
	if rem.User == "" {
		return "the default account"
	}
	return rem.User
}

// trustWords says how t trusts a server.
func trustWords(t clientconf.Trust) string {
	switch t.Mode {
	case clientconf.TrustCA:
		if t.CAFile != "" {
			return "certificate checked with " + t.CAFile
		}
		return "certificate checked with the system's authorities"
	case clientconf.TrustPlaintext:
		return "no TLS"
	}
	return "certificate pinned on first use"
}

// remoteJSON is a remote as remote list --json prints it.
type remoteJSON struct {
	Name         string `json:"name"`
	Server       string `json:"server"`
	CourseServer string `json:"course_server"`
	User         string `json:"user"` // "" for the default account
	Trust        string `json:"trust"`
	CAFile       string `json:"ca_file,omitempty"`
	SystemRoots  bool   `json:"system_roots,omitempty"`
}

func runRemoteList(ctx context.Context, env *Env, args []string) error {
	fs := remoteFlagSet(env, "list", "remote list [--json | --names]",
		"Lists the remotes: name, server, account and how the server is trusted.")
	asJSON := fs.Bool("json", false, "print a JSON array: name, server, course_server, user, trust, ca_file, system_roots")
	namesOnly := fs.Bool("names", false, "print only the names, one a line (for scripts and shell completion)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("remote list takes no arguments")
	}
	if *asJSON && *namesOnly {
		return usageError("--json and --names exclude each other")
	}
	conf, err := config(env)
	if err != nil {
		return err
	}
	all, err := conf.Remotes().All()
	if err != nil {
		return err
	}
	names := slices.Sorted(maps.Keys(all))
	switch {
	case *asJSON:
		list := make([]remoteJSON, 0, len(all))
		for _, name := range names {
			r := all[name]
			a := address{name: name, remote: r}
			list = append(list, remoteJSON{Name: name, Server: r.Server, CourseServer: a.courseServer(), User: r.User,
				Trust: string(r.Mode), CAFile: r.CAFile, SystemRoots: r.SystemRoots})
		}
		return writeJSON(env.Stdout, list)
	case *namesOnly:
		for _, name := range names {
			fmt.Fprintln(env.Stdout, name)
		}
		return nil
	}
	if len(names) == 0 {
		fmt.Fprintln(env.Stderr, "larder: no remotes; 'larder remote add NAME HOST:PORT' saves one")
		return nil
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSERVER\tACCOUNT\tTRUST")
	for _, name := range names {
		r := all[name]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, printable(r.Server), printable(remoteUser(r)), printable(trustWords(r.Trust)))
	}
	return tw.Flush()
}

func runRemoteRm(ctx context.Context, env *Env, args []string) error {
	fs := remoteFlagSet(env, "rm", "remote rm NAME...",
		"Forgets each remote NAME. The salts, pinned certificates and device\n"+
			"credentials of its server stay: they belong to the server, not to the name\n"+
			"('larder known-servers rm' forgets a pin, 'larder logout' a device credential).")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageError("remote rm takes one NAME or more")
	}
	conf, err := config(env)
	if err != nil {
		return err
	}
	store := conf.Remotes()
	for _, name := range pos {
		err := store.Remove(name)
		if errors.Is(err, clientconf.ErrNoRemote) {
			_, err = lookupRemote(env, name, "")
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "Forgot the remote %s.\n", name)
	}
	return nil
}
