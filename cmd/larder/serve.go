package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/auth"
	"github.com/larderfs/larder/internal/disk"
	"github.com/larderfs/larder/internal/files"
	"github.com/larderfs/larder/internal/metrics"
	"github.com/larderfs/larder/internal/s3"
	"github.com/larderfs/larder/internal/server"
	"github.com/larderfs/larder/internal/tlsconf"
	"github.com/larderfs/larder/internal/version"
	"github.com/larderfs/larder/lnp"
)

// ServeConfig is everything "larder serve" can be told.
type ServeConfig struct {
	AccountConfig // where accounts live and how passwords are hashed
	Audit         AuditConfig

	Listen   string
	FilesDir string // the served folder; "" means DataDir/files
	// Storage is where the shared area and the private spaces live: ""
	// or "local" for the served folder and DataDir/spaces, or an
	// s3:// URL (see s3.ParseURL) for a bucket several servers share.
	Storage        string
	MaxConns       int
	RequestTimeout time.Duration
	WriteTimeout   time.Duration
	ShutdownGrace  time.Duration
	Registration   string // "open" or "closed"
	ShuffleBlocks  bool
	MetricsListen  string // "" means no metrics listener
	Profiling      bool   // Go's profiles at /debug/pprof/ on the metrics listener
	CPUProfile     string // a file for a CPU profile of the whole run; "" for none

	// Limits per client address and per account; 0 for no limit.
	MaxConnsPerAddress, MaxSessionsPerUser int
	// The audit events of connections that never log in, per address: a
	// burst, then one per interval; a burst of -1 records every one.
	AuditUnauthBurst int
	AuditUnauthEvery time.Duration

	// The native protocol.
	LNPListen            string // "off" for none
	InsecurePlaintextLNP bool
	TLSCert, TLSKey      string // "" for the self-signed identity in DataDir/tls
	Quota                larder.Quota
	MaxTransfersPerUser  int
	LNPIdleTimeout       time.Duration
	// SignatureLogins is "open" while accounts not yet enrolled for the
	// channel-bound login may log in to LNP/1 with the course signature
	// (and enroll), "closed" once that window is closed.
	SignatureLogins string
	// DeviceLifetime is how long a device credential made by 'larder
	// login' logs in; zero means auth.DefaultDeviceLifetime.
	DeviceLifetime time.Duration
	MinFree        disk.MinFree // free disk space that uploads may not take

	AuthCacheTTL     time.Duration
	AuthCacheEntries int
	Throttle         auth.ThrottleConfig

	LogLevel  string
	LogFormat string

	// wrapBackend, for tests, wraps the users' files' backend: a fault
	// of the storage, injected over the real one.
	wrapBackend func(files.Backend) files.Backend
}

// defaultServeConfig returns the embedded defaults: the course's port on
// loopback, a data folder under the user's data home.
func defaultServeConfig(getenv func(string) string) ServeConfig {
	return ServeConfig{
		AccountConfig:       defaultAccountConfig(getenv),
		Audit:               defaultAuditConfig(),
		Listen:              "127.0.0.1:23456",
		MaxConns:            server.DefaultMaxConns,
		MaxConnsPerAddress:  server.DefaultMaxConnsPerAddress,
		MaxSessionsPerUser:  server.DefaultMaxSessionsPerUser,
		AuditUnauthBurst:    server.DefaultAuditUnauthBurst,
		AuditUnauthEvery:    server.DefaultAuditUnauthEvery,
		RequestTimeout:      server.DefaultRequestTimeout,
		WriteTimeout:        server.DefaultWriteTimeout,
		ShutdownGrace:       30 * time.Second,
		Registration:        "open",
		LNPListen:           "127.0.0.1:23457",
		MaxTransfersPerUser: server.DefaultMaxTransfersPerUser,
		LNPIdleTimeout:      server.DefaultIdleTimeout,
		DeviceLifetime:      auth.DefaultDeviceLifetime,
		Storage:             "local",
		SignatureLogins:     "open",
		MinFree:             disk.DefaultMinFree,
		AuthCacheTTL:        auth.DefaultCacheTTL,
		AuthCacheEntries:    auth.DefaultCacheEntries,
		Throttle:            auth.DefaultThrottleConfig(),
		LogLevel:            "info",
		LogFormat:           "text",
	}
}

