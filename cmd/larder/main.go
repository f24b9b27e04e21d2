// Command larder is the larder file server and its client.
//
//	larder serve                 run the server: the course protocol and LNP/1
//	larder register              register an account on a server
//	larder login                 log in to a server's LNP/1, save a profile
//	larder get PATH [-o FILE]    fetch a file (LNP/1 after login, else the course protocol)
//	larder put LOCAL [REMOTE]    upload a file (LNP/1)
//	larder ls, stat, mkdir, mv, rm, passwd, whoami, parts
//	                             the rest of LNP/1
//	larder admin ...             administer accounts and password hashing
//	larder audit                 read the audit trail
//	larder audit-writer          move the audit trail from NATS JetStream into PostgreSQL
//	larder version, --version    print the version, commit and Go release
//	larder check server ADDR     check a course-protocol server against the protocol
//	larder check client -- CMD   check a course-protocol client against an adversarial server
//
// main only wires signals and exit codes; Run dispatches to one file per
// subcommand. Run "larder help" for the list of subcommands and
// "larder CMD -h" for the flags of one.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, restore the default action so that a second
	// one kills the process even while a graceful shutdown is under way.
	go func() { <-ctx.Done(); stop() }()

	env := &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, SystemConfig: SystemConfigFile}
	err := Run(ctx, env, os.Args[1:])
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) && !errors.As(err, new(*loggedError)) {
		fmt.Fprintf(os.Stderr, "larder: %s\n", Message(err))
	}
	os.Exit(ExitCode(err))
}

// Env is what a subcommand may touch of the process it runs in, so that
// tests can run subcommands in-process with their own streams and
// environment.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// SystemConfig is the configuration file read when no other is
	// named and the user has none: SystemConfigFile for the program,
	// "" in tests, so that a machine's file never changes their outcome.
	SystemConfig string
}

// A command is one subcommand of larder.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *Env, args []string) error
}

// commands lists the subcommands in the order "larder help" shows them.
func commands() []command {
	return []command{
		{"serve", "run the file server", runServe},
		{"register", "register an account on a server", runRegister},
		{"login", "log in to a server's native protocol and save a profile", runLogin},
		{"get", "fetch a file (native protocol after login, else the course protocol)", runGet},
		{"put", "upload a file, resuming an interrupted upload (native)", runPut},
		{"ls", "list a folder (native)", runLs},
		{"stat", "describe a file or folder (native)", runStat},
		{"mkdir", "make a folder (native)", runMkdir},
		{"mv", "move or rename a file or folder (native)", runMv},
		{"rm", "remove a file or an empty folder (native)", runRm},
		{"passwd", "change your password (native)", runPasswd},
		{"devices", "list the machines that log in without the password (native)", runDevices},
		{"logout", "revoke this machine's device credential (native)", runLogout},
		{"whoami", "show your account, usage and quotas (native)", runWhoami},
		{"parts", "list or cancel your unfinished uploads (native)", runParts},
		{"remote", "name servers for NAME:PATH: add, list or forget remotes", runRemote},
		{"salt", "store or show the salt you sign with on the course protocol", runSalt},
		{"known-servers", "list or forget the certificates pinned for servers", runKnownServers},
		{"config", "check or show the server's configuration file", runConfig},
		{"admin", "administer accounts and password hashing", runAdmin},
		{"audit", "read the audit trail", runAudit},
		{"audit-writer", "move the audit trail from NATS JetStream into PostgreSQL", runAuditWriter},
		{"version", "print larder's version, commit and Go release (also --version)", runVersion},
		{"check", "check another course-protocol server or client against the protocol", runCheck},
		{"completion", "print the shell completion script for bash, zsh or fish", runCompletion},
		{"man", "write the manual pages, larder(1) and larder-CMD(1)", runMan},
	}
}

// Run runs the subcommand named by args[0].
func Run(ctx context.Context, env *Env, args []string) error {
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-version") {
		return runVersion(ctx, env, args[1:])
	}
	return dispatch(ctx, env, "larder", commands(), args)
}

// dispatch runs the command of cmds named by args[0]; prog names the
// program or command group ("larder", "larder admin") in messages.
func dispatch(ctx context.Context, env *Env, prog string, cmds []command, args []string) error {
	// Messages get "larder: " from main; say only the rest of prog.
	where := strings.TrimPrefix(strings.TrimPrefix(prog, "larder"), " ")
	if where != "" {
		where += ": "
	}
	if len(args) == 0 {
		usage(env.Stderr, prog, cmds)
		return usageError("%sno command given", where)
	}
	switch args[0] {
	case "help":
		if len(args) > 1 {
			return help(ctx, env, prog, cmds, args[1:])
		}
		usage(env.Stdout, prog, cmds)
		return nil
	case "-h", "-help", "--help":
		usage(env.Stdout, prog, cmds)
		return &helpRequest{cmds: cmds}
	}
	for _, c := range cmds {
		if c.name == args[0] {
			return c.run(ctx, env, args[1:])
		}
	}
	usage(env.Stderr, prog, cmds)
	return usageError("%sunknown command %q", where, args[0])
}

// help prints the help of the command that args name ("get", "admin
// user add"), on stdout: what "CMD -h" prints.
func help(ctx context.Context, env *Env, prog string, cmds []command, args []string) error {
	for _, c := range cmds {
		if c.name == args[0] {
			e := *env
			e.Stderr = env.Stdout
			err := c.run(ctx, &e, append(slices.Clone(args[1:]), "-h"))
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
	}
	usage(env.Stderr, prog, cmds)
	return usageError("help: unknown command %q", args[0])
}

func usage(w io.Writer, prog string, cmds []command) {
	fmt.Fprintf(w, "Usage: %s <command> [flags] [args]\n\nCommands:\n", prog)
	width := 10
	for _, c := range cmds {
		width = max(width, len(c.name))
	}
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-*s %s\n", width, c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun '%s help <command>' or '%s <command> -h' for the help of a command.\n", prog, prog)
}

// helpRequest is the error of a command line that asked for help (-h),
// which is flag.ErrHelp: it carries what printed the help, the command's
// flag set or the commands of a group, from which the shell completion
// and the man pages are made (see describe).
type helpRequest struct {
	fs   *flag.FlagSet
	cmds []command
}

func (h *helpRequest) Error() string        { return flag.ErrHelp.Error() }
func (h *helpRequest) Is(target error) bool { return target == flag.ErrHelp }

// UsageError reports a command line that could not be understood.
type UsageError struct{ msg string }

func (e *UsageError) Error() string { return e.msg }

func usageError(format string, args ...any) error {
	return &UsageError{msg: fmt.Sprintf(format, args...)}
}

// parseFlags parses args with fs, allowing flags after positional arguments
// ("larder get notes.txt -o out") as users type them; everything after
// "--" is positional. It returns the positional arguments. Errors other
// than flag.ErrHelp are usage errors.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, &helpRequest{fs: fs}
			}
			return nil, usageError("%v", err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, applyConfig(fs)
		}
		// Parse stops at the first non-flag, or just after a "--", which
		// it consumes; after "--" every argument is positional.
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(positional, rest...), applyConfig(fs)
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// applyConfig sets the flags of fs that the command line left from the
// environment and the configuration file, if fs has --config.
func applyConfig(fs *flag.FlagSet) error {
	if f := fs.Lookup("config"); f != nil {
		if c, ok := f.Value.(*configFlag); ok {
			return c.apply(fs)
		}
	}
	return nil
}
