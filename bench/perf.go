//go:build linux

package main

import (
	"bufio"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/larderfs/larder/bench/report"
)

// This file profiles the native scenario's transfers with Linux's perf:
// one more transfer of each kind under "perf record -a", which samples
// every process and the kernel on every core, so that the profile shows
// the client, the server and the system calls between them alike, for
// larder and for OpenSSH. perf is optional; without it the scenario says so.

// perfLine is one line of "perf report": a share of the samples and where
// they fell.
type perfLine struct {
	pct  float64 // percent of all samples
	comm string  // the thread's command name
	dso  string  // the binary or library, or [kernel.kallsyms]
	sym  string  // the function, without perf's "[k] " or "[.] "
	kern bool    // in the kernel
}

// The kinds of work a sample can be in.
const (
	catSHA     = "SHA-256"
	catCipher  = "AES-GCM, ChaCha20-Poly1305"
	catWrite   = "page-cache writes"
	catCopy    = "other copies"
	catKernel  = "kernel, other"
	catRuntime = "Go runtime"
	catOther   = "other user code"
)

var perfCategories = []string{catSHA, catCipher, catWrite, catCopy, catKernel, catRuntime, catOther}

// perfCategory tells what kind of work a function is, by its name.
func perfCategory(l perfLine) string {
	s := strings.ToLower(l.sym)
	has := func(subs ...string) bool {
		return slices.ContainsFunc(subs, func(sub string) bool { return strings.Contains(s, sub) })
	}
	switch {
	case has("sha256"):
		return catSHA
	case l.kern && has("copy_folio_from_iter"):
		// write(2)'s copy into the page cache: where a fresh page is
		// first touched.
		return catWrite
	case has("memmove", "memcpy", "copy_user", "copy_to_iter", "copy_from_iter", "rep_movs", "copy_page", "copyin", "copyout"):
		return catCopy
	case l.kern:
		return catKernel
	case has("aes", "gcm", "chacha", "poly1305", "ghash") || strings.Contains(l.dso, "libcrypto"):
		// OpenSSL's assembly has few exported names; a sample in
		// libcrypto during a transfer is the cipher or its MAC.
		return catCipher
	case strings.HasPrefix(l.sym, "runtime.") || strings.HasPrefix(l.sym, "internal/runtime/"):
		return catRuntime
	}
	return catOther
}

// parsePerfReport reads "perf report --stdio --no-children --sort
// comm,dso,sym -t '|'".
func parsePerfReport(r io.Reader) ([]perfLine, error) {
	var out []perfLine
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.SplitN(line, "|", 4)
		if len(f) != 4 {
			continue
		}
		p, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(f[0]), "%"), 64)
		if err != nil {
			return nil, fmt.Errorf("perf report line %q: %v", line, err)
		}
		sym := strings.TrimSpace(f[3])
		l := perfLine{pct: p, comm: strings.TrimSpace(f[1]), dso: strings.TrimSpace(f[2])}
		l.kern = strings.HasPrefix(sym, "[k]")
		if len(sym) > 3 && sym[0] == '[' && sym[2] == ']' {
			sym = strings.TrimSpace(sym[3:])
		}
		// Go's assembly functions carry ".abi0" in the symbol table,
		// not in the runtime's names (see selfSymbols).
		l.sym = strings.TrimSuffix(sym, ".abi0")
		out = append(out, l)
	}
	return out, sc.Err()
}

// perfSummary is where a profiled transfer's samples fell.
type perfSummary struct {
	busy                      float64            // percent of the machine's samples not idle
	server, client, io, other float64            // percent of the busy samples
	cats                      map[string]float64 // percent of the transfer's samples
	top                       []perfLine         // the transfer's busiest functions
}

// kernelIO reports whether a command name is one of the kernel's threads
// that write files back to disk (an fsync's work is partly theirs).
func kernelIO(comm string) bool {
	return strings.HasPrefix(comm, "kworker") || strings.HasPrefix(comm, "jbd2")
}

