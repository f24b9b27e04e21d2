package s3

import (
	"context"
	"net/url"

	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
)

// XML 1.0 cannot carry most control characters, so a listing's answer
// cannot name a key that holds one (another tool may make such a key;
// larder never does) unless it is asked to encode its keys
// (EncodingType=url). A store that does encodes them says so in its
// answer; one that does not (versitygw 1.8 answers U+FFFD in place of the
// character) gives them as they are, and they are left so.

// encodeListings asks every listing of the client for encoded keys and
// decodes them, so that no caller sees an encoded key.
func encodeListings(o *awss3.Options) {
	o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("larderKeyEncoding",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				switch p := in.Parameters.(type) {
				case *awss3.ListObjectsV2Input:
					p.EncodingType = types.EncodingTypeUrl
				case *awss3.ListMultipartUploadsInput:
					p.EncodingType = types.EncodingTypeUrl
				}
				out, md, err := next.HandleInitialize(ctx, in)
				if err == nil {
					decodeListing(out.Result)
				}
				return out, md, err
			}), middleware.After)
	})
}

// decodeListing decodes the keys of a listing's answer that says they
// are encoded.
func decodeListing(result any) {
	switch r := result.(type) {
	case *awss3.ListObjectsV2Output:
		if r.EncodingType != types.EncodingTypeUrl {
			return
		}
		for i := range r.Contents {
			decodeKey(r.Contents[i].Key)
		}
		for i := range r.CommonPrefixes {
			decodeKey(r.CommonPrefixes[i].Prefix)
		}
		decodeKey(r.StartAfter)
	case *awss3.ListMultipartUploadsOutput:
		if r.EncodingType != types.EncodingTypeUrl {
			return
		}
		for i := range r.Uploads {
			decodeKey(r.Uploads[i].Key)
		}
		for i := range r.CommonPrefixes {
			decodeKey(r.CommonPrefixes[i].Prefix)
		}
		// The next page starts after it, named as it is.
		decodeKey(r.NextKeyMarker)
	}
}

// decodeKey decodes the key *k in place, as S3 encodes it (a space is
// "+", as in a query); one that is not validly encoded is left as it is.
func decodeKey(k *string) {
	if k == nil {
		return
	}
	if d, err := url.QueryUnescape(*k); err == nil {
		*k = d
	}
}
