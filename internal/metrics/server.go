package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/internal/server"
	"github.com/larderfs/larder/lnp"
)

// serverCollector exports server.Stats: the connections of both
// protocols, then each protocol's requests under its own prefix,
// larder_course_ and larder_lnp_:
//
//	larder_connections_total                        counter
//	larder_connections_open                         gauge
//	larder_connections_max                          gauge
//	larder_connections_rejected_total               counter
//	larder_limit_refusals_total{limit}              counter
//	larder_audit_events_suppressed_total            counter
//	larder_course_requests_total{op,status}         counter
//	larder_course_request_duration_seconds{op}      histogram
//	larder_course_payload_bytes_sent_total          counter
//	larder_lnp_requests_total{op,status}            counter
//	larder_lnp_request_duration_seconds{op}         histogram
//	larder_lnp_bytes_total{direction}               counter
//
// For the course protocol, op is none, register or retrieve; status is the
// reply's status as the protocol names it (OK, USER_EXISTS, USER_MISSING,
// INVALID_LOGIN, BAD_REQUEST, OTHER, MALFORMED), or none for an exchange
// that sent no reply. Every (op, status) pair is exported, zero or not, so
// that rates over them need no special case for a series that appears
// late.
//
// For LNP/1, op is the request (whoami, stat, list, mkdir, delete, rename,
// passwd, sums, get, put, parts, cancel), status one LNP/1 defines;
// direction is sent (downloads) or received (uploads).
//
// docs/OPERATIONS.md lists every metric in a table that a test keeps in
// step with the collectors.
type serverCollector struct {
	stats func() server.Stats

	accepted, open, max, rejected *prometheus.Desc
	limitRefusals, suppressed     *prometheus.Desc
	requests, duration, payload   *prometheus.Desc

	lnpRequests, lnpDuration, lnpBytes *prometheus.Desc

	buckets []float64 // upper bounds of the duration histogram, in seconds
}

func newServerCollector(stats func() server.Stats) *serverCollector {
	c := &serverCollector{
		stats: stats,
		accepted: newDesc("larder_connections_total",
			"Connections of both protocols accepted and served; those turned away at the limit are counted in larder_connections_rejected_total."),
		open: newDesc("larder_connections_open",
			"Connections being served."),
		max: newDesc("larder_connections_max",
			"Limit of connections served at once (--max-conns)."),
		rejected: newDesc("larder_connections_rejected_total",
			"Connections turned away because larder_connections_max were being served."),
		limitRefusals: newDesc("larder_limit_refusals_total",
			"Clients turned away at a limit other than larder_connections_max, by limit: conns_per_address (--max-conns-per-address) or sessions_per_user (--max-sessions-per-user).",
			"limit"),
		suppressed: newDesc("larder_audit_events_suppressed_total",
			"Audit events of connections that never logged in (and refusals at a limit) held back beyond their address's allowance, and summed up in audit.suppressed events instead."),
		requests: newDesc("larder_course_requests_total",
			"Course-protocol requests answered, by op (register, retrieve, or none if the request could not be read) and by the status of the reply (none if no reply was sent).",
			"op", "status"),
		duration: newDesc("larder_course_request_duration_seconds",
			"Time from accepting a course-protocol connection to the last byte of its reply, by op.",
			"op"),
		payload: newDesc("larder_course_payload_bytes_sent_total",
			"File bytes sent in course-protocol replies, without block headers."),
		lnpRequests: newDesc("larder_lnp_requests_total",
			"LNP/1 requests answered, by op and by the status they ended with (a transfer cut off by the client counts as OTHER).",
			"op", "status"),
		lnpDuration: newDesc("larder_lnp_request_duration_seconds",
			"Time from reading an LNP/1 request to the end of its reply (for a transfer, its END), by op.",
			"op"),
		lnpBytes: newDesc("larder_lnp_bytes_total",
			"File bytes of LNP/1 transfers, without frame headers: sent in downloads, received in uploads.",
			"direction"),
	}
	for _, b := range server.DurationBuckets() {
		c.buckets = append(c.buckets, b.Seconds())
	}
	return c
}

func (c *serverCollector) Describe(ch chan<- *prometheus.Desc) {
	describe(ch, c.accepted, c.open, c.max, c.rejected, c.limitRefusals, c.suppressed, c.requests, c.duration, c.payload,
		c.lnpRequests, c.lnpDuration, c.lnpBytes)
}

func (c *serverCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	emit(ch, c.accepted, prometheus.CounterValue, float64(s.Accepted))
	emit(ch, c.open, prometheus.GaugeValue, float64(s.Open))
	emit(ch, c.max, prometheus.GaugeValue, float64(s.MaxConns))
	emit(ch, c.rejected, prometheus.CounterValue, float64(s.Rejected))
	emit(ch, c.limitRefusals, prometheus.CounterValue, float64(s.RejectedPerAddress), "conns_per_address")
	emit(ch, c.limitRefusals, prometheus.CounterValue, float64(s.SessionsRefused), "sessions_per_user")
	emit(ch, c.suppressed, prometheus.CounterValue, float64(s.AuditSuppressed))
	emit(ch, c.payload, prometheus.CounterValue, float64(s.PayloadBytes))
	for op := range server.Op(server.NumOps) {
		for status, n := range s.Requests[op] {
			emit(ch, c.requests, prometheus.CounterValue, float64(n), op.String(), statusLabel(course.Status(status)))
		}
		ch <- c.histogram(c.duration, &s.Durations[op], op.String())
	}
	for op := range server.LNPOp(server.NumLNPOps) {
		for status, n := range s.LNPRequests[op] {
			if st := lnp.Status(status); st.Known() {
				emit(ch, c.lnpRequests, prometheus.CounterValue, float64(n), op.String(), st.String())
			}
		}
		ch <- c.histogram(c.lnpDuration, &s.LNPDurations[op], op.String())
	}
	emit(ch, c.lnpBytes, prometheus.CounterValue, float64(s.LNPBytesSent), "sent")
	emit(ch, c.lnpBytes, prometheus.CounterValue, float64(s.LNPBytesReceived), "received")
}

// histogram converts h, whose buckets are c.buckets and +Inf, to a
// Prometheus histogram.
func (c *serverCollector) histogram(d *prometheus.Desc, h *server.Histogram, label string) prometheus.Metric {
	return constHistogram(d, c.buckets, h.Counts[:], h.Sum, label)
}

// constHistogram is the Prometheus histogram of counts, per bucket (not
// cumulative) of the upper bounds buckets and then +Inf, and of sum.
func constHistogram(d *prometheus.Desc, buckets []float64, counts []uint64, sum time.Duration, labels ...string) prometheus.Metric {
	cumulative := make(map[float64]uint64, len(buckets))
	var n uint64
	for i, le := range buckets {
		n += counts[i]
		cumulative[le] = n
	}
	n += counts[len(buckets)] // the +Inf bucket, which Prometheus adds itself
	return prometheus.MustNewConstHistogram(d, n, sum.Seconds(), cumulative, labels...)
}

// statusLabel returns the protocol's name of s, or "none" for no reply.
func statusLabel(s course.Status) string {
	if s == 0 {
		return "none"
	}
	return s.String()
}
