//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Bounds on a system's start and stop.
const (
	readyTimeout = 20 * time.Second // from exec to accepting connections
	stopGrace    = 5 * time.Second  // from SIGTERM to SIGKILL
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat. It is
// 100 on every Linux architecture Go supports; reading it properly takes
// sysconf(_SC_CLK_TCK), which the standard library does not offer.
const clockTicks = 100

// Process is a system under test running as a child process of the bench.
type Process struct {
	Name string // "larder", "baseline", ...
	Addr string // where it listens
	PID  int

	cmd     *exec.Cmd
	logPath string // its stdout and stderr
	done    chan struct{}
	waitErr error
	stop    sync.Once
}

// startProcess starts a system under test, listening on addr, and waits
// until it accepts connections. environ holds variables added to the
// bench's own environment, such as GODEBUG=gctrace=1. The process is
// tracked by env, which stops it on Close.
func (e *Env) startProcess(name, addr, path string, environ []string, args ...string) (*Process, error) {
	e.seq++
	logPath := fmt.Sprintf("%s/%s-%s-%d.log", e.tmp, e.scenario, name, e.seq)
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if len(environ) > 0 {
		cmd.Env = append(os.Environ(), environ...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own process group, so that Ctrl-C reaches the bench only,
		// which then stops the servers in order.
		Setpgid: true,
		// If the bench dies without stopping it (SIGKILL, a crash in
		// any goroutine), the kernel kills the server. Go starts
		// children from threads that do not exit, as nothing here
		// locks a goroutine to its thread.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Process{Name: name, Addr: addr, PID: cmd.Process.Pid, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	e.track(p)
	if err := p.waitReady(e); err != nil {
		e.stop(p)
		return nil, err
	}
	return p, nil
}

// waitReady polls until p accepts a connection on a socket of its own. A
// connection accepted is not enough: the port was found free before p
// started, and another process may have taken it meanwhile; p then exits,
// unable to bind, while the other's listener answers.
func (p *Process) waitReady(e *Env) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		c, err := net.DialTimeout("tcp", p.Addr, time.Second)
		if err == nil {
			c.Close()
			if listens(p.PID, p.Addr) {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before accepting connections (%v); its log:\n%s", p.Name, p.waitErr, p.LogTail(20))
		case <-e.ctx.Done():
			return e.ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not accept connections on %s after %v; its log:\n%s", p.Name, p.Addr, readyTimeout, p.LogTail(20))
		}
	}
}

// listens reports whether process pid holds a socket listening on addr's
// port, where the system says (Linux's /proc/net/tcp and /proc/PID/fd);
// elsewhere it reports true, and an accepted connection is all there is
// to go by.
func listens(pid int, addr string) bool {
	_, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return true
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return true
	}
	sockets := map[string]bool{} // "socket:[INODE]", as /proc/PID/fd links read
	read := false
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		read = true
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" { // TCP_LISTEN
				continue
			}
			i := strings.LastIndexByte(f[1], ':')
			if p, err := strconv.ParseUint(f[1][i+1:], 16, 16); err == nil && p == port {
				sockets["socket:["+f[9]+"]"] = true
			}
		}
	}
	if !read {
		return true
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		// Not ours to look at: as where the system does not say. Else
		// it has exited, which the caller sees.
		return errors.Is(err, os.ErrPermission)
	}
	for _, fd := range fds {
		if link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && sockets[link] {
			return true
		}
	}
	return false
}

// Stop sends SIGTERM, and SIGKILL to the process group after stopGrace. It
// is safe to call more than once.
func (p *Process) Stop() {
	p.stop.Do(func() {
		select {
		case <-p.done:
			return
		default:
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopGrace):
			syscall.Kill(-p.PID, syscall.SIGKILL)
			select {
			case <-p.done:
			case <-time.After(stopGrace): // stuck in the kernel: give up waiting
			}
		}
	})
}

// Exited reports whether the process has ended, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// LogTail returns the last n lines of the process's output.
func (p *Process) LogTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// LogLines returns how many lines the process has written.
func (p *Process) LogLines() int {
	b, _ := os.ReadFile(p.logPath)
	return bytes.Count(b, []byte("\n"))
}

// CPU returns the user plus system CPU time the process has used, at the
// 10 ms resolution of /proc/PID/stat.
func (p *Process) CPU() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.PID))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// TreeCPU returns the CPU time of the process and of the children it has
// waited for: for a server that forks per connection (sshd), the
// connections that have ended.
func (p *Process) TreeCPU() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.PID))
	if err != nil {
		return 0, err
	}
	own, err := parseStatCPU(b)
	if err != nil {
		return 0, err
	}
	children, err := parseStatFields(b, 13, 14) // cutime, cstime
	return own + children, err
}

