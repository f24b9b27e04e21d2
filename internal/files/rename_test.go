//go:build linux

package files

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/larderfs/larder"
)

// TestFolderRenameKeepsHashes: the records of the files of a folder
// moved are trusted for the versions the move gave them (a store copies
// each object, which changes its version), so that the next read of each
// does not hash it again.
func TestFolderRenameKeepsHashes(t *testing.T) {
	for backend, world := range worlds(func(t *testing.T) func() (larder.FileStore, func()) {
		return sqliteWorld(t, filepath.Join(t.TempDir(), "larder.db"))
	}) {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			w := world(t)
			s, sp := w.service("")
			must(t, sp.Mkdir("d"))
			must(t, sp.Mkdir("d/sub"))
			for _, p := range []string{"d/a.txt", "d/sub/b.txt"} {
				must(t, put(ctx, sp, p, []byte("the content of "+p), false))
			}
			must(t, sp.Rename(ctx, "d", "e", false))
			for _, p := range []string{"e/a.txt", "e/sub/b.txt"} {
				in, err := sp.area.Stat(p)
				must(t, err)
				rec, err := s.records.FileByPath(ctx, "#1", p)
				must(t, err)
				if !matches(rec, in, true) {
					t.Errorf("the record of %s after its folder moved: version %q, the file's %q; want the record trusted for it", p, rec.Version, in.Version)
				}
			}
		})
	}
}
