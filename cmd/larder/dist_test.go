package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/course"
)

// TestSystemdUnit: the unit shipped in dist/ is what OPERATIONS.md says:
// Type=notify (larder speaks sd_notify), reload by SIGHUP, writes only to
// the data folder the example configuration names, started with that
// configuration; and systemd itself, where installed, finds nothing wrong
// with it.
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "dist", "larder.service"))
	must(t, err)
	unit := string(b)
	for _, want := range []string{
		"\nType=notify\n",
		"\nExecReload=/bin/kill -HUP $MAINPID\n",
		"\nExecStart=/usr/local/bin/larder serve --config /etc/larder/larder.toml\n",
		"\nProtectSystem=strict\n",
		"\nReadWritePaths=/var/lib/larder\n",
		"\nNoNewPrivileges=true\n",
		"\nUser=larder\n",
		"\nWatchdogSec=",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("dist/larder.service lacks %q", strings.TrimSpace(want))
		}
	}
	conf, err := os.ReadFile(filepath.Join("..", "..", "dist", "larder.toml"))
	must(t, err)
	if !strings.Contains(string(conf), "\ndata = \"/var/lib/larder\"\n") {
		t.Error("dist/larder.toml does not put the data folder where the unit lets larder write")
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed: the unit's syntax is not checked by systemd")
	}
	self, err := os.Executable()
	must(t, err)
	dir := t.TempDir()
	path := filepath.Join(dir, "larder.service")
	must(t, os.WriteFile(path, []byte(strings.ReplaceAll(unit, "/usr/local/bin/larder", self)), 0o644))
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// unitValues returns the values of key= in a unit file, in order.
func unitValues(unit, key string) []string {
	var vals []string
	for _, line := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			vals = append(vals, v)
		}
	}
	return vals
}

func readDist(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "dist", name))
	must(t, err)
	return string(b)
}

// distSettings returns dist/larder.toml's settings by key.
func distSettings(t *testing.T) map[string]string {
	t.Helper()
	settings, err := readConfigFile(filepath.Join("..", "..", "dist", "larder.toml"))
	must(t, err)
	m := map[string]string{}
	for _, s := range settings {
		m[s.key] = s.value
	}
	return m
}

// TestSystemdSockets: the socket units shipped in dist/ carry names
// larder takes, for the addresses dist/larder.toml gives those protocols,
// the drop-in hands both to the service, and systemd, where installed,
// finds nothing wrong with the units together.
func TestSystemdSockets(t *testing.T) {
	conf := distSettings(t)
	dropIn := readDist(t, "larder-sockets.conf")
	for _, tc := range []struct{ file, name, setting string }{
		{"larder.socket", "course", "listen"},
		{"larder-native.socket", "native", "native-listen"},
	} {
		unit := readDist(t, tc.file)
		if got := unitValues(unit, "FileDescriptorName"); len(got) != 1 || got[0] != tc.name {
			t.Errorf("%s: FileDescriptorName %q, want %q", tc.file, got, tc.name)
		}
		if !slices.ContainsFunc(socketNames, func(s struct{ name, setting string }) bool { return s.name == tc.name && s.setting == tc.setting }) {
			t.Errorf("larder takes no socket named %q for %s", tc.name, tc.setting)
		}
		if got := unitValues(unit, "ListenStream"); len(got) != 1 || got[0] != conf[tc.setting] {
			t.Errorf("%s: ListenStream %q, want dist/larder.toml's %s %q", tc.file, got, tc.setting, conf[tc.setting])
		}
		if got := unitValues(unit, "Service"); len(got) != 1 || got[0] != "larder.service" {
			t.Errorf("%s: Service %q, want larder.service", tc.file, got)
		}
		for _, key := range []string{"Sockets", "Requires", "After"} {
			if v := unitValues(dropIn, key); len(v) != 1 || !slices.Contains(strings.Fields(v[0]), tc.file) {
				t.Errorf("dist/larder-sockets.conf: %s=%q does not name %s", key, v, tc.file)
			}
		}
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed: the units' syntax is not checked by systemd")
	}
	self, err := os.Executable()
	must(t, err)
	dir := t.TempDir()
	service := strings.ReplaceAll(readDist(t, "larder.service"), "/usr/local/bin/larder", self)
	must(t, os.WriteFile(filepath.Join(dir, "larder.service"), []byte(service), 0o644))
	must(t, os.MkdirAll(filepath.Join(dir, "larder.service.d"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "larder.service.d", "sockets.conf"), []byte(dropIn), 0o644))
	args := []string{"verify"}
	for _, f := range []string{"larder.socket", "larder-native.socket"} {
		must(t, os.WriteFile(filepath.Join(dir, f), []byte(readDist(t, f)), 0o644))
		args = append(args, filepath.Join(dir, f))
	}
	out, err := exec.Command(analyze, append(args, filepath.Join(dir, "larder.service"))...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// operationsPart returns the part of docs/OPERATIONS.md after from and
// before the first until that follows.
func operationsPart(t *testing.T, from, until string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "OPERATIONS.md"))
	must(t, err)
	_, part, ok := strings.Cut(string(b), from)
	if !ok {
		t.Fatalf("OPERATIONS.md has no %q", from)
	}
	part, _, _ = strings.Cut(part, until)
	return part
}

