package main

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/internal/audit"
	"github.com/larderfs/larder/internal/auth"
)

// auditServer configures a test server to record into sink: delivery
// retried often, so that a sink that comes back is used at once.
func auditServer(sink *sinkUnderTest, dataDir string) func(*ServeConfig) {
	return func(c *ServeConfig) {
		c.DataDir = dataDir
		c.Audit.Sink = sink.spec
		c.Audit.RetryMax = 200 * time.Millisecond
		c.Audit.DrainTimeout = 30 * time.Second
	}
}

// waitForEvents polls the sink until it holds n events, and returns them.
func waitForEvents(t *testing.T, sink *sinkUnderTest, n int) []larder.Event {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		events := sink.events(t)
		if len(events) >= n || time.Now().After(deadline) {
			return events
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wantOnce fails t unless every event has an ID, a time and a server, and
// no ID appears twice.
func wantOnce(t *testing.T, events []larder.Event) {
	t.Helper()
	seen := map[larder.EventID]bool{}
	for _, ev := range events {
		if ev.ID.IsZero() || ev.Time.IsZero() || ev.Server == "" {
			t.Errorf("event without its ID, time or server: %+v", ev)
		}
		if seen[ev.ID] {
			t.Errorf("event %v stored twice: %+v", ev.ID, ev)
		}
		seen[ev.ID] = true
	}
}

// byKind counts events by kind.
func byKind(events []larder.Event) map[larder.EventKind]int {
	n := map[larder.EventKind]int{}
	for _, ev := range events {
		n[ev.Kind]++
	}
	return n
}

// find returns the events of kind that match, failing t unless there are
// want of them.
func find(t *testing.T, events []larder.Event, want int, kind larder.EventKind, match func(*larder.Event) bool) []larder.Event {
	t.Helper()
	var found []larder.Event
	for i := range events {
		if events[i].Kind == kind && (match == nil || match(&events[i])) {
			found = append(found, events[i])
		}
	}
	if len(found) != want {
		t.Errorf("%d %s events match, want %d; the sink holds:\n%s", len(found), kind, want, dumpEvents(events))
	}
	return found
}

func dumpEvents(events []larder.Event) string {
	var b strings.Builder
	for _, ev := range events {
		fmt.Fprintf(&b, "  %s user=%q remote=%q path=%q status=%d bytes=%d reason=%q\n",
			ev.Kind, ev.User, ev.Remote, ev.Path, ev.Status, ev.Bytes, ev.Reason)
	}
	return b.String()
}

// TestAuditTrailEveryKind drives a server through every kind of event it
// records, on every sink, and checks that each event arrives once with
// its fields right, and that shutdown delivers everything before it
// returns.
func TestAuditTrailEveryKind(t *testing.T) {
	for _, sc := range auditSinks {
		t.Run(sc.name, func(t *testing.T) {
			dataDir := t.TempDir()
			sink := sc.setup(t, dataDir)
			testAuditEveryKind(t, sink, dataDir)
		})
	}
}

func testAuditEveryKind(t *testing.T, sink *sinkUnderTest, dataDir string) {
	content := []byte("alice's audited file\n")
	l := startLarder(t, auditServer(sink, dataDir), func(c *ServeConfig) {
		c.MaxConns = 3
		c.Throttle.PairFailures, c.Throttle.PairRefill = 1, time.Hour
	})
	l.put(t, "a.txt", content)
	alice := larder.NewSignature("alice's password", course.CourseSalt)
	carol := larder.NewSignature("carol's password", course.CourseSalt)
	wrong := larder.NewSignature("a guess", course.CourseSalt)
	exchange := func(src, user string, sig larder.Signature, body string, want course.Status) wireReply {
		t.Helper()
		r := rawExchangeFrom(t, src, l.addr(), user, sig, body)
		wantStatus(t, fmt.Sprintf("%s %q", user, body), r, want)
		// The server may still hold the connection after the reply, and
		// with MaxConns at 3 the next ones would be turned away.
		waitUntil(t, "the exchange's connection gone", func() bool { return l.main.srv.Conns() == 0 })
		return r
	}

	exchange("", "alice", alice, "", course.StatusOK)
	exchange("", "alice", alice, "", course.StatusUserExists)
	exchange("", "carol", carol, "", course.StatusOK)
	if r := exchange("", "alice", alice, "a.txt", course.StatusOK); string(r.payload) != string(content) {
		t.Fatalf("alice got %q", r.payload)
	}
	exchange("", "alice", alice, "missing.txt", course.StatusBadRequest)
	exchange("", "alice", wrong, "a.txt", course.StatusInvalidLogin)
	exchange("", "nobody", alice, "a.txt", course.StatusUserMissing)
	exchange(attacker, "carol", wrong, "a.txt", course.StatusInvalidLogin)
	exchange(attacker, "carol", wrong, "a.txt", course.StatusOther) // throttled
	if _, stderr, err := l.admin(t, "", "user", "disable", "carol", "--audit-sink", sink.spec); err != nil {
		t.Fatalf("admin user disable: %v\n%s", err, stderr)
	}
	exchange(owner, "carol", carol, "a.txt", course.StatusInvalidLogin) // disabled

	// A request cut short.
	c, err := net.Dial("tcp", l.addr())
	must(t, err)
	req, err := (&course.Request{Username: "alice", Signature: alice, Body: []byte("a.txt")}).AppendBinary(nil)
	must(t, err)
	c.Write(req[:len(req)-2]) // and hangs up before the end
	c.(*net.TCPConn).CloseWrite()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	wantStatus(t, "a short request", readReply(t, c), course.StatusMalformed)
	c.Close()

	// The connection limit: three idle connections, and a fourth turned
	// away. The idle ones then hang up without a request. (The earlier
	// connections must be gone first, lingering ones included.)
	waitUntil(t, "earlier connections gone", func() bool { return l.main.srv.Conns() == 0 })
	var idle []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", l.addr())
		must(t, err)
		idle = append(idle, c)
	}
	waitUntil(t, "three connections held", func() bool { return l.main.srv.Conns() == 3 })
	busy, err := net.Dial("tcp", l.addr())
	must(t, err)
	busy.SetDeadline(time.Now().Add(30 * time.Second))
	wantStatus(t, "over the limit", readReply(t, busy), course.StatusOther)
	busy.Close()
	for _, c := range idle {
		c.Close()
	}
	waitUntil(t, "idle connections gone", func() bool { return l.main.srv.Conns() == 0 })

	// A stronger policy: alice's hash is upgraded at her next login.
	l = l.restart(t, func(c *ServeConfig) { c.Hash = auth.Params{Memory: 128, Time: 1, Threads: 1} })
	exchange("", "alice", alice, "a.txt", course.StatusOK)
	l.shutdown()

	// Shutdown drained the pipeline: the sink took every event before
	// it returned (JetStream's, to be moved to PostgreSQL after).
	if st := l.main.audit.log.Stats(); st.Delivered != st.Durable || st.Durable != st.Taken || st.NotTaken != (audit.NotTaken{}) {
		t.Errorf("after shutdown: %d taken, %d durable, %d delivered, not taken %+v", st.Taken, st.Durable, st.Delivered, st.NotTaken)
	}
	want := map[larder.EventKind]int{
		larder.EventServerStart: 2, larder.EventServerStop: 2,
		larder.EventConnClose: 3, // the idle connections: the others' requests say it all
		larder.EventRegister:  3, larder.EventLogin: 3, larder.EventLoginFailed: 4, larder.EventThrottled: 1,
		larder.EventDownload: 2, larder.EventRefused: 3, larder.EventAccount: 2,
	}
	total := 0
	for _, n := range want {
		total += n
	}
	events := waitForEvents(t, sink, total)
	wantOnce(t, events)
	got := byKind(events)
	for _, k := range larder.EventKinds {
		if got[k] != want[k] {
			t.Errorf("%d %s events, want %d", got[k], k, want[k])
		}
	}
	if t.Failed() {
		t.Fatalf("the sink holds:\n%s", dumpEvents(events))
	}

	sum := sha256.Sum256(content)
	for _, d := range find(t, events, 2, larder.EventDownload, nil) {
		if d.User != "alice" || d.Path != "/shared/a.txt" || d.Bytes != int64(len(content)) || d.SHA256 != sum ||
			d.Status != int(course.StatusOK) || d.Duration <= 0 || d.Reason != "" || !strings.HasPrefix(d.Remote, "127.0.0.1:") {
			t.Errorf("download event: %+v", d)
		}
	}
	find(t, events, 2, larder.EventRegister, func(e *larder.Event) bool { return e.Status == int(course.StatusOK) && e.Reason == "" })
	find(t, events, 1, larder.EventRegister, func(e *larder.Event) bool {
		return e.User == "alice" && e.Status == int(course.StatusUserExists) && strings.Contains(e.Reason, "already exists")
	})
	find(t, events, 3, larder.EventLogin, func(e *larder.Event) bool { return e.User == "alice" && e.Path != "" && e.Duration > 0 })
	for user, reason := range map[string]string{"alice": "wrong signature", "nobody": "unknown user"} {
		find(t, events, 1, larder.EventLoginFailed, func(e *larder.Event) bool { return e.User == user && e.Reason == reason })
	}
	find(t, events, 1, larder.EventLoginFailed, func(e *larder.Event) bool {
		return e.User == "carol" && e.Reason == "wrong signature" && strings.HasPrefix(e.Remote, attacker+":")
	})
	find(t, events, 1, larder.EventLoginFailed, func(e *larder.Event) bool {
		return e.User == "carol" && e.Reason == "account disabled" && strings.HasPrefix(e.Remote, owner+":")
	})
	find(t, events, 1, larder.EventThrottled, func(e *larder.Event) bool {
		return e.User == "carol" && strings.HasPrefix(e.Remote, attacker+":") && strings.Contains(e.Reason, "too many")
	})
	find(t, events, 1, larder.EventRefused, func(e *larder.Event) bool {
		return e.User == "alice" && e.Path == "/shared/missing.txt" && e.Status == int(course.StatusBadRequest) && strings.Contains(e.Reason, "does not exist")
	})
	find(t, events, 1, larder.EventRefused, func(e *larder.Event) bool {
		return e.Status == int(course.StatusMalformed) && strings.Contains(e.Reason, "malformed")
	})
	find(t, events, 1, larder.EventRefused, func(e *larder.Event) bool {
		return e.Reason == "connection limit reached" && e.Remote != ""
	})
	find(t, events, 1, larder.EventAccount, func(e *larder.Event) bool {
		return e.User == "carol" && e.Reason == "disabled by an administrator" && strings.Contains(e.Server, "/admin")
	})
	find(t, events, 1, larder.EventAccount, func(e *larder.Event) bool {
		return e.User == "alice" && strings.HasPrefix(e.Reason, "rehashed: ") && strings.Contains(e.Reason, "m=128")
	})
	find(t, events, 3, larder.EventConnClose, func(e *larder.Event) bool { return e.Reason == "closed without a request" })
	find(t, events, 2, larder.EventServerStop, func(e *larder.Event) bool { return e.Reason == "shutdown" })
	find(t, events, 2, larder.EventServerStart, func(e *larder.Event) bool { return strings.Contains(e.Reason, "registration open") })
}

// waitUntil polls cond for up to ten seconds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited ten seconds for: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestAuditSinkDown: with the sink down the whole time, every request
// succeeds; once it is back, every event arrives, each once.
func TestAuditSinkDown(t *testing.T) {
	for _, sc := range auditSinks {
		t.Run(sc.name, func(t *testing.T) {
			dataDir := t.TempDir()
			sink := sc.setup(t, dataDir)
			if sink.down == nil {
				t.Skipf("the %s sink cannot be taken down apart from the server's accounts", sc.name)
			}
			l := startLarder(t, auditServer(sink, dataDir))
			l.put(t, "f.txt", []byte("some file"))
			sink.down(t)

			const users = 20
			var wg sync.WaitGroup
			for i := range users {
				wg.Go(func() {
					name := fmt.Sprintf("user%d", i)
					sig := larder.NewSignature(name, course.CourseSalt)
					wantExchange(t, l.addr(), name, sig, "", course.StatusOK)
					wantExchange(t, l.addr(), name, sig, "f.txt", course.StatusOK)
				})
			}
			wg.Wait()
			// Every event is durable in the spool, none delivered
			// (server.start may have been, before the sink went down).
			waitUntil(t, "every event durable", func() bool { return l.main.audit.log.Stats().Durable == 1+users*3 })
			waitUntil(t, "a failed delivery", func() bool { return !l.main.audit.log.Stats().SinkUp })
			if st := l.main.audit.log.Stats(); st.Delivered > 1 {
				t.Errorf("with the sink down, %d events were delivered", st.Delivered)
			}

			sink.up(t)
			// server.start, then per user: register; login, download.
			want := 1 + users*3
			events := waitForEvents(t, sink, want)
			if len(events) != want {
				t.Fatalf("%d events arrived, want %d:\n%s", len(events), want, dumpEvents(events))
			}
			wantOnce(t, events)
			find(t, events, users, larder.EventDownload, func(e *larder.Event) bool { return e.Path == "/shared/f.txt" && e.Bytes == 9 })
			if st := l.main.audit.log.Stats(); !st.SinkUp || st.DeliveryFailures == 0 {
				t.Errorf("after the outage: sink up %v, %d failed deliveries", st.SinkUp, st.DeliveryFailures)
			}
			l.shutdown()
			// (JetStream's events reach PostgreSQL through the writer,
			// after shutdown.)
			if events := waitForEvents(t, sink, want+1); len(events) != want+1 {
				t.Errorf("after shutdown the sink holds %d events, want %d (with server.stop)", len(events), want+1)
			}
		})
	}
}

// TestAuditFullQueueCounted: with a queue of one event that drops what
// does not fit, requests still succeed, and every event is either in the
// sink or counted as not taken.
func TestAuditFullQueueCounted(t *testing.T) {
	dataDir := t.TempDir()
	sink := sqliteDBSink(t, dataDir)
	l := startLarder(t, auditServer(sink, dataDir), func(c *ServeConfig) {
		c.Audit.QueueSize = 1
		c.Audit.Full = "drop"
		c.Audit.Sync = "none"
	})
	l.put(t, "f.txt", []byte("some file"))
	sig := larder.NewSignature("pw", course.CourseSalt)
	wantStatus(t, "register", rawExchange(t, l.addr(), "alice", sig, ""), course.StatusOK)
	const gets = 200
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range gets / 8 {
				wantExchange(t, l.addr(), "alice", sig, "f.txt", course.StatusOK)
			}
		})
	}
	wg.Wait()
	waitUntil(t, "every connection closed", func() bool { return l.main.srv.Conns() == 0 })
	l.shutdown()
	st := l.main.audit.log.Stats()

	// server.start, the registration, each get's login and download, and
	// server.stop, which meets a full queue too if the last event is
	// still in it.
	recorded := uint64(1 + 1 + gets*2 + 1)
	if st.Taken+st.NotTaken.Full != recorded {
		t.Errorf("%d taken + %d not taken (queue full) = %d, want the %d recorded", st.Taken, st.NotTaken.Full, st.Taken+st.NotTaken.Full, recorded)
	}
	if st.NotTaken.Full == 0 {
		t.Errorf("a queue of one event took all %d events of 8 concurrent clients", recorded)
	}
	events := sink.events(t)
	wantOnce(t, events)
	if uint64(len(events)) != st.Taken {
		t.Errorf("the sink holds %d events, want the %d taken", len(events), st.Taken)
	}
}

