package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/internal/auth"
)

// nativeLine finds the native protocol's address in larder serve's
// start-up lines.
var nativeLine = regexp.MustCompile(`native protocol .*?on (127\.0\.0\.1:\d+)`)

// reloadProcess is a larder serve process whose settings, but its
// addresses and served folder, come from a configuration file that the
// test rewrites and reloads with SIGHUP; the admin commands read it too.
type reloadProcess struct {
	*larderProcess
	conf, data string
	reloads    int // SIGHUPs whose reload has been logged
	refusals   int // SIGHUPs whose refusal has been logged
}

func startReloadProcess(t *testing.T, settings string) *reloadProcess {
	t.Helper()
	rp := &reloadProcess{conf: filepath.Join(t.TempDir(), "larder.toml"), data: t.TempDir()}
	rp.write(t, settings)
	files := t.TempDir()
	rp.larderProcess = startProcessArgs(t, nil, []string{"LARDER_CONFIG=" + rp.conf}, files,
		"serve", "--listen", "127.0.0.1:0", "--native-listen", "127.0.0.1:0", "--insecure-plaintext-native", "--files", files,
		"--metrics-listen", "127.0.0.1:0")
	return rp
}

// reload writes settings to the file, sends SIGHUP and waits for the
// reload's log line, which it returns.
func (rp *reloadProcess) reload(t *testing.T, settings string) string {
	t.Helper()
	rp.reloads++
	return rp.hangUp(t, settings, `SIGHUP: configuration reloaded`, rp.reloads)
}

// refuse is reload of settings that the server refuses: it returns the
// refusal's log line.
func (rp *reloadProcess) refuse(t *testing.T, settings string) string {
	t.Helper()
	rp.refusals++
	return rp.hangUp(t, settings, `SIGHUP: the configuration was not applied`, rp.refusals)
}

// hangUp writes settings, sends SIGHUP and waits for the n-th log line
// that holds logged.
func (rp *reloadProcess) hangUp(t *testing.T, settings, logged string, n int) string {
	t.Helper()
	rp.write(t, settings)
	must(t, rp.cmd.Process.Signal(syscall.SIGHUP))
	line := regexp.MustCompile(`(?m)^.*` + regexp.QuoteMeta(logged) + `.*$`)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if lines := line.FindAllString(rp.stderr.String(), -1); len(lines) >= n {
			return lines[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q not logged a %d. time in ten seconds:\n%s", logged, n, rp.stderr)
		}
	}
}

// write writes settings to the configuration file, after the data folder.
func (rp *reloadProcess) write(t *testing.T, settings string) {
	must(t, os.WriteFile(rp.conf, []byte(fmt.Sprintf("data = %q\n", rp.data)+settings), 0o600))
}

// metricsLine finds the metrics listener's address.
var metricsLine = regexp.MustCompile(`metrics at http://(127\.0\.0\.1:\d+)/metrics`)

// waitOpen waits until the server serves n connections, as its metrics
// say: a client's connect returns once the kernel has it, which may be
// before the server accepts it.
func (rp *reloadProcess) waitOpen(t *testing.T, n int) {
	t.Helper()
	m := metricsLine.FindStringSubmatch(rp.stderr.String())
	if m == nil {
		t.Fatalf("no metrics address in\n%s", rp.stderr)
	}
	want := fmt.Sprintf("\nlarder_connections_open %d\n", n)
	waitUntil(t, "larder_connections_open "+fmt.Sprint(n), func() bool {
		resp, err := http.Get("http://" + m[1] + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), want)
	})
}

func (rp *reloadProcess) nativeAddr(t *testing.T) string {
	t.Helper()
	m := nativeLine.FindStringSubmatch(rp.stderr.String())
	if m == nil {
		t.Fatalf("no native protocol address in\n%s", rp.stderr)
	}
	return m[1]
}

// halfRequest connects and sends the first bytes of a download request of
// path, holding the connection and a slot of the server.
func halfRequest(t *testing.T, addr, user string, sig larder.Signature, path string) (net.Conn, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	must(t, err)
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(time.Minute))
	var buf bytes.Buffer
	_, err = (&course.Request{Username: user, Signature: sig, Body: []byte(path)}).WriteTo(&buf)
	must(t, err)
	req := buf.Bytes()
	_, err = c.Write(req[:10])
	must(t, err)
	return c, req[10:]
}

