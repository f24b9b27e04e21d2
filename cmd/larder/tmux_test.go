//go:build linux

package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// slowProxy forwards connections to a server at about rate bytes a second
// each way, so that a transfer on loopback lasts long enough to be seen.
func slowProxy(t *testing.T, to string, rate int) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	pace := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
				time.Sleep(time.Duration(n) * time.Second / time.Duration(rate))
			}
			if err != nil {
				break
			}
		}
		dst.Close()
		src.Close()
	}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", to)
			if err != nil {
				c.Close()
				continue
			}
			wg.Go(func() { pace(s, c) })
			wg.Go(func() { pace(c, s) })
		}
	})
	return ln.Addr().String()
}

// pane is a tmux pane of a given size running sh, on a tmux server of the
// test's own.
type pane struct {
	t      *testing.T
	tmux   string
	socket string
	name   string
	cols   int
}

func (p *pane) cmd(args ...string) string {
	p.t.Helper()
	out, err := exec.Command(p.tmux, append([]string{"-L", p.socket, "-f", "/dev/null"}, args...)...).CombinedOutput()
	if err != nil {
		p.t.Fatalf("tmux %q: %v\n%s", args, err, out)
	}
	return string(out)
}

// capture returns the pane's rows; joined, a line wrapped over rows is
// one.
func (p *pane) capture(joined bool) []string {
	args := []string{"capture-pane", "-p", "-t", p.name}
	if joined {
		args = append(args, "-J")
	}
	return strings.Split(strings.TrimRight(p.cmd(args...), "\n"), "\n")
}

