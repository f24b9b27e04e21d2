package s3

import (
	"context"
	"errors"
	"fmt"
	"net"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/larderfs/larder"
)

// fail makes err, a failed request to the store, a *larder.Error whose
// message is safe to show a client: what could not be done, or, for a
// store that does not answer or answers that it is busy or broken, that
// it is unavailable. The store's own words stay in Err, for the log.
func (b *Backend) fail(err error, what string) error {
	if err == nil {
		return nil
	}
	var le *larder.Error
	if errors.As(err, &le) {
		return err
	}
	if unavailable(err) {
		return &larder.Error{Code: larder.EUNAVAILABLE, Message: "the file store does not answer (" + what + "); retry later", Err: err}
	}
	return &larder.Error{Code: larder.EINTERNAL, Message: what, Err: err}
}

// status returns the HTTP status of a failed request, or 0.
func status(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// code returns the S3 error code of a failed request, or "".
func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	switch code(err) {
	case "NoSuchKey", "NotFound", "NoSuchUpload":
		return true
	}
	return status(err) == 404
}

// isNotImplemented reports a request the store does not implement.
func isNotImplemented(err error) bool {
	return code(err) == "NotImplemented" || status(err) == 501
}

// isPrecondition reports a conditional request refused: If-None-Match: *
// with an object there, If-Match with another.
func isPrecondition(err error) bool {
	if err == nil {
		return false
	}
	switch code(err) {
	case "PreconditionFailed", "ConditionalRequestConflict":
		return true
	}
	return status(err) == 412
}

// unavailable reports whether err says that the store could not be
// reached or did not answer in time, or that it is busy or broken: a
// condition that may pass.
func unavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	if s := status(err); s >= 500 || s == 429 {
		return true
	}
	switch code(err) {
	case "SlowDown", "ServiceUnavailable", "RequestTimeout", "InternalError":
		return true
	}
	return false
}

// quote quotes a client's path for a message, escaping anything
// unprintable so that a path cannot forge text in a reply or a log.
func quote(name string) string {
	if len(name) > 200 {
		name = name[:200] + "..."
	}
	return fmt.Sprintf("%q", name)
}