// reloadConfig returns a configuration file of top, top-level settings,
// and the hash policy memory KiB, one pass.
func reloadConfig(top string, memory int) string {
	return top + fmt.Sprintf("[hash]\nmemory = %d\npasses = 1\n", memory)
}

// TestServeProcessReloadsLimits: a SIGHUP applies a configuration file's
// new connection limit, request timeout, idle timeout and hash policy to
// the running process. Connections open over the lowered limit are served
// to the end, not dropped; new ones are turned away until they end; a
// session already open takes the new idle timeout from its next request;
// new hashes follow the new policy, which the admin commands reading the
// same file see; a policy lowered without hash-lower-policy is refused
// with every other change of that edit, and the running ones kept.
func TestServeProcessReloadsLimits(t *testing.T) {
	rp := startReloadProcess(t, reloadConfig("log-level = \"info\"\n", 64))
	rp.put(t, "f.txt", []byte("served"))
	sig := larder.NewSignature("pw", "salt")
	if r := rawExchange(t, rp.addr, "alice", sig, ""); r.status != course.StatusOK {
		t.Fatalf("registration: %v %q", r.status, r.payload)
	}

	// Three connections held: two course requests half sent, and one
	// native session.
	conn, err := net.Dial("tcp", rp.nativeAddr(t))
	must(t, err)
	sess, err := client.NewSession(t.Context(), conn, "alice", sig, client.SessionOptions{})
	must(t, err)
	defer sess.Close()
	held1, rest1 := halfRequest(t, rp.addr, "alice", sig, "f.txt")
	held2, rest2 := halfRequest(t, rp.addr, "alice", sig, "f.txt")
	rp.waitOpen(t, 3)

	line := rp.reload(t, reloadConfig("max-conns = 1\nnative-idle-timeout = \"1s\"\n", 128))
	for _, k := range []string{"hash-memory", "max-conns", "native-idle-timeout"} {
		if !strings.Contains(line, k) || strings.Contains(line, "needs_restart=["+k) {
			t.Errorf("the reload's log line does not say %s was applied:\n%s", k, line)
		}
	}
	if !strings.Contains(line, "needs_restart=[]") {
		t.Errorf("the reload's log line names settings needing a restart:\n%s", line)
	}

	// Over the new limit: a new connection is turned away...
	if r := rawExchange(t, rp.addr, "alice", sig, "f.txt"); r.status != course.StatusOther || !strings.Contains(string(r.payload), "too many connections") {
		t.Errorf("a new connection over the lowered max-conns: %v %q, want turned away as busy", r.status, r.payload)
	}
	// ...and those already open are served to the end.
	for i, h := range []struct {
		c    net.Conn
		rest []byte
	}{{held1, rest1}, {held2, rest2}} {
		_, err := h.c.Write(h.rest)
		must(t, err)
		if r := readReply(t, h.c); r.status != course.StatusOK || string(r.payload) != "served" {
			t.Errorf("held connection %d after the limit was lowered: %v %q, want served", i, r.status, r.payload)
		}
	}
	// The session is served its next request, and waits for the one
	// after it at most the new idle timeout.
	if _, err := sess.Whoami(t.Context()); err != nil {
		t.Fatalf("the session open across the reload: %v", err)
	}
	time.Sleep(2 * time.Second)
	if _, err := sess.Whoami(t.Context()); err == nil {
		t.Errorf("the session idle past the reloaded idle timeout still answers\n%s", rp.stderr)
	}
	// Every held connection gone, one is served again.
	waitUntil(t, "a connection served under max-conns 1", func() bool {
		r := rawExchange(t, rp.addr, "alice", sig, "f.txt")
		return r.status == course.StatusOK
	})

	// New hashes follow the reloaded policy, as the admin commands
	// reading the same file see. The server counts a connection until
	// it has closed it, after its reply: under max-conns 1, wait for it.
	rp.waitOpen(t, 0)
	if r := rawExchange(t, rp.addr, "bob", sig, ""); r.status != course.StatusOK {
		t.Fatalf("registration after the reload: %v %q", r.status, r.payload)
	}
	hashes := func(args ...string) map[string]any {
		t.Helper()
		out, stderr, err := runLarder(t, "", append([]string{"admin", "hashes", "--json", "--config", rp.conf}, args...)...)
		if err != nil {
			t.Fatalf("admin hashes: %v\n%s", err, stderr)
		}
		var v map[string]any
		must(t, json.Unmarshal([]byte(out), &v))
		return v
	}
	h := hashes()
	if h["policy"] != "m=128,t=1,p=1" {
		t.Errorf("admin hashes on the reloaded file: policy %v, want m=128", h["policy"])
	}
	if b, _ := json.Marshal(h["hashes"]); !strings.Contains(string(b), "m=128,t=1,p=1") {
		t.Errorf("no account hashed by the reloaded policy m=128: %s", b)
	}

	// A lower policy without hash-lower-policy is refused, and with it
	// the whole edit: a request timeout changed beside it waits too.
	line = rp.refuse(t, reloadConfig("request-timeout = \"1s\"\n", 64))
	if !strings.Contains(line, "is weaker than argon2id m=128") {
		t.Errorf("the refusal's log line does not say why:\n%s", line)
	}
	if h := hashes("--hash-memory", "128"); h["policy"] != "m=128,t=1,p=1" {
		t.Errorf("policy after a refused lowering: %v, want m=128,t=1,p=1 kept", h["policy"])
	}
	c, rest := halfRequest(t, rp.addr, "alice", sig, "f.txt")
	time.Sleep(1500 * time.Millisecond)
	_, err = c.Write(rest)
	must(t, err)
	if r := readReply(t, c); r.status != course.StatusOK {
		t.Errorf("a request finished 1.5 s after it began: %v %q; the refused reload's request-timeout 1s applied?", r.status, r.payload)
	}
	c.Close()
	// The edit set right, all of it applies.
	line = rp.reload(t, reloadConfig("request-timeout = \"1s\"\n", 128))
	if !strings.Contains(line, "request-timeout") {
		t.Errorf("the reload's log line does not say request-timeout was applied:\n%s", line)
	}
	c, _ = halfRequest(t, rp.addr, "alice", sig, "f.txt")
	if r := readReply(t, c); r.status != course.StatusMalformed || !strings.Contains(string(r.payload), "within 1s") {
		t.Errorf("a request not sent whole under the reloaded request-timeout 1s: %v %q", r.status, r.payload)
	}

	must(t, rp.cmd.Process.Signal(syscall.SIGTERM))
	if err := rp.wait(); err != nil {
		t.Fatalf("larder exited with %v\n%s", err, rp.stderr)
	}
}

