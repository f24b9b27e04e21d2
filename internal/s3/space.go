package s3

import (
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// DeleteSpace removes everything of the private space of account id:
// its files and folders, its unfinished uploads and their checkpoints,
// its renames in progress. With aside not "", its files and folders are
// first copied below PREFIX/deleted/aside/, for an administrator to hand
// over. It reports whether the space held anything. A store cannot
// remove a prefix in one step: cut in the middle, it leaves part of the
// space, which no account reaches (ids are never given twice), for the
// administrator to remove with any S3 tool.
func (b *Backend) DeleteSpace(id int64, aside string) (bool, error) {
	n := strconv.FormatInt(id, 10)
	files := b.root + "spaces/" + n + "/"
	ups, err := b.multipartUploads(files)
	if err != nil {
		return false, err
	}
	found := len(ups) > 0
	for _, up := range ups {
		if err := b.abort(aws.ToString(up.Key), aws.ToString(up.UploadId), ""); err != nil {
			return found, err
		}
	}
	if aside != "" {
		a := &area{b: b}
		to := b.root + "deleted/" + aside + "/"
		pg := awss3.NewListObjectsV2Paginator(b.client, &awss3.ListObjectsV2Input{Bucket: &b.bucket, Prefix: &files})
		err := eachPage(b, pg, func(out *awss3.ListObjectsV2Output) error {
			for _, o := range out.Contents {
				src := aws.ToString(o.Key)
				dst := to + strings.TrimPrefix(src, files)
				var err error
				if strings.HasSuffix(src, "/") {
					err = b.put(dst, nil, false)
				} else {
					err = a.copyObject(src, dst, aws.ToInt64(o.Size), o.ETag)
				}
				if err != nil && !isNotFound(err) {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return found, b.fail(err, "cannot copy the space aside")
		}
	}
	for _, prefix := range []string{files, b.root + "uploads/" + n + "/", b.root + "moves/" + n + "/"} {
		pg := awss3.NewListObjectsV2Paginator(b.client, &awss3.ListObjectsV2Input{Bucket: &b.bucket, Prefix: &prefix})
		err := eachPage(b, pg, func(out *awss3.ListObjectsV2Output) error {
			for _, o := range out.Contents {
				found = true
				if err := b.remove(aws.ToString(o.Key)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return found, b.fail(err, "cannot remove the space")
		}
	}
	return found, nil
}
