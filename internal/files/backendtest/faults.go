package backendtest

import (
	"sync/atomic"
	"syscall"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/files"
)

// FailingRemovals is a files.Backend whose removals of trees fail, while
// Failing is set, after one entry: a store that gives an I/O error in the
// middle of a recursive delete, for the tests of what a tree left half
// removed does to the service above it.
type FailingRemovals struct {
	files.Backend
	Failing *atomic.Bool
}

type failingRemovalsArea struct {
	files.Area
	failing *atomic.Bool
}

// Area returns the area of space, whose RemoveTree fails while Failing is
// set.
func (b FailingRemovals) Area(space string) (files.Area, error) {
	a, err := b.Backend.Area(space)
	if err != nil {
		return nil, err
	}
	return failingRemovalsArea{a, b.Failing}, nil
}

func (a failingRemovalsArea) RemoveTree(p string, max int) (files.Removed, bool, error) {
	if !a.failing.Load() {
		return a.Area.RemoveTree(p, max)
	}
	r, _, err := a.Area.RemoveTree(p, 1)
	if err == nil {
		err = &larder.Error{Code: larder.EINTERNAL, Message: "internal error", Err: syscall.EIO}
	}
	return r, false, err
}
