package s3

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder"
)

// TestClaim: a server's name on a bucket is one process's while it runs:
// another process claiming it (a copied data folder) is refused with a
// message that says why and what to do, until the first lets go of it;
// a claim of a process of this host that is gone is taken at once, and
// one of another host once it is not rewritten for the active window.
func TestClaim(t *testing.T) {
	cfg := testConfig(t)
	one, two := testBackend(t, cfg), testBackend(t, cfg)
	release, err := one.Claim("0123456789abcdef", nil)
	must(t, err)
	_, err = two.Claim("0123456789abcdef", nil)
	if larder.ErrorCode(err) != larder.ECONFLICT || !strings.Contains(larder.ErrorMessage(err), "another server runs under this server's name") ||
		!strings.Contains(larder.ErrorMessage(err), "a data folder of its own") {
		t.Errorf("a second claim of a name held: %v; want a conflict saying a data folder was copied", err)
	}
	other, err := two.Claim("fedcba9876543210", nil)
	must(t, err)
	other()
	release()
	release() // twice is no harm
	release2, err := two.Claim("0123456789abcdef", nil)
	if err != nil {
		t.Fatalf("a claim of a name let go of: %v", err)
	}
	release2()

	// Written by a process that ended: of this host, taken at once.
	key := one.root + "servers/0123456789abcdef"
	host, _ := os.Hostname()
	cmd := exec.Command("true")
	must(t, cmd.Run())
	write := func(host string, pid int) {
		t.Helper()
		body, _ := json.Marshal(claim{Instance: "gone", Host: host, Boot: bootID(), PIDNS: pidNamespace(), PID: pid, Started: time.Now()})
		must(t, one.put(key, body, false))
	}
	write(host, cmd.Process.Pid)
	release, err = two.Claim("0123456789abcdef", nil)
	if err != nil {
		t.Fatalf("a claim of a name whose process of this host is gone: %v", err)
	}
	release()

	// Of another host: refused until it is older than the window.
	write("elsewhere.example", 1)
	if _, err := two.Claim("0123456789abcdef", nil); larder.ErrorCode(err) != larder.ECONFLICT || !strings.Contains(larder.ErrorMessage(err), "elsewhere.example") {
		t.Errorf("a claim of a name another host holds: %v; want a conflict naming the host", err)
	}
	two.activeWindow = 2 * time.Second
	time.Sleep(3 * time.Second)
	release, err = two.Claim("0123456789abcdef", nil)
	if err != nil {
		t.Fatalf("a claim of a name whose holder stopped rewriting it: %v", err)
	}
	release()
}

// TestClaimSameHostNameElsewhere: a fresh claim of this host name whose
// pid runs nothing here is refused when it was written elsewhere: by a
// server of another machine that bears this one's host name (a
// distribution's default, such as raspberrypi; another boot), or of a
// container of this machine with its host name (this boot, another PID
// namespace, which numbers its processes apart). Its process is not among
// ours, and may well run.
func TestClaimSameHostNameElsewhere(t *testing.T) {
	if bootID() == "" || pidNamespace() == "" {
		t.Skip("this system does not say which boot of its kernel or which PID namespace runs (no /proc/sys/kernel/random/boot_id or /proc/self/ns/pid): a host name is all a claim can tell it by")
	}
	host, _ := os.Hostname()
	for _, tc := range []struct{ name, boot, pidns string }{
		{"another machine", "7a3f0c52-0000-4000-8000-000000000000", pidNamespace()},
		{"another container", bootID(), "pid:[1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := testBackend(t, testConfig(t))
			cmd := exec.Command("true")
			must(t, cmd.Run())
			body, _ := json.Marshal(claim{Instance: "elsewhere", Host: host, Boot: tc.boot, PIDNS: tc.pidns, PID: cmd.Process.Pid, Started: time.Now().UTC()})
			must(t, b.put(b.root+"servers/0123456789abcdef", body, false))
			release, err := b.Claim("0123456789abcdef", nil)
			if err == nil {
				release()
			}
			if larder.ErrorCode(err) != larder.ECONFLICT {
				t.Errorf("a fresh claim of %s of this host name, %s: %v; want a conflict", tc.name, host, err)
			}
		})
	}
}

// TestClaimTakenOver: a server whose claim another took (it had not
// rewritten it for the active window: stopped, or cut off from the store)
// neither writes its claim over the other's at its next heartbeat nor
// removes the other's when it lets go of the name: either would let a
// third copy of the data folder start beside the one that holds it. It
// is told that it lost the name, to stop serving.
func TestClaimTakenOver(t *testing.T) {
	cfg := testConfig(t)
	one, two, three := testBackend(t, cfg), testBackend(t, cfg), testBackend(t, cfg)
	one.claimBeat = 100 * time.Millisecond
	lost := make(chan struct{})
	release, err := one.Claim("0123456789abcdef", func() { close(lost) })
	must(t, err)
	defer release()
	// two takes the name as it takes a claim not rewritten in time.
	key := one.root + "servers/0123456789abcdef"
	body, _ := json.Marshal(claim{Instance: two.instance, Host: "elsewhere.example", PID: 1, Started: time.Now().UTC()})
	must(t, two.put(key, body, false))
	// Told at its next heartbeat that finds the claim another's: one
	// round trip to the store, which a loaded machine can make slow, so
	// the wait is for the telling, not a count of heartbeats.
	select {
	case <-lost:
	case <-time.After(30 * time.Second):
		t.Error("the server whose name was taken was not told within 30 s")
	}
	held := func(when string) {
		t.Helper()
		got, _, err := two.getModified(key)
		var c claim
		if err != nil || json.Unmarshal(got, &c) != nil || c.Instance != two.instance {
			t.Errorf("the claim %s: %q, %v; want two's", when, got, err)
		}
		if release3, err := three.Claim("0123456789abcdef", nil); larder.ErrorCode(err) != larder.ECONFLICT {
			if err == nil {
				release3()
			}
			t.Errorf("a third claim %s: %v; want a conflict", when, err)
		}
	}
	held("after the heartbeats of the server it was taken from")
	release()
	held("after the server it was taken from let go of the name")
}

// TestClaimOfZombie: a claim of a process of this host that has ended but
// not been reaped yet (a zombie: its parent, or a container's first
// process that reaps none, has not waited for it) is of a process that
// is gone, and is taken at once, as the restart after a crash wants.
func TestClaimOfZombie(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc/PID/stat on this system: a zombie cannot be told from a running process")
	}
	cfg := testConfig(t)
	b := testBackend(t, cfg)
	cmd := exec.Command("sleep", "60")
	must(t, cmd.Start())
	must(t, cmd.Process.Kill())
	defer cmd.Wait()
	// Not waited for yet: a zombie once the kill is through.
	waitFor := time.Now().Add(5 * time.Second)
	for !zombie(cmd.Process.Pid) && time.Now().Before(waitFor) {
		time.Sleep(10 * time.Millisecond)
	}
	host, _ := os.Hostname()
	body, _ := json.Marshal(claim{Instance: "killed", Host: host, Boot: bootID(), PIDNS: pidNamespace(), PID: cmd.Process.Pid, Started: time.Now().UTC()})
	key := b.root + "servers/0123456789abcdef"
	must(t, b.put(key, body, false))
	release, err := b.Claim("0123456789abcdef", nil)
	if err != nil {
		t.Fatalf("a claim of a process of this host killed but not yet reaped: %v", err)
	}
	release()
}