// validate checks what can be checked of c without opening anything:
// what Open refuses before it creates a file, and what 'larder config
// check' reports.
func (c *ServeConfig) validate() error {
	switch {
	// The cache takes zero for its defaults: from the command line, zero
	// would keep it on while the operator meant it off.
	case c.AuthCacheTTL <= 0:
		return usageError("--auth-cache-ttl must be more than 0, got %v: the verification cache cannot be turned off, but with --auth-cache-ttl 1ns every login runs the hash", c.AuthCacheTTL)
	case c.AuthCacheEntries < 1:
		return usageError("--auth-cache-entries must be at least 1, got %d: the verification cache cannot be turned off, but with --auth-cache-ttl 1ns every login runs the hash", c.AuthCacheEntries)
	case c.Registration != "open" && c.Registration != "closed":
		return usageError("bad --registration %q: want open or closed", c.Registration)
	case c.SignatureLogins != "open" && c.SignatureLogins != "closed":
		return usageError("bad --native-signature-logins %q: want open or closed", c.SignatureLogins)
	case c.MaxConns < 1:
		// The server would read 0 as its default, 4096: an operator who
		// meant to let no one in would let everyone in.
		return usageError("--max-conns must be at least 1, got %d", c.MaxConns)
	case c.RequestTimeout <= 0 || c.WriteTimeout <= 0:
		return usageError("--request-timeout and --write-timeout must be more than 0, got %v and %v", c.RequestTimeout, c.WriteTimeout)
	case c.ShutdownGrace < 0:
		return usageError("--shutdown-grace may not be negative, got %v (0 cuts transfers off at once)", c.ShutdownGrace)
	case c.MaxConnsPerAddress < 0 || c.MaxSessionsPerUser < 0:
		return usageError("--max-conns-per-address and --max-sessions-per-user may not be negative (0 is no limit)")
	case c.Profiling && c.MetricsListen == "":
		return usageError("--pprof serves the profiles on the --metrics-listen address: give one")
	case c.Listen == "off" && c.LNPListen == "off":
		return usageError("--listen and --native-listen are both off: there is nothing to serve")
	case c.LNPListen != "off" && (c.TLSCert == "") != (c.TLSKey == ""):
		return usageError("--tls-cert and --tls-key go together")
	case c.LNPListen != "off" && (c.Quota.Files < 0 || c.MaxTransfersPerUser < 1 || c.LNPIdleTimeout <= 0):
		return usageError("--quota-files may not be negative, --max-transfers-per-user and --native-idle-timeout must be positive")
	}
	for _, l := range []struct{ flag, addr string }{
		{"--listen", c.Listen}, {"--native-listen", c.LNPListen}, {"--metrics-listen", c.MetricsListen},
	} {
		if l.addr == "" || l.addr == "off" && l.flag != "--metrics-listen" {
			continue
		}
		if err := checkListen(l.addr); err != nil {
			return usageError("bad %s %q: %v", l.flag, l.addr, err)
		}
	}
	if _, err := newLogger(io.Discard, new(slog.LevelVar), c.LogLevel, c.LogFormat); err != nil {
		return usageError("%v", err)
	}
	if _, err := c.bucket(); err != nil {
		return err
	}
	return c.checkPaths()
}

// bucket returns the bucket of --storage, or a zero Config for the local
// disk.
func (c *ServeConfig) bucket() (s3.Config, error) {
	var b s3.Config
	if c.Storage == "" || c.Storage == "local" {
		return b, nil
	}
	b, err := s3.ParseURL(c.Storage)
	if err != nil {
		return b, usageError("bad --storage: %v", err)
	}
	if c.FilesDir != "" {
		return b, usageError("--files names a folder of this machine; with --storage s3://… the shared area is the bucket's PREFIX/shared/: put its files there")
	}
	return b, nil
}

// checkListen checks that addr is an address to listen on, HOST:PORT,
// before anything is opened: a mistyped address is the operator's mistake,
// which the listener would report as a network failure.
func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want HOST:PORT, e.g. 127.0.0.1:23456 (an empty HOST listens on every address)")
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("port %q is not a port number", port)
	}
	if strings.ContainsAny(host, " /\\") {
		return fmt.Errorf("host %q is not a host name or an IP address", host)
	}
	return nil
}

