// Package s3 keeps larder's files in a bucket of an S3-compatible object
// store (AWS S3, Ceph RGW, SeaweedFS, Garage, versitygw, ...), behind the
// files.Backend seam, so that several servers sharing one database share
// the files too.
//
// # Layout
//
// Everything is below one prefix of one bucket:
//
//	PREFIX id                         the storage's ID, made once
//	PREFIX shared/PATH                the shared area (read-only to users)
//	PREFIX spaces/ID/PATH             the private space of account ID
//	PREFIX spaces/ID/PATH/            a folder (an empty marker object)
//	PREFIX uploads/ID/HASH-SIZE       the checkpoint of an unfinished upload
//	PREFIX moves/ID/HASH              a rename in progress
//	PREFIX servers/NAME               the running server called NAME (Claim)
//
// A user's path is checked (no empty, "." or ".." element) before it is
// appended to its area's prefix, and an account's ID is a number followed
// by a slash, so no path of one area names a key of another. A folder is
// a marker object, so that an empty folder exists; a prefix with objects
// below it and no marker (written by another tool) is a folder too.
//
// # Uploads
//
// An upload is an S3 multipart upload at its target's key, created with
// CRC32C or SHA-256 checksums (see Checksum): each part is sent with its
// checksum, which the store checks, and the object appears only when CompleteMultipartUpload puts
// the parts together (with If-None-Match: * unless it may replace a file,
// so of two servers writing one path, one wins and the other gets a
// conflict). The store cannot give back the parts of an unfinished upload,
// so after each part a checkpoint object keeps the parts sent, their
// checksums and the SHA-256 state of the bytes so far (which is also the
// file's SHA-256 the service checks: files.PartHasher): a resume, on any
// server, continues from the checkpoint once ListParts confirms its
// parts. The checkpoint names the server writing the upload, and is
// rewritten every heartbeat, so that another server neither cancels nor
// resumes it meanwhile (see writing). Parts are buffered in memory, two
// sent while the next is received (three times PartSize per upload being
// written); each is recorded in the checkpoint once it and those before
// it are sent, while the next ones are. Bytes received after the last
// part recorded are sent again on a resume.
//
// # Time-outs
//
// Every request to the store has a deadline (Config.Timeout): a store that
// is down or does not answer gives an error with code EUNAVAILABLE, never
// a hang. A file read in order is streamed, one ranged GET per 256 MiB,
// Config.ReadAhead bytes of the answer read ahead of the reader; the store
// must send each 1 MiB of it within Config.Timeout.
package s3

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/logging"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/files"
)

// Defaults of Config.
const (
	// DefaultTimeout is well below the half minute a client waits for a
	// reply, so that a store that does not answer is reported to it.
	DefaultTimeout   = 10 * time.Second
	DefaultPartSize  = 8 << 20
	DefaultReadAhead = 4 << 20
	// MinPartSize is the least part size S3 accepts but for the last.
	MinPartSize = 5 << 20
	// maxParts is the most parts of one multipart upload.
	maxParts = 10000
	// partsInFlight is how many parts of one upload are sent at once: a
	// part's flight is mostly waiting (the store reading and checking
	// it, the checkpoint after it), which a second one fills.
	partsInFlight = 2
	// maxIdleConns is the most connections to the store kept open idle.
	maxIdleConns = 256
)

// Config says where the files are. The zero value of each optional field
// is documented on it. Credentials are not in it: they come the usual
// ways (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
// AWS_PROFILE and the shared credentials file), never from a command line
// that ps shows.
type Config struct {
	Bucket string // required
	// Prefix is prepended to every key; "" is none. A slash is added if
	// it has none at its end.
	Prefix string
	// Endpoint is the store's URL; "" is AWS's for Region.
	Endpoint string
	// Region is the bucket's; "" is the environment's (AWS_REGION), or
	// us-east-1.
	Region string
	// PathStyle addresses the bucket in the path (http://host/bucket/key)
	// rather than the host name (http://bucket.host/key), as most
	// self-hosted stores need.
	PathStyle bool
	// Timeout bounds each request to the store; 0 means DefaultTimeout.
	Timeout time.Duration
	// PartSize is the size of the parts of an upload; 0 means
	// DefaultPartSize. It is at least MinPartSize, and is raised for a
	// file that would need more than 10000 parts.
	PartSize int64
	// ReadAhead is the bytes a file open for reading gets with its first
	// GET, and those of a stream read from the store ahead of the
	// reader, in chunks of 1 MiB; 0 means DefaultReadAhead. A file read
	// holds its first bytes until read past, and ReadAhead rounded
	// down to whole MiB (at least 1 MiB), and 1 MiB more, of chunks.
	ReadAhead int64
	// Checksum is how the store checks each part of an upload;
	// ChecksumAuto (the zero value) is CRC32C over https:// or to the
	// loopback (an address of it, or localhost with PathStyle), SHA-256
	// otherwise. CRC32C over http:// to another host
	// is refused.
	Checksum Checksum
}

