package s3

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TestChecksumChoice: a CRC over plain http:// is only for a store on
// this machine; the automatic choice is CRC32C where the path is
// protected, SHA-256 elsewhere.
func TestChecksumChoice(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want Checksum
		err  string
	}{
		{"s3://b", ChecksumCRC32C, ""}, // AWS, over https://
		{"s3://b?endpoint=https://s3.example.com", ChecksumCRC32C, ""},
		{"s3://b?endpoint=http://s3.example.com", ChecksumSHA256, ""},
		{"s3://b?endpoint=HTTP://s3.example.com", ChecksumSHA256, ""},
		{"s3://b?endpoint=http://10.0.0.7:9000", ChecksumSHA256, ""},
		{"s3://b?endpoint=http://127.0.0.1:9000", ChecksumCRC32C, ""},
		{"s3://b?endpoint=http://[::1]:9000", ChecksumCRC32C, ""},
		// A host name in the bucket's name's style: the requests go to
		// b.localhost, which may resolve anywhere, and which a proxy
		// (HTTP_PROXY) takes, where it never takes localhost.
		{"s3://b?endpoint=http://localhost:9000", ChecksumSHA256, ""},
		{"s3://b?endpoint=http://localhost:9000&path-style=true", ChecksumCRC32C, ""},
		{"s3://b?endpoint=http://LOCALHOST:9000&path-style=true", ChecksumCRC32C, ""},
		{"s3://b?endpoint=http://localhost.:9000&path-style=true", ChecksumSHA256, ""},
		{"s3://b?endpoint=http://127.0.0.2:9000", ChecksumCRC32C, ""},
		{"s3://b?endpoint=http://0.0.0.0:9000", ChecksumSHA256, ""},
		{"s3://b?endpoint=http://localhost.evil.example:9000&path-style=true", ChecksumSHA256, ""},
		{"s3://b?checksum=crc32c&endpoint=http://localhost:9000", "", "path-style=true"},
		{"s3://b?endpoint=https://s3.example.com&checksum=sha256", ChecksumSHA256, ""},
		{"s3://b?endpoint=http://127.0.0.1:9000&checksum=sha256", ChecksumSHA256, ""},
		{"s3://b?checksum=crc32c&endpoint=http://127.0.0.1:9000", ChecksumCRC32C, ""},
		{"s3://b?endpoint=http://s3.example.com&checksum=crc32c", "", "anyone on the path could change a part"},
		{"s3://b?checksum=crc32c&endpoint=http://127.0.0.1.example.com", "", "anyone on the path could change a part"},
		{"s3://b?checksum=md5", "", "want sha256 or crc32c"},
	} {
		cfg, err := ParseURL(tc.url)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseURL(%q): %v; want an error saying %q", tc.url, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tc.url, err)
			continue
		}
		b, err := newBackend(t.Context(), cfg)
		if err != nil {
			t.Errorf("the backend of %q: %v", tc.url, err)
			continue
		}
		if b.checksum != tc.want {
			t.Errorf("the parts' checksum to %q: %s, want %s", tc.url, b.checksum, tc.want)
		}
	}
	if _, err := newBackend(t.Context(), Config{Bucket: "b", Endpoint: "http://s3.example.com", Checksum: ChecksumCRC32C}); err == nil {
		t.Errorf("a Config with CRC32C over plain http:// to another host: no error")
	}
}