// define declares the flags of larder serve on fs, with c's values as
// defaults (every one: a flag sets its variable to its default, and a
// reload compares configurations through their flags, flagValues); they
// are also the keys of the configuration file (configfile.go).
func (c *ServeConfig) define(fs *flag.FlagSet) {
	fs.StringVar(&c.Listen, "listen", c.Listen, "`address` of the course protocol (the course's port by default), or off to serve the native protocol only")
	c.AccountConfig.define(fs)
	fs.BoolVar(&c.LowerHashPolicy, "hash-lower-policy", c.LowerHashPolicy, "accept --hash-… parameters weaker than the policy the servers recorded (new hashes become weaker; stored ones are never lowered)")
	fs.StringVar(&c.FilesDir, "files", c.FilesDir, "`folder` to serve (default: the data folder's files/)")
	fs.StringVar(&c.Storage, "storage", c.Storage, "where the shared area and the users' files live: local (--files and DATA/spaces), or an S3-compatible bucket,\n"+
		"`s3://BUCKET/PREFIX?endpoint=URL&region=REGION&path-style=true`, shared by servers on one --db (credentials from\n"+
		"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE or ~/.aws/credentials, never this flag; docs/OPERATIONS.md)")
	fs.IntVar(&c.MaxConns, "max-conns", c.MaxConns, "connections served at once; more are told the server is busy")
	fs.IntVar(&c.MaxConnsPerAddress, "max-conns-per-address", c.MaxConnsPerAddress, "connections of both protocols served at once for one client address (IPv6: one /64), loopback included; more are told the server is busy; 0 for no limit")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", c.RequestTimeout, "time a client has to send its whole request")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", c.WriteTimeout, "time a client has to take each batch of reply blocks")
	fs.DurationVar(&c.ShutdownGrace, "shutdown-grace", c.ShutdownGrace, "on SIGINT/SIGTERM, time given to transfers in flight")
	fs.StringVar(&c.Registration, "registration", c.Registration, "registration `policy`: open (as the course server) or closed")
	fs.BoolVar(&c.ShuffleBlocks, "shuffle-blocks", c.ShuffleBlocks, "send reply blocks in random order, as the course server does")
	c.Audit.define(fs)
	fs.StringVar(&c.LNPListen, "native-listen", c.LNPListen, "`address` of the native protocol (LNP/1, TLS 1.3), or off")
	fs.BoolVar(&c.InsecurePlaintextLNP, "insecure-plaintext-native", c.InsecurePlaintextLNP, "serve the native protocol without TLS: passwords' signatures and files in the clear (tests on loopback only)")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "certificate `file` (PEM, chain) from a CA for the native protocol (default: a self-signed one made in DATA/tls)")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "the key `file` of --tls-cert, mode 0600")
	fs.Func("quota-bytes", "most `bytes` in each user's private space (suffixes KiB, MiB, GiB, TiB; default none)", sizeFlag(&c.Quota.Bytes))
	fs.Int64Var(&c.Quota.Files, "quota-files", c.Quota.Files, "most files in each user's private space (default none)")
	fs.IntVar(&c.MaxTransfersPerUser, "max-transfers-per-user", c.MaxTransfersPerUser, "uploads and downloads one user may run at once")
	fs.IntVar(&c.MaxSessionsPerUser, "max-sessions-per-user", c.MaxSessionsPerUser, "native sessions one account may hold at once; one more login is told BUSY; 0 for no limit")
	fs.DurationVar(&c.LNPIdleTimeout, "native-idle-timeout", c.LNPIdleTimeout, "how long a native session may wait between requests")
	fs.StringVar(&c.SignatureLogins, "native-signature-logins", c.SignatureLogins, "`open`: an account not yet enrolled for the native protocol's channel-bound login\n"+
		"may log in once with its course signature, and enrolls; closed: the course signature never\n"+
		"opens the native protocol (docs/SECURITY.md)")
	fs.DurationVar(&c.DeviceLifetime, "device-lifetime", c.DeviceLifetime, "how long a device credential made by 'larder login' logs in without the password")
	fs.Func("min-free", "free disk space kept on each file system the server writes, which uploads may not take: a `size` (512MiB), a percentage of the file system (2%), 0 for none, or auto (default: the smaller of 1% and 256MiB)", minFreeFlag(&c.MinFree))
	fs.StringVar(&c.MetricsListen, "metrics-listen", c.MetricsListen, "`address` of an HTTP listener serving Prometheus metrics at /metrics and health at /healthz (default: none)")
	fs.BoolVar(&c.Profiling, "pprof", c.Profiling, "also serve Go's runtime profiles (CPU, heap, goroutines, trace) at /debug/pprof/ on the --metrics-listen address; unauthenticated, like /metrics")
	fs.StringVar(&c.CPUProfile, "cpuprofile", c.CPUProfile, "write a CPU profile of the whole run, from start to shutdown, to `file` (for go tool pprof)")
	fs.DurationVar(&c.AuthCacheTTL, "auth-cache-ttl", c.AuthCacheTTL, "how long a successful password check is remembered; more than 0 (1ns: every login runs the hash)")
	fs.IntVar(&c.AuthCacheEntries, "auth-cache-entries", c.AuthCacheEntries, "most password checks remembered at once; at least 1")
	th := &c.Throttle
	fs.Func("throttle-pair", "failed logins per account and address before that address is refused for that account, then one per interval: `N/INTERVAL` or off (default 5/30s)",
		bucketFlag(&th.PairFailures, &th.PairRefill))
	fs.Func("throttle-address", "failed logins per address, over all accounts, before it is refused: `N/INTERVAL` or off (default 30/10s)",
		bucketFlag(&th.AddrFailures, &th.AddrRefill))
	fs.Func("throttle-account", "failed logins per account, from all addresses, before its logins are delayed (never refused): `N/INTERVAL` or off (default 20/30s)",
		bucketFlag(&th.AccountFailures, &th.AccountRefill))
	fs.DurationVar(&th.AccountDelay, "throttle-delay", th.AccountDelay, "the delay of --throttle-account")
	fs.Func("audit-unauthenticated", "audit events that connections which never log in (and refusals at a limit) may leave per address: `N/INTERVAL`, N at once then one more per interval, or off to record every one; the rest are counted and summed up in one audit.suppressed event per address each minute (default 100/100ms)",
		bucketFlag(&c.AuditUnauthBurst, &c.AuditUnauthEvery))
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "least `level` logged: debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log `format`: text or json")
}

