package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/larderfs/larder"
)

// BenchmarkFileByPath looks up the records of 1000 files of one space
// (among 2000 in two), in turn: from one goroutine, from GOMAXPROCS, and
// a path that has no record (ENOTFOUND), as a first download of a shared
// file finds. s must be empty.
func BenchmarkFileByPath(b *testing.B, s larder.FileStore) {
	benchFileByPath(b, s, putBenchFiles(b, s, 1000))
}

// BenchmarkBlockSums reads the block sums of a 1 GiB file in blocks of
// 1 MiB (1024 sums, 32 KiB), as a download of a file sent before does.
func BenchmarkBlockSums(b *testing.B, s larder.FileStore) {
	benchBlockSums(b, s)
}

// putBenchFiles records n files in the space "alice" and as many in
// "bob", and returns alice's paths.
func putBenchFiles(b *testing.B, s larder.FileStore, n int) []string {
	ctx := context.Background()
	modified := time.Date(2026, 11, 22, 18, 30, 5, 123456789, time.UTC)
	paths := make([]string, n)
	for i := range paths {
		paths[i] = fmt.Sprintf("projects/p%02d/data/file-%04d.bin", i%20, i)
		for _, space := range []string{"alice", "bob"} {
			f := &larder.File{Space: space, Path: paths[i], Size: int64(i) << 10, Modified: modified,
				SHA256: sha256.Sum256([]byte(space + paths[i]))}
			if err := s.PutFile(ctx, f); err != nil {
				b.Fatal(err)
			}
		}
	}
	return paths
}

func benchFileByPath(b *testing.B, s larder.FileStore, paths []string) {
	ctx := context.Background()
	benchLookups(b, len(paths), func(i int) error {
		_, err := s.FileByPath(ctx, "alice", paths[i])
		return err
	})
	b.Run("missing", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.FileByPath(ctx, "alice", "projects/p00/data/none.bin"); larder.ErrorCode(err) != larder.ENOTFOUND {
				b.Fatalf("got %v, want code %q", err, larder.ENOTFOUND)
			}
		}
	})
}

func benchBlockSums(b *testing.B, s larder.FileStore) {
	const (
		size      = 1 << 30
		blockSize = 1 << 20
	)
	ctx := context.Background()
	sums := &larder.BlockSums{SHA256: sha256.Sum256([]byte("a 1 GiB file")), Size: size, BlockSize: blockSize}
	for i := range sums.Blocks() {
		sum := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i)))
		sums.Sums = append(sums.Sums, sum[:]...)
	}
	if err := s.PutBlockSums(ctx, sums); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(sums.Sums)))
	for b.Loop() {
		got, err := s.BlockSums(ctx, sums.SHA256, size, blockSize)
		if err != nil {
			b.Fatal(err)
		}
		if len(got.Sums) != len(sums.Sums) {
			b.Fatalf("got %d bytes of sums, want %d", len(got.Sums), len(sums.Sums))
		}
	}
}

// benchLookups runs lookup(i), for i going round [0, n), as two
// benchmarks: "serial", one goroutine; "parallel", b.RunParallel's.
func benchLookups(b *testing.B, n int, lookup func(i int) error) {
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := lookup(i % n); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if err := lookup(i % n); err != nil {
					b.Error(err) // not Fatal: this is not the benchmark's goroutine
					return
				}
				i++
			}
		})
	})
}

// BenchmarkRecordLogin measures s.RecordLogin, which a login calls at most
// once per larder.LastLoginResolution for each account: "write" records
// the first login of an account, "kept" one within the resolution of the
// last, which the store must find and leave (a server skips the call then,
// unless its copy of the account is older). s must be empty.
func BenchmarkRecordLogin(b *testing.B, s larder.UserStore) {
	ctx := context.Background()
	var accounts []*larder.User
	account := func(i int) *larder.User {
		for len(accounts) <= i {
			u := &larder.User{Name: fmt.Sprint("login", len(accounts)), Verifier: verifier}
			if err := s.CreateUser(ctx, u); err != nil {
				b.Fatal(err)
			}
			accounts = append(accounts, u)
		}
		return accounts[i]
	}
	b.Run("write", func(b *testing.B) {
		b.StopTimer()
		first := len(accounts)
		account(first + b.N)
		b.StartTimer()
		for i := range b.N {
			u := accounts[first+i]
			if err := s.RecordLogin(ctx, u.Name, u.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("kept", func(b *testing.B) {
		u := account(0)
		if err := s.RecordLogin(ctx, u.Name, u.ID); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := s.RecordLogin(ctx, u.Name, u.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
}