// installSteps returns the commands of OPERATIONS.md's installation
// steps, "sudo " dropped, comments cut.
func installSteps(t *testing.T) []string {
	t.Helper()
	section := operationsPart(t, "# Operations: running as a service\n", "\n## ")
	var steps []string
	for _, line := range strings.Split(section, "\n") {
		cmd, ok := strings.CutPrefix(line, "    ")
		if !ok {
			continue
		}
		cmd, _, _ = strings.Cut(cmd, "#")
		steps = append(steps, strings.TrimSpace(strings.TrimPrefix(cmd, "sudo ")))
	}
	return steps
}

// step returns the installation step that starts with prefix.
func step(t *testing.T, steps []string, prefix string) []string {
	t.Helper()
	for _, s := range steps {
		if strings.HasPrefix(s, prefix) {
			return strings.Fields(s)
		}
	}
	t.Fatalf("OPERATIONS.md's installation has no step %q: %q", prefix, steps)
	return nil
}

// TestOperationsInstallSteps follows OPERATIONS.md's installation as far
// as a machine without a running systemd allows: the user, paths and
// modes of the steps agree with the unit and the example configuration;
// the configuration checks; the server starts from it under a real
// NOTIFY_SOCKET and says READY with its status; the admin command, run
// as the steps say, finds the accounts through the same file; a reload
// and a stop are notified.
func TestOperationsInstallSteps(t *testing.T) {
	steps := installSteps(t)
	unit := readDist(t, "larder.service")
	conf := distSettings(t)

	user := step(t, steps, "useradd")
	if !slices.Contains(user, "--system") || !slices.Contains(user, "--user-group") || user[len(user)-1] != unitValues(unit, "User")[0] ||
		unitValues(unit, "Group")[0] != user[len(user)-1] {
		t.Errorf("the user made by %q is not the unit's User=%q Group=%q with a group of its own", user, unitValues(unit, "User"), unitValues(unit, "Group"))
	}
	if home := user[slices.Index(user, "--home-dir")+1]; home != conf["data"] || unitValues(unit, "ReadWritePaths")[0] != home {
		t.Errorf("the user's home %s, the data folder %s and the unit's ReadWritePaths %q differ", home, conf["data"], unitValues(unit, "ReadWritePaths"))
	}
	exec := strings.Fields(unitValues(unit, "ExecStart")[0])
	bin := step(t, steps, "go build")
	if bin[len(bin)-1] != exec[0] {
		t.Errorf("the steps install the binary as %s, the unit runs %s", bin[len(bin)-1], exec[0])
	}
	confPath := exec[len(exec)-1]
	install := step(t, steps, "install -m 0640 -g larder dist/larder.toml")
	if install[len(install)-1] != confPath || confPath != SystemConfigFile {
		t.Errorf("the steps install the configuration as %s, the unit reads %s, the default is %s", install[len(install)-1], confPath, SystemConfigFile)
	}
	if check := step(t, steps, "larder config check"); check[len(check)-1] != confPath {
		t.Errorf("the steps check %s, the unit reads %s", check[len(check)-1], confPath)
	}
	if u := step(t, steps, "install -m 0644 dist/larder.service"); u[len(u)-1] != "/etc/systemd/system/larder.service" {
		t.Errorf("the unit is installed as %s", u[len(u)-1])
	}
	admin := step(t, steps, "-u larder larder admin")

	// The steps on this machine, under a temporary root: the example
	// configuration with its folders moved there and ports chosen by the
	// system (and text logs, which the test reads).
	root := t.TempDir()
	b, err := os.ReadFile(filepath.Join("..", "..", "dist", "larder.toml"))
	must(t, err)
	text := strings.ReplaceAll(string(b), conf["data"], filepath.Join(root, conf["data"]))
	for _, addr := range []string{conf["listen"], conf["native-listen"], conf["metrics-listen"]} {
		text = strings.ReplaceAll(text, `"`+addr+`"`, `"127.0.0.1:0"`)
	}
	text = strings.ReplaceAll(text, `format = "json"`, `format = "text"`)
	text = strings.ReplaceAll(text, "memory = 19456\npasses = 2", "memory = 64\npasses = 1") // cheap hashes in tests
	path := filepath.Join(root, confPath)
	must(t, os.MkdirAll(filepath.Dir(path), 0o755))
	must(t, os.WriteFile(path, []byte(text), 0o640))
	// systemd makes the data folder (StateDirectory=, mode 0700).
	must(t, os.MkdirAll(filepath.Join(root, conf["data"]), 0o700))

	env, out := configEnv(t)
	if err := Run(t.Context(), env, []string{"config", "check", "--config", path}); err != nil {
		t.Fatalf("config check: %v\n%s", err, out)
	}
	ns := newNotifySocket(t)
	p := startProcessArgs(t, nil, []string{"NOTIFY_SOCKET=" + ns.path}, filepath.Join(root, conf["files"]), append(exec[1:len(exec)-1], path)...)
	if msg := ns.next(t); !strings.Contains(msg, "READY=1") || !strings.Contains(msg, "STATUS=serving "+filepath.Join(root, conf["files"])) {
		t.Errorf("first notification %q, want READY=1 and a status naming what is served", msg)
	}
	// The admin command finds the file as the steps run it: no --config,
	// the system's file (here, under the temporary root).
	var adminOut strings.Builder
	adminEnv := &Env{Stdin: strings.NewReader("pw\n"), Stdout: &adminOut, Stderr: &adminOut, SystemConfig: path, Getenv: func(string) string { return "" }}
	if err := Run(t.Context(), adminEnv, append(admin[3:], "--password-stdin")); err != nil {
		t.Fatalf("%q: %v\n%s", admin, err, adminOut.String())
	}
	// The service knows the account (a course login of an account with
	// no course password is refused as a wrong one, of none as missing).
	sig := larder.NewSignature("pw", "salt")
	if r := rawExchange(t, p.addr, "nobody", sig, "f.txt"); r.status != course.StatusUserMissing {
		t.Fatalf("a login of no account: %v %q, want %v", r.status, r.payload, course.StatusUserMissing)
	}
	if r := rawExchange(t, p.addr, admin[len(admin)-1], sig, "f.txt"); r.status != course.StatusInvalidLogin {
		t.Errorf("the account the admin command made is unknown to the service: %v %q", r.status, r.payload)
	}
	must(t, p.cmd.Process.Signal(syscall.SIGHUP)) // systemctl reload
	if msg := ns.next(t); !strings.Contains(msg, "RELOADING=1") {
		t.Errorf("notification at the reload %q", msg)
	}
	if msg := ns.next(t); !strings.Contains(msg, "READY=1") {
		t.Errorf("notification after the reload %q", msg)
	}
	must(t, p.cmd.Process.Signal(syscall.SIGTERM)) // systemctl stop
	if msg := ns.next(t); !strings.Contains(msg, "STOPPING=1") {
		t.Errorf("notification at the stop %q", msg)
	}
	if err := p.wait(); err != nil {
		t.Fatalf("larder exited with %v\n%s", err, p.stderr)
	}
}
