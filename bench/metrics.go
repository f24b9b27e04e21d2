//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// auditCounters is what larder's /metrics says of its audit pipeline and
// its connections at one moment. Counters run from the server's start.
type auditCounters struct {
	exported   bool    // the server exports larder_audit_* (not with --audit-sink off)
	taken      float64 // larder_audit_events_taken_total
	notTaken   float64 // larder_audit_events_not_taken_total, every reason
	durable    float64 // larder_audit_events_durable_total
	delivered  float64 // larder_audit_events_delivered_total
	failures   float64 // larder_audit_delivery_failures_total
	lost       float64 // larder_audit_events_lost_total
	spoolBytes float64 // larder_audit_spool_bytes
	connsOpen  float64 // larder_connections_open
}

// scrapeAudit reads http://addr/metrics.
func scrapeAudit(ctx context.Context, addr string) (auditCounters, error) {
	sums, err := scrapeMetrics(ctx, addr)
	if err != nil {
		return auditCounters{}, err
	}
	return auditCountersOf(sums), nil
}

// scrapeMetrics reads http://addr/metrics into parsePromText's sums.
func scrapeMetrics(ctx context.Context, addr string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reading metrics: %s", resp.Status)
	}
	sums, err := parsePromText(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading metrics: %w", err)
	}
	return sums, nil
}

// auditCountersOf picks the figures the audit scenario needs from the sums
// that parsePromText returns.
func auditCountersOf(sums map[string]float64) auditCounters {
	_, exported := sums["larder_audit_events_taken_total"]
	return auditCounters{
		exported:   exported,
		taken:      sums["larder_audit_events_taken_total"],
		notTaken:   sums["larder_audit_events_not_taken_total"],
		durable:    sums["larder_audit_events_durable_total"],
		delivered:  sums["larder_audit_events_delivered_total"],
		failures:   sums["larder_audit_delivery_failures_total"],
		lost:       sums["larder_audit_events_lost_total"],
		spoolBytes: sums["larder_audit_spool_bytes"],
		connsOpen:  sums["larder_connections_open"],
	}
}

// parsePromText reads a Prometheus text exposition and returns, for each
// metric name, the sum of its samples over all label values: the total of
// larder_audit_events_not_taken_total over its reasons, for instance.
// Comments and blank lines are skipped; a timestamp after the value is
// ignored.
func parsePromText(r io.Reader) (map[string]float64, error) {
	sums := make(map[string]float64)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ \t"); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if strings.HasPrefix(rest, "{") {
			// A label value may hold spaces but not a "}" after
			// which a value follows: cut at the last brace.
			j := strings.LastIndexByte(rest, '}')
			if j < 0 {
				return nil, fmt.Errorf("line %d: unclosed labels: %q", n, line)
			}
			rest = rest[j+1:]
		}
		f := strings.Fields(rest)
		if name == "" || len(f) == 0 {
			return nil, fmt.Errorf("line %d: no value: %q", n, line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		sums[name] += v
	}
	return sums, sc.Err()
}
