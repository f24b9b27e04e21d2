package files_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/larderfs/larder/internal/files"
	"github.com/larderfs/larder/internal/s3"
)

// The tests of the service over a crashWorld run over S3 too, when
// LARDER_TEST_S3 names a store: each storage is a new prefix of its bucket.
func init() {
	files.TestBackends["s3"] = func(t *testing.T) func() (files.Backend, func()) {
		u := os.Getenv("LARDER_TEST_S3")
		if u == "" {
			t.Skip("LARDER_TEST_S3 is not set: no S3-compatible store to run the service over; .ci/run starts one")
		}
		cfg, err := s3.ParseURL(u)
		if err != nil {
			t.Fatalf("LARDER_TEST_S3: %v", err)
		}
		r := make([]byte, 6)
		rand.Read(r)
		cfg.Prefix += "files-test-" + hex.EncodeToString(r) + "/"
		return func() (files.Backend, func()) {
			b, err := s3.New(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			return b, func() {}
		}
	}
}