// summarizePerf sorts the samples by process (server, client, the
// kernel's writeback threads, idle, any other) and, for the transfer's
// own (server, client, writeback), by kind of work.
func summarizePerf(lines []perfLine, server, client []string) perfSummary {
	var srv, cli, kio, oth float64
	s := perfSummary{cats: map[string]float64{}}
	var mine []perfLine
	for _, l := range lines {
		switch {
		case l.comm == "swapper": // the idle task
			continue
		case slices.Contains(server, l.comm):
			srv += l.pct
		case slices.Contains(client, l.comm):
			cli += l.pct
		case kernelIO(l.comm):
			kio += l.pct
		default:
			oth += l.pct
			continue
		}
		s.cats[perfCategory(l)] += l.pct
		mine = append(mine, l)
	}
	busy := srv + cli + kio + oth
	s.busy = busy
	if busy > 0 {
		s.server, s.client, s.io, s.other = 100*srv/busy, 100*cli/busy, 100*kio/busy, 100*oth/busy
	}
	// The same function may come in several lines: one per address
	// when perf could not name it and the bench did (see selfSymbols).
	var merged []perfLine
	at := map[[2]string]int{}
	for _, l := range mine {
		k := [2]string{l.comm, l.sym}
		if i, ok := at[k]; ok {
			merged[i].pct += l.pct
			continue
		}
		at[k] = len(merged)
		merged = append(merged, l)
	}
	mine = merged
	if sc := srv + cli + kio; sc > 0 {
		for k, v := range s.cats {
			s.cats[k] = 100 * v / sc
		}
		for i := range mine {
			mine[i].pct = 100 * mine[i].pct / sc
		}
	}
	slices.SortStableFunc(mine, func(a, b perfLine) int {
		switch {
		case a.pct > b.pct:
			return -1
		case a.pct < b.pct:
			return 1
		}
		return 0
	})
	s.top = mine[:min(len(mine), 6)]
	return s
}

// profile runs each transfer once more under "perf record -a" and returns
// where the CPU went. Without perf it returns a profile that says so, and
// a transfer whose recording fails has a row that says why.
// perfProfile is what perf recorded of one more transfer of each: a
// summary per transfer, or why there is none.
type perfProfile struct {
	skipped string // why nothing was profiled; "" if perf ran
	dir     string // where the perf.data files are
	rows    []perfRow
}

// perfRow is the profile of one transfer.
type perfRow struct {
	label, direction string
	failed           string // why perf recorded nothing; "" if it did
	summary          perfSummary
}

func (c *lnpConfig) profile(env *Env, xfers []*xfer, size int64) (*perfProfile, error) {
	perfPath, err := exec.LookPath("perf")
	if err != nil {
		return &perfProfile{skipped: "perf is not installed (Debian package linux-perf)"}, nil
	}
	dir, err := filepath.Abs(c.perf)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	prof := &perfProfile{dir: dir}
	self, _ := os.Executable()
	clientComm := []string{comm(self), "scp", "ssh"}
	syms := newSelfSymbols(self)
	serverComm := []string{"sshd", "sftp-server"}
	for _, x := range xfers {
		serverComm = append(serverComm, comm(x.server.cmd.Path))
	}
	for i, x := range xfers {
		name := fmt.Sprintf("%02d-%s-%s", i+1, strings.NewReplacer(" ", "-", "/", "", ",", "", "(", "", ")", "", "'", "").Replace(x.label()), x.direction)
		data := filepath.Join(dir, name+".perf.data")
		env.progress("profiling %s %s: perf record -a -F 999 -o %s", x.label(), x.direction, data)
		// The pause before the transfer, as in the rounds, but before
		// perf starts, so that the profile holds the transfer only.
		syscall.Sync()
		if err := sleepCtx(env.ctx, c.settle); err != nil {
			return nil, err
		}
		lines, err := perfRecord(env, perfPath, data, func() error { return timeXfer(env.ctx, x, size, c.timeout, nil) })
		if err != nil {
			prof.rows = append(prof.rows, perfRow{label: x.label(), direction: x.direction, failed: err.Error()})
			continue
		}
		// The check, as after every transfer, once perf has stopped.
		ctx, cancel := context.WithTimeout(env.ctx, c.timeout)
		err = x.check(ctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("after profiling %s %s: %w", x.label(), x.direction, err)
		}
		for i, l := range lines {
			if l.dso == filepath.Base(self) {
				lines[i].sym = syms.name(l.sym)
			}
		}
		prof.rows = append(prof.rows, perfRow{label: x.label(), direction: x.direction, summary: summarizePerf(lines, serverComm, clientComm)})
	}
	return prof, nil
}