// ignoreSIGPIPEFor sets SIGPIPE aside when the audit sink is standard
// output: a reader that goes away must make the sink's writes fail, for
// the spool to keep the events until it is back, not kill the process
// (Go kills a program whose writes to standard output meet a closed pipe,
// unless it takes SIGPIPE itself).
func ignoreSIGPIPEFor(sink string) {
	if sink == "stdout" {
		signal.Ignore(syscall.SIGPIPE)
	}
}

func runServe(ctx context.Context, env *Env, args []string) (err error) {
	// SIGHUP never stops a server: an operator sends it to reload, a
	// closed terminal sends it too. Taken before anything else, so that
	// one arriving while the server starts does not kill it either.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	cfg, _, err := loadServeConfig(env, args)
	if err != nil {
		return err
	}
	level := new(slog.LevelVar)
	logger, err := newLogger(env.Stderr, level, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return usageError("%v", err)
	}
	defer func() { err = logFailure(logger, cfg.LogFormat, "larder serve failed", err) }()
	ignoreSIGPIPEFor(cfg.Audit.Sink)

	if cfg.CPUProfile != "" {
		// Checked before the profile is created (Open checks again).
		if err := cfg.checkPaths(); err != nil {
			return err
		}
		stop, err := startCPUProfile(cfg.CPUProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	inherited, err := inheritedListeners(&cfg, logger)
	if err != nil {
		return usageError("%v", err)
	}
	if len(inherited) > 0 {
		var names []string
		for _, s := range socketNames {
			if ln := inherited[s.name]; ln != nil {
				names = append(names, s.name+" "+ln.Addr().String())
			}
		}
		logger.Info("socket activation: serving on the sockets the service manager passed", "sockets", names)
	}
	m := &Main{Config: cfg, Logger: logger, Level: level, Stdout: env.Stdout, Listeners: inherited}
	if err := m.Open(ctx); err != nil {
		return err
	}
	m.announce(env.Stderr)

	served := make(chan error, 1)
	go func() { served <- m.Serve() }()
	stopWatchdog := make(chan struct{})
	defer close(stopWatchdog)
	go watchdog(logger, func() bool { return m.srv.Stats().Listening > 0 }, stopWatchdog)
	notifyReady(logger, m.courseLine())
	var lostErr error
wait:
	for {
		select {
		case err := <-served:
			m.Close()
			return err
		case <-hup:
			notifyReloading(logger)
			next, _, err := loadServeConfig(env, args)
			m.ReloadConfig(next, err)
			notifyReady(logger, m.courseLine())
		case <-m.nameLost:
			// Two servers of one name would replay each other's
			// changes: this one, which lost it, stops.
			lostErr = errors.New("another server took this server's name on the bucket (it could not rewrite its claim within 90 s: stopped, or cut off from the store), and serves in its place: this one stops; see docs/OPERATIONS.md, \"Two servers on one bucket\"")
			logger.Error("stopping: this server's name on the bucket was taken", "error", lostErr)
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	notifyStopping(logger)
	grace := m.Config.ShutdownGrace // as the last reload left it
	logger.Info("shutting down", "grace", grace, "connections", m.srv.Conns())
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err = m.Shutdown(sctx)
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("transfers still running after the %v grace period were cut off", grace)
	}
	if lostErr != nil {
		return lostErr
	}
	return err
}

// bucketFlag parses "N/INTERVAL" (N failures, then one more per interval)
// or "off" into a throttle limit.
func bucketFlag(n *int, every *time.Duration) func(string) error {
	return func(s string) error {
		if s == "off" {
			*n = -1
			return nil
		}
		count, interval, ok := strings.Cut(s, "/")
		var v int
		d, err := time.ParseDuration(interval)
		if _, serr := fmt.Sscan(count, &v); !ok || serr != nil || v < 1 || err != nil || d <= 0 {
			return fmt.Errorf("want N/INTERVAL, such as 5/30s, or off")
		}
		*n, *every = v, d
		return nil
	}
}

// newLogger returns the server's logger, writing to w at level, which it
// sets to the level named (a reload may change it).
func newLogger(w io.Writer, lv *slog.LevelVar, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad --log-level %q: want debug, info, warn or error", level)
	}
	lv.Set(l)
	opts := &slog.HandlerOptions{Level: lv, ReplaceAttr: durationString}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("bad --log-format %q: want text or json", format)
}

// Main is the server program with every adapter built explicitly, so that
// tests run the real thing on port 0 and a temporary folder.
type Main struct {
	Config ServeConfig
	Logger *slog.Logger
	Level  *slog.LevelVar // the Logger's level, which a reload sets; nil: fixed
	Stdout io.Writer      // where --audit-sink stdout writes; nil means os.Stdout
	// Listeners are the sockets the service manager passed (socket
	// activation), by name: course, native, metrics. Open serves each
	// protocol on its socket if there is one, else listens on its
	// configured address; Close closes them.
	Listeners map[string]net.Listener

	accounts *accounts
	audit    *auditTrail // nil with --audit-sink off
	spaces   *disk.Spaces
	bucket   *s3.Backend                     // with --storage s3://…; then spaces and files are nil
	unclaim  func()                          // lets go of this server's name on the bucket
	nameLost chan struct{}                   // closed if another process took that name
	lnpLn    net.Listener                    // nil with --native-listen off
	throttle *auth.Throttle                  // the logins', which a reload changes
	identity *tlsconf.Identity               // nil in plaintext
	cert     atomic.Pointer[tls.Certificate] // the identity's, served to new connections
	stopOnce sync.Once                       // records server.stop and closes the audit trail
	files    *disk.Store
	filesDir string // the served folder, "" with --storage s3://…
	srv      *server.Server
	ln       net.Listener

	// The goroutine that looks at the pepper file every second; see
	// watchPeppers.
	stopPeppers chan struct{}
	peppersDone chan struct{}

	metrics     *http.Server // nil without --metrics-listen
	metricsLn   net.Listener
	metricsDone chan error // the metrics server's Serve result
}

// Open validates the configuration, opens the database and the served
// folder, and starts listening.
func (m *Main) Open(ctx context.Context) (err error) {
	cfg := &m.Config
	if m.Logger == nil {
		m.Logger = slog.Default()
	}
	// Before anything is created: a refused configuration leaves no trace.
	if err := cfg.validate(); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()

	bucket, _ := cfg.bucket() // validate checked it
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data folder: %w", err)
	}
	if bucket.Bucket != "" {
		if m.bucket, err = s3.New(ctx, bucket); err != nil {
			return fmt.Errorf("storage: %w", err)
		}
	} else {
		// The configuration keeps "" for the default, as the file does,
		// so that a reload sees no change in it.
		m.filesDir = cfg.FilesDir
		def := filepath.Join(cfg.DataDir, "files")
		if m.filesDir == "" || filepath.Clean(m.filesDir) == def {
			// The default is made at the first start, given or not
			// (dist/larder.toml names it); another folder must exist, so
			// that a mistyped path is not served empty.
			m.filesDir = cmp.Or(m.filesDir, def)
			if err := os.MkdirAll(m.filesDir, 0o750); err != nil {
				return fmt.Errorf("served folder: %w", err)
			}
		}
		if m.files, err = disk.Open(m.filesDir); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("the served folder %s does not exist: create it, or leave files unset to serve %s, which larder makes", m.filesDir, def)
			}
			return fmt.Errorf("served folder: %w", err)
		}
	}
	if m.accounts, err = openServerAccounts(ctx, &cfg.AccountConfig, m.Logger); err != nil {
		return err
	}
	m.accounts.hasher.SetLogger(m.Logger)
	m.watchPeppers()
	if !cfg.Hash.MeetsOWASPMinimum() {
		m.Logger.Warn("password-hash parameters are below OWASP's minimum: new hashes are weaker than OWASP advises (stored ones are never lowered); for tests only",
			"params", cfg.Hash.String(), "owasp_minimum", auth.DefaultParams.String())
	}
	m.throttle = auth.NewThrottle(cfg.Throttle)
	authn := auth.New(m.accounts.store, m.accounts.hasher,
		auth.NewCache(cfg.AuthCacheTTL, cfg.AuthCacheEntries), m.throttle)
	authn.Logger = m.Logger
	authn.Devices, authn.DeviceLifetime = m.accounts.db.devices(), cfg.DeviceLifetime
	mockKey, err := lnpMockKey(ctx, m.accounts.db)
	if err != nil {
		return err
	}
	authn.SetMockKey(mockKey)
	lim := cfg.limits() // as a reload sets them
	m.srv = &server.Server{
		Auth:                 authn,
		Logger:               m.Logger,
		MaxConns:             lim.MaxConns,
		MaxConnsPerAddress:   lim.MaxConnsPerAddress,
		MaxSessionsPerUser:   lim.MaxSessionsPerUser,
		AuditUnauthBurst:     lim.AuditUnauthBurst,
		AuditUnauthEvery:     lim.AuditUnauthEvery,
		RequestTimeout:       lim.RequestTimeout,
		WriteTimeout:         lim.WriteTimeout,
		ClosedRegistration:   cfg.Registration == "closed",
		CloseSignatureLogins: cfg.SignatureLogins == "closed",
		ShuffleBlocks:        cfg.ShuffleBlocks,
		MaxTransfersPerUser:  lim.MaxTransfersPerUser,
		IdleTimeout:          lim.IdleTimeout,
		Name:                 serverVersion(),
	}
	// No TCP keepalive probes: every connection carries one request under
	// read and write deadlines, so the probes would find nothing the
	// deadlines do not, and setting them costs a syscall per accept.
	lc := net.ListenConfig{KeepAlive: -1}
	if cfg.Listen != "off" {
		if m.ln, err = m.listen(ctx, lc, "course", cfg.Listen); err != nil {
			return err
		}
	}
	if err := m.openLNP(ctx, lc); err != nil {
		return err
	}
	if m.srv.Files == nil {
		// Without LNP/1 the files service has the served folder alone:
		// no spaces and no records, so nothing to write or to recover.
		var b files.Backend = files.NewLocal(m.files, nil)
		if m.bucket != nil {
			b = m.bucket
		}
		if m.srv.Files, err = files.New(files.Config{Backend: b, Logger: m.Logger}); err != nil {
			return fmt.Errorf("served folder: %w", err)
		}
	}
	// Opened once the address is known, since it names this server in
	// the trail; before Serve, so no request goes unrecorded.
	stdout := m.Stdout
	if stdout == nil {
		stdout = os.Stdout
	}
	if m.audit, err = openAuditTrail(ctx, &cfg.Audit, cfg.DataDir, m.accounts.db, stdout, serverName(m.firstAddr().String()), m.Logger); err != nil {
		return err
	}
	m.srv.Audit, authn.Audit = m.audit.recorder(), m.audit.recorder()
	m.audit.Record(ctx, larder.Event{Kind: larder.EventServerStart, Reason: m.startReason()})
	if cfg.MetricsListen != "" || m.Listeners["metrics"] != nil {
		if m.metricsLn, err = m.listen(ctx, lc, "metrics", cfg.MetricsListen); err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
		build := version.Read()
		mc := metrics.Config{
			Build:     &build,
			Server:    m.srv.Stats,
			Auth:      authn.Stats,
			Logger:    m.Logger,
			Profiling: cfg.Profiling,
		}
		if m.audit != nil {
			mc.Audit = m.audit.stats
		}
		if m.bucket != nil {
			// Without its store the server can serve no file: a load
			// balancer should send its clients elsewhere.
			mc.Checks = append(mc.Checks, metrics.Check{Name: "file store", Func: m.bucket.Check})
			mc.Storage = m.bucket.Stats
		}
		h := metrics.NewHandler(mc)
		// Served from now on: /healthz says "not listening" until Serve.
		m.metrics = metrics.NewHTTPServer(h, m.Logger)
		m.metricsDone = make(chan error, 1)
		go func() {
			err := m.metrics.Serve(m.metricsLn)
			if !errors.Is(err, http.ErrServerClosed) {
				m.Logger.Error("metrics listener failed", "error", err)
			}
			m.metricsDone <- err
		}()
	}
	return nil
}

