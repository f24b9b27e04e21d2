//go:build linux

package main

import (
	"context"
	"debug/buildinfo"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/larderfs/larder/bench/report"
	larderclient "github.com/larderfs/larder/client"
	"github.com/larderfs/larder/lnp"
)

// s3Config configures the s3 scenario: larder with --storage s3://… on a
// private versitygw, against larder on the local disk and against a plain
// S3 client of the same versitygw (the store's own speed, the ceiling):
// one large file up and down over LNP/1, and small requests per second.
type s3Config struct {
	size        int
	rounds      int
	timeout     time.Duration
	settle      time.Duration
	versitygw   string
	rpsClients  int
	rpsDuration time.Duration
	users       int
	sha256      bool // also larder on S3 with checksum=sha256
}

func newS3Config() scenarioConfig {
	return &s3Config{size: 1 << 30, rounds: 3, timeout: 5 * time.Minute, settle: 2 * time.Second,
		rpsClients: 16, rpsDuration: 5 * time.Second, users: 16, sha256: true}
}

func (c *s3Config) register(fs *flag.FlagSet) {
	fs.IntVar(&c.size, "size", c.size, "size of the file uploaded and downloaded, in `bytes`")
	fs.IntVar(&c.rounds, "rounds", c.rounds, "rounds, each running every transfer and load in turn")
	fs.DurationVar(&c.timeout, "timeout", c.timeout, "deadline of each transfer")
	fs.DurationVar(&c.settle, "settle", c.settle, "pause before each timed transfer")
	fs.StringVar(&c.versitygw, "versitygw", c.versitygw, "versitygw `binary` (default: versitygw on PATH, else ~/go/bin/versitygw; go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)")
	fs.IntVar(&c.rpsClients, "rps-clients", c.rpsClients, "concurrent clients of the small requests")
	fs.DurationVar(&c.rpsDuration, "rps-duration", c.rpsDuration, "duration of each measurement of small requests")
	fs.IntVar(&c.users, "users", c.users, "accounts of the small requests; client i sends as account i mod users")
	fs.BoolVar(&c.sha256, "sha256", c.sha256, "also run larder on S3 with checksum=sha256, the parts' checksum over http:// to another host (the loopback's default is CRC32C)")
}

func (c *s3Config) quick() {
	c.size, c.rounds, c.rpsDuration = 256<<20, 2, 2*time.Second
}

// The bucket and credentials of the bench's versitygw, which only it
// reaches (loopback, a port of its own).
const (
	s3Bucket = "bench"
	s3Key    = "bench-key"
	s3Secret = "bench-secret"
)

// startVersitygw starts versitygw serving the buckets of a new folder,
// with one bucket, and waits until it accepts connections.
func (c *s3Config) startVersitygw(env *Env) (*Process, error) {
	bin := c.versitygw
	if bin == "" {
		if p, err := exec.LookPath("versitygw"); err == nil {
			bin = p
		} else if home, herr := os.UserHomeDir(); herr == nil {
			bin = filepath.Join(home, "go", "bin", "versitygw")
		}
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("versitygw: %w (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0, or pass --versitygw)", err)
	}
	root, err := env.mkdir("versitygw")
	if err != nil {
		return nil, err
	}
	if err := os.Mkdir(filepath.Join(root, s3Bucket), 0o755); err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	p, err := env.startProcess("versitygw", addr, bin, []string{"ROOT_ACCESS_KEY_ID=" + s3Key, "ROOT_SECRET_ACCESS_KEY=" + s3Secret},
		"--port", addr, "--quiet", "posix", root)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(readyTimeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) || env.ctx.Err() != nil {
			return nil, fmt.Errorf("versitygw on %s does not accept connections: %v; its log:\n%s", addr, err, p.LogTail(20))
		}
		time.Sleep(20 * time.Millisecond)
	}
	env.progress("versitygw started: pid %d on %s: %s --port %s --quiet posix %s", p.PID, addr, bin, addr, root)
	return p, nil
}

// plainS3 is the plain S3 client: aws-sdk-go-v2 with the lightest
// requests it can make (no checksum it is not asked for, an unsigned
// payload), so that its rate is the store's.
func plainS3(gw *Process) *awss3.Client {
	return awss3.New(awss3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://" + gw.Addr),
		UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: s3Key, SecretAccessKey: s3Secret}, nil
		}),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		APIOptions:                 []func(*middleware.Stack) error{v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware},
	})
}

