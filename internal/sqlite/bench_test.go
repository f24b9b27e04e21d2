package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/larderfs/larder/internal/sqlite"
	"github.com/larderfs/larder/internal/storetest"
)

// newBenchFileStore returns a FileStore on a new database file, closed
// when b ends.
func newBenchFileStore(b *testing.B) *sqlite.FileStore {
	db := open(b, filepath.Join(b.TempDir(), "larder.db"))
	b.Cleanup(func() { db.Close() })
	return sqlite.NewFileStore(db)
}

func BenchmarkFileByPath(b *testing.B) { storetest.BenchmarkFileByPath(b, newBenchFileStore(b)) }

func BenchmarkBlockSums(b *testing.B) { storetest.BenchmarkBlockSums(b, newBenchFileStore(b)) }
