package s3

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/files"
)

// checkpoint is what an unfinished upload keeps beside its multipart
// upload, rewritten after each part: what the store cannot say (the
// announced size, the SHA-256 state of the bytes sent) and what it says
// (each part's ETag and SHA-256) to check against ListParts on a resume.
// Its key is the space's uploads/ and partID (the upload ID's hash and
// the size), so that one LIST gives every announced size of a space.
type checkpoint struct {
	Upload   string     `json:"upload"`
	Target   string     `json:"target"`
	Size     int64      `json:"size"`
	PartSize int64      `json:"part_size"`
	Parts    []partDone `json:"parts"`
	State    []byte     `json:"state"` // of a SHA-256 over the parts' bytes
	// Checksum is the parts' (the multipart upload's, chosen when it
	// was created); "" is ChecksumSHA256.
	Checksum Checksum `json:"checksum,omitempty"`
	// Writer is the instance of the server whose session writes the
	// upload now, "" once it let go. It rewrites the checkpoint at least
	// every heartbeat while it writes; a checkpoint older than
	// activeWindow is of a server that died.
	Writer string `json:"writer,omitempty"`
}

// How another server tells an upload being written from one abandoned:
// the writer rewrites its checkpoint every heartbeat, and one not
// rewritten for activeWindow is abandoned (its server died): it may then
// be resumed, cancelled or swept. One let go of cleanly (a session that
// ended) may be at once.
const (
	heartbeat    = 20 * time.Second
	activeWindow = 90 * time.Second
)

// writing reports whether another server's session writes the upload
// whose checkpoint cp was last written at modified (by the store's
// clock, which the servers' may differ from by a little).
func (b *Backend) writing(cp *checkpoint, modified time.Time) bool {
	return cp.Writer != "" && cp.Writer != b.instance && time.Since(modified) < b.activeWindow
}

type partDone struct {
	N    int32  `json:"n"`
	Size int64  `json:"size"`
	ETag string `json:"etag"`
	// The part's checksum, the checkpoint's Checksum, base64 as S3
	// says it.
	SHA256 string `json:"sha256,omitempty"`
	CRC32C string `json:"crc32c,omitempty"`
}

// partID returns the ID of the upload uploadID of size bytes: the name of
// its checkpoint.
func partID(uploadID string, size int64) string {
	return hashID(uploadID) + "-" + strconv.FormatInt(size, 10)
}

func hashID(uploadID string) string {
	sum := sha256.Sum256([]byte(uploadID))
	return hex.EncodeToString(sum[:16])
}

// partSizeFor returns the part size of a file of size bytes: the
// configured one, raised so that no file needs more than maxParts.
func (b *Backend) partSizeFor(size int64) int64 {
	ps := b.partSize
	if need := (size + maxParts - 1) / maxParts; need > ps {
		ps = (need + 1<<20 - 1) &^ (1<<20 - 1)
	}
	return ps
}

// part is an upload being written. Up to Backend.inFlight parts are
// sent at once while the next is received. Parts are recorded in the
// checkpoint in order, each once it and every part before it are sent
// (a flight waits for the one before it), so that a checkpoint names only
// parts the store holds, with the hash state after the last of them; the
// checkpoint of one part is written while the next ones are sent.
type part struct {
	mu   sync.Mutex // over cp, sent and sum, which flights and the heartbeat write
	stop chan struct{}
	beat sync.WaitGroup
	a    *area
	key  string
	cp   checkpoint
	id   string
	sent int64     // the bytes of the parts recorded in cp
	sum  hash.Hash // over the parts recorded in cp

	// The receiver's, the session's goroutine's, alone.
	queued  int64       // the bytes of the parts sent or in flight
	next    int32       // the number of the next part
	buf     []byte      // received, not sent yet
	flights []*flight   // the parts in flight, oldest first
	spares  chan []byte // buffers of parts sent, for the next
	done    bool        // placed or discarded: nothing left to let go of
}

