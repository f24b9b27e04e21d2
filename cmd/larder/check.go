package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/larderfs/larder/internal/check"
)

func runCheck(ctx context.Context, env *Env, args []string) error {
	return dispatch(ctx, env, "larder check", []command{
		{"server", "check a course-protocol server against the protocol", runCheckServer},
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
	)
	fs.StringVar(&cfg.Files, "files", "", "the `folder` the server serves, on this machine and writable: the checker places its own files there (and removes them after)")
	fs.StringVar(&cfg.Profile, "profile", check.ProfileStrict, "strict, or reference: the course reference server's known failures are expected, not counted")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON, for grading scripts")
	fs.DurationVar(&timeout, "timeout", 5*time.Second, "how long each exchange may take")
	fs.IntVar(&cfg.Clients, "clients", 16, "clients of the many-clients check, at once (1 to 256)")
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
	rep, err := check.Server(ctx, cfg)
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