func (c *s3Config) run(env *Env) (results, error) {
	if c.rounds < 1 || c.size < 1 || c.rpsClients < 1 || c.users < 1 {
		return nil, errors.New("need at least one round, byte, client and user")
	}
	env.progress("writing a %d-byte random file", c.size)
	dir, specs, err := env.makeFiles(c.size)
	if err != nil {
		return nil, err
	}
	f := specs[0]
	src := filepath.Join(dir, f.Path)
	small, smallSpecs, err := env.makeFiles(1024)
	if err != nil {
		return nil, err
	}
	sf := smallSpecs[0]
	work, err := env.mkdir("transfers")
	if err != nil {
		return nil, err
	}

	gw, err := c.startVersitygw(env)
	if err != nil {
		return nil, err
	}
	cl := plainS3(gw)
	// The shared area of larder on the bucket is PREFIX/shared/: the
	// small file goes there, as an operator's S3 tool would put it.
	smallData, err := os.ReadFile(filepath.Join(small, sf.Path))
	if err != nil {
		return nil, err
	}
	if _, err := cl.PutObject(env.ctx, &awss3.PutObjectInput{Bucket: aws.String(s3Bucket), Key: aws.String("larder/shared/" + sf.Path),
		Body: strings.NewReader(string(smallData)), ContentLength: aws.Int64(int64(len(smallData)))}); err != nil {
		return nil, fmt.Errorf("putting the small file in the bucket: %w", err)
	}

	storage := fmt.Sprintf("s3://%s/larder?endpoint=http://%s&region=us-east-1&path-style=true", s3Bucket, gw.Addr)
	creds := []string{"AWS_ACCESS_KEY_ID=" + s3Key, "AWS_SECRET_ACCESS_KEY=" + s3Secret}
	// Plaintext LNP/1 on both: what is compared is where the files live.
	local, err := env.startLNPLarder(small, false, c.timeout)
	if err != nil {
		return nil, err
	}
	data, err := env.mkdir("larder-data")
	if err != nil {
		return nil, err
	}
	onS3, err := env.startLNPLarderEnv(creds, "", data, false, c.timeout, "--storage", storage)
	if err != nil {
		return nil, err
	}
	larders := []*lnpLarder{local, onS3}
	var sha *lnpLarder // larder on S3 with checksum=sha256, if asked for
	if c.sha256 {
		data, err := env.mkdir("larder-data-sha256")
		if err != nil {
			return nil, err
		}
		storage := fmt.Sprintf("s3://%s/larder-sha256?endpoint=http://%s&region=us-east-1&path-style=true&checksum=sha256", s3Bucket, gw.Addr)
		if sha, err = env.startLNPLarderEnv(creds, "", data, false, c.timeout, "--storage", storage); err != nil {
			return nil, err
		}
		larders = append(larders, sha)
	}
	acct := newAccount(0)
	accts := newAccounts(c.users)
	jobs := make([]loadJob, len(accts))
	for i, a := range accts {
		jobs[i] = loadJob{req: a.request(sf.Path), f: sf}
	}
	for _, ln := range larders {
		if err := newClient(ln.proc.Addr, c.timeout).registerAll(env.ctx, accts); err != nil {
			return nil, err
		}
		ln.acct = acct
	}

	xfers := []*s3Xfer{}
	for _, ln := range larders {
		name := "larder, local disk"
		switch ln {
		case onS3:
			name = "larder, S3 (versitygw)"
		case sha:
			name = s3SHA256Name
		}
		up, down := ln.spaceXfers(f, src, work)
		xfers = append(xfers, &s3Xfer{name: name, x: up}, &s3Xfer{name: name, x: down})
	}
	up, down := plainXfers(cl, gw, f, src, work)
	xfers = append(xfers, &s3Xfer{name: plainName, x: up}, &s3Xfer{name: plainName, x: down})
	xfers = append(xfers, &s3Xfer{name: plainMultipart, x: multipartXfer(cl, gw, f, src)})

	// One untimed pass: the first transfer of a fresh process runs
	// slower.
	for _, sx := range xfers {
		if err := runXfer(env, sx.x, int64(f.Size), c.timeout, 0, nil); err != nil {
			return nil, fmt.Errorf("warm-up, %s %s: %w", sx.name, sx.x.direction, err)
		}
	}
	targets := []target{
		{"larder, local disk", local.proc, newClient(local.proc.Addr, c.timeout)},
		{"larder, S3 (versitygw)", onS3.proc, newClient(onS3.proc.Addr, c.timeout)},
	}
	for _, t := range targets {
		// The accounts' first retrievals pay the password hash, and the
		// first read of the file its SHA-256: not measured.
		if r := runJobs(env.ctx, t, jobs, c.rpsClients, time.Second); r.ok == 0 {
			return nil, fmt.Errorf("warm-up of small requests, %s: none succeeded: %v", t.name, r.firstErr)
		}
	}

	res := &s3Results{c: c, f: f, xfers: xfers, targets: targets, loads: make([][]loadResult, len(targets))}
	for r := range c.rounds {
		for _, sx := range xfers {
			var s xferSample
			syscall.Sync()
			if err := sleepCtx(env.ctx, c.settle); err != nil {
				return res, err
			}
			gw0, _ := gw.CPU()
			if err := timeXfer(env.ctx, sx.x, int64(f.Size), c.timeout, &s); err != nil {
				return res, fmt.Errorf("round %d, %s %s: %w", r+1, sx.name, sx.x.direction, err)
			}
			gw1, _ := gw.CPU()
			ctx, cancel := context.WithTimeout(env.ctx, c.timeout)
			err := sx.x.check(ctx)
			cancel()
			if err != nil {
				return res, fmt.Errorf("round %d, %s %s, check: %w", r+1, sx.name, sx.x.direction, err)
			}
			s3s := s3Sample{xferSample: s, store: 100 * (gw1 - gw0).Seconds() / (float64(f.Size) / s.mbps / 1e6)}
			if sx.x.server == gw {
				s3s.store = s.server // the plain client's server is the store
			}
			sx.samples = append(sx.samples, s3s)
			env.progress("round %d/%d %-32s %-8s %6.0f MB/s  cpu server %s client %s store %s other %s",
				r+1, c.rounds, sx.name, sx.x.direction, s.mbps, pct(s.server), pct(s.client), pct(s3s.store), pct(s.other))
		}
		for i, t := range targets {
			lr := runJobs(env.ctx, t, jobs, c.rpsClients, c.rpsDuration)
			if err := env.ctx.Err(); err != nil {
				return res, err
			}
			res.loads[i] = append(res.loads[i], lr)
			env.progress("round %d/%d %-32s %7.0f req/s  p99 %s ms  failed %d", r+1, c.rounds, t.name, lr.rate(), ms(lr.lat.p99), lr.failed)
		}
	}
	for _, ln := range larders {
		res.logs = append(res.logs, serverLogNote(ln.proc))
	}
	return res, nil
}

