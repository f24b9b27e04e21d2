//go:build !linux

package xfer

import "os"

func startWriteback(*os.File, int64, int64) {}
