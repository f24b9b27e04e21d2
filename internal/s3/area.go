package s3

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/disk"
	"github.com/larderfs/larder/internal/files"
)

// area is one private space, or the shared area, below base.
type area struct {
	b       *Backend
	base    string // of its files, ending in "/"
	uploads string // of its upload checkpoints; "" for the shared area
	moves   string // of its renames in progress; "" for the shared area
	shared  bool
}

var errReadOnly = larder.Errorf(larder.EFORBIDDEN, "the shared area is read-only")

// key returns the key of p. A private space's paths come checked; the
// shared area's, named as the course protocol names them, are checked
// here. Either way nothing but a clean path is appended to base.
func (a *area) key(p string) (string, error) {
	if a.shared {
		if _, err := disk.CleanPath(p); err != nil {
			return "", err
		}
		p = strings.TrimPrefix(p, "/")
	}
	if clean, err := disk.CleanPath(p); err != nil || clean != p {
		return "", larder.Errorf(larder.EINVALID, "path %s is not a clean path", quote(p))
	}
	// A folder's marker takes one byte more than its path.
	if len(a.base)+len(p)+1 > maxKey {
		return "", larder.Errorf(larder.EINVALID, "path %s is %d bytes long; this server's storage takes paths of at most %d", quote(p), len(p), maxKey-len(a.base)-1)
	}
	return a.base + p, nil
}

// maxKey is the longest key S3 takes, in bytes.
const maxKey = 1024

// versionOf is the Version of the object at key: its ETag, size and
// time, and its key's hash. The ETag changes with the content, but is an
// MD5 (of the content, or of its parts) on most stores, which a user can
// make collide; the time (to the second, as a HEAD gives it) changes with
// every write but within a second, and the key keeps two files of one
// ETag apart (hashes are remembered by version).
func versionOf(key string, etag *string, size int64, modified time.Time) string {
	e := strings.Trim(aws.ToString(etag), `"`)
	if e == "" {
		return ""
	}
	k := sha256.Sum256([]byte(key))
	return fmt.Sprintf("etag:%s/%d/%d/%x", e, size, modified.Unix(), k[:8])
}

// fileInfo is the Info of the object at key, p in its area.
func fileInfo(key, p string, size int64, modified *time.Time, etag *string) files.Info {
	t := aws.ToTime(modified).Truncate(time.Second) // a HEAD says seconds, a LIST more
	return files.Info{Name: path.Base(p), Size: size, ModTime: t, Version: versionOf(key, etag, size, t), Changed: t}
}

func (a *area) Stat(p string) (files.Info, error) {
	if p == "" {
		return files.Info{Dir: true}, nil
	}
	k, err := a.key(p)
	if err != nil {
		return files.Info{}, err
	}
	ctx, cancel := a.b.ctx()
	defer cancel()
	h, err := a.b.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: &a.b.bucket, Key: &k})
	if err == nil {
		return fileInfo(k, p, aws.ToInt64(h.ContentLength), h.LastModified, h.ETag), nil
	}
	if !isNotFound(err) {
		return files.Info{}, a.b.fail(err, "cannot look at "+quote(p))
	}
	dir, err := a.isDir(k)
	if err != nil {
		return files.Info{}, a.b.fail(err, "cannot look at "+quote(p))
	}
	if !dir {
		return files.Info{}, larder.Errorf(larder.ENOTFOUND, "%s does not exist", quote(p))
	}
	return files.Info{Name: path.Base(p), Dir: true}, nil
}

// isDir reports whether there is anything below k: its marker, or
// objects written there by another tool.
func (a *area) isDir(k string) (bool, error) {
	ctx, cancel := a.b.ctx()
	defer cancel()
	out, err := a.b.client.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: &a.b.bucket, Prefix: aws.String(k + "/"), MaxKeys: aws.Int32(1)})
	if err != nil {
		return false, err
	}
	return len(out.Contents) > 0, nil
}

// isEmptyDir reports whether the folder k holds nothing but its marker.
func (a *area) isEmptyDir(k string) (bool, error) {
	ctx, cancel := a.b.ctx()
	defer cancel()
	out, err := a.b.client.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: &a.b.bucket, Prefix: aws.String(k + "/"), MaxKeys: aws.Int32(2)})
	if err != nil {
		return false, err
	}
	for _, o := range out.Contents {
		if aws.ToString(o.Key) != k+"/" {
			return false, nil
		}
	}
	return true, nil
}

