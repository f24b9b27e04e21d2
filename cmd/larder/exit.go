package main

import (
	"context"
	"errors"
	"flag"
	"net"
	"os"
	"syscall"

	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/internal/tlsconf"
	"github.com/larderfs/larder/lnp"
)

// Exit codes of larder, so that scripts can tell failures apart without
// reading messages:
//
//	0    success (or -h)
//	1    any other failure; among them the native protocol's CONFLICT (the
//	     target exists, a folder is not empty, an upload of that path is in
//	     progress), whose messages say which, and its BUSY and OTHER (retry
//	     later)
//	2    the command line is wrong
//	3    not found: no such user (USER_MISSING), or the server refused the
//	     request as bad (BAD_REQUEST), which for get means no such file; in
//	     the native protocol, no such file or folder (NOT_FOUND), or a path
//	     that can never name one (BAD_REQUEST)
//	4    denied: wrong password (INVALID_LOGIN), or the name is taken
//	     (USER_EXISTS); in the native protocol also a change to the
//	     read-only shared area (DENIED), too many failed logins (THROTTLED),
//	     and a server whose certificate is not the one pinned for it
//	     (tlsconf.CertChangedError)
//	5    network: cannot connect, timed out, connection reset, the
//	     server closed a native session in the middle, or what answered
//	     is not a course-protocol server (no reply, or a reply no course
//	     server sends: the wrong port)
//	6    integrity: the server's reply failed a check, or the server found
//	     an upload's block or whole file wrong (HASH_MISMATCH); nothing
//	     was kept that failed a check
//	7    quota: the account's byte or file quota would be exceeded
//	     (QUOTA_EXCEEDED); unfinished uploads count ('larder parts')
//	8    no space: the server keeps its last free disk space and refuses
//	     uploads (NO_SPACE); retry later
//	130  interrupted
const (
	exitOK        = 0
	exitFailure   = 1
	exitUsage     = 2
	exitNotFound  = 3
	exitDenied    = 4
	exitNetwork   = 5
	exitIntegrity = 6
	exitQuota     = 7
	exitNoSpace   = 8
	exitInterrupt = 130
)

// ExitCode returns the exit code for err, the error of Run.
func ExitCode(err error) int {
	var (
		usage  *UsageError
		status *client.StatusError
		nerr   *client.LNPError
		op     *net.OpError
		dns    *net.DNSError
	)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &usage):
		return exitUsage
	case errors.Is(err, client.ErrNotCourse):
		return exitNetwork
	case errors.Is(err, client.ErrIntegrity):
		return exitIntegrity
	case errors.As(err, new(*tlsconf.CertChangedError)):
		return exitDenied
	case errors.As(err, &nerr):
		switch nerr.Status {
		case lnp.StatusNotFound, lnp.StatusBadRequest:
			return exitNotFound
		case lnp.StatusInvalidLogin, lnp.StatusDenied, lnp.StatusThrottled:
			return exitDenied
		case lnp.StatusHashMismatch:
			return exitIntegrity
		case lnp.StatusQuotaExceeded:
			return exitQuota
		case lnp.StatusNoSpace:
			return exitNoSpace
		}
		return exitFailure
	case errors.Is(err, errServerClosed):
		return exitNetwork
	case errors.As(err, &status):
		switch status.Status {
		case course.StatusUserMissing, course.StatusBadRequest:
			return exitNotFound
		case course.StatusInvalidLogin, course.StatusUserExists:
			return exitDenied
		}
		return exitFailure
	case errors.Is(err, context.Canceled):
		return exitInterrupt
	// Not errors.As(err, new(net.Error)): every syscall.Errno is one, a
	// full disk included.
	case errors.As(err, &op), errors.As(err, &dns),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE):
		return exitNetwork
	}
	return exitFailure
}
