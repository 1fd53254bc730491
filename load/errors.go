package load

import (
	"errors"

	"github.com/aws/smithy-go"
)

// ErrInvalidRequest marks a request rejected before it was sent (missing
// table, key or payload; over a service size limit).
var ErrInvalidRequest = errors.New("invalid request")

// apiErrorCode returns the service error code of err, or "".
func apiErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// isValidation reports whether err is a ValidationException: the request
// (or one of its items) can never succeed as it is.
func isValidation(err error) bool {
	return apiErrorCode(err) == "ValidationException"
}
