package metrics_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/internal/auth"
	"github.com/larderfs/larder/internal/disk"
	"github.com/larderfs/larder/internal/files"
	"github.com/larderfs/larder/internal/metrics"
	"github.com/larderfs/larder/internal/s3"
	"github.com/larderfs/larder/internal/server"
	"github.com/larderfs/larder/internal/sqlite"
	"github.com/larderfs/larder/internal/version"
	"github.com/larderfs/larder/lnp"
)

// cheapHash keeps the password hash fast; the tests are not about hashing.
var cheapHash = auth.Params{Memory: 64, Time: 1, Threads: 1}

// rig is a real course-protocol server on 127.0.0.1:0 over a temporary
// folder and database, with a throttle tight enough to trip in a test.
type rig struct {
	srv   *server.Server
	authn *auth.Authenticator
	addr  string
	done  chan error // Serve's result
}

func newRig(t *testing.T) *rig {
	t.Helper()
	top := t.TempDir()
	served := filepath.Join(top, "files")
	must(t, os.Mkdir(served, 0o755))
	db, err := sqlite.Open(context.Background(), filepath.Join(top, "larder.db"))
	must(t, err)
	t.Cleanup(func() { db.Close() })
	store, err := disk.Open(served)
	must(t, err)
	t.Cleanup(func() { store.Close() })
	must(t, os.WriteFile(filepath.Join(served, "f"), fileData, 0o644))

	throttle := auth.NewThrottle(auth.ThrottleConfig{
		PairFailures: 2, PairRefill: time.Hour, // an address's third wrong password for an account is refused
		AccountFailures: 1, AccountDelay: time.Millisecond, // an account's second is delayed
	})
	r := &rig{done: make(chan error, 1)}
	r.authn = auth.New(sqlite.NewUserStore(db), auth.NewHasher(cheapHash, nil, 1), auth.NewCache(0, 0), throttle)
	svc, err := files.New(files.Config{Backend: files.NewLocal(store, nil)})
	must(t, err)
	r.srv = &server.Server{
		Auth:           r.authn,
		Files:          svc,
		Logger:         slog.New(slog.DiscardHandler),
		RequestTimeout: 5 * time.Second,
		WriteTimeout:   5 * time.Second,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	r.addr = ln.Addr().String()
	go func() { r.done <- r.srv.Serve(ln) }()
	t.Cleanup(func() {
		r.srv.Close()
		if err := <-r.done; !errors.Is(err, server.ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return r
}

// fileData is the served file "f": three blocks.
var fileData = bytes.Repeat([]byte("larder "), 300)

var (
	rightSig = larder.NewSignature("correct horse", "battery staple salt")
	wrongSig = larder.NewSignature("wrong horse", "battery staple salt")
)

// retrieve asks for path and returns the reply's status.
func (r *rig) retrieve(t *testing.T, user string, sig larder.Signature, path string) course.Status {
	t.Helper()
	c, err := client.Dial(t.Context(), r.addr)
	must(t, err)
	defer c.Close()
	var buf bytes.Buffer
	_, err = c.Retrieve(t.Context(), user, sig, path, &buf)
	return statusOf(t, err)
}

func (r *rig) register(t *testing.T, user string) course.Status {
	t.Helper()
	c, err := client.Dial(t.Context(), r.addr)
	must(t, err)
	defer c.Close()
	_, err = c.Register(t.Context(), user, rightSig)
	return statusOf(t, err)
}

func statusOf(t *testing.T, err error) course.Status {
	t.Helper()
	var se *client.StatusError
	switch {
	case err == nil:
		return course.StatusOK
	case errors.As(err, &se):
		return se.Status
	}
	t.Fatal(err)
	return 0
}

// malformed sends a request whose declared length is over the limit and
// returns the reply's status.
func (r *rig) malformed(t *testing.T) course.Status {
	t.Helper()
	c, err := net.Dial("tcp", r.addr)
	must(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	hdr := make([]byte, course.RequestHeaderSize)
	copy(hdr, "alice")
	binary.BigEndian.PutUint32(hdr[course.UsernameSize+course.SignatureSize:], course.MaxBodySize+1)
	_, err = c.Write(hdr)
	must(t, err)
	h, _, err := course.NewBlockReader(c).ReadBlock()
	must(t, err)
	io.Copy(io.Discard, c)
	return h.Status
}

// serveHTTP serves h with NewHTTPServer on 127.0.0.1:0 and returns its
// base URL.
func serveHTTP(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	hs := metrics.NewHTTPServer(h, slog.New(slog.DiscardHandler))
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		must(t, hs.Shutdown(ctx))
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// get returns the status and body of a GET of url.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	must(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(t, err)
	return resp.StatusCode, string(b)
}

// scrape fetches and parses the metrics at url.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(t, url+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader([]byte(body)))
	must(t, err)
	return fams
}

// find returns the sample of family name whose labels are exactly the
// pairs given, or nil.
func find(fams map[string]*dto.MetricFamily, name string, labels ...string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
	for _, m := range f.Metric {
		var got []string
		for _, l := range m.Label {
			got = append(got, l.GetName(), l.GetValue())
		}
		if slices.Equal(got, labels) {
			return m
		}
	}
	return nil
}

// value returns the value of a counter or gauge sample, failing the test
// if there is none.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	m := find(fams, name, labels...)
	switch {
	case m == nil:
		t.Errorf("no sample %s%q", name, labels)
		return -1
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Errorf("%s%q is neither a counter nor a gauge", name, labels)
	return -1
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestScrape drives a real server through a registration, retrievals, an
// unknown user, wrong passwords until the throttle refuses, and a
// malformed request, then checks every larder metric of a scrape exactly.
func TestScrape(t *testing.T) {
	r := newRig(t)
	audit := metrics.AuditStats{
		QueueDepth: 3, QueueCapacity: 1024, Taken: 100,
		NotTakenQueueFull: 4, NotTakenSpoolFull: 5, NotTakenClosed: 6,
		Durable: 90, Delivered: 80, DeliveryFailures: 7, DeliveryRetries: 8,
		SpoolBytes: 4096, SpoolSegments: 2, SinkUp: true, SpoolMax: 1 << 20,
		SinkReopens: 9, SinkUnwritten: 10,
	}
	url := serveHTTP(t, metrics.NewHandler(metrics.Config{
		Server: r.srv.Stats,
		Auth:   r.authn.Stats,
		Audit:  func() metrics.AuditStats { return audit },
	}))

	steps := []struct {
		do   func() course.Status
		want course.Status
	}{
		{func() course.Status { return r.register(t, "alice") }, course.StatusOK},                           // remembered by the cache
		{func() course.Status { return r.retrieve(t, "alice", rightSig, "f") }, course.StatusOK},            // cache hit
		{func() course.Status { return r.retrieve(t, "alice", rightSig, "f") }, course.StatusOK},            // cache hit
		{func() course.Status { return r.retrieve(t, "alice", rightSig, "/f") }, course.StatusOK},           // cache hit
		{func() course.Status { return r.retrieve(t, "alice", rightSig, "nope") }, course.StatusBadRequest}, // cache hit
		{func() course.Status { return r.retrieve(t, "bob", rightSig, "f") }, course.StatusUserMissing},     // dummy check
		{func() course.Status { return r.retrieve(t, "alice", wrongSig, "f") }, course.StatusInvalidLogin},  // miss, mismatch
		{func() course.Status { return r.retrieve(t, "alice", wrongSig, "f") }, course.StatusInvalidLogin},  // miss, delayed, mismatch
		{func() course.Status { return r.retrieve(t, "alice", wrongSig, "f") }, course.StatusOther},         // miss, refused
		{func() course.Status { return r.malformed(t) }, course.StatusMalformed},
	}
	for i, s := range steps {
		if got := s.do(); got != s.want {
			t.Fatalf("step %d: got %v, want %v", i, got, s.want)
		}
	}
	// An exchange is counted before its connection is released.
	deadline := time.Now().Add(10 * time.Second)
	for s := r.srv.Stats(); s.Accepted != int64(len(steps)) || s.Open != 0; s = r.srv.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("connections accepted, open = %d, %d; want %d, 0", s.Accepted, s.Open, len(steps))
		}
		time.Sleep(5 * time.Millisecond)
	}

	fams := scrape(t, url)
	exact := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"larder_connections_total", nil, 10},
		{"larder_connections_open", nil, 0},
		{"larder_connections_max", nil, server.DefaultMaxConns},
		{"larder_connections_rejected_total", nil, 0},
		{"larder_course_payload_bytes_sent_total", nil, float64(3 * len(fileData))},

		{"larder_password_checks_total", []string{"result", "ok"}, 0},
		{"larder_password_checks_total", []string{"result", "mismatch"}, 2},
		{"larder_password_checks_total", []string{"result", "dummy"}, 1},
		{"larder_password_checks_total", []string{"result", "busy"}, 0},
		{"larder_password_checks_total", []string{"result", "error"}, 0},
		{"larder_logins_throttled_total", []string{"action", "refused", "limit", "account_address"}, 1},
		{"larder_logins_throttled_total", []string{"action", "refused", "limit", "address"}, 0},
		{"larder_logins_throttled_total", []string{"action", "delayed", "limit", "account"}, 1},
		{"larder_password_rehashes_total", nil, 0},
		{"larder_password_rehash_failures_total", nil, 0},
		{"larder_auth_cache_hits_total", nil, 4},
		{"larder_auth_cache_misses_total", nil, 3},
		{"larder_auth_cache_entries", nil, 1},
		{"larder_password_hash_slots", nil, 1},
		{"larder_password_hash_slots_busy", nil, 0},

		{"larder_audit_queue_depth", nil, 3},
		{"larder_audit_queue_capacity", nil, 1024},
		{"larder_audit_events_taken_total", nil, 100},
		{"larder_audit_events_not_taken_total", []string{"reason", "queue_full"}, 4},
		{"larder_audit_events_not_taken_total", []string{"reason", "spool_full"}, 5},
		{"larder_audit_events_not_taken_total", []string{"reason", "closed"}, 6},
		{"larder_audit_events_durable_total", nil, 90},
		{"larder_audit_events_delivered_total", nil, 80},
		{"larder_audit_delivery_failures_total", nil, 7},
		{"larder_audit_delivery_retries_total", nil, 8},
		{"larder_audit_spool_bytes", nil, 4096},
		{"larder_audit_spool_segments", nil, 2},
		{"larder_audit_sink_up", nil, 1},
		{"larder_audit_spool_max_bytes", nil, 1 << 20},
		{"larder_audit_sink_reopens_total", nil, 9},
		{"larder_audit_sink_events_unwritten_total", nil, 10},
	}
	for _, e := range exact {
		if got := value(t, fams, e.name, e.labels...); got != e.want {
			t.Errorf("%s%q = %v, want %v", e.name, e.labels, got, e.want)
		}
	}

	// Every (op, status) pair is exported; these are the ones not zero.
	requests := map[[2]string]float64{
		{"register", "OK"}:            1,
		{"retrieve", "OK"}:            3,
		{"retrieve", "BAD_REQUEST"}:   1,
		{"retrieve", "USER_MISSING"}:  1,
		{"retrieve", "INVALID_LOGIN"}: 2,
		{"retrieve", "OTHER"}:         1,
		{"none", "MALFORMED"}:         1,
	}
	if n := len(fams["larder_course_requests_total"].GetMetric()); n != server.NumOps*server.NumStatuses {
		t.Errorf("larder_course_requests_total has %d series, want %d", n, server.NumOps*server.NumStatuses)
	}
	for op := range server.Op(server.NumOps) {
		for st := range course.Status(server.NumStatuses) {
			status := st.String()
			if st == 0 {
				status = "none"
			}
			want := requests[[2]string{op.String(), status}]
			if got := value(t, fams, "larder_course_requests_total", "op", op.String(), "status", status); got != want {
				t.Errorf("larder_course_requests_total{op=%q,status=%q} = %v, want %v", op, status, got, want)
			}
		}
	}

	bounds := server.DurationBuckets()
	for op, count := range map[string]uint64{"none": 1, "register": 1, "retrieve": 8} {
		m := find(fams, "larder_course_request_duration_seconds", "op", op)
		if m == nil || m.Histogram == nil {
			t.Errorf("no histogram larder_course_request_duration_seconds{op=%q}", op)
			continue
		}
		h := m.Histogram
		if h.GetSampleCount() != count || h.GetSampleSum() <= 0 {
			t.Errorf("duration{op=%q}: count %d, sum %v; want %d, more than 0", op, h.GetSampleCount(), h.GetSampleSum(), count)
		}
		if len(h.Bucket) != len(bounds)+1 {
			t.Fatalf("duration{op=%q} has %d buckets, want %d and +Inf", op, len(h.Bucket), len(bounds))
		}
		var prev uint64
		for i, b := range h.Bucket {
			le := math.Inf(1)
			if i < len(bounds) {
				le = bounds[i].Seconds()
			}
			if b.GetUpperBound() != le || b.GetCumulativeCount() < prev || b.GetCumulativeCount() > count {
				t.Errorf("duration{op=%q} bucket %d: le %v, count %d after %d; want le %v", op, i, b.GetUpperBound(), b.GetCumulativeCount(), prev, le)
			}
			prev = b.GetCumulativeCount()
		}
		if prev != count {
			t.Errorf("duration{op=%q}: +Inf bucket %d, want the count %d", op, prev, count)
		}
	}

	for _, name := range []string{"go_goroutines", "go_build_info", "process_cpu_seconds_total"} {
		if fams[name] == nil {
			t.Errorf("no %s: the runtime, build and process collectors are missing", name)
		}
	}
}

// TestNoSources: a Handler without sources exports no larder metric, and
// its registry takes further collectors.
func TestNoSources(t *testing.T) {
	h := metrics.NewHandler(metrics.Config{})
	extra := prometheus.NewCounter(prometheus.CounterOpts{Name: "larder_test_extra_total", Help: "A collector of another component."})
	h.Registry().MustRegister(extra)
	extra.Add(2)
	url := serveHTTP(t, h)
	fams := scrape(t, url)
	for name := range fams {
		if strings.HasPrefix(name, "larder_") && name != "larder_test_extra_total" {
			t.Errorf("exported %s without a source", name)
		}
	}
	if got := value(t, fams, "larder_test_extra_total"); got != 2 {
		t.Errorf("larder_test_extra_total = %v, want 2", got)
	}
	if code, body := get(t, url+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: %d %q, want 200 \"ok\\n\"", code, body)
	}
}