// ParseURL reads a Config from s3://BUCKET/PREFIX?endpoint=URL&region=R&
// path-style=true&timeout=30s&checksum=sha256. Credentials in it are
// refused: they would show in ps.
func ParseURL(s string) (Config, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Config{}, fmt.Errorf("s3: %w", err)
	}
	if u.Scheme != "s3" || u.Host == "" {
		return Config{}, fmt.Errorf("s3: %q is not s3://BUCKET/PREFIX?endpoint=URL&region=REGION&path-style=true", s)
	}
	if u.User != nil {
		return Config{}, errors.New("s3: credentials in the storage URL would show in ps; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or a shared credentials file) instead")
	}
	cfg := Config{Bucket: u.Host, Prefix: strings.TrimPrefix(u.Path, "/")}
	for k, vs := range u.Query() {
		v := vs[len(vs)-1]
		switch k {
		case "endpoint":
			e, err := url.Parse(v)
			if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
				return Config{}, fmt.Errorf("s3: endpoint %q is not an http:// or https:// URL", v)
			}
			if e.User != nil {
				return Config{}, errors.New("s3: credentials in the endpoint would show in ps; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead")
			}
			cfg.Endpoint = v
		case "region":
			cfg.Region = v
		case "path-style":
			if cfg.PathStyle, err = strconv.ParseBool(v); err != nil {
				return Config{}, fmt.Errorf("s3: path-style=%q: want true or false", v)
			}
		case "timeout":
			if cfg.Timeout, err = time.ParseDuration(v); err != nil || cfg.Timeout <= 0 {
				return Config{}, fmt.Errorf("s3: timeout=%q: want a positive duration such as 30s", v)
			}
		case "checksum":
			cfg.Checksum = Checksum(v)
		default:
			return Config{}, fmt.Errorf("s3: unknown parameter %q in the storage URL (known: endpoint, region, path-style, timeout, checksum)", k)
		}
	}
	if _, err := cfg.Checksum.resolve(cfg.Endpoint, cfg.PathStyle); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Backend is the files.Backend of a bucket. It is safe for concurrent
// use.
type Backend struct {
	client    *awss3.Client
	bucket    string
	root      string // the prefix, "" or ending in "/"
	timeout   time.Duration
	partSize  int64
	readAhead int64
	checksum  Checksum // of the uploads it starts: SHA-256 or CRC32C
	inFlight  int      // parts of one upload sent at once
	// maxCopy is the largest object copied in one request, and
	// copyPartSize the parts of a larger one: maxCopy and copyPartSize
	// but in tests.
	maxCopy, copyPartSize int64
	counters              counters

	idOnce sync.Once
	id     string
	idErr  error

	active   activeSet // the uploads this process writes now
	instance string    // this Backend's name in the checkpoints it writes
	// activeWindow is activeWindow but in tests.
	activeWindow time.Duration
	// claimBeat is how often a claim of a server's name is rewritten:
	// heartbeat but in tests.
	claimBeat time.Duration

	// noDeleteObjects: the store refused a DeleteObjects as not
	// implemented, so removals go one DeleteObject at a time.
	noDeleteObjects atomic.Bool

	// failpoint, if set, is called after each object a rename moves,
	// after each batch a removal of a tree deletes, and before an
	// upload is completed; an error stops the rename or
	// the upload there, as a crash would. For tests.
	failpoint func(step string) error
}

var _ files.Backend = (*Backend)(nil)

