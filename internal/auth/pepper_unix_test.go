//go:build unix

package auth

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestLoadPeppersFIFO: a FIFO, whose open would block until a writer
// came, is refused as not a regular file, without blocking.
func TestLoadPeppersFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatalf("cannot make a FIFO to test with: %v", err)
	}
	if _, err := LoadPeppers(fifo); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("LoadPeppers(FIFO) = %v, want 'not a regular file'", err)
	}
}
