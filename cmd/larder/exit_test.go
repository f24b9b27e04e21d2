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
	"github.com/larderfs/larder/internal/tlsconf"
	"github.com/larderfs/larder/native"
	"github.com/larderfs/larder/wire"
)

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, exitOK},
		{flag.ErrHelp, exitOK},
		{usageError("bad"), exitUsage},
		{&client.StatusError{Status: wire.StatusUserMissing}, exitNotFound},
		{&client.StatusError{Status: wire.StatusBadRequest}, exitNotFound},
		{&client.StatusError{Status: wire.StatusInvalidLogin}, exitDenied},
		{&client.StatusError{Status: wire.StatusUserExists}, exitDenied},
		{&client.StatusError{Status: wire.StatusOther}, exitFailure},
		{&client.StatusError{Status: wire.StatusMalformed}, exitFailure},
		{&client.IntegrityError{Block: 3, Reason: "hash mismatch"}, exitIntegrity},
		{&client.IntegrityError{Block: -1, Reason: "cut", Err: io.ErrUnexpectedEOF}, exitIntegrity},
		{fmt.Errorf("client: x: %w", context.Canceled), exitInterrupt},
		{fmt.Errorf("client: x: %w", context.DeadlineExceeded), exitNetwork},
		{fmt.Errorf("client: x: %w", os.ErrDeadlineExceeded), exitNetwork},
		{fmt.Errorf("x: %w", syscall.ECONNRESET), exitNetwork},
		{&os.PathError{Op: "write", Path: "f", Err: syscall.ENOSPC}, exitFailure},
		{client.ErrBufferLimit, exitFailure},
		{&client.NativeError{Status: native.StatusNotFound}, exitNotFound},
		{&client.NativeError{Status: native.StatusBadRequest}, exitNotFound},
		{&client.NativeError{Status: native.StatusInvalidLogin}, exitDenied},
		{&client.NativeError{Status: native.StatusDenied}, exitDenied},
		{&client.NativeError{Status: native.StatusThrottled}, exitDenied},
		{&client.NativeError{Status: native.StatusHashMismatch}, exitIntegrity},
		{&client.NativeError{Status: native.StatusConflict}, exitFailure},
		{&hintError{err: &client.NativeError{Status: native.StatusQuotaExceeded}, hint: "h"}, exitQuota},
		{&client.NativeError{Status: native.StatusNoSpace}, exitNoSpace},
		{&client.NativeError{Status: native.StatusBusy}, exitFailure},
		{&client.NativeError{Status: native.StatusOther}, exitFailure},
		{&tlsconf.CertChangedError{Addr: "a:1", Pinned: "SHA256:00", Got: "SHA256:11"}, exitDenied},
		{sessionError(io.EOF), exitNetwork},
		{sessionError(&native.ProtocolError{Msg: "frame body cut short", Err: io.ErrUnexpectedEOF}), exitNetwork},
		{sessionError(&client.IntegrityError{Block: -1, Reason: "cut", Err: io.ErrUnexpectedEOF}), exitIntegrity},
		{&native.ProtocolError{Msg: "garbage"}, exitFailure},
		{errors.New("other"), exitFailure},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.err); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}
