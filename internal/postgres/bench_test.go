package postgres_test

import (
	"testing"

	"github.com/larderfs/larder/internal/postgres"
	"github.com/larderfs/larder/internal/postgres/pgtest"
	"github.com/larderfs/larder/internal/storetest"
)

// The benchmarks skip, saying why, without a test server (pgtest).

func BenchmarkFileByPath(b *testing.B) {
	storetest.BenchmarkFileByPath(b, postgres.NewFileStore(open(b, pgtest.URL(b))))
}

func BenchmarkBlockSums(b *testing.B) {
	storetest.BenchmarkBlockSums(b, postgres.NewFileStore(open(b, pgtest.URL(b))))
}
