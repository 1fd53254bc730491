package lambdaesm

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// FunctionError is a function error: the function was invoked and failed.
// The Kinesis event source mapping treats every kind alike (the whole batch
// failed; Lambda's Invoke API marks them all X-Amz-Function-Error: Unhandled);
// Type tells them apart for logs and tests.
type FunctionError struct {
	RequestID string
	// Type is the errorType the runtime reported: for aws-lambda-go the Go
	// type name of the returned error (e.g. "BatchError", "errorString") or
	// of a panic's value (e.g. "string", "runtime.Error"), or one of the
	// platform's: TypeTimeout, TypeExit ("Runtime.ExitError": the runtime
	// exited without reporting), TypeInvalidResponse.
	Type    string
	Message string
	// StackTrace is the runtime's stackTrace, if any (aws-lambda-go sends
	// one for a panic).
	StackTrace json.RawMessage
	// Status is the emulator's HTTP status: 200 for an error the handler
	// returned and for a timeout, 502 when the runtime exited (a panic in
	// aws-lambda-go exits the process after reporting it).
	Status int
}

// Platform error types (as Lambda reports them).
const (
	TypeTimeout         = "Sandbox.Timedout"
	TypeExit            = "Runtime.ExitError"
	TypeInvalidResponse = "Runtime.InvalidResponse"
)

func (e *FunctionError) Error() string {
	return fmt.Sprintf("function error %s in %s: %s", e.Type, e.RequestID, e.Message)
}

// InvokeError is an invocation the emulator refused or failed without a
// function error (Lambda's service errors): the function may not have run.
type InvokeError struct {
	Status int
	Body   string
}

func (e *InvokeError) Error() string {
	return fmt.Sprintf("lambda emulator answered %d: %s", e.Status, e.Body)
}

// errorBody is the runtime's error document (POST …/invocation/ID/error).
type errorBody struct {
	ErrorMessage *string         `json:"errorMessage"`
	ErrorType    *string         `json:"errorType"`
	StackTrace   json.RawMessage `json:"stackTrace"`
}

// classifyResponse turns the emulator's answer into the function's response
// or a *FunctionError / *InvokeError.
//
// The RIE does not send Lambda's X-Amz-Function-Error header: an error the
// handler returned comes back as 200 with the runtime's error document
// ({"errorMessage","errorType"[,"stackTrace"]}), a runtime that exited
// (after a panic, say) as 502 with that document or an empty body, and a
// timeout as 200 with the plain text "Task timed out after N.00 seconds".
// So an error is recognised by shape: a JSON object with string errorType
// and errorMessage members; a timeout by a body that is not JSON after the
// function's timeout has passed.
func classifyResponse(status int, body []byte, elapsed, timeout time.Duration) ([]byte, error) {
	switch status {
	case http.StatusOK:
		if eb, ok := parseErrorBody(body); ok {
			return nil, &FunctionError{Type: *eb.ErrorType, Message: *eb.ErrorMessage, StackTrace: eb.StackTrace, Status: status}
		}
		trimmed := bytes.TrimSpace(body)
		if len(trimmed) == 0 || json.Valid(trimmed) {
			return body, nil
		}
		if elapsed >= timeout {
			return nil, &FunctionError{Type: TypeTimeout, Message: string(trimmed), Status: status}
		}
		return nil, &FunctionError{Type: TypeInvalidResponse, Message: "response is not JSON: " + truncate(string(trimmed), 200), Status: status}
	case http.StatusBadGateway:
		if eb, ok := parseErrorBody(body); ok {
			return nil, &FunctionError{Type: *eb.ErrorType, Message: *eb.ErrorMessage, StackTrace: eb.StackTrace, Status: status}
		}
		return nil, &FunctionError{Type: TypeExit, Message: "runtime exited: " + truncate(string(body), 200), Status: status}
	default:
		return nil, &InvokeError{Status: status, Body: truncate(string(body), 500)}
	}
}

func parseErrorBody(body []byte) (errorBody, bool) {
	var eb errorBody
	if err := json.Unmarshal(body, &eb); err != nil {
		return eb, false
	}
	return eb, eb.ErrorType != nil && eb.ErrorMessage != nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// newRequestID is a random UUID (version 4), the shape of Lambda request ids.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
