//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// This file starts a private OpenSSH server for the native scenario's
// comparison: the current user's sshd on a free loopback port, with a host
// key, an authorized key and a configuration made in the bench's temporary
// folder, and nothing of the machine's own SSH setup. The bench never
// installs OpenSSH; without it, the comparison is skipped and says why.

// sshTools are the OpenSSH programs the comparison runs.
type sshTools struct {
	sshd, scp, keygen string // absolute paths
	version           string // "OpenSSH_9.2p1 Debian-2+deb12u10, OpenSSL 3.0.19 …"
}

// findSSHTools finds sshd, scp and ssh-keygen, or says what is missing and
// how to get it on Debian.
func findSSHTools() (sshTools, error) {
	var t sshTools
	var missing []string
	look := func(name, pkg string, also ...string) string {
		if p, err := exec.LookPath(name); err == nil {
			if abs, err := filepath.Abs(p); err == nil {
				return abs
			}
		}
		// sbin is not on every user's PATH.
		for _, p := range also {
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				return p
			}
		}
		missing = append(missing, fmt.Sprintf("%s (Debian package %s)", name, pkg))
		return ""
	}
	t.sshd = look("sshd", "openssh-server", "/usr/sbin/sshd", "/usr/local/sbin/sshd")
	t.scp = look("scp", "openssh-client")
	look("ssh", "openssh-client") // scp runs it
	t.keygen = look("ssh-keygen", "openssh-client")
	if len(missing) > 0 {
		return t, fmt.Errorf("not installed: %s", strings.Join(missing, ", "))
	}
	// "ssh -V" prints its version on stderr and exits 0.
	out, _ := exec.Command(filepath.Join(filepath.Dir(t.scp), "ssh"), "-V").CombinedOutput()
	t.version = strings.TrimSpace(string(out))
	return t, nil
}

// sshdServer is a running private sshd and what a client needs to reach it.
type sshdServer struct {
	tools sshTools
	proc  *Process
	port  string
	user  string // the current user, whom sshd lets in with key
	key   string // the client's private key
}

// sshdConfig returns the configuration of the private sshd: loopback only,
// public-key logins with the bench's key only, everything in dir.
//
// The sftp subsystem, which scp uses since OpenSSH 9.0, is internal-sftp:
// the same server as sftp-server, run in sshd's session process. An
// external sftp-server is started through the user's login shell, which
// reads the user's startup files first (bash reads ~/.bashrc under sshd):
// one that prints something breaks the SFTP stream, one that exits or
// execs another shell ends the session before the server starts (scp:
// "Connection closed", exit 255), and a slow one (pyenv init) adds its
// time to every copy measured. internal-sftp runs no shell.
func sshdConfig(dir, port string) string {
	return fmt.Sprintf(`# larder bench: a private sshd, removed with the bench's temporary folder
Port %s
ListenAddress 127.0.0.1
HostKey %s
PidFile %s
AuthorizedKeysFile %s
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
X11Forwarding no
PrintMotd no
UseDNS no
LogLevel INFO
Subsystem sftp internal-sftp
`, port, filepath.Join(dir, "ssh_host_ed25519_key"), filepath.Join(dir, "sshd.pid"),
		filepath.Join(dir, "authorized_keys"))
}

// startSSHD makes keys and a configuration in a fresh folder and starts
// sshd on a free loopback port. An error is a reason to skip the
// comparison: it says what is missing.
//
// extra is appended to the configuration (tests use it to set what a
// user's environment may hold).
func (e *Env) startSSHD(tools sshTools, extra string) (*sshdServer, error) {
	u, err := user.Current()
	if err != nil {
		return nil, fmt.Errorf("who is running the bench: %w", err)
	}
	dir, err := e.mkdir("sshd")
	if err != nil {
		return nil, err
	}
	for _, k := range []string{"ssh_host_ed25519_key", "client_ed25519_key"} {
		out, err := exec.CommandContext(e.ctx, tools.keygen, "-q", "-t", "ed25519", "-N", "", "-C", "larder-bench", "-f", filepath.Join(dir, k)).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("ssh-keygen: %v: %s", err, bytes.TrimSpace(out))
		}
	}
	pub, err := os.ReadFile(filepath.Join(dir, "client_ed25519_key.pub"))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := strings.Cut(addr, ":")
	cfg := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfg, []byte(sshdConfig(dir, port)+extra), 0o600); err != nil {
		return nil, err
	}
	// "sshd -t" checks the configuration and what sshd needs to run, such
	// as the privilege separation folder (/run/sshd) when run as root.
	if out, err := exec.CommandContext(e.ctx, tools.sshd, "-t", "-f", cfg).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s -t -f %s: %v: %s", tools.sshd, cfg, err, bytes.TrimSpace(out))
	}
	// sshd re-executes itself for each connection, hence the absolute path.
	p, err := e.startProcess("sshd", addr, tools.sshd, nil, "-f", cfg, "-D", "-e")
	if err != nil {
		return nil, err
	}
	e.progress("sshd started: pid %d on %s: %s -f %s -D -e", p.PID, addr, tools.sshd, cfg)
	return &sshdServer{tools: tools, proc: p, port: port, user: u.Username, key: filepath.Join(dir, "client_ed25519_key")}, nil
}