// pepperLookInterval is how often the server looks whether its pepper file
// changed, so that logins answered from the verification cache, which
// compute no hash, follow a rotation too (the others look before each
// hash).
const pepperLookInterval = time.Second

// watchPeppers starts the goroutine that looks at the pepper file every
// pepperLookInterval, until Close.
func (m *Main) watchPeppers() {
	m.stopPeppers, m.peppersDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(m.peppersDone)
		t := time.NewTicker(pepperLookInterval)
		defer t.Stop()
		for {
			select {
			case <-m.stopPeppers:
				return
			case <-t.C:
				m.accounts.hasher.RefreshPeppers()
			}
		}
	}()
}

// Reload reloads, on SIGHUP, the pepper file, so that a rotation takes
// effect without a restart, and a jsonl: audit file, which log rotation
// moved away (Reopen); ReloadConfig calls it, then applies what changed
// in the configuration. It never stops the server.
func (m *Main) Reload() {
	m.Reopen()
	before := m.accounts.hasher.Peppers()
	err := m.accounts.hasher.ReloadPeppers()
	if err != nil {
		m.Logger.Error("SIGHUP: the pepper file could not be reloaded; the server goes on with the peppers it has",
			"peppers", before, "error", err)
	} else {
		m.Logger.Info("SIGHUP: pepper file reloaded", "peppers", m.accounts.hasher.Peppers())
	}
}

