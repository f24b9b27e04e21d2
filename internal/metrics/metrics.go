// Package metrics exposes larder's numbers to Prometheus, and its health to
// load balancers and orchestrators, over HTTP.
//
// The packages that do the work keep their own counters, a few atomic adds
// per request, and know nothing of Prometheus: server.Server.Stats,
// auth.Authenticator.Stats, s3.Backend.Stats and, through AuditStats, the
// audit log's. A
// Handler reads each source once per scrape and emits constant metrics
// from that one snapshot, so the numbers of a scrape agree with each other
// and cost nothing between scrapes. They live in a registry of the
// Handler's own, never in Prometheus's global one.
//
// The metrics, all prefixed larder_, are listed on the collectors in
// server.go, auth.go, audit.go, storage.go and build.go, and in the table of
// docs/OPERATIONS.md that TestMetricsDocumented writes and checks; the Go
// runtime's (go_*), the process's (process_*) and the build's
// (go_build_info) come with them.
package metrics

import (
	"cmp"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/larderfs/larder/internal/auth"
	"github.com/larderfs/larder/internal/s3"
	"github.com/larderfs/larder/internal/server"
	"github.com/larderfs/larder/internal/version"
)

// Config says what a Handler exposes. Every source is optional: a nil one
// is neither exported nor checked.
type Config struct {
	// Server is the course-protocol server's Stats method: connections,
	// requests, bytes and durations. It also decides /healthz: the server
	// is unhealthy while it is not listening, and from the moment its
	// shutdown starts.
	Server func() server.Stats

	// Auth is the Authenticator's Stats method: password checks, throttled
	// logins, the login cache and the hashing pool.
	Auth func() auth.Stats

	// Audit returns the audit pipeline's numbers. /healthz reports its
	// sink, but a sink that is down does not make the server unhealthy:
	// events wait in the durable spool until it returns, and taking the
	// server out of a load balancer would not bring the sink back. A
	// spool at its bound (AuditStats.SpoolMax) does: new events are refused
	// then, and /healthz answers 503 "degraded".
	Audit func() AuditStats

	// Storage is the file store's Stats method, for a server whose
	// files are in a bucket: its requests by operation and result, and
	// whether it answers.
	Storage func() s3.Stats

	// Build is the build of larder that runs, exported as
	// larder_build_info (build.go); version.Read gives the running
	// program's.
	Build *version.Info

	// Checks are further health checks for /healthz.
	Checks []Check

	// Profiling serves Go's runtime profiles (net/http/pprof) under
	// /debug/pprof/: CPU, heap, goroutines, blocking, the execution trace.
	// Off by default: a profile costs CPU while it runs and shows the
	// program's internals. The server's write timeout bounds a CPU profile
	// or trace to under 30 seconds.
	Profiling bool

	// Logger receives the errors of scrapes and of the HTTP server. Nil
	// means slog.Default().
	Logger *slog.Logger
}

// Handler serves the metrics at /metrics and the health at /healthz. Build
// it with NewHandler; it is safe for concurrent use.
type Handler struct {
	cfg Config
	reg *prometheus.Registry
	mux *http.ServeMux
}

// Limits of the /metrics endpoint: a scrape gathers everything anew, so a
// flood of scrapes is refused (503) beyond a few at once rather than let
// it take the server's cores, and a scrape that stalls is cut off.
const (
	maxScrapesInFlight = 4
	scrapeTimeout      = 10 * time.Second
)

// NewHandler returns a Handler over the sources of cfg, with a registry of
// its own that also holds the Go runtime's, the process's and the build's
// collectors.
func NewHandler(cfg Config) *Handler {
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	h := &Handler{cfg: cfg, reg: prometheus.NewRegistry(), mux: http.NewServeMux()}
	// Registering fails only for clashing descriptors, a bug that every
	// test of this package would show.
	h.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
	)
	if cfg.Build != nil {
		h.reg.MustRegister(newBuildInfo(*cfg.Build))
	}
	if cfg.Server != nil {
		h.reg.MustRegister(newServerCollector(cfg.Server))
	}
	if cfg.Auth != nil {
		h.reg.MustRegister(newAuthCollector(cfg.Auth))
	}
	if cfg.Audit != nil {
		h.reg.MustRegister(newAuditCollector(cfg.Audit))
	}
	if cfg.Storage != nil {
		h.reg.MustRegister(newStorageCollector(cfg.Storage))
	}
	h.mux.Handle("GET /metrics", promhttp.HandlerFor(h.reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelError),
		// A source that fails spoils its own metrics, not the others'.
		ErrorHandling:       promhttp.ContinueOnError,
		Registry:            h.reg, // counts its own errors: promhttp_metric_handler_errors_total
		MaxRequestsInFlight: maxScrapesInFlight,
		Timeout:             scrapeTimeout,
	}))
	h.mux.HandleFunc("GET /healthz", h.serveHealth)
	if cfg.Profiling {
		h.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		h.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		h.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		h.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		h.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return h
}

// Registry returns the Handler's registry, for collectors of other
// components (database pools, say) to join the scrape.
func (h *Handler) Registry() *prometheus.Registry { return h.reg }

// ServeHTTP serves GET (and HEAD) /metrics and /healthz, and with
// Profiling /debug/pprof/; any other path is 404, any other method 405.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// NewHTTPServer returns an http.Server that serves h with limits fit for a
// monitoring port: a client has 5 s to send its request headers (of at
// most 8 KiB) and 10 s for the whole request, a reply must be written
// within 30 s, and an idle keep-alive connection is closed after 2 min
// (longer than Prometheus's usual scrape interval, so its connection is
// reused). Errors of the HTTP server go to logger at warn level.
//
// Run it with Serve on a listener of your own, so that the address is
// known (port 0 in tests) and a bad address fails at start-up; stop it
// with Shutdown after the course-protocol server has finished its own, so
// that /healthz answers 503 through the whole grace period.
func NewHTTPServer(h http.Handler, logger *slog.Logger) *http.Server {
	logger = cmp.Or(logger, slog.Default())
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// newDesc returns the descriptor of a larder metric with variable labels.
func newDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// emit sends one constant sample of d.
func emit(ch chan<- prometheus.Metric, d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, t, v, labels...)
}

// describe sends every descriptor in ds.
func describe(ch chan<- *prometheus.Desc, ds ...*prometheus.Desc) {
	for _, d := range ds {
		ch <- d
	}
}