func (a *area) Open(p string) (files.Object, error) {
	k, err := a.key(p)
	if err != nil {
		return nil, err
	}
	if p == "" {
		return nil, larder.Errorf(larder.EINVALID, "%s is a directory", quote(p))
	}
	// The first window comes with what a HEAD would say: one request
	// where a small file took two.
	if o, err := a.openFirst(k, p); o != nil || err != nil {
		return o, err
	}
	ctx, cancel := a.b.ctx()
	defer cancel()
	h, err := a.b.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: &a.b.bucket, Key: &k})
	if isNotFound(err) {
		if in, serr := a.Stat(p); serr == nil && in.Dir {
			return nil, larder.Errorf(larder.EINVALID, "%s is a directory", quote(p))
		}
		return nil, larder.Errorf(larder.ENOTFOUND, "requested content %s does not exist", quote(p))
	}
	if err != nil {
		return nil, a.b.fail(err, "cannot open "+quote(p))
	}
	in := fileInfo(k, p, aws.ToInt64(h.ContentLength), h.LastModified, h.ETag)
	return &object{b: a.b, key: k, shown: p, etag: aws.ToString(h.ETag), info: in}, nil
}

// openFirst opens the file at key k, p in the area, by a GET of its first
// window, which it keeps for the first read; nil and no error if it
// cannot tell (a file of no bytes, which has no range to get; a key not
// found, which may be a folder), for Open to ask with a HEAD.
func (a *area) openFirst(k, p string) (*object, error) {
	ctx, cancel := a.b.ctx()
	defer cancel()
	out, err := a.b.client.GetObject(ctx, &awss3.GetObjectInput{
		Bucket: &a.b.bucket, Key: &k, Range: aws.String(fmt.Sprintf("bytes=0-%d", a.b.readAhead-1)),
	})
	if isNotFound(err) || status(err) == 416 {
		return nil, nil
	}
	if err != nil {
		return nil, a.b.fail(err, "cannot open "+quote(p))
	}
	defer out.Body.Close()
	// Content-Range: bytes 0-N/SIZE.
	cr := aws.ToString(out.ContentRange)
	i := strings.LastIndexByte(cr, '/')
	size, perr := strconv.ParseInt(cr[i+1:], 10, 64)
	n := aws.ToInt64(out.ContentLength)
	if i < 0 || perr != nil || n < 0 || n > a.b.readAhead || n > size {
		return nil, nil // a store that ignored the range, or said no size: ask again
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(out.Body, buf); err != nil {
		return nil, a.b.fail(err, "cannot read "+quote(p))
	}
	o := &object{b: a.b, key: k, shown: p, etag: aws.ToString(out.ETag), info: fileInfo(k, p, size, out.LastModified, out.ETag)}
	o.first = buf
	return o, nil
}

func (a *area) List(p string) (files.Lister, error) {
	k, err := a.key(p)
	if err != nil {
		return nil, err
	}
	prefix := a.base
	if p != "" {
		in, err := a.Stat(p)
		if err != nil {
			return nil, err
		}
		if !in.Dir {
			return nil, larder.Errorf(larder.EINVALID, "%s is not a folder", quote(p))
		}
		prefix = k + "/"
	}
	return &lister{a: a, prefix: prefix, shown: p}, nil
}

// lister lists a folder a page of keys at a time.
type lister struct {
	a       *area
	prefix  string
	shown   string
	token   *string
	done    bool
	pending []files.Info
}

func (l *lister) Next(n int) ([]files.Info, error) {
	for len(l.pending) < n && !l.done {
		if err := l.page(); err != nil {
			return nil, err
		}
	}
	if len(l.pending) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(l.pending))
	out := l.pending[:n:n]
	l.pending = l.pending[n:]
	return out, nil
}

func (l *lister) page() error {
	ctx, cancel := l.a.b.ctx()
	defer cancel()
	out, err := l.a.b.client.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{
		Bucket: &l.a.b.bucket, Prefix: &l.prefix, Delimiter: aws.String("/"), ContinuationToken: l.token,
	})
	if err != nil {
		return l.a.b.fail(err, "cannot list "+quote(l.shown))
	}
	for _, o := range out.Contents {
		name := strings.TrimPrefix(aws.ToString(o.Key), l.prefix)
		if !listable(name) {
			continue // the folder's marker, or a key no path names
		}
		l.pending = append(l.pending, fileInfo(aws.ToString(o.Key), name, aws.ToInt64(o.Size), o.LastModified, o.ETag))
	}
	for _, cp := range out.CommonPrefixes {
		name := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), l.prefix), "/")
		if listable(name) {
			l.pending = append(l.pending, files.Info{Name: name, Dir: true})
		}
	}
	l.token = out.NextContinuationToken
	l.done = !aws.ToBool(out.IsTruncated) || l.token == nil
	return nil
}