// tryExchange is rawExchange for goroutines other than the test's: it
// returns the reply's status, or an error, instead of failing the test.
func tryExchange(addr, user string, sig larder.Signature, body string) (course.Status, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := (&course.Request{Username: user, Signature: sig, Body: []byte(body)}).WriteTo(c); err != nil {
		return 0, err
	}
	br := course.NewBlockReader(c)
	h, _, err := br.ReadBlock()
	if err != nil {
		return 0, err
	}
	for {
		if _, _, err := br.ReadBlock(); err == io.EOF {
			return h.Status, nil
		} else if err != nil {
			return 0, err
		}
	}
}

// wantExchange runs tryExchange and reports, without stopping the test, a
// reply other than want.
func wantExchange(t *testing.T, addr, user string, sig larder.Signature, body string, want course.Status) {
	if got, err := tryExchange(addr, user, sig, body); err != nil || got != want {
		t.Errorf("%s %q: got status %v, error %v; want %v", user, body, got, err, want)
	}
}

// TestAuditSurvivesSIGKILL kills a loaded server with SIGKILL, tears the
// tail of its last spool segment as a crash mid-write would, and starts a
// server again on the same data folder: every registration that was
// answered (register events are recorded synchronously, so each was
// fsync'd before its answer) arrives in the sink, every event once, and
// the torn tail is cut.
func TestAuditSurvivesSIGKILL(t *testing.T) {
	for _, sc := range auditSinks {
		t.Run(sc.name, func(t *testing.T) {
			if sc.name == "jsonl" {
				t.Skip("JSON lines are delivered at least once: a crash may repeat a batch, for the shipper to dedupe by id (docs/OPERATIONS.md)")
			}
			dataDir := t.TempDir()
			sink := sc.setup(t, dataDir)
			args := []string{"--data", dataDir, "--audit-sink", sink.spec, "--audit-retry-max", "200ms"}
			p := startProcess(t, args...)
			p.put(t, "f.txt", []byte("some file"))

			var (
				mu    sync.Mutex
				acked []string
				stop  = make(chan struct{})
				wg    sync.WaitGroup
			)
			for w := range 8 {
				wg.Go(func() {
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						name := fmt.Sprintf("w%d-%d", w, i)
						sig := larder.NewSignature(name, course.CourseSalt)
						if s, err := tryExchange(p.addr, name, sig, ""); err != nil || s != course.StatusOK {
							continue // the server is gone, or going
						}
						mu.Lock()
						acked = append(acked, name)
						mu.Unlock()
						tryExchange(p.addr, name, sig, "f.txt")
					}
				})
			}
			time.Sleep(time.Second)
			must(t, p.cmd.Process.Kill())
			<-p.exited
			close(stop)
			wg.Wait()
			if len(acked) == 0 {
				t.Fatal("no registration was answered before the kill")
			}
			tearLastSegment(t, dataDir)

			p2 := startProcess(t, args...)
			defer func() {
				if t.Failed() {
					t.Logf("the killed server's log:\n%s\nthe restarted server's log:\n%s", p.stderr, p2.stderr)
				}
			}()
			events := waitForAll(t, sink, acked)
			wantOnce(t, events)
			waitUntil(t, "the torn tail cut", func() bool { return strings.Contains(p2.stderr.String(), "cut the torn tail") })
			t.Logf("%d registrations answered before the kill; %d events in the sink", len(acked), len(events))
		})
	}
}