// s3Xfer is a transfer of the s3 scenario and its samples.
type s3Xfer struct {
	name    string
	x       *xfer
	samples []s3Sample
}

// s3Sample is one timed transfer, with the store's CPU over it.
type s3Sample struct {
	xferSample
	store float64 // versitygw's CPU, % of one core
}

// spaceXfers returns larder's upload of the file at src to the user's
// space as upload.bin, and its download from there into a fresh local
// file: the same path for both, on whatever storage the server has. Both
// sessions offer LNP/1's feature 1 (no block hashes), as larder's client
// does.
func (ln *lnpLarder) spaceXfers(f fileSpec, src, work string) (up, down *xfer) {
	local := filepath.Join(work, "download-"+filepath.Base(ln.data)+".bin")
	uploaded := false
	up = &xfer{system: "larder", transport: "LNP/1, plaintext", direction: "upload", server: ln.proc,
		run: func(ctx context.Context) error {
			in, err := os.Open(src)
			if err != nil {
				return err
			}
			defer in.Close()
			s, _, err := ln.sessionFeatures(ctx, lnp.FeatureNoBlockHashes)
			if err != nil {
				return err
			}
			defer s.Close()
			e, err := s.Put(ctx, "upload.bin", in, int64(f.Size), larderclient.PutOptions{Overwrite: true})
			if err != nil {
				return err
			}
			if e.SHA256 != f.Sum || e.Size != uint64(f.Size) {
				return fmt.Errorf("the server recorded %d bytes with SHA-256 %x, want %d and %x", e.Size, e.SHA256, f.Size, f.Sum)
			}
			uploaded = true
			return nil
		},
		// The download that follows checks the bytes stored.
		check: func(context.Context) error {
			if !uploaded {
				return errors.New("no upload")
			}
			return nil
		},
	}
	down = &xfer{system: "larder", transport: "LNP/1, plaintext", direction: "download", server: ln.proc,
		run: func(ctx context.Context) error {
			s, _, err := ln.sessionFeatures(ctx, lnp.FeatureNoBlockHashes)
			if err != nil {
				return err
			}
			defer s.Close()
			head, err := s.GetFile(ctx, "/upload.bin", local, nil)
			if err == nil && head.SHA256 != f.Sum {
				err = fmt.Errorf("the server announced SHA-256 %x, want %x", head.SHA256, f.Sum)
			}
			return err
		},
		check: func(ctx context.Context) error {
			if err := checkDownload(local, f); err != nil {
				return err
			}
			s, _, err := ln.session(ctx)
			if err != nil {
				return err
			}
			defer s.Close()
			return s.Delete(ctx, "upload.bin")
		},
	}
	return up, down
}

