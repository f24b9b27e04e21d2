package server

import (
	"context"
	"errors"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/auth"
)

// The events a course-protocol connection leaves in the audit trail, in
// order:
//
//   - register, granted or refused, before the reply is sent (so that
//     a sync kind is durable before the client hears of it);
//   - login, login.failed or throttled, as the password check ends;
//   - download once every block of the file but the last is sent, before
//     the last one (conn.recordDownload), or refused, before the reply,
//     for a request answered with an error;
//   - conn.close, with its life's Duration and a reason, only for a
//     connection that ended without those (closed without a request, an
//     internal error, a reset before the reply, a reply cut short after
//     its download event).
//
// A connection turned away at the limit leaves one refused event. An
// LNP/1 session, which carries many requests, is framed by conn.open and
// conn.close (see native.go).

// record hands ev to the audit trail, if there is one. An event that could
// not be made durable (only events of sync kinds report that) is logged
// whole at error level, so that it is at least in the log; the request is
// answered all the same, since what it did is done. The error is returned
// for the one caller that can still hold back what the event records: a
// download before its last block (conn.recordDownload).
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
	return larder.Event{Kind: kind, User: ex.user, Remote: ex.remote, Path: ex.path, Status: int(ex.status)}
}

// recordLogin records the outcome of a password check that took d and
// ended in err.
func (s *Server) recordLogin(ctx context.Context, ex *exchange, err error, d time.Duration) {
	ev := ex.event(larder.EventLogin)
	ev.Status, ev.Duration = 0, d
	switch code := larder.ErrorCode(err); {
	case code == "":
	case code == larder.ETHROTTLED:
		ev.Kind, ev.Reason = larder.EventThrottled, larder.ErrorMessage(err)
	case code == larder.ENOTFOUND:
		ev.Kind, ev.Reason = larder.EventLoginFailed, "unknown user"
	case errors.Is(err, auth.ErrDisabled):
		ev.Kind, ev.Reason = larder.EventLoginFailed, "account disabled"
	case code == larder.EUNAUTHORIZED:
		ev.Kind, ev.Reason = larder.EventLoginFailed, "wrong signature"
	default: // the server's trouble (a full hash pool, the database): no verdict on the client
		ev.Kind, ev.Reason = larder.EventLoginFailed, "not checked: "+larder.ErrorMessage(err)
	}
	s.record(ctx, ev)
}

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