// tearLastSegment appends half a record to the newest segment of the one
// writer folder in dataDir/audit: what a crash in the middle of a write
// leaves.
func tearLastSegment(t *testing.T, dataDir string) {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dataDir, "audit", "*", "*.seg"))
	must(t, err)
	if len(segs) == 0 {
		t.Fatal("the killed server left no spool segment")
	}
	slices.Sort(segs) // one folder: the newest segment sorts last
	f, err := os.OpenFile(segs[len(segs)-1], os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	defer f.Close()
	// A record header announcing 200 bytes, its checksum, and 7 of them.
	_, err = f.Write([]byte{200, 0, 0, 0, 1, 2, 3, 4, 'p', 'a', 'r', 't', 'i', 'a', 'l'})
	must(t, err)
}

// waitForAll polls the sink until it holds a granted register event for
// every name, and returns what it holds.
func waitForAll(t *testing.T, sink *sinkUnderTest, names []string) []larder.Event {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		events := sink.events(t)
		registered := map[string]bool{}
		for _, ev := range events {
			if ev.Kind == larder.EventRegister && ev.Status == int(course.StatusOK) {
				registered[ev.User] = true
			}
		}
		var missing []string
		for _, n := range names {
			if !registered[n] {
				missing = append(missing, n)
			}
		}
		if len(missing) == 0 {
			return events
		}
		if time.Now().After(deadline) {
			t.Errorf("%d of %d answered registrations never arrived in the sink, such as %v; its events of them:", len(missing), len(names), missing[:min(5, len(missing))])
			for _, ev := range events {
				if slices.Contains(missing, ev.User) {
					t.Logf("  %+v", ev)
				}
			}
			return events
		}
		time.Sleep(100 * time.Millisecond)
	}
}
