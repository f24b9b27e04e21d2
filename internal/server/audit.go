package server

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/auth"
	"github.com/larderfs/larder/lnp"
)

// The events a course-protocol connection leaves in the audit trail, in
// order:
//
//   - register, granted or refused, before the reply is sent (so that
//     a sync kind is durable before the client hears of it);
//   - login, login.failed or throttled, as the password check ends;
//   - download once every block of the file but the last is sent, before
//     the last one (courseHandler.recordDownload), or refused, before the reply,
//     for a request answered with an error;
//   - conn.close, with its life's Duration and a reason, only for a
//     connection that ended without those (closed without a request, an
//     internal error, a reset before the reply, a reply cut short after
//     its download event).
//
// A connection turned away at the limit leaves one refused event. An
// LNP/1 session, which carries many requests, is framed by conn.open and
// conn.close (see lnp.go).

// record hands ev to the audit trail, if there is one. An event that could
// not be made durable (only events of sync kinds report that) is logged
// whole at error level, so that it is at least in the log; the request is
// answered all the same, since what it did is done. The error is returned
// for the one caller that can still hold back what the event records: a
// download before its last block (courseHandler.recordDownload).
//
// An event of a connection that has not logged in, or a refusal at a
// limit, is recorded only within its address's allowance (see
// unauthenticated.go); beyond it, it is counted and summed up later in one
// audit.suppressed event.
func (s *Server) record(ctx context.Context, ev larder.Event) error {
	if s.Audit == nil {
		return nil
	}
	if bounded(&ev) && !s.unauth.allow(s, &ev) {
		return nil
	}
	return s.store(ctx, ev)
}

// store hands ev to the audit trail, logging it if that fails.
func (s *Server) store(ctx context.Context, ev larder.Event) error {
	err := s.Audit.Record(ctx, ev)
	if err != nil {
		s.logger().Error("audit event not recorded", "kind", ev.Kind, "user", ev.User, "remote", ev.Remote,
			"path", ev.Path, "status", ev.Status, "reason", ev.Reason, "error", err)
	}
	return err
}

// event returns an event of kind about ex's request.
func (ex *exchange) event(kind larder.EventKind) larder.Event {
	return larder.Event{Kind: kind, User: ex.user, Remote: ex.remote, Path: ex.shownPath(), Status: int(ex.status)}
}

// shownPath is the path of ex's request in its canonical form, for events
// and the log: "" if the request names none (a registration).
func (ex *exchange) shownPath() string {
	if ex.op != OpRetrieve {
		return ""
	}
	return coursePath(ex.path)
}

// Paths in events and in the log have one form, whichever protocol the
// request came by and however the client spelled it: larder.EventPath's,
// absolute in the namespace LNP/1 shows a user, that is "/d1/x.txt" for a
// file of the user's own space and "/shared/hello.txt" for one of the
// served folder (the only folder the course protocol reaches).

// lnpPath returns the canonical form of p, a path of an LNP/1 request.
func lnpPath(p string) string { return larder.EventPath(p) }

// coursePath returns the canonical form of p, a path of a course-protocol
// request (relative to the served folder, its leading "/" removed).
func coursePath(p string) string { return larder.EventPath("/" + sharedName + "/" + p) }

// recordLogin records the outcome of a check of a credential that took d
// and ended in err; ev is the login event of the request (its user and
// remote), and cred names the credential checked, for the reason of a
// failure ("wrong " + cred).
func (s *Server) recordLogin(ctx context.Context, ev larder.Event, cred credential, err error, d time.Duration) {
	ev.Kind, ev.Status, ev.Duration = larder.EventLogin, 0, d
	switch code := larder.ErrorCode(err); {
	case code == "":
	case code == larder.ETHROTTLED:
		ev.Kind, ev.Reason = larder.EventThrottled, larder.ErrorMessage(err)
	case code == larder.ENOTFOUND:
		ev.Kind, ev.Reason = larder.EventLoginFailed, "unknown user"
	case code == larder.EDISABLED:
		ev.Kind, ev.Reason = larder.EventLoginFailed, "account disabled"
	case errors.Is(err, auth.ErrLNPOnly):
		ev.Kind, ev.Reason = larder.EventLoginFailed, "no course password (LNP/1 only)"
	case code == larder.EUNAUTHORIZED:
		ev.Kind, ev.Reason = larder.EventLoginFailed, "wrong "+string(cred)
	default: // the server's trouble (a full hash pool, the database): no verdict on the client
		ev.Kind, ev.Reason = larder.EventLoginFailed, "not checked: "+larder.ErrorMessage(err)
	}
	s.record(ctx, ev)
}

// credential names what a login proves, for the reason its failure is
// recorded with.
type credential string

const (
	credSignature credential = "signature"     // the course signature
	credPassword  credential = "password"      // LNP/1's channel-bound proof of the password
	credDevice    credential = "device secret" // LNP/1's proof of a device credential
)

// recordOutcome records what the reply to ex did, unless handling recorded
// it already (registrations and failed logins).
func (s *Server) recordOutcome(ctx context.Context, ex *exchange, d time.Duration) {
	var ev larder.Event
	switch {
	case ex.file != nil:
		if ex.recorded {
			return
		}
		ev = ex.event(larder.EventDownload)
		ev.Bytes, ev.SHA256 = ex.bytes, ex.sum
		if ex.err != nil {
			ev.Reason = "interrupted: " + ex.err.Error()
		}
	case ex.refused:
		ev = ex.event(larder.EventRefused)
		ev.Reason = ex.msg
		if ex.status == 0 && ex.err != nil {
			ev.Reason = ex.err.Error()
		}
	default:
		return
	}
	ev.Duration = d
	s.record(ctx, ev)
}

// logRequest writes the log line of one LNP/1 request, with the fields of
// the course protocol's (see conn.log): ev is the event the request
// recorded, op its type, d its duration. A failure of the server's own,
// or a transfer cut off, is logged at warn level, the rest at info.
func (ss *session) logRequest(op string, ev *larder.Event, d time.Duration) {
	level := slog.LevelInfo
	if lnp.Status(ev.Status) == lnp.StatusOther {
		level = slog.LevelWarn
	}
	l := ss.s.logger()
	if !l.Enabled(context.Background(), level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("remote", ss.c.remote),
		slog.String("protocol", "LNP/1"),
		slog.String("op", op),
		slog.String("user", ev.User),
		slog.String("path", ev.Path),
		slog.Int("status", ev.Status),
		slog.Int64("bytes", ev.Bytes),
		slog.Duration("duration", d),
	}
	if ev.Reason != "" {
		attrs = append(attrs, slog.String("reason", ev.Reason))
	}
	if err := ss.lastErr; err != nil && err.Error() != ev.Reason {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	l.LogAttrs(context.Background(), level, "request", attrs...)
}
