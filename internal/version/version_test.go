package version

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// stamped is the build information the go command records for a build
// from a checkout with uncommitted changes, as "go version -m" prints it
// (less the go line, which ParseBuildInfo leaves to the caller).
const stamped = `path	github.com/larderfs/larder/cmd/larder
mod	github.com/larderfs/larder	v0.0.0-20261207095632-c2ee045abcde+dirty
build	-buildmode=exe
build	GOARCH=arm64
build	GOOS=linux
build	vcs=git
build	vcs.revision=c2ee045abcde0123456789abcdef0123456789ab
build	vcs.time=2026-12-07T09:56:32Z
build	vcs.modified=true
`

func TestFromBuildInfo(t *testing.T) {
	bi, err := debug.ParseBuildInfo(stamped)
	if err != nil {
		t.Fatal(err)
	}
	bi.GoVersion = "go1.26.0"
	got := FromBuildInfo(bi)
	want := Info{
		Version:   "v0.0.0-20261207095632-c2ee045abcde+dirty",
		Revision:  "c2ee045abcde0123456789abcdef0123456789ab",
		Time:      time.Date(2026, 12, 7, 9, 56, 32, 0, time.UTC),
		Modified:  true,
		GoVersion: "go1.26.0",
		OS:        "linux",
		Arch:      "arm64",
	}
	if got != want {
		t.Errorf("FromBuildInfo = %+v\nwant %+v", got, want)
	}
	if s, w := got.String(), "v0.0.0-20261207095632-c2ee045abcde+dirty (revision c2ee045abcde, 2026-12-07T09:56:32Z, modified; go1.26.0)"; s != w {
		t.Errorf("String = %q, want %q", s, w)
	}
}

func TestFromBuildInfoWithoutVCS(t *testing.T) {
	// "go install github.com/larderfs/larder/cmd/larder@v1.2.0": a
	// version from the module proxy, no checkout.
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/larderfs/larder", Version: "v1.2.0"}}
	got := FromBuildInfo(bi)
	if got.Version != "v1.2.0" || got.Revision != "" || !got.Time.IsZero() || got.Modified {
		t.Errorf("FromBuildInfo = %+v, want version v1.2.0 and no VCS information", got)
	}
	if s, w := got.String(), "v1.2.0 (go1.26.0)"; s != w {
		t.Errorf("String = %q, want %q", s, w)
	}
	// Neither module nor VCS information: what the runtime knows.
	none := FromBuildInfo(nil)
	if none.Version != "(devel)" || none.GoVersion != runtime.Version() || none.OS != runtime.GOOS || none.Arch != runtime.GOARCH {
		t.Errorf("FromBuildInfo(nil) = %+v", none)
	}
}

// A test binary carries module information but no VCS stamp: Read must
// still name the Go release and platform.
func TestRead(t *testing.T) {
	in := Read()
	if in.Version == "" || in.GoVersion != runtime.Version() || in.OS != runtime.GOOS || in.Arch != runtime.GOARCH {
		t.Errorf("Read = %+v", in)
	}
}