// New returns the Backend of cfg, with the credentials of the
// environment. It checks that there are credentials, and that the bucket
// answers, with a time-out.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	b, err := newBackend(ctx, cfg)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	if _, err := b.client.Options().Credentials.Retrieve(cctx); err != nil {
		return nil, fmt.Errorf("s3: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or a shared credentials file): %w", err)
	}
	if _, err := b.ID(); err != nil {
		return nil, fmt.Errorf("s3: bucket %q: %w", cfg.Bucket, err)
	}
	return b, nil
}

// newBackend returns the Backend of cfg without a request to the store.
func newBackend(ctx context.Context, cfg Config) (*Backend, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3: no bucket")
	}
	sum, err := cfg.Checksum.resolve(cfg.Endpoint, cfg.PathStyle)
	if err != nil {
		return nil, err
	}
	// Every request goes to one host: the SDK's default of 10 idle
	// connections per host would close, and dial again, a connection of
	// every request beyond ten at once (sessions' small reads, windows
	// read ahead, parts in flight).
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns, t.MaxIdleConnsPerHost = maxIdleConns, maxIdleConns
	})
	// The SDK's own warnings (an instance metadata service that does
	// not answer, ...) go nowhere: the errors returned say what failed.
	opts := []func(*config.LoadOptions) error{config.WithHTTPClient(hc), config.WithLogger(logging.Nop{})}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	ac, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	if ac.Region == "" {
		ac.Region = "us-east-1"
	}
	inst := make([]byte, 8)
	rand.Read(inst)
	b := &Backend{
		instance:     hex.EncodeToString(inst),
		activeWindow: activeWindow,
		claimBeat:    heartbeat,
		bucket:       cfg.Bucket,
		root:         cfg.Prefix,
		timeout:      cfg.Timeout,
		partSize:     cfg.PartSize,
		readAhead:    cfg.ReadAhead,
		checksum:     sum,
		inFlight:     partsInFlight,
		maxCopy:      maxCopy,
		copyPartSize: copyPartSize,
	}
	if b.root != "" && !strings.HasSuffix(b.root, "/") {
		b.root += "/"
	}
	if b.timeout <= 0 {
		b.timeout = DefaultTimeout
	}
	if b.partSize <= 0 {
		b.partSize = DefaultPartSize
	}
	b.partSize = max(b.partSize, MinPartSize)
	if b.readAhead <= 0 {
		b.readAhead = DefaultReadAhead
	}
	b.client = awss3.NewFromConfig(ac, func(o *awss3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		// A ranged GET, and a GET of a multipart object, have no
		// checksum of the whole to check; the SDK would log each.
		o.DisableLogOutputChecksumValidationSkipped = true
	}, b.counters.countRequests, encodeListings)
	return b, nil
}

// ctx returns the context of one request to the store.
func (b *Backend) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), b.timeout)
}

// ID returns "s3:" and a random name kept in the bucket below the prefix,
// made by the first server that asks: every server sharing the bucket and
// prefix has the same, and another store's bucket of the same name has
// another.
func (b *Backend) ID() (string, error) {
	b.idOnce.Do(func() { b.id, b.idErr = b.loadID() })
	return b.id, b.idErr
}

func (b *Backend) loadID() (string, error) {
	key := b.root + "id"
	for range 2 {
		body, err := b.get(key)
		if err == nil {
			return "s3:" + strings.TrimSpace(string(body)), nil
		}
		if !isNotFound(err) {
			return "", b.fail(err, "cannot read the storage's ID")
		}
		id := make([]byte, 16)
		rand.Read(id)
		// If-None-Match: of two servers starting at once, one makes it
		// and both read it.
		err = b.put(key, []byte(hex.EncodeToString(id)+"\n"), true)
		if err != nil && !isPrecondition(err) {
			return "", b.fail(err, "cannot write the storage's ID")
		}
	}
	return "", larder.Errorf(larder.EINTERNAL, "s3: the storage's ID cannot be read back")
}

// Check asks the store for the storage's ID object, and returns nil if it
// answers, or an error that says what failed, for /healthz.
func (b *Backend) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	key := b.root + "id"
	_, err := b.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: &b.bucket, Key: &key})
	switch {
	case err == nil:
		return nil
	case unavailable(err):
		return fmt.Errorf("does not answer (requests fail with BUSY): %v", err)
	}
	return fmt.Errorf("answers with an error: %v", err)
}

