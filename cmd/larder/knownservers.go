package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"net"
	"slices"
)

// runKnownServers lists or forgets the certificates pinned on first use,
// as ssh-keygen -F and -R do for ssh's known_hosts.
func runKnownServers(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("known-servers", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: larder known-servers [list] [--json]\n       larder known-servers rm HOST:PORT...\n\n"+
			"Lists the servers whose certificate the client pinned on first use\n"+
			"(known_servers in your configuration folder), or forgets the pin of each\n"+
			"HOST:PORT, under any spelling of it (localhost, 127.0.0.1 and ::1 are one),\n"+
			"so that the next connection pins the certificate the server has now. Forget\n"+
			"a pin only when you know why the certificate changed: the refusal may be the\n"+
			"only sign of someone intercepting the connection.\n")
	}
	asJSON := fs.Bool("json", false, "list as a JSON array: server, fingerprint")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	conf, err := config(env)
	if err != nil {
		return err
	}
	known := conf.KnownServers()
	if len(pos) == 0 || pos[0] == "list" {
		if len(pos) > 1 {
			return usageError("known-servers list takes no arguments")
		}
		pins, err := known.Pins()
		if err != nil {
			return err
		}
		if *asJSON {
			list := make([]pinJSON, 0, len(pins))
			for _, addr := range slices.Sorted(maps.Keys(pins)) {
				list = append(list, pinJSON{Server: addr, Fingerprint: pins[addr]})
			}
			return writeJSON(env.Stdout, list)
		}
		for _, addr := range slices.Sorted(maps.Keys(pins)) {
			fmt.Fprintf(env.Stdout, "%s %s\n", addr, pins[addr])
		}
		return nil
	}
	if *asJSON {
		return usageError("known-servers: --json goes with list")
	}
	if pos[0] != "rm" {
		return usageError("known-servers: unknown subcommand %q: want list or rm", pos[0])
	}
	if len(pos) < 2 {
		return usageError("known-servers rm takes one HOST:PORT or more")
	}
	for _, addr := range pos[1:] {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return usageError("known-servers rm: bad address %q: want HOST:PORT", addr)
		}
	}
	for _, addr := range pos[1:] {
		removed, err := known.Remove(addr)
		if err != nil {
			return err
		}
		if len(removed) == 0 {
			fmt.Fprintf(env.Stderr, "larder: no certificate pinned for %s in %s\n", addr, known.Path())
			continue
		}
		for _, r := range removed {
			fmt.Fprintf(env.Stdout, "Forgot the certificate pinned for %s.\n", r)
		}
	}
	return nil
}

// pinJSON is a pinned certificate as known-servers --json prints it.
type pinJSON struct {
	Server      string `json:"server"`
	Fingerprint string `json:"fingerprint"`
}