// flight is a part being sent; err is its result once done is closed.
type flight struct {
	done chan struct{}
	err  error
}

func (a *area) StartUpload(p string, size int64, resume bool) (files.Part, error) {
	if a.shared {
		return nil, errReadOnly
	}
	if p == "" {
		return nil, larder.Errorf(larder.ECONFLICT, "the top of your space is a folder")
	}
	if size < 0 {
		return nil, larder.Errorf(larder.EINVALID, "a negative size")
	}
	k, err := a.key(p)
	if err != nil {
		return nil, err
	}
	if _, err := a.Stat(p); larder.ErrorCode(err) == larder.ENOTFOUND {
		if err := larder.ValidateNewName("name", path.Base(p)); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	if resume {
		pt, err := a.resume(p, k, size)
		if pt != nil || err != nil {
			return pt, err
		}
	}
	ctx, cancel := a.b.ctx()
	defer cancel()
	out, err := a.b.client.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{
		Bucket: &a.b.bucket, Key: &k, ChecksumAlgorithm: algorithm(a.b.checksum),
	})
	if err != nil {
		return nil, a.b.fail(err, "cannot start the upload")
	}
	pt := a.newPart(k)
	pt.cp = checkpoint{Upload: aws.ToString(out.UploadId), Target: p, Size: size, PartSize: a.b.partSizeFor(size), Checksum: a.b.checksum}
	pt.cp.State, _ = pt.sum.(encoding.BinaryMarshaler).MarshalBinary()
	pt.id = partID(pt.cp.Upload, size)
	a.b.active.add(pt.cp.Upload)
	if err := pt.begin(); err != nil {
		pt.Discard()
		return nil, err
	}
	return pt, nil
}

// newPart returns the part of an upload to k, with nothing sent.
func (a *area) newPart(k string) *part {
	return &part{a: a, key: k, sum: sha256.New(), next: 1, spares: make(chan []byte, a.b.inFlight+1)}
}

// begin marks the checkpoint as written by this server, and keeps it so
// until the part is let go of.
func (pt *part) begin() error {
	pt.cp.Writer = pt.a.b.instance
	if err := pt.checkpoint(); err != nil {
		return err
	}
	stop := make(chan struct{})
	pt.stop = stop
	pt.beat.Go(func() {
		t := time.NewTicker(heartbeat)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				pt.checkpoint() // best effort: one missed is made up by the next
			case <-stop:
				return
			}
		}
	})
	return nil
}

// end stops the heartbeat; with release, the checkpoint says that no one
// writes the upload any more, for another server to go on at once.
func (pt *part) end(release bool) {
	if pt.stop != nil {
		close(pt.stop)
		pt.beat.Wait()
		pt.stop = nil
	}
	if release && pt.cp.Writer != "" {
		pt.mu.Lock()
		pt.cp.Writer = ""
		pt.mu.Unlock()
		pt.checkpoint()
	}
}

// resume returns the unfinished upload of p (key k) of size bytes whose
// checkpoint the store confirms, or nil if there is none. One that
// another session of this process writes is a conflict; one whose parts
// do not match its checkpoint is removed.
func (a *area) resume(p, k string, size int64) (*part, error) {
	ups, err := a.multipartUploads(k)
	if err != nil {
		return nil, err
	}
	for _, up := range ups {
		if aws.ToString(up.Key) != k {
			continue
		}
		uid := aws.ToString(up.UploadId)
		body, modified, err := a.b.getModified(a.uploads + partID(uid, size))
		if isNotFound(err) {
			continue // another size, or not begun
		}
		if err != nil {
			return nil, a.b.fail(err, "cannot resume the upload")
		}
		var cp checkpoint
		if json.Unmarshal(body, &cp) != nil || cp.Upload != uid || cp.Size != size || cp.Target != p {
			continue
		}
		if a.b.writing(&cp, modified) {
			return nil, larder.Errorf(larder.ECONFLICT, "an upload of %s is in progress on another server (or was, until %s ago: then retry in a minute)", quote(p), time.Since(modified).Round(time.Second))
		}
		if !a.b.active.add(uid) {
			return nil, larder.Errorf(larder.ECONFLICT, "an upload of %s is in progress", quote(p))
		}
		pt := a.newPart(k)
		pt.cp, pt.id = cp, partID(uid, size)
		ok, err := pt.confirm()
		if err != nil {
			a.b.active.remove(uid)
			return nil, err
		}
		if !ok {
			pt.Discard()
			continue
		}
		if err := pt.begin(); err != nil {
			pt.Close()
			return nil, err
		}
		return pt, nil
	}
	return nil, nil
}

