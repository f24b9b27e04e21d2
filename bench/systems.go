//go:build linux

package main

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// This file starts the systems under test. A later comparison suite adds
// constructors here (nginx, sshd) that return a *Process the same way.

// makeFiles creates a folder of random files of the given sizes, named
// after their sizes, and returns it with the files' specs. The content is
// pseudo-random from a fixed seed, so every run serves the same bytes.
func (e *Env) makeFiles(sizes ...int) (string, []fileSpec, error) {
	dir, err := e.mkdir("files")
	if err != nil {
		return "", nil, err
	}
	specs := make([]fileSpec, len(sizes))
	for i, size := range sizes {
		name := fmt.Sprintf("random-%d.bin", size)
		sum, err := writeRandomFile(filepath.Join(dir, name), size, uint64(i))
		if err != nil {
			return "", nil, err
		}
		specs[i] = fileSpec{Path: name, Size: size, Sum: sum}
	}
	return dir, specs, nil
}

// makeSmallFiles creates a folder of n random files of size bytes each,
// named small-00000.bin on, and returns it with their specs.
func (e *Env) makeSmallFiles(n, size int) (string, []fileSpec, error) {
	dir, err := e.mkdir("files")
	if err != nil {
		return "", nil, err
	}
	specs := make([]fileSpec, n)
	for i := range specs {
		name := fmt.Sprintf("small-%05d.bin", i)
		sum, err := writeRandomFile(filepath.Join(dir, name), size, uint64(1000+i))
		if err != nil {
			return "", nil, err
		}
		specs[i] = fileSpec{Path: name, Size: size, Sum: sum}
	}
	return dir, specs, nil
}

func writeRandomFile(path string, size int, seed uint64) ([32]byte, error) {
	f, err := os.Create(path)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	src := rand.NewChaCha8([32]byte{byte(seed), 'l', 'a', 'r', 'd', 'e', 'r'})
	h := sha256.New()
	w := bufio.NewWriterSize(f, 1<<20)
	buf := make([]byte, 64<<10)
	for left := size; left > 0; {
		p := buf[:min(left, len(buf))]
		src.Read(p)
		h.Write(p)
		if _, err := w.Write(p); err != nil {
			return [32]byte{}, err
		}
		left -= len(p)
	}
	if err := w.Flush(); err != nil {
		return [32]byte{}, err
	}
	return [32]byte(h.Sum(nil)), f.Close()
}

// startLarder starts "larder serve" on a free port, serving filesDir, with
// the default password hashing and any extra flags. Its data folder (the
// accounts) is dataDir, or a fresh one if dataDir is "".
func (e *Env) startLarder(filesDir, dataDir string, extra ...string) (*Process, error) {
	return e.startLarderEnv(nil, filesDir, dataDir, extra...)
}

// startLarderEnv is startLarder with variables added to larder's
// environment, such as GODEBUG=gctrace=1 or GOMEMLIMIT.
func (e *Env) startLarderEnv(environ []string, filesDir, dataDir string, extra ...string) (*Process, error) {
	bin, err := e.larderBinary()
	if err != nil {
		return nil, err
	}
	return e.startLarderBin(bin, environ, filesDir, dataDir, extra...)
}

// startLarderBin is startLarderEnv with the larder binary bin.
func (e *Env) startLarderBin(bin string, environ []string, filesDir, dataDir string, extra ...string) (*Process, error) {
	var err error
	data := dataDir
	if data == "" {
		if data, err = e.mkdir("larder-data"); err != nil {
			return nil, err
		}
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := append([]string{"serve",
		"--listen", addr,
		"--data", data,
		"--files", filesDir,
		"--native-listen", "off", // the scenarios measure the course protocol
		// Every client of the bench is on loopback: the limits meant for
		// one client of many would turn most of them away.
		"--max-conns-per-address", "0", "--max-sessions-per-user", "0",
		"--log-level", e.opts.serverLogLevel,
		// Stopping is the bench's business: it has already closed its
		// connections by then.
		"--shutdown-grace", "2s",
	}, extra...)
	if e.opts.profiles != "" {
		if err := os.MkdirAll(e.opts.profiles, 0o755); err != nil {
			return nil, err
		}
		e.seq++
		args = append(args, "--cpuprofile", filepath.Join(e.opts.profiles, fmt.Sprintf("%s-%d.pprof", e.scenario, e.seq)))
	}
	p, err := e.startProcess("larder", addr, bin, environ, args...)
	if err != nil {
		return nil, err
	}
	prefix := ""
	if len(environ) > 0 {
		prefix = shellArgs(environ) + " "
	}
	e.progress("larder started: pid %d on %s: %slarder %s", p.PID, addr, prefix, shellArgs(args))
	return p, nil
}

// startBaseline starts this program's baseline server on a free port,
// serving filesDir.
func (e *Env) startBaseline(filesDir string) (*Process, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{baselineMode, "--listen", addr, "--files", filesDir}
	if e.opts.cpuProfile != "" {
		e.seq++
		args = append(args, "--cpuprofile", fmt.Sprintf("%s-%s-%d.pprof", e.opts.cpuProfile, e.scenario, e.seq))
	}
	p, err := e.startProcess("baseline", addr, e.self, nil, args...)
	if err != nil {
		return nil, err
	}
	e.progress("baseline started: pid %d on %s", p.PID, addr)
	return p, nil
}

func shellArgs(args []string) string {
	s := ""
	for i, a := range args {
		if i > 0 {
			s += " "
		}
		s += shellQuote(a)
	}
	return s
}
