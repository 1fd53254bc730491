package load

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// throttleCodes are the service error codes of an overloaded or throttled
// service: the request may succeed later as it is.
var throttleCodes = map[string]bool{
	"ProvisionedThroughputExceededException": true,
	"ThrottlingException":                    true,
	"Throttling":                             true,
	"RequestLimitExceeded":                   true,
	"LimitExceededException":                 true,
	"TooManyRequestsException":               true,
	"KMSThrottlingException":                 true,
	"TransactionInProgressException":         true,
	"InternalServerError":                    true,
	"InternalFailure":                        true,
	"ServiceUnavailable":                     true,
	"RequestTimeout":                         true,
	"RequestTimeoutException":                true,
	"ExpiredTokenException":                  true, // refreshed credentials may follow
}

// IsTransient reports whether err, returned by a writer or an AWS call after
// the SDK's own retries, may go away by itself, so that the whole batch is
// worth sending again later: throttling, server errors (5xx), a spent retry
// budget, and transport failures (resets, refused connections, timeouts,
// truncated answers). It is false for nil, for a cancelled context and for
// requests that can never succeed as they are (a ValidationException, a
// missing table or stream, refused credentials, [ErrInvalidRequest]).
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, ErrInvalidRequest) {
		return false
	}
	if errors.Is(err, ErrRetriesExhausted) {
		return true
	}
	var qe ratelimit.QuotaExceededError
	if errors.As(err, &qe) {
		return true
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		if s := re.HTTPStatusCode(); s >= 500 || s == http.StatusTooManyRequests {
			return true
		}
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return throttleCodes[ae.ErrorCode()] || ae.ErrorFault() == smithy.FaultServer
	}
	if errors.As(err, &re) && re.Response != nil && re.HTTPStatusCode() >= 400 && re.HTTPStatusCode() < 500 {
		return false // a client error without a code we know
	}
	// No answer from the service: the connection failed, was reset or timed
	// out, or the answer was cut short.
	var oe *smithy.OperationError
	var ne net.Error
	return errors.As(err, &oe) || errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED)
}

// IsPermanent reports whether err means a request (an item, a record) can
// never be written as it is: a ValidationException (e.g. an item over 400 KB)
// or a request ferry refused to send ([ErrInvalidRequest], e.g. a record over
// 1 MiB). Such rows follow the --on-error policy.
func IsPermanent(err error) bool {
	return errors.Is(err, ErrInvalidRequest) || isValidation(err)
}