// reloadValues gives each setting that a SIGHUP applies a value other
// than testServeConfig's; TestReloadEveryReloadableKey fails for a
// reloadable key missing here.
var reloadValues = map[string]string{
	"log-level": "debug", "registration": "closed", "native-signature-logins": "closed",
	"throttle-pair": "3/10s", "throttle-address": "7/10s", "throttle-account": "9/10s", "throttle-delay": "2s",
	"quota-bytes": "1GiB", "quota-files": "9",
	"max-conns": "9", "max-conns-per-address": "9", "max-sessions-per-user": "9", "max-transfers-per-user": "9",
	"request-timeout": "9s", "write-timeout": "9s", "native-idle-timeout": "9s", "audit-unauthenticated": "9/1s",
	"hash-memory": "128", "hash-passes": "2", "hash-lanes": "2", "hash-lower-policy": "true",
	"shutdown-grace": "9s", "audit-drain-timeout": "9s", "device-lifetime": "9h", "shuffle-blocks": "true",
	"hash-concurrency": "3",
}

// TestReloadEveryReloadableKey: each setting that larder config show
// lists as applied by SIGHUP is a key of the file that a reload applies
// to the running server, alone: after it, the running configuration
// agrees with the file.
func TestReloadEveryReloadableKey(t *testing.T) {
	env, out := configEnv(t)
	must(t, Run(t.Context(), env, []string{"config", "show"}))
	show := out.String()
	restartAt := strings.Index(show, "# Applied at the next restart only:")
	if restartAt < 0 {
		t.Fatalf("config show has no section of settings that need a restart:\n%s", show)
	}
	keys := serveKeys()
	l := startLarder(t)
	l.main.Level = new(slog.LevelVar)
	for _, r := range reloaders {
		for _, key := range r.keys {
			if keys[key] == nil {
				t.Errorf("reloadable key %q is not a key of the configuration file", key)
				continue
			}
			if i := strings.Index(show, "\n"+key+" = "); i < 0 || i > restartAt {
				if j := strings.Index(show, "\n# "+key+" = "); j < 0 || j > restartAt {
					t.Errorf("config show does not list %s among the settings SIGHUP applies:\n%s", key, show)
				}
			}
			v, ok := reloadValues[key]
			if !ok {
				t.Errorf("reloadable key %q has no value in reloadValues", key)
				continue
			}
			next := l.main.Config
			fs := flag.NewFlagSet("serve", flag.ContinueOnError)
			next.define(fs)
			must(t, fs.Set(key, v))
			if d := l.main.Config.differences(next); !slices.Equal(d, []string{key}) {
				t.Errorf("%s = %s: differences %q, want just it", key, v, d)
				continue
			}
			done, failed, restart := l.main.applyChanges(t.Context(), next)
			if !slices.Equal(done, []string{key}) || len(failed)+len(restart) > 0 {
				t.Errorf("%s = %s: applied %q, failed %q, needs a restart %q; want it applied", key, v, done, failed, restart)
			}
			if d := l.main.Config.differences(next); len(d) > 0 {
				t.Errorf("%s = %s: after the reload the running configuration still differs in %q", key, v, d)
			}
		}
	}
	// What the server runs with, not only what the configuration says.
	if got := l.main.srv.Stats().MaxConns; got != 9 {
		t.Errorf("max-conns in force after the reloads: %d, want 9", got)
	}
	if got, want := l.main.accounts.hasher.Params(), (auth.Params{Memory: 128, Time: 2, Threads: 2}); got != want {
		t.Errorf("hash policy in force after the reloads: %v, want %v", got, want)
	}
	if got := l.main.srv.Auth.Stats().HashSlots; got != 3 {
		t.Errorf("hash slots after hash-concurrency = 3: %d", got)
	}
	sig := larder.NewSignature("pw", "salt")
	u, err := l.main.srv.Auth.Register(t.Context(), "alice", sig[:])
	must(t, err)
	d, err := l.main.srv.Auth.AddDevice(t.Context(), u, "laptop", auth.LNPKeys{})
	must(t, err)
	if left := time.Until(d.ExpiresAt); left > 9*time.Hour || left < 8*time.Hour {
		t.Errorf("a device added after device-lifetime = 9h expires in %v", left)
	}
	putFile(t, l.files, "big.bin", bytes.Repeat([]byte("0123456789abcdef"), 64<<10)) // 1 MiB: many blocks
	if r := rawExchange(t, l.addr(), "alice", sig, "big.bin"); r.status != course.StatusOK || r.inOrder {
		t.Errorf("a reply after shuffle-blocks = true: %v, in order %v; want its blocks shuffled", r.status, r.inOrder)
	}
	for _, key := range []string{"listen", "data", "db", "storage", "audit-sink", "log-format"} {
		if reloadable(key) {
			t.Errorf("%s is reloadable: a running server cannot change it", key)
		}
	}
}

