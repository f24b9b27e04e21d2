//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/larderfs/larder/course"
)

// target is a system under test as the clients see it.
type target struct {
	name string
	proc *Process
	cl   *client
}

// loadResult is one measurement of one system.
type loadResult struct {
	ok, failed int
	firstErr   error
	elapsed    time.Duration
	lat        latencySummary
	cpu        cpuUse
}

func (r loadResult) rate() float64 { return float64(r.ok) / r.elapsed.Seconds() }

// perRequest converts a CPU share over the measurement into microseconds
// of CPU per completed request: unlike a rate, it hardly moves when other
// processes take the machine's cores.
func (r loadResult) perRequest(share float64) float64 {
	return share / 100 * r.elapsed.Seconds() / float64(r.ok) * 1e6
}

// runLoad runs closed-loop clients against t for d: each loops dial, send,
// read to EOF, close, and counts only complete replies that carry f
// exactly (status, length, every block hash, the total hash, the content's
// SHA-256). Client w sends reqs[w%len(reqs)]. Latency runs from the dial
// to the end of the reply.
func runLoad(ctx context.Context, t target, reqs [][]byte, f fileSpec, workers int, d time.Duration) loadResult {
	jobs := make([]loadJob, len(reqs))
	for i, req := range reqs {
		jobs[i] = loadJob{req: req, f: f}
	}
	return runJobs(ctx, t, jobs, workers, d)
}

// loadJob is one request of a load and the file its reply must carry.
type loadJob struct {
	req []byte
	f   fileSpec
}

// runJobs is runLoad over requests for several files: client w sends
// jobs[w], then jobs[w+workers], jobs[w+2*workers] and so on, around.
func runJobs(ctx context.Context, t target, jobs []loadJob, workers int, d time.Duration) loadResult {
	meter := startCPU(t.proc)
	start := time.Now()
	end := start.Add(d)
	lats := make([][]time.Duration, workers)
	fails := make([]int, workers)
	errs := make([]error, workers)
	var reply, blocks int
	for _, j := range jobs {
		count, _ := course.BlockCount(int64(j.f.Size))
		reply, blocks = max(reply, j.f.replySize()), max(blocks, int(count))
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			buf := make([]byte, reply+1)
			scratch := make([]byte, blocks*course.MaxBlockPayload)
			lat := make([]time.Duration, 0, 1024)
			for k := w % len(jobs); time.Now().Before(end) && ctx.Err() == nil; k = (k + workers) % len(jobs) {
				j := &jobs[k]
				t0 := time.Now()
				b, err := t.cl.roundTrip(ctx, j.req, buf)
				if err == nil {
					err = checkFileReply(b, j.f, scratch)
				}
				if err != nil {
					fails[w]++
					if errs[w] == nil {
						errs[w] = err
					}
					time.Sleep(time.Millisecond) // no spinning on a dead server
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			lats[w] = lat
		})
	}
	wg.Wait()
	r := loadResult{elapsed: time.Since(start), cpu: meter.stop()}
	all := slices.Concat(lats...)
	r.ok = len(all)
	r.lat = summarize(all)
	for w := range workers {
		r.failed += fails[w]
		if r.firstErr == nil {
			r.firstErr = errs[w]
		}
	}
	return r
}

// sequential sends n requests one after another and returns their
// latencies, failing on the first bad reply.
func sequential(ctx context.Context, t target, req []byte, f fileSpec, n int) (loadResult, error) {
	meter := startCPU(t.proc)
	start := time.Now()
	buf := make([]byte, f.replySize()+1)
	lat := make([]time.Duration, 0, n)
	for i := range n {
		if err := ctx.Err(); err != nil {
			return loadResult{}, err
		}
		t0 := time.Now()
		b, err := t.cl.roundTrip(ctx, req, buf)
		if err == nil {
			err = checkFileReply(b, f, nil)
		}
		if err != nil {
			return loadResult{}, fmt.Errorf("%s: request %d of %d: %w", t.name, i+1, n, err)
		}
		lat = append(lat, time.Since(t0))
	}
	r := loadResult{ok: n, elapsed: time.Since(start), cpu: meter.stop()}
	r.lat = summarize(lat)
	return r, nil
}

// sameReply checks that both targets send the same bytes for req: the
// baseline must put on the wire exactly what larder does, or the
// comparison is off.
func sameReply(ctx context.Context, a, b target, req []byte, f fileSpec) error {
	ra, err1 := a.cl.roundTrip(ctx, req, make([]byte, f.replySize()+1))
	rb, err2 := b.cl.roundTrip(ctx, req, make([]byte, f.replySize()+1))
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if !slices.Equal(ra, rb) {
		return fmt.Errorf("%s sends %d bytes and %s %d, not the same", a.name, len(ra), b.name, len(rb))
	}
	return nil
}

// serverLogNote summarizes what a server wrote to its log at the level the
// bench runs it with: with --log-level warn, nothing is the healthy case.
func serverLogNote(p *Process) string {
	n := p.logRecords()
	if n <= 0 {
		return fmt.Sprintf("%s (pid %d) logged nothing at the chosen level", p.Name, p.PID)
	}
	return fmt.Sprintf("%s (pid %d) logged %d lines; the last: `%s`", p.Name, p.PID, n, p.LogTail(1))
}

// cpuHeader heads the columns that cpuCells fills.
var cpuHeader = []string{"server CPU", "client CPU", "other CPU", "idle CPU"}

// cpuCells returns the medians across rounds of the CPU shares.
func cpuCells(us []cpuUse) []string {
	var s, c, o, i []float64
	for _, u := range us {
		s, c, o, i = append(s, u.server), append(c, u.client), append(o, u.other), append(i, u.idle)
	}
	return []string{pct(median(s)), pct(median(c)), pct(median(o)), pct(median(i))}
}

// cpuNote explains the CPU columns.
const cpuNote = "CPU, in percent of one core: the server's user+system time (/proc/PID/stat), the bench's, that is all the clients (getrusage), the rest of the machine's busy time (/proc/stat: other processes on this shared machine, the system not being measured, interrupts), and the time no one used; medians across rounds."

func (u cpuUse) String() string {
	s := fmt.Sprintf("cpu server %s client %s other %s idle %s", pct(u.server), pct(u.client), pct(u.other), pct(u.idle))
	if u.steal >= 1 {
		s += " steal " + pct(u.steal)
	}
	return s
}

// logRecords returns how many lines p has logged, less larder's start-up
// notices ("larder: serving ...", "larder: native protocol ...", "larder:
// metrics at ..."), which are not log records.
func (p *Process) logRecords() int {
	n := p.LogLines()
	if p.Name == "larder" {
		b, _ := os.ReadFile(p.logPath)
		for line := range bytes.Lines(b) {
			if bytes.HasPrefix(line, []byte("larder: ")) {
				n--
			}
		}
	}
	return n
}