// listable reports whether name, found in a listing, is one a request
// can name.
func listable(name string) bool {
	clean, err := disk.CleanPath(name)
	return err == nil && clean == name && name != "" && !strings.Contains(name, "/")
}

func (l *lister) Close() error { return nil }

func (a *area) Close() error { return nil }

func (a *area) Mkdir(p string) error {
	if a.shared {
		return errReadOnly
	}
	if p == "" {
		return larder.Errorf(larder.ECONFLICT, "the top of your space exists")
	}
	k, err := a.key(p)
	if err != nil {
		return err
	}
	if _, err := a.Stat(p); err == nil {
		return larder.Errorf(larder.ECONFLICT, "%s exists", quote(p))
	} else if larder.ErrorCode(err) != larder.ENOTFOUND {
		return err
	}
	if err := larder.ValidateNewName("name", path.Base(p)); err != nil {
		return err
	}
	if err := a.checkParent(p); err != nil {
		return err
	}
	if err := a.b.put(k+"/", nil, true); err != nil {
		if isPrecondition(err) {
			return larder.Errorf(larder.ECONFLICT, "%s exists", quote(p))
		}
		return a.b.fail(err, "cannot make "+quote(p))
	}
	return nil
}

// checkParent refuses p if its parent is not a folder.
func (a *area) checkParent(p string) error {
	parent := path.Dir(p)
	if parent == "." {
		return nil
	}
	in, err := a.Stat(parent)
	if larder.ErrorCode(err) == larder.ENOTFOUND || err == nil && !in.Dir {
		return larder.Errorf(larder.ENOTFOUND, "the folder %s does not exist", quote(parent))
	}
	return err
}

func (a *area) Remove(p string) error {
	if a.shared {
		return errReadOnly
	}
	if p == "" {
		return larder.Errorf(larder.EINVALID, "the top of your space cannot be removed")
	}
	k, err := a.key(p)
	if err != nil {
		return err
	}
	in, err := a.Stat(p)
	if err != nil {
		return err
	}
	if in.Dir {
		empty, err := a.isEmptyDir(k)
		if err != nil {
			return a.b.fail(err, "cannot remove "+quote(p))
		}
		if !empty {
			return larder.Errorf(larder.ECONFLICT, "%s is a folder that is not empty", quote(p))
		}
		k += "/"
	}
	return a.b.fail(a.b.remove(k), "cannot remove "+quote(p))
}

// maxDeleteBatch is the most keys one DeleteObjects takes.
const maxDeleteBatch = 1000

// RemoveTree removes p: its object, or the objects below it, one page of
// the listing (up to n, at most 1,000 keys) with one DeleteObjects. A
// store cannot remove a prefix in one step: cut in the middle, it leaves
// part of the tree, which RemoveTree called again removes.
func (a *area) RemoveTree(p string, n int) (files.Removed, bool, error) {
	var r files.Removed
	if a.shared {
		return r, false, errReadOnly
	}
	if p == "" {
		return r, false, larder.Errorf(larder.EINVALID, "the top of your space cannot be removed")
	}
	k, err := a.key(p)
	if err != nil {
		return r, false, err
	}
	fail := func(err error) error {
		return a.b.fail(err, "cannot remove "+quote(p)+"; removing it again finishes the removal")
	}
	ctx, cancel := a.b.ctx()
	h, err := a.b.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: &a.b.bucket, Key: &k})
	cancel()
	switch {
	case err == nil:
		if err := a.b.remove(k); err != nil {
			return r, false, fail(err)
		}
		r.Files, r.Bytes = 1, aws.ToInt64(h.ContentLength)
		return r, true, nil
	case !isNotFound(err):
		return r, false, fail(err)
	}
	ctx, cancel = a.b.ctx()
	out, err := a.b.client.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: &a.b.bucket, Prefix: aws.String(k + "/"), MaxKeys: aws.Int32(int32(min(max(n, 1), maxDeleteBatch)))})
	cancel()
	if err != nil {
		return r, false, fail(err)
	}
	ids := make([]types.ObjectIdentifier, 0, len(out.Contents))
	for _, o := range out.Contents {
		ids = append(ids, types.ObjectIdentifier{Key: o.Key})
	}
	if err := a.b.removeKeys(ids); err != nil {
		return r, false, fail(err)
	}
	for _, o := range out.Contents {
		if strings.HasSuffix(aws.ToString(o.Key), "/") {
			r.Folders++
		} else {
			r.Files++
			r.Bytes += aws.ToInt64(o.Size)
		}
	}
	return r, !aws.ToBool(out.IsTruncated), nil
}