// confirm checks the checkpoint's parts against the store's and restores
// the hash of their bytes; false if they do not match.
func (pt *part) confirm() (bool, error) {
	b := pt.a.b
	parts, err := b.listParts(pt.key, pt.cp.Upload)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, b.fail(err, "cannot resume the upload")
	}
	have := map[int32]types.Part{}
	for _, p := range parts {
		have[aws.ToInt32(p.PartNumber)] = p
	}
	for i, d := range pt.cp.Parts {
		p, ok := have[d.N]
		if !ok || d.N != int32(i+1) || aws.ToInt64(p.Size) != d.Size || strings.Trim(aws.ToString(p.ETag), `"`) != strings.Trim(d.ETag, `"`) ||
			!d.confirms(pt.cp.Checksum, p) {
			return false, nil
		}
		pt.sent += d.Size
	}
	pt.queued, pt.next = pt.sent, int32(len(pt.cp.Parts)+1)
	if err := pt.sum.(encoding.BinaryUnmarshaler).UnmarshalBinary(pt.cp.State); err != nil || pt.sent > pt.cp.Size {
		return false, nil
	}
	return true, nil
}

// multipartUploads returns the unfinished multipart uploads of keys
// beginning with prefix.
func (a *area) multipartUploads(prefix string) ([]types.MultipartUpload, error) {
	return a.b.multipartUploads(prefix)
}

func (b *Backend) multipartUploads(prefix string) ([]types.MultipartUpload, error) {
	var ups []types.MultipartUpload
	pg := awss3.NewListMultipartUploadsPaginator(b.client, &awss3.ListMultipartUploadsInput{Bucket: &b.bucket, Prefix: &prefix})
	err := eachPage(b, pg, func(out *awss3.ListMultipartUploadsOutput) error {
		ups = append(ups, out.Uploads...)
		return nil
	})
	return ups, b.fail(err, "cannot list the unfinished uploads")
}

// listParts returns the parts the store has of the multipart upload
// uploadID of key.
func (b *Backend) listParts(key, uploadID string) ([]types.Part, error) {
	var parts []types.Part
	pg := awss3.NewListPartsPaginator(b.client, &awss3.ListPartsInput{Bucket: &b.bucket, Key: &key, UploadId: &uploadID})
	err := eachPage(b, pg, func(out *awss3.ListPartsOutput) error {
		parts = append(parts, out.Parts...)
		return nil
	})
	return parts, err
}

var _ files.PartHasher = (*part)(nil)

func (pt *part) ID() string    { return pt.id }
func (pt *part) Offset() int64 { return pt.queued + int64(len(pt.buf)) }

// HashPrefix gives h the state kept with the parts: the store cannot give
// back their bytes.
func (pt *part) HashPrefix(h hash.Hash) error {
	pt.mu.Lock()
	st, err := pt.sum.(encoding.BinaryMarshaler).MarshalBinary()
	pt.mu.Unlock()
	if err == nil {
		u, ok := h.(encoding.BinaryUnmarshaler)
		if !ok {
			return larder.Errorf(larder.EINTERNAL, "s3: a resumed upload's state is a SHA-256")
		}
		err = u.UnmarshalBinary(st)
	}
	if err != nil {
		return &larder.Error{Code: larder.EINTERNAL, Message: "cannot resume the upload", Err: err}
	}
	return nil
}

