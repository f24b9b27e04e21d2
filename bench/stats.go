//go:build linux

package main

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/larderfs/larder/bench/report"
)

// percentile returns the p-th percentile of a sorted sample by the
// nearest-rank method: the smallest value such that at least p percent of
// the sample is less than or equal to it. p ≤ 0 gives the minimum; an
// empty sample gives the zero value.
func percentile[T cmp.Ordered](sorted []T, p float64) T {
	var zero T
	if len(sorted) == 0 {
		return zero
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// median returns the median of xs, the mean of the middle two for an even
// count, and NaN for none. xs is not modified.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// latencySummary is a latency sample, reduced.
type latencySummary struct {
	n                   int
	p50, p99, p999, max time.Duration
	mean                time.Duration
}

// summarize sorts the sample in place and reduces it.
func summarize(lat []time.Duration) latencySummary {
	slices.Sort(lat)
	s := latencySummary{n: len(lat)}
	if len(lat) == 0 {
		return s
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	s.p50 = percentile(lat, 50)
	s.p99 = percentile(lat, 99)
	s.p999 = percentile(lat, 99.9)
	s.max = lat[len(lat)-1]
	s.mean = sum / time.Duration(len(lat))
	return s
}

// ms formats a duration in milliseconds with three significant digits
// or more.
func ms(d time.Duration) string { return report.Num(float64(d) / float64(time.Millisecond)) }

// msf formats a float number of milliseconds.
func msf(v float64) string { return report.Num(v) }

// ratio formats a/b as a factor, "1.23×".
func ratio(a, b float64) string {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "–"
	}
	return strconv.FormatFloat(a/b, 'f', 2, 64) + "×"
}

// pct formats a CPU share in percent of one core.
func pct(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return strconv.FormatFloat(v, 'f', 0, 64) + "%"
}

// list formats the per-round values of a figure, "5123 / 5012 / 4980".
func list(xs []float64, format func(float64) string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = format(x)
	}
	return strings.Join(parts, " / ")
}

// intList is a flag holding comma-separated positive integers.
type intList []int

func (l *intList) String() string {
	parts := make([]string, len(*l))
	for i, v := range *l {
		parts[i] = strconv.Itoa(v)
	}
	return strings.Join(parts, ",")
}

func (l *intList) Set(s string) error {
	var out intList
	for f := range strings.SplitSeq(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v <= 0 {
			return fmt.Errorf("want comma-separated positive integers, got %q", f)
		}
		out = append(out, v)
	}
	*l = out
	return nil
}

// perRound returns fig of each round's result.
func perRound[R any](rounds []R, fig func(R) float64) []float64 {
	xs := make([]float64, len(rounds))
	for i, r := range rounds {
		xs[i] = fig(r)
	}
	return xs
}

// medianDur returns the median of a sample of durations, which it sorts.
func medianDur(ds []time.Duration) time.Duration {
	return summarize(ds).p50
}

// fmtCount formats a count, or a median of counts.
func fmtCount(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// durStr formats a duration with three significant digits in ns, µs or ms.
func durStr(d time.Duration) string {
	switch {
	case d >= time.Millisecond:
		return report.Num(float64(d)/float64(time.Millisecond)) + " ms"
	case d >= time.Microsecond:
		return report.Num(float64(d)/float64(time.Microsecond)) + " µs"
	}
	return report.Num(float64(d)) + " ns"
}

// bytesStr formats a byte count in MB (10^6) from 1 MB up, else in bytes.
func bytesStr(b float64) string {
	if b >= 1e6 {
		return report.Num(b/1e6) + " MB"
	}
	return report.Num(b) + " B"
}

// plural returns "1 file" or "10000 files".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