// TestScrapeLNP: LNP/1's counters are exported with their op and
// status names, every known status of every op, and the bytes both ways.
func TestScrapeLNP(t *testing.T) {
	var st server.Stats
	get, put := server.LNPOp(8), server.LNPOp(9)
	st.LNPRequests[get][lnp.StatusOK] = 3
	st.LNPRequests[put][lnp.StatusQuotaExceeded] = 2
	st.LNPDurations[get].Counts[0] = 1
	st.LNPDurations[get].Counts[len(server.DurationBuckets())] = 2
	st.LNPDurations[get].Sum = 90 * time.Second
	st.LNPBytesSent, st.LNPBytesReceived = 1<<30, 5
	url := serveHTTP(t, metrics.NewHandler(metrics.Config{Server: func() server.Stats { return st }}))
	fams := scrape(t, url)

	if get.String() != "get" || put.String() != "put" {
		t.Fatalf("ops 8 and 9 are %q and %q, want get and put", get, put)
	}
	known := 0
	for s := range lnp.Status(server.NumLNPStatuses) {
		if s.Known() {
			known++
		}
	}
	if n := len(fams["larder_lnp_requests_total"].GetMetric()); n != server.NumLNPOps*known {
		t.Errorf("larder_lnp_requests_total has %d series, want %d", n, server.NumLNPOps*known)
	}
	for _, c := range []struct {
		op, status string
		want       float64
	}{
		{"get", "OK", 3}, {"put", "QUOTA_EXCEEDED", 2}, {"put", "OK", 0}, {"whoami", "HASH_MISMATCH", 0},
	} {
		if got := value(t, fams, "larder_lnp_requests_total", "op", c.op, "status", c.status); got != c.want {
			t.Errorf("larder_lnp_requests_total{op=%q,status=%q} = %v, want %v", c.op, c.status, got, c.want)
		}
	}
	if got := value(t, fams, "larder_lnp_bytes_total", "direction", "sent"); got != 1<<30 {
		t.Errorf("bytes sent = %v, want %v", got, 1<<30)
	}
	if got := value(t, fams, "larder_lnp_bytes_total", "direction", "received"); got != 5 {
		t.Errorf("bytes received = %v, want 5", got)
	}
	h := find(fams, "larder_lnp_request_duration_seconds", "op", "get").GetHistogram()
	if h.GetSampleCount() != 3 || h.GetSampleSum() != 90 || h.Bucket[0].GetCumulativeCount() != 1 {
		t.Errorf("duration{op=get}: count %d, sum %v, first bucket %d; want 3, 90, 1", h.GetSampleCount(), h.GetSampleSum(), h.Bucket[0].GetCumulativeCount())
	}
}

