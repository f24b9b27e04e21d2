//go:build linux

package main

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Env is what a scenario runs in: the context that Ctrl-C cancels, the
// output streams, a temporary folder, and the processes it started, which
// Close stops whatever happened.
type Env struct {
	ctx    context.Context
	out    io.Writer // the tables
	log    io.Writer // progress, for the person watching
	opts   commonOptions
	self   string // this program, re-executed as the baseline server
	tmp    string // removed by Close
	larder string // the larder binary, once known

	scenario string // the scenario running, for file names
	seq      int    // numbers processes and folders

	mu    sync.Mutex
	procs []*Process // started and not yet stopped
}

func newEnv(ctx context.Context, out, log io.Writer, opts commonOptions) (*Env, error) {
	if opts.ports.lo != 0 {
		p := opts.ports
		listenPorts = &p
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding this program to re-execute as the baseline: %w", err)
	}
	tmp, err := os.MkdirTemp("", "larder-bench-")
	if err != nil {
		return nil, err
	}
	return &Env{ctx: ctx, out: out, log: log, opts: opts, self: self, tmp: tmp, scenario: "setup"}, nil
}

// Close stops every process still running and removes the temporary folder.
func (e *Env) Close() {
	e.stopAll()
	if err := os.RemoveAll(e.tmp); err != nil {
		fmt.Fprintf(e.log, "bench: removing %s: %v\n", e.tmp, err)
	}
}

// stopAll stops every process still running, newest first.
func (e *Env) stopAll() {
	e.mu.Lock()
	procs := e.procs
	e.procs = nil
	e.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].Stop()
	}
}

func (e *Env) track(p *Process) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.procs = append(e.procs, p)
}

// stop stops p now and forgets it.
func (e *Env) stop(p *Process) {
	e.mu.Lock()
	for i, q := range e.procs {
		if q == p {
			e.procs = append(e.procs[:i], e.procs[i+1:]...)
			break
		}
	}
	e.mu.Unlock()
	p.Stop()
}

// mkdir creates a fresh folder in the temporary folder.
func (e *Env) mkdir(prefix string) (string, error) {
	e.seq++
	dir := filepath.Join(e.tmp, fmt.Sprintf("%s-%s-%d", e.scenario, prefix, e.seq))
	return dir, os.MkdirAll(dir, 0o700)
}

// progress prints a progress line to the log stream.
func (e *Env) progress(format string, args ...any) {
	fmt.Fprintf(e.log, "%s %s: %s\n", time.Now().Format("15:04:05"), e.scenario, fmt.Sprintf(format, args...))
}

// larderBinary returns the larder binary to measure, building it on first
// use unless --larder named one.
func (e *Env) larderBinary() (string, error) {
	if e.larder != "" {
		return e.larder, nil
	}
	if e.opts.larder != "" {
		p, err := filepath.Abs(e.opts.larder)
		if err != nil {
			return "", err
		}
		e.larder = p
		return p, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", fmt.Errorf("building larder (or pass --larder PATH): %w", err)
	}
	out := filepath.Join(e.tmp, "larder")
	e.progress("building larder: go build -o %s ./cmd/larder in %s", out, root)
	// Built in the checkout's own module, with its go.mod and version
	// control stamp, as a user builds it, not as a dependency of the bench.
	cmd := exec.CommandContext(e.ctx, "go", "build", "-o", out, "./cmd/larder")
	cmd.Dir = root
	var msg bytes.Buffer
	cmd.Stdout, cmd.Stderr = &msg, &msg
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building larder (or pass --larder PATH): %v\n%s", err, msg.String())
	}
	e.larder = out
	return out, nil
}

// larderModule is the module path of the server the bench measures.
const larderModule = "github.com/larderfs/larder"

