package s3

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/larderfs/larder/internal/files"
)

// names lists the folder p of a, whole.
func names(t *testing.T, a files.Area, p string) []string {
	t.Helper()
	l, err := a.List(p)
	must(t, err)
	defer l.Close()
	var out []string
	for {
		ins, err := l.Next(100)
		if err != nil {
			break
		}
		for _, in := range ins {
			out = append(out, in.Name)
		}
	}
	slices.Sort(out)
	return out
}

// TestEncodedListing: a store that encodes the keys of a listing (as AWS
// S3 does when asked, the only way for its XML to name a key with a
// control character) has them decoded: the listing names the key itself.
// The answers are AWS S3's, recorded: versitygw does not encode.
func TestEncodedListing(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
	asked := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked <- r.URL.Query().Get("encoding-type")
		w.Header().Set("Content-Type", "application/xml")
		w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p%2Fspaces%2F1%2F</Prefix><KeyCount>3</KeyCount><MaxKeys>1000</MaxKeys><Delimiter>%2F</Delimiter><IsTruncated>false</IsTruncated><EncodingType>url</EncodingType>` +
			`<Contents><Key>p/spaces/1/a%01b</Key><LastModified>2026-12-07T12:00:00.000Z</LastModified><ETag>&quot;9dd4e461268c8034f5c8564e155c67a6&quot;</ETag><Size>1</Size><StorageClass>STANDARD</StorageClass></Contents>` +
			`<Contents><Key>p/spaces/1/one+two%2Bthree%25</Key><LastModified>2026-12-07T12:00:00.000Z</LastModified><ETag>&quot;9dd4e461268c8034f5c8564e155c67a6&quot;</ETag><Size>1</Size><StorageClass>STANDARD</StorageClass></Contents>` +
			`<CommonPrefixes><Prefix>p/spaces/1/tab%09dir/</Prefix></CommonPrefixes></ListBucketResult>`))
	}))
	defer srv.Close()
	b, err := newBackend(context.Background(), Config{Bucket: "b", Prefix: "p", Endpoint: srv.URL, PathStyle: true})
	must(t, err)
	a, _ := b.Area("#1")
	got := names(t, a, "")
	if want := []string{"a\x01b", "one two+three%", "tab\tdir"}; !slices.Equal(got, want) {
		t.Errorf("the listing names %q; want %q", got, want)
	}
	if enc := <-asked; enc != "url" {
		t.Errorf("the listing asked for encoding-type %q; want url", enc)
	}
}

// TestKeysListedAsTheyAre: a store that does not encode (versitygw)
// gives keys as they are: a key holding "%", "+", a space, a tab or a
// newline is listed and moved under its own name, none decoded as if it
// were encoded.
func TestKeysListedAsTheyAre(t *testing.T) {
	b := testBackend(t, testConfig(t))
	a, _ := b.Area("#1")
	must(t, a.Mkdir("d"))
	keys := []string{"pc%41", "pl+us", "sp ace", "tab\tx", "nl\nx"}
	for _, k := range keys {
		ctx, cancel := b.ctx()
		_, err := b.client.PutObject(ctx, &awss3.PutObjectInput{Bucket: &b.bucket, Key: aws.String(b.root + "spaces/1/d/" + k), Body: bytes.NewReader([]byte(k))})
		cancel()
		must(t, err)
	}
	want := slices.Sorted(slices.Values(keys))
	if got := names(t, a, "d"); !slices.Equal(got, want) {
		t.Errorf("the listing names %q; want %q", got, want)
	}
	must(t, a.Rename("d", "e", false))
	if got := names(t, a, "e"); !slices.Equal(got, want) {
		t.Errorf("after the folder's rename, it holds %q; want %q", got, want)
	}
	if _, err := a.Stat("d"); err == nil {
		t.Errorf("after the folder's rename, d is still there")
	}
}

// TestNoCredentialsQuiet: a server started without credentials stops
// with larder's error, and the SDK writes nothing of its own to standard
// error (it warned of falling back to IMDSv1 when the instance metadata
// service refused a token, as this one does).
func TestNoCredentialsQuiet(t *testing.T) {
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "forbidden", http.StatusForbidden)
	}))
	defer imds.Close()
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_EC2_METADATA_DISABLED"} {
		t.Setenv(k, "")
	}
	t.Setenv("HOME", t.TempDir())
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.URL)

	r, w, err := os.Pipe()
	must(t, err)
	stderr := os.Stderr
	os.Stderr = w
	_, err = New(context.Background(), Config{Bucket: "b", Endpoint: "http://127.0.0.1:1", PathStyle: true, Timeout: 2 * time.Second})
	os.Stderr = stderr
	w.Close()
	written, _ := io.ReadAll(r)
	if err == nil || !strings.Contains(err.Error(), "no credentials: set AWS_ACCESS_KEY_ID") {
		t.Errorf("New without credentials: %v; want larder's error naming what to set", err)
	}
	if len(written) > 0 {
		t.Errorf("New without credentials wrote to standard error: %q", written)
	}
}

// flipBody flips the first byte of the body it reads.
type flipBody struct {
	io.ReadCloser
	done bool
}

func (f *flipBody) Read(p []byte) (int, error) {
	n, err := f.ReadCloser.Read(p)
	if n > 0 && !f.done {
		p[0] ^= 1
		f.done = true
	}
	return n, err
}

// TestPartUnsignedButChecked: a part is sent with UNSIGNED-PAYLOAD (the
// store need not hash it a second time) and its checksum, of either
// kind, in a signed header, which the store checks: a part changed on
// the way is refused, and the upload fails rather than store it.
func TestPartUnsignedButChecked(t *testing.T) {
	for _, c := range []Checksum{ChecksumSHA256, ChecksumCRC32C} {
		t.Run(string(c), func(t *testing.T) { testPartUnsignedButChecked(t, c) })
	}
}

func testPartUnsignedButChecked(t *testing.T, c Checksum) {
	cfg := testConfig(t)
	cfg.Checksum = c
	target, err := url.Parse(cfg.Endpoint)
	must(t, err)
	var mu sync.Mutex
	var payloads []string
	var flip atomic.Bool
	rp := httputil.NewSingleHostReverseProxy(target)
	direct := rp.Director
	rp.Director = func(r *http.Request) {
		direct(r)
		if r.Method == http.MethodPut && r.URL.Query().Get("partNumber") != "" {
			mu.Lock()
			payloads = append(payloads, r.Header.Get("X-Amz-Content-Sha256")+" "+r.Header.Get("X-Amz-Checksum-"+string(c))+" "+r.Header.Get("Authorization"))
			mu.Unlock()
			if flip.Load() {
				r.Body = &flipBody{ReadCloser: r.Body}
			}
		}
	}
	srv := httptest.NewServer(rp)
	defer srv.Close()
	cfg.Endpoint = srv.URL
	b := testBackend(t, cfg)
	a, _ := b.Area("#1")
	data := fill(MinPartSize+10, 'p')
	upload := func() error {
		pt, err := a.StartUpload("f", int64(len(data)), false)
		if err != nil {
			return err
		}
		defer pt.Close()
		if _, err := pt.Write(data); err != nil {
			return err
		}
		if _, err := pt.Sync(); err != nil {
			return err
		}
		_, err = pt.Place(true)
		return err
	}
	must(t, upload())
	mu.Lock()
	for _, p := range payloads {
		h, rest, _ := strings.Cut(p, " ")
		sum, auth, _ := strings.Cut(rest, " ")
		if h != "UNSIGNED-PAYLOAD" || sum == "" || !strings.Contains(auth, "x-amz-checksum-"+string(c)) {
			t.Errorf("a part's X-Amz-Content-Sha256, checksum and signature: %q, %q, %q; want UNSIGNED-PAYLOAD, its %s, signed", h, sum, auth, c)
		}
	}
	mu.Unlock()
	flip.Store(true)
	if err := upload(); err == nil {
		t.Errorf("an upload whose parts were changed on the way: no error")
	}
}
