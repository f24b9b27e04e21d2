package main

import (
	"context"
	"errors"
	"flag"
	"net"
	"os"
	"syscall"

	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/wire"
)

// Exit codes of larder, so that scripts can tell failures apart without
// reading messages:
//
//	0    success (or -h)
//	1    any other failure
//	2    the command line is wrong
//	3    not found: no such user (USER_MISSING), or the server refused the
//	     request as bad (BAD_REQUEST), which for get means no such file
//	4    denied: wrong password (INVALID_LOGIN), or the name is taken
//	     (USER_EXISTS)
//	5    network: cannot connect, timed out, connection reset
//	6    integrity: the server's reply failed a check; nothing was kept
//	130  interrupted
const (
	exitOK        = 0
	exitFailure   = 1
	exitUsage     = 2
	exitNotFound  = 3
	exitDenied    = 4
	exitNetwork   = 5
	exitIntegrity = 6
	exitInterrupt = 130
)

// ExitCode returns the exit code for err, the error of Run.
func ExitCode(err error) int {
	var (
		usage  *UsageError
		status *client.StatusError
		op     *net.OpError
		dns    *net.DNSError
	)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &usage):
		return exitUsage
	case errors.Is(err, client.ErrIntegrity):
		return exitIntegrity
	case errors.As(err, &status):
		switch status.Status {
		case wire.StatusUserMissing, wire.StatusBadRequest:
			return exitNotFound
		case wire.StatusInvalidLogin, wire.StatusUserExists:
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