// table presents the profile.
func (p *perfProfile) table() *report.Table {
	tbl := &report.Table{
		Title: "Where the CPU goes: one more transfer of each under perf record -a (every process and the kernel, 999 samples/s per core)",
		Header: append([]string{"system", "direction", "machine busy", "server / client / writeback / other processes"},
			perfCategories...),
	}
	if p.skipped != "" {
		tbl.Note("Skipped: %s.", p.skipped)
		return tbl
	}
	for _, r := range p.rows {
		if r.failed != "" {
			tbl.Note("Profile of %s %s failed: %s", r.label, r.direction, r.failed)
			continue
		}
		s := r.summary
		row := []string{r.label, r.direction, pct(s.busy),
			fmt.Sprintf("%s / %s / %s / %s", pct(s.server), pct(s.client), pct(s.io), pct(s.other))}
		for _, k := range perfCategories {
			row = append(row, pct(s.cats[k]))
		}
		tbl.Add(row...)
		var top []string
		for _, l := range s.top {
			top = append(top, fmt.Sprintf("%s %s (%s)", pct(l.pct), l.sym, l.comm))
		}
		tbl.Note("%s %s, busiest functions (share of the transfer's samples): %s.", r.label, r.direction, strings.Join(top, "; "))
	}
	tbl.Note("machine busy: percent of all samples of both cores that were not idle; processes: shares of those (writeback: the kernel's kworker and jbd2 threads; other: the rest of this shared machine and perf itself). The kinds of work are shares of the transfer's samples (server, client, writeback), sorted by the name of the function sampled (self time, no call graph): SHA-256; the cipher and its MAC (Go's AES-GCM; OpenSSL's, in libcrypto, for ssh); page-cache writes, write(2)'s copy into the page cache (copy_folio_from_iter_atomic), where fresh memory is first touched; other copies (memmove, the kernel's socket copies); the rest of the kernel (system calls, TCP, the page cache, the disk); the Go runtime (scheduler, garbage collector); and other user code, mostly OpenSSH's own, which perf cannot name (its binaries are stripped; its Poly1305 and packet code are there). The check after the transfer runs once perf has stopped. Reports: `perf report -i FILE --no-children --sort comm,dso,sym` on the files in %s.", p.dir)
	tbl.Note("On this virtual machine perf samples with a timer (cpu-clock), taken when interrupts are enabled: time the kernel spends with them off is charged to pvm_irq_enable, where they are turned back on (kernel, other).")
	return tbl
}

// selfSymbols names the functions of the bench's own binary that perf
// cannot: "go run" builds it without a symbol table, but Go keeps a table
// of its functions for the runtime, which runtime.FuncForPC reads.
type selfSymbols struct {
	loads []elf.ProgHeader // nil if the binary is not a fixed-address executable
}

func newSelfSymbols(path string) *selfSymbols {
	f, err := elf.Open(path)
	if err != nil {
		return &selfSymbols{}
	}
	defer f.Close()
	s := &selfSymbols{}
	if f.Type != elf.ET_EXEC {
		return s // position-independent: its addresses move at each run
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			s.loads = append(s.loads, p.ProgHeader)
		}
	}
	return s
}

// name returns the function at sym, perf's "0x…" for an address it could
// not name: an offset in the binary's file. Anything else is returned as
// it is.
func (s *selfSymbols) name(sym string) string {
	hexOff, ok := strings.CutPrefix(sym, "0x")
	if !ok {
		return sym
	}
	off, err := strconv.ParseUint(hexOff, 16, 64)
	if err != nil {
		return sym
	}
	for _, p := range s.loads {
		if off >= p.Off && off < p.Off+p.Filesz {
			if fn := runtime.FuncForPC(uintptr(off - p.Off + p.Vaddr)); fn != nil {
				return fn.Name()
			}
		}
	}
	return sym
}

// comm returns the command name Linux gives a process run from path: its
// base name, cut to 15 bytes.
func comm(path string) string {
	b := filepath.Base(path)
	return b[:min(len(b), 15)]
}

// perfRecord samples the whole machine while run runs, and returns perf's
// report by command, binary and function.
func perfRecord(env *Env, perfPath, data string, run func() error) ([]perfLine, error) {
	logf, err := os.Create(strings.TrimSuffix(data, ".perf.data") + ".record.log")
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	rec := exec.Command(perfPath, "record", "-a", "-F", "999", "-o", data)
	rec.Stdout, rec.Stderr = logf, logf
	rec.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	os.Remove(data)
	if err := rec.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- rec.Wait() }()
	// perf writes its file's header once it is sampling.
	for deadline := time.Now().Add(10 * time.Second); ; {
		if fi, err := os.Stat(data); err == nil && fi.Size() > 0 {
			break
		}
		select {
		case err := <-done:
			b, _ := os.ReadFile(logf.Name())
			return nil, fmt.Errorf("perf record exited (%v): %s", err, lastLines(string(b), 3))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			rec.Process.Kill()
			<-done
			return nil, fmt.Errorf("perf record did not start in 10 s")
		}
	}
	time.Sleep(200 * time.Millisecond)
	runErr := run()
	rec.Process.Signal(os.Interrupt)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		rec.Process.Kill()
		<-done
	}
	if runErr != nil {
		return nil, runErr
	}
	report := exec.CommandContext(env.ctx, perfPath, "report", "-i", data, "--stdio", "--no-children",
		"--sort", "comm,dso,sym", "-t", "|")
	out, err := report.Output()
	if err != nil {
		return nil, fmt.Errorf("perf report: %v", err)
	}
	if err := os.WriteFile(strings.TrimSuffix(data, ".perf.data")+".txt", out, 0o644); err != nil {
		return nil, err
	}
	return parsePerfReport(strings.NewReader(string(out)))
}
