package s3

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Checksum is how the store checks each part of an upload: the part is
// sent with its checksum in a signed header (x-amz-checksum-...), its
// body unsigned, and the store refuses a body that does not match it.
//
// SHA-256 also protects the part from anyone on the path to the store:
// the header cannot be changed without breaking the signature, and no
// other body has that SHA-256. A CRC protects it from accidents only (a
// body can be made to have any CRC), at a fraction of the CPU: on a
// path TLS protects (https://), or that no one else is on (a store on
// the loopback), it is as safe. Either way the file's SHA-256 is
// checked before it is placed, kept in its record, and checked by the
// client against every download.
type Checksum string

const (
	// ChecksumAuto is CRC32C over https:// and to a store on the
	// loopback (an address of it, or localhost with path-style
	// addressing), SHA-256 over http:// to any other host.
	ChecksumAuto   Checksum = ""
	ChecksumSHA256 Checksum = "sha256"
	ChecksumCRC32C Checksum = "crc32c"
)

// resolve returns the checksum c stands for to endpoint, addressed in
// the path or not (pathStyle), refusing a CRC over plain http:// to
// another host.
func (c Checksum) resolve(endpoint string, pathStyle bool) (Checksum, error) {
	// "" is AWS's endpoint, over https://.
	safe := endpoint == ""
	hint := "use an https:// endpoint, or checksum=sha256"
	if u, err := url.Parse(endpoint); err == nil && endpoint != "" {
		safe = strings.EqualFold(u.Scheme, "https") || loopback(u.Hostname(), pathStyle)
		if !safe && loopback(u.Hostname(), true) {
			hint = "add path-style=true (the requests then go to " + u.Hostname() + " itself, not to BUCKET." + u.Hostname() + ", which may resolve elsewhere and which HTTP_PROXY would take), use an https:// endpoint, or checksum=sha256"
		}
	}
	switch c {
	case ChecksumAuto:
		if safe {
			return ChecksumCRC32C, nil
		}
		return ChecksumSHA256, nil
	case ChecksumSHA256:
		return c, nil
	case ChecksumCRC32C:
		if !safe {
			return "", fmt.Errorf("s3: checksum=crc32c over plain http:// to %s: anyone on the path could change a part and its CRC to match; %s", endpoint, hint)
		}
		return c, nil
	}
	return "", fmt.Errorf("s3: checksum=%q: want sha256 or crc32c", string(c))
}

// loopback reports whether the requests to the endpoint host, addressed
// in the path or not (pathStyle), go to this machine and to nothing
// between: a loopback address, or localhost in the path's style. Go's
// HTTP client never sends either through a proxy (HTTP_PROXY). In the
// bucket's name's style the requests go to BUCKET.localhost, which the
// resolver may send anywhere, and a proxy takes: not loopback. (The SDK
// addresses an IP in the path's style whatever it is told.)
func loopback(host string, pathStyle bool) bool {
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	return pathStyle && strings.EqualFold(host, "localhost")
}

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// algorithm returns the S3 name of the checksum a checkpoint names; ""
// is SHA-256 (the checkpoints of servers before CRC32C).
func algorithm(c Checksum) types.ChecksumAlgorithm {
	if c == ChecksumCRC32C {
		return types.ChecksumAlgorithmCrc32c
	}
	return types.ChecksumAlgorithmSha256
}

// partRequest returns the request that sends buf as part n of the
// multipart upload uploadID of key, whose parts have checksum c, and the
// part as its checkpoint records it once sent (but its ETag).
func (b *Backend) partRequest(key, uploadID string, c Checksum, n int32, buf []byte) (*awss3.UploadPartInput, partDone) {
	in := &awss3.UploadPartInput{
		Bucket: &b.bucket, Key: &key, UploadId: &uploadID, PartNumber: aws.Int32(n),
		Body: bytes.NewReader(buf), ContentLength: aws.Int64(int64(len(buf))),
		ChecksumAlgorithm: algorithm(c),
	}
	d := partDone{N: n, Size: int64(len(buf))}
	if c == ChecksumCRC32C {
		var sum [4]byte
		binary.BigEndian.PutUint32(sum[:], crc32.Checksum(buf, crc32c))
		d.CRC32C = base64.StdEncoding.EncodeToString(sum[:])
		in.ChecksumCRC32C = &d.CRC32C
	} else {
		sum := sha256.Sum256(buf)
		d.SHA256 = base64.StdEncoding.EncodeToString(sum[:])
		in.ChecksumSHA256 = &d.SHA256
	}
	return in, d
}

// completedPart returns the part d of an upload with checksum c, for
// CompleteMultipartUpload.
func completedPart(c Checksum, d partDone) types.CompletedPart {
	p := types.CompletedPart{PartNumber: aws.Int32(d.N), ETag: aws.String(d.ETag)}
	if c == ChecksumCRC32C {
		p.ChecksumCRC32C = aws.String(d.CRC32C)
	} else {
		p.ChecksumSHA256 = aws.String(d.SHA256)
	}
	return p
}

// confirms reports whether p, a part as ListParts gives it, has the
// checksum c of d, or none (a store that does not say).
func (d partDone) confirms(c Checksum, p types.Part) bool {
	if c == ChecksumCRC32C {
		return p.ChecksumCRC32C == nil || *p.ChecksumCRC32C == d.CRC32C
	}
	return p.ChecksumSHA256 == nil || *p.ChecksumSHA256 == d.SHA256
}