// TestBuildInfo: larder_build_info is 1, labelled with the build that
// runs, under Prometheus's usual label names.
func TestBuildInfo(t *testing.T) {
	in := version.Info{
		Version: "v1.2.0", Revision: "c2ee045abcde0123456789abcdef0123456789ab",
		Time: time.Date(2026, 12, 7, 9, 56, 32, 0, time.UTC), Modified: true,
		GoVersion: "go1.26.0", OS: "linux", Arch: "amd64",
	}
	fams := scrape(t, serveHTTP(t, metrics.NewHandler(metrics.Config{Build: &in})))
	if got := value(t, fams, "larder_build_info",
		"goarch", "amd64", "goos", "linux", "goversion", "go1.26.0", "modified", "true",
		"revision", "c2ee045abcde0123456789abcdef0123456789ab", "revision_time", "2026-12-07T09:56:32Z",
		"version", "v1.2.0"); got != 1 {
		t.Errorf("larder_build_info = %v, want 1", got)
	}
	if typ := fams["larder_build_info"].GetType(); typ != dto.MetricType_GAUGE {
		t.Errorf("larder_build_info is a %v, want a gauge", typ)
	}
}

// TestStorage: the file store's numbers as the Backend gives them: its
// state, its requests by operation and result, their durations.
func TestStorage(t *testing.T) {
	s := s3.Stats{Up: false}
	for _, op := range s3.Ops {
		s.Ops = append(s.Ops, s3.OpStats{Op: op})
	}
	head := &s.Ops[slices.Index(s3.Ops[:], "HeadObject")]
	head.Results = [len(s3.Results)]uint64{3, 2, 1, 0}
	head.Counts[0], head.Counts[len(head.Counts)-1] = 5, 1
	head.Sum = 12 * time.Second
	fams := scrape(t, serveHTTP(t, metrics.NewHandler(metrics.Config{Storage: func() s3.Stats { return s }})))
	if got := value(t, fams, "larder_storage_up"); got != 0 {
		t.Errorf("larder_storage_up = %v, want 0", got)
	}
	for i, r := range s3.Results {
		if got, want := value(t, fams, "larder_storage_requests_total", "op", "HeadObject", "result", r), float64(head.Results[i]); got != want {
			t.Errorf("larder_storage_requests_total{HeadObject,%s} = %v, want %v", r, got, want)
		}
	}
	h := find(fams, "larder_storage_request_duration_seconds", "op", "HeadObject").GetHistogram()
	if h.GetSampleCount() != 6 || h.GetSampleSum() != 12 || h.GetBucket()[0].GetCumulativeCount() != 5 {
		t.Errorf("larder_storage_request_duration_seconds{HeadObject}: %d samples, sum %v, first bucket %d; want 6, 12, 5",
			h.GetSampleCount(), h.GetSampleSum(), h.GetBucket()[0].GetCumulativeCount())
	}
}
