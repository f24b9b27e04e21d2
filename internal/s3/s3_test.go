package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/larderfs/larder/internal/files"
	"github.com/larderfs/larder/internal/files/backendtest"
)

// testConfig returns the Config of the store LARDER_TEST_SUITE names,
// with a prefix of its own, or skips t.
func testConfig(t testing.TB) Config {
	t.Helper()
	u := os.Getenv("LARDER_TEST_S3")
	if u == "" {
		t.Skip("LARDER_TEST_S3 is not set (s3://BUCKET?endpoint=URL&region=R&path-style=true, with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY): no S3-compatible store to test against; .ci/run starts one")
	}
	cfg, err := ParseURL(u)
	if err != nil {
		t.Fatalf("LARDER_TEST_S3: %v", err)
	}
	r := make([]byte, 6)
	rand.Read(r)
	cfg.Prefix += "test-" + hex.EncodeToString(r) + "/"
	cfg.PartSize = MinPartSize
	return cfg
}

// testBackend opens the Backend of cfg, and removes everything below its
// prefix at the end of t.
func testBackend(t testing.TB, cfg Config) *Backend {
	t.Helper()
	b, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.clear() })
	return b
}

// clear removes every object and unfinished upload below b's prefix.
func (b *Backend) clear() {
	ups, _ := b.multipartUploads(b.root)
	for _, up := range ups {
		ctx, cancel := b.ctx()
		b.client.AbortMultipartUpload(ctx, &awss3.AbortMultipartUploadInput{Bucket: &b.bucket, Key: up.Key, UploadId: up.UploadId})
		cancel()
	}
	pg := awss3.NewListObjectsV2Paginator(b.client, &awss3.ListObjectsV2Input{Bucket: &b.bucket, Prefix: &b.root})
	eachPage(b, pg, func(out *awss3.ListObjectsV2Output) error {
		for _, o := range out.Contents {
			b.remove(aws.ToString(o.Key))
		}
		return nil
	})
}

// TestConformance runs the conformance suite of backends on the store.
func TestConformance(t *testing.T) {
	cfg := testConfig(t)
	backendtest.Run(t, backendtest.Harness{
		PartSize: MinPartSize,
		New: func(t *testing.T) (files.Backend, func(string, []byte)) {
			cfg := cfg
			r := make([]byte, 4)
			rand.Read(r)
			cfg.Prefix += hex.EncodeToString(r) + "/"
			b := testBackend(t, cfg)
			seed := func(p string, data []byte) {
				ctx, cancel := b.ctx()
				defer cancel()
				_, err := b.client.PutObject(ctx, &awss3.PutObjectInput{Bucket: &b.bucket, Key: aws.String(b.root + "shared/" + p), Body: bytes.NewReader(data)})
				if err != nil {
					t.Fatal(err)
				}
			}
			return b, seed
		},
	})
}
