package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/auth"
	"github.com/larderfs/larder/internal/server"
	"github.com/larderfs/larder/internal/tlsconf"
)

// What a SIGHUP reloads without a restart: the settings of reloaders
// (the log level, registration and signature logins, the throttles, the
// quotas, the limits and timeouts, the hash policy and concurrency, the
// device lifetime, shuffled replies, the shutdown grace),
// the TLS certificate and the pepper file, and a jsonl: audit file
// (reopened, as logrotate wants). A change to any other setting is
// reported as needing a restart and left as it runs. A configuration that
// does not load or validate, or any of whose changes cannot apply (a
// weaker hash policy without hash-lower-policy, a certificate that does
// not load), is refused whole, and the running one kept: an edit is
// applied all or nothing, never half.
// Either way the log and the audit trail (server.reload) say what
// happened.

// loadServeConfig reads larder serve's configuration as at start: the
// defaults, the configuration file, the environment, and args, the
// command line, which keeps overriding both.
func loadServeConfig(env *Env, args []string) (ServeConfig, *flag.FlagSet, error) {
	cfg := defaultServeConfig(env.Getenv)
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	cfg.define(fs)
	defineConfig(fs, env)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: larder serve [flags]\n\n"+
			"Serves the files of a folder over the course protocol, to registered users.\n"+
			"Its settings come from these flags, else LARDER_… variables, else the\n"+
			"configuration file (--config; 'larder config check' checks one).\n"+
			"SIGINT or SIGTERM stops it gracefully; a second one stops it at once.\n"+
			"SIGHUP reloads the configuration file (the log level, the TLS certificate,\n"+
			"the pepper file, the hash policy, registration, throttles, quotas, limits and\n"+
			"timeouts; 'larder config show' marks the settings that need a restart) and\n"+
			"reopens a jsonl: audit file; it never stops the server or a connection.\n"+
			"Under systemd socket activation, the sockets named course, native and metrics\n"+
			"(FileDescriptorName=) replace --listen, --native-listen and --metrics-listen.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if _, err := parseFlags(fs, args); err != nil {
		return cfg, fs, err
	}
	if fs.NArg() > 0 {
		return cfg, fs, usageError("serve takes no arguments, got %q", fs.Args())
	}
	return cfg, fs, cfg.validate()
}

// ReloadConfig applies next, the configuration read again at a SIGHUP
// (or err, why it could not be), to the running server.
func (m *Main) ReloadConfig(next ServeConfig, err error) {
	m.Reload()
	ctx := context.Background()
	if err != nil {
		m.Logger.Error("SIGHUP: the configuration was not reloaded; the server goes on with the running one", "error", err)
		m.recordReload(ctx, 1, "refused: "+err.Error())
		return
	}
	var id *tlsconf.Identity
	if m.identity != nil && m.Config.LNPListen == next.LNPListen {
		if id, err = m.loadCertificate(next); err != nil {
			err = fmt.Errorf("TLS certificate: %w", err)
		}
	}
	if err == nil {
		err = m.checkChanges(ctx, next)
	}
	if err != nil {
		m.Logger.Error("SIGHUP: the configuration was not applied, none of it; the server goes on with the running one", "error", err)
		m.recordReload(ctx, 1, "refused, nothing applied: "+err.Error())
		return
	}
	done, failed, restart := m.applyChanges(ctx, next)
	if id != nil && m.useCertificate(id, next) {
		done = append(done, "TLS certificate "+id.Fingerprint)
	}
	if len(restart) > 0 {
		m.Logger.Warn("SIGHUP: these settings changed, and take effect at the next restart", "settings", restart)
	}
	if len(failed) > 0 {
		m.Logger.Error("SIGHUP: part of the configuration could not be applied; the running one is kept for it", "errors", failed)
	}
	m.Logger.Info("SIGHUP: configuration reloaded", "applied", done, "needs_restart", restart)
	reason := "applied: " + listOrNone(done) + "; needs a restart: " + listOrNone(restart)
	status := 0
	if len(failed) > 0 {
		reason += "; failed: " + strings.Join(failed, "; ")
		status = 1
	}
	m.recordReload(ctx, status, reason)
}