// startReason sums up the settings an auditor would want to know.
func (m *Main) startReason() string {
	c := &m.Config
	return fmt.Sprintf("%s; registration %s; max-conns %d; hash %s; pepper %s; audit sync %s, full %s",
		serverVersion(), c.Registration, c.MaxConns, c.Hash.String(), m.accounts.peppers.Current().ID, c.Audit.Sync, c.Audit.Full)
}

// auditWhere says where the audit trail goes.
func (m *Main) auditWhere() string {
	if m.audit == nil {
		return "nowhere (--audit-sink off)"
	}
	return m.audit.sink.where
}

// stopAudit records server.stop and closes the audit trail, giving the
// sink up to drain to take what is spooled. It runs once.
func (m *Main) stopAudit(how string, drain time.Duration) {
	m.stopOnce.Do(func() {
		if m.audit == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), drain)
		defer cancel()
		m.audit.Record(ctx, larder.Event{Kind: larder.EventServerStop, Reason: how})
		if err := m.audit.Close(ctx); err != nil {
			st := m.audit.log.Stats()
			m.Logger.Warn("audit trail: the sink did not take every event before the drain timeout; the rest waits in the spool for the next start",
				"drain_timeout", drain, "spool_bytes", st.SpoolBytes, "sink_up", st.SinkUp, "last_error", st.LastDeliveryErr)
		}
	})
}

