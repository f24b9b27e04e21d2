//go:build !linux

package audit

import "os"

// datasync makes f's data durable. Outside Linux it is a full fsync (on
// macOS, F_FULLFSYNC, which os.File.Sync uses).
func datasync(f *os.File) error { return f.Sync() }
