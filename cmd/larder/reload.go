package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/tlsconf"
)

// What a SIGHUP reloads without a restart: the log level, the TLS
// certificate, the pepper file, the throttles, the quotas, whether
// registration and course-signature logins are open, and a jsonl: audit
// file (reopened, as logrotate wants). A change to any other setting is
// reported as needing a restart and left as it runs; a configuration that does not load or
// validate is refused whole, and the running one kept. Either way the
// log and the audit trail (server.reload) say what happened.

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
			"registration, throttles, quotas, the pepper file; other changes need a\n"+
			"restart) and reopens a jsonl: audit file; it never stops the server.\n\nFlags:\n")
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
	var done, failed, restart []string
	for _, key := range m.Config.differences(next) {
		if applied := m.apply(key, next); applied != "" {
			done = append(done, applied)
		} else {
			restart = append(restart, key)
		}
	}
	if m.identity != nil && m.Config.LNPListen == next.LNPListen {
		switch changed, err := m.reloadCertificate(next); {
		case err != nil:
			failed = append(failed, "TLS certificate: "+err.Error())
		case changed:
			done = append(done, "TLS certificate "+m.identity.Fingerprint)
		}
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

// apply applies the setting key of next to the running server, if it can
// change while serving, and returns what it did ("" if it cannot).
func (m *Main) apply(key string, next ServeConfig) string {
	c := &m.Config
	switch key {
	case "log-level":
		var l slog.Level
		if m.Level == nil || l.UnmarshalText([]byte(next.LogLevel)) != nil {
			return ""
		}
		m.Level.Set(l)
		c.LogLevel = next.LogLevel
	case "registration", "native-signature-logins":
		c.Registration, c.SignatureLogins = next.Registration, next.SignatureLogins
		m.srv.SetLoginPolicy(c.Registration == "closed", c.SignatureLogins == "closed")
	case "throttle-pair", "throttle-address", "throttle-account", "throttle-delay":
		c.Throttle = next.Throttle
		m.throttle.SetLimits(c.Throttle)
	case "quota-bytes", "quota-files":
		c.Quota = next.Quota
		m.srv.Files.SetQuota(c.Quota)
	default:
		return ""
	}
	return key
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

// reloadCertificate reads the TLS certificate and key again (--tls-cert
// and --tls-key, or the self-signed pair in the data folder) and serves
// them to the next handshakes; sessions already open keep theirs. It
// reports whether the certificate changed.
func (m *Main) reloadCertificate(next ServeConfig) (bool, error) {
	var id *tlsconf.Identity
	var err error
	if next.TLSCert != "" {
		id, err = tlsconf.LoadFiles(next.TLSCert, next.TLSKey)
	} else {
		id, err = tlsconf.LoadOrCreate(filepath.Join(m.Config.DataDir, "tls"))
	}
	if err != nil {
		return false, err
	}
	if id.Fingerprint == m.identity.Fingerprint {
		return false, nil
	}
	m.cert.Store(&id.Certificate)
	m.identity = id
	m.Config.TLSCert, m.Config.TLSKey = next.TLSCert, next.TLSKey
	return true, nil
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
	c.define(fs) // the flags' defaults are c's values, and print as such
	vals := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) { vals[f.Name] = f.DefValue })
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
