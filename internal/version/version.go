// Package version says which build of larder is running: the module's
// version, the commit it was built from and when that commit was made,
// whether the checkout had uncommitted changes, and the Go release that
// built it. The go command records all of it in the binary
// (runtime/debug.ReadBuildInfo); nothing is set with -ldflags.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// Info describes one build of larder.
type Info struct {
	// Version is the main module's version: a tag (v1.2.0), a
	// pseudo-version the go command derives from the commit
	// (v0.0.0-20261207095632-c2ee045abcde, "+dirty" when modified), or
	// "(devel)" when it knows none (a test binary, go run).
	Version string
	// Revision is the full commit hash; "" if the build was made outside
	// a checkout, or with -buildvcs=false.
	Revision string
	// Time is the commit's time; zero without a Revision.
	Time time.Time
	// Modified says the checkout had changes not committed.
	Modified bool
	// GoVersion is the Go release that built the binary (go1.26.0).
	GoVersion string
	// OS and Arch are the platform the binary was built for.
	OS, Arch string
}

// Read returns the running program's Info.
func Read() Info {
	bi, _ := debug.ReadBuildInfo()
	return FromBuildInfo(bi)
}

// FromBuildInfo returns the Info that bi records; a nil bi (a binary built
// without module support) gives what the runtime knows.
func FromBuildInfo(bi *debug.BuildInfo) Info {
	in := Info{Version: "(devel)", GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if bi == nil {
		return in
	}
	if bi.Main.Version != "" {
		in.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		in.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Revision = s.Value
		case "vcs.time":
			in.Time, _ = time.Parse(time.RFC3339, s.Value)
		case "vcs.modified":
			in.Modified = s.Value == "true"
		case "GOOS":
			in.OS = s.Value
		case "GOARCH":
			in.Arch = s.Value
		}
	}
	return in
}

// ShortRevision returns the first 12 digits of the revision, as git and
// the go command's pseudo-versions abbreviate it.
func (in Info) ShortRevision() string {
	if len(in.Revision) > 12 {
		return in.Revision[:12]
	}
	return in.Revision
}

// String returns the Info on one line, as the native protocol's WELCOME
// and the audit trail's server.start event carry it:
//
//	v1.2.0 (revision c2ee045abcde, 2026-12-07T09:56:32Z, modified; go1.26.0)
//	v1.2.0 (go1.26.0)                    built outside a checkout
func (in Info) String() string {
	var b strings.Builder
	b.WriteString(in.Version)
	b.WriteString(" (")
	if in.Revision != "" {
		fmt.Fprintf(&b, "revision %s", in.ShortRevision())
		if !in.Time.IsZero() {
			b.WriteString(", " + in.Time.UTC().Format(time.RFC3339))
		}
		if in.Modified {
			b.WriteString(", modified")
		}
		b.WriteString("; ")
	}
	b.WriteString(in.GoVersion + ")")
	return b.String()
}
