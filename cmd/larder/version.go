package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/larderfs/larder/internal/version"
)

// runVersion prints the build of larder: "larder version" and "larder
// --version" print the same.
func runVersion(_ context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: larder version [--json]\n\n"+
			"Prints larder's version, the commit it was built from, that commit's time,\n"+
			"whether the checkout had uncommitted changes, and the Go release that built it.\n")
	}
	asJSON := fs.Bool("json", false, "print a JSON object: version, revision, time, modified, go, os, arch")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if *asJSON {
		in := version.Read()
		j := versionJSON{Version: in.Version, Revision: in.Revision, Modified: in.Modified, Go: in.GoVersion, OS: in.OS, Arch: in.Arch}
		if !in.Time.IsZero() {
			t := in.Time.UTC()
			j.Time = &t
		}
		return writeJSON(env.Stdout, j)
	}
	printVersion(env.Stdout, version.Read())
	return nil
}

// versionJSON is what version --json prints; revision is "" and time null
// for a build made outside a checkout.
type versionJSON struct {
	Version  string     `json:"version"`
	Revision string     `json:"revision"`
	Time     *time.Time `json:"time"`
	Modified bool       `json:"modified"`
	Go       string     `json:"go"`
	OS       string     `json:"os"`
	Arch     string     `json:"arch"`
}

// printVersion writes in for a person: the version on the first line, as
// other programs' --version, then one line per detail.
func printVersion(w io.Writer, in version.Info) {
	fmt.Fprintf(w, "larder %s\n", in.Version)
	if in.Revision == "" {
		fmt.Fprintf(w, "revision  unknown (not built from a checkout)\n")
	} else {
		fmt.Fprintf(w, "revision  %s\n", in.Revision)
		if !in.Time.IsZero() {
			fmt.Fprintf(w, "time      %s\n", in.Time.UTC().Format(time.RFC3339))
		}
		fmt.Fprintf(w, "modified  %t\n", in.Modified)
	}
	fmt.Fprintf(w, "go        %s %s/%s\n", in.GoVersion, in.OS, in.Arch)
}

// serverVersion is the name and version the server gives in LNP/1's WELCOME
// and in its server.start event.
func serverVersion() string { return "larder " + version.Read().String() }
