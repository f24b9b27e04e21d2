package s3

import (
	"bytes"
	"crypto/rand"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// benchSize is the file each iteration uploads.
const benchSize = 128 << 20

// BenchmarkUpload times an upload through the backend (its parts, their
// checksums and the checkpoints), with the default part size and each
// checksum, against BenchmarkPutObject, the plain client's single PUT of
// the same bytes to the same store: the ceiling.
func BenchmarkUpload(b *testing.B) {
	for _, c := range []Checksum{ChecksumSHA256, ChecksumCRC32C} {
		b.Run("checksum="+string(c), func(b *testing.B) {
			cfg := testConfig(b)
			cfg.PartSize, cfg.Checksum = 0, c
			be := testBackend(b, cfg)
			a, _ := be.Area("#1")
			data := make([]byte, benchSize)
			rand.Read(data)
			b.SetBytes(benchSize)
			defer reportCPU(b)()
			for b.Loop() {
				pt, err := a.StartUpload("f", benchSize, false)
				must(b, err)
				for off := 0; off < len(data); off += 1 << 20 {
					_, err = pt.Write(data[off : off+1<<20])
					must(b, err)
				}
				_, err = pt.Sync()
				must(b, err)
				_, err = pt.Place(true)
				must(b, err)
				must(b, pt.Close())
			}
		})
	}
}

func BenchmarkPutObject(b *testing.B) {
	be := testBackend(b, testConfig(b))
	data := make([]byte, benchSize)
	rand.Read(data)
	b.SetBytes(benchSize)
	defer reportCPU(b)()
	for b.Loop() {
		ctx, cancel := be.ctx()
		_, err := be.client.PutObject(ctx, &awss3.PutObjectInput{Bucket: &be.bucket, Key: aws.String(be.root + "f"), Body: bytes.NewReader(data), ContentLength: aws.Int64(benchSize)})
		cancel()
		must(b, err)
	}
}

// reportCPU reports the CPU time the process took per operation (the
// store's is not counted), from now to the call of the function it
// returns: on a machine shared with other work, a steadier figure than
// the time.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() { b.ReportMetric(float64((cpuTime()-start).Milliseconds())/float64(b.N), "cpu-ms/op") }
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// seedBench puts benchSize random bytes at key f of b's area #1, by the
// plain client.
func seedBench(b testing.TB, be *Backend) {
	data := make([]byte, benchSize)
	rand.Read(data)
	ctx, cancel := be.ctx()
	defer cancel()
	_, err := be.client.PutObject(ctx, &awss3.PutObjectInput{Bucket: &be.bucket, Key: aws.String(be.root + "spaces/1/f"), Body: bytes.NewReader(data), ContentLength: aws.Int64(benchSize)})
	must(b, err)
}

// BenchmarkDownload times a download through the backend as a session
// sends one (WriteRangeTo of each 1 MiB block, the windows read ahead),
// against BenchmarkGetObject, the plain client's single GET of the same
// bytes from the same store: the ceiling.
func BenchmarkDownload(b *testing.B) {
	be := testBackend(b, testConfig(b))
	seedBench(b, be)
	a, _ := be.Area("#1")
	b.SetBytes(benchSize)
	defer reportCPU(b)()
	for b.Loop() {
		o, err := a.Open("f")
		must(b, err)
		for off := int64(0); off < benchSize; off += 1 << 20 {
			_, err := o.WriteRangeTo(io.Discard, off, 1<<20)
			must(b, err)
		}
		must(b, o.Close())
	}
}

func BenchmarkGetObject(b *testing.B) {
	be := testBackend(b, testConfig(b))
	seedBench(b, be)
	b.SetBytes(benchSize)
	defer reportCPU(b)()
	for b.Loop() {
		ctx, cancel := be.ctx()
		out, err := be.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: &be.bucket, Key: aws.String(be.root + "spaces/1/f")})
		must(b, err)
		_, err = io.Copy(io.Discard, out.Body)
		out.Body.Close()
		cancel()
		must(b, err)
	}
}
