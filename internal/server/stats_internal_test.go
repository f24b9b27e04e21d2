package server

import (
	"testing"
	"time"

	"github.com/larderfs/larder/course"
)

// TestCountAllocatesNothing: counting an exchange on the request path is a
// few atomic adds, with no allocation.
func TestCountAllocatesNothing(t *testing.T) {
	var c courseCounters
	ex := exchange{op: OpRetrieve, status: course.StatusOK, bytes: 1234}
	if n := testing.AllocsPerRun(1000, func() { c.count(&ex, 3*time.Millisecond) }); n != 0 {
		t.Errorf("count allocates %v times per exchange, want 0", n)
	}
}

func TestHistogramBuckets(t *testing.T) {
	last := len(durationBounds)
	tests := []struct {
		d      time.Duration
		bucket int
	}{
		{0, 0},
		{durationBounds[0], 0}, // a bound belongs to its bucket (Prometheus's le)
		{durationBounds[0] + 1, 1},
		{time.Second, 10},
		{durationBounds[last-1], last - 1},
		{durationBounds[last-1] + 1, last},
		{time.Hour, last},
	}
	var c courseCounters
	for _, tt := range tests {
		c.count(&exchange{op: OpRegister, status: course.StatusOK}, tt.d)
	}
	var want [len(durationBounds) + 1]uint64
	var sum time.Duration
	for _, tt := range tests {
		want[tt.bucket]++
		sum += tt.d
	}
	h := &c.durations[OpRegister]
	for i := range want {
		if got := h.counts[i].Load(); got != want[i] {
			t.Errorf("bucket %d (≤ %v): %d, want %d", i, DurationBuckets()[min(i, last-1)], got, want[i])
		}
	}
	if got := time.Duration(h.sum.Load()); got != sum {
		t.Errorf("sum = %v, want %v", got, sum)
	}
	if durationBounds[10] != time.Second {
		t.Fatalf("the test's bucket of 1s is out of date")
	}
}

// TestOpLogName: the log names an exchange's op as it always has, with ""
// for one whose request was never read whole.
func TestOpLogName(t *testing.T) {
	for op, want := range map[Op]string{OpNone: "", OpRegister: "register", OpRetrieve: "retrieve"} {
		if got := op.logName(); got != want {
			t.Errorf("%v.logName() = %q, want %q", op, got, want)
		}
	}
}

// BenchmarkCount is the cost that counting adds to every request: alone,
// and with every core counting into the same counters at once, the worst
// case of contention.
func BenchmarkCount(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		var c courseCounters
		ex := exchange{op: OpRetrieve, status: course.StatusOK, bytes: 944}
		b.ReportAllocs()
		for b.Loop() {
			c.count(&ex, 2*time.Millisecond)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		var c courseCounters
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ex := exchange{op: OpRetrieve, status: course.StatusOK, bytes: 944}
			for pb.Next() {
				c.count(&ex, 2*time.Millisecond)
			}
		})
	})
}