// reloader applies, while serving, the settings named by keys, which
// change together: check, if not nil, says whether next's values can
// apply, changing nothing; apply takes them from next into the running
// server and m.Config, or returns why it could not (and changes
// nothing): a failure check could not foresee, as of a database.
type reloader struct {
	keys  []string
	apply func(m *Main, ctx context.Context, next *ServeConfig) error
	check func(m *Main, ctx context.Context, next *ServeConfig) error
}

// limitKeys are the settings of server.Limits.
var limitKeys = []string{"max-conns", "max-conns-per-address", "max-sessions-per-user", "max-transfers-per-user",
	"request-timeout", "write-timeout", "native-idle-timeout", "audit-unauthenticated"}

// reloaders are the settings a SIGHUP applies; every other one (see
// reloadable) waits for a restart.
var reloaders = []reloader{
	{[]string{"log-level"}, (*Main).reloadLogLevel, (*Main).checkLogLevel},
	{[]string{"registration", "native-signature-logins"}, func(m *Main, _ context.Context, next *ServeConfig) error {
		c := &m.Config
		c.Registration, c.SignatureLogins = next.Registration, next.SignatureLogins
		m.srv.SetLoginPolicy(c.Registration == "closed", c.SignatureLogins == "closed")
		return nil
	}, nil},
	{[]string{"throttle-pair", "throttle-address", "throttle-account", "throttle-delay"}, func(m *Main, _ context.Context, next *ServeConfig) error {
		m.Config.Throttle = next.Throttle
		m.throttle.SetLimits(next.Throttle)
		return nil
	}, nil},
	{[]string{"quota-bytes", "quota-files"}, func(m *Main, _ context.Context, next *ServeConfig) error {
		m.Config.Quota = next.Quota
		m.srv.Files.SetQuota(next.Quota)
		return nil
	}, nil},
	{limitKeys, func(m *Main, _ context.Context, next *ServeConfig) error {
		c := &m.Config
		c.MaxConns, c.MaxConnsPerAddress, c.MaxSessionsPerUser, c.MaxTransfersPerUser =
			next.MaxConns, next.MaxConnsPerAddress, next.MaxSessionsPerUser, next.MaxTransfersPerUser
		c.RequestTimeout, c.WriteTimeout, c.LNPIdleTimeout = next.RequestTimeout, next.WriteTimeout, next.LNPIdleTimeout
		c.AuditUnauthBurst, c.AuditUnauthEvery = next.AuditUnauthBurst, next.AuditUnauthEvery
		m.srv.SetLimits(c.limits())
		return nil
	}, nil},
	{[]string{"hash-memory", "hash-passes", "hash-lanes", "hash-lower-policy"}, (*Main).reloadHashPolicy, (*Main).checkHashPolicy},
	{[]string{"hash-concurrency"}, func(m *Main, _ context.Context, next *ServeConfig) error {
		m.Config.HashConcurrency = next.HashConcurrency
		m.accounts.hasher.SetConcurrency(next.HashConcurrency)
		return nil
	}, nil},
	{[]string{"device-lifetime"}, func(m *Main, _ context.Context, next *ServeConfig) error {
		m.Config.DeviceLifetime = next.DeviceLifetime
		m.srv.Auth.SetDeviceLifetime(next.DeviceLifetime)
		return nil
	}, nil},
	{[]string{"shuffle-blocks"}, func(m *Main, _ context.Context, next *ServeConfig) error {
		m.Config.ShuffleBlocks = next.ShuffleBlocks
		m.srv.SetShuffleBlocks(next.ShuffleBlocks)
		return nil
	}, nil},
	{[]string{"shutdown-grace"}, func(m *Main, _ context.Context, next *ServeConfig) error {
		m.Config.ShutdownGrace = next.ShutdownGrace
		return nil
	}, nil},
	{[]string{"audit-drain-timeout"}, func(m *Main, _ context.Context, next *ServeConfig) error {
		m.Config.Audit.DrainTimeout = next.Audit.DrainTimeout
		return nil
	}, nil},
}

