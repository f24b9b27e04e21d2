package files_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/larderfs/larder/internal/disk"
	"github.com/larderfs/larder/internal/files"
	"github.com/larderfs/larder/internal/files/backendtest"
)

// TestLocal runs the conformance suite of backends on the local disk.
func TestLocal(t *testing.T) {
	backendtest.Run(t, backendtest.Harness{
		PartSize: 1,
		New: func(t *testing.T) (files.Backend, func(string, []byte)) {
			top := t.TempDir()
			sharedDir := filepath.Join(top, "shared")
			if err := os.Mkdir(sharedDir, 0o755); err != nil {
				t.Fatal(err)
			}
			shared, err := disk.Open(sharedDir)
			if err != nil {
				t.Fatal(err)
			}
			spaces, err := disk.OpenSpaces(filepath.Join(top, "spaces"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { shared.Close(); spaces.Close() })
			seed := func(p string, data []byte) {
				name := filepath.Join(sharedDir, filepath.FromSlash(p))
				if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(name, data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			return files.NewLocal(shared, spaces), seed
		},
	})
}