// move is the record of a rename in progress, kept in the space's moves/
// until every object is moved, so that a rename cut in the middle can be
// finished (FinishRename), and one called again goes on where it was.
type move struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// moveKey returns the key of the record of a rename of from to to.
func (a *area) moveKey(from, to string) string {
	sum := sha256.Sum256([]byte(from + "\x00" + to))
	return a.moves + hex.EncodeToString(sum[:16])
}

// Rename moves from to to: one object, or every object below a folder,
// each copied then removed. Everything it refuses, it refuses before it
// changes anything; then it records the move, so that one cut in the
// middle is finished by FinishRename or by the same Rename called again.
func (a *area) Rename(from, to string, overwrite bool) error {
	if a.shared {
		return errReadOnly
	}
	if from == "" || to == "" {
		return larder.Errorf(larder.EINVALID, "the top of your space cannot be moved or replaced")
	}
	if from == to || strings.HasPrefix(to, from+"/") {
		return larder.Errorf(larder.EINVALID, "%s cannot move into itself", quote(from))
	}
	if _, err := a.key(from); err != nil {
		return err
	}
	if _, err := a.key(to); err != nil {
		return err
	}
	mk := a.moveKey(from, to)
	if _, err := a.b.get(mk); err == nil {
		return a.finish(from, to, mk)
	} else if !isNotFound(err) {
		return a.b.fail(err, "cannot move "+quote(from))
	}
	src, err := a.Stat(from)
	if err != nil {
		return err
	}
	dst, err := a.Stat(to)
	switch {
	case err == nil && !overwrite:
		return larder.Errorf(larder.ECONFLICT, "%s exists", quote(to))
	case err == nil && dst.Dir && !src.Dir:
		return larder.Errorf(larder.ECONFLICT, "%s is a folder", quote(to))
	case err == nil && !dst.Dir && src.Dir:
		return larder.Errorf(larder.ECONFLICT, "%s is not a folder", quote(to))
	case err == nil && dst.Dir:
		tk, _ := a.key(to)
		empty, err := a.isEmptyDir(tk)
		if err != nil {
			return a.b.fail(err, "cannot move "+quote(from))
		}
		if !empty {
			return larder.Errorf(larder.ECONFLICT, "%s is a folder that is not empty", quote(to))
		}
	case err == nil: // an empty folder, replaced by a folder
	case larder.ErrorCode(err) != larder.ENOTFOUND:
		return err
	default:
		if err := larder.ValidateNewName("name", path.Base(to)); err != nil {
			return err
		}
	}
	if err := a.checkParent(to); err != nil {
		return err
	}
	rec, _ := json.Marshal(move{From: from, To: to})
	if err := a.b.put(mk, rec, false); err != nil {
		return a.b.fail(err, "cannot move "+quote(from))
	}
	return a.finish(from, to, mk)
}

// FinishRename finishes the rename of from to to whose record is still
// there, if one is.
func (a *area) FinishRename(from, to string) error {
	if a.shared {
		return nil
	}
	mk := a.moveKey(from, to)
	if _, err := a.b.get(mk); isNotFound(err) {
		return nil
	} else if err != nil {
		return a.b.fail(err, "cannot finish moving "+quote(from))
	}
	return a.finish(from, to, mk)
}

