package metrics

import "github.com/prometheus/client_golang/prometheus"

// AuditStats is what a Handler exports of the audit pipeline: a copy of
// the audit log's own statistics, made by a small function in the program
// that wires the two together, so that neither package imports the other.
// Counters count from the start of the process.
type AuditStats struct {
	// QueueDepth is the number of events waiting in the in-memory queue,
	// and QueueCapacity its bound.
	QueueDepth, QueueCapacity int

	// Taken counts the events the queue accepted.
	Taken int64
	// Events the pipeline could not take, by reason: the queue was full
	// (after the configured wait), the spool was full, or the log was
	// closed.
	NotTakenQueueFull, NotTakenSpoolFull, NotTakenClosed int64

	// Durable counts the events written and fsync'd to the spool, and
	// Delivered those the sink confirmed.
	Durable, Delivered int64

	// DeliveryFailures counts the deliveries to the sink that failed, and
	// DeliveryRetries the deliveries sent again after a failure.
	DeliveryFailures, DeliveryRetries int64

	// SpoolBytes and SpoolSegments measure the spool on disk: events
	// durable but not yet delivered.
	SpoolBytes    int64
	SpoolSegments int

	// SpoolMax is the spool's bound (--audit-spool-max): while SpoolBytes
	// is at it, new events are refused, and /healthz says the server is
	// degraded. Zero means no bound is known.
	SpoolMax int64

	// SpoolFailing reports that the last write of the spool failed (a
	// full or failing disk): events wait in the queue, and once it is full
	// are refused. /healthz says the server is degraded meanwhile.
	SpoolFailing bool

	// SinkUp reports whether the last delivery to the sink succeeded (or
	// none has failed yet).
	SinkUp bool

	// SinkReopens counts the times a file sink (jsonl:) opened its file
	// anew: on SIGHUP, or because its path no longer named the file open
	// (moved or removed by log rotation). SinkUnwritten counts the events
	// of batches that did not reach the file (a failed write or sync, a
	// file that could not be opened, or one removed while written to);
	// each such batch was offered again. Zero for other sinks.
	SinkReopens, SinkUnwritten int64

	// Lost counts events taken but never made durable: the spool could
	// not be written before shutdown gave up. WriteErrors counts the
	// spool writes and syncs that failed (and were retried).
	Lost, WriteErrors int64

	// TornBytes counts the bytes cut from torn segment tails after a
	// crash, QuarantinedBytes those of damaged segments set aside.
	TornBytes, QuarantinedBytes int64

	// Pruned counts the events deleted from the sink past the retention.
	Pruned int64
}

// auditCollector exports AuditStats:
//
//	larder_audit_queue_depth                      gauge
//	larder_audit_queue_capacity                   gauge
//	larder_audit_events_taken_total               counter
//	larder_audit_events_not_taken_total{reason}   counter
//	larder_audit_events_durable_total             counter
//	larder_audit_events_delivered_total           counter
//	larder_audit_delivery_failures_total          counter
//	larder_audit_delivery_retries_total           counter
//	larder_audit_spool_bytes                      gauge
//	larder_audit_spool_segments                   gauge
//	larder_audit_sink_up                          gauge, 1 or 0
//	larder_audit_spool_max_bytes                  gauge
//	larder_audit_sink_reopens_total               counter
//	larder_audit_sink_events_unwritten_total      counter
//	larder_audit_events_lost_total                counter
//	larder_audit_spool_write_errors_total         counter
//	larder_audit_spool_torn_bytes_total           counter
//	larder_audit_spool_quarantined_bytes_total    counter
//	larder_audit_events_pruned_total              counter
//
// reason is queue_full, spool_full or closed. Taken, durable and delivered
// are stages that every event passes in turn, not outcomes that divide
// the events, so each is a metric of its own: a sum over them would mean
// nothing. Their differences do: taken - durable are in the queue or
// waiting for their fsync, durable - delivered in the spool.
type auditCollector struct {
	stats func() AuditStats

	queueDepth, queueCapacity                    *prometheus.Desc
	taken, notTaken, durable, delivered          *prometheus.Desc
	failures, retries, spoolBytes, spoolSegments *prometheus.Desc
	sinkUp, lost, writeErrors, torn, quarantined *prometheus.Desc
	spoolMax, reopens, unwritten                 *prometheus.Desc
	pruned                                       *prometheus.Desc
}