// run types line and Enter, after clearing the screen, and returns the
// joined lines seen while it ran that hold a progress display, and the
// rows once it ended (rc written by the wrapper).
func (p *pane) run(line, rcFile string, onFirst func()) (during []string, after []string) {
	p.t.Helper()
	os.Remove(rcFile)
	p.cmd("send-keys", "-t", p.name, "clear", "Enter")
	time.Sleep(200 * time.Millisecond)
	// Cleared once the screen shows the prompt alone: lines seen before
	// would be the last command's.
	p.waitScreen(func(rows []string) bool { return len(nonEmpty(rows)) == 1 && atPrompt(rows) })
	p.cmd("send-keys", "-t", p.name, line, "Enter")
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		for _, l := range p.capture(true) {
			if strings.Contains(l, "%") && (len(during) == 0 || during[len(during)-1] != l) {
				if len(during) == 0 && onFirst != nil {
					onFirst()
				}
				during = append(during, l)
			}
		}
		if _, err := os.Stat(rcFile); err == nil {
			// The shell shows its prompt once the script has exited,
			// after rc is written, and tmux shows it after that: a
			// loaded machine can take longer than the pause.
			time.Sleep(200 * time.Millisecond)
			return during, p.waitScreen(atPrompt)
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("%q did not end within a minute; the pane shows:\n%s", line, strings.Join(p.capture(false), "\n"))
	return nil, nil
}

// waitScreen returns the pane's rows once cond holds for them, or, after
// 10 s, as they are then: the caller's checks say what is wrong.
func (p *pane) waitScreen(cond func(rows []string) bool) []string {
	p.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rows := p.capture(false)
		if cond(rows) || time.Now().After(deadline) {
			return rows
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nonEmpty returns the rows that hold more than spaces.
func nonEmpty(rows []string) []string {
	var out []string
	for _, r := range rows {
		if strings.TrimSpace(r) != "" {
			out = append(out, r)
		}
	}
	return out
}

// atPrompt reports whether the last row that holds anything is the
// shell's prompt alone.
func atPrompt(rows []string) bool {
	rows = nonEmpty(rows)
	return len(rows) > 0 && slices.Contains([]string{"$", "#"}, strings.TrimSpace(rows[len(rows)-1]))
}

// TestProgressInTmux runs put and get, of a file and of a tree, in tmux
// panes of 40 and 120 columns, and reads the screen while they run and
// after: the progress line never wraps, names the file, and leaves the
// screen clean, with one final line or the summary.
func TestProgressInTmux(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Skip("tmux is not installed: the progress display is not checked in a real terminal")
	}
	if testing.Short() {
		t.Skip("-short: the progress display in tmux takes some seconds")
	}
	l := startLarder(t)
	env := loggedIn(t, l)
	addr := slowProxy(t, l.lnpAddr(), 3<<20)
	runOK(t, env, "ls", "--server", addr) // pins the proxy's address

	dir := t.TempDir()
	const name = "a-rather-long-file-name-for-narrow-terminals.bin"
	writeLocal(t, dir, name, randomData(5<<20, 1))
	must(t, os.MkdirAll(filepath.Join(dir, "tree", "sub"), 0o755))
	for i := range 3 {
		writeLocal(t, filepath.Join(dir, "tree", "sub"), fmt.Sprintf("part-%d-of-the-tree.bin", i), randomData(2<<20, byte(i)))
	}
	rcFile := filepath.Join(dir, "rc")
	// The script outlives a Ctrl-C to say how larder exited.
	script := fmt.Sprintf("#!/bin/sh\ntrap true INT\nexport LARDER_TEST_RUN_MAIN=1 LARDER_CONFIG_DIR=%q LARDER_USER=alice LARDER_PASSWORD=pw LARDER_MIN_KDF=%q LARDER_NATIVE_SERVER=%q\n%q \"$@\"\necho $? > %q\n",
		env.Getenv("LARDER_CONFIG_DIR"), env.Getenv("LARDER_MIN_KDF"), addr, os.Args[0], rcFile)
	must(t, os.WriteFile(filepath.Join(dir, "l"), []byte(script), 0o755))

	socket := fmt.Sprintf("larder-test-%d", os.Getpid())
	t.Cleanup(func() { exec.Command(tmux, "-L", socket, "kill-server").Run() })
	for i, cols := range []int{40, 120} {
		t.Run(fmt.Sprint(cols), func(t *testing.T) {
			p := &pane{t: t, tmux: tmux, socket: socket, name: fmt.Sprintf("w%d", cols), cols: cols}
			p.cmd("new-session", "-d", "-s", p.name, "-x", fmt.Sprint(cols), "-y", "10", "-c", dir, "-e", "PS1=$ ", "sh")
			remote := fmt.Sprintf("/f%d.bin", i)
			tree := fmt.Sprintf("/t%d", i)
			for _, c := range []struct {
				line   string
				shows  string // in the progress line
				final  string // on the screen after
				shrink bool   // the pane is made narrower during the transfer
			}{
				{"./l put " + name + " " + remote, "a-rather", "a-rather", false},
				{fmt.Sprintf("./l get %s -o back%d.bin", remote, i), fmt.Sprintf("f%d.bin", i), fmt.Sprintf("f%d.bin", i), false},
				{"./l put -r --transfers 1 tree " + tree, "tree.bin", "larder: put: 3 files", false},
				{fmt.Sprintf("./l get -r %s back%d", tree, i), "tree.bin", "larder: get: 3 files", false},
				{fmt.Sprintf("./l put -r --transfers 1 tree %s-again", tree), "tree.bin", "larder: put: 3 files", cols > 40},
			} {
				var shrink func()
				if c.shrink {
					shrink = func() {
						time.Sleep(300 * time.Millisecond)
						p.cmd("resize-window", "-t", p.name, "-x", "30")
					}
				}
				during, after := p.run(c.line, rcFile, shrink)
				if c.shrink {
					p.cmd("resize-window", "-t", p.name, "-x", fmt.Sprint(cols))
				}
				if rc, _ := os.ReadFile(rcFile); strings.TrimSpace(string(rc)) != "0" {
					t.Fatalf("%q exited %s; the pane shows:\n%s", c.line, rc, strings.Join(after, "\n"))
				}
				if len(during) == 0 {
					t.Errorf("%q: no progress line was seen while it ran", c.line)
				}
				named := false
				for _, l := range during {
					if w := displayWidth(l); w > cols && !c.shrink {
						t.Errorf("%q: a progress line of %d columns in a pane of %d wrapped: %q", c.line, w, cols, l)
					}
					named = named || strings.Contains(l, c.shows)
				}
				if !named {
					t.Errorf("%q: the progress lines %q do not name the file (%q)", c.line, during, c.shows)
				}
				screen := strings.Join(after, "\n")
				if !atPrompt(after) {
					t.Errorf("%q: the screen after does not end with the prompt:\n%s", c.line, screen)
				}
				if strings.Contains(screen, "%") || strings.Contains(screen, "[=") {
					t.Errorf("%q: a progress line was left on the screen:\n%s", c.line, screen)
				}
				if !strings.Contains(strings.Join(p.capture(true), "\n"), c.final) {
					t.Errorf("%q: the screen after does not show %q:\n%s", c.line, c.final, screen)
				}
			}
			// Interrupted with Ctrl-C once its progress shows, then run
			// again: it says where it resumes, and ends clean.
			for _, line := range []string{
				fmt.Sprintf("./l put %s /r%d.bin", name, i),
				fmt.Sprintf("./l get /r%d.bin -o again%d.bin", i, i),
			} {
				p.run(line, rcFile, func() { p.cmd("send-keys", "-t", p.name, "C-c") })
				if rc, _ := os.ReadFile(rcFile); strings.TrimSpace(string(rc)) != "130" {
					t.Errorf("%q interrupted: exit %s, want 130", line, rc)
				}
				_, after := p.run(line, rcFile, nil)
				joined := strings.Join(p.capture(true), "\n")
				if !strings.Contains(joined, "resuming at ") {
					t.Errorf("%q after an interruption: the screen does not say where it resumes:\n%s", line, strings.Join(after, "\n"))
				}
				if screen := strings.Join(after, "\n"); strings.Contains(screen, "%") && !strings.Contains(joined, "%),") {
					t.Errorf("%q: a progress line was left on the screen:\n%s", line, screen)
				}
			}
		})
	}
}