// SHA256 returns the SHA-256 of the parts sent, kept for the checkpoint
// at the end of each: after Sync, the whole content's.
func (pt *part) SHA256() ([32]byte, error) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if pt.sent != pt.Offset() {
		return [32]byte{}, larder.Errorf(larder.EINTERNAL, "s3: the SHA-256 of an upload of %d bytes asked for with %d sent", pt.Offset(), pt.sent)
	}
	return [32]byte(pt.sum.Sum(nil)), nil
}

// Write takes verified bytes, sending each part as it fills.
func (pt *part) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if pt.buf == nil {
			select {
			case b := <-pt.spares:
				pt.buf = b[:0]
			default:
				pt.buf = make([]byte, 0, min(pt.cp.PartSize, pt.cp.Size-pt.queued))
			}
		}
		room := int(pt.cp.PartSize) - len(pt.buf)
		k := min(room, len(p))
		pt.buf = append(pt.buf, p[:k]...)
		p, n = p[k:], n+k
		if int64(len(pt.buf)) == pt.cp.PartSize {
			if err := pt.send(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// send starts sending what was received as the next part, once there is
// room in flight.
func (pt *part) send() error {
	if len(pt.flights) >= pt.a.b.inFlight {
		if err := pt.waitOldest(); err != nil {
			return err
		}
	}
	var prev *flight
	if len(pt.flights) > 0 {
		prev = pt.flights[len(pt.flights)-1]
	}
	buf, n := pt.buf, pt.next
	pt.queued += int64(len(buf))
	pt.next++
	pt.buf = nil
	f := &flight{done: make(chan struct{})}
	pt.flights = append(pt.flights, f)
	go func() {
		defer close(f.done)
		f.err = pt.flush(n, buf, prev)
	}()
	return nil
}

// waitOldest waits for the oldest part in flight and returns its error.
func (pt *part) waitOldest() error {
	f := pt.flights[0]
	<-f.done
	pt.flights = pt.flights[1:]
	return f.err
}

// wait waits for every part in flight and returns the first error.
func (pt *part) wait() error {
	var first error
	for len(pt.flights) > 0 {
		if err := pt.waitOldest(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// flush sends buf as part n, with its checksum for the store to check,
// then, once prev, the part before it, is recorded, records it and
// checkpoints. A part sent whose predecessor failed is not recorded:
// the store holds it, and a resume sends it again.
func (pt *part) flush(n int32, buf []byte, prev *flight) error {
	b := pt.a.b
	in, d := b.partRequest(pt.key, pt.cp.Upload, pt.cp.Checksum, n, buf)
	ctx, cancel := b.ctx()
	out, err := b.client.UploadPart(ctx, in, unsignedPayload)
	cancel()
	if prev != nil {
		<-prev.done
		if prev.err != nil {
			return prev.err
		}
	}
	if err != nil {
		return pt.failed(err)
	}
	pt.mu.Lock()
	defer pt.mu.Unlock()
	pt.sum.Write(buf)
	pt.sent += int64(len(buf))
	d.ETag = aws.ToString(out.ETag)
	pt.cp.Parts = append(pt.cp.Parts, d)
	st, err := pt.sum.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return &larder.Error{Code: larder.EINTERNAL, Message: "cannot store the upload", Err: err}
	}
	pt.cp.State = st
	select {
	case pt.spares <- buf:
	default:
	}
	return pt.writeCheckpoint()
}

// unsignedPayload signs a part's request without the SHA-256 of its
// body (UNSIGNED-PAYLOAD), which the store would hash again to check the
// signature (over http://; over https:// the SDK does so already): the
// part's checksum header is signed, and the store checks the body
// against it (see Checksum for what each protects from), at one hash
// less on each side.
func unsignedPayload(o *awss3.Options) {
	o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
}

// failed is the error of a request about the multipart upload: one the
// store does not know any more was cancelled, or removed as stale, by
// another server (which cannot know that this one writes it).
func (pt *part) failed(err error) error {
	if unavailable(err) {
		// A store may answer NoSuchUpload before it has read a part, and
		// reset the connection on the rest: ask it again.
		ctx, cancel := pt.a.b.ctx()
		_, lerr := pt.a.b.client.ListParts(ctx, &awss3.ListPartsInput{Bucket: &pt.a.b.bucket, Key: &pt.key, UploadId: &pt.cp.Upload, MaxParts: aws.Int32(1)})
		cancel()
		if isNotFound(lerr) {
			err = lerr
		}
	}
	if code(err) == "NoSuchUpload" {
		return &larder.Error{Code: larder.ECONFLICT, Message: "the upload of " + quote(pt.cp.Target) + " was cancelled meanwhile (on another server?); put it again", Err: err}
	}
	return pt.a.b.fail(err, "cannot store "+quote(pt.cp.Target))
}

// checkpoint writes the checkpoint of the parts recorded.
func (pt *part) checkpoint() error {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	return pt.writeCheckpoint()
}

// writeCheckpoint is checkpoint with mu held: holding it through the
// write keeps an older checkpoint from landing after a newer one.
func (pt *part) writeCheckpoint() error {
	body, _ := json.Marshal(pt.cp)
	return pt.a.b.fail(pt.a.b.put(pt.a.uploads+pt.id, body, false), "cannot store the upload")
}

// Sync sends the last part. A file of no bytes is one empty part.
func (pt *part) Sync() (files.Info, error) {
	if len(pt.buf) > 0 || pt.queued == 0 && len(pt.cp.Parts) == 0 {
		if err := pt.send(); err != nil {
			return files.Info{}, err
		}
	}
	if err := pt.wait(); err != nil {
		return files.Info{}, err
	}
	return files.Info{Name: path.Base(pt.cp.Target), Size: pt.sent, ModTime: time.Now().Truncate(time.Second)}, nil
}

// Place completes the multipart upload: the object appears whole, and,
// without overwrite, only if there is none (If-None-Match: *), so that of
// two servers placing one path, one wins and the other gets a conflict.
func (pt *part) Place(overwrite bool) (files.Info, error) {
	a, p := pt.a, pt.cp.Target
	if err := pt.wait(); err != nil {
		return files.Info{}, err
	}
	if pt.sent != pt.cp.Size || len(pt.buf) > 0 {
		return files.Info{}, larder.Errorf(larder.EINTERNAL, "s3: placing an upload of %d bytes with %d sent", pt.cp.Size, pt.sent)
	}
	dir, err := a.isDir(pt.key)
	if err != nil {
		return files.Info{}, a.b.fail(err, "cannot store "+quote(p))
	}
	if dir {
		return files.Info{}, larder.Errorf(larder.ECONFLICT, "%s is a folder", quote(p))
	}
	if parent := path.Dir(p); parent != "." {
		if in, err := a.Stat(parent); larder.ErrorCode(err) == larder.ENOTFOUND || err == nil && !in.Dir {
			return files.Info{}, larder.Errorf(larder.ENOTFOUND, "the folder %s does not exist any more (moved or removed during the upload); the upload is kept: make the folder and put again to resume", quote(parent))
		} else if err != nil {
			return files.Info{}, err
		}
	}
	pt.end(false)
	done := make([]types.CompletedPart, len(pt.cp.Parts))
	for i, d := range pt.cp.Parts {
		done[i] = completedPart(pt.cp.Checksum, d)
	}
	deadline := time.Now().Add(a.b.completeTimeout(pt.sent))
	if err := a.b.step("upload:complete"); err != nil {
		return files.Info{}, err
	}
	err = a.b.complete(pt.key, pt.cp.Upload, done, !overwrite, deadline)
	if unavailable(err) {
		// The store may complete it all the same, after the deadline
		// of the request (versitygw puts the parts together, reading
		// them all): it is done if the object has the parts' ETag.
		err = a.b.awaitCompleted(pt.key, multipartETag(pt.cp.Parts), deadline, err)
	}
	if err != nil {
		if isPrecondition(err) {
			return files.Info{}, larder.Errorf(larder.ECONFLICT, "%s exists", quote(p))
		}
		if unavailable(err) {
			// Neither done nor refused, as far as is known: not
			// "cancelled", which ListParts would say of an upload the
			// store is completing.
			return files.Info{}, a.b.fail(err, "cannot store "+quote(p)+"; the store may still complete it")
		}
		return files.Info{}, pt.failed(err)
	}
	pt.done = true
	a.b.remove(a.uploads + pt.id)
	return a.Stat(p)
}

// completeRate is the least rate at which a store is expected to put an
// upload's parts together: a store that copies them (versitygw) reads
// and writes the whole file in the one request that completes it.
const completeRate = 32 << 20 // bytes per second

// completeTimeout is the deadline of completing an upload of size
// bytes: Config.Timeout, and the time the store may take to put its
// parts together.
func (b *Backend) completeTimeout(size int64) time.Duration {
	return b.timeout + time.Duration(size/completeRate)*time.Second
}

// multipartETag returns the ETag S3 (and versitygw, Ceph, MinIO, ...)
// gives the object a multipart upload of parts makes: the MD5 of their
// MD5s, and their number; "" if a part's ETag is not an MD5.
func multipartETag(parts []partDone) string {
	h := md5.New()
	for _, p := range parts {
		sum, err := hex.DecodeString(strings.Trim(p.ETag, `"`))
		if err != nil || len(sum) != md5.Size {
			return ""
		}
		h.Write(sum)
	}
	return fmt.Sprintf("%x-%d", h.Sum(nil), len(parts))
}

// awaitCompleted waits until the object at key has the ETag etag (the
// completion whose request failed with err took place after all), or
// deadline: then it returns err. Without an etag to look for, it returns
// err at once.
func (b *Backend) awaitCompleted(key, etag string, deadline time.Time, err error) error {
	for etag != "" {
		ctx, cancel := b.ctx()
		h, herr := b.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: &b.bucket, Key: &key})
		cancel()
		if herr == nil && strings.Trim(aws.ToString(h.ETag), `"`) == etag {
			return nil
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	return err
}

// complete completes the multipart upload uploadID of key with parts, by
// deadline; with exclusive, only if there is no object at key.
func (b *Backend) complete(key, uploadID string, parts []types.CompletedPart, exclusive bool, deadline time.Time) error {
	in := &awss3.CompleteMultipartUploadInput{Bucket: &b.bucket, Key: &key, UploadId: &uploadID, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}
	if exclusive {
		in.IfNoneMatch = aws.String("*")
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	_, err := b.client.CompleteMultipartUpload(ctx, in)
	return err
}

// Discard aborts the multipart upload and removes its checkpoint.
func (pt *part) Discard() error {
	pt.wait()
	pt.end(false)
	pt.done = true
	defer pt.Close()
	return pt.a.b.abort(pt.key, pt.cp.Upload, pt.a.uploads+pt.id)
}

// abort aborts the multipart upload uploadID of key and removes its
// checkpoint cp, if it has one ("" if not).
func (b *Backend) abort(key, uploadID, cp string) error {
	ctx, cancel := b.ctx()
	_, err := b.client.AbortMultipartUpload(ctx, &awss3.AbortMultipartUploadInput{Bucket: &b.bucket, Key: &key, UploadId: &uploadID})
	cancel()
	if err != nil && !isNotFound(err) {
		return b.fail(err, "cannot remove the upload")
	}
	if cp == "" {
		return nil
	}
	return b.fail(b.remove(cp), "cannot remove the upload")
}

// Close lets go of the upload, once the parts in flight are sent; the parts
// sent stay for a resume, the bytes received after them are dropped.
func (pt *part) Close() error {
	err := pt.wait() // the parts in flight are kept, and checkpointed
	pt.end(!pt.done)
	pt.a.b.active.remove(pt.cp.Upload)
	pt.buf = nil
	return err
}

// upload is an unfinished upload as a listing finds it.
type upload struct {
	key, uploadID string
	space         string // the space's number
	info          files.PartInfo
	checkpoint    string // its key; "" if it has none
}

// checkpointInfo is a checkpoint as a listing finds it.
type checkpointInfo struct {
	name     string // below the prefix listed: [SPACE/]HASH-SIZE
	size     int64
	modified time.Time
}

// checkpoints returns the checkpoints below prefix, by their names but
// the size ([SPACE/]HASH).
func (b *Backend) checkpoints(prefix string) (map[string]checkpointInfo, error) {
	cps := map[string]checkpointInfo{}
	pg := awss3.NewListObjectsV2Paginator(b.client, &awss3.ListObjectsV2Input{Bucket: &b.bucket, Prefix: &prefix})
	err := eachPage(b, pg, func(out *awss3.ListObjectsV2Output) error {
		for _, o := range out.Contents {
			name := strings.TrimPrefix(aws.ToString(o.Key), prefix)
			i := strings.LastIndexByte(name, '-')
			if i < 0 {
				continue
			}
			size, err := strconv.ParseInt(name[i+1:], 10, 64)
			if err != nil {
				continue
			}
			cps[name[:i]] = checkpointInfo{name: name, size: size, modified: aws.ToTime(o.LastModified)}
		}
		return nil
	})
	if err != nil {
		return nil, b.fail(err, "cannot list the unfinished uploads")
	}
	return cps, nil
}

// uploads returns the unfinished uploads of the spaces below base
// ("spaces/" for all, "spaces/N/" for one), with their checkpoints below
// cps; with received, the bytes each holds (one request each).
func (b *Backend) uploads(base, cps string, received bool) ([]upload, error) {
	ups, err := b.multipartUploads(base)
	if err != nil {
		return nil, err
	}
	checkpoints, err := b.checkpoints(cps)
	if err != nil {
		return nil, err
	}
	var out []upload
	for _, up := range ups {
		k, uid := aws.ToString(up.Key), aws.ToString(up.UploadId)
		rest := strings.TrimPrefix(k, base)
		space := ""
		if base == b.root+"spaces/" {
			i := strings.IndexByte(rest, '/')
			if i < 0 {
				continue
			}
			space, rest = rest[:i], rest[i+1:]
		}
		u := upload{key: k, uploadID: uid, space: space}
		u.info = files.PartInfo{ID: hashID(uid), Target: rest, Modified: aws.ToTime(up.Initiated), Active: b.active.has(uid)}
		name := u.info.ID
		if space != "" {
			name = space + "/" + name
		}
		c, ok := checkpoints[name]
		if ok {
			u.info.ID, u.info.Size, u.info.Modified, u.checkpoint = u.info.ID+"-"+strconv.FormatInt(c.size, 10), c.size, c.modified, cps+c.name
		}
		// Not ours: is another server writing it? One just started has
		// no checkpoint yet.
		if !u.info.Active {
			if !ok {
				u.info.Active = time.Since(u.info.Modified) < b.activeWindow
			} else if received {
				body, err := b.get(u.checkpoint)
				var cp checkpoint
				if err == nil && json.Unmarshal(body, &cp) == nil {
					u.info.Active = b.writing(&cp, c.modified)
				}
			}
		}
		if received {
			if u.info.Received, err = b.received(k, uid); err != nil {
				return nil, err
			}
			u.info.Size = max(u.info.Size, u.info.Received)
		}
		out = append(out, u)
	}
	slices.SortFunc(out, func(x, y upload) int { return strings.Compare(x.info.ID, y.info.ID) })
	return out, nil
}

// getModified is get, with when the object was last written.
func (b *Backend) getModified(key string) ([]byte, time.Time, error) {
	body, modified, _, err := b.getTagged(key)
	return body, modified, err
}

// received returns the bytes the parts of an upload hold.
func (b *Backend) received(key, uploadID string) (int64, error) {
	parts, err := b.listParts(key, uploadID)
	if isNotFound(err) {
		return 0, nil // completed or aborted meanwhile
	}
	if err != nil {
		return 0, b.fail(err, "cannot list the unfinished uploads")
	}
	var n int64
	for _, p := range parts {
		n += aws.ToInt64(p.Size)
	}
	return n, nil
}

func (a *area) Parts() ([]files.PartInfo, error) {
	if a.shared {
		return nil, nil
	}
	ups, err := a.b.uploads(a.base, a.uploads, true)
	if err != nil {
		return nil, err
	}
	out := make([]files.PartInfo, len(ups))
	for i, u := range ups {
		out[i] = u.info
	}
	return out, nil
}

// PartUsage counts each unfinished upload as one file of its announced
// size; one with no checkpoint yet (its start cut short) holds nothing.
func (a *area) PartUsage(except string) (larder.Usage, error) {
	var u larder.Usage
	if a.shared {
		return u, nil
	}
	ups, err := a.b.uploads(a.base, a.uploads, false)
	for _, up := range ups {
		if up.info.ID != except {
			u.Bytes += up.info.Size
			u.Files++
		}
	}
	return u, err
}

func (a *area) CancelUploads(target string) (n int, bytes int64, err error) {
	if a.shared {
		return 0, 0, errReadOnly
	}
	ups, err := a.b.uploads(a.base, a.uploads, true)
	if err != nil {
		return 0, 0, err
	}
	busy := 0
	for _, u := range ups {
		if target != "" && u.info.Target != target {
			continue
		}
		if u.info.Active {
			busy++
			continue
		}
		if err := a.b.abort(u.key, u.uploadID, u.checkpoint); err != nil {
			return n, bytes, err
		}
		n++
		bytes += u.info.Received
	}
	switch {
	case target == "" || n > 0:
		return n, bytes, nil
	case busy > 0:
		return 0, 0, larder.Errorf(larder.ECONFLICT, "the upload of %s is being written now", quote(target))
	}
	return 0, 0, larder.Errorf(larder.ENOTFOUND, "no unfinished upload of %s", quote(target))
}

// RemoveStaleUploads aborts the multipart uploads of every space last
// written before before (by their checkpoints, or their start), but those
// this process writes now, and removes checkpoints left without an
// upload. An upload another server writes is written again within the
// time its checkpoint says.
func (b *Backend) RemoveStaleUploads(before time.Time) (int, error) {
	ups, err := b.uploads(b.root+"spaces/", b.root+"uploads/", false)
	if err != nil {
		return 0, err
	}
	n := 0
	kept := map[string]bool{}
	for _, u := range ups {
		if u.info.Active || !u.info.Modified.Before(before) {
			kept[u.checkpoint] = true
			continue
		}
		if err := b.abort(u.key, u.uploadID, u.checkpoint); err != nil {
			return n, err
		}
		n++
	}
	cps, err := b.checkpoints(b.root + "uploads/")
	if err != nil {
		return n, err
	}
	for _, c := range cps {
		k := b.root + "uploads/" + c.name
		if kept[k] || !c.modified.Before(before) {
			continue
		}
		if !slices.ContainsFunc(ups, func(u upload) bool { return u.checkpoint == k }) {
			b.remove(k)
		}
	}
	return n, nil
}

// urlPathEscape escapes every byte of s but the unreserved ones of RFC
// 3986, as S3 wants a copy source's key.
func urlPathEscape(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			sb.WriteByte(c)
			continue
		}
		sb.WriteByte('%')
		sb.WriteByte(hexDigits[c>>4])
		sb.WriteByte(hexDigits[c&15])
	}
	return sb.String()
}
