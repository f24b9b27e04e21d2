package main

import (
	"context"
	"flag"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"time"

	"github.com/larderfs/larder/internal/check"
)

func runCheck(ctx context.Context, env *Env, args []string) error {
	return dispatch(ctx, env, "larder check", []command{
		{"server", "check a course-protocol server against the protocol", runCheckServer},
		{"client", "check a course-protocol client against an adversarial server", runCheckClient},
	}, args)
}

func runCheckServer(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("check server", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: larder check server [flags] HOST:PORT\n\n%s\n\nFlags:\n", checkServerHelp)
		fs.PrintDefaults()
	}
	var (
		cfg     check.ServerConfig
		asJSON  bool
		timeout time.Duration
		run     string
	)
	fs.StringVar(&cfg.Files, "files", "", "the `folder` the server serves, on this machine and writable: the checker places its own files there (and removes them after)")
	fs.StringVar(&cfg.Profile, "profile", check.ProfileStrict, "strict, or reference: the course reference server's known failures are expected, not counted")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON, for grading scripts")
	fs.DurationVar(&timeout, "timeout", 5*time.Second, "how long each exchange may take")
	fs.IntVar(&cfg.Clients, "clients", 16, "clients of the many-clients check, at once (1 to 256)")
	fs.StringVar(&run, "run", "", "run only the checks whose ID matches this `regexp` (register.new always runs)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return usageError("check server: want one HOST:PORT, got %d arguments", len(pos))
	}
	if cfg.Clients < 1 || cfg.Clients > 256 {
		return usageError("check server: --clients must be from 1 to 256, got %d", cfg.Clients)
	}
	if timeout <= 0 {
		return usageError("check server: --timeout must be positive, got %v", timeout)
	}
	if cfg.Profile != check.ProfileStrict && cfg.Profile != check.ProfileReference {
		return usageError("check server: bad --profile %q: want strict or reference", cfg.Profile)
	}
	cfg.Addr, cfg.Timeout = pos[0], timeout
	if cfg.Only, err = onlyFlag(run); err != nil {
		return err
	}
	rep, err := check.Server(ctx, cfg)
	return writeReport(env, rep, err, asJSON)
}

// writeReport prints rep, as JSON or text, and returns the command's
// error: err if the run failed, check.ErrFailed if a required check did.
func writeReport(env *Env, rep *check.Report, err error, asJSON bool) error {
	if err != nil {
		return err
	}
	if asJSON {
		err = rep.WriteJSON(env.Stdout)
	} else {
		err = rep.WriteText(env.Stdout)
	}
	if err != nil {
		return err
	}
	return rep.OK()
}

// onlyFlag turns --run's regular expression into a filter of check IDs.
func onlyFlag(expr string) (func(string) bool, error) {
	if expr == "" {
		return nil, nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, usageError("check: bad --run %q: %v", expr, err)
	}
	return re.MatchString, nil
}

func runCheckClient(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("check client", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: larder check client [flags] -- COMMAND [ARG...]\n\n%s\n\nFlags:\n", checkClientHelp)
		fs.PrintDefaults()
	}
	var (
		cfg    check.ClientConfig
		asJSON bool
		run    string
	)
	fs.StringVar(&cfg.Output, "output", check.OutputFile, "where the client puts the file: file (named as the path it asked for, in its working folder) or stdout")
	fs.StringVar(&cfg.File, "file", "larder-check.bin", "the `path` that {file} in the command stands for")
	fs.StringVar(&cfg.Profile, "profile", check.ProfileStrict, "strict, or reference: the course's handout client's known failures are expected, not counted")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON, for grading scripts")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "how long each run of the client may take")
	fs.StringVar(&run, "run", "", "run only the cases whose ID matches this `regexp`")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fs.Usage()
		return usageError("check client: no client command given (after --)")
	}
	if cfg.Timeout <= 0 {
		return usageError("check client: --timeout must be positive, got %v", cfg.Timeout)
	}
	if cfg.Output != check.OutputFile && cfg.Output != check.OutputStdout {
		return usageError("check client: bad --output %q: want file or stdout", cfg.Output)
	}
	if cfg.Profile != check.ProfileStrict && cfg.Profile != check.ProfileReference {
		return usageError("check client: bad --profile %q: want strict or reference", cfg.Profile)
	}
	if cmd := strings.Join(pos, " "); !strings.Contains(cmd, "{port}") && !strings.Contains(cmd, "{addr}") && !strings.Contains(cmd, "{config}") {
		return usageError("check client: the command must say where the server is: put {port}, {addr} or {config} in it")
	}
	if _, err := exec.LookPath(pos[0]); err != nil {
		return usageError("check client: cannot run %q: %v", pos[0], err)
	}
	cfg.Command = pos
	if cfg.Only, err = onlyFlag(run); err != nil {
		return err
	}
	rep, err := check.Client(ctx, cfg)
	return writeReport(env, rep, err, asJSON)
}

const checkClientHelp = `Starts an adversarial course-protocol server on a free port of 127.0.0.1
and runs the client against it once per case: blocks shuffled, written in
pieces, a byte at a time or all at once; exact multiples of 944 bytes;
binary; empty; a wrong block hash, a wrong total hash, a reply cut short; an
error status; a connection held open after the last block. It checks the
file the client wrote, its exit status, and whether it noticed corruption.

In COMMAND, {host}, {port} and {addr} (HOST:PORT) stand for the server;
{config} for a YAML file with server_ip and server_port, as the handout's
client reads; {file} for the path to fetch (--file). Every retrieval gets the
case's reply and every registration succeeds, so a client that registers and
then fetches several files is checked on each. The client runs in an empty
temporary folder; with --output file (the default) the checker reads the
file named as the path it asked for there.

  larder check client -- python3 client.py {config} test
  larder check client --output stdout -- ./client {host} {port} alice pw {file}

docs/CHECK.md explains every case.`

const checkServerHelp = `Runs a suite of checks against any server of the course protocol (the
course's reference server, a student's, larder) and reports, for each, what
was sent, what was expected, what came back and why it matters. The exit
status is 0 only when every required check passed.

Without --files the checker needs the handout's tiny.txt and hamlet.txt in
the served folder, and says which checks did not apply without them. With
--files DIR (the folder the server serves, on this machine) it places its own
files in DIR/larder-check-XXXXXX: empty, 1 byte, 944 and 945 bytes, binary,
2 MiB, a folder, and a link that leads out of DIR; it also checks paths with
.., absolute paths and the link. It registers accounts named chk-XXXXXX.

Run it only against servers you are allowed to test: it sends malformed
requests and opens many connections at once. docs/CHECK.md explains every
check.`
