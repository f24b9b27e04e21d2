//go:build linux

package files

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/disk"
	"github.com/larderfs/larder/internal/sqlite"
)

// BenchmarkPutSmall measures the commit of a 1 KiB upload on SQLite: the
// journal's intent, the part's sync and rename, the record under quota.
func BenchmarkPutSmall(b *testing.B) {
	top := b.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(top, "larder.db"))
	must(b, err)
	defer db.Close()
	spaces, err := disk.OpenSpaces(filepath.Join(top, "spaces"))
	must(b, err)
	defer spaces.Close()
	must(b, os.Mkdir(filepath.Join(top, "shared"), 0o755))
	shared, err := disk.Open(filepath.Join(top, "shared"))
	must(b, err)
	defer shared.Close()
	s, err := New(Config{Backend: NewLocal(shared, spaces), Records: sqlite.NewFileStore(db), Quota: larder.Quota{Files: 1 << 30}})
	must(b, err)
	sp, err := s.Space(1)
	must(b, err)
	defer sp.Close()
	data := make([]byte, 1024)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		must(b, put(ctx, sp, "f"+strconv.Itoa(i), data, false))
		i++
	}
}
