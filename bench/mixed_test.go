//go:build linux

package main

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMixedRatios(t *testing.T) {
	at := func(p99 time.Duration) mixedSample {
		var s mixedSample
		s.small.lat.p99 = p99
		return s
	}
	results := [][]mixedSample{
		stateAlone: {at(2), at(4), at(5)},
		stateMixed: {at(3), at(4)}, // the last round was cut short
	}
	got := mixedRatios(results, func(s mixedSample) time.Duration { return s.small.lat.p99 })
	if want := []float64{1.5, 1}; !slices.Equal(got, want) {
		t.Errorf("mixedRatios = %v, want %v (round i against round i, complete rounds only)", got, want)
	}
}

func TestMixedConfigRefused(t *testing.T) {
	for _, c := range []*mixedConfig{
		{clients: 16, large: 2, size: 1024, largeSize: 1024, duration: time.Second, rounds: 1},
		{clients: 16, large: 0, size: 1024, largeSize: 1 << 20, duration: time.Second, rounds: 1},
		{clients: 0, large: 2, size: 1024, largeSize: 1 << 20, duration: time.Second, rounds: 1},
		{clients: 16, large: 2, size: 1024, largeSize: 1 << 20, duration: 0, rounds: 1},
		{clients: 16, large: 2, size: 1024, largeSize: 1 << 20, duration: time.Second, rounds: 1, procs: -1},
	} {
		// A refused configuration returns before it uses the Env.
		if _, err := c.run(nil); err == nil {
			t.Errorf("%+v: got no error", *c)
		}
	}
}

func TestMixedCommandLine(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), &stdout, &stderr, []string{"mixed", "-h"}); code != 0 {
		t.Fatalf("bench mixed -h: exit code %d, want 0; stderr:\n%s", code, stderr.String())
	}
	for _, flag := range []string{"-clients", "-large", "-large-size", "-duration", "-rounds", "-client-procs"} {
		if !strings.Contains(stderr.String(), flag+" ") {
			t.Errorf("bench mixed -h does not list %s:\n%s", flag, stderr.String())
		}
	}
	cfg := newMixedConfig()
	cfg.quick()
	got := commandLine("mixed", commonOptions{}, cfg)
	for _, want := range []string{"--rounds 2", "--duration 3s", "--large-size 67108864", "--clients 16", "--large 2", "--client-procs 0"} {
		if !strings.Contains(got, want) {
			t.Errorf("quick command line %q lacks %q", got, want)
		}
	}
}

// TestMixedRun runs the scenario for real, briefly: it builds larder,
// serves an 8 MiB file to one large client beside two small ones, and
// checks the table.
func TestMixedRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs larder")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, progress bytes.Buffer
	env, err := newEnv(ctx, &out, &progress, commonOptions{serverLogLevel: "warn"})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	env.scenario = "mixed"
	cfg := &mixedConfig{clients: 2, large: 1, size: 1024, largeSize: 8 << 20, duration: time.Second, rounds: 1, timeout: 10 * time.Second}
	res, err := cfg.run(env)
	if err != nil {
		t.Fatalf("run: %v; progress:\n%s", err, progress.String())
	}
	// The figures first, as measured; then the table that presents them.
	samples := res.(*mixedResults).samples
	if len(samples) != len(mixedStates) {
		t.Fatalf("samples of %d states, want %d", len(samples), len(mixedStates))
	}
	for state, rounds := range samples {
		if len(rounds) != 1 {
			t.Fatalf("%s: %d rounds, want 1", mixedStates[state], len(rounds))
		}
		if s := rounds[0]; s.small.ok == 0 || s.small.failed != 0 {
			t.Errorf("%s: %d small requests answered, %d failed; want some and none", mixedStates[state], s.small.ok, s.small.failed)
		}
	}
	if l := samples[stateMixed][0].large; l.whole == 0 || l.failed != 0 || l.bytes <= 0 {
		t.Errorf("large transfers beside the small load: %d whole, %d failed, %d bytes; want some whole, none failed", l.whole, l.failed, l.bytes)
	}
	tables := res.tables()
	if len(tables) != 1 {
		t.Fatalf("got %d tables, want 1", len(tables))
	}
	tbl := tables[0]
	if len(tbl.Rows) != 2 || tbl.Rows[0][0] != "small alone" || tbl.Rows[1][0] != "small + large" {
		t.Fatalf("rows %q, want \"small alone\" then \"small + large\"", tbl.Rows)
	}
	figure := func(row int, col string) float64 {
		t.Helper()
		i := slices.Index(tbl.Header, col)
		if i < 0 {
			t.Fatalf("no column %q in %q", col, tbl.Header)
		}
		v, err := strconv.ParseFloat(strings.TrimSuffix(tbl.Rows[row][i], "×"), 64)
		if err != nil {
			t.Fatalf("%s, %s: %v", tbl.Rows[row][0], col, err)
		}
		return v
	}
	for row := range tbl.Rows {
		name := tbl.Rows[row][0]
		if got := figure(row, "small req/s"); got <= 0 {
			t.Errorf("%s: small req/s = %v, want > 0", name, got)
		}
		p50, p99, p999 := figure(row, "p50 ms"), figure(row, "p99 ms"), figure(row, "p99.9 ms")
		if !(0 < p50 && p50 <= p99 && p99 <= p999) {
			t.Errorf("%s: p50 %v, p99 %v, p99.9 %v ms; want 0 < p50 ≤ p99 ≤ p99.9", name, p50, p99, p999)
		}
		if got := figure(row, "failed"); got != 0 {
			t.Errorf("%s: %v small requests failed, want none; notes: %q", name, got, tbl.Notes)
		}
	}
	if got := figure(1, "large MB/s"); got <= 0 {
		t.Errorf("large MB/s = %v, want > 0", got)
	}
	if got := figure(1, "p99 ÷ alone"); got <= 0 {
		t.Errorf("p99 ÷ alone = %v, want > 0", got)
	}
	if xfers := tbl.Rows[1][slices.Index(tbl.Header, "large transfers")]; !strings.HasSuffix(xfers, " 0 failed") || strings.HasPrefix(xfers, "0 whole") {
		t.Errorf("large transfers %q, want some whole and none failed", xfers)
	}
	if !slices.ContainsFunc(tbl.Notes, func(n string) bool {
		return strings.HasPrefix(n, "Aim: small requests' p99 under the mixed load ≤ 2× alone: ")
	}) {
		t.Errorf("no aim line in the notes: %q", tbl.Notes)
	}
}