// repoRoot returns the root of the larder checkout that holds the current
// folder: the nearest folder at or above it whose go.mod declares
// larderModule. The bench is a module of its own inside the checkout, run
// from bench/, and builds and documents the larder around it.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && modulePath(b) == larderModule {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", fmt.Errorf("no go.mod of %s in the current folder or above it: run the bench inside a larder checkout (cd bench && go run . SCENARIO)", larderModule)
		}
		dir = up
	}
}

// modulePath returns the path a go.mod file declares on its module line.
func modulePath(gomod []byte) string {
	for line := range strings.Lines(string(gomod)) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module")
		if !ok || rest == "" || rest[0] != ' ' && rest[0] != '\t' {
			continue
		}
		rest, _, _ = strings.Cut(rest, "//")
		if f := strings.Fields(rest); len(f) == 1 {
			return strings.Trim(f[0], `"`)
		}
	}
	return ""
}

// printSystemInfo prints what a reader needs to judge the figures: the
// machine, its load, the toolchain, and which larder was measured.
func (e *Env) printSystemInfo() {
	w := e.out
	fmt.Fprintf(w, "# larder benchmarks\n\n")
	fmt.Fprintf(w, "- date: %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "- machine: %d CPUs (GOMAXPROCS %d), %s, %s memory\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), cpuModel(), memTotal())
	fmt.Fprintf(w, "- kernel: %s %s\n", kernel(), runtime.GOARCH)
	fmt.Fprintf(w, "- Go: %s (bench)\n", runtime.Version())
	fmt.Fprintf(w, "- load average at start: %s\n", loadAverage())
	if cur, maxv, err := raiseFDLimit(); err != nil {
		fmt.Fprintf(w, "- open-file limit: could not raise: %v\n", err)
	} else {
		fmt.Fprintf(w, "- open-file limit: %d (hard %d), raised for the bench and its servers\n", cur, maxv)
	}
	bin, err := e.larderBinary()
	if err != nil {
		fmt.Fprintf(w, "- larder: %v\n", err)
		return
	}
	desc := describeBinary(bin)
	if e.opts.larder == "" && strings.HasSuffix(desc, "unknown revision") {
		// Built with -buildvcs=false (GOFLAGS): ask git about the
		// checkout the binary was built from.
		desc += ": " + checkoutState()
	}
	fmt.Fprintf(w, "- larder: %s\n", desc)
	fmt.Fprintf(w, "- units: 1 MB = 10^6 bytes, 1 MiB = 2^20 bytes, 1 KiB = 1024 bytes; CPU %% is of one core (%d%% = the whole machine)\n", 100*runtime.NumCPU())
}

// describeBinary reports the Go version and source revision recorded in a
// Go binary.
func describeBinary(path string) string {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return path + " (no build information: " + err.Error() + ")"
	}
	rev, modified := "unknown revision", ""
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = "revision " + s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = " with uncommitted changes"
			}
		}
	}
	return fmt.Sprintf("%s, built by %s from %s%s", path, info.GoVersion, rev, modified)
}

// checkoutState describes the git checkout in the current folder: its
// commit and how many files differ from it.
func checkoutState() string {
	rev, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "not a git checkout"
	}
	st, _ := exec.Command("git", "status", "--porcelain").Output()
	state := fmt.Sprintf("checkout at %s", strings.TrimSpace(string(rev)))
	if n := bytes.Count(st, []byte("\n")); n > 0 {
		state += fmt.Sprintf(" with %d files changed or untracked", n)
	}
	return state
}

func kernel() string {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return "unknown"
	}
	str := func(a [65]int8) string {
		b := make([]byte, 0, len(a))
		for _, c := range a {
			if c == 0 {
				break
			}
			b = append(b, byte(c))
		}
		return string(b)
	}
	return str(u.Sysname) + " " + str(u.Release)
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func memTotal() string {
	b, _ := os.ReadFile("/proc/meminfo")
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			var kb int64
			fmt.Sscan(v, &kb)
			return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	return "unknown"
}

// loadAverage returns the 1, 5 and 15 minute load averages: on a shared
// machine, the noise the figures were taken under.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