// TestPartChecksumChecked: each checksum larder sends a part with is
// checked by the store: a body changed after its checksum was made (as
// anyone on the path could) is refused, and the same body unchanged is
// taken.
func TestPartChecksumChecked(t *testing.T) {
	b := testBackend(t, testConfig(t))
	for _, c := range []Checksum{ChecksumSHA256, ChecksumCRC32C} {
		k := b.root + "checked-" + string(c)
		ctx, cancel := b.ctx()
		up, err := b.client.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: &b.bucket, Key: &k, ChecksumAlgorithm: algorithm(c)})
		cancel()
		must(t, err)
		body := fill(MinPartSize, 'p')
		in, d := b.partRequest(k, aws.ToString(up.UploadId), c, 1, body)
		tampered := bytes.Clone(body)
		tampered[12345] ^= 0x20
		in.Body = bytes.NewReader(tampered)
		ctx, cancel = b.ctx()
		_, err = b.client.UploadPart(ctx, in, unsignedPayload)
		cancel()
		if code(err) != "BadDigest" {
			t.Errorf("%s: a part whose body does not match its checksum: %v; want BadDigest", c, err)
		}
		in, _ = b.partRequest(k, aws.ToString(up.UploadId), c, 1, body)
		ctx, cancel = b.ctx()
		out, err := b.client.UploadPart(ctx, in, unsignedPayload)
		cancel()
		must(t, err)
		parts, err := b.listParts(k, aws.ToString(up.UploadId))
		must(t, err)
		d.ETag = aws.ToString(out.ETag)
		if len(parts) != 1 || !d.confirms(c, parts[0]) || listed(c, parts[0]) == nil {
			t.Errorf("%s: ListParts after one part: %+v; want the part, with its checksum", c, parts)
		}
		must(t, b.complete(k, aws.ToString(up.UploadId), []types.CompletedPart{completedPart(c, d)}, true, time.Now().Add(b.timeout)))
		ctx, cancel = b.ctx()
		obj, err := b.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: &b.bucket, Key: &k})
		must(t, err)
		got, err := io.ReadAll(obj.Body)
		obj.Body.Close()
		cancel()
		if err != nil || !bytes.Equal(got, body) {
			t.Errorf("%s: the object: %d bytes, %v; want the part's %d", c, len(got), err, len(body))
		}
	}
}

func listed(c Checksum, p types.Part) *string {
	if c == ChecksumCRC32C {
		return p.ChecksumCRC32C
	}
	return p.ChecksumSHA256
}

// TestResumeOtherChecksum: an upload keeps the checksum it was started
// with (the store fixes it when the multipart upload is created): a
// server that would choose another resumes it with the upload's, and it
// completes, with the bytes. A checkpoint of a server before CRC32C,
// which names no checksum, is of SHA-256 parts.
func TestResumeOtherChecksum(t *testing.T) {
	for _, tc := range []struct {
		first, then Checksum
		old         bool // the checkpoint names no checksum
	}{
		{ChecksumCRC32C, ChecksumSHA256, false},
		{ChecksumSHA256, ChecksumCRC32C, false},
		{ChecksumSHA256, ChecksumCRC32C, true},
	} {
		cfg := testConfig(t)
		cfg.Checksum = tc.first
		one := testBackend(t, cfg)
		cfg.Checksum = tc.then
		two := testBackend(t, cfg)
		data := append(fill(MinPartSize, 'a'), fill(MinPartSize+7, 'b')...)
		a1, _ := one.Area("#1")
		pt, err := a1.StartUpload("f", int64(len(data)), false)
		must(t, err)
		_, err = pt.Write(data[:MinPartSize+1])
		must(t, err)
		must(t, pt.Close())
		if tc.old {
			key := a1.(*area).uploads + pt.ID()
			body, err := one.get(key)
			must(t, err)
			var cp map[string]any
			must(t, json.Unmarshal(body, &cp))
			if cp["checksum"] != string(tc.first) {
				t.Fatalf("the checkpoint names the checksum %v, want %s", cp["checksum"], tc.first)
			}
			delete(cp, "checksum")
			body, _ = json.Marshal(cp)
			must(t, one.put(key, body, false))
		}
		a2, _ := two.Area("#1")
		pt, err = a2.StartUpload("f", int64(len(data)), true)
		must(t, err)
		if pt.Offset() != MinPartSize {
			t.Fatalf("%s then %s: the resume starts at %d, want %d", tc.first, tc.then, pt.Offset(), MinPartSize)
		}
		_, err = pt.Write(data[MinPartSize:])
		must(t, err)
		_, err = pt.Sync()
		must(t, err)
		if _, err := pt.Place(false); err != nil {
			t.Errorf("%s then %s: Place: %v", tc.first, tc.then, err)
		}
		must(t, pt.Close())
		o, err := a1.Open("f")
		must(t, err)
		got, _ := io.ReadAll(io.NewSectionReader(o, 0, int64(len(data))))
		o.Close()
		if !bytes.Equal(got, data) {
			t.Errorf("%s then %s: the file resumed is not the bytes sent", tc.first, tc.then)
		}
	}
}
