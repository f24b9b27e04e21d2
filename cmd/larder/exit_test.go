package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"syscall"
	"testing"

	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/internal/tlsconf"
	"github.com/larderfs/larder/lnp"
)

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, exitOK},
		{flag.ErrHelp, exitOK},
		{usageError("bad"), exitUsage},
		{&client.StatusError{Status: course.StatusUserMissing}, exitDenied},
		{&client.StatusError{Status: course.StatusBadRequest}, exitNotFound},
		{&client.StatusError{Status: course.StatusInvalidLogin}, exitDenied},
		{&client.StatusError{Status: course.StatusUserExists}, exitDenied},
		{&client.StatusError{Status: course.StatusOther}, exitFailure},
		{&client.StatusError{Status: course.StatusMalformed}, exitFailure},
		{&client.IntegrityError{Block: 3, Reason: "hash mismatch"}, exitIntegrity},
		{&client.IntegrityError{Block: -1, Reason: "cut", Err: io.ErrUnexpectedEOF}, exitIntegrity},
		{fmt.Errorf("client: x: %w", context.Canceled), exitInterrupt},
		{fmt.Errorf("client: x: %w", context.DeadlineExceeded), exitNetwork},
		{fmt.Errorf("client: x: %w", os.ErrDeadlineExceeded), exitNetwork},
		{fmt.Errorf("x: %w", syscall.ECONNRESET), exitNetwork},
		{&os.PathError{Op: "write", Path: "f", Err: syscall.ENOSPC}, exitFailure},
		{client.ErrBufferLimit, exitFailure},
		{&client.LNPError{Status: lnp.StatusNotFound}, exitNotFound},
		{&client.LNPError{Status: lnp.StatusBadRequest}, exitNotFound},
		{&client.LNPError{Status: lnp.StatusInvalidLogin}, exitDenied},
		{&client.LNPError{Status: lnp.StatusDenied}, exitDenied},
		{&client.LNPError{Status: lnp.StatusThrottled}, exitDenied},
		{&client.LNPError{Status: lnp.StatusHashMismatch}, exitIntegrity},
		{&client.LNPError{Status: lnp.StatusConflict}, exitFailure},
		{&hintError{err: &client.LNPError{Status: lnp.StatusQuotaExceeded}, hint: "h"}, exitQuota},
		{&client.LNPError{Status: lnp.StatusNoSpace}, exitNoSpace},
		{&client.LNPError{Status: lnp.StatusBusy}, exitFailure},
		{&client.LNPError{Status: lnp.StatusOther}, exitFailure},
		{&tlsconf.CertChangedError{Addr: "a:1", Pinned: "SHA256:00", Got: "SHA256:11"}, exitDenied},
		{sessionError(io.EOF), exitNetwork},
		{sessionError(&lnp.ProtocolError{Msg: "frame body cut short", Err: io.ErrUnexpectedEOF}), exitNetwork},
		{sessionError(&client.IntegrityError{Block: -1, Reason: "cut", Err: io.ErrUnexpectedEOF}), exitIntegrity},
		{&lnp.ProtocolError{Msg: "garbage"}, exitFailure},
		{errors.New("other"), exitFailure},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.err); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}
