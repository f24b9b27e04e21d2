package s3

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"time"

	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
)

// Ops are the S3 operations larder makes, by the SDK's names, as Stats
// reports them; any other is counted as "other".
var Ops = [...]string{
	"AbortMultipartUpload", "CompleteMultipartUpload", "CopyObject", "CreateMultipartUpload",
	"DeleteObject", "GetObject", "HeadObject", "ListMultipartUploads", "ListObjectsV2",
	"ListParts", "PutObject", "UploadPart", "UploadPartCopy", "other",
}

// Results are how a request to the store ended, as Stats counts them:
// ok; refused, answered with an S3 error (a key not found or a condition
// not met are answers larder expects); unavailable, no answer in time, or
// an answer that the store is busy or broken (5xx, 429); cancelled, by
// larder (a read-ahead no longer wanted).
var Results = [...]string{"ok", "refused", "unavailable", "cancelled"}

const (
	resultOK = iota
	resultRefused
	resultUnavailable
	resultCancelled
)

// durationBounds are the upper bounds of the buckets of a request's
// duration: a store on the local network answers a small request in a
// millisecond or two, a part takes tens of them, and Config.Timeout
// (10 s by default) ends the rest.
var durationBounds = [...]time.Duration{
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
	500 * time.Millisecond, time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// DurationBuckets returns the upper bounds of OpStats.Counts's buckets.
func DurationBuckets() []time.Duration { return slices.Clone(durationBounds[:]) }

// Stats is what a Backend's requests to its store did since it was made.
type Stats struct {
	// Up is false from a request the store did not answer (see Results)
	// until one it answers; true before any request.
	Up bool
	// Ops are by operation, in the order of Ops.
	Ops []OpStats
}

// OpStats counts the requests of one operation.
type OpStats struct {
	Op string
	// Results counts the requests by how they ended, in the order of
	// Results.
	Results [len(Results)]uint64
	// Counts[i], for i < len(DurationBuckets()), counts the requests that
	// took at most DurationBuckets()[i] and longer than the bound before
	// it; the last, those longer than every bound. Not cumulative.
	Counts [len(durationBounds) + 1]uint64
	// Sum is the time the requests took, retries within them included.
	Sum time.Duration
}

// counters are a Backend's, updated by the middleware of every request.
type counters struct {
	down atomic.Bool
	ops  [len(Ops)]opCounters // by the index in Ops
}

type opCounters struct {
	results [len(Results)]atomic.Uint64
	counts  [len(durationBounds) + 1]atomic.Uint64
	sum     atomic.Int64
}

// Stats returns what the Backend's requests to its store did.
func (b *Backend) Stats() Stats {
	s := Stats{Up: !b.counters.down.Load(), Ops: make([]OpStats, len(Ops))}
	for i := range Ops {
		c := &b.counters.ops[i]
		o := &s.Ops[i]
		o.Op = Ops[i]
		for r := range c.results {
			o.Results[r] = c.results[r].Load()
		}
		for k := range c.counts {
			o.Counts[k] = c.counts[k].Load()
		}
		o.Sum = time.Duration(c.sum.Load())
	}
	return s
}

// count records a request of op that ended with err after d.
func (c *counters) count(op string, err error, d time.Duration) {
	i := slices.Index(Ops[:], op)
	if i < 0 {
		i = len(Ops) - 1
	}
	r := resultOK
	switch {
	case err == nil:
	case errors.Is(err, context.Canceled):
		r = resultCancelled
	case unavailable(err):
		r = resultUnavailable
	default:
		r = resultRefused
	}
	if r != resultCancelled {
		c.down.Store(r == resultUnavailable)
	}
	oc := &c.ops[i]
	oc.results[r].Add(1)
	k := 0
	for k < len(durationBounds) && d > durationBounds[k] {
		k++
	}
	oc.counts[k].Add(1)
	oc.sum.Add(int64(d))
}

// countRequests adds the middleware that counts every request, retries
// within it included, to the client's options.
func (c *counters) countRequests(o *awss3.Options) {
	o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("larderCount",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				start := time.Now()
				out, md, err := next.HandleInitialize(ctx, in)
				c.count(middleware.GetOperationName(ctx), err, time.Since(start))
				return out, md, err
			}), middleware.Before)
	})
}