// Addr returns the address of the course protocol, or nil with --listen
// off.
func (m *Main) Addr() net.Addr {
	if m.ln == nil {
		return nil
	}
	return m.ln.Addr()
}

// firstAddr returns the course protocol's address, else the native one's.
func (m *Main) firstAddr() net.Addr {
	if m.ln != nil {
		return m.ln.Addr()
	}
	return m.lnpLn.Addr()
}

// MetricsAddr returns the address of the metrics listener, or nil without
// one.
func (m *Main) MetricsAddr() net.Addr {
	if m.metricsLn == nil {
		return nil
	}
	return m.metricsLn.Addr()
}

// FilesDir returns the served folder ("" with --storage s3://…).
func (m *Main) FilesDir() string { return m.filesDir }

// serving names what is served: the served folder, or the bucket.
func (m *Main) serving() string {
	if m.bucket != nil {
		return m.Config.Storage
	}
	return m.filesDir
}

// Serve serves until Shutdown or Close; it then returns nil.
func (m *Main) Serve() error {
	errs := make(chan error, 2)
	n := 0
	if m.ln != nil {
		n++
		go func() { errs <- m.srv.Serve(m.ln) }()
	}
	if m.lnpLn != nil {
		n++
		go func() { errs <- m.srv.ServeLNP(m.lnpLn) }()
	}
	var first error
	for range n {
		if err := <-errs; !errors.Is(err, server.ErrServerClosed) && first == nil {
			first = err
			m.srv.Close() // the other listener goes too
		}
	}
	return first
}

// Shutdown stops accepting and waits for the transfers in flight, until
// ctx ends. The metrics listener stops last, so that /healthz answers 503
// through the whole drain and the last scrapes see it.
func (m *Main) Shutdown(ctx context.Context) error {
	err := m.srv.Shutdown(ctx)
	// Connections record their last events before they end; what
	// Shutdown cut short records them as Close ends it.
	if err == nil {
		m.stopAudit("shutdown", m.Config.Audit.DrainTimeout)
	}
	if m.metrics != nil {
		if merr := m.metrics.Shutdown(ctx); err == nil {
			err = merr
		}
	}
	return err
}