// plainXfers returns a plain client's PUT of the file at src as one
// object, and its GET into a fresh local file, written and fsync'd.
func plainXfers(cl *awss3.Client, gw *Process, f fileSpec, src, work string) (up, down *xfer) {
	key := aws.String("plain/upload.bin")
	local := filepath.Join(work, "download-plain.bin")
	up = &xfer{system: "S3", transport: "HTTP/1.1, plaintext", direction: "upload", server: gw,
		run: func(ctx context.Context) error {
			in, err := os.Open(src)
			if err != nil {
				return err
			}
			defer in.Close()
			_, err = cl.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(s3Bucket), Key: key, Body: in, ContentLength: aws.Int64(int64(f.Size))})
			return err
		},
		check: func(context.Context) error { return nil }, // the GET that follows checks it
	}
	down = &xfer{system: "S3", transport: "HTTP/1.1, plaintext", direction: "download", server: gw,
		run: func(ctx context.Context) error {
			out, err := cl.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(s3Bucket), Key: key})
			if err != nil {
				return err
			}
			defer out.Body.Close()
			w, err := os.Create(local)
			if err != nil {
				return err
			}
			_, err = io.CopyBuffer(w, out.Body, make([]byte, 1<<20))
			if err == nil {
				err = w.Sync()
			}
			if cerr := w.Close(); err == nil {
				err = cerr
			}
			return err
		},
		check: func(ctx context.Context) error {
			if err := checkDownload(local, f); err != nil {
				return err
			}
			_, err := cl.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(s3Bucket), Key: key})
			return err
		},
	}
	return up, down
}

// The plain client's transfers, and larder's on S3 with SHA-256 parts, by
// name.
const (
	s3SHA256Name   = "larder, S3, checksum=sha256"
	plainName      = "plain S3 client (aws-sdk-go-v2)"
	plainMultipart = "plain S3 client, multipart"
)

// multipartXfer returns a plain client's upload of the file at src as
// larder sends one to a bucket: a multipart upload of 8 MiB parts, two
// in flight, each read from the file, then completed. The store pays for
// a multipart upload what it does not for one PUT (versitygw joins the
// parts into the object when it completes).
func multipartXfer(cl *awss3.Client, gw *Process, f fileSpec, src string) *xfer {
	const partSize = 8 << 20
	key := aws.String("plain/multipart.bin")
	return &xfer{system: "S3", transport: "HTTP/1.1, plaintext", direction: "upload", server: gw,
		run: func(ctx context.Context) error {
			in, err := os.Open(src)
			if err != nil {
				return err
			}
			defer in.Close()
			mp, err := cl.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String(s3Bucket), Key: key})
			if err != nil {
				return err
			}
			n := (f.Size + partSize - 1) / partSize
			parts := make([]types.CompletedPart, n)
			errs := make([]error, n)
			sem := make(chan struct{}, 2)
			var wg sync.WaitGroup
			for i := range n {
				sem <- struct{}{}
				wg.Go(func() {
					defer func() { <-sem }()
					off := int64(i) * partSize
					size := min(int64(partSize), int64(f.Size)-off)
					out, err := cl.UploadPart(ctx, &awss3.UploadPartInput{Bucket: aws.String(s3Bucket), Key: key, UploadId: mp.UploadId,
						PartNumber: aws.Int32(int32(i + 1)), Body: io.NewSectionReader(in, off, size), ContentLength: aws.Int64(size)})
					if err != nil {
						errs[i] = err
						return
					}
					parts[i] = types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(i + 1))}
				})
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				return err
			}
			_, err = cl.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{Bucket: aws.String(s3Bucket), Key: key, UploadId: mp.UploadId,
				MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
			return err
		},
		check: func(ctx context.Context) error {
			out, err := cl.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(s3Bucket), Key: key})
			if err != nil {
				return err
			}
			if aws.ToInt64(out.ContentLength) != int64(f.Size) {
				return fmt.Errorf("the object has %d bytes, want %d", aws.ToInt64(out.ContentLength), f.Size)
			}
			_, err = cl.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(s3Bucket), Key: key})
			return err
		},
	}
}

