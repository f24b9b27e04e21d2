package files

import "testing"

// TestBackends are the backends, besides the disk, that the tests of the
// service over a crashWorld run on, by name: each returns a function that
// opens a new instance over one new storage (as a restart does), or
// skips t saying why. The external tests register them (internal/s3
// imports this package, so these tests cannot import it).
var TestBackends = map[string]func(t *testing.T) func() (Backend, func()){}