// reloadable reports whether a SIGHUP applies the setting key (a key of
// the configuration file) to the running server; the TLS files are read
// again at every SIGHUP.
func reloadable(key string) bool {
	if key == "tls-cert" || key == "tls-key" {
		return true
	}
	for _, r := range reloaders {
		if slices.Contains(r.keys, key) {
			return true
		}
	}
	return false
}

// changedKeys returns the keys of r that changed.
func (r reloader) changedKeys(changed []string) []string {
	var keys []string
	for _, k := range changed {
		if slices.Contains(r.keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// checkChanges says why a setting of next that differs from the running
// one and a SIGHUP can change cannot apply, for each such setting, or
// returns nil if every one can.
func (m *Main) checkChanges(ctx context.Context, next ServeConfig) error {
	changed := m.Config.differences(next)
	var errs []error
	for _, r := range reloaders {
		if keys := r.changedKeys(changed); len(keys) > 0 && r.check != nil {
			if err := r.check(m, ctx, &next); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", strings.Join(keys, ", "), err))
			}
		}
	}
	return errors.Join(errs...)
}

// applyChanges applies the settings of next that differ from the running
// ones and a SIGHUP can change (checkChanges found that they can), and
// returns the keys applied, what failed and why, and the keys that need
// a restart.
func (m *Main) applyChanges(ctx context.Context, next ServeConfig) (done, failed, restart []string) {
	changed := m.Config.differences(next)
	for _, r := range reloaders {
		keys := r.changedKeys(changed)
		if len(keys) == 0 {
			continue
		}
		if err := r.apply(m, ctx, &next); err != nil {
			failed = append(failed, strings.Join(keys, ", ")+": "+err.Error())
			continue
		}
		done = append(done, keys...)
	}
	for _, k := range changed {
		if !reloadable(k) {
			restart = append(restart, k)
		}
	}
	return done, failed, restart
}

func (m *Main) checkLogLevel(_ context.Context, next *ServeConfig) error {
	var l slog.Level
	if err := l.UnmarshalText([]byte(next.LogLevel)); err != nil {
		return err // validate refused it already
	}
	if m.Level == nil {
		return errors.New("this logger's level is fixed")
	}
	return nil
}

func (m *Main) reloadLogLevel(ctx context.Context, next *ServeConfig) error {
	if err := m.checkLogLevel(ctx, next); err != nil {
		return err
	}
	var l slog.Level
	l.UnmarshalText([]byte(next.LogLevel))
	m.Level.Set(l)
	m.Config.LogLevel = next.LogLevel
	return nil
}

// checkHashPolicy refuses what reloadHashPolicy would, changing nothing.
func (m *Main) checkHashPolicy(ctx context.Context, next *ServeConfig) error {
	if err := next.Hash.Validate(); err != nil {
		return fmt.Errorf("bad password-hash parameters: %w", err)
	}
	_, _, err := checkPolicy(ctx, m.accounts.db, next.Hash, next.LowerHashPolicy)
	return err
}

// reloadHashPolicy makes next's hash policy the one new hashes use,
// recording it for the admin commands as a start does, and refusing, as a
// start does, one weaker than the recorded policy without
// hash-lower-policy.
func (m *Main) reloadHashPolicy(ctx context.Context, next *ServeConfig) error {
	p := next.Hash
	if err := p.Validate(); err != nil {
		return fmt.Errorf("bad password-hash parameters: %w", err)
	}
	if err := recordPolicy(ctx, m.accounts.db, p, next.LowerHashPolicy, m.Logger); err != nil {
		return err
	}
	if err := m.accounts.hasher.SetParams(p); err != nil {
		return err
	}
	m.Config.Hash, m.Config.LowerHashPolicy = p, next.LowerHashPolicy
	if !p.MeetsOWASPMinimum() {
		m.Logger.Warn("password-hash parameters are below OWASP's minimum: new hashes are weaker than OWASP advises (stored ones are never lowered); for tests only",
			"params", p.String(), "owasp_minimum", auth.DefaultParams.String())
	}
	return nil
}

// limits returns c's limits and timeouts for the server.
func (c *ServeConfig) limits() server.Limits {
	return server.Limits{
		MaxConns:            c.MaxConns,
		MaxConnsPerAddress:  noLimit(c.MaxConnsPerAddress),
		MaxSessionsPerUser:  noLimit(c.MaxSessionsPerUser),
		MaxTransfersPerUser: c.MaxTransfersPerUser,
		RequestTimeout:      c.RequestTimeout,
		WriteTimeout:        c.WriteTimeout,
		IdleTimeout:         c.LNPIdleTimeout,
		AuditUnauthBurst:    c.AuditUnauthBurst,
		AuditUnauthEvery:    c.AuditUnauthEvery,
	}
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func (m *Main) recordReload(ctx context.Context, status int, reason string) {
	if m.audit != nil {
		m.audit.Record(ctx, larder.Event{Kind: larder.EventServerReload, Status: status, Reason: reason})
	}
}

// loadCertificate reads the TLS certificate and key again (--tls-cert
// and --tls-key, or the self-signed pair in the data folder).
func (m *Main) loadCertificate(next ServeConfig) (*tlsconf.Identity, error) {
	if next.TLSCert != "" {
		return tlsconf.LoadFiles(next.TLSCert, next.TLSKey)
	}
	return tlsconf.LoadOrCreate(filepath.Join(m.Config.DataDir, "tls"))
}

// useCertificate serves id, loaded by loadCertificate, to the next
// handshakes; sessions already open keep theirs. It reports whether the
// certificate changed.
func (m *Main) useCertificate(id *tlsconf.Identity, next ServeConfig) bool {
	if id.Fingerprint == m.identity.Fingerprint {
		return false
	}
	m.cert.Store(&id.Certificate)
	m.identity = id
	m.Config.TLSCert, m.Config.TLSKey = next.TLSCert, next.TLSKey
	return true
}

// tlsConfig is the native protocol's TLS configuration: the identity's,
// with the certificate taken at each handshake, so that a reload
// changes it for new connections.
func (m *Main) tlsConfig() *tls.Config {
	m.cert.Store(&m.identity.Certificate)
	c := m.identity.ServerConfig()
	c.Certificates = nil
	c.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return m.cert.Load(), nil }
	return c
}

// differences names the settings, by their flags, whose values differ
// between c and next, but the TLS files, which a reload reads anew
// whether their names changed or not.
func (c ServeConfig) differences(next ServeConfig) []string {
	a, b := flagValues(c), flagValues(next)
	var names []string
	for name, v := range a {
		if b[name] != v && name != "tls-cert" && name != "tls-key" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// flagValues returns c's settings by flag name, compared by value: each
// flag's variable, read from the field it points into.
func flagValues(c ServeConfig) map[string]string {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c.define(fs)
	vals := map[string]string{}
	// Each flag's value, not its default: define gives some flags a
	// default of their own (quota-files 0, hash-lower-policy false), not
	// c's value, and a change of theirs went unseen.
	fs.VisitAll(func(f *flag.Flag) { vals[f.Name] = f.Value.String() })
	// Flags parsed by functions print no default: compare their fields.
	th := c.Throttle
	for name, v := range map[string]any{
		"hash-memory": c.Hash.Memory, "hash-passes": c.Hash.Time, "hash-lanes": c.Hash.Threads,
		"quota-bytes": c.Quota.Bytes, "min-free": c.MinFree,
		"throttle-pair":         []any{th.PairFailures, th.PairRefill},
		"throttle-address":      []any{th.AddrFailures, th.AddrRefill},
		"throttle-account":      []any{th.AccountFailures, th.AccountRefill},
		"audit-unauthenticated": []any{c.AuditUnauthBurst, c.AuditUnauthEvery},
		"audit-spool-max":       c.Audit.SpoolMax, "audit-retention": c.Audit.Retention,
	} {
		vals[name] = fmt.Sprint(v)
	}
	return vals
}