// s3Results is what the s3 scenario measured.
type s3Results struct {
	c       *s3Config
	f       fileSpec
	xfers   []*s3Xfer
	targets []target
	loads   [][]loadResult // [target][round]
	logs    []string
}

func (r *s3Results) tables() []*report.Table {
	tbl := &report.Table{
		Title: fmt.Sprintf("Files on S3: one %d MiB file up and down, MB/s of file content (1 MB = 10^6 bytes)", r.f.Size>>20),
		Header: []string{"system", "direction", "MB/s: median (min–max)", "per round", "÷ larder, local disk", "÷ plain S3 client", "÷ plain multipart",
			"server CPU", "client CPU", "store CPU", "other CPU"},
	}
	// The per-round ratio of system x against system base, same direction.
	rounds := func(x *s3Xfer) []float64 { return perRound(x.samples, func(s s3Sample) float64 { return s.mbps }) }
	find := func(name, dir string) *s3Xfer {
		for _, x := range r.xfers {
			if x.name == name && x.x.direction == dir {
				return x
			}
		}
		return nil
	}
	against := func(x, base *s3Xfer) (string, []float64) {
		a, b := rounds(x), rounds(base)
		k := min(len(a), len(b))
		if x == base || k == 0 {
			return "–", nil
		}
		rs := make([]float64, k)
		for i := range k {
			rs[i] = a[i] / b[i]
		}
		return fmt.Sprintf("%s (%s)", fmtFactor(median(rs)), list(rs, fmtFactor)), rs
	}
	for _, x := range r.xfers {
		mb := rounds(x)
		vsLocal, _ := against(x, find("larder, local disk", x.x.direction))
		vsPlain, _ := against(x, find(plainName, x.x.direction))
		vsMultipart := "–"
		if x.x.direction == "upload" && x.name != plainMultipart {
			vsMultipart, _ = against(x, find(plainMultipart, "upload"))
		}
		if x.x.system != "larder" {
			vsLocal = "–"
		}
		tbl.Add(x.name, x.x.direction, medRange(mb), list(mb, report.Num), vsLocal, vsPlain, vsMultipart,
			pct(median(perRound(x.samples, func(s s3Sample) float64 { return s.server }))),
			pct(median(perRound(x.samples, func(s s3Sample) float64 { return s.client }))),
			pct(median(perRound(x.samples, func(s s3Sample) float64 { return s.store }))),
			pct(median(perRound(x.samples, func(s s3Sample) float64 { return s.other }))))
	}
	tbl.Note("After one untimed pass over every transfer, %d rounds, each running every transfer in the order of the table (each download reads what the upload before it wrote), then the small requests below; medians across rounds; a ratio is the median of the per-round ratios (per round in brackets).", r.c.rounds)
	tbl.Note("larder: plaintext LNP/1 (`--insecure-plaintext-native`) on both, so that what differs is where the files live; the client is client.Session in the bench's process (its CPU is the bench's). Both sessions offer LNP/1's feature 1, as larder's client does: no block hashes, the whole file's SHA-256 checked at the end by the receiver. Upload: Put of upload.bin to the user's space, the whole file's SHA-256 checked by the server, which answers once the file is in place (local disk: written, fsync'd, renamed; S3: a multipart upload of 8 MiB parts with their checksum, CRC32C, the default to a store on the loopback, or, in the row “checksum=sha256”, SHA-256, two in flight, completed). Download: GetFile of that file, the whole file's SHA-256 checked by the client, written and fsync'd (S3: a GET of the first 4 MiB, then the rest streamed by one ranged GET per 256 MiB, 4 MiB read ahead). After each download the bench checks its SHA-256 and deletes the file through larder.")
	tbl.Note("Plain S3 client: aws-sdk-go-v2 in the bench, the lightest requests it makes (no checksum, UNSIGNED-PAYLOAD), one PutObject of the whole file from disk (and, in the row “multipart”, a multipart upload of 8 MiB parts, two in flight, checked by its size), and one GetObject written to a file and fsync'd; nothing checked in the transfer; the bench checks the download's SHA-256 after, untimed. This is the store's own speed: the ceiling of larder on it.")
	tbl.Note("versitygw %s, posix backend on this machine's disk, on 127.0.0.1 (HTTP, path-style). store CPU: versitygw's user+system time (/proc/PID/stat); for the plain client it is the server's. Client, server, store and the other processes of this shared machine share its 2 cores: larder on S3 runs three busy processes where the plain client runs two.", versitygwVersion(r.c.versitygw))
	for _, dir := range []string{"upload", "download"} {
		x, base := find("larder, S3 (versitygw)", dir), find(plainName, dir)
		if x == nil || base == nil || len(x.samples) == 0 {
			continue
		}
		s, rs := against(x, base)
		verdict := "met"
		if median(rs) < 0.8 {
			verdict = "NOT met"
		}
		tbl.Note("Aim ≥ 0.8× the plain client's rate, larder on S3, %s: %s (%s).", dir, verdict, s)
	}
	if x, base := find("larder, S3 (versitygw)", "upload"), find(plainMultipart, "upload"); x != nil && base != nil && len(x.samples) > 0 {
		s, rs := against(x, base)
		verdict := "met"
		if median(rs) < 0.8 {
			verdict = "NOT met"
		}
		tbl.Note("The same aim against the plain client's multipart upload (8 MiB parts, two in flight, as larder sends them): %s (%s).", verdict, s)
	}

	rps := &report.Table{
		Title:  fmt.Sprintf("Small requests on S3: %d clients retrieving a %d-byte file of the shared area (course protocol), requests per second", r.c.rpsClients, 1024),
		Header: []string{"system", "req/s: median", "per round", "÷ larder, local disk", "p50 ms", "p99 ms", "failed", "server µs/req"},
	}
	for i, t := range r.targets {
		ls := r.loads[i]
		rates := perRound(ls, func(l loadResult) float64 { return l.rate() })
		vs := "–"
		if i > 0 && len(r.loads[0]) > 0 {
			k := min(len(ls), len(r.loads[0]))
			rs := make([]float64, k)
			for j := range k {
				rs[j] = ls[j].rate() / r.loads[0][j].rate()
			}
			vs = fmt.Sprintf("%s (%s)", fmtFactor(median(rs)), list(rs, fmtFactor))
		}
		failed := 0
		for _, l := range ls {
			failed += l.failed
		}
		rps.Add(t.name, report.Num(median(rates)), list(rates, report.Num), vs,
			msf(median(perRound(ls, func(l loadResult) float64 { return msOf(l.lat.p50) }))),
			msf(median(perRound(ls, func(l loadResult) float64 { return msOf(l.lat.p99) }))),
			fmt.Sprint(failed),
			report.Num(median(perRound(ls, func(l loadResult) float64 { return l.perRequest(l.cpu.server) }))))
	}
	rps.Note("Each client loops: dial, send the request, read to EOF, close; only complete replies count, each checked whole (status, length, every block hash, the file's SHA-256). %d accounts, client w as account w mod %d; %v per round and system, alternating, after an untimed second each (the accounts' first logins pay the password hash, the file's first read its SHA-256). The file, of 1024 bytes, is in the shared area: the served folder on the disk, PREFIX/shared/ in the bucket, put there by the plain client.", r.c.users, r.c.users, r.c.rpsDuration)
	rps.Note("server µs/req: larder's CPU time per completed request (/proc/PID/stat), not versitygw's: on S3 each request is HTTP requests to the store, signed, where on the disk it is system calls.")
	for _, l := range r.logs {
		tbl.Note("%s.", l)
	}
	return []*report.Table{tbl, rps}
}

// versitygwVersion returns the module version versitygw was built at,
// or "(version unknown)".
func versitygwVersion(bin string) string {
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("versitygw"); err != nil {
			home, _ := os.UserHomeDir()
			bin = filepath.Join(home, "go", "bin", "versitygw")
		}
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil || info.Main.Version == "" {
		return "(version unknown)"
	}
	return info.Main.Version + " (" + info.GoVersion + ")"
}
