package server

import (
	"context"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/lnp"
)

// accountCheckEvery is how often a transfer in flight, and the watch over
// sessions and course replies (watchAccounts), check that the account is
// still there and enabled. On
// SQLite a check costs a read of the account stamp while no account
// changed; on PostgreSQL one indexed lookup per account with a session.
const accountCheckEvery = time.Second

// checkAccount reports whether the session's account is as it logged in.
// A disabled or deleted account is an error with code EFORBIDDEN (DENIED)
// saying so; a changed password one with code EUNAUTHORIZED.
func (ss *session) checkAccount(ctx context.Context) error {
	if err := ss.s.checkAccount(ctx, ss.user); err != nil {
		return err
	}
	return ss.checkDevice(ctx)
}

// checkAccount is session.checkAccount for the account that logged in as
// u.
func (s *Server) checkAccount(ctx context.Context, u *larder.User) error {
	err := s.Auth.Still(ctx, u)
	switch larder.ErrorCode(err) {
	case larder.EDISABLED:
		return &larder.Error{Code: larder.EFORBIDDEN, Message: "account disabled: the session is ended", Err: err}
	case larder.ENOTFOUND:
		return &larder.Error{Code: larder.EFORBIDDEN, Message: "account deleted: the session is ended", Err: err}
	}
	return err
}

// accountEnded reports whether err, from checkAccount, says the account
// was disabled or deleted.
func accountEnded(err error) bool {
	return larder.ErrorCode(err) == larder.EFORBIDDEN
}

// endSession answers the request being read, or the next one, with err
// (from checkAccount), records why, and returns the reason of the
// session's conn.close event.
func (ss *session) endSession(ctx context.Context, err error) string {
	if accountEnded(err) {
		ss.s.record(ctx, larder.Event{Kind: larder.EventRefused, User: ss.user.Name, Remote: ss.c.remote,
			Status: int(lnp.StatusDenied), Reason: larder.ErrorMessage(err)})
	}
	ss.c.setWriteDeadline(time.Now().Add(ss.c.lim.writeTimeout))
	ss.reply(statusOf(err), larder.ErrorMessage(err), nil)
	return "account changed: " + larder.ErrorMessage(err)
}

// accountWatch checks a session's account every accountCheckEvery during
// a transfer.
type accountWatch struct {
	ss   *session
	next time.Time
}

func (ss *session) watchAccount() *accountWatch {
	return &accountWatch{ss: ss, next: time.Now().Add(accountCheckEvery)}
}

// check checks the account if it is time to, and returns checkAccount's
// error if it says the account was disabled or deleted. Other failures
// (the store unreachable for a moment) let the transfer go on: the
// check before the commit, and before the next request, decides.
func (w *accountWatch) check(ctx context.Context) error {
	if err := w.ss.c.cutError(); err != nil {
		return err // watchAccounts found it first
	}
	now := time.Now()
	if now.Before(w.next) {
		return nil
	}
	w.next = now.Add(accountCheckEvery)
	if err := w.ss.checkAccount(ctx); accountEnded(err) {
		return err
	}
	return nil
}

// startWatch starts watchAccounts, once for both protocols.
func (s *Server) startWatch() {
	s.watcher.Do(func() {
		s.running.Go(s.watchAccounts)
		s.running.Go(s.watchDevices)
	})
}

// watchAccounts, until Close, checks every accountCheckEvery the account
// of each LNP/1 session and of each course reply in flight, one check per
// account and password however many share them. When an account is
// disabled or deleted, in any process, every reply in flight to it is cut
// (cutWrites), even one whose write is blocked on a client that does not
// read: a course reply at once, an LNP/1 one after cutGrace to send END
// DENIED. Idle sessions of an account disabled or deleted, or whose
// password changed, are ended at once; a session in a transfer when the
// password changed ends at its next request.
func (s *Server) watchAccounts() {
	t := time.NewTicker(accountCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-s.ctx.Done():
			return
		}
		// ss.user is read under the lock, as passwd sets it.
		s.lnp.mu.Lock()
		logins := map[login]*larder.User{}
		for _, m := range s.lnp.byUser {
			for ss := range m {
				logins[login{ss.user.ID, ss.user.CredentialGen}] = ss.user
			}
		}
		s.lnp.mu.Unlock()
		s.downloads.mu.Lock()
		for _, u := range s.downloads.m {
			logins[login{u.ID, u.CredentialGen}] = u
		}
		s.downloads.mu.Unlock()
		for l, u := range logins {
			err := s.checkAccount(s.ctx, u)
			if accountEnded(err) {
				s.cutRepliesOf(l, err)
			}
			if accountEnded(err) || larder.ErrorCode(err) == larder.EUNAUTHORIZED {
				s.endSessionsOf(l)
			}
		}
	}
}

// cutRepliesOf cuts the connections of l, whose account ended with err:
// the course replies at once, the LNP/1 sessions after cutGrace.
func (s *Server) cutRepliesOf(l login, err error) {
	now := time.Now()
	s.lnp.mu.Lock()
	for _, m := range s.lnp.byUser {
		for ss := range m {
			if ss.user.ID == l.id && ss.user.CredentialGen == l.gen {
				ss.c.cutWrites(err, now.Add(cutGrace))
			}
		}
	}
	s.lnp.mu.Unlock()
	s.downloads.mu.Lock()
	for c, u := range s.downloads.m {
		if u.ID == l.id && u.CredentialGen == l.gen {
			c.cutWrites(err, now)
		}
	}
	s.downloads.mu.Unlock()
}

// login is an account as a session logged in to it.
type login struct {
	id  int64
	gen int64 // larder.User.CredentialGen
}

// endSessionsOf marks every session of l ended, and wakes those reading
// their next request, which then find out why and end.
func (s *Server) endSessionsOf(l login) {
	s.lnp.mu.Lock()
	defer s.lnp.mu.Unlock()
	for _, m := range s.lnp.byUser {
		for ss := range m {
			if ss.user.ID == l.id && ss.user.CredentialGen == l.gen {
				ss.ended.Store(true)
				if ss.c.state.Load() == stateReading {
					ss.c.rwc.SetReadDeadline(time.Now())
				}
			}
		}
	}
}
