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
		{errors.New("other"), exitFailure},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.err); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}