// sshAdvice returns what to do about a reason to skip scp, with a
// leading space, or "" if there is nothing to add to the reason.
func sshAdvice(skipped string) string {
	switch {
	case strings.HasPrefix(skipped, "not installed"):
		return " The bench installs nothing; on Debian, `apt-get install openssh-server openssh-client`."
	case strings.Contains(skipped, "/run/sshd"):
		return " Run as root, sshd needs its privilege separation folder, which the package's service makes at boot: `mkdir -p -m 755 /run/sshd`."
	}
	return ""
}

// remote returns the scp name of path on the server.
func (s *sshdServer) remote(path string) string { return s.user + "@127.0.0.1:" + path }

// scpArgs returns scp's arguments to copy src to dst with cipher ("" for
// OpenSSH's default). The options leave out every configuration file, so
// that the defaults are OpenSSH's own, and trust the private sshd's fresh
// host key without recording it.
func (s *sshdServer) scpArgs(cipher string, verbose bool, src, dst string) []string {
	args := []string{"-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-i", s.key, "-P", s.port}
	if verbose {
		args = append(args, "-v")
	} else {
		args = append(args, "-q", "-o", "LogLevel=ERROR")
	}
	if cipher != "" {
		args = append(args, "-c", cipher)
	}
	return append(args, src, dst)
}

// scp runs scp and returns its diagnostics (with verbose, ssh's debug
// lines).
func (s *sshdServer) scp(ctx context.Context, cipher string, verbose bool, src, dst string) (string, error) {
	cmd := exec.CommandContext(ctx, s.tools.scp, s.scpArgs(cipher, verbose, src, dst)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return stderr.String(), ctx.Err()
		}
		return stderr.String(), fmt.Errorf("scp: %v: %s", err, lastLines(stderr.String(), 5))
	}
	return stderr.String(), nil
}

// scpCommand returns the scp command line, for the notes under the table.
func (s *sshdServer) scpCommand(cipher, src, dst string) string {
	return "scp " + shellArgs(s.scpArgs(cipher, false, src, dst))
}

var kexCipher = regexp.MustCompile(`kex: (client->server|server->client) cipher: (\S+) MAC: (\S+)`)

// negotiatedCipher returns the cipher and MAC that ssh's debug output says
// were chosen, "cipher" or "cipher, MAC"; both directions must agree.
func negotiatedCipher(debug string) (string, error) {
	seen := map[string]string{}
	for _, m := range kexCipher.FindAllStringSubmatch(debug, -1) {
		c := m[2]
		if m[3] != "<implicit>" {
			c += ", MAC " + m[3]
		}
		seen[m[1]] = c
	}
	up, down := seen["client->server"], seen["server->client"]
	switch {
	case up == "" || down == "":
		return "", errors.New("ssh -v printed no negotiated cipher")
	case up != down:
		return "", fmt.Errorf("ssh chose %s one way and %s the other", up, down)
	}
	return up, nil
}

// waitChildren waits until the process has no child left (up to limit),
// so that its children's CPU time has been added to its own.
func waitChildren(pid int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && hasChildren(pid) {
		time.Sleep(5 * time.Millisecond)
	}
}

// hasChildren reports whether any thread of pid has a child process.
func hasChildren(pid int) bool {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		if b, _ := os.ReadFile(t); len(bytes.TrimSpace(b)) > 0 {
			return true
		}
	}
	return false
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}