// Area opens the shared area for "", and a private space for "#id".
func (b *Backend) Area(space string) (files.Area, error) {
	if space == "" {
		return &area{b: b, base: b.root + "shared/", shared: true}, nil
	}
	id, err := strconv.ParseInt(strings.TrimPrefix(space, "#"), 10, 64)
	if err != nil || !strings.HasPrefix(space, "#") || id < 0 {
		return nil, &larder.Error{Code: larder.EINTERNAL, Message: "cannot open your space", Err: err}
	}
	n := strconv.FormatInt(id, 10)
	return &area{
		b:       b,
		base:    b.root + "spaces/" + n + "/",
		uploads: b.root + "uploads/" + n + "/",
		moves:   b.root + "moves/" + n + "/",
	}, nil
}

// get reads the whole (small) object key.
func (b *Backend) get(key string) ([]byte, error) {
	ctx, cancel := b.ctx()
	defer cancel()
	out, err := b.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: &b.bucket, Key: &key})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(io.LimitReader(out.Body, 1<<20))
}

// put writes the small object key; with exclusive, only if there is none.
func (b *Backend) put(key string, body []byte, exclusive bool) error {
	ifNoneMatch := ""
	if exclusive {
		ifNoneMatch = "*"
	}
	_, err := b.putIf(key, body, ifNoneMatch, "")
	return err
}

// remove deletes the object key; one that is not there is no error.
func (b *Backend) remove(key string) error {
	ctx, cancel := b.ctx()
	defer cancel()
	_, err := b.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &b.bucket, Key: &key})
	if isNotFound(err) {
		return nil
	}
	return err
}

// removeKeys deletes the objects ids, at most 1,000, with one
// DeleteObjects; a store that does not take DeleteObjects gets one
// DeleteObject each. A key that is not there is no error.
func (b *Backend) removeKeys(ids []types.ObjectIdentifier) error {
	if len(ids) == 0 {
		return nil
	}
	if !b.noDeleteObjects.Load() {
		ctx, cancel := b.ctx()
		out, err := b.client.DeleteObjects(ctx, &awss3.DeleteObjectsInput{Bucket: &b.bucket, Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
		cancel()
		switch {
		case err == nil && len(out.Errors) == 0:
			return nil
		case err == nil:
			e := out.Errors[0]
			if aws.ToString(e.Code) != "NoSuchKey" {
				return fmt.Errorf("s3: cannot delete %s: %s: %s", aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message))
			}
		case isNotImplemented(err):
			b.noDeleteObjects.Store(true)
		default:
			return err
		}
	}
	for _, id := range ids {
		if err := b.remove(aws.ToString(id.Key)); err != nil {
			return err
		}
	}
	return nil
}

// step calls the failpoint of the step just done, if any.
func (b *Backend) step(name string) error {
	if b.failpoint == nil {
		return nil
	}
	return b.failpoint(name)
}

// paginator is one of the SDK's paginators.
type paginator[T any] interface {
	HasMorePages() bool
	NextPage(context.Context, ...func(*awss3.Options)) (T, error)
}

// eachPage calls f with every page of pg, each asked for with one
// request's deadline, until the first error of either.
func eachPage[T any](b *Backend, pg paginator[T], f func(T) error) error {
	for pg.HasMorePages() {
		ctx, cancel := b.ctx()
		out, err := pg.NextPage(ctx)
		cancel()
		if err != nil {
			return err
		}
		if err := f(out); err != nil {
			return err
		}
	}
	return nil
}

// activeSet is the set of uploads this process writes now, by upload ID.
type activeSet struct {
	mu  sync.Mutex
	ids map[string]struct{}
}

// add adds id, and reports whether it was absent.
func (a *activeSet) add(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.ids[id]; ok {
		return false
	}
	if a.ids == nil {
		a.ids = make(map[string]struct{})
	}
	a.ids[id] = struct{}{}
	return true
}

func (a *activeSet) remove(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.ids, id)
}

func (a *activeSet) has(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.ids[id]
	return ok
}
