package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"

	"github.com/larderfs/larder/internal/version"
)

// durationString writes a duration attribute as a Go duration string
// ("1.5ms", "30s"), in both log formats: slog's JSON handler would write a
// bare count of nanoseconds, which no one reads at a glance.
func durationString(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// loggedError is an error that the command has logged as a record
// already, so that main does not print it again: with --log-format json,
// standard error holds JSON records only.
type loggedError struct{ err error }

func (e *loggedError) Error() string { return e.err.Error() }
func (e *loggedError) Unwrap() error { return e.err }

// logFailure logs err, the error that ends a command which logs in
// format, as an error record if format is json, and returns it marked so;
// in text it leaves err to main, which prints it as every command's.
func logFailure(logger *slog.Logger, format, msg string, err error) error {
	if err == nil || format != "json" || errors.Is(err, flag.ErrHelp) {
		return err
	}
	logger.Error(msg, "error", err.Error())
	return &loggedError{err}
}

// announce says where the server serves, once it listens: in plain lines
// for a person with --log-format text, and as one record with
// --log-format json, so that every line is JSON from the first.
func (m *Main) announce(w io.Writer) {
	build := version.Read().String()
	if m.Config.LogFormat != "json" {
		fmt.Fprintf(w, "larder: version %s\n", build)
		fmt.Fprintf(w, "larder: %s (accounts in %s, pepper %s, audit trail to %s)\n",
			m.courseLine(), m.accounts.where, m.accounts.peppers.Current().ID, m.auditWhere())
		fmt.Fprintf(w, "larder: %s\n", m.lnpLine())
		if m.metricsLn != nil {
			fmt.Fprintf(w, "larder: metrics at http://%s/metrics, health at /healthz\n", m.MetricsAddr())
		}
		return
	}
	attrs := []slog.Attr{
		slog.String("version", build),
		slog.String("files", m.serving()),
		slog.String("course", addrOrOff(m.Addr())),
		slog.String("native", addrOrOff(m.LNPAddr())),
	}
	switch {
	case m.lnpLn == nil:
	case m.identity == nil:
		attrs = append(attrs, slog.String("native_tls", "off (--insecure-plaintext-native)"))
	default:
		how := "self-signed"
		if m.identity.Created {
			how = "self-signed, new"
		}
		if m.Config.TLSCert != "" {
			how = m.Config.TLSCert
		}
		attrs = append(attrs, slog.String("native_tls", how), slog.String("fingerprint", m.identity.Fingerprint))
	}
	attrs = append(attrs,
		slog.String("accounts", m.accounts.where),
		slog.String("pepper", m.accounts.peppers.Current().ID),
		slog.String("audit", m.auditWhere()))
	if m.metricsLn != nil {
		attrs = append(attrs, slog.String("metrics", "http://"+m.MetricsAddr().String()+"/metrics"))
	}
	m.Logger.LogAttrs(context.Background(), slog.LevelInfo, "serving", attrs...)
}

// addrOrOff returns a's address, or "off" for none.
func addrOrOff(a net.Addr) string {
	if a == nil {
		return "off"
	}
	return a.String()
}