func newAuditCollector(stats func() AuditStats) *auditCollector {
	return &auditCollector{
		stats: stats,
		queueDepth: newDesc("larder_audit_queue_depth",
			"Audit events waiting in the in-memory queue."),
		queueCapacity: newDesc("larder_audit_queue_capacity",
			"Bound of the in-memory audit queue."),
		taken: newDesc("larder_audit_events_taken_total",
			"Audit events the queue accepted."),
		notTaken: newDesc("larder_audit_events_not_taken_total",
			"Audit events the pipeline could not take, by reason: queue_full, spool_full or closed.",
			"reason"),
		durable: newDesc("larder_audit_events_durable_total",
			"Audit events written and fsync'd to the spool."),
		delivered: newDesc("larder_audit_events_delivered_total",
			"Audit events the sink confirmed."),
		failures: newDesc("larder_audit_delivery_failures_total",
			"Deliveries of audit events to the sink that failed."),
		retries: newDesc("larder_audit_delivery_retries_total",
			"Deliveries of audit events sent again after a failure."),
		spoolBytes: newDesc("larder_audit_spool_bytes",
			"Bytes of audit events durable in the spool and not yet delivered."),
		spoolSegments: newDesc("larder_audit_spool_segments",
			"Segment files in the audit spool."),
		sinkUp: newDesc("larder_audit_sink_up",
			"1 if the last delivery to the audit sink succeeded, 0 if it failed."),
		lost: newDesc("larder_audit_events_lost_total",
			"Audit events taken but never made durable: the spool could not be written before shutdown gave up."),
		writeErrors: newDesc("larder_audit_spool_write_errors_total",
			"Writes and syncs of the audit spool that failed and were retried."),
		torn: newDesc("larder_audit_spool_torn_bytes_total",
			"Bytes cut from torn audit spool segment tails after a crash."),
		quarantined: newDesc("larder_audit_spool_quarantined_bytes_total",
			"Bytes of damaged audit spool segments set aside undelivered, in the spool's quarantine folder."),
		spoolMax: newDesc("larder_audit_spool_max_bytes",
			"Bound of the audit spool: at it, new events are refused."),
		reopens: newDesc("larder_audit_sink_reopens_total",
			"Times the jsonl audit sink opened its file anew (SIGHUP, or the file moved or removed)."),
		unwritten: newDesc("larder_audit_sink_events_unwritten_total",
			"Audit events of batches that did not reach the jsonl sink's file (each batch offered again)."),
		pruned: newDesc("larder_audit_events_pruned_total",
			"Audit events deleted from the sink because they were older than --audit-retention."),
	}
}

func (c *auditCollector) Describe(ch chan<- *prometheus.Desc) {
	describe(ch, c.queueDepth, c.queueCapacity, c.taken, c.notTaken, c.durable, c.delivered,
		c.failures, c.retries, c.spoolBytes, c.spoolSegments, c.sinkUp,
		c.lost, c.writeErrors, c.torn, c.quarantined, c.spoolMax, c.reopens, c.unwritten, c.pruned)
}

func (c *auditCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	emit(ch, c.queueDepth, prometheus.GaugeValue, float64(s.QueueDepth))
	emit(ch, c.queueCapacity, prometheus.GaugeValue, float64(s.QueueCapacity))
	emit(ch, c.taken, prometheus.CounterValue, float64(s.Taken))
	emit(ch, c.notTaken, prometheus.CounterValue, float64(s.NotTakenQueueFull), "queue_full")
	emit(ch, c.notTaken, prometheus.CounterValue, float64(s.NotTakenSpoolFull), "spool_full")
	emit(ch, c.notTaken, prometheus.CounterValue, float64(s.NotTakenClosed), "closed")
	emit(ch, c.durable, prometheus.CounterValue, float64(s.Durable))
	emit(ch, c.delivered, prometheus.CounterValue, float64(s.Delivered))
	emit(ch, c.failures, prometheus.CounterValue, float64(s.DeliveryFailures))
	emit(ch, c.retries, prometheus.CounterValue, float64(s.DeliveryRetries))
	emit(ch, c.spoolBytes, prometheus.GaugeValue, float64(s.SpoolBytes))
	emit(ch, c.spoolSegments, prometheus.GaugeValue, float64(s.SpoolSegments))
	up := 0.0
	if s.SinkUp {
		up = 1
	}
	emit(ch, c.sinkUp, prometheus.GaugeValue, up)
	emit(ch, c.lost, prometheus.CounterValue, float64(s.Lost))
	emit(ch, c.writeErrors, prometheus.CounterValue, float64(s.WriteErrors))
	emit(ch, c.torn, prometheus.CounterValue, float64(s.TornBytes))
	emit(ch, c.quarantined, prometheus.CounterValue, float64(s.QuarantinedBytes))
	emit(ch, c.spoolMax, prometheus.GaugeValue, float64(s.SpoolMax))
	emit(ch, c.reopens, prometheus.CounterValue, float64(s.SinkReopens))
	emit(ch, c.unwritten, prometheus.CounterValue, float64(s.SinkUnwritten))
	emit(ch, c.pruned, prometheus.CounterValue, float64(s.Pruned))
}