// finish moves what is still at from to to, then removes the move's
// record mk. Each object is copied, then removed, so that one copied
// and not removed is copied again, whole; a folder's marker goes with its
// objects.
func (a *area) finish(from, to, mk string) error {
	fk, _ := a.key(from)
	tk, _ := a.key(to)
	fail := func(err error) error {
		err = a.b.fail(err, "cannot move "+quote(from)+"; moving it again finishes the move")
		if e, ok := err.(*larder.Error); ok && e.Code != larder.EUNAVAILABLE {
			e.Code = larder.EINTERNAL // half done: not a refusal
		}
		return err
	}
	ctx, cancel := a.b.ctx()
	h, err := a.b.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: &a.b.bucket, Key: &fk})
	cancel()
	switch {
	case err == nil:
		if err := a.moveObject(fk, tk, aws.ToInt64(h.ContentLength), h.ETag); err != nil {
			return fail(err)
		}
	case !isNotFound(err):
		return fail(err)
	default:
		// A folder (or a file moved already): every object below it.
		pg := awss3.NewListObjectsV2Paginator(a.b.client, &awss3.ListObjectsV2Input{Bucket: &a.b.bucket, Prefix: aws.String(fk + "/")})
		err := eachPage(a.b, pg, func(out *awss3.ListObjectsV2Output) error {
			for _, o := range out.Contents {
				src := aws.ToString(o.Key)
				if err := a.moveObject(src, tk+strings.TrimPrefix(src, fk), aws.ToInt64(o.Size), o.ETag); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fail(err)
		}
	}
	return fail(a.b.remove(mk))
}

// The copy of an object: S3 copies at most 5 GiB in one CopyObject, and
// a larger object in parts of UploadPartCopy (at most 5 GiB each too).
const (
	maxCopy      = 5 << 30
	copyPartSize = 1 << 30
)

// moveObject copies the object src, of size bytes and ETag etag, to dst
// and removes src. A src gone meanwhile was moved by a call before.
func (a *area) moveObject(src, dst string, size int64, etag *string) error {
	var err error
	if strings.HasSuffix(src, "/") {
		// A folder's marker: some stores refuse to copy one.
		err = a.b.put(dst, nil, false)
	} else {
		err = a.copyObject(src, dst, size, etag)
	}
	if isNotFound(err) {
		return nil
	}
	if isPrecondition(err) {
		return larder.Errorf(larder.ECONFLICT, "a file being moved changed meanwhile")
	}
	if err != nil {
		return err
	}
	if err := a.b.step("rename:copied " + dst); err != nil {
		return err
	}
	return a.b.remove(src)
}

// copySource is the x-amz-copy-source of key: the bucket and the key,
// each element escaped.
func (b *Backend) copySource(key string) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = urlPathEscape(p)
	}
	return b.bucket + "/" + strings.Join(parts, "/")
}

// copyObject copies src to dst on the store, if src still has etag: in
// one request, or part by part for an object larger than one copy takes.
func (a *area) copyObject(src, dst string, size int64, etag *string) error {
	b := a.b
	cs := b.copySource(src)
	if size <= b.maxCopy {
		ctx, cancel := b.ctx()
		defer cancel()
		_, err := b.client.CopyObject(ctx, &awss3.CopyObjectInput{Bucket: &b.bucket, Key: &dst, CopySource: &cs, CopySourceIfMatch: etag})
		return err
	}
	ctx, cancel := b.ctx()
	up, err := b.client.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: &b.bucket, Key: &dst})
	cancel()
	if err != nil {
		return err
	}
	abort := func() {
		ctx, cancel := b.ctx()
		defer cancel()
		b.client.AbortMultipartUpload(ctx, &awss3.AbortMultipartUploadInput{Bucket: &b.bucket, Key: &dst, UploadId: up.UploadId})
	}
	var done []types.CompletedPart
	chunk := b.copyPartSize
	for off, n := int64(0), int32(1); off < size; off, n = off+chunk, n+1 {
		end := min(off+chunk, size) - 1
		ctx, cancel := b.ctx()
		out, err := b.client.UploadPartCopy(ctx, &awss3.UploadPartCopyInput{
			Bucket: &b.bucket, Key: &dst, UploadId: up.UploadId, PartNumber: aws.Int32(n), CopySource: &cs,
			CopySourceIfMatch: etag, CopySourceRange: aws.String("bytes=" + strconv.FormatInt(off, 10) + "-" + strconv.FormatInt(end, 10)),
		})
		cancel()
		if err != nil {
			abort()
			return err
		}
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.CopyPartResult.ETag})
	}
	if err := b.complete(dst, aws.ToString(up.UploadId), done, false, time.Now().Add(b.completeTimeout(size))); err != nil {
		abort()
		return err
	}
	return nil
}
