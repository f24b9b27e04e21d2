package audit

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/larderfs/larder"
)

// The SIGKILL test runs this test binary again as a child that records
// events under load until it is killed.
const (
	crashChildEnv = "LARDER_AUDIT_CRASH_CHILD" // the spool folder
	crashNonceEnv = "LARDER_AUDIT_CRASH_NONCE" // makes the round's ids its own
	crashWorkers  = 8
)

// crashEvent is event i of worker g: its ID follows from nonce, g and i,
// so that the parent can tell a recorded event from anything else. Odd
// events are of a sync kind.
func crashEvent(nonce uint64, g, i int) larder.Event {
	var id larder.EventID
	binary.BigEndian.PutUint64(id[:8], nonce)
	binary.BigEndian.PutUint16(id[8:], uint16(g))
	binary.BigEndian.PutUint32(id[10:], uint32(i))
	kind := larder.EventList
	if i%2 == 1 {
		kind = larder.EventAccount
	}
	return larder.Event{ID: id, Kind: kind, User: "g" + strconv.Itoa(g), Bytes: int64(i),
		Path: "a/path/to/some/file.txt", Reason: "under load", Remote: "127.0.0.1:4000"}
}

// crashChild records from crashWorkers goroutines, printing "S g i" once
// the sync event i of worker g is durable, until it is killed.
func crashChild() {
	nonce, _ := strconv.ParseUint(os.Getenv(crashNonceEnv), 10, 64)
	l, err := Open(Config{Dir: os.Getenv(crashChildEnv), Full: Block,
		SyncKinds: []larder.EventKind{larder.EventAccount}, SegmentSize: 256 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	for g := range crashWorkers {
		go func() {
			for i := 0; ; i++ {
				e := crashEvent(nonce, g, i)
				if err := l.Record(context.Background(), e); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				if e.Kind == larder.EventAccount {
					mu.Lock()
					fmt.Fprintf(os.Stdout, "S %d %d\n", g, i)
					mu.Unlock()
				}
			}
		}()
	}
	select {}
}

// TestCrash kills a process recording under load with SIGKILL, at several
// moments, and checks that the next Log delivers every event whose sync
// Record had returned, exactly once, with nothing that was never recorded,
// and for each worker a gapless prefix of what it recorded, in order.
func TestCrash(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" || runtime.GOOS == "js" {
		t.Skip("needs SIGKILL")
	}
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	for round := range 6 {
		t.Run(fmt.Sprint("round", round), func(t *testing.T) {
			crashRound(t, uint64(time.Now().UnixNano()), 30*time.Millisecond+time.Duration(round)*40*time.Millisecond)
		})
	}
}

func crashRound(t *testing.T, nonce uint64, after time.Duration) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, crashNonceEnv+"="+strconv.FormatUint(nonce, 10))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := make([]int, crashWorkers) // per worker, 1 + the last sync event acknowledged
	var lines int
	var mu sync.Mutex
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		r := bufio.NewReader(out)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return // a last line cut by the kill is not an acknowledgement
			}
			var g, i int
			if _, err := fmt.Sscanf(line, "S %d %d\n", &g, &i); err != nil || g < 0 || g >= crashWorkers {
				t.Errorf("child printed %q", line)
				continue
			}
			mu.Lock()
			acked[g] = max(acked[g], i+1)
			lines++
			mu.Unlock()
		}
	}()
	waitFor(t, "the child to record", func() bool { mu.Lock(); defer mu.Unlock(); return lines > 100 })
	time.Sleep(after)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-readDone
	io.Copy(io.Discard, out)
	cmd.Wait()

	sink := newMemSink()
	l := openTest(t, Config{Dir: dir, Sink: sink}, hooks{})
	waitFor(t, "the crashed folder to be delivered", func() bool {
		entries, _ := os.ReadDir(dir)
		return len(entries) == 1
	})
	closeLog(t, l)
	st := l.Stats()

	got := make([]int, crashWorkers) // per worker, how many delivered
	for _, e := range sink.events() {
		g, err := strconv.Atoi(strings.TrimPrefix(e.User, "g"))
		if err != nil || g < 0 || g >= crashWorkers {
			t.Fatalf("delivered an event never recorded: %+v", e)
		}
		want := crashEvent(nonce, g, int(e.Bytes))
		want.Time = e.Time // Record's
		if !sameEvent(e, want) {
			t.Fatalf("delivered an event never recorded:\n got %+v\nwant %+v", e, want)
		}
		if e.Bytes != int64(got[g]) {
			t.Fatalf("worker %d: got its event %d, want %d (a gap, or out of order)", g, e.Bytes, got[g])
		}
		got[g]++
	}
	total := 0
	for g := range crashWorkers {
		if got[g] < acked[g] {
			t.Errorf("worker %d: %d events delivered, but its sync event %d was acknowledged", g, got[g], acked[g]-1)
		}
		total += got[g]
	}
	for id, n := range sink.offered {
		if n != 1 {
			t.Errorf("event %v offered %d times, want once", id, n)
		}
	}
	t.Logf("killed after %v: %d events delivered, %d sync acknowledged, %d bytes cut from torn tails",
		after, total, lines, st.TornBytes)
}
