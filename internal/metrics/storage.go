package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/larderfs/larder/internal/s3"
)

// storageCollector exports s3.Stats, the requests of a server whose files
// are in a bucket (--storage s3://…):
//
//	larder_storage_up                                   gauge
//	larder_storage_requests_total{op,result}            counter
//	larder_storage_request_duration_seconds{op}         histogram
//
// op is the S3 operation (HeadObject, GetObject, UploadPart, …, s3.Ops),
// result how it ended (s3.Results: ok, refused, unavailable, cancelled).
// Every pair is exported, zero or not.
type storageCollector struct {
	stats func() s3.Stats

	up, requests, duration *prometheus.Desc

	buckets []float64 // upper bounds of the duration histogram, in seconds
}

func newStorageCollector(stats func() s3.Stats) *storageCollector {
	c := &storageCollector{
		stats: stats,
		up: newDesc("larder_storage_up",
			"1 if the file store answered the last request made to it (an S3 error such as a key not found is an answer), 0 if it did not answer in time or answered that it is busy or broken (5xx, 429). With --storage s3://… only."),
		requests: newDesc("larder_storage_requests_total",
			"Requests to the file store (--storage s3://…), retries within each included, by S3 operation and by result: ok, refused (an S3 error), unavailable (no answer in time, 5xx, 429) or cancelled (by larder: a read-ahead no longer wanted).",
			"op", "result"),
		duration: newDesc("larder_storage_request_duration_seconds",
			"Time requests to the file store took, retries included, by S3 operation.", "op"),
	}
	for _, b := range s3.DurationBuckets() {
		c.buckets = append(c.buckets, b.Seconds())
	}
	return c
}

func (c *storageCollector) Describe(ch chan<- *prometheus.Desc) {
	describe(ch, c.up, c.requests, c.duration)
}

func (c *storageCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	up := 0.0
	if s.Up {
		up = 1
	}
	emit(ch, c.up, prometheus.GaugeValue, up)
	for _, o := range s.Ops {
		for r, n := range o.Results {
			emit(ch, c.requests, prometheus.CounterValue, float64(n), o.Op, s3.Results[r])
		}
		ch <- constHistogram(c.duration, c.buckets, o.Counts[:], o.Sum, o.Op)
	}
}