// Close stops the server at once, gives the audit trail up to its drain
// timeout to write and deliver what is queued, and closes the database and
// the served folder. It is safe to call after a partial Open.
func (m *Main) Close() error {
	var errs []error
	if m.srv != nil {
		errs = append(errs, m.srv.Close())
		m.srv.Wait()
	}
	// What is queued is written to the spool, and the sink is given the
	// drain timeout still; what it has not taken waits in the spool for
	// the next start.
	m.stopAudit("closed", m.Config.Audit.DrainTimeout)
	if m.metrics != nil {
		errs = append(errs, m.metrics.Close())
		if err := <-m.metricsDone; !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
		m.metrics = nil // Close may be called again
	}
	if m.ln != nil {
		if err := m.ln.Close(); !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if m.lnpLn != nil {
		if err := m.lnpLn.Close(); !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	for _, ln := range m.Listeners {
		ln.Close() // those Open did not get to; the others are closed
	}
	if m.spaces != nil {
		errs = append(errs, m.spaces.Close())
	}
	if m.unclaim != nil {
		m.unclaim()
	}
	if m.stopPeppers != nil {
		close(m.stopPeppers)
		<-m.peppersDone
		m.stopPeppers = nil // Close may be called again
	}
	errs = append(errs, m.accounts.Close())
	if m.files != nil {
		errs = append(errs, m.files.Close())
	}
	return errors.Join(errs...)
}

// noLimit maps a flag's 0, no limit, to the server's -1.
func noLimit(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// openLNP opens the users' spaces, the TLS identity and the native
// protocol's listener, unless --native-listen is off.
func (m *Main) openLNP(ctx context.Context, lc net.ListenConfig) (err error) {
	cfg := &m.Config
	if cfg.LNPListen == "off" {
		return nil
	}
	fc := files.Config{
		Backend:  m.bucket,
		Records:  m.accounts.db.files(),
		Accounts: m.accounts.store,
		Quota:    cfg.Quota,
		Logger:   m.Logger,
	}
	if m.bucket == nil {
		if m.spaces, err = disk.OpenSpaces(filepath.Join(cfg.DataDir, "spaces")); err != nil {
			return fmt.Errorf("users' spaces: %w", err)
		}
		if err := m.adoptSpaces(ctx); err != nil {
			return fmt.Errorf("users' spaces: %w", err)
		}
		fc.Backend = files.NewLocal(m.files, m.spaces)
		// Uploads on a bucket take no space of this machine's disks.
		fc.Reserve = disk.NewReserve(cfg.MinFree, filepath.Join(cfg.DataDir, "spaces"), cfg.reservedDirs()...)
	} else {
		// Servers sharing a bucket each replay their own changes: a
		// name is one server's only while it runs.
		if fc.Owner, err = serverID(cfg.DataDir); err != nil {
			return fmt.Errorf("users' files: this server's name: %w", err)
		}
		lost := make(chan struct{})
		m.nameLost = lost
		if m.unclaim, err = m.bucket.Claim(fc.Owner, func() { close(lost) }); err != nil {
			return fmt.Errorf("users' files: %w", err)
		}
	}
	if cfg.wrapBackend != nil {
		fc.Backend = cfg.wrapBackend(fc.Backend)
	}
	svc, err := files.New(fc)
	if err != nil {
		return fmt.Errorf("users' files: %w", err)
	}
	// Before anything is served: the changes a stop interrupted are
	// finished, so that records and files agree.
	n, err := svc.Recover(ctx)
	if err != nil {
		return fmt.Errorf("users' files: finish the changes interrupted at the last stop: %w", err)
	}
	if n > 0 {
		m.Logger.Info("finished the changes to files interrupted at the last stop", "count", n)
	}
	m.srv.Files = svc
	if m.bucket != nil && m.accounts.db.pg != nil {
		// Other servers may share the bucket: a tree's removal in one
		// request is fenced from this server's own uploads only.
		m.srv.WithheldFeatures = lnp.FeatureTreeDelete
	}
	if !cfg.InsecurePlaintextLNP {
		if cfg.TLSCert != "" {
			m.identity, err = tlsconf.LoadFiles(cfg.TLSCert, cfg.TLSKey)
		} else {
			m.identity, err = tlsconf.LoadOrCreate(filepath.Join(cfg.DataDir, "tls"))
		}
		if err != nil {
			return err
		}
	}
	ln, err := m.listen(ctx, lc, "native", cfg.LNPListen)
	if err != nil {
		return fmt.Errorf("native protocol: %w", err)
	}
	if m.identity != nil {
		ln = tlsconf.NewListener(ln, m.tlsConfig())
	}
	m.lnpLn = ln
	return nil
}

// LNPAddr returns the native protocol's address, or nil without it.
func (m *Main) LNPAddr() net.Addr {
	if m.lnpLn == nil {
		return nil
	}
	return m.lnpLn.Addr()
}

// courseLine says where the course protocol is served, and what.
func (m *Main) courseLine() string {
	if m.ln == nil {
		return fmt.Sprintf("serving %s over the native protocol only (--listen off)", m.serving())
	}
	return fmt.Sprintf("serving %s on %s", m.serving(), m.Addr())
}

// lnpLine says where and how the native protocol is served.
func (m *Main) lnpLine() string {
	switch {
	case m.lnpLn == nil:
		return "native protocol off"
	case m.identity == nil:
		return fmt.Sprintf("native protocol on %s IN PLAINTEXT (--insecure-plaintext-native)", m.LNPAddr())
	}
	how := "self-signed certificate"
	if m.identity.Created {
		how = "new self-signed certificate"
	}
	if m.Config.TLSCert != "" {
		how = "certificate " + m.Config.TLSCert
	}
	return fmt.Sprintf("native protocol (LNP/1, TLS 1.3) on %s, %s %s", m.LNPAddr(), how, m.identity.Fingerprint)
}

// startCPUProfile starts Go's CPU profiler writing to path; stop ends the
// profile and closes the file.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