// parseStatCPU extracts utime+stime from the contents of /proc/PID/stat.
func parseStatCPU(b []byte) (time.Duration, error) {
	return parseStatFields(b, 11, 12) // utime, stime: fields 14 and 15
}

// parseStatFields returns the sum of the clock-tick fields at indexes is,
// counted from field 3 (state), of the contents of /proc/PID/stat. The
// command name, in parentheses, may hold spaces; fields are counted from
// the last ')'.
func parseStatFields(b []byte, is ...int) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("bench: unreadable /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	var sum int64
	for _, i := range is {
		if len(f) <= i {
			return 0, errors.New("bench: short /proc stat")
		}
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return time.Duration(sum) * time.Second / clockTicks, nil
}

// RSS returns the process's resident set size (VmRSS) in bytes.
func (p *Process) RSS() (int64, error) {
	m, err := p.memStatus()
	return m.rss, err
}

// FDs returns how many file descriptors the process has open: with a
// listener and idle connections, how many connections it has accepted.
func (p *Process) FDs() (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/fd", p.PID))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	return len(names), err
}

// selfCPU returns the CPU time the bench itself has used: the client side.
func selfCPU() time.Duration { return rusageCPU(syscall.RUSAGE_SELF) }

// childrenCPU returns the CPU time of the bench's children that have ended
// and been waited for: a client run as a program, such as scp.
func childrenCPU() time.Duration { return rusageCPU(syscall.RUSAGE_CHILDREN) }

func rusageCPU(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuMeter measures, over an interval of wall time, the CPU used by a
// server, by the bench (the clients), and by the whole machine, which on a
// shared machine tells how much went to others.
type cpuMeter struct {
	p            *Process
	start        time.Time
	server, self time.Duration
	machine      machineCPU
}

func startCPU(p *Process) cpuMeter {
	s, _ := p.CPU()
	return cpuMeter{p: p, start: time.Now(), server: s, self: selfCPU(), machine: readMachineCPU()}
}

// cpuUse is CPU time as a share of wall time, in percent of one core.
type cpuUse struct {
	server, client float64
	other          float64 // busy, but neither: other processes, the other server, interrupts
	idle           float64 // not used at all (idle and iowait)
	steal          float64 // taken by the hypervisor for other machines
}

func (m cpuMeter) stop() cpuUse {
	wall := time.Since(m.start)
	s, _ := m.p.CPU()
	mc := readMachineCPU()
	share := func(d time.Duration) float64 { return 100 * float64(d) / float64(wall) }
	u := cpuUse{
		server: share(s - m.server),
		client: share(selfCPU() - m.self),
		idle:   share(mc.idle - m.machine.idle),
		steal:  share(mc.steal - m.machine.steal),
	}
	u.other = max(0, share(mc.busy-m.machine.busy)-u.server-u.client)
	return u
}

// machineCPU is the machine's CPU time since boot, summed over its cores.
type machineCPU struct{ busy, idle, steal time.Duration }

// readMachineCPU reads the first line of /proc/stat; zero if unreadable.
func readMachineCPU() machineCPU {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineCPU{}
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	return parseMachineCPU(string(line))
}

// parseMachineCPU parses the "cpu" line of /proc/stat: user nice system
// idle iowait irq softirq steal, in clock ticks (guest time is already in
// user).
func parseMachineCPU(line string) machineCPU {
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return machineCPU{}
	}
	var v [8]int64
	for i := range v {
		v[i], _ = strconv.ParseInt(f[i+1], 10, 64)
	}
	tick := func(n int64) time.Duration { return time.Duration(n) * time.Second / clockTicks }
	return machineCPU{
		busy:  tick(v[0] + v[1] + v[2] + v[5] + v[6]),
		idle:  tick(v[3] + v[4]),
		steal: tick(v[7]),
	}
}

// freeAddr returns a loopback address with a port that was free a moment
// ago: one the kernel picks, or one of --ports.
func freeAddr() (string, error) {
	if listenPorts != nil {
		return listenPorts.next()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// raiseFDLimit raises the soft limit on open files to the hard limit, for
// the bench and the servers it starts (children inherit it). Holding 10,000
// idle connections takes 10,000 descriptors on each side.
func raiseFDLimit() (cur, maxv uint64, err error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, 0, err
	}
	// Set it even if it is already at the maximum: the Go runtime raises
	// its own soft limit at start-up but gives children the original one,
	// unless the program sets the limit itself.
	l.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, 0, err
	}
	return l.Cur, l.Max, nil
}