// TestConfigLimitsChecked: a limit or timeout that the server would read
// as its default, or as nothing, is refused by config check, and so by
// serve and by a reload.
func TestConfigLimitsChecked(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"max-conns = 0\n", "--max-conns must be at least 1, got 0"},
		{"max-conns = -5\n", "--max-conns must be at least 1, got -5"},
		{"request-timeout = \"0s\"\n", "--request-timeout and --write-timeout must be more than 0"},
		{"write-timeout = \"-1s\"\n", "--request-timeout and --write-timeout must be more than 0"},
		{"shutdown-grace = \"-1s\"\n", "--shutdown-grace may not be negative"},
	} {
		env, _ := configEnv(t)
		err := Run(t.Context(), env, []string{"config", "check", "--config", writeConfig(t, tc.file)})
		if err == nil || ExitCode(err) != exitUsage || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config check of %q: %v, want a usage error saying %q", tc.file, err, tc.want)
		}
	}
}

// TestReloadUnderLoad: reloads that change the limits, timeouts, hash
// policy and throttles, one after another while clients of both
// protocols keep asking, drop no request: each is answered, with the
// file or, at a lowered connection limit, busy. Run with -race, it also
// finds reads of a setting the reload writes.
func TestReloadUnderLoad(t *testing.T) {
	l := startLarder(t, func(c *ServeConfig) { c.InsecurePlaintextLNP = true })
	putFile(t, l.files, "f.txt", []byte("served"))
	sig := larder.NewSignature("pw", "salt")
	if _, err := l.main.srv.Auth.Register(t.Context(), "alice", sig[:]); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var served, busy atomic.Int64
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := client.Dial(t.Context(), l.addr())
				if err != nil {
					t.Errorf("dial: %v", err)
					return
				}
				var b bytes.Buffer
				_, err = c.Retrieve(t.Context(), "alice", sig, "f.txt", &b)
				c.Close()
				var se *client.StatusError
				switch {
				case err == nil && b.String() == "served":
					served.Add(1)
				case errors.As(err, &se) && strings.Contains(se.Message, "too many connections"):
					busy.Add(1)
				default:
					t.Errorf("a request during the reloads: %v, %q", err, b.String())
					return
				}
			}
		})
	}
	wg.Go(func() {
		conn, err := net.Dial("tcp", l.lnpAddr())
		if err != nil {
			t.Error(err)
			return
		}
		sess, err := client.NewSession(t.Context(), conn, "alice", sig, client.SessionOptions{})
		if err != nil {
			t.Errorf("native session: %v", err)
			return
		}
		defer sess.Close()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := sess.Whoami(t.Context()); err != nil {
				t.Errorf("the native session during the reloads: %v", err)
				return
			}
		}
	})
	base := l.main.Config
	for i := range 20 {
		next := base
		next.LowerHashPolicy = true
		if i%2 == 1 {
			next.MaxConns = 2
			next.RequestTimeout, next.WriteTimeout, next.LNPIdleTimeout = 4*time.Second, 4*time.Second, 30*time.Second
			next.Hash.Memory = 128
			next.Throttle.PairFailures = 3
			next.MaxConnsPerAddress, next.MaxSessionsPerUser, next.MaxTransfersPerUser = 50, 5, 2
		}
		l.main.ReloadConfig(next, nil)
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if served.Load() == 0 {
		t.Errorf("no request served during the reloads (%d busy)", busy.Load())
	}
	t.Logf("%d requests served, %d turned away busy, across 20 reloads", served.Load(), busy.Load())
}

// TestReloadDocumented: OPERATIONS.md's account of SIGHUP names every key
// of the configuration file, those a reload applies before "Every other
// setting needs a restart", the others after it.
func TestReloadDocumented(t *testing.T) {
	section := operationsPart(t, "- **SIGHUP**:", "`larder audit-writer`")
	applied, restart, ok := strings.Cut(section, "Every other setting needs a restart")
	if !ok {
		t.Fatal("OPERATIONS.md's SIGHUP entry does not say which settings need a restart")
	}
	for key := range serveKeys() {
		inApplied := strings.Contains(applied, "`"+key+"`")
		inRestart := strings.Contains(restart, "`"+key+"`")
		switch {
		case reloadable(key) && (!inApplied || inRestart):
			t.Errorf("%s is applied by SIGHUP, but OPERATIONS.md does not list it so", key)
		case !reloadable(key) && (!inRestart || inApplied):
			t.Errorf("%s needs a restart, but OPERATIONS.md does not list it so", key)
		}
	}
}
