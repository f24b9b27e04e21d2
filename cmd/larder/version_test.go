package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder/internal/version"
)

// "larder version" and "larder --version" print the same: the version on
// the first line, then the Go release and platform. A test binary has no
// VCS stamp, so it says the revision is unknown rather than leave it out.
func TestVersionCommand(t *testing.T) {
	want := "larder (devel)\nrevision  unknown (not built from a checkout)\ngo        " +
		runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		stdout, stderr, err := runLarder(t, "", args...)
		if err != nil || stdout != want || stderr != "" {
			t.Errorf("larder %q: %v, stdout %q, stderr %q; want stdout %q", args, err, stdout, stderr, want)
		}
	}
	if _, _, err := runLarder(t, "", "version", "extra"); ExitCode(err) != exitUsage {
		t.Errorf("larder version extra: %v, want a usage error", err)
	}
}

func TestPrintVersionStamped(t *testing.T) {
	var b bytes.Buffer
	printVersion(&b, version.Info{
		Version: "v1.2.0", Revision: "c2ee045abcde0123456789abcdef0123456789ab",
		Time: time.Date(2026, 12, 7, 9, 56, 32, 0, time.UTC), Modified: true,
		GoVersion: "go1.26.0", OS: "linux", Arch: "amd64",
	})
	want := "larder v1.2.0\n" +
		"revision  c2ee045abcde0123456789abcdef0123456789ab\n" +
		"time      2026-12-07T09:56:32Z\n" +
		"modified  true\n" +
		"go        go1.26.0 linux/amd64\n"
	if b.String() != want {
		t.Errorf("printVersion:\n%s\nwant:\n%s", b.String(), want)
	}
}

// A larder built with the go command from a git checkout names the
// checkout's commit, its time, and whether it had changes: the build
// stamps them, no flag does. The test builds a copy of this module in a
// repository of its own, since the go command stamps nothing in a git
// worktree (its .git is a file), and a checkout of the developer's may be
// clean or not.
func TestVersionOfBuiltBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds larder, which takes half a minute: not with -short")
	}
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("no git to make a checkout with: " + err.Error())
	}
	gitIn := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command(git, append([]string{"-C", dir, "-c", "user.name=test", "-c", "user.email=test@example.com"}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("git %q: %v", args, err)
		}
		return string(out)
	}
	// This module's files as they are now, committed or not.
	root, err := filepath.Abs("../..")
	must(t, err)
	repo := t.TempDir()
	for _, name := range strings.Split(strings.TrimSpace(gitIn(root, "ls-files", "-co", "--exclude-standard")), "\n") {
		data, err := os.ReadFile(filepath.Join(root, name))
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted, not yet committed
		}
		must(t, err)
		must(t, os.MkdirAll(filepath.Dir(filepath.Join(repo, name)), 0o755))
		must(t, os.WriteFile(filepath.Join(repo, name), data, 0o644))
	}
	gitIn(repo, "init", "-q")
	gitIn(repo, "add", ".")
	gitIn(repo, "commit", "-q", "-m", "test")
	head := strings.TrimSpace(gitIn(repo, "rev-parse", "HEAD"))
	when := strings.TrimSpace(gitIn(repo, "show", "-s", "--format=%cI", "HEAD"))
	commitTime, err := time.Parse(time.RFC3339, when)
	must(t, err)

	// One build, of a modified checkout (a clean one differs only in the
	// flag, which TestFromBuildInfo covers): a build takes a while.
	versionOf := func() string {
		t.Helper()
		bin := filepath.Join(t.TempDir(), "larder")
		build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "./cmd/larder")
		build.Dir = repo
		// The stamp is the go command's default; a GOFLAGS of the
		// machine's (go env GOFLAGS) may turn it off.
		build.Env = append(os.Environ(), "GOFLAGS=-buildvcs=true")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		out, err := exec.Command(bin, "--version").Output()
		if err != nil {
			t.Fatalf("larder --version: %v", err)
		}
		return string(out)
	}
	check := func(got string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("larder --version printed:\n%s\nwant it to hold %q", got, w)
			}
		}
	}
	// A file not committed makes the checkout modified.
	must(t, os.WriteFile(filepath.Join(repo, "NOTES"), []byte("not committed\n"), 0o644))
	check(versionOf(), "larder v0.0.0-", "+dirty\n", "revision  "+head+"\n",
		"time      "+commitTime.UTC().Format(time.RFC3339)+"\n", "modified  true\n", "go        "+runtime.Version()+" ")
}

// The server names its build in LNP/1's WELCOME, whole, and the client
// shows it.
func TestWelcomeNamesBuild(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	stdout, _ := runOK(t, env, "whoami")
	want := "server: " + l.lnpAddr() + " (larder " + version.Read().String() + ")\n"
	if !strings.Contains(stdout, want) || !strings.Contains(want, runtime.Version()) {
		t.Errorf("whoami printed:\n%s\nwant %q", stdout, want)
	}
}
